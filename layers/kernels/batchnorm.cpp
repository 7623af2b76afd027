// BatchNorm (inference): x [N, C, ...] normalised per channel with the running statistics.
// inputs: x, scale (gamma) [C], shift (beta) [C], mean [C], variance [C]; attrs eps.
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_batchnorm(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const Shape xs = ctx.shape(node_input(node, 0));
  const int64_t c = xs[1];
  const auto& eng = ctx.engine();
  // Normalise in the input's layout (blocked after a Conv). [N, C] is seen as [N, C, 1]:
  // oneDNN wants a spatial dim.
  memory src, dst;
  if (xs.size() == 2) {
    const memory::dims dims = {xs[0], xs[1], 1};
    src = plain_memory(eng, ctx.value(node_input(node, 0)), dims);
    dst = plain_memory(eng, ctx.define_output(node), dims);
  } else {
    src = ctx.memory(node_input(node, 0));
    dst = ctx.define_layout(node.outputs.at(0), xs, src.get_desc());
  }
  const auto flags = dnnl::normalization_flags::use_global_stats | dnnl::normalization_flags::use_scale |
                     dnnl::normalization_flags::use_shift;
  dnnl::batch_normalization_forward::primitive_desc pd(
      {dnnl::prop_kind::forward_inference, src.get_desc(), static_cast<float>(node.attrs.f("eps")), flags}, ctx.primitive_attr(), eng);
  std::map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())}};
  const std::pair<int, const char*> params[] = {
      {DNNL_ARG_SCALE, "scale"}, {DNNL_ARG_SHIFT, "shift"}, {DNNL_ARG_MEAN, "mean"}, {DNNL_ARG_VARIANCE, "variance"}};
  for (size_t i = 0; i < 4; ++i) args[params[i].first] = plain_memory(eng, ctx.weight(node_input(node, 1 + i), params[i].second), {c});
  return std::make_unique<PrimitiveKernel>(dnnl::batch_normalization_forward(pd), std::move(args));
}

}  // namespace pb::layers
