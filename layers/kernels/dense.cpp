// Dense: y = act(x · Wᵀ + b). x [..., in], weight [out, in], optional bias [out].
// oneDNN matmul over x viewed as [M, in]; weights reordered once into the layout the
// primitive prefers; bias and activation fused as post-ops.
#include "eltwise.h"
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_dense(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const std::string where = node_where(node);
  const Tensor& x = ctx.value(node_input(node, 0));
  const Tensor& w = ctx.weight(node_input(node, 1), "weight");
  if (x.dtype() != DType::f32 || w.dtype() != DType::f32) throw Error(where, "Dense computes in f32");
  if (w.shape().size() != 2) throw Error(where, "weight must be [out, in], got " + shape_str(w.shape()));
  const int64_t out = w.shape()[0], in = w.shape()[1];
  if (x.shape().empty() || x.shape().back() != in)
    throw Error(where, "input " + shape_str(x.shape()) + " does not end in the weight's in-features " + std::to_string(in));
  const int64_t rows = x.numel() / in;

  Shape y_shape = x.shape();
  y_shape.back() = out;
  Tensor& y = ctx.define(node.outputs.at(0), DType::f32, y_shape);

  const auto& eng = ctx.engine();
  memory::desc src_md({rows, in}, memory::data_type::f32, memory::format_tag::ab);
  memory::desc user_w_md({in, out}, memory::data_type::f32, memory::format_tag::ba);  // [out,in] seen as [in,out]
  memory::desc any_w_md({in, out}, memory::data_type::f32, memory::format_tag::any);
  memory::desc dst_md({rows, out}, memory::data_type::f32, memory::format_tag::ab);

  const bool has_bias = has_input(node, 2);
  memory::desc bias_md;
  if (has_bias) {
    const Tensor& b = ctx.weight(node_input(node, 2), "bias");
    if (b.dtype() != DType::f32 || b.numel() != out)
      throw Error(where, "bias must be f32 with " + std::to_string(out) + " elements, got " + shape_str(b.shape()));
    bias_md = memory::desc({1, out}, memory::data_type::f32, memory::format_tag::ab);
  }

  dnnl::primitive_attr attr = ctx.primitive_attr();
  dnnl::post_ops ops;
  for (const EltwiseStep& s : eltwise_steps(node.attrs.s("activation", "identity"), node.attrs))
    ops.append_eltwise(1.f, s.algorithm, s.alpha, s.beta);
  attr.set_post_ops(ops);

  auto desc = has_bias ? dnnl::matmul::desc(src_md, any_w_md, bias_md, dst_md) : dnnl::matmul::desc(src_md, any_w_md, dst_md);
  dnnl::matmul::primitive_desc pd(desc, attr, eng);

  // Reorder the weights once, at compile time, into the primitive's preferred layout.
  memory user_w(user_w_md, eng, const_cast<void*>(w.raw()));
  memory packed_w(pd.weights_desc(), eng);
  dnnl::stream s(eng);
  dnnl::reorder(user_w, packed_w).execute(s, user_w, packed_w);
  s.wait();

  std::map<int, memory> args = {
      {DNNL_ARG_SRC, plain_memory(eng, x, {rows, in})},
      {DNNL_ARG_WEIGHTS, packed_w},
      {DNNL_ARG_DST, plain_memory(eng, y, {rows, out})},
      {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())},
  };
  if (has_bias) args[DNNL_ARG_BIAS] = plain_memory(eng, ctx.weight(node_input(node, 2), "bias"), {1, out});
  return std::make_unique<PrimitiveKernel>(dnnl::matmul(pd), std::move(args));
}

}  // namespace pb::layers
