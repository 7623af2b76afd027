// RNN, LSTM, GRU: one layer, one or two directions, on oneDNN's vanilla_rnn, lstm, gru and
// lbr_gru primitives. The IR's weights ([D, G·H, I], gates stacked in oneDNN's own order) are
// oneDNN's ldgoi layout as they are: reordered once, at compile time, into the primitive's
// packed layout. Biases B and RB are summed once; linear_before_reset keeps the n gate's two
// apart, as lbr_gru wants (G + 1 bias rows). batch_first is oneDNN's ntc layout: no transposes.
#include "kernel.h"

namespace pb::layers {

namespace {

enum class Cell { rnn, lstm, gru };

dnnl::rnn_direction direction_of(const ir::Node& node) {
  const std::string d = node.attrs.s("direction");
  if (d == "forward") return dnnl::rnn_direction::unidirectional_left2right;
  if (d == "reverse") return dnnl::rnn_direction::unidirectional_right2left;
  return node.attrs.s("merge") == "sum" ? dnnl::rnn_direction::bidirectional_sum : dnnl::rnn_direction::bidirectional_concat;
}

// The bias oneDNN reads, [1, D, rows, H] in memory it owns: B + RB per gate, or for
// linear_before_reset the gates z, r summed and the n gate's input and recurrent parts apart
// (rows G + 1).
dnnl::memory bias_of(const ir::Node& node, CompileContext& ctx, int64_t d, int64_t gates, int64_t h, bool lbr) {
  const int64_t rows = lbr ? gates + 1 : gates;
  dnnl::memory bias({{1, d, rows, h}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ldgo}, ctx.engine());
  float* out = static_cast<float*>(bias.get_data_handle());
  const float* b = has_input(node, 3) ? ctx.weight(node_input(node, 3), "B").data<float>() : nullptr;
  const float* rb = has_input(node, 4) ? ctx.weight(node_input(node, 4), "RB").data<float>() : nullptr;
  for (int64_t dir = 0; dir < d; ++dir)
    for (int64_t g = 0; g < gates; ++g)
      for (int64_t i = 0; i < h; ++i) {
        const int64_t src = (dir * gates + g) * h + i;
        const float bx = b ? b[src] : 0.f, bh = rb ? rb[src] : 0.f;
        if (lbr && g == gates - 1) {
          out[(dir * rows + g) * h + i] = bx;
          out[(dir * rows + g + 1) * h + i] = bh;
        } else {
          out[(dir * rows + g) * h + i] = bx + bh;
        }
      }
  return bias;
}

std::unique_ptr<Kernel> build_recurrent(const ir::Node& node, CompileContext& ctx, Cell cell) {
  using dnnl::memory;
  using tag = memory::format_tag;
  const auto f32 = memory::data_type::f32;
  const Tensor& x = ctx.value(node_input(node, 0));
  const Tensor& w = ctx.weight(node_input(node, 1), "W");
  const Tensor& r = ctx.weight(node_input(node, 2), "R");
  const bool batch_first = node.attrs.i("batch_first") != 0;
  const bool lbr = cell == Cell::gru && node.attrs.i("linear_before_reset") != 0;
  const int64_t d = w.shape()[0], h = r.shape()[2], in = w.shape()[2], gates = w.shape()[1] / h;
  const int64_t t = batch_first ? x.shape()[1] : x.shape()[0], n = batch_first ? x.shape()[0] : x.shape()[1];
  const int64_t features = ctx.output_shape(0)[2];
  const tag seq = batch_first ? tag::ntc : tag::tnc;

  const auto& eng = ctx.engine();
  const memory::desc src_md({t, n, in}, f32, seq), dst_md({t, n, features}, f32, seq);
  const memory::desc state_md({1, d, n, h}, f32, tag::ldnc);
  const memory::desc w_any({1, d, in, gates, h}, f32, tag::any), r_any({1, d, h, gates, h}, f32, tag::any);
  const memory bias = bias_of(node, ctx, d, gates, h, lbr);
  const memory::desc bias_md = bias.get_desc();
  const bool has_h0 = has_input(node, 5), has_c0 = cell == Cell::lstm && has_input(node, 6);
  const memory::desc h0_md = has_h0 ? state_md : memory::desc(), c0_md = has_c0 ? state_md : memory::desc();
  const auto prop = dnnl::prop_kind::forward_inference;
  const dnnl::rnn_direction dir = direction_of(node);

  // One primitive per cell; each gives the packed weight layouts it wants.
  dnnl::primitive prim;
  memory::desc packed_w, packed_r, scratch;
  const dnnl::primitive_attr attr = ctx.primitive_attr();
  if (cell == Cell::lstm) {
    dnnl::lstm_forward::primitive_desc pd({prop, dir, src_md, h0_md, c0_md, w_any, r_any, bias_md, dst_md, state_md, state_md}, attr, eng);
    packed_w = pd.weights_layer_desc(), packed_r = pd.weights_iter_desc(), scratch = pd.scratchpad_desc();
    prim = dnnl::lstm_forward(pd);
  } else if (cell == Cell::gru && lbr) {
    dnnl::lbr_gru_forward::primitive_desc pd({prop, dir, src_md, h0_md, w_any, r_any, bias_md, dst_md, state_md}, attr, eng);
    packed_w = pd.weights_layer_desc(), packed_r = pd.weights_iter_desc(), scratch = pd.scratchpad_desc();
    prim = dnnl::lbr_gru_forward(pd);
  } else if (cell == Cell::gru) {
    dnnl::gru_forward::primitive_desc pd({prop, dir, src_md, h0_md, w_any, r_any, bias_md, dst_md, state_md}, attr, eng);
    packed_w = pd.weights_layer_desc(), packed_r = pd.weights_iter_desc(), scratch = pd.scratchpad_desc();
    prim = dnnl::gru_forward(pd);
  } else {
    const auto act = node.attrs.s("activation") == "relu" ? dnnl::algorithm::eltwise_relu : dnnl::algorithm::eltwise_tanh;
    dnnl::vanilla_rnn_forward::primitive_desc pd({prop, act, dir, src_md, h0_md, w_any, r_any, bias_md, dst_md, state_md}, attr, eng);
    packed_w = pd.weights_layer_desc(), packed_r = pd.weights_iter_desc(), scratch = pd.scratchpad_desc();
    prim = dnnl::vanilla_rnn_forward(pd);
  }

  std::map<int, memory> args;
  args[DNNL_ARG_SRC_LAYER] = memory(src_md, eng, const_cast<void*>(x.raw()));
  args[DNNL_ARG_WEIGHTS_LAYER] = packed_weights(eng, memory({{1, d, in, gates, h}, f32, tag::ldgoi}, eng, const_cast<void*>(w.raw())), packed_w);
  args[DNNL_ARG_WEIGHTS_ITER] = packed_weights(eng, memory({{1, d, h, gates, h}, f32, tag::ldgoi}, eng, const_cast<void*>(r.raw())), packed_r);
  args[DNNL_ARG_BIAS] = bias;
  if (has_h0) args[DNNL_ARG_SRC_ITER] = memory(state_md, eng, const_cast<void*>(ctx.value(node_input(node, 5)).raw()));
  if (has_c0) args[DNNL_ARG_SRC_ITER_C] = memory(state_md, eng, const_cast<void*>(ctx.value(node_input(node, 6)).raw()));
  args[DNNL_ARG_DST_LAYER] = memory(dst_md, eng, ctx.define_output(node, 0).raw());
  args[DNNL_ARG_DST_ITER] = memory(state_md, eng, ctx.define_output(node, 1).raw());
  if (cell == Cell::lstm) args[DNNL_ARG_DST_ITER_C] = memory(state_md, eng, ctx.define_output(node, 2).raw());
  args[DNNL_ARG_SCRATCHPAD] = ctx.scratchpad(scratch);
  return std::make_unique<PrimitiveKernel>(prim, std::move(args));
}

}  // namespace

std::unique_ptr<Kernel> build_rnn(const ir::Node& n, CompileContext& c) { return build_recurrent(n, c, Cell::rnn); }
std::unique_ptr<Kernel> build_lstm(const ir::Node& n, CompileContext& c) { return build_recurrent(n, c, Cell::lstm); }
std::unique_ptr<Kernel> build_gru(const ir::Node& n, CompileContext& c) { return build_recurrent(n, c, Cell::gru); }

}  // namespace pb::layers
