// Dense: y = act(x · Wᵀ + b). x [..., in], weight [out, in], optional bias [out].
// oneDNN matmul over x viewed as [M, in]; weights reordered once into the layout the
// primitive prefers; bias and activation fused as post-ops.
#include "eltwise.h"
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_dense(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const Tensor& x = ctx.value(node_input(node, 0));
  const Tensor& w = ctx.weight(node_input(node, 1), "weight");
  const int64_t out = w.shape()[0], in = w.shape()[1], rows = x.numel() / in;
  Tensor& y = ctx.define_output(node);

  const auto& eng = ctx.engine();
  memory::desc src_md({rows, in}, memory::data_type::f32, memory::format_tag::ab);
  memory::desc user_w_md({in, out}, memory::data_type::f32, memory::format_tag::ba);  // [out,in] seen as [in,out]
  memory::desc any_w_md({in, out}, memory::data_type::f32, memory::format_tag::any);
  memory::desc dst_md({rows, out}, memory::data_type::f32, memory::format_tag::ab);
  const bool has_bias = has_input(node, 2);
  const memory::desc bias_md({1, out}, memory::data_type::f32, memory::format_tag::ab);

  dnnl::primitive_attr attr = ctx.primitive_attr();
  attr.set_post_ops(eltwise_post_ops(node.attrs.s("activation"), node.attrs));
  auto desc = has_bias ? dnnl::matmul::desc(src_md, any_w_md, bias_md, dst_md) : dnnl::matmul::desc(src_md, any_w_md, dst_md);
  dnnl::matmul::primitive_desc pd(desc, attr, eng);

  std::map<int, memory> args = {
      {DNNL_ARG_SRC, plain_memory(eng, x, {rows, in})},
      {DNNL_ARG_WEIGHTS, packed_weights(eng, memory(user_w_md, eng, const_cast<void*>(w.raw())), pd.weights_desc())},
      {DNNL_ARG_DST, plain_memory(eng, y, {rows, out})},
      {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())},
  };
  if (has_bias) args[DNNL_ARG_BIAS] = plain_memory(eng, ctx.weight(node_input(node, 2), "bias"), {1, out});
  return std::make_unique<PrimitiveKernel>(dnnl::matmul(pd), std::move(args));
}

}  // namespace pb::layers
