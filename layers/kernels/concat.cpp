// Concat: joins its inputs along attrs.axis (negative counts from the end).
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_concat(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const std::string where = node_where(node);
  if (node.inputs.empty()) throw Error(where, "needs at least one input");
  std::vector<const Tensor*> ins;
  for (size_t i = 0; i < node.inputs.size(); ++i) ins.push_back(&ctx.value(node_input(node, i)));
  const Shape& first = ins[0]->shape();
  const int64_t rank = static_cast<int64_t>(first.size());
  int64_t axis = node.attrs.i("axis");
  if (axis < -rank || axis >= rank)
    throw Error(where, "axis " + std::to_string(axis) + " is out of range for inputs of rank " + std::to_string(rank));
  if (axis < 0) axis += rank;
  Shape out = first;
  out[axis] = 0;
  for (const Tensor* t : ins) {
    if (t->dtype() != DType::f32) throw Error(where, "Concat computes in f32");
    Shape s = t->shape();
    bool fits = static_cast<int64_t>(s.size()) == rank;
    for (int64_t d = 0; fits && d < rank; ++d) fits = d == axis || s[d] == first[d];
    if (!fits) throw Error(where, "input shapes " + shape_str(first) + " and " + shape_str(s) + " differ outside axis " + std::to_string(axis));
    out[axis] += s[axis];
  }
  Tensor& y = ctx.define(node.outputs.at(0), DType::f32, out);

  const auto& eng = ctx.engine();
  std::vector<memory::desc> mds;
  std::map<int, memory> args;
  for (size_t i = 0; i < ins.size(); ++i) {
    memory m = plain_memory(eng, *ins[i]);
    mds.push_back(m.get_desc());
    args[DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i)] = m;
  }
  memory dst = plain_memory(eng, y);
  dnnl::concat::primitive_desc pd(dst.get_desc(), static_cast<int>(axis), mds, eng, ctx.primitive_attr());
  args[DNNL_ARG_DST] = dst;
  args[DNNL_ARG_SCRATCHPAD] = ctx.scratchpad(pd.scratchpad_desc());
  return std::make_unique<PrimitiveKernel>(dnnl::concat(pd), std::move(args));
}

}  // namespace pb::layers
