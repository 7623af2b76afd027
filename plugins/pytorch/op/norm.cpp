// nn.BatchNorm1d-3d, nn.LayerNorm and RMSNorm (torch >= 2.4, or the capture's composed leaf).
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

// LayerNorm over the trailing len(normalized_shape) dims; weight and bias are absent with
// elementwise_affine=False (bias alone with torch >= 2.1's bias=False).
void translate_layernorm(const FxNode& n) {
  const int64_t dims = static_cast<int64_t>(n.attr("normalized_shape").ints().size());
  n.emit("LayerNorm", {n.in(0), n.param("weight").value_or(""), n.param("bias").value_or("")},
         attrs_of({{"axis", -dims}, {"eps", n.attr("eps").f64()}}));
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
