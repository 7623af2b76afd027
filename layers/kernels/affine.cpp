// Affine: y = x * scale + shift over the last dimension (scikit-learn's StandardScaler and
// similar per-feature transforms). One oneDNN binary_mul with a binary_add post-op.
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_affine(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const Tensor& x = ctx.value(node_input(node, 0));
  const Tensor& scale = ctx.weight(node_input(node, 1), "scale");
  const Tensor& shift = ctx.weight(node_input(node, 2), "shift");
  Tensor& y = ctx.define_output(node);

  const auto& eng = ctx.engine();
  const int64_t features = x.shape().back();
  const memory::dims dims = {x.numel() / std::max<int64_t>(features, 1), features}, row = {1, features};
  memory::desc md(dims, memory::data_type::f32, memory::format_tag::ab);
  memory::desc row_md(row, memory::data_type::f32, memory::format_tag::ab);
  dnnl::post_ops ops;
  ops.append_binary(dnnl::algorithm::binary_add, row_md);
  dnnl::primitive_attr attr = ctx.primitive_attr();
  attr.set_post_ops(ops);
  dnnl::binary::primitive_desc pd({dnnl::algorithm::binary_mul, md, row_md, md}, attr, eng);
  std::map<int, memory> args = {
      {DNNL_ARG_SRC_0, plain_memory(eng, x, dims)},
      {DNNL_ARG_SRC_1, plain_memory(eng, scale, row)},
      {DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, plain_memory(eng, shift, row)},
      {DNNL_ARG_DST, plain_memory(eng, y, dims)},
      {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())},
  };
  return std::make_unique<PrimitiveKernel>(dnnl::binary(pd), std::move(args));
}

}  // namespace pb::layers
