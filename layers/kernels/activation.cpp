// Activation: an element-wise function by canonical name (attrs.function), see eltwise.h.
#include "eltwise.h"
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_activation(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  std::vector<EltwiseStep> steps = eltwise_steps(node.attrs.s("function"), node.attrs);
  if (steps.empty()) {  // identity: the output is the input
    ctx.alias(node.outputs.at(0), node_input(node, 0), ctx.output_shape());
    return nullptr;
  }
  // Element-wise, so any layout will do: work in the input's (blocked after a Conv).
  const auto& eng = ctx.engine();
  const memory x = ctx.memory(node_input(node, 0));
  const memory y = ctx.define_layout(node.outputs.at(0), ctx.output_shape(), x.get_desc());
  const memory::desc md = x.get_desc();
  auto seq = std::make_unique<SequenceKernel>();
  for (size_t i = 0; i < steps.size(); ++i) {
    // The first step reads x; later steps work in place on y.
    dnnl::eltwise_forward::desc d(dnnl::prop_kind::forward_inference, steps[i].algorithm, md, steps[i].alpha, steps[i].beta);
    dnnl::eltwise_forward::primitive_desc pd(d, ctx.primitive_attr(), eng);
    std::map<int, memory> args = {
        {DNNL_ARG_SRC, i == 0 ? x : y},
        {DNNL_ARG_DST, y},
        {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())},
    };
    seq->add(std::make_unique<PrimitiveKernel>(dnnl::eltwise_forward(pd), std::move(args)));
  }
  return seq;
}

}  // namespace pb::layers
