// The tensorflow decoder's recurrent layers (op/recurrent.cpp) on streams recorded from tfjs by
// tests/streams/record_rnn.js: SimpleRNN, LSTM, GRU (reset_after false and true), Bidirectional in
// every merge mode, return_state and initial states, and Python Keras 2 / Keras 3 configs. Each
// Keras fact is checked three ways: the IR weights against the Keras tensors element by element,
// the recorded tfjs outputs against Keras's definition computed here by hand, and the decoded graph
// against the recorded outputs, with the fact deliberately broken failing visibly. Refusals name
// their JSON path.
#include <algorithm>
#include <cmath>
#include <functional>

#include "ladder.h"
#include "planetbridge/network.h"
#include "test_util.h"

using nlohmann::json;
using pb::Shape;
using pb::Tensor;
using pb::ir::Graph;
using pbtest::check_close;
using pbtest::decode;
using pbtest::ErrorAt;
using pbtest::load_doc;
using pbtest::max_diff;
using pbtest::node;
using pbtest::run;
using pbtest::to_stream;

namespace {

const pb::Dialect& tensorflow() { return pbtest::planet(); }

constexpr int64_t N = 3, T = 5, I = 4, H = 3;

double sigmoid(double v) { return 1 / (1 + std::exp(-v)); }

struct KerasLayer {
  std::string cls;  // SimpleRNN, LSTM, GRU
  const Tensor* kernel;     // [in, G·H]
  const Tensor* recurrent;  // [H, G·H]
  const Tensor* bias;       // [G·H], [2, 3H] (GRU reset_after) or null
  bool reset_after = false, backwards = false;
  std::string activation = "tanh";
  const Tensor* h0 = nullptr;  // [N, H]
  const Tensor* c0 = nullptr;
};

struct KerasResult {
  std::vector<double> seq;  // [N, T, H] in processing order, as Keras returns it
  std::vector<double> h, c;  // [N, H]
};

// Keras's cells by hand, straight from the Keras layouts and gate orders (LSTM i, f, c, o; GRU z,
// r, h; kernel [in, G·H]); x [N, T, in].
KerasResult keras_rnn(const KerasLayer& L, const Tensor& x) {
  const int64_t in = L.kernel->shape()[0], g = L.cls == "LSTM" ? 4 : L.cls == "GRU" ? 3 : 1, gh = g * H;
  const float* k = L.kernel->data<float>();
  const float* rk = L.recurrent->data<float>();
  KerasResult r;
  r.seq.assign(size_t(N * T * H), 0.0);
  r.h.assign(size_t(N * H), 0.0);
  r.c.assign(size_t(N * H), 0.0);
  for (int64_t b = 0; b < N; ++b) {
    std::vector<double> h(static_cast<size_t>(H), 0.0), c(static_cast<size_t>(H), 0.0);
    for (int64_t j = 0; j < H; ++j) {
      if (L.h0) h[j] = L.h0->data<float>()[b * H + j];
      if (L.c0) c[j] = L.c0->data<float>()[b * H + j];
    }
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = L.backwards ? T - 1 - s : s;
      std::vector<double> mx(static_cast<size_t>(gh)), mh(static_cast<size_t>(gh));  // x·kernel + b_in, h·recurrent + b_rec
      for (int64_t col = 0; col < gh; ++col) {
        double a = 0, bb = 0;
        if (L.bias) {
          a = L.bias->data<float>()[col];
          if (L.reset_after) bb = L.bias->data<float>()[gh + col];
        }
        for (int64_t i = 0; i < in; ++i) a += double(x.data<float>()[(b * T + t) * in + i]) * k[i * gh + col];
        for (int64_t i = 0; i < H; ++i) bb += h[i] * rk[i * gh + col];
        mx[col] = a;
        mh[col] = bb;
      }
      std::vector<double> next(static_cast<size_t>(H));
      for (int64_t j = 0; j < H; ++j) {
        if (L.cls == "SimpleRNN") {
          const double v = mx[j] + mh[j];
          next[j] = L.activation == "relu" ? std::max(v, 0.0) : std::tanh(v);
        } else if (L.cls == "LSTM") {
          const double i_ = sigmoid(mx[j] + mh[j]), f = sigmoid(mx[H + j] + mh[H + j]);
          const double cc = std::tanh(mx[2 * H + j] + mh[2 * H + j]), o = sigmoid(mx[3 * H + j] + mh[3 * H + j]);
          c[j] = f * c[j] + i_ * cc;
          next[j] = o * std::tanh(c[j]);
        } else {
          const double z = sigmoid(mx[j] + mh[j]);
          double hh;
          if (L.reset_after) {
            hh = std::tanh(mx[2 * H + j] + sigmoid(mx[H + j] + mh[H + j]) * mh[2 * H + j]);
          } else {  // x_h + (r ⊙ h) · recurrent_h
            double a = mx[2 * H + j];
            for (int64_t i = 0; i < H; ++i) a += sigmoid(mx[H + i] + mh[H + i]) * h[i] * rk[i * gh + 2 * H + j];
            hh = std::tanh(a);
          }
          next[j] = z * h[j] + (1 - z) * hh;
        }
      }
      h = next;
      for (int64_t j = 0; j < H; ++j) r.seq[size_t((b * T + s) * H + j)] = h[j];
    }
    for (int64_t j = 0; j < H; ++j) {
      r.h[size_t(b * H + j)] = h[j];
      r.c[size_t(b * H + j)] = c[j];
    }
  }
  return r;
}

// Keras's processing-order sequence flipped back onto the input steps (Bidirectional's backward half).
std::vector<double> flipped(const std::vector<double>& seq) {
  std::vector<double> out(seq.size());
  for (int64_t b = 0; b < N; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < H; ++j) out[size_t((b * T + t) * H + j)] = seq[size_t((b * T + (T - 1 - t)) * H + j)];
  return out;
}

// [rows, H] ++ [rows, H] -> [rows, 2H] (Keras's concat merge).
std::vector<double> concat_last(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> out;
  for (size_t r = 0; r < a.size() / H; ++r) {
    out.insert(out.end(), a.begin() + long(r * H), a.begin() + long((r + 1) * H));
    out.insert(out.end(), b.begin() + long(r * H), b.begin() + long((r + 1) * H));
  }
  return out;
}

std::vector<double> zip(const std::vector<double>& a, const std::vector<double>& b, const std::function<double(double, double)>& f) {
  std::vector<double> out(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = f(a[i], b[i]);
  return out;
}

const Tensor& expected(const pb::Stream& s, size_t i) { return s.tensors.at(s.expected.at(i)); }

// The graph with weight `name` replaced by f(its copy).
Graph with_weight(const Graph& g, const std::string& name, const std::function<void(Tensor&)>& f) {
  Graph out = g;
  Tensor w = g.weights.at(name).clone();
  f(w);
  out.weights[name] = w;
  return out;
}

// Swaps gate blocks a and b (H rows each) of every direction of a [D, G·H, ...] or [D, G·H] weight.
void swap_gates(Tensor& w, int64_t gates, int64_t a, int64_t b) {
  const int64_t d = w.shape()[0], cols = w.shape().size() == 3 ? w.shape()[2] : 1;
  float* p = w.data<float>();
  for (int64_t k = 0; k < d; ++k)
    for (int64_t i = 0; i < H * cols; ++i) std::swap(p[(k * gates * H + a * H) * cols + i], p[(k * gates * H + b * H) * cols + i]);
}

// Checks weight `ir` [D, G·H, cols] is, for direction k, the Keras tensor [cols, G·H] transposed.
void check_transposed(const Tensor& ir, int64_t k, const Tensor& keras) {
  const int64_t gh = ir.shape()[1], cols = ir.shape()[2];
  REQUIRE(keras.shape() == Shape{cols, gh});
  for (int64_t row = 0; row < gh; ++row)
    for (int64_t i = 0; i < cols; ++i) CHECK(ir.data<float>()[(k * gh + row) * cols + i] == keras.data<float>()[i * gh + row]);
}

}  // namespace

// ------------------------------------------------------------------ one direction

TEST_CASE("tensorflow recurrent: LSTM kernels [I, 4H] become W [1, 4H, I], gates i, f, c, o in place", "[tensorflow][recurrent]") {
  const pb::Stream s = to_stream(load_doc("tfjs_recurrent"));
  const Graph g = tensorflow().decode(s);
  const pb::ir::Node& n = node(g, "lstm");  // the node's y is the layer's output: it carries the layer's name
  CHECK(n.op == "LSTM");
  CHECK(n.inputs == std::vector<std::string>{"x", "lstm/kernel@W", "lstm/recurrent_kernel@R", "lstm/bias@B"});
  CHECK(n.outputs == std::vector<std::string>{"lstm", "lstm:h_n", "lstm:c_n"});
  CHECK(n.attrs.s("direction") == "forward");
  CHECK(n.attrs.i("batch_first") == 1);
  CHECK(n.origin == "keras:lstm (LSTM)");
  check_transposed(g.weights.at("lstm/kernel@W"), 0, s.tensors.at("lstm/kernel"));
  check_transposed(g.weights.at("lstm/recurrent_kernel@R"), 0, s.tensors.at("lstm/recurrent_kernel"));
  CHECK(g.weights.at("lstm/bias@B").shape() == Shape{1, 4 * H});
  CHECK(pbtest::values(g.weights.at("lstm/bias@B")) == pbtest::values(s.tensors.at("lstm/bias")));

  // tfjs's output is Keras's definition by hand, and the decoded graph's.
  const Tensor& x = s.tensors.at("input.0");
  const KerasResult want = keras_rnn({"LSTM", &s.tensors.at("lstm/kernel"), &s.tensors.at("lstm/recurrent_kernel"), &s.tensors.at("lstm/bias")}, x);
  check_close(pbtest::doubles(expected(s, 0)), want.seq);
  const std::vector<Tensor> got = run(s, g);
  check_close(got[0], expected(s, 0));

  // Keras's c (candidate) read as the forget gate, or the kernel taken as if already [4H, I]: other numbers.
  Graph fc = g;
  for (const char* w : {"lstm/kernel@W", "lstm/recurrent_kernel@R", "lstm/bias@B"}) fc = with_weight(fc, w, [](Tensor& t) { swap_gates(t, 4, 1, 2); });
  CHECK(max_diff(run(s, fc)[0], expected(s, 0)) > 0.01);
  const Graph raw = with_weight(g, "lstm/kernel@W", [&](Tensor& t) { t = s.tensors.at("lstm/kernel").clone().reshaped({1, 4 * H, I}); });
  CHECK(max_diff(run(s, raw)[0], expected(s, 0)) > 0.01);
}

TEST_CASE("tensorflow recurrent: GRU z, r, h; reset_after false: one bias, linear_before_reset 0; go_backwards flips", "[tensorflow][recurrent]") {
  const pb::Stream s = to_stream(load_doc("tfjs_recurrent"));
  const Graph g = tensorflow().decode(s);
  // go_backwards: the node runs in reverse and Keras's output is its sequence in processing order.
  const pb::ir::Node& n = node(g, "gru_back/rnn");
  CHECK(n.op == "GRU");
  CHECK(n.attrs.s("direction") == "reverse");
  CHECK(n.attrs.i("linear_before_reset") == 0);
  CHECK(n.inputs == std::vector<std::string>{"x", "gru_back/kernel@W", "gru_back/recurrent_kernel@R", "gru_back/bias@B"});
  const pb::ir::Node& flip = node(g, "gru_back");
  CHECK(flip.op == "Slice");
  CHECK(flip.inputs == std::vector<std::string>{"gru_back/rnn"});
  CHECK(flip.attrs.ints("axes") == std::vector<int64_t>{1});
  CHECK(flip.attrs.ints("steps") == std::vector<int64_t>{-1});
  check_transposed(g.weights.at("gru_back/kernel@W"), 0, s.tensors.at("gru_back/kernel"));

  const Tensor& x = s.tensors.at("input.0");
  KerasLayer k{"GRU", &s.tensors.at("gru_back/kernel"), &s.tensors.at("gru_back/recurrent_kernel"), &s.tensors.at("gru_back/bias")};
  k.backwards = true;
  check_close(pbtest::doubles(expected(s, 1)), keras_rnn(k, x).seq);
  const std::vector<Tensor> got = run(s, g);
  check_close(got[1], expected(s, 1));

  // The sequence left aligned with the input (no flip), z and r swapped, or the reset applied after
  // the product: each visibly wrong.
  Graph unflipped = g;
  for (pb::ir::Node& m : unflipped.nodes)
    if (m.name == "gru_back") m.attrs = pbtest::attrs({{"starts", std::vector<int64_t>{0}}, {"ends", std::vector<int64_t>{T}}, {"axes", std::vector<int64_t>{1}}});
  CHECK(max_diff(run(s, unflipped)[1], expected(s, 1)) > 0.01);
  Graph zr = g;
  for (const char* w : {"gru_back/kernel@W", "gru_back/recurrent_kernel@R", "gru_back/bias@B"}) zr = with_weight(zr, w, [](Tensor& t) { swap_gates(t, 3, 0, 1); });
  CHECK(max_diff(run(s, zr)[1], expected(s, 1)) > 0.01);
  Graph lbr = g;
  for (pb::ir::Node& m : lbr.nodes)
    if (m.name == "gru_back/rnn") m.attrs.set("linear_before_reset", int64_t(1));
  CHECK(max_diff(run(s, lbr)[1], expected(s, 1)) > 1e-3);
}

TEST_CASE("tensorflow recurrent: GRU reset_after true: bias [2, 3H] row 0 -> B, row 1 -> RB, linear_before_reset 1", "[tensorflow][recurrent]") {
  const pb::Stream s = to_stream(load_doc("tfjs_recurrent"));
  const Graph g = tensorflow().decode(s);
  const pb::ir::Node& n = node(g, "gru_ra");
  CHECK(n.op == "GRU");
  CHECK(n.attrs.i("linear_before_reset") == 1);
  CHECK(n.inputs == std::vector<std::string>{"x", "gru_ra/kernel@W", "gru_ra/recurrent_kernel@R", "gru_ra/bias@B", "gru_ra/bias@RB"});
  const Tensor& bias = s.tensors.at("gru_ra/bias");
  REQUIRE(bias.shape() == Shape{2, 3 * H});
  const std::vector<float> b = pbtest::values(bias);
  CHECK(pbtest::values(g.weights.at("gru_ra/bias@B")) == std::vector<float>(b.begin(), b.begin() + 3 * H));
  CHECK(pbtest::values(g.weights.at("gru_ra/bias@RB")) == std::vector<float>(b.begin() + 3 * H, b.end()));
  // Both rows matter: no bias row is zero.
  CHECK(std::any_of(b.begin(), b.begin() + 3 * H, [](float v) { return v != 0; }));
  CHECK(std::any_of(b.begin() + 3 * H, b.end(), [](float v) { return v != 0; }));

  const Tensor& x = s.tensors.at("input.0");
  KerasLayer k{"GRU", &s.tensors.at("gru_ra/kernel"), &s.tensors.at("gru_ra/recurrent_kernel"), &bias};
  k.reset_after = true;
  check_close(pbtest::doubles(expected(s, 4)), keras_rnn(k, x).seq);
  check_close(run(s, g)[4], expected(s, 4));

  // The rows swapped, or the reset gate before the recurrent product: other numbers.
  Graph swapped = with_weight(g, "gru_ra/bias@B", [&](Tensor& t) { t = g.weights.at("gru_ra/bias@RB").clone(); });
  swapped = with_weight(swapped, "gru_ra/bias@RB", [&](Tensor& t) { t = g.weights.at("gru_ra/bias@B").clone(); });
  CHECK(max_diff(run(s, swapped)[4], expected(s, 4)) > 1e-3);
  Graph before = g;
  for (pb::ir::Node& m : before.nodes)
    if (m.name == "gru_ra") m.attrs.set("linear_before_reset", int64_t(0));
  CHECK(max_diff(run(s, before)[4], expected(s, 4)) > 1e-3);
}

TEST_CASE("tensorflow recurrent: SimpleRNN relu / tanh, no bias; the last output is the final state", "[tensorflow][recurrent]") {
  const pb::Stream s = to_stream(load_doc("tfjs_recurrent"));
  const Graph g = tensorflow().decode(s);
  CHECK(node(g, "rnn_relu/rnn").op == "RNN");
  CHECK(node(g, "rnn_relu/rnn").attrs.s("activation") == "relu");
  // return_sequences false: Keras's output [N, H] is h_n [1, N, H] flattened.
  CHECK(node(g, "rnn_relu").op == "Flatten");
  CHECK(node(g, "rnn_relu").inputs == std::vector<std::string>{"rnn_relu/rnn:h_n"});
  CHECK(node(g, "rnn_nobias/rnn").attrs.s("activation") == "tanh");
  CHECK(node(g, "rnn_nobias/rnn").attrs.s("direction") == "reverse");
  CHECK(node(g, "rnn_nobias/rnn").inputs == std::vector<std::string>{"x", "rnn_nobias/kernel@W", "rnn_nobias/recurrent_kernel@R"});

  const Tensor& x = s.tensors.at("input.0");
  KerasLayer relu{"SimpleRNN", &s.tensors.at("rnn_relu/kernel"), &s.tensors.at("rnn_relu/recurrent_kernel"), &s.tensors.at("rnn_relu/bias")};
  relu.activation = "relu";
  check_close(pbtest::doubles(expected(s, 2)), keras_rnn(relu, x).h);
  KerasLayer plain{"SimpleRNN", &s.tensors.at("rnn_nobias/kernel"), &s.tensors.at("rnn_nobias/recurrent_kernel"), nullptr};
  plain.backwards = true;
  check_close(pbtest::doubles(expected(s, 3)), keras_rnn(plain, x).h);
  const std::vector<Tensor> got = run(s, g);
  check_close(got[2], expected(s, 2));
  check_close(got[3], expected(s, 3));

  Graph tanh = g;
  for (pb::ir::Node& m : tanh.nodes)
    if (m.name == "rnn_relu/rnn") m.attrs.set("activation", std::string("tanh"));
  CHECK(max_diff(run(s, tanh)[2], expected(s, 2)) > 0.01);
  // Going forwards, the last step is another state.
  Graph forwards = g;
  for (pb::ir::Node& m : forwards.nodes)
    if (m.name == "rnn_nobias/rnn") m.attrs.set("direction", std::string("forward"));
  CHECK(max_diff(run(s, forwards)[3], expected(s, 3)) > 0.01);
}

// ------------------------------------------------------------------ Bidirectional

TEST_CASE("tensorflow recurrent: Bidirectional - both directions' weights, every merge mode", "[tensorflow][recurrent]") {
  const pb::Stream s = to_stream(load_doc("tfjs_bidirectional"));
  const Graph g = tensorflow().decode(s);
  const Tensor& x = s.tensors.at("input.0");
  auto keras = [&](const std::string& layer, const std::string& inner, const std::string& cls, bool reset_after, const std::string& dir) {
    const std::string p = layer + "/" + dir + "_" + inner + "/";
    KerasLayer k{cls, &s.tensors.at(p + "kernel"), &s.tensors.at(p + "recurrent_kernel"), &s.tensors.at(p + "bias")};
    k.reset_after = reset_after;
    k.backwards = dir == "backward";
    return keras_rnn(k, x);
  };

  // concat: one bidirectional node, the weights stacked forward then backward ("<layer>.W", ...).
  const pb::ir::Node& cat = node(g, "bi_lstm");
  CHECK(cat.op == "LSTM");
  CHECK(cat.attrs.s("direction") == "bidirectional");
  CHECK(cat.attrs.s("merge") == "concat");
  CHECK(cat.inputs == std::vector<std::string>{"x", "bi_lstm.W", "bi_lstm.R", "bi_lstm.B"});
  check_transposed(g.weights.at("bi_lstm.W"), 0, s.tensors.at("bi_lstm/forward_lstm/kernel"));
  check_transposed(g.weights.at("bi_lstm.W"), 1, s.tensors.at("bi_lstm/backward_lstm/kernel"));
  check_transposed(g.weights.at("bi_lstm.R"), 1, s.tensors.at("bi_lstm/backward_lstm/recurrent_kernel"));
  const KerasResult lf = keras("bi_lstm", "lstm", "LSTM", false, "forward"), lb = keras("bi_lstm", "lstm", "LSTM", false, "backward");
  check_close(pbtest::doubles(expected(s, 0)), concat_last(lf.seq, flipped(lb.seq)));

  // sum: the IR's merge.
  CHECK(node(g, "bi_gru").attrs.s("merge") == "sum");
  const KerasResult gf = keras("bi_gru", "gru", "GRU", false, "forward"), gb = keras("bi_gru", "gru", "GRU", false, "backward");
  check_close(pbtest::doubles(expected(s, 1)), zip(gf.seq, flipped(gb.seq), std::plus<double>()));
  // ave: the IR's sum, halved.
  CHECK(node(g, "bi_rnn/rnn").attrs.s("merge") == "sum");
  CHECK(node(g, "bi_rnn").op == "Activation");
  CHECK(node(g, "bi_rnn").attrs.s("function") == "linear");
  CHECK(node(g, "bi_rnn").attrs.f("alpha") == 0.5);
  // mul of the last steps: each direction's final h (Keras's last outputs), multiplied.
  CHECK(node(g, "bi_lstm_last").op == "Mul");
  CHECK(node(g, "bi_lstm_last").inputs == std::vector<std::string>{"bi_lstm_last/fwd", "bi_lstm_last/bwd"});
  CHECK(node(g, "bi_lstm_last/fwd").inputs == std::vector<std::string>{"bi_lstm_last/fwd_h_n"});
  CHECK(node(g, "bi_lstm_last/fwd_h_n").attrs.ints("starts") == std::vector<int64_t>{0});
  CHECK(node(g, "bi_lstm_last/bwd_h_n").attrs.ints("starts") == std::vector<int64_t>{1});
  const KerasResult mf = keras("bi_lstm_last", "lstm_last", "LSTM", false, "forward"), mb = keras("bi_lstm_last", "lstm_last", "LSTM", false, "backward");
  check_close(pbtest::doubles(expected(s, 3)), zip(mf.h, mb.h, std::multiplies<double>()));
  // merge_mode null: two outputs, the halves of one concatenating node.
  CHECK(node(g, "bi_gru_ra/rnn").attrs.s("merge") == "concat");
  CHECK(node(g, "bi_gru_ra").attrs.ints("ends") == std::vector<int64_t>{H});
  CHECK(node(g, "bi_gru_ra:1").attrs.ints("starts") == std::vector<int64_t>{H});
  const KerasResult nf = keras("bi_gru_ra", "gru_ra", "GRU", true, "forward"), nb = keras("bi_gru_ra", "gru_ra", "GRU", true, "backward");
  check_close(pbtest::doubles(expected(s, 4)), nf.seq);
  check_close(pbtest::doubles(expected(s, 5)), flipped(nb.seq));
  CHECK(g.outputs == std::vector<std::string>{"bi_lstm", "bi_gru", "bi_rnn", "bi_lstm_last", "bi_gru_ra", "bi_gru_ra:1", "bi_gru_last"});
  pbtest::check_outputs(s, g);
  // Taps by layer name, and the second output by "<layer>:1".
  CHECK(s.taps.count("bi_gru_ra:1") == 1);
  pbtest::check_passes(pbtest::ladder(s, tensorflow()), s);

  // The directions' weights the other way round: visibly wrong (the capture draws them apart: tfjs
  // would start both from the same seeded initialiser).
  CHECK(max_diff(s.tensors.at("bi_lstm/forward_lstm/kernel"), s.tensors.at("bi_lstm/backward_lstm/kernel")) > 0.1);
  Graph swapped = g;
  for (const char* w : {"bi_lstm.W", "bi_lstm.R", "bi_lstm.B"})
    swapped = with_weight(swapped, w, [](Tensor& t) {
      const int64_t half = t.numel() / 2;
      std::swap_ranges(t.data<float>(), t.data<float>() + half, t.data<float>() + half);
    });
  CHECK(max_diff(run(s, swapped)[0], expected(s, 0)) > 0.01);
}

// ------------------------------------------------------------------ states

TEST_CASE("tensorflow recurrent: return_state outputs and initial states as inputs, by tensor index", "[tensorflow][recurrent]") {
  const pb::Stream s = to_stream(load_doc("tfjs_rnn_states"));
  const Graph g = tensorflow().decode(s);
  REQUIRE(g.inputs.size() == 5);
  CHECK(g.inputs[1].name == "h0");
  CHECK(g.inputs[1].shape == Shape{-1, H});  // Keras's [N, H] per state
  // [N, H] -> the IR's [1, N, H]; a Bidirectional's two directions stacked [2, N, H].
  const pb::ir::Node& n = node(g, "lstm");
  // (the LSTM has no recurrent bias: an empty optional input)
  CHECK(n.inputs == std::vector<std::string>{"x", "lstm/kernel@W", "lstm/recurrent_kernel@R", "lstm/bias@B", "", "lstm/h0", "lstm/c0"});
  CHECK(node(g, "lstm/h0").op == "Reshape");
  CHECK(node(g, "lstm/h0").inputs == std::vector<std::string>{"h0"});
  CHECK(node(g, "lstm/c0").inputs == std::vector<std::string>{"c0"});
  CHECK(node(g, "bi_gru/h0").op == "Concat");
  CHECK(node(g, "bi_gru/h0").inputs == std::vector<std::string>{"bi_gru/h0_fwd", "bi_gru/h0_bwd"});
  CHECK(node(g, "bi_gru/h0_fwd").inputs == std::vector<std::string>{"fwd_h0"});
  // The outputs Keras refers to by [layer, 0, i]: "<layer>:i".
  CHECK(g.outputs == std::vector<std::string>{"lstm", "lstm:1", "lstm:2", "lstm_last", "lstm_last:1", "lstm_last:2", "bi_gru", "bi_gru:1", "bi_gru:2"});
  CHECK(node(g, "lstm:2").inputs == std::vector<std::string>{"lstm:c_n"});
  CHECK(node(g, "bi_gru:2").inputs == std::vector<std::string>{"bi_gru/bwd_h_n"});

  const Tensor& x = s.tensors.at("input.0");
  KerasLayer k{"LSTM", &s.tensors.at("lstm/kernel"), &s.tensors.at("lstm/recurrent_kernel"), &s.tensors.at("lstm/bias")};
  k.h0 = &s.tensors.at("input.1");
  k.c0 = &s.tensors.at("input.2");
  const KerasResult want = keras_rnn(k, x);
  check_close(pbtest::doubles(expected(s, 0)), want.seq);
  check_close(pbtest::doubles(expected(s, 1)), want.h);
  check_close(pbtest::doubles(expected(s, 2)), want.c);
  // Keras's last output is its h: the same values, two outputs.
  CHECK(pbtest::values(expected(s, 3)) == pbtest::values(expected(s, 4)));
  pbtest::check_outputs(s, g);
  pbtest::check_passes(pbtest::ladder(s, tensorflow()), s);

  // h0 and c0 the other way round, or the states ignored (zeros): visibly wrong.
  Graph swapped = g;
  for (pb::ir::Node& m : swapped.nodes) {
    if (m.name == "lstm/h0") m.inputs = {"c0"};
    if (m.name == "lstm/c0") m.inputs = {"h0"};
  }
  CHECK(max_diff(run(s, swapped)[0], expected(s, 0)) > 0.01);
  Graph zeros = g;
  for (pb::ir::Node& m : zeros.nodes)
    if (m.name == "bi_gru/rnn") m.inputs.resize(4);
  CHECK(max_diff(run(s, zeros)[6], expected(s, 6)) > 0.01);
}

// ------------------------------------------------------------------ Python Keras

TEST_CASE("tensorflow recurrent: Python Keras 2 and Keras 3 configs of an LSTM and a GRU", "[tensorflow][recurrent]") {
  const pb::Stream k2 = to_stream(load_doc("keras2_rnn"));
  const Graph g2 = tensorflow().decode(k2);
  CHECK(node(g2, "lstm").op == "LSTM");
  CHECK(node(g2, "gru/rnn").attrs.i("linear_before_reset") == 1);  // Keras 2's default reset_after
  CHECK(node(g2, "gru/rnn").inputs[0] == "lstm");
  CHECK(node(g2, "gru").inputs == std::vector<std::string>{"gru/rnn:h_n"});
  pbtest::check_passes(pbtest::ladder(k2, tensorflow()), k2);

  // Keras 3: initial_state as a call keyword argument, a Bidirectional with its backward_layer,
  // merge_mode sum, outputs [bidirectional, lstm's h, lstm's c].
  const pb::Stream k3 = to_stream(load_doc("keras3_rnn"));
  const Graph g3 = tensorflow().decode(k3);
  CHECK(node(g3, "lstm").inputs == std::vector<std::string>{"x", "lstm/kernel@W", "lstm/recurrent_kernel@R", "lstm/bias@B", "", "lstm/h0", "lstm/c0"});
  CHECK(node(g3, "lstm/h0").inputs == std::vector<std::string>{"h0"});
  const pb::ir::Node& bi = node(g3, "bidirectional/rnn");
  CHECK(bi.op == "GRU");
  CHECK(bi.attrs.s("direction") == "bidirectional");
  CHECK(bi.attrs.i("linear_before_reset") == 1);
  CHECK(node(g3, "bidirectional").op == "Add");
  check_transposed(g3.weights.at("bidirectional.W"), 1, k3.tensors.at("bidirectional/backward_gru/kernel"));
  CHECK(g3.outputs == std::vector<std::string>{"bidirectional", "lstm:1", "lstm:2"});
  pbtest::check_passes(pbtest::ladder(k3, tensorflow()), k3);
}

TEST_CASE("tensorflow recurrent: source types", "[tensorflow][recurrent]") {
  const std::vector<std::string> types = tensorflow().source_types();
  for (const char* t : {"SimpleRNN", "LSTM", "GRU", "Bidirectional"}) CHECK(std::find(types.begin(), types.end(), t) != types.end());
}

TEST_CASE("tensorflow recurrent: every recorded recurrent stream passes the ladder, taps lined up", "[tensorflow][recurrent]") {
  for (const char* name : {"tfjs_recurrent", "tfjs_bidirectional", "tfjs_rnn_states", "keras2_rnn", "keras3_rnn"}) {
    INFO(name);
    const pb::Stream s = to_stream(load_doc(name));
    pbtest::check_passes(pbtest::ladder(s, tensorflow()), s);
  }
}

// ------------------------------------------------------------------ refusals

namespace {

json& layer_config(json& doc, const std::string& name) {
  for (json& l : doc["model"]["topology"]["config"]["layers"])
    if (l["name"] == name) return l["config"];
  throw std::runtime_error("no layer " + name);
}

size_t layer_index(const json& doc, const std::string& name) {
  const json& layers = doc["model"]["topology"]["config"]["layers"];
  for (size_t i = 0; i < layers.size(); ++i)
    if (layers[i]["name"] == name) return i;
  throw std::runtime_error("no layer " + name);
}

std::string config_path(const json& doc, const std::string& name) {
  return "model.topology.config.layers[" + std::to_string(layer_index(doc, name)) + "].config";
}

}  // namespace

TEST_CASE("tensorflow recurrent: what cannot be computed is refused, naming its path", "[tensorflow][recurrent]") {
  const json base = load_doc("tfjs_recurrent");
  auto with = [&](const std::string& layer, const std::string& key, const json& value) {
    json doc = base;
    layer_config(doc, layer)[key] = value;
    return doc;
  };
  const std::string lstm = config_path(base, "lstm"), gru = config_path(base, "gru_back"), rnn = config_path(base, "rnn_relu");

  // tfjs's default recurrent activation: oneDNN's cells compute sigmoid gates only.
  CHECK_THROWS_MATCHES(decode(with("lstm", "recurrent_activation", "hardSigmoid")), pb::Error,
                       ErrorAt(lstm + ".recurrent_activation", "recurrent_activation \"hardSigmoid\" is not supported"));
  CHECK_THROWS_MATCHES(decode(with("gru_back", "recurrent_activation", "hard_sigmoid")), pb::Error,
                       ErrorAt(gru + ".recurrent_activation", "set recurrentActivation 'sigmoid'"));
  CHECK_THROWS_MATCHES(decode(with("lstm", "recurrent_activation", "tanh")), pb::Error,
                       ErrorAt(lstm + ".recurrent_activation", "(only sigmoid)"));
  CHECK_THROWS_MATCHES(decode(with("lstm", "activation", "relu")), pb::Error, ErrorAt(lstm + ".activation", "not supported by LSTM (tanh only"));
  CHECK_THROWS_MATCHES(decode(with("rnn_relu", "activation", "sigmoid")), pb::Error,
                       ErrorAt(rnn + ".activation", "not supported by SimpleRNN (tanh or relu"));
  CHECK_THROWS_MATCHES(decode(with("lstm", "stateful", true)), pb::Error, ErrorAt(lstm + ".stateful", "stateful true is not supported"));
  CHECK_THROWS_MATCHES(decode(with("lstm", "time_major", true)), pb::Error, ErrorAt(lstm + ".time_major", "time_major true is not supported"));
  CHECK_THROWS_MATCHES(decode(with("lstm", "return_sequence", true)), pb::Error,
                       ErrorAt(lstm + ".return_sequence", "attribute not understood for LSTM"));
  // reset_after is never guessed (Keras's default is true, tfjs's false), and the bias must fit it.
  json doc = base;
  layer_config(doc, "gru_back").erase("reset_after");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(gru + ".reset_after", "missing required field"));
  CHECK_THROWS_MATCHES(decode(with("gru_back", "reset_after", true)), pb::Error,
                       ErrorAt("model.weights.gru_back.bias", "expected a float bias of shape [2, 3·units] (reset_after: input bias, recurrent bias) = [2, 9]"));
  CHECK_THROWS_MATCHES(decode(with("gru_ra", "reset_after", false)), pb::Error,
                       ErrorAt("model.weights.gru_ra.bias", "expected a float bias of shape [gates·units] = [9]"));
  CHECK_THROWS_MATCHES(decode(with("lstm", "use_bias", false)), pb::Error, ErrorAt("model.weights.lstm.bias", "weight \"bias\" is not used by LSTM"));
  CHECK_THROWS_MATCHES(decode(with("lstm", "units", 4)), pb::Error,
                       ErrorAt("model.weights.lstm.kernel", "expected a float kernel of shape [input, gates·units] = [4, 16]"));
  // Dropout is informational (predict() applies none); unroll too.
  CHECK_NOTHROW(decode(with("lstm", "dropout", 0.5)));
  CHECK_NOTHROW(decode(with("lstm", "unroll", true)));

  // A sequence that is not [batch, steps, features].
  doc = load_doc("keras2_rnn");
  doc["model"]["topology"]["config"]["layers"][0]["config"]["batch_input_shape"] = {nullptr, 20};
  doc["tensors"]["input.0"] = {{"dtype", "f32"}, {"shape", {1, 20}}, {"data", std::vector<float>(20, 0.f)}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[1]", "LSTM \"lstm\" needs a float input [batch, steps, features], got f32 [1, 20]"));
}

TEST_CASE("tensorflow recurrent: Bidirectional refusals name their path", "[tensorflow][recurrent]") {
  const json base = load_doc("tfjs_bidirectional");
  const std::string bi = config_path(base, "bi_lstm");
  auto with = [&](const std::function<void(json&)>& f) {
    json doc = base;
    f(layer_config(doc, "bi_lstm"));
    return doc;
  };
  CHECK_THROWS_MATCHES(decode(with([](json& c) { c["merge_mode"] = "max"; })), pb::Error,
                       ErrorAt(bi + ".merge_mode", "expected merge_mode \"concat\", \"sum\", \"ave\", \"mul\" or null, got \"max\""));
  CHECK_THROWS_MATCHES(decode(with([](json& c) { c.erase("merge_mode"); })), pb::Error, ErrorAt(bi + ".merge_mode", "missing required field"));
  CHECK_THROWS_MATCHES(decode(with([](json& c) { c["layer"]["class_name"] = "Conv1D"; })), pb::Error,
                       ErrorAt(bi + ".layer.class_name", "Bidirectional over \"Conv1D\" is not supported"));
  CHECK_THROWS_MATCHES(decode(with([](json& c) { c["layer"]["config"]["go_backwards"] = true; })), pb::Error,
                       ErrorAt(bi + ".layer.config.go_backwards", "a Bidirectional over a go_backwards layer is not supported"));
  CHECK_THROWS_MATCHES(decode(with([](json& c) { c["layer"]["config"]["recurrent_activation"] = "hardSigmoid"; })), pb::Error,
                       ErrorAt(bi + ".layer.config.recurrent_activation", "is not supported"));
  CHECK_THROWS_MATCHES(decode(with([](json& c) { c["layer"]["config"]["kernel_quantizer"] = "int8"; })), pb::Error,
                       ErrorAt(bi + ".layer.config.kernel_quantizer", "attribute not understood for LSTM"));
  CHECK_THROWS_MATCHES(decode(with([](json& c) { c["layer"]["config"]["dtype"] = "float64"; })), pb::Error,
                       ErrorAt(bi + ".layer.config.dtype", "only float32 is supported"));
  CHECK_THROWS_MATCHES(decode(with([](json& c) { c["layer"]["config"]["stateful"] = true; })), pb::Error,
                       ErrorAt(bi + ".layer.config.stateful", "stateful true is not supported"));
  CHECK_THROWS_MATCHES(decode(with([](json& c) { c["num_constants"] = 1; })), pb::Error,
                       ErrorAt(bi + ".num_constants", "attribute not understood for Bidirectional"));
  // A weight of one direction missing.
  json doc = base;
  doc["model"]["weights"]["bi_lstm"].erase("backward_lstm/kernel");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.weights.bi_lstm", "has no \"backward_lstm/kernel\" weight"));

  // Keras 3's backward_layer: the same layer but for its name and go_backwards.
  const json k3 = load_doc("keras3_rnn");
  const std::string k3bi = config_path(k3, "bidirectional");
  auto k3with = [&](const std::function<void(json&)>& f) {
    json d = k3;
    f(layer_config(d, "bidirectional"));
    return d;
  };
  CHECK_THROWS_MATCHES(decode(k3with([](json& c) { c["backward_layer"]["config"]["units"] = 4; })), pb::Error,
                       ErrorAt(k3bi + ".backward_layer.config.units", "a backward layer unlike the forward one is not supported"));
  CHECK_THROWS_MATCHES(decode(k3with([](json& c) { c["backward_layer"]["config"]["go_backwards"] = false; })), pb::Error,
                       ErrorAt(k3bi + ".backward_layer.config.go_backwards", "the backward_layer must have go_backwards true"));
  CHECK_THROWS_MATCHES(decode(k3with([](json& c) { c["backward_layer"]["class_name"] = "LSTM"; })), pb::Error,
                       ErrorAt(k3bi + ".backward_layer.class_name", "backward_layer is a LSTM, the layer a GRU"));
  CHECK_THROWS_MATCHES(decode(k3with([](json& c) { c["backward_layer"]["config"].erase("dropout"); })), pb::Error,
                       ErrorAt(k3bi + ".backward_layer.config", "has no \"dropout\""));
  // Without backward_layer, the weights are looked up under "backward_" + the layer's name.
  CHECK_NOTHROW(decode(k3with([](json& c) { c.erase("backward_layer"); })));
  // Keras 2 names both copies by prefixing their own names (the layer's config is the original,
  // "gru"; a given backward layer "gru_back" becomes "backward_gru_back"); Keras 3 keeps them.
  json k2 = k3with([](json& c) {
    c["layer"]["config"]["name"] = "gru";
    c["backward_layer"]["config"]["name"] = "gru_back";
  });
  k2["model"]["topology"]["keras_version"] = "2.15.0";
  json& table = k2["model"]["weights"]["bidirectional"];
  for (const char* w : {"kernel", "recurrent_kernel", "bias"}) {
    table[std::string("backward_gru_back/") + w] = table[std::string("backward_gru/") + w];
    table.erase(std::string("backward_gru/") + w);
  }
  CHECK_NOTHROW(decode(k2));
  k2["model"]["topology"]["keras_version"] = "3.3.3";
  CHECK_THROWS_MATCHES(decode(k2), pb::Error, ErrorAt("model.weights.bidirectional", "has no \"gru_back/kernel\" weight"));
}

TEST_CASE("tensorflow recurrent: layer outputs and state inputs are checked, naming their path", "[tensorflow][recurrent]") {
  json doc = load_doc("tfjs_rnn_states");
  // Output 3 of an LSTM with three.
  doc["model"]["topology"]["config"]["output_layers"][2][2] = 3;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.output_layers[2]", "tensor index 3: layer \"lstm\" has 3 outputs"));
  doc = load_doc("tfjs_rnn_states");
  const size_t lstm = layer_index(doc, "lstm");
  doc["model"]["topology"]["config"]["layers"][lstm]["inbound_nodes"][0].erase(2);  // only h0
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[" + std::to_string(lstm) + "]",
                               "LSTM \"lstm\" takes the sequence and, optionally, its 2 initial state(s); got 2 inputs"));
  doc = load_doc("tfjs_rnn_states");
  doc["model"]["topology"]["config"]["layers"][lstm]["inbound_nodes"][0][2][0] = "x";  // a sequence as c0
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[" + std::to_string(lstm) + "]",
                               "initial state 1 of LSTM \"lstm\" must be a float [batch, units] = [3, 3], got f32 [3, 5, 4]"));

  // Keras 3: initial_state is the only call keyword argument a recurrent layer may have.
  json k3 = load_doc("keras3_rnn");
  const size_t k3lstm = layer_index(k3, "lstm");
  const std::string nodes = "model.topology.config.layers[" + std::to_string(k3lstm) + "].inbound_nodes[0]";
  k3["model"]["topology"]["config"]["layers"][k3lstm]["inbound_nodes"][0]["kwargs"]["training"] = true;
  CHECK_THROWS_MATCHES(decode(k3), pb::Error, ErrorAt(nodes + ".kwargs.training", "call keyword argument \"training\" is not supported"));
  k3 = load_doc("keras3_rnn");
  k3["model"]["topology"]["config"]["layers"][k3lstm]["inbound_nodes"][0]["kwargs"]["initial_state"][1] = 5;
  CHECK_THROWS_MATCHES(decode(k3), pb::Error, ErrorAt(nodes + ".kwargs.initial_state[1]", "expected a keras tensor"));
  // ... and only a recurrent layer takes initial states.
  json k3d = load_doc("keras3_functional");
  k3d["model"]["topology"]["config"]["layers"][1]["inbound_nodes"][0]["kwargs"]["initial_state"] =
      k3d["model"]["topology"]["config"]["layers"][1]["inbound_nodes"][0]["args"];
  CHECK_THROWS_MATCHES(decode(k3d), pb::Error,
                       ErrorAt("model.topology.config.layers[1].inbound_nodes[0].kwargs.initial_state", "call keyword argument \"initial_state\""));

  // A Sequential model's layers have one output.
  json rs = load_doc("keras2_rnn");
  json& k2layers = rs["model"]["topology"]["config"]["layers"];
  k2layers[1]["config"]["return_state"] = true;
  json sequential = {{"class_name", "Sequential"}, {"config", {{"name", "seq"}, {"layers", k2layers}}}, {"keras_version", "2.15.0"}};
  rs["model"]["topology"] = sequential;
  CHECK_THROWS_MATCHES(decode(rs), pb::Error,
                       ErrorAt("model.topology.config.layers[1]", "layer \"lstm\" has several outputs (return_state?): a Sequential model's layers have one"));
}
