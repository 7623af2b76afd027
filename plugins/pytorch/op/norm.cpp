// nn.BatchNorm1d-3d, nn.GroupNorm, nn.InstanceNorm1d-3d, nn.LayerNorm and RMSNorm (torch >= 2.4,
// or the capture's composed leaf).
#include <algorithm>

#include "../fx_node.h"

namespace pb::pytorch {

// BatchNorm at inference: the running statistics; affine=False implies scale 1 and shift 0,
// made as constants "<value>.scale" / "<value>.shift". momentum and track_running_stats=True
// only steer how training updates the statistics.
void translate_batchnorm(const FxNode& n) {
  const JsonRef& m = n.module();
  if (m.boolean("training", false)) m["training"].fail("BatchNorm in training mode uses batch statistics; capture in eval()");
  auto mean = n.param("running_mean", true), var = n.param("running_var", true);
  if (!mean || !var)
    m["buffers"].fail("BatchNorm without running statistics (track_running_stats=False) normalises with batch statistics; not supported");
  // num_batches_tracked counts training steps; it sets the update factor only when momentum is
  // None (a cumulative average), so inference never reads it.
  if (auto tracked = m["buffers"].find("num_batches_tracked")) n.decoder().ignore(tracked->str());
  const int64_t c = n.attr("num_features").i64();
  auto implied = [&](const std::string& role, double v) { return n.constant(role, filled({c}, v)); };
  const std::string scale = n.param("weight").value_or(""), shift = n.param("bias").value_or("");
  n.emit("BatchNorm", {n.in(0), scale.empty() ? implied("scale", 1.f) : scale, shift.empty() ? implied("shift", 0.f) : shift, *mean, *var},
         attrs_of({{"eps", n.attr("eps").f64()}}));
}

namespace {

// Group normalisation of x [N, C, ...] (oneDNN 2.6 has none): a Reshape to [N, groups, -1], a
// LayerNorm over the last axis without affine, and a Reshape back (0 keeps the batch open). A
// per-channel weight and bias then are a BatchNorm whose statistics are mean 0 and variance 1
// with eps 0, which computes exactly x · weight + bias in one primitive; absent ones are 1 and 0.
void emit_group_norm(const FxNode& n, int64_t groups, double eps, const std::string& weight, const std::string& bias) {
  const std::string x = n.in(0);
  const Shape& open = n.batch_shape(x);
  if (open.size() < 2) n.fail("group normalisation needs an input [N, C, ...], got " + shape_str(open));
  const int64_t c = open[1];
  if (std::any_of(open.begin() + 1, open.end(), [](int64_t d) { return d < 0; }))
    n.fail("dims " + shape_str(open) + " other than the batch depend on it (the graph leaves the batch open)");
  if (groups < 1 || c % groups) n.fail(std::to_string(c) + " channels do not split into " + std::to_string(groups) + " groups");
  const std::string grouped = n.step("groups", "Reshape", {x}, attrs_of({{"shape", Ints{0, groups, -1}}}));
  const std::string normed = n.step("norm", "LayerNorm", {grouped}, attrs_of({{"axis", int64_t(-1)}, {"eps", eps}}));
  Ints back(open.begin(), open.end());
  back[0] = 0;
  if (weight.empty() && bias.empty()) return n.emit("Reshape", {normed}, attrs_of({{"shape", back}}));
  const std::string shaped = n.step("shape", "Reshape", {normed}, attrs_of({{"shape", back}}));
  auto implied = [&](const std::string& role, double v) { return n.constant(role, filled({c}, v)); };
  n.emit("BatchNorm", {shaped, weight.empty() ? implied("scale", 1.0) : weight, bias.empty() ? implied("shift", 0.0) : bias,
                       implied("mean", 0.0), implied("variance", 1.0)},
         attrs_of({{"eps", 0.0}}));
}

}  // namespace

// nn.GroupNorm: weight and bias [num_channels] with affine.
void translate_groupnorm(const FxNode& n) {
  const std::string w = n.param("weight").value_or(""), b = n.param("bias").value_or("");
  const Shape want = {n.attr("num_channels").i64()};
  if (!w.empty()) n.check_param_shape("weight", w, want, "[num_channels] = ");
  if (!b.empty()) n.check_param_shape("bias", b, want, "[num_channels] = ");
  const Shape& xs = n.type(0).shape;
  if (xs.size() < 2 || xs[1] != want[0])
    n.fail("GroupNorm over " + std::to_string(want[0]) + " channels got an input " + shape_str(xs));
  emit_group_norm(n, n.attr("num_groups").i64(), n.attr("eps").f64(), w, b);
}

// F.group_norm(input, num_groups, weight=None, bias=None, eps=1e-05).
void translate_group_norm_call(const FxNode& n) {
  const std::string w = n.arg(2, "weight") ? n.in(2, "weight") : "", b = n.arg(3, "bias") ? n.in(3, "bias") : "";
  emit_group_norm(n, n.int_arg(1, "num_groups", 0), n.float_arg(4, "eps", 1e-5), w, b);
}

// nn.InstanceNorm1d-3d: torch normalises with the input's own statistics (group norm with a group
// per channel) in training or without running statistics, else with the running ones, as BatchNorm.
Translate instancenorm(size_t rank) {
  return [rank](const FxNode& n) {
    const Shape& xs = n.type(0).shape;
    if (xs.size() != rank + 2)
      n.fail("InstanceNorm" + std::to_string(rank) + "d needs a batched input [N, C, " + std::to_string(rank) +
             " spatial dims], got " + shape_str(xs) + " (an unbatched input is not supported)");
    if (!n.module().boolean("training", false) && n.attrs().boolean("track_running_stats", false)) return translate_batchnorm(n);
    const std::string w = n.param("weight").value_or(""), b = n.param("bias").value_or("");
    const Shape want = {n.attr("num_features").i64()};
    if (xs[1] != want[0]) n.fail("InstanceNorm over " + std::to_string(want[0]) + " features got an input " + shape_str(xs));
    if (!w.empty()) n.check_param_shape("weight", w, want, "[num_features] = ");
    if (!b.empty()) n.check_param_shape("bias", b, want, "[num_features] = ");
    // Running statistics a training-mode module carries are updated by torch, never read.
    for (const char* k : {"running_mean", "running_var", "num_batches_tracked"})
      if (auto t = n.module()["buffers"].find(k)) n.decoder().ignore(t->str());
    emit_group_norm(n, xs[1], n.attr("eps").f64(), w, b);
  };
}

// F.instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
// use_input_stats=True, momentum=0.1, eps=1e-05).
void translate_instance_norm_call(const FxNode& n) {
  auto tensor = [&](size_t i, const std::string& kw) { return n.arg(i, kw) ? n.in(i, kw) : std::string(); };
  const std::string w = tensor(3, "weight"), b = tensor(4, "bias");
  const double eps = n.float_arg(7, "eps", 1e-5);
  auto stats = n.arg(5, "use_input_stats");
  if (!stats || stats->boolean()) {
    if (n.type(0).shape.size() < 3) n.fail("instance_norm needs an input [N, C, spatial...], got " + shape_str(n.type(0).shape));
    return emit_group_norm(n, n.type(0).shape[1], eps, w, b);
  }
  const std::string mean = tensor(1, "running_mean"), var = tensor(2, "running_var");
  if (mean.empty() || var.empty()) n.fail("instance_norm with use_input_stats=False needs running_mean and running_var");
  const int64_t c = n.type(0).shape.size() > 1 ? n.type(0).shape[1] : 1;
  auto implied = [&](const std::string& role, double v) { return n.constant(role, filled({c}, v)); };
  n.emit("BatchNorm", {n.in(0), w.empty() ? implied("scale", 1.0) : w, b.empty() ? implied("shift", 0.0) : b, mean, var},
         attrs_of({{"eps", eps}}));
}

// LayerNorm over the trailing len(normalized_shape) dims; weight and bias are absent with
// elementwise_affine=False (bias alone with torch >= 2.1's bias=False).
void translate_layernorm(const FxNode& n) {
  const int64_t dims = static_cast<int64_t>(n.attr("normalized_shape").ints().size());
  n.emit("LayerNorm", {n.in(0), n.param("weight").value_or(""), n.param("bias").value_or("")},
         attrs_of({{"axis", -dims}, {"eps", n.attr("eps").f64()}}));
}

// F.layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05), as ConvNeXt's
// LayerNorm2d calls it with its own parameters (get_attr values).
void translate_layer_norm_call(const FxNode& n) {
  auto shape = n.arg(1, "normalized_shape");
  if (!shape) n.fail("layer_norm needs normalized_shape");
  const int64_t dims = shape->is_array() ? static_cast<int64_t>(shape->size()) : 1;
  const std::string weight = n.arg(2, "weight") ? n.in(2, "weight") : "", bias = n.arg(3, "bias") ? n.in(3, "bias") : "";
  n.emit("LayerNorm", {n.in(0), weight, bias}, attrs_of({{"axis", -dims}, {"eps", n.float_arg(4, "eps", 1e-5)}}));
}

// torch >= 2.4's nn.RMSNorm and the capture's composed RMSNorm (torch 1.13 has none), which it
// traces as a leaf with the same attributes.
void translate_rmsnorm(const FxNode& n) {
  if (n.attr("normalized_shape").ints().size() != 1)
    n.attr("normalized_shape").fail("RMSNorm over more than the last dim is not supported");
  if (!n.attrs().has("eps")) n.attrs().fail("RMSNorm needs an explicit eps (torch's default depends on the input dtype)");
  std::vector<std::string> inputs = {n.in(0)};
  if (auto w = n.param("weight")) inputs.push_back(*w);
  n.emit("RMSNorm", inputs, attrs_of({{"axis", int64_t(-1)}, {"eps", n.attr("eps").f64()}}));
}

}  // namespace pb::pytorch
