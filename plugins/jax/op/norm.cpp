// flax.linen.BatchNorm, GroupNorm, LayerNorm and RMSNorm.
#include "../module.h"

namespace pb::jax {

// BatchNorm at inference: (x - mean) * rsqrt(var + epsilon) * scale + bias with the
// batch_stats collection's running statistics.
void translate_batchnorm(const Module& m) {
  const JsonRef& j = m.json();
  check_float32(j);
  // Flax's default is None (given at call time); in training mode it normalises with the batch.
  JsonRef ura = j["use_running_average"];
  if (!ura.boolean())
    ura.fail("BatchNorm with use_running_average = false normalises with the batch's statistics; capture at inference (true)");
  if (auto a = j.find("axis_name")) a->fail("cross-device statistics (axis_name) are not supported");
  check_last_axis(j, "axis", m.shape().size());
  if (m.shape().size() < 2) j.fail("BatchNorm needs an input [batch, ..., features], got " + shape_str(m.shape()));
  const int64_t c = m.shape().back();
  const std::string what = "[features] (the input's last dim)";
  auto scale = m.optional_var(j.boolean("use_scale", true), "use_scale", "scale", {c}, what);
  auto bias = m.optional_var(j.boolean("use_bias", true), "use_bias", "bias", {c}, what);
  m.emit(Layout::ChannelsFirst, "BatchNorm",
         {m.first(), scale ? *scale : m.constant("scale", filled({c}, 1.0)), bias ? *bias : m.constant("bias", filled({c}, 0.0)),
          m.var_weight("mean", {c}, what, "batch_stats"), m.var_weight("var", {c}, what, "batch_stats")},
         attrs_of({{"eps", j.f64("epsilon", 1e-5)}}));
}

// GroupNorm: Flax splits the channels (last axis) into num_groups groups of group_size
// consecutive channels and normalises each over every non-batch axis. oneDNN has no group norm:
// channels-first x [N, C, ...] is Reshape{[0, groups, -1]} (a group's channels and positions
// contiguous), LayerNorm over the last axis without affine, Reshape back (0: the batch stays
// open), then the per-channel scale and bias as a BatchNorm with mean 0, variance 1 and eps 0
// (exactly x · scale + bias), as the pytorch planet decomposes nn.GroupNorm.
void translate_groupnorm(const Module& m) {
  const JsonRef& j = m.json();
  check_float32(j);
  if (auto a = j.find("axis_name"); a && !a->is_null()) a->fail("cross-device statistics (axis_name) are not supported");
  if (auto a = j.find("axis_index_groups"); a && !a->is_null()) a->fail("cross-device statistics (axis_index_groups) are not supported");
  // Flax's default None: every non-batch axis; anything else is not a group norm the IR computes.
  if (auto r = j.find("reduction_axes"); r && !r->is_null()) r->fail("only the default reduction_axes (null: every axis but the batch) is supported");
  const Shape& s = m.shape();
  if (s.size() < 2) j.fail("GroupNorm needs an input [batch, ..., features], got " + shape_str(s));
  const int64_t c = s.back();
  const auto ng = j.find("num_groups"), gs = j.find("group_size");
  const bool has_ng = ng && !ng->is_null(), has_gs = gs && !gs->is_null();
  if (has_ng == has_gs) j.fail("GroupNorm needs exactly one of num_groups and group_size (as Flax)");
  int64_t groups = 0;
  if (has_gs) {
    const int64_t size = positive(*gs);
    if (c % size) gs->fail(std::to_string(c) + " features do not split into groups of " + std::to_string(size));
    groups = c / size;
  } else {
    groups = positive(*ng);
    if (c % groups) ng->fail(std::to_string(c) + " features do not split into " + std::to_string(groups) + " groups");
  }
  const std::string what = "[features] (the input's last dim)";
  auto scale = m.optional_var(j.boolean("use_scale", true), "use_scale", "scale", {c}, what);
  auto bias = m.optional_var(j.boolean("use_bias", true), "use_bias", "bias", {c}, what);
  // use_fast_variance (Flax's default) and the IR's mean((x - mean)²): as LayerNorm.
  const std::string grouped = m.emit_step("groups", "Reshape", {m.first()}, attrs_of({{"shape", Ints{0, groups, -1}}}));
  const std::string normed = m.emit_step("norm", "LayerNorm", {grouped}, attrs_of({{"axis", int64_t(-1)}, {"eps", j.f64("epsilon", 1e-6)}}));
  Ints back = {0, c};  // channels-first [N, C, spatial...]
  back.insert(back.end(), s.begin() + 1, s.end() - 1);
  if (!scale && !bias) return m.emit(Layout::ChannelsFirst, "Reshape", {normed}, attrs_of({{"shape", back}}));
  const std::string shaped = m.emit_step("shape", "Reshape", {normed}, attrs_of({{"shape", back}}));
  m.emit(Layout::ChannelsFirst, "BatchNorm",
         {shaped, scale ? *scale : m.constant("scale", filled({c}, 1.0)), bias ? *bias : m.constant("bias", filled({c}, 0.0)),
          m.constant("mean", filled({c}, 0.0)), m.constant("var", filled({c}, 1.0))},
         attrs_of({{"eps", 0.0}}));
}

// LayerNorm / RMSNorm over the last axis (their defaults: epsilon 1e-6).
void translate_norm(const Module& m, bool rms) {
  const JsonRef& j = m.json();
  check_float32(j);
  check_last_axis(j, "reduction_axes", m.shape().size());
  check_last_axis(j, "feature_axes", m.shape().size());
  if (m.shape().empty()) j.fail("a norm needs an input of rank >= 1");
  const int64_t f = m.shape().back();
  const std::string what = "[features] (the input's last dim)";
  auto scale = m.optional_var(j.boolean("use_scale", true), "use_scale", "scale", {f}, what);
  const ir::Attrs a = attrs_of({{"axis", int64_t(-1)}, {"eps", j.f64("epsilon", 1e-6)}});
  if (rms) {
    std::vector<std::string> inputs = {m.last()};
    if (scale) inputs.push_back(*scale);
    return m.emit(Layout::ChannelsLast, "RMSNorm", inputs, a);
  }
  // use_fast_variance (mean(x²) - mean(x)², Flax's default) and the IR's mean((x - mean)²)
  // agree within f32 rounding for activations of unit scale.
  auto bias = m.optional_var(j.boolean("use_bias", true), "use_bias", "bias", {f}, what);
  m.emit(Layout::ChannelsLast, "LayerNorm", {m.last(), scale.value_or(""), bias.value_or("")}, a);
}

}  // namespace pb::jax
