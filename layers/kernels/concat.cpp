// Concat: joins its inputs along attrs.axis (negative counts from the end).
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_concat(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const auto& eng = ctx.engine();
  std::vector<memory::desc> mds;
  std::map<int, memory> args;
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    memory m = plain_memory(eng, ctx.value(node_input(node, i)));
    mds.push_back(m.get_desc());
    args[DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i)] = m;
  }
  memory dst = plain_memory(eng, ctx.define_output(node));
  const int axis = static_cast<int>(ir::normalize_axis(node, node.attrs.i("axis"), ctx.output_shape().size()));
  dnnl::concat::primitive_desc pd(dst.get_desc(), axis, mds, eng, ctx.primitive_attr());
  args[DNNL_ARG_DST] = dst;
  args[DNNL_ARG_SCRATCHPAD] = ctx.scratchpad(pd.scratchpad_desc());
  return std::make_unique<PrimitiveKernel>(dnnl::concat(pd), std::move(args));
}

}  // namespace pb::layers
