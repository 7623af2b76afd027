// Activation: an element-wise function by canonical name (attrs.function), see eltwise.h.
#include "eltwise.h"
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_activation(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const Tensor& x = ctx.value(node_input(node, 0));
  if (x.dtype() != DType::f32) throw Error(node_where(node), "Activation computes in f32");
  std::vector<EltwiseStep> steps = eltwise_steps(node.attrs.s("function"), node.attrs);
  if (steps.empty()) {  // identity: the output is the input
    ctx.alias(node.outputs.at(0), node_input(node, 0), x.shape());
    return nullptr;
  }
  Tensor& y = ctx.define(node.outputs.at(0), DType::f32, x.shape());
  const auto& eng = ctx.engine();
  const memory::dims flat = {x.numel()};
  memory::desc md(flat, memory::data_type::f32, memory::format_tag::a);
  auto seq = std::make_unique<SequenceKernel>();
  for (size_t i = 0; i < steps.size(); ++i) {
    // The first step reads x; later steps work in place on y.
    dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, steps[i].algorithm, md, steps[i].alpha, steps[i].beta);
    dnnl::eltwise_forward::primitive_desc pd(d, ctx.primitive_attr(), eng);
    std::map<int, memory> args = {
        {DNNL_ARG_SRC, plain_memory(eng, i == 0 ? x : y, flat)},
        {DNNL_ARG_DST, plain_memory(eng, y, flat)},
        {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())},
    };
    seq->add(std::make_unique<PrimitiveKernel>(dnnl::eltwise_forward(pd), std::move(args)));
  }
  return seq;
}

}  // namespace pb::layers
