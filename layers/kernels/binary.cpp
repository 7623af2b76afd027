// Add / Sub / Mul / Div with numpy broadcasting: out = broadcast(a, b), either operand a value
// or a weight. oneDNN's binary primitive broadcasts only its second source, so the operand
// with the full output shape goes first (Sub swaps and negates; Div cannot swap).
#include "kernel.h"

namespace pb::layers {

namespace {

std::unique_ptr<Kernel> build_binary(const ir::Node& node, CompileContext& ctx, dnnl::algorithm alg) {
  using dnnl::memory;
  const auto& eng = ctx.engine();
  if (ctx.shape(node_input(node, 0)) == ctx.shape(node_input(node, 1))) {
    // Same shapes (a residual add): work in the first operand's layout, blocked or plain.
    auto seq = std::make_unique<SequenceKernel>();
    const memory a = ctx.memory(node_input(node, 0));
    const memory b = in_layout(ctx, ctx.memory(node_input(node, 1)), a.get_desc(), *seq);
    const memory y = ctx.define_layout(node.outputs.at(0), ctx.output_shape(), a.get_desc());
    dnnl::binary::primitive_desc pd({alg, a.get_desc(), a.get_desc(), a.get_desc()}, ctx.primitive_attr(), eng);
    seq->add(std::make_unique<PrimitiveKernel>(
        dnnl::binary(pd), std::map<int, memory>{{DNNL_ARG_SRC_0, a}, {DNNL_ARG_SRC_1, b}, {DNNL_ARG_DST, y},
                                                {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())}}));
    return seq;
  }
  const Tensor* a = &ctx.value(node_input(node, 0));
  const Tensor* b = &ctx.value(node_input(node, 1));
  const Shape& out = ctx.output_shape();
  Tensor& y = ctx.define_output(node);

  dnnl::primitive_attr attr = ctx.primitive_attr();
  if (a->shape() != out) {
    if (b->shape() != out)
      throw Error(ir::node_where(node), "both operands " + shape_str(a->shape()) + " and " + shape_str(b->shape()) +
                                            " broadcast; one must have the output shape " + shape_str(out));
    std::swap(a, b);
    if (alg == dnnl::algorithm::binary_div) throw Error(ir::node_where(node), "Div with a broadcast dividend is not supported");
    if (alg == dnnl::algorithm::binary_sub) {  // a - b = -(b - a)
      dnnl::post_ops ops;
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_linear, -1.f, 0.f);
      attr.set_post_ops(ops);
    }
  }
  const size_t rank = std::max<size_t>(out.size(), 1);
  memory::desc src0(padded_dims(a->shape(), rank), memory::data_type::f32, plain_tag(rank));
  memory::desc src1(padded_dims(b->shape(), rank), memory::data_type::f32, plain_tag(rank));
  memory::desc dst(padded_dims(out, rank), memory::data_type::f32, plain_tag(rank));
  dnnl::binary::primitive_desc pd({alg, src0, src1, dst}, attr, eng);
  std::map<int, memory> args = {
      {DNNL_ARG_SRC_0, plain_memory(eng, *a, padded_dims(a->shape(), rank))},
      {DNNL_ARG_SRC_1, plain_memory(eng, *b, padded_dims(b->shape(), rank))},
      {DNNL_ARG_DST, plain_memory(eng, y, padded_dims(out, rank))},
      {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())},
  };
  return std::make_unique<PrimitiveKernel>(dnnl::binary(pd), std::move(args));
}

}  // namespace

std::unique_ptr<Kernel> build_add(const ir::Node& n, CompileContext& c) { return build_binary(n, c, dnnl::algorithm::binary_add); }
std::unique_ptr<Kernel> build_sub(const ir::Node& n, CompileContext& c) { return build_binary(n, c, dnnl::algorithm::binary_sub); }
std::unique_ptr<Kernel> build_mul(const ir::Node& n, CompileContext& c) { return build_binary(n, c, dnnl::algorithm::binary_mul); }
std::unique_ptr<Kernel> build_div(const ir::Node& n, CompileContext& c) { return build_binary(n, c, dnnl::algorithm::binary_div); }

}  // namespace pb::layers
