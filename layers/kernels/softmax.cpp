// Softmax / log-softmax along one axis (attrs.axis, negative counts from the end; attrs.log).
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_softmax(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const std::string where = node_where(node);
  const Tensor& x = ctx.value(node_input(node, 0));
  if (x.dtype() != DType::f32) throw Error(where, "Softmax computes in f32");
  const int64_t rank = static_cast<int64_t>(x.shape().size());
  int64_t axis = node.attrs.i("axis");
  if (axis < -rank || axis >= rank)
    throw Error(where, "axis " + std::to_string(axis) + " is out of range for an input of rank " + std::to_string(rank));
  if (axis < 0) axis += rank;
  Tensor& y = ctx.define(node.outputs.at(0), DType::f32, x.shape());

  const auto& eng = ctx.engine();
  memory::dims dims(x.shape().begin(), x.shape().end());
  memory::desc md(dims, memory::data_type::f32, plain_tag(dims.size()));
  std::map<int, memory> args = {{DNNL_ARG_SRC, plain_memory(eng, x)}, {DNNL_ARG_DST, plain_memory(eng, y)}};
  const int ax = static_cast<int>(axis);
  if (node.attrs.i("log", 0)) {
    dnnl::logsoftmax_forward::primitive_desc pd({dnnl::prop_kind::forward_inference, md, ax}, ctx.primitive_attr(), eng);
    args[DNNL_ARG_SCRATCHPAD] = ctx.scratchpad(pd.scratchpad_desc());
    return std::make_unique<PrimitiveKernel>(dnnl::logsoftmax_forward(pd), std::move(args));
  }
  dnnl::softmax_forward::primitive_desc pd({dnnl::prop_kind::forward_inference, md, ax}, ctx.primitive_attr(), eng);
  args[DNNL_ARG_SCRATCHPAD] = ctx.scratchpad(pd.scratchpad_desc());
  return std::make_unique<PrimitiveKernel>(dnnl::softmax_forward(pd), std::move(args));
}

}  // namespace pb::layers
