// RNN, LSTM and GRU kernels against a plain double-precision reference of the IR's definitions
// (docs/ir.md): every direction, merge mode, layout and optional state; and Slice.
#include <cmath>
#include <functional>

#include "planetbridge/network.h"
#include "test_util.h"

using pb::Shape;
using pb::Tensor;
using pbtest::ErrorAt;
using pbtest::make_node;

namespace {

struct Case {
  std::string op;  // RNN, LSTM, GRU
  int64_t t = 5, n = 3, in = 4, h = 6;
  std::string direction = "forward", merge = "concat", activation = "tanh";
  bool batch_first = false, lbr = false, biases = true, states = true;
};

int64_t gates_of(const std::string& op) { return op == "LSTM" ? 4 : op == "GRU" ? 3 : 1; }
double sigmoid(double v) { return 1 / (1 + std::exp(-v)); }

struct Result {
  std::vector<double> y, h_n, c_n;
};

// The reference: x, W, R, B, RB, h0, c0 as the IR lays them out.
Result reference(const Case& c, const std::map<std::string, Tensor>& t) {
  const int64_t d_count = c.direction == "bidirectional" ? 2 : 1, g = gates_of(c.op), h = c.h;
  auto at = [&](const std::string& name, int64_t i) { return double(t.at(name).data<float>()[i]); };
  auto x_at = [&](int64_t step, int64_t b, int64_t i) {
    return at("x", c.batch_first ? (b * c.t + step) * c.in + i : (step * c.n + b) * c.in + i);
  };
  const int64_t features = c.merge == "sum" ? h : d_count * h;
  Result r{std::vector<double>(size_t(c.t * c.n * features), 0.0), {}, {}};
  for (int64_t dir = 0; dir < d_count; ++dir) {
    const bool backwards = c.direction == "reverse" || dir == 1;
    for (int64_t b = 0; b < c.n; ++b) {
      std::vector<double> hs(size_t(h), 0.0), cs(size_t(h), 0.0);
      if (c.states)
        for (int64_t i = 0; i < h; ++i) {
          hs[i] = at("h0", (dir * c.n + b) * h + i);
          if (c.op == "LSTM") cs[i] = at("c0", (dir * c.n + b) * h + i);
        }
      for (int64_t k = 0; k < c.t; ++k) {
        const int64_t step = backwards ? c.t - 1 - k : k;
        // wx[gate row] = W x + B, rh[row] = R h + RB, per gate row (g·H rows).
        std::vector<double> wx(size_t(g * h)), rh(size_t(g * h));
        for (int64_t row = 0; row < g * h; ++row) {
          double a = c.biases ? at("B", dir * g * h + row) : 0, bb = c.biases ? at("RB", dir * g * h + row) : 0;
          for (int64_t i = 0; i < c.in; ++i) a += at("W", (dir * g * h + row) * c.in + i) * x_at(step, b, i);
          for (int64_t i = 0; i < h; ++i) bb += at("R", (dir * g * h + row) * h + i) * hs[i];
          wx[row] = a;
          rh[row] = bb;
        }
        std::vector<double> next(static_cast<size_t>(h), 0.0);
        for (int64_t i = 0; i < h; ++i) {
          if (c.op == "RNN") {
            const double v = wx[i] + rh[i];
            next[i] = c.activation == "relu" ? std::max(0.0, v) : std::tanh(v);
          } else if (c.op == "LSTM") {
            const double ig = sigmoid(wx[i] + rh[i]), fg = sigmoid(wx[h + i] + rh[h + i]);
            const double gg = std::tanh(wx[2 * h + i] + rh[2 * h + i]), og = sigmoid(wx[3 * h + i] + rh[3 * h + i]);
            cs[i] = fg * cs[i] + ig * gg;
            next[i] = og * std::tanh(cs[i]);
          } else {
            const double z = sigmoid(wx[i] + rh[i]), rg = sigmoid(wx[h + i] + rh[h + i]);
            double n_in;
            if (c.lbr) {
              n_in = wx[2 * h + i] + rg * rh[2 * h + i];
            } else {  // R_n (r ⊙ h) + RB_n
              n_in = wx[2 * h + i] + (c.biases ? at("RB", dir * g * h + 2 * h + i) : 0);
              for (int64_t j = 0; j < h; ++j)
                n_in += at("R", (dir * g * h + 2 * h + i) * h + j) * sigmoid(wx[h + j] + rh[h + j]) * hs[j];
            }
            const double nn = std::tanh(n_in);
            next[i] = (1 - z) * nn + z * hs[i];
          }
        }
        hs = next;
        for (int64_t i = 0; i < h; ++i) {
          const int64_t col = c.merge == "sum" ? i : dir * h + i;
          const int64_t pos = c.batch_first ? (b * c.t + step) * features + col : (step * c.n + b) * features + col;
          r.y[pos] += hs[i];
        }
      }
      for (int64_t i = 0; i < h; ++i) {
        r.h_n.resize(size_t(d_count * c.n * h));
        r.h_n[(dir * c.n + b) * h + i] = hs[i];
        if (c.op == "LSTM") {
          r.c_n.resize(size_t(d_count * c.n * h));
          r.c_n[(dir * c.n + b) * h + i] = cs[i];
        }
      }
    }
  }
  return r;
}

void check_case(const Case& c) {
  INFO(c.op << " " << c.direction << " merge " << c.merge << " batch_first " << c.batch_first << " lbr " << c.lbr << " biases "
            << c.biases << " states " << c.states << " " << c.activation);
  std::mt19937 rng(11);
  const int64_t d = c.direction == "bidirectional" ? 2 : 1, g = gates_of(c.op);
  std::map<std::string, Tensor> t = {
      {"x", pbtest::random_tensor(c.batch_first ? Shape{c.n, c.t, c.in} : Shape{c.t, c.n, c.in}, rng)},
      {"W", pbtest::random_tensor({d, g * c.h, c.in}, rng, -0.5f, 0.5f)},
      {"R", pbtest::random_tensor({d, g * c.h, c.h}, rng, -0.5f, 0.5f)},
      {"B", pbtest::random_tensor({d, g * c.h}, rng, -0.5f, 0.5f)},
      {"RB", pbtest::random_tensor({d, g * c.h}, rng, -0.5f, 0.5f)},
      {"h0", pbtest::random_tensor({d, c.n, c.h}, rng)},
      {"c0", pbtest::random_tensor({d, c.n, c.h}, rng)},
  };
  pb::ir::Graph graph;
  graph.inputs.push_back({"x", pb::DType::f32, t.at("x").shape()});
  for (const char* w : {"W", "R", "B", "RB"}) graph.weights[w] = t.at(w);
  std::vector<std::string> ins = {"x", "W", "R", c.biases ? "B" : "", c.biases ? "RB" : ""};
  if (c.states) {
    graph.inputs.push_back({"h0", pb::DType::f32, t.at("h0").shape()});
    ins.push_back("h0");
    if (c.op == "LSTM") {
      graph.inputs.push_back({"c0", pb::DType::f32, t.at("c0").shape()});
      ins.push_back("c0");
    }
  }
  pb::ir::Attrs attrs = pbtest::attrs({{"direction", c.direction}, {"merge", c.merge}, {"batch_first", int64_t(c.batch_first)}});
  if (c.op == "RNN") attrs.set("activation", c.activation);
  if (c.op == "GRU") attrs.set("linear_before_reset", int64_t(c.lbr));
  pb::ir::Node node = make_node("rec", c.op, ins, attrs);
  node.outputs = {"y", "h_n"};
  if (c.op == "LSTM") node.outputs.push_back("c_n");
  graph.nodes.push_back(node);
  graph.outputs = node.outputs;

  pb::Network net(graph, {});
  std::vector<const Tensor*> inputs = {&t.at("x")};
  if (c.states) inputs.push_back(&t.at("h0"));
  if (c.states && c.op == "LSTM") inputs.push_back(&t.at("c0"));
  net.run(inputs);
  const Result want = reference(c, t);
  pbtest::check_close(pbtest::doubles(net.output(0)), want.y, 1e-5, 1e-5);
  pbtest::check_close(pbtest::doubles(net.output(1)), want.h_n, 1e-5, 1e-5);
  if (c.op == "LSTM") pbtest::check_close(pbtest::doubles(net.output(2)), want.c_n, 1e-5, 1e-5);
}

}  // namespace

TEST_CASE("recurrent kernels: RNN, LSTM and GRU match the reference in every direction and layout", "[kernels][recurrent]") {
  for (const char* op : {"RNN", "LSTM", "GRU"})
    for (const char* direction : {"forward", "reverse", "bidirectional"})
      for (bool batch_first : {false, true}) {
        Case c;
        c.op = op;
        c.direction = direction;
        c.batch_first = batch_first;
        check_case(c);
      }
}

TEST_CASE("recurrent kernels: merge sum, no states, no biases, relu RNN, both GRU resets", "[kernels][recurrent]") {
  for (const char* op : {"RNN", "LSTM", "GRU"}) {
    Case c;
    c.op = op;
    c.direction = "bidirectional";
    c.merge = "sum";
    check_case(c);
    c.merge = "concat";
    c.states = false;
    check_case(c);
    c.biases = false;
    check_case(c);
  }
  Case relu;
  relu.op = "RNN";
  relu.activation = "relu";
  check_case(relu);
  for (bool lbr : {false, true})
    for (const char* direction : {"forward", "bidirectional"}) {
      Case gru;
      gru.op = "GRU";
      gru.lbr = lbr;
      gru.direction = direction;
      check_case(gru);
    }
  Case wide;  // a realistic size: seq 20, batch 8, input 32, hidden 64
  wide.op = "LSTM";
  wide.t = 20, wide.n = 8, wide.in = 32, wide.h = 64;
  check_case(wide);
}

TEST_CASE("recurrent kernels: shapes and attributes are checked, naming the node", "[kernels][recurrent]") {
  pb::ir::Graph g;
  g.inputs.push_back({"x", pb::DType::f32, {5, 3, 4}});
  g.weights["W"] = pb::filled({1, 24, 4}, 0.1);
  g.weights["R"] = pb::filled({1, 24, 6}, 0.1);
  pb::ir::Node n = make_node("lstm", "LSTM", {"x", "W", "R"});
  n.outputs = {"y", "h", "c"};
  g.nodes = {n};
  g.outputs = {"y"};
  CHECK_NOTHROW(pb::Network(g, {}));
  g.nodes[0].attrs.set("direction", std::string("bidirectional"));
  CHECK_THROWS_MATCHES(pb::Network(g, {}), pb::Error, ErrorAt("node \"lstm\" (LSTM) from test:lstm", "R must be [2, 4·H, H], got [1, 24, 6]"));
  g.nodes[0].attrs.set("direction", std::string("sideways"));
  CHECK_THROWS_MATCHES(pb::Network(g, {}), pb::Error, ErrorAt("node \"lstm\" (LSTM) from test:lstm", "direction must be forward, reverse or bidirectional"));
  g.nodes[0].attrs = {};
  g.weights["W"] = pb::filled({1, 24, 5}, 0.1);
  CHECK_THROWS_MATCHES(pb::Network(g, {}), pb::Error, ErrorAt("node \"lstm\" (LSTM) from test:lstm", "W must be [1, 24, 4]"));
  g.weights["W"] = pb::filled({1, 24, 4}, 0.1);
  g.nodes[0].outputs = {"y", "h"};
  CHECK_THROWS_MATCHES(pb::Network(g, {}), pb::Error, ErrorAt("node \"lstm\" (LSTM) from test:lstm", "has 2 outputs, LSTM has 3"));
}

TEST_CASE("slice: ONNX semantics - negative indices, clamping, steps backwards, any dtype", "[kernels][slice]") {
  Tensor x(pb::DType::f32, {3, 4, 5});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float(i);
  auto slice = [&](const Tensor& in, pb::ir::Attrs attrs) {
    pb::ir::Graph g;
    g.inputs.push_back({"x", in.dtype(), in.shape()});
    g.nodes.push_back(make_node("s", "Slice", {"x"}, attrs));
    g.outputs = {"s"};
    pb::Network net(g, {});
    net.run({&in});
    return net.output(0).clone();
  };
  using I = std::vector<int64_t>;
  // x[:, 1:3, -1]: the last element of dims 2, rows 1..2.
  Tensor y = slice(x, pbtest::attrs({{"starts", I{1, -1}}, {"ends", I{3, 5}}, {"axes", I{1, 2}}}));
  CHECK(y.shape() == Shape{3, 2, 1});
  CHECK(pbtest::values(y) == std::vector<float>{9, 14, 29, 34, 49, 54});
  // x[::-1, :, ::2]: steps backwards and by two; ends far past the dims are clamped.
  y = slice(x, pbtest::attrs({{"starts", I{-1, 0}}, {"ends", I{INT64_MIN, 100}}, {"axes", I{0, 2}}, {"steps", I{-1, 2}}}));
  CHECK(y.shape() == Shape{3, 4, 3});
  CHECK(y.data<float>()[0] == 40);  // x[2, 0, 0]
  CHECK(y.data<float>()[2] == 44);  // x[2, 0, 4]
  CHECK(y.data<float>()[3 * 4 * 2] == 0);  // x[0, 0, 0]
  // Integer tensors slice too (ids before an Embedding).
  Tensor ids(pb::DType::i64, {2, 6});
  for (int64_t i = 0; i < 12; ++i) ids.data<int64_t>()[i] = i;
  const Tensor tail = slice(ids, pbtest::attrs({{"starts", I{4}}, {"ends", I{6}}, {"axes", I{-1}}}));
  CHECK(tail.shape() == Shape{2, 2});
  CHECK(std::vector<int64_t>(tail.data<int64_t>(), tail.data<int64_t>() + 4) == std::vector<int64_t>{4, 5, 10, 11});

  pb::ir::Graph g;
  g.inputs.push_back({"x", pb::DType::f32, {3, 4}});
  g.nodes.push_back(make_node("s", "Slice", {"x"}, pbtest::attrs({{"starts", I{0}}, {"ends", I{1}}, {"steps", I{0}}})));
  g.outputs = {"s"};
  CHECK_THROWS_MATCHES(pb::Network(g, {}), pb::Error, ErrorAt("node \"s\" (Slice) from test:s", "a step of 0"));
}
