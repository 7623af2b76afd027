// PReLU: y = x ≥ 0 ? x : slope·x, inputs x and slope (a weight of one element, or one per channel,
// dim 1). oneDNN prelu broadcasts the slope, given as x's rank with 1 outside the channel dim.
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_prelu(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const Shape xs = ctx.shape(node_input(node, 0));
  const Tensor& slope = ctx.weight(node_input(node, 1), "slope");
  const auto& eng = ctx.engine();
  // In the input's layout (blocked after a Conv); the output follows.
  const memory src = ctx.memory(node_input(node, 0));
  memory::dims wdims(xs.size(), 1);
  if (slope.numel() > 1) wdims[1] = slope.numel();
  const memory w = plain_memory(eng, slope, wdims);
  dnnl::prelu_forward::primitive_desc pd({dnnl::prop_kind::forward_inference, src.get_desc(), w.get_desc()}, ctx.primitive_attr(), eng);
  std::map<int, memory> args = {
      {DNNL_ARG_SRC, src},
      {DNNL_ARG_WEIGHTS, w},
      {DNNL_ARG_DST, ctx.define_layout(node.outputs.at(0), xs, pd.dst_desc())},
      {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())},
  };
  return std::make_unique<PrimitiveKernel>(dnnl::prelu_forward(pd), std::move(args));
}

}  // namespace pb::layers
