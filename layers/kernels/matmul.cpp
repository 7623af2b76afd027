// MatMul: y = scale · (a · b) over the last two dims, a [..., M, K], b [..., K, N] (or
// [..., N, K] with transpose_b), the leading dims broadcast like numpy. One oneDNN matmul:
// both operands are padded with leading 1s to the output's rank (a batch dim of 1 broadcasts
// inside the primitive), a transposed b is described by its strides (no copy), and scale is
// the primitive's output scale.
#include "kernel.h"

namespace pb::layers {

namespace {

// Row-major strides of `dims`.
dnnl::memory::dims strides_of(const dnnl::memory::dims& dims) {
  dnnl::memory::dims s(dims.size());
  dnnl::memory::dim step = 1;
  for (size_t d = dims.size(); d-- > 0;) {
    s[d] = step;
    step *= dims[d];
  }
  return s;
}

}  // namespace

std::unique_ptr<Kernel> build_matmul(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const Tensor& a = ctx.value(node_input(node, 0));
  const Tensor& b = ctx.value(node_input(node, 1));
  Tensor& y = ctx.define_output(node);
  const size_t rank = y.shape().size();
  const bool transpose_b = node.attrs.i("transpose_b") != 0;

  const memory::dims a_dims = padded_dims(a.shape(), rank), y_dims = padded_dims(y.shape(), rank);
  // b as stored, then seen as [..., K, N]: with transpose_b the last two dims swap, strides too.
  memory::dims b_dims = padded_dims(b.shape(), rank), b_strides = strides_of(b_dims);
  if (transpose_b) {
    std::swap(b_dims[rank - 1], b_dims[rank - 2]);
    std::swap(b_strides[rank - 1], b_strides[rank - 2]);
  }
  const auto f32 = memory::data_type::f32;
  const memory::desc a_md(a_dims, f32, strides_of(a_dims)), b_md(b_dims, f32, b_strides), y_md(y_dims, f32, strides_of(y_dims));

  dnnl::primitive_attr attr = ctx.primitive_attr();
  const double scale = node.attrs.f("scale");
  if (scale != 1.0) attr.set_output_scales(0, {static_cast<float>(scale)});
  const auto& eng = ctx.engine();
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, y_md), attr, eng);
  std::map<int, memory> args = {
      {DNNL_ARG_SRC, memory(a_md, eng, const_cast<void*>(a.raw()))},
      {DNNL_ARG_WEIGHTS, memory(b_md, eng, const_cast<void*>(b.raw()))},
      {DNNL_ARG_DST, memory(y_md, eng, y.raw())},
      {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())},
  };
  return std::make_unique<PrimitiveKernel>(dnnl::matmul(pd), std::move(args));
}

}  // namespace pb::layers
