// Softmax / log-softmax along one axis (attrs.axis, negative counts from the end; attrs.log).
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_softmax(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const Tensor& x = ctx.value(node_input(node, 0));
  const int axis = static_cast<int>(ir::normalize_axis(node, node.attrs.i("axis"), x.shape().size()));
  Tensor& y = ctx.define_output(node);

  const auto& eng = ctx.engine();
  const memory src = plain_memory(eng, x), dst = plain_memory(eng, y);
  std::map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
  if (node.attrs.i("log")) {
    dnnl::logsoftmax_forward::primitive_desc pd({dnnl::prop_kind::forward_inference, src.get_desc(), axis}, ctx.primitive_attr(), eng);
    args[DNNL_ARG_SCRATCHPAD] = ctx.scratchpad(pd.scratchpad_desc());
    return std::make_unique<PrimitiveKernel>(dnnl::logsoftmax_forward(pd), std::move(args));
  }
  dnnl::softmax_forward::primitive_desc pd({dnnl::prop_kind::forward_inference, src.get_desc(), axis}, ctx.primitive_attr(), eng);
  args[DNNL_ARG_SCRATCHPAD] = ctx.scratchpad(pd.scratchpad_desc());
  return std::make_unique<PrimitiveKernel>(dnnl::softmax_forward(pd), std::move(args));
}

}  // namespace pb::layers
