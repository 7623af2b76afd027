// flax.linen.BatchNorm, LayerNorm and RMSNorm.
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
