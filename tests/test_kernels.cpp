// pb::Network on hand-built IR graphs, against naive double-precision references.
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <sstream>

#include "planetbridge/ir.h"
#include "planetbridge/network.h"
#include "test_util.h"

using pb::DType;
using pb::Shape;
using pb::Tensor;
using pb::ir::Attrs;
using pb::ir::Graph;
using pbtest::attrs;
using pbtest::ErrorAt;
using pbtest::make_node;
using pbtest::random_tensor;

namespace {

// y = x · Wᵀ + b in double; `transpose` uses W instead of Wᵀ (square W only), the classic bug.
std::vector<double> dense_ref(const Tensor& x, const Tensor& w, const Tensor* b, bool transpose = false) {
  const int64_t out = w.shape()[0], in = w.shape()[1], rows = x.numel() / in;
  const float* xp = x.data<float>();
  const float* wp = w.data<float>();
  std::vector<double> y(static_cast<size_t>(rows * out));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = b ? double(b->data<float>()[o]) : 0.0;
      for (int64_t i = 0; i < in; ++i) s += double(xp[r * in + i]) * double(transpose ? wp[i * out + o] : wp[o * in + i]);
      y[static_cast<size_t>(r * out + o)] = s;
    }
  return y;
}

// Elements where |got - ref| > atol + rtol |ref|.
int64_t violations(const Tensor& got, const std::vector<double>& ref, double atol, double rtol) {
  REQUIRE(static_cast<size_t>(got.numel()) == ref.size());
  int64_t bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double g = got.data<float>()[i];
    if (!(std::fabs(g - ref[i]) <= atol + rtol * std::fabs(ref[i]))) ++bad;
  }
  return bad;
}

struct DenseCase {
  int64_t batch, in, out;
  bool bias;
};

Graph dense_graph(const Tensor& w, const Tensor* b, Shape in_shape, const std::string& activation = "") {
  Graph g;
  g.inputs = {{"x", DType::f32, std::move(in_shape)}};
  g.weights["fc.weight"] = w;
  std::vector<std::string> ins = {"x", "fc.weight"};
  if (b) {
    g.weights["fc.bias"] = *b;
    ins.push_back("fc.bias");
  }
  g.nodes.push_back(make_node("fc", "Dense", ins));
  g.outputs = {"fc"};
  if (!activation.empty()) {
    g.nodes.push_back(make_node("act", "Activation", {"fc"}, attrs({{"function", activation}})));
    g.outputs = {"act"};
  }
  return g;
}

// ------------------------------------------------------------------ activation references

struct ActCase {
  std::string name;
  Attrs extra;
  std::function<double(double)> ref;
  double atol = 1e-6;
};

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double softplus(double x) { return x > 30 ? x : std::log1p(std::exp(x)); }

std::vector<ActCase> activation_cases() {
  const double selu_alpha = 1.6732632423543772848170429916717, selu_scale = 1.0507009873554804934193349852946;
  return {
      {"identity", {}, [](double x) { return x; }},
      {"relu", {}, [](double x) { return x > 0 ? x : 0.0; }},
      {"leaky_relu", attrs({{"alpha", 0.125}}), [](double x) { return x > 0 ? x : 0.125 * x; }},
      {"elu", attrs({{"alpha", 0.7}}), [](double x) { return x > 0 ? x : 0.7 * std::expm1(x); }},
      {"selu", {}, [=](double x) { return selu_scale * (x > 0 ? x : selu_alpha * std::expm1(x)); }},
      {"tanh", {}, [](double x) { return std::tanh(x); }},
      {"sigmoid", {}, sigmoid},
      {"gelu_erf", {}, [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }},
      {"gelu_tanh", {}, [](double x) {
         return 0.5 * x * (1 + std::tanh(std::sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
       }},
      {"silu", {}, [](double x) { return x * sigmoid(x); }},
      // oneDNN 2.6's soft_relu is off by up to ~2e-6 absolute in the far negative tail
      // (softplus(-20) = 2e-9 comes out as -1.9e-6): fine for atol 1e-5 suites.
      {"softplus", {}, softplus, 4e-6},
      {"relu6", {}, [](double x) { return std::min(std::max(x, 0.0), 6.0); }},
      {"clip", attrs({{"alpha", -0.5}, {"beta", 2.0}}), [](double x) { return std::min(std::max(x, -0.5), 2.0); }},
      {"mish", {}, [](double x) { return x * std::tanh(softplus(x)); }},
      {"hardswish", {}, [](double x) { return x * std::min(std::max(x + 3, 0.0), 6.0) / 6.0; }},
  };
}

// Inputs covering the interesting points of every function (0, ±3, 6, tails).
Tensor activation_inputs() {
  std::vector<float> v = {0.f, -0.f, 1e-3f, -1e-3f, 3.f, -3.f, 6.f, -6.f, 2.9999f, 6.0001f, 15.f, -15.f, 20.f, -20.f};
  for (int i = 0; i <= 160; ++i) v.push_back(-8.f + 0.1f * float(i));
  return pbtest::f32({1, static_cast<int64_t>(v.size())}, v);
}

}  // namespace

// ------------------------------------------------------------------ Dense

TEST_CASE("kernels: Dense matches a double-precision reference", "[kernels]") {
  const std::vector<DenseCase> cases = {
      {1, 1, 1, true},  {1, 1, 1, false}, {1, 4, 4, true},   {5, 7, 7, true},  {3, 7, 7, false},
      {3, 5, 2, true},  {8, 33, 17, true}, {2, 16, 16, false}, {100, 32, 16, true}, {1, 2, 9, true},
  };
  std::mt19937 rng(1234);
  for (const DenseCase& c : cases) {
    INFO("batch " << c.batch << ", in " << c.in << ", out " << c.out << (c.bias ? ", bias" : ", no bias"));
    Tensor w = random_tensor({c.out, c.in}, rng);
    Tensor b = random_tensor({c.out}, rng);
    Tensor x = random_tensor({c.batch, c.in}, rng, -2.f, 2.f);
    pb::Network net(dense_graph(w, c.bias ? &b : nullptr, {-1, c.in}), {{"x", {c.batch, c.in}}});
    net.run({&x});
    REQUIRE(net.output_count() == 1);
    const Tensor& y = net.output(0);
    CHECK(y.shape() == Shape{c.batch, c.out});
    CHECK(violations(y, dense_ref(x, w, c.bias ? &b : nullptr), 2e-5, 1e-5) == 0);
    if (c.in == c.out && c.in > 1) {
      // The comparison is strong enough to catch a transposed weight.
      CHECK(violations(y, dense_ref(x, w, c.bias ? &b : nullptr, /*transpose=*/true), 2e-5, 1e-5) > 0);
    }
  }
}

TEST_CASE("kernels: Dense on a 3-D input applies to the last axis", "[kernels]") {
  std::mt19937 rng(99);
  Tensor w = random_tensor({4, 5}, rng), b = random_tensor({4}, rng);
  Tensor x = random_tensor({2, 3, 5}, rng);
  pb::Network net(dense_graph(w, &b, {-1, 3, 5}), {{"x", {2, 3, 5}}});
  net.run({&x});
  CHECK(net.output(0).shape() == Shape{2, 3, 4});
  CHECK(violations(net.output(0), dense_ref(x, w, &b), 1e-5, 1e-5) == 0);
}

TEST_CASE("kernels: Dense with a hand-computed square weight", "[kernels]") {
  // W = [[1, 2], [3, 4]], x = [1, 10]: x·Wᵀ = [21, 43]; x·W would be [31, 42].
  Tensor w = pbtest::f32({2, 2}, {1, 2, 3, 4});
  Tensor b = pbtest::f32({2}, {0.5f, -0.5f});
  Tensor x = pbtest::f32({1, 2}, {1, 10});
  pb::Network net(dense_graph(w, &b, {1, 2}), {});
  net.run({&x});
  CHECK(net.output(0).data<float>()[0] == 21.5f);
  CHECK(net.output(0).data<float>()[1] == 42.5f);
}

TEST_CASE("kernels: every activation matches its scalar formula", "[kernels]") {
  const Tensor x = activation_inputs();
  for (const ActCase& c : activation_cases()) {
    INFO("activation " << c.name);
    Graph g;
    g.inputs = {{"x", DType::f32, {-1, x.shape()[1]}}};
    Attrs a = c.extra;
    a.set("function", c.name);
    g.nodes.push_back(make_node("act", "Activation", {"x"}, a));
    g.outputs = {"act"};
    pb::Network net(g, {{"x", x.shape()}});
    net.run({&x});
    const Tensor& y = net.output(0);
    REQUIRE(y.shape() == x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double in = x.data<float>()[i], want = c.ref(in), got = y.data<float>()[i];
      INFO("x = " << in << ": got " << got << ", want " << want);
      CHECK(std::fabs(got - want) <= c.atol + 1e-5 * std::fabs(want));
    }
  }
}

TEST_CASE("kernels: fused Dense plus Activation equals the unfused pair", "[kernels]") {
  std::mt19937 rng(5);
  Tensor w = random_tensor({6, 9}, rng), b = random_tensor({6}, rng);
  Tensor x = random_tensor({4, 9}, rng, -3.f, 3.f);
  for (const ActCase& c : activation_cases()) {
    INFO("activation " << c.name);
    Graph g = dense_graph(w, &b, {-1, 9}, c.name);
    for (const auto& [k, v] : c.extra.all()) g.nodes[1].attrs.set(k, v);
    pb::Network fused(g, {{"x", {4, 9}}});
    pb::Network plain(g, {{"x", {4, 9}}}, pb::CompileOptions{false});
    CHECK(fused.executed_graph().nodes.size() == 1);
    CHECK(fused.executed_graph().nodes[0].attrs.s("activation") == c.name);
    CHECK(plain.executed_graph().nodes.size() == 2);
    fused.run({&x});
    plain.run({&x});
    const Tensor &a = fused.output(0), &p = plain.output(0);
    REQUIRE(a.shape() == p.shape());
    for (int64_t i = 0; i < a.numel(); ++i) {
      INFO("element " << i);
      CHECK(std::fabs(a.data<float>()[i] - p.data<float>()[i]) <= 1e-6 * (1 + std::fabs(p.data<float>()[i])));
    }
    // And both are the activation of the reference Dense.
    std::vector<double> ref = dense_ref(x, w, &b);
    for (double& v : ref) v = c.ref(v);
    CHECK(violations(p, ref, 1e-5, 1e-5) == 0);
  }
}

TEST_CASE("kernels: Softmax and log-softmax along an axis", "[kernels]") {
  std::mt19937 rng(17);
  const Tensor x = random_tensor({4, 5}, rng, -4.f, 4.f);
  for (int64_t axis : {int64_t(-1), int64_t(1), int64_t(0), int64_t(-2)}) {
    for (int64_t log : {int64_t(0), int64_t(1)}) {
      INFO("axis " << axis << ", log " << log);
      Graph g;
      g.inputs = {{"x", DType::f32, {4, 5}}};
      g.nodes.push_back(make_node("sm", "Softmax", {"x"}, attrs({{"axis", axis}, {"log", log}})));
      g.outputs = {"sm"};
      pb::Network net(g, {});
      net.run({&x});
      const int64_t ax = axis < 0 ? axis + 2 : axis;
      std::vector<double> ref(20);
      for (int64_t outer = 0; outer < (ax == 1 ? 4 : 5); ++outer) {
        auto at = [&](int64_t k) { return ax == 1 ? outer * 5 + k : k * 5 + outer; };
        const int64_t n = ax == 1 ? 5 : 4;
        double mx = -INFINITY, sum = 0;
        for (int64_t k = 0; k < n; ++k) mx = std::max(mx, double(x.data<float>()[at(k)]));
        for (int64_t k = 0; k < n; ++k) sum += std::exp(double(x.data<float>()[at(k)]) - mx);
        for (int64_t k = 0; k < n; ++k) {
          const double z = double(x.data<float>()[at(k)]) - mx;
          ref[static_cast<size_t>(at(k))] = log ? z - std::log(sum) : std::exp(z) / sum;
        }
      }
      CHECK(violations(net.output(0), ref, 1e-6, 1e-5) == 0);
    }
  }
}

TEST_CASE("kernels: Flatten and Reshape change shapes, not bytes", "[kernels]") {
  std::mt19937 rng(3);
  const Tensor x = random_tensor({2, 3, 4}, rng);
  struct C {
    std::string op;
    Attrs a;
    Shape want;
  };
  const std::vector<C> cases = {
      {"Flatten", attrs({{"start", int64_t(1)}, {"end", int64_t(-1)}}), {2, 12}},
      {"Flatten", {}, {2, 12}},
      {"Flatten", attrs({{"start", int64_t(0)}, {"end", int64_t(1)}}), {6, 4}},
      {"Flatten", attrs({{"start", int64_t(0)}, {"end", int64_t(-1)}}), {24}},
      {"Flatten", attrs({{"start", int64_t(2)}, {"end", int64_t(2)}}), {2, 3, 4}},
      {"Reshape", attrs({{"shape", std::vector<int64_t>{0, -1}}}), {2, 12}},
      {"Reshape", attrs({{"shape", std::vector<int64_t>{4, -1, 2}}}), {4, 3, 2}},
      {"Reshape", attrs({{"shape", std::vector<int64_t>{24}}}), {24}},
      {"Identity", {}, {2, 3, 4}},
  };
  for (const C& c : cases) {
    INFO(c.op << " to " << pb::shape_str(c.want));
    Graph g;
    g.inputs = {{"x", DType::f32, {-1, 3, 4}}};
    g.nodes.push_back(make_node("r", c.op, {"x"}, c.a));
    g.outputs = {"r"};
    pb::Network net(g, {{"x", {2, 3, 4}}});
    net.run({&x});
    CHECK(net.output(0).shape() == c.want);
    CHECK(std::memcmp(net.output(0).raw(), x.raw(), x.nbytes()) == 0);
  }
}

TEST_CASE("kernels: Network::value exposes inputs and intermediates", "[kernels]") {
  std::mt19937 rng(8);
  Tensor w1 = random_tensor({5, 3}, rng), w2 = random_tensor({2, 5}, rng);
  Graph g;
  g.inputs = {{"x", DType::f32, {-1, 3}}};
  g.weights = {{"w1", w1}, {"w2", w2}};
  g.nodes.push_back(make_node("fc1", "Dense", {"x", "w1"}));
  g.nodes.push_back(make_node("act", "Activation", {"fc1"}, attrs({{"function", std::string("relu")}})));
  g.nodes.push_back(make_node("fc2", "Dense", {"act", "w2", ""}));  // "" marks an omitted bias
  g.outputs = {"fc2"};
  const Tensor x = random_tensor({4, 3}, rng);

  pb::Network plain(g, {{"x", {4, 3}}}, pb::CompileOptions::inspectable());
  plain.run({&x});
  REQUIRE(plain.value("x") != nullptr);
  CHECK(plain.value("x")->bit_equal(x));
  REQUIRE(plain.value("fc1") != nullptr);
  REQUIRE(plain.value("act") != nullptr);
  CHECK(plain.value("nope") == nullptr);
  CHECK(violations(*plain.value("fc1"), dense_ref(x, w1, nullptr), 1e-5, 1e-5) == 0);
  for (int64_t i = 0; i < 20; ++i)
    CHECK(plain.value("act")->data<float>()[i] == std::max(0.f, plain.value("fc1")->data<float>()[i]));
  CHECK(plain.value("fc2")->bit_equal(plain.output(0)));
  CHECK_FALSE(plain.describe().empty());

  pb::Network fused(g, {{"x", {4, 3}}});
  fused.run({&x});
  CHECK(fused.value("fc1") == nullptr);  // folded into the Dense that now produces "act"
  REQUIRE(fused.value("act") != nullptr);
  CHECK(fused.executed_graph().nodes.size() == 2);
  CHECK(violations(fused.output(0), dense_ref(*plain.value("act"), w2, nullptr), 1e-5, 1e-5) == 0);
}

TEST_CASE("kernels: run converts f64 input and reuses its buffers", "[kernels]") {
  Tensor w = pbtest::f32({1, 2}, {1, 1});
  pb::Network net(dense_graph(w, nullptr, {-1, 2}), {{"x", {1, 2}}});
  Tensor xd(DType::f64, {1, 2});
  xd.data<double>()[0] = 1.5;
  xd.data<double>()[1] = 2.25;
  net.run({&xd});
  CHECK(net.output(0).data<float>()[0] == 3.75f);
  Tensor x2 = pbtest::f32({1, 2}, {10, 20});
  net.run({&x2});
  CHECK(net.output(0).data<float>()[0] == 30.f);

  Tensor xi(DType::i32, {1, 2});
  CHECK_THROWS_MATCHES(net.run({&xi}), pb::Error, ErrorAt("input \"x\"", "expects f32, got i32"));
}

// ------------------------------------------------------------------ errors

TEST_CASE("kernels: an unknown activation is an error naming the node", "[kernels]") {
  Graph g;
  g.inputs = {{"x", DType::f32, {1, 4}}};
  g.nodes.push_back(make_node("act", "Activation", {"x"}, attrs({{"function", std::string("swishy")}})));
  g.outputs = {"act"};
  CHECK_THROWS_MATCHES(pb::Network(g, {}), pb::Error,
                       ErrorAt("node \"act\" (Activation) from test:act", "unknown activation \"swishy\" (known: "));

  // The same when it would be fused into a Dense, and when it is not: the graph is typed before
  // the passes, so the error names the Activation node either way.
  Graph d = dense_graph(pbtest::f32({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}), nullptr, {1, 4}, "swishy");
  for (bool fuse : {true, false}) {
    INFO("fuse " << fuse);
    try {
      pb::Network net(d, {}, pb::CompileOptions{fuse});
      FAIL("compiled an unknown activation");
    } catch (const pb::Error& e) {
      CHECK_THAT(e.what(), Catch::Contains("unknown activation \"swishy\""));
      CHECK_THAT(e.where(), Catch::Contains("node \"act\" (Activation)"));
    }
  }

  Graph missing;
  missing.inputs = g.inputs;
  missing.nodes.push_back(make_node("act", "Activation", {"x"}));
  missing.outputs = {"act"};
  CHECK_THROWS_MATCHES(pb::Network(missing, {}), pb::Error, ErrorAt("node \"act\" (Activation) from test:act", "missing attribute \"function\""));
}

TEST_CASE("kernels: an unknown op is an error naming the node", "[kernels]") {
  Graph g;
  g.inputs = {{"x", DType::f32, {1, 4}}};
  g.nodes.push_back(make_node("c", "Conv9d", {"x"}));
  g.outputs = {"c"};
  CHECK_THROWS_MATCHES(pb::Network(g, {}), pb::Error, ErrorAt("node \"c\" (Conv9d) from test:c", "unknown op \"Conv9d\""));
}

TEST_CASE("kernels: Dense with mismatched in-features names the node", "[kernels]") {
  std::mt19937 rng(1);
  Graph g = dense_graph(random_tensor({4, 5}, rng), nullptr, {-1, 3});
  CHECK_THROWS_MATCHES(pb::Network(g, {{"x", {2, 3}}}), pb::Error,
                       ErrorAt("node \"fc\" (Dense) from test:fc", "input [2, 3] does not end in the weight's in-features 5"));

  Tensor bad_bias = random_tensor({3}, rng);
  Graph gb = dense_graph(random_tensor({4, 3}, rng), &bad_bias, {-1, 3});
  CHECK_THROWS_MATCHES(pb::Network(gb, {{"x", {2, 3}}}), pb::Error,
                       ErrorAt("node \"fc\" (Dense) from test:fc", "bias must be f32 with 4 elements, got [3]"));

  // A weight that is a computed value rather than a constant.
  Graph gv;
  gv.inputs = {{"x", DType::f32, {3, 3}}};
  gv.nodes.push_back(make_node("fc", "Dense", {"x", "x"}));
  gv.outputs = {"fc"};
  CHECK_THROWS_MATCHES(pb::Network(gv, {}), pb::Error,
                       ErrorAt("node \"fc\" (Dense) from test:fc", "input 1 (weight) \"x\" must be a constant weight, not a computed value"));
}

TEST_CASE("kernels: input shapes are checked at compile and run time", "[kernels]") {
  std::mt19937 rng(2);
  Graph g = dense_graph(random_tensor({4, 3}, rng), nullptr, {-1, 3});
  CHECK_THROWS_MATCHES(pb::Network(g, {}), pb::Error, ErrorAt("input \"x\"", "shape [-1, 3] needs a concrete size"));
  CHECK_THROWS_MATCHES(pb::Network(g, {{"x", {2, 4}}}), pb::Error, ErrorAt("input \"x\"", "the graph expects shape [-1, 3], got [2, 4]"));
  CHECK_THROWS_MATCHES(pb::Network(g, {{"x", {2, 3, 1}}}), pb::Error, ErrorAt("input \"x\"", "got [2, 3, 1]"));

  pb::Network net(g, {{"x", {2, 3}}});
  Tensor wrong = random_tensor({3, 3}, rng);
  CHECK_THROWS_MATCHES(net.run({&wrong}), pb::Error, ErrorAt("input \"x\"", "compiled for shape [2, 3], got [3, 3]"));
  CHECK_THROWS_MATCHES(net.run({}), pb::Error, ErrorAt("inputs", "the graph takes 1 inputs, got 0"));
}

TEST_CASE("kernels: malformed graphs and attributes name the node", "[kernels]") {
  Graph g;
  g.inputs = {{"x", DType::f32, {2, 3}}};
  g.nodes.push_back(make_node("sm", "Softmax", {"y"}, attrs({{"axis", int64_t(1)}})));
  g.outputs = {"sm"};
  CHECK_THROWS_MATCHES(pb::Network(g, {}), pb::Error, ErrorAt("node \"sm\" (Softmax)", "input \"y\" is not defined"));

  g.nodes[0].inputs = {"x"};
  g.nodes[0].attrs = attrs({{"axis", int64_t(2)}});
  CHECK_THROWS_MATCHES(pb::Network(g, {}), pb::Error, ErrorAt("node \"sm\" (Softmax) from test:sm", "axis 2 is out of range for an input of rank 2"));
  g.nodes[0].attrs = attrs({{"axis", 1.5}});
  CHECK_THROWS_MATCHES(pb::Network(g, {}), pb::Error, ErrorAt("node \"sm\" (Softmax) from test:sm", "attribute \"axis\" must be int, got 1.5"));

  Graph f;
  f.inputs = {{"x", DType::f32, {2, 3}}};
  f.nodes.push_back(make_node("fl", "Flatten", {"x"}, attrs({{"start", int64_t(1)}, {"end", int64_t(0)}})));
  f.outputs = {"fl"};
  CHECK_THROWS_MATCHES(pb::Network(f, {}), pb::Error, ErrorAt("node \"fl\" (Flatten) from test:fl", "cannot flatten dims [1, 0] of [2, 3]"));

  Graph r;
  r.inputs = {{"x", DType::f32, {2, 3}}};
  r.nodes.push_back(make_node("rs", "Reshape", {"x"}, attrs({{"shape", std::vector<int64_t>{-1, -1}}})));
  r.outputs = {"rs"};
  CHECK_THROWS_MATCHES(pb::Network(r, {}), pb::Error, ErrorAt("node \"rs\" (Reshape) from test:rs", "more than one -1"));
  r.nodes[0].attrs = attrs({{"shape", std::vector<int64_t>{4, 2}}});
  CHECK_THROWS_MATCHES(pb::Network(r, {}), pb::Error, ErrorAt("node \"rs\" (Reshape) from test:rs", "cannot reshape [2, 3] (6 elements) to [4, 2]"));

  Graph dup;
  dup.inputs = {{"x", DType::f32, {2, 3}}};
  dup.nodes.push_back(make_node("a", "Identity", {"x"}));
  dup.nodes.push_back(make_node("a", "Identity", {"x"}));
  dup.outputs = {"a"};
  CHECK_THROWS_MATCHES(pb::Network(dup, {}), pb::Error, ErrorAt("node \"a\" (Identity)", "duplicate node name"));

  Graph none;
  none.inputs = {{"x", DType::f32, {2, 3}}};
  none.outputs = {"zz"};
  CHECK_THROWS_MATCHES(pb::Network(none, {}), pb::Error, ErrorAt("graph.outputs", "output \"zz\" is never produced"));
}
