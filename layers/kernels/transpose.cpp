// Transpose: out dim i is input dim perm[i] (attrs.perm; a shorter perm permutes the leading
// dims and keeps the rest in place). A oneDNN reorder from a strided view of the input.
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_transpose(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const Tensor& x = ctx.value(node_input(node, 0));
  const Shape& xs = x.shape();
  if (x.dtype() != DType::f32) throw Error(ir::node_where(node), "Transpose supports f32");
  std::vector<int64_t> perm = node.attrs.ints("perm");
  for (size_t d = perm.size(); d < xs.size(); ++d) perm.push_back(static_cast<int64_t>(d));
  // The input seen through the permutation: output dim i steps like input dim perm[i].
  memory::dims in_strides(xs.size()), view_strides(xs.size());
  for (int64_t d = static_cast<int64_t>(xs.size()) - 1, s = 1; d >= 0; --d) {
    in_strides[d] = s;
    s *= xs[d];
  }
  for (size_t i = 0; i < perm.size(); ++i) view_strides[i] = in_strides[perm[i]];
  Tensor& y = ctx.define_output(node);
  const auto& eng = ctx.engine();
  memory src({dims_of(y.shape()), memory::data_type::f32, view_strides}, eng, const_cast<void*>(x.raw()));
  memory dst = plain_memory(eng, y);
  dnnl::reorder::primitive_desc pd(eng, src.get_desc(), eng, dst.get_desc(), ctx.primitive_attr());
  std::map<int, memory> args = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}, {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())}};
  return std::make_unique<PrimitiveKernel>(dnnl::reorder(pd), std::move(args));
}

}  // namespace pb::layers
