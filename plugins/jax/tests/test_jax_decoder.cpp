// The jax decoder (plugins/jax/decoder.cpp), loaded as a plugin, on small streams in
// plugins/jax/tests/streams/: hand-written ones with values checked by hand, and functions.json,
// conv.json, norms_pools.json, embed_conv1d.json and the recurrent rnn_lstm.json, rnn_gru.json and
// rnn_simple.json recorded from jax-js by record.js there (no Node needed here). Error cases
// mutate those documents.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <utility>

#include "ladder.h"
#include "planetbridge/network.h"
#include "plugin_loader.h"
#include "runner.h"
#include "suite.h"
#include "test_util.h"

using nlohmann::json;
using pb::Tensor;
using pb::ir::Graph;
using pbtest::check_close;
using pbtest::check_outputs;
using pbtest::decode;
using pbtest::ErrorAt;
using pbtest::load_doc;
using pbtest::node;
using pbtest::run;
using pbtest::to_stream;
using pbtest::values;

namespace {

const pb::Dialect& jax() { return pbtest::planet(); }

// The largest |got - want| - (atol + rtol |want|): <= 0 when every element is within tolerance.
double excess(const Tensor& got, const Tensor& want, double atol, double rtol) {
  REQUIRE(got.shape() == want.shape());
  double worst = -1;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = got.data<float>()[i], w = want.data<float>()[i];
    worst = std::max(worst, std::fabs(g - w) - (atol + rtol * std::fabs(w)));
  }
  return worst;
}

// The largest excess over the default tolerance among the outputs of `doc` decoded as is.
double worst_excess(const json& doc) {
  const pb::Stream s = to_stream(doc);
  const std::vector<Tensor> out = run(s, decode(doc));
  double worst = -1;
  for (size_t i = 0; i < out.size(); ++i) worst = std::max(worst, excess(out[i], s.tensors.at(s.expected[i]), 1e-5, 1e-5));
  return worst;
}

size_t count_nodes(const Graph& g, const std::string& op, const std::string& input) {
  return std::count_if(g.nodes.begin(), g.nodes.end(),
                       [&](const pb::ir::Node& n) { return n.op == op && !n.inputs.empty() && n.inputs[0] == input; });
}

}  // namespace

// ------------------------------------------------------------------ translations

TEST_CASE("jax decoder: a square Dense kernel [in, out] is transposed exactly once", "[jax]") {
  const pb::Stream s = to_stream(load_doc("dense_square"));
  const Graph g = jax().decode(s);
  REQUIRE(g.inputs.size() == 1);
  CHECK(g.inputs[0].name == "x");
  CHECK(g.inputs[0].shape == pb::Shape{-1, 3});
  REQUIRE(g.nodes.size() == 1);
  const pb::ir::Node& n = g.nodes[0];
  CHECK(n.name == "Dense_0");
  CHECK(n.op == "Dense");
  CHECK(n.inputs == std::vector<std::string>{"x", "params/Dense_0/kernel@T", "params/Dense_0/bias"});
  CHECK(n.outputs == std::vector<std::string>{"Dense_0"});
  CHECK(g.weights.at(n.inputs[1]).shape()[1] == 3);  // [out, in]
  CHECK(g.weights.at(n.inputs[1]).shape()[0] == 3);
  CHECK(n.origin == "flax:Dense_0 (Dense)");
  CHECK(g.outputs == std::vector<std::string>{"Dense_0"});
  CHECK(g.metadata.at("planet") == "jax");
  CHECK(g.metadata.at("model_id") == "dense_square");
  // The IR weight [out, in] is the kernel's transpose.
  const Tensor& w = g.weights.at("params/Dense_0/kernel@T");
  CHECK(w.shape() == pb::Shape{3, 3});
  CHECK(values(w) == std::vector<float>{1, 4, 7, 2, 5, 8, 3, 6, 10});
  CHECK(g.weights.count("params/Dense_0/kernel") == 0);

  const std::vector<Tensor> out = run(s, g);
  REQUIRE(out.size() == 1);
  // x·K + b by hand; a missed (or doubled) transpose gives x·Kᵀ + b = [-1.5, -3, -1, 14, 29, 51.5].
  CHECK(values(out[0]) == std::vector<float>{-5.5f, -7.f, -5.f, 30.f, 34.f, 45.5f});
  CHECK(out[0].bit_equal(s.tensors.at("output.0")));
}

TEST_CASE("jax decoder: use_bias false gives a Dense without bias, Sequential order by default", "[jax]") {
  json doc = load_doc("mlp_no_bias");
  const pb::Stream s = to_stream(doc);
  const Graph g = jax().decode(s);
  REQUIRE(g.nodes.size() == 3);
  CHECK(g.nodes[0].inputs == std::vector<std::string>{"x", "params/Dense_0/kernel@T"});
  CHECK(g.weights.at(g.nodes[0].inputs[1]).shape()[1] == 3);  // [out, in]
  CHECK(g.weights.at(g.nodes[0].inputs[1]).shape()[0] == 4);
  CHECK(g.nodes[1].op == "Activation");
  CHECK(g.nodes[1].attrs.s("function") == "relu");
  CHECK(g.nodes[1].inputs == std::vector<std::string>{"Dense_0"});
  CHECK(g.nodes[1].origin == "flax:relu_0 (nn.relu)");
  CHECK(g.nodes[2].inputs == std::vector<std::string>{"relu_0", "params/Dense_1/kernel@T", "params/Dense_1/bias"});
  CHECK(g.weights.count("params/Dense_0/bias") == 0);
  const std::vector<Tensor> out = run(s, g);
  CHECK(values(out[0]) == std::vector<float>{3.5f, 1.5f, 0.5f, 1.f});

  // use_bias defaults to true, as in Flax: then the bias is required.
  doc["model"]["modules"][0].erase("use_bias");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules[0]", "missing param \"params/Dense_0/bias\""));
}

TEST_CASE("jax decoder: residual add, concatenate and two outputs", "[jax]") {
  json doc = load_doc("residual");
  const pb::Stream s = to_stream(doc);
  const Graph g = jax().decode(s);
  REQUIRE(g.nodes.size() == 5);
  CHECK(node(g, "add_0").op == "Add");
  CHECK(node(g, "add_0").inputs == std::vector<std::string>{"relu_0", "x"});
  CHECK(node(g, "concatenate_0").op == "Concat");
  CHECK(node(g, "concatenate_0").attrs.i("axis") == -1);
  CHECK(node(g, "concatenate_0").inputs == std::vector<std::string>{"add_0", "x"});
  CHECK(node(g, "Dense_1").inputs[0] == "concatenate_0");
  CHECK(g.weights.at(node(g, "Dense_1").inputs[1]).shape()[1] == 4);  // [out, in]
  CHECK(g.outputs == std::vector<std::string>{"Dense_1", "add_0"});
  CHECK(s.composed.size() == 1);
  std::vector<Tensor> out = run(s, g);
  REQUIRE(out.size() == 2);
  CHECK(values(out[0]) == std::vector<float>{-0.25f, 24.25f});
  CHECK(values(out[1]) == std::vector<float>{1.f, -2.f, 8.f, 7.5f});

  // The other jnp operators: relu_0 = [[0, 0], [5, 7]], x = [[1, -2], [3, 0.5]].
  doc["model"]["modules"][2]["type"] = "subtract";
  CHECK(node(decode(doc), "add_0").op == "Sub");
  out = run(s, decode(doc));
  CHECK(values(out[1]) == std::vector<float>{-1.f, 2.f, 2.f, 6.5f});
  doc["model"]["modules"][2]["type"] = "multiply";
  out = run(s, decode(doc));
  CHECK(values(out[1]) == std::vector<float>{0.f, -0.f, 15.f, 3.5f});
}

TEST_CASE("jax decoder: every function maps by its Flax name and matches jax-js", "[jax]") {
  json doc = load_doc("functions");
  const pb::Stream s = to_stream(doc);
  const Graph g = jax().decode(s);
  struct Want {
    const char* node;
    const char* function;
    double alpha;
  };
  const std::vector<Want> want = {
      {"relu_0", "relu", 0},        {"relu6_0", "relu6", 0},         {"tanh_0", "tanh", 0},
      {"sigmoid_0", "sigmoid", 0},  {"silu_0", "silu", 0},           {"swish_0", "silu", 0},
      {"selu_0", "selu", 0},        {"softplus_0", "softplus", 0},   {"hard_swish_0", "hardswish", 0},
      {"hard_silu_0", "hardswish", 0}, {"hard_sigmoid_0", "hard_sigmoid", 1.0 / 6.0},
      {"gelu_0", "gelu_tanh", 0},   {"gelu_1", "gelu_erf", 0},       {"leaky_relu_0", "leaky_relu", 0.01},
      {"leaky_relu_1", "leaky_relu", 0.2}, {"elu_0", "elu", 1.0},    {"elu_1", "elu", 0.5},
  };
  for (const Want& w : want) {
    INFO(w.node);
    const pb::ir::Node& n = node(g, w.node);
    CHECK(n.op == "Activation");
    CHECK(n.attrs.s("function") == w.function);
    if (w.alpha != 0) CHECK(n.attrs.f("alpha") == Approx(w.alpha));
  }
  CHECK(node(g, "hard_sigmoid_0").attrs.f("beta") == 0.5);
  CHECK(node(g, "softmax_0").op == "Softmax");
  CHECK(node(g, "softmax_0").attrs.i("axis") == -1);
  CHECK(node(g, "softmax_0").attrs.i("log") == 0);
  CHECK(node(g, "softmax_1").attrs.i("axis") == 0);
  CHECK(node(g, "log_softmax_0").attrs.i("log") == 1);

  // Against jax-js's own outputs, at the suite's default tolerance.
  const std::vector<Tensor> out = run(s, g);
  REQUIRE(out.size() == s.expected.size());
  for (size_t i = 0; i < out.size(); ++i) {
    INFO(g.outputs[i]);
    CHECK(excess(out[i], s.tensors.at(s.expected[i]), 1e-5, 1e-5) <= 0);
  }

  // jax-js's nn.gelu defaults to the tanh form, like JAX: read as erf it would not match.
  const size_t gelu = std::find(g.outputs.begin(), g.outputs.end(), "gelu_0") - g.outputs.begin();
  doc["model"]["modules"][gelu]["approximate"] = false;
  const std::vector<Tensor> erf = run(s, decode(doc));
  CHECK(excess(erf[gelu], s.tensors.at(s.expected[gelu]), 1e-5, 1e-5) > 1e-4);
  // An absent "approximate" means JAX's default, True.
  doc["model"]["modules"][gelu].erase("approximate");
  CHECK(node(decode(doc), "gelu_0").attrs.s("function") == "gelu_tanh");
}

TEST_CASE("jax decoder: every test stream passes the ladder", "[jax]") {
  for (const char* name :
       {"dense_square", "mlp_no_bias", "residual", "functions", "conv", "conv_transpose", "group_norm", "dense_general", "einsum", "attention", "swiglu", "norms_pools", "embed_conv1d", "rnn_lstm", "rnn_gru", "rnn_simple"}) {
    INFO(name);
    const pb::Stream s = to_stream(load_doc(name));
    pbtest::check_passes(pbtest::ladder(s, jax()), s);
  }
}

TEST_CASE("jax decoder: the capture is Node's capture.js, or capture_flax.py on request", "[jax]") {
  const pb::CaptureCommand c = jax().capture();
  REQUIRE(c.argv.size() == 3);
  CHECK(c.argv[1] == std::string(PB_SOURCE_DIR) + "/plugins/jax/capture/capture.js");
  CHECK(c.argv[2] == "--serve");
  ::setenv("PLANETBRIDGE_JAX_CAPTURE", "flax", 1);
  const pb::CaptureCommand f = jax().capture();
  ::unsetenv("PLANETBRIDGE_JAX_CAPTURE");
  REQUIRE(f.argv.size() == 3);
  CHECK(f.argv[1] == std::string(PB_SOURCE_DIR) + "/plugins/jax/capture/capture_flax.py");
}

// ------------------------------------------------------------------ convolutions, pools, norms, embeddings

TEST_CASE("jax decoder: Conv kernels [k..., I/g, O] become [O, I/g, k...] - SAME, pairs, groups, flatten order", "[jax]") {
  json doc = load_doc("conv");
  const pb::Stream s = to_stream(doc);
  const Graph g = jax().decode(s);

  // x is read by three convs (and v by one): one Transpose to channels-first each, shared.
  CHECK(g.inputs[0].shape == pb::Shape{-1, 5, 4, 3});
  CHECK(count_nodes(g, "Transpose", "x") == 1);
  CHECK(node(g, "x@NCHW").attrs.ints("perm") == std::vector<int64_t>{0, 3, 1, 2});
  CHECK(node(g, "v@NCDHW").attrs.ints("perm") == std::vector<int64_t>{0, 4, 1, 2, 3});
  for (const char* conv : {"Conv_0@NCHW", "Conv_1@NCHW", "Conv_2@NCHW"}) CHECK(node(g, conv).inputs[0] == "x@NCHW");

  // Conv_0: kernel [2, 3] (not square), I = 3 != O = 2; "SAME" pads the even kernel (0, 1).
  const pb::ir::Node& c0 = node(g, "Conv_0@NCHW");
  CHECK(c0.op == "Conv");
  CHECK(c0.origin == "flax:Conv_0 (Conv)");
  CHECK(c0.inputs == std::vector<std::string>{"x@NCHW", "params/Conv_0/kernel@OIHW", "params/Conv_0/bias"});
  CHECK(c0.attrs.ints("pads_begin") == std::vector<int64_t>{0, 1});
  CHECK(c0.attrs.ints("pads_end") == std::vector<int64_t>{1, 1});
  CHECK(c0.attrs.ints("strides") == std::vector<int64_t>{1, 1});
  CHECK(c0.attrs.i("groups") == 1);
  const Tensor& k = s.tensors.at("params/Conv_0/kernel");
  const Tensor& w = g.weights.at("params/Conv_0/kernel@OIHW");
  REQUIRE(k.shape() == pb::Shape{2, 3, 3, 2});
  REQUIRE(w.shape() == pb::Shape{2, 3, 2, 3});
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t x = 0; x < 3; ++x)
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t o = 0; o < 2; ++o)
          CHECK(w.data<float>()[((o * 3 + i) * 2 + h) * 3 + x] == k.data<float>()[((h * 3 + x) * 3 + i) * 2 + o]);
  CHECK(g.weights.count("params/Conv_0/kernel") == 0);

  // Conv_1: explicit asymmetric pairs, strides, kernel_dilation, no bias.
  const pb::ir::Node& c1 = node(g, "Conv_1@NCHW");
  CHECK(c1.inputs.size() == 2);
  CHECK(c1.attrs.ints("pads_begin") == std::vector<int64_t>{2, 0});
  CHECK(c1.attrs.ints("pads_end") == std::vector<int64_t>{0, 1});
  CHECK(c1.attrs.ints("strides") == std::vector<int64_t>{2, 1});
  CHECK(c1.attrs.ints("dilations") == std::vector<int64_t>{1, 2});
  // Conv_2: feature_group_count 3 (depthwise, multiplier 2), int padding 1 on both sides.
  const pb::ir::Node& c2 = node(g, "Conv_2@NCHW");
  CHECK(c2.attrs.i("groups") == 3);
  CHECK(g.weights.at("params/Conv_2/kernel@OIHW").shape() == pb::Shape{6, 1, 3, 3});
  CHECK(c2.attrs.ints("pads_begin") == std::vector<int64_t>{1, 1});
  CHECK(c2.attrs.ints("pads_end") == std::vector<int64_t>{1, 1});
  // Conv_3 (3-D): the kernel [2, 3, 2, I, O] becomes [O, I, 2, 3, 2].
  CHECK(g.weights.at("params/Conv_3/kernel@OIDHW").shape() == pb::Shape{2, 2, 2, 3, 2});

  // x.reshape((N, -1)) flattens Flax's H, W, C order: back to channels-last first (that value
  // carries the module's name), the batch dim kept for any batch size.
  CHECK(node(g, "Conv_0").op == "Transpose");
  CHECK(node(g, "Conv_0").attrs.ints("perm") == std::vector<int64_t>{0, 2, 3, 1});
  CHECK(node(g, "reshape_0").op == "Reshape");
  CHECK(node(g, "reshape_0").inputs == std::vector<std::string>{"Conv_0"});
  CHECK(node(g, "reshape_0").attrs.ints("shape") == std::vector<int64_t>{0, -1});
  CHECK(g.weights.at(node(g, "Dense_0").inputs[1]).shape()[1] == 5 * 4 * 2);  // [out, in]
  CHECK(g.outputs == std::vector<std::string>{"Conv_0", "Conv_1", "Conv_2", "Dense_0", "Conv_3"});
  CHECK(count_nodes(g, "Transpose", "Conv_0@NCHW") == 1);  // shared by the output and the reshape
  check_outputs(s, g);

  // The padding is what makes these match: lax's other "SAME" (odd element first) does not.
  json lower = doc;
  lower["model"]["modules"][0]["padding"] = "SAME_LOWER";
  CHECK(node(decode(lower), "Conv_0@NCHW").attrs.ints("pads_begin") == std::vector<int64_t>{1, 1});
  CHECK(worst_excess(lower) > 1e-3);
  json flipped = doc;
  flipped["model"]["modules"][1]["padding"] = {{0, 2}, {1, 0}};
  CHECK(worst_excess(flipped) > 1e-3);
}

namespace {

// The stream without its taps (and their tensors, which would otherwise be unused).
json without_taps(json doc) {
  for (const auto& [module, tensor] : doc["taps"].items()) doc["tensors"].erase(tensor.get<std::string>());
  doc.erase("taps");
  return doc;
}

std::map<std::string, pb::Shape> stream_input_shapes(const Graph& g, const pb::Stream& s) {
  std::map<std::string, pb::Shape> shapes;
  for (size_t i = 0; i < g.inputs.size(); ++i) shapes[g.inputs[i].name] = s.tensors.at(s.inputs[i]).shape();
  return shapes;
}

size_t node_index(const Graph& g, const std::string& value) {
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const std::string& out : g.nodes[i].outputs)
      if (out == value) return i;
  FAIL("no node produces \"" << value << "\"");
  return 0;
}

}  // namespace

TEST_CASE("jax decoder: every tap lines up with a value of its module's name, in Flax's layout and module order", "[jax]") {
  // conv: 4 convs (3 of them outputs), a reshape and a Dense; norms_pools: Conv -> BatchNorm ->
  // relu (held only channels-first: their taps were skipped before), pools, global reductions,
  // norms.
  for (const auto& [name, tap_count] : std::vector<std::pair<std::string, size_t>>{{"conv", 6}, {"norms_pools", 10}}) {
    INFO(name);
    const json doc = load_doc(name);
    const pb::Stream s = to_stream(doc);
    REQUIRE(s.taps.size() == tap_count);
    const Graph g = jax().decode(s);
    // As the ladder compares taps: unoptimised, plain layouts, by value name.
    pb::Network net(g, stream_input_shapes(g, s), pb::CompileOptions::inspectable());
    std::vector<const Tensor*> inputs;
    for (const std::string& in : s.inputs) inputs.push_back(&s.tensors.at(in));
    net.run(inputs);
    size_t compared = 0;
    for (const auto& [module, tensor] : s.taps) {
      INFO(module);
      const Tensor* mine = net.value(module);
      REQUIRE(mine != nullptr);
      CHECK(mine->shape() == s.tensors.at(tensor).shape());
      CHECK(excess(*mine, s.tensors.at(tensor), 1e-5, 1e-5) <= 0);  // same shape, same layout
      ++compared;
    }
    CHECK(compared == tap_count);
    // The tapped values are produced in the modules' order, so the first tap outside tolerance
    // is the first module that diverges.
    size_t previous = 0;
    for (const json& m : doc["model"]["modules"]) {
      const std::string module = m["name"];
      if (!s.taps.count(module)) continue;
      INFO(module);
      const size_t at = node_index(g, module);
      CHECK(at >= previous);
      previous = at;
    }
    // The ladder's own tap check compares every one of them.
    const pb::host::CaseResult r = pbtest::ladder(s, jax());
    INFO(r.message << r.tap_error);
    CHECK(r.tap_error.empty());
    CHECK(r.taps.size() == tap_count);
  }

  // A tapped module held only channels-first gets a Transpose back, named after it, right after
  // it; element-wise consumers still compute channels-first (relu reads BatchNorm_0@NCHW).
  const json doc = load_doc("norms_pools");
  const Graph g = jax().decode(to_stream(doc));
  for (const char* module : {"Conv_0", "BatchNorm_0", "relu_0"}) {
    INFO(module);
    const pb::ir::Node& t = node(g, module);
    CHECK(t.op == "Transpose");
    CHECK(t.inputs == std::vector<std::string>{std::string(module) + "@NCHW"});
    CHECK(t.attrs.ints("perm") == std::vector<int64_t>{0, 2, 3, 1});
    CHECK(node_index(g, module) == node_index(g, std::string(module) + "@NCHW") + 1);
  }
  CHECK(node(g, "relu_0@NCHW").inputs == std::vector<std::string>{"BatchNorm_0@NCHW"});
  CHECK(node(g, "max_pool_0@NCHW").inputs == std::vector<std::string>{"relu_0@NCHW"});
  // A consumer needing channels-last (the output) reuses the tap's node: one per value.
  CHECK(count_nodes(g, "Transpose", "max_pool_0@NCHW") == 1);
  // Without taps, the channels-first intermediates of a spatial chain have no value of the
  // module's name.
  const Graph bare = decode(without_taps(doc));
  CHECK(bare.find_node("BatchNorm_0") == nullptr);
  CHECK(bare.find_node("BatchNorm_0@NCHW") != nullptr);
  CHECK(g.nodes.size() == bare.nodes.size() + 3);  // the tap views of Conv_0, BatchNorm_0, relu_0
}

TEST_CASE("jax decoder: the tap-only transposes cost nothing at run time", "[jax]") {
  for (const char* name : {"conv", "norms_pools", "embed_conv1d"}) {
    INFO(name);
    const json doc = load_doc(name);
    const pb::Stream s = to_stream(doc), bare_s = to_stream(without_taps(doc));
    const Graph g = jax().decode(s), bare = jax().decode(bare_s);
    CHECK(g.nodes.size() >= bare.nodes.size());
    // The optimised compile (remove_unused, then fusion) executes the same nodes either way.
    pb::Network tapped(g, stream_input_shapes(g, s)), plain(bare, stream_input_shapes(bare, bare_s));
    const Graph& te = tapped.executed_graph();
    const Graph& pe = plain.executed_graph();
    CHECK(te.nodes.size() <= pe.nodes.size());
    std::vector<std::string> tn, pn;
    for (const auto& n : te.nodes) tn.push_back(n.name + " " + n.op + " " + n.attrs.s("activation", ""));
    for (const auto& n : pe.nodes) pn.push_back(n.name + " " + n.op + " " + n.attrs.s("activation", ""));
    std::sort(tn.begin(), tn.end());
    std::sort(pn.begin(), pn.end());
    CHECK(tn == pn);
  }
}

TEST_CASE("jax decoder: a corrupted Conv kernel is reported at that Conv", "[jax]") {
  // norms_pools: Conv_0 -> BatchNorm_0 -> relu_0 -> pools; Conv_0 is no output, its tap is
  // compared only through its channels-last tap view.
  json doc = load_doc("norms_pools");
  for (json& v : doc["tensors"]["params/Conv_0/kernel"]["data"]) v = v.get<double>() + 0.5;
  const pb::Stream s = to_stream(doc);
  const pb::host::CaseResult r = pbtest::ladder(s, jax());
  INFO(r.message << " / " << r.first_divergence);
  CHECK(r.verdict == pb::host::Verdict::FAIL);
  REQUIRE(!r.taps.empty());
  CHECK(r.taps[0].value == "Conv_0");
  CHECK(!r.taps[0].vs_native.within);
  CHECK(r.first_divergence.rfind("node \"Conv_0\" (flax:Conv_0", 0) == 0);
}

TEST_CASE("jax decoder: BatchNorm reads batch_stats with Flax's epsilon 1e-5 - pools - LayerNorm, RMSNorm 1e-6", "[jax]") {
  json doc = load_doc("norms_pools");
  const pb::Stream s = to_stream(doc);
  const Graph g = jax().decode(s);
  CHECK(!doc["model"]["modules"][1].contains("epsilon"));
  const pb::ir::Node& bn = node(g, "BatchNorm_0@NCHW");
  CHECK(bn.op == "BatchNorm");
  CHECK(bn.inputs == std::vector<std::string>{"Conv_0@NCHW", "params/BatchNorm_0/scale", "params/BatchNorm_0/bias",
                                              "batch_stats/BatchNorm_0/mean", "batch_stats/BatchNorm_0/var"});
  CHECK(bn.attrs.f("eps") == 1e-5);
  CHECK(node(g, "relu_0@NCHW").inputs == std::vector<std::string>{"BatchNorm_0@NCHW"});

  const pb::ir::Node& mp = node(g, "max_pool_0@NCHW");
  CHECK(mp.op == "Pool");
  CHECK(mp.attrs.s("mode") == "max");
  CHECK(mp.attrs.ints("kernel") == std::vector<int64_t>{3, 3});
  CHECK(mp.attrs.ints("pads_begin") == std::vector<int64_t>{1, 1});  // SAME: 5 by 2 -> 3, total 2
  CHECK(mp.attrs.ints("pads_end") == std::vector<int64_t>{1, 1});
  const pb::ir::Node& ap = node(g, "avg_pool_0@NCHW");
  CHECK(ap.attrs.s("mode") == "avg");
  CHECK(ap.attrs.i("count_include_pad") == 0);
  CHECK(ap.attrs.ints("pads_begin") == std::vector<int64_t>{1, 0});
  CHECK(ap.attrs.ints("pads_end") == std::vector<int64_t>{0, 1});
  CHECK(node(g, "avg_pool_1@NCHW").attrs.i("count_include_pad") == 1);
  // jnp.mean / jnp.max over (1, 2): a global pool, flattened to Flax's [N, C].
  CHECK(node(g, "mean_0/pool").attrs.i("global") == 1);
  CHECK(node(g, "mean_0/pool").attrs.s("mode") == "avg");
  CHECK(node(g, "mean_0").op == "Flatten");
  CHECK(node(g, "max_0/pool").attrs.s("mode") == "max");
  CHECK(node(g, "LayerNorm_0").op == "LayerNorm");
  CHECK(node(g, "LayerNorm_0").inputs == std::vector<std::string>{"mean_0", "params/LayerNorm_0/scale", "params/LayerNorm_0/bias"});
  CHECK(node(g, "LayerNorm_0").attrs.f("eps") == 1e-6);
  CHECK(node(g, "LayerNorm_0").attrs.i("axis") == -1);
  CHECK(node(g, "RMSNorm_0").op == "RMSNorm");
  CHECK(node(g, "RMSNorm_0").attrs.f("eps") == 1e-6);
  check_outputs(s, g);

  // The running variances are ~1e-5: another epsilon gives other outputs.
  json other = doc;
  other["model"]["modules"][1]["epsilon"] = 1e-3;
  CHECK(worst_excess(other) > 1e-3);
  other["model"]["modules"][1]["epsilon"] = 1e-5;
  CHECK(worst_excess(other) <= 0);
  // use_scale = false: a constant scale of ones, and the stream's scale is then an error.
  other = doc;
  other["model"]["modules"][1]["use_scale"] = false;
  CHECK_THROWS_MATCHES(decode(other), pb::Error, ErrorAt("tensors[\"params/BatchNorm_0/scale\"]", "use_scale = false"));
  other["tensors"].erase("params/BatchNorm_0/scale");
  CHECK(node(decode(other), "BatchNorm_0@NCHW").inputs[1] == "BatchNorm_0.scale");
}

TEST_CASE("jax decoder: Embed over i32 ids into a 1-D conv - an out-of-range id stops the run naming the node", "[jax]") {
  json doc = load_doc("embed_conv1d");
  pb::Stream s = to_stream(doc);
  const Graph g = jax().decode(s);
  REQUIRE(g.inputs.size() == 1);
  CHECK(g.inputs[0].dtype == pb::DType::i32);
  CHECK(g.inputs[0].shape == pb::Shape{-1, 6});
  CHECK(node(g, "Embed_0").op == "Embedding");
  CHECK(node(g, "Embed_0").inputs == std::vector<std::string>{"x", "params/Embed_0/embedding"});
  CHECK(node(g, "Embed_0@NCW").attrs.ints("perm") == std::vector<int64_t>{0, 2, 1});  // [N, T, D] -> [N, D, T]
  CHECK(g.weights.at("params/Conv_0/kernel@OIW").shape() == pb::Shape{4, 3, 3});
  CHECK(node(g, "max_0/pool").attrs.s("mode") == "max");
  check_outputs(s, g);

  // vocabulary 7: id 7 is out of range.
  doc["tensors"]["input.0"]["data"][4] = 7;
  s = to_stream(doc);
  try {
    run(s, jax().decode(s));
    FAIL("an out-of-range id ran");
  } catch (const pb::Error& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(what.find("Embed_0") != std::string::npos);
    CHECK(what.find("id 7") != std::string::npos);
  }
}

TEST_CASE("jax decoder: Dropout is the identity only when deterministic", "[jax]") {
  json doc = load_doc("embed_conv1d");
  const json dropout = json::parse(R"({"type": "Dropout", "name": "Dropout_0", "rate": 0.5, "deterministic": true})");
  doc["model"]["modules"].insert(doc["model"]["modules"].begin() + 3, dropout);
  const pb::Stream s = to_stream(doc);
  const Graph g = jax().decode(s);
  CHECK(node(g, "Dropout_0@NCW").op == "Identity");  // kept channels-first between relu and the pool
  check_outputs(s, g);
  doc["model"]["modules"][3]["deterministic"] = false;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules[3]", "not deterministic is random"));
}

TEST_CASE("jax decoder: ConvTranspose kernels [k..., I, O] become the IR's [I, O, k...] flipped - SAME, VALID, pairs, transpose_kernel, 1-D", "[jax]") {
  json doc = load_doc("conv_transpose");
  const pb::Stream s = to_stream(doc);
  const Graph g = jax().decode(s);

  // ConvTranspose_0: kernel [2, 3], strides [3, 1], "SAME". lax pads the lhs-dilated x by
  // (1, 2) in dim 0 (stride > k - 1: lo = k - 1) and (1, 1) in dim 1; the gradient form has
  // pads_begin = (k - 1) - lo, pads_end = (k - 1) - hi: dim 0's -1 is output_padding 1.
  const pb::ir::Node& c0 = node(g, "ConvTranspose_0@NCHW");
  CHECK(c0.op == "ConvTranspose");
  CHECK(c0.origin == "flax:ConvTranspose_0 (ConvTranspose)");
  CHECK(c0.inputs == std::vector<std::string>{"x@NCHW", "params/ConvTranspose_0/kernel@IOHW_flipped", "params/ConvTranspose_0/bias"});
  CHECK(c0.attrs.ints("strides") == std::vector<int64_t>{3, 1});
  CHECK(c0.attrs.ints("pads_begin") == std::vector<int64_t>{0, 1});
  CHECK(c0.attrs.ints("pads_end") == std::vector<int64_t>{0, 1});
  CHECK(c0.attrs.ints("output_padding") == std::vector<int64_t>{1, 0});
  const Tensor& k = s.tensors.at("params/ConvTranspose_0/kernel");
  const Tensor& w = g.weights.at("params/ConvTranspose_0/kernel@IOHW_flipped");
  REQUIRE(k.shape() == pb::Shape{2, 3, 3, 4});
  REQUIRE(w.shape() == pb::Shape{3, 4, 2, 3});
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t x = 0; x < 3; ++x)
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t o = 0; o < 4; ++o)
          CHECK(w.data<float>()[((i * 4 + o) * 2 + (1 - h)) * 3 + (2 - x)] == k.data<float>()[((h * 3 + x) * 3 + i) * 4 + o]);
  // Flax's output size: in * stride under "SAME".
  CHECK(s.tensors.at(s.expected[0]).shape() == pb::Shape{2, 12, 5, 4});

  // ConvTranspose_1: explicit pairs go to the dilated conv as they are; kernel_dilation [1, 2].
  const pb::ir::Node& c1 = node(g, "ConvTranspose_1@NCHW");
  CHECK(c1.inputs.size() == 2);
  CHECK(c1.attrs.ints("pads_begin") == std::vector<int64_t>{1, 4});
  CHECK(c1.attrs.ints("pads_end") == std::vector<int64_t>{0, 3});
  CHECK(c1.attrs.ints("dilations") == std::vector<int64_t>{1, 2});
  CHECK(c1.attrs.ints("output_padding") == std::vector<int64_t>{0, 0});
  // ConvTranspose_2: transpose_kernel (kernel [k..., O, I]): lax flips it, so the IR's weight is
  // the kernel unflipped, [I, O, k...].
  const Tensor& k2 = s.tensors.at("params/ConvTranspose_2/kernel");
  const Tensor& w2 = g.weights.at("params/ConvTranspose_2/kernel@IOHW");
  REQUIRE(k2.shape() == pb::Shape{3, 2, 3, 3});
  REQUIRE(w2.shape() == pb::Shape{3, 3, 3, 2});
  for (int64_t h = 0; h < 3; ++h)
    for (int64_t x = 0; x < 2; ++x)
      for (int64_t o = 0; o < 3; ++o)
        for (int64_t i = 0; i < 3; ++i)
          CHECK(w2.data<float>()[((i * 3 + o) * 3 + h) * 2 + x] == k2.data<float>()[((h * 2 + x) * 3 + o) * 3 + i]);
  // "VALID": in * stride + max(k - stride, 0).
  CHECK(s.tensors.at(s.expected[2]).shape() == pb::Shape{2, 6, 15, 3});
  // ConvTranspose_3: 1-D with an int kernel_size.
  CHECK(g.weights.at("params/ConvTranspose_3/kernel@IOW_flipped").shape() == pb::Shape{3, 2, 3});
  CHECK(s.tensors.at(s.expected[3]).shape() == pb::Shape{2, 13, 2});
  check_outputs(s, g);

  // Each fact violated changes the result beyond tolerance: the padding split, the kernel
  // flip (transpose_kernel read the other way).
  json lower = doc;
  lower["model"]["modules"][1]["padding"] = {{2, 1}, {1, 0}};
  CHECK(worst_excess(lower) > 1e-3);
  json unflipped = doc;
  unflipped["model"]["modules"][2]["transpose_kernel"] = false;
  // (I = O = 3: its kernel [3, 2, 3, 3] fits both layouts)
  CHECK(worst_excess(unflipped) > 1e-3);

  // Refusals name the JSON path.
  struct Case {
    std::function<void(json&)> mutate;
    const char* where;
    const char* what;
  };
  const auto mod = [](json& d, int i) -> json& { return d["model"]["modules"][i]; };
  const std::vector<Case> cases = {
      {[&](json& d) { mod(d, 0)["padding"] = "CIRCULAR"; }, "model.modules[0].padding", "not supported: Flax wraps the output"},
      {[&](json& d) { mod(d, 0)["padding"] = "SAME_LOWER"; }, "model.modules[0].padding", "expected \"SAME\", \"VALID\""},
      {[&](json& d) { mod(d, 1)["padding"] = {{3, 2}, {0, 1}}; }, "model.modules[1].padding", "a low padding of 3 in spatial dim 0 exceeds"},
      {[&](json& d) { mod(d, 1)["padding"] = {{1, 2}, {0, 7}}; }, "model.modules[1].padding", "a high padding of 7 in spatial dim 1"},
      {[&](json& d) { mod(d, 1)["padding"] = {{1, -1}, {0, 1}}; }, "model.modules[1].padding[0][1]", "negative padding"},
      {[&](json& d) { mod(d, 0)["strides"] = {3}; }, "model.modules[0].strides", "expected 2 values"},
      {[&](json& d) { mod(d, 0)["feature_group_count"] = 1; }, "model.modules[0].feature_group_count", "not understood for ConvTranspose"},
      {[&](json& d) { mod(d, 0)["kernel_size"] = 2; }, "model.modules[0]", "needs an input [batch, spatial..., features] of rank 3"},
      {[&](json& d) { mod(d, 0)["features"] = 3; }, "tensors[\"params/ConvTranspose_0/kernel\"].shape",
       "expected [kernel_size..., in_features, features] = [2, 3, 3, 3] (Flax's layout)"},
      {[&](json& d) { mod(d, 0)["transpose_kernel"] = true; }, "tensors[\"params/ConvTranspose_0/kernel\"].shape",
       "expected [kernel_size..., features, in_features] = [2, 3, 4, 3] (Flax's layout, transpose_kernel)"},
      {[&](json& d) { mod(d, 1)["use_bias"] = true; }, "model.modules[1]", "missing param \"params/ConvTranspose_1/bias\""},
      {[&](json& d) { mod(d, 0)["dtype"] = "bfloat16"; }, "model.modules[0].dtype", "only float32"},
  };
  for (const Case& c : cases) {
    json d = doc;
    c.mutate(d);
    INFO(c.where);
    CHECK_THROWS_MATCHES(decode(d), pb::Error, ErrorAt(c.where, c.what));
  }
}

TEST_CASE("jax decoder: GroupNorm is Reshape [0, groups, -1] -> LayerNorm -> Reshape -> per-channel BatchNorm, channels-first, batch open", "[jax]") {
  json doc = load_doc("group_norm");
  const pb::Stream s = to_stream(doc);
  const Graph g = jax().decode(s);

  // GroupNorm_0 over x [2, 4, 5, 6], 3 groups: the groups are consecutive channels, so it reads
  // x channels-first; no epsilon in the stream: Flax's 1e-6.
  const pb::ir::Node& r0 = node(g, "GroupNorm_0/groups");
  CHECK(r0.op == "Reshape");
  CHECK(r0.inputs == std::vector<std::string>{"x@NCHW"});
  CHECK(r0.attrs.ints("shape") == std::vector<int64_t>{0, 3, -1});
  const pb::ir::Node& n0 = node(g, "GroupNorm_0/norm");
  CHECK(n0.op == "LayerNorm");
  CHECK(n0.inputs.size() == 1);  // no affine there
  CHECK(n0.attrs.f("eps") == Approx(1e-6));
  CHECK(node(g, "GroupNorm_0/shape").attrs.ints("shape") == std::vector<int64_t>{0, 6, 4, 5});
  const pb::ir::Node& b0 = node(g, "GroupNorm_0@NCHW");
  CHECK(b0.op == "BatchNorm");
  CHECK(b0.inputs == std::vector<std::string>{"GroupNorm_0/shape", "params/GroupNorm_0/scale", "params/GroupNorm_0/bias", "GroupNorm_0.mean",
                                              "GroupNorm_0.var"});
  CHECK(b0.attrs.f("eps") == 0.0);
  CHECK(node(g, "relu_0@NCHW").inputs == std::vector<std::string>{"GroupNorm_0@NCHW"});
  // GroupNorm_1 over v [3, 8], group_size 2 (4 groups), no scale: a constant 1.
  CHECK(node(g, "GroupNorm_1/groups").attrs.ints("shape") == std::vector<int64_t>{0, 4, -1});
  CHECK(node(g, "GroupNorm_1").inputs[1] == "GroupNorm_1.scale");
  check_outputs(s, g);

  // The grouping is what makes these match: groups of the channels-last flattening (or another
  // count) do not.
  json other = doc;
  other["model"]["modules"][0]["num_groups"] = 2;
  CHECK(worst_excess(other) > 1e-3);

  struct Case {
    std::function<void(json&)> mutate;
    const char* where;
    const char* what;
  };
  const auto mod = [](json& d, int i) -> json& { return d["model"]["modules"][i]; };
  const std::vector<Case> cases = {
      {[&](json& d) { mod(d, 0)["num_groups"] = 4; }, "model.modules[0].num_groups", "6 features do not split into 4 groups"},
      {[&](json& d) { mod(d, 2)["group_size"] = 3; }, "model.modules[2].group_size", "8 features do not split into groups of 3"},
      {[&](json& d) { mod(d, 0)["group_size"] = 2; }, "model.modules[0]", "exactly one of num_groups and group_size"},
      {[&](json& d) { mod(d, 2)["group_size"] = nullptr; }, "model.modules[2]", "exactly one of num_groups and group_size"},
      {[&](json& d) { mod(d, 0)["reduction_axes"] = {1, 2}; }, "model.modules[0].reduction_axes", "only the default reduction_axes"},
      {[&](json& d) { mod(d, 0)["axis_name"] = "batch"; }, "model.modules[0].axis_name", "cross-device"},
      {[&](json& d) { mod(d, 0)["use_scale"] = false; }, "tensors[\"params/GroupNorm_0/scale\"]", "use_scale = false"},
      {[&](json& d) { mod(d, 2)["use_scale"] = true; }, "model.modules[2]", "missing param \"params/GroupNorm_1/scale\""},
      {[&](json& d) { mod(d, 0)["param_dtype"] = "float16"; }, "model.modules[0].param_dtype", "only float32"},
  };
  for (const Case& c : cases) {
    json d = doc;
    c.mutate(d);
    INFO(c.where);
    CHECK_THROWS_MATCHES(decode(d), pb::Error, ErrorAt(c.where, c.what));
  }
}

TEST_CASE("jax decoder: DenseGeneral contracts sorted axes with the kernel [in..., features...] - head split, head merge, a middle axis", "[jax]") {
  json doc = load_doc("dense_general");
  const pb::Stream s = to_stream(doc);
  const Graph g = jax().decode(s);

  // DenseGeneral_0: features [2, 3] over the last axis: Dense to 6, then Reshape [0, 0, 0, 2, 3].
  const pb::ir::Node& d0 = node(g, "DenseGeneral_0/dense");
  CHECK(d0.op == "Dense");
  CHECK(d0.inputs == std::vector<std::string>{"x", "params/DenseGeneral_0/kernel@T", "params/DenseGeneral_0/bias@flat"});
  CHECK(g.weights.at("params/DenseGeneral_0/kernel@T").shape() == pb::Shape{6, 5});
  CHECK(node(g, "DenseGeneral_0").attrs.ints("shape") == std::vector<int64_t>{0, 0, 0, 2, 3});
  const Tensor& k0 = s.tensors.at("params/DenseGeneral_0/kernel");
  const Tensor& w0 = g.weights.at("params/DenseGeneral_0/kernel@T");
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t f = 0; f < 6; ++f) CHECK(w0.data<float>()[f * 5 + i] == k0.data<float>()[i * 6 + f]);
  // DenseGeneral_1: axis [-2, -1] merged (already trailing: no Transpose), one feature dim.
  CHECK(node(g, "DenseGeneral_1/merged").attrs.ints("shape") == std::vector<int64_t>{0, 0, -1});
  CHECK(node(g, "DenseGeneral_1").op == "Dense");
  CHECK(g.weights.at("params/DenseGeneral_1/kernel@T").shape() == pb::Shape{6, 20});
  CHECK(std::none_of(g.nodes.begin(), g.nodes.end(), [](const pb::ir::Node& n) {
    return std::count(n.outputs.begin(), n.outputs.end(), "DenseGeneral_1/moved") > 0;
  }));
  // DenseGeneral_2: axis [1] of [2, 3, 4, 5]: moved last first, no bias.
  CHECK(node(g, "DenseGeneral_2/moved").attrs.ints("perm") == std::vector<int64_t>{0, 2, 3, 1});
  CHECK(node(g, "DenseGeneral_2").op == "Dense");  // one feature dim: no split
  CHECK(node(g, "DenseGeneral_2").inputs.size() == 2);
  check_outputs(s, g);

  // The kernel's [in..., features...] order is what makes these match: features [3, 2] read
  // from the same bytes (an IR-style [features, in] reading would be the same mistake) do not.
  json swapped = without_taps(doc);
  swapped["model"]["modules"][0]["features"] = {6};
  swapped["tensors"]["params/DenseGeneral_0/kernel"]["shape"] = {5, 6};
  swapped["tensors"]["params/DenseGeneral_0/bias"]["shape"] = {6};
  swapped["tensors"]["output.0"]["shape"] = {2, 3, 4, 6};
  CHECK(worst_excess(swapped) <= 0);  // the flat [in, prod(features)] reading is the same

  struct Case {
    std::function<void(json&)> mutate;
    const char* where;
    const char* what;
  };
  const auto mod = [](json& d, int i) -> json& { return d["model"]["modules"][i]; };
  const std::vector<Case> cases = {
      {[&](json& d) { mod(d, 0)["batch_dims"] = {0}; }, "model.modules[0].batch_dims", "not supported"},
      {[&](json& d) { mod(d, 1)["axis"] = {0, -1}; }, "model.modules[1].axis", "contracting the batch dim"},
      {[&](json& d) { mod(d, 1)["axis"] = {4}; }, "model.modules[1].axis", "out of range for an input of rank 4"},
      {[&](json& d) { mod(d, 1)["axis"] = {-1, 3}; }, "model.modules[1].axis", "repeated axes"},
      {[&](json& d) { mod(d, 0)["features"] = {3, 2}; }, "tensors[\"params/DenseGeneral_0/kernel\"].shape",
       "expected [x.shape[axis]..., features...] = [5, 3, 2] (Flax's layout)"},
      {[&](json& d) { mod(d, 0)["features"] = json::array(); }, "model.modules[0].features", "non-empty list"},
      {[&](json& d) { mod(d, 2)["use_bias"] = true; }, "model.modules[2]", "missing param \"params/DenseGeneral_2/bias\""},
      {[&](json& d) { mod(d, 0)["use_bias"] = false; }, "tensors[\"params/DenseGeneral_0/bias\"]", "use_bias = false"},
  };
  for (const Case& c : cases) {
    json d = doc;
    c.mutate(d);
    INFO(c.where);
    CHECK_THROWS_MATCHES(decode(d), pb::Error, ErrorAt(c.where, c.what));
  }
}

TEST_CASE("jax decoder: Einsum, jnp.einsum and matmul are one MatMul between Transposes and Reshapes", "[jax]") {
  json doc = load_doc("einsum");
  const pb::Stream s = to_stream(doc);
  const Graph g = jax().decode(s);

  // Einsum_0 'abc,cde->abde': x [a b | c] merged to [-1, 4] (a is the open batch), the kernel
  // [4, 3, 2] read as [c, de] = [4, 6], the product split to [-1, 3, 3, 2], then + bias [1, 1, 3, 2].
  CHECK(node(g, "Einsum_0/lhs").attrs.ints("shape") == std::vector<int64_t>{-1, 4});
  CHECK(g.weights.at("params/Einsum_0/kernel@einsum").shape() == pb::Shape{4, 6});
  CHECK(node(g, "Einsum_0/einsum").attrs.ints("shape") == std::vector<int64_t>{-1, 3, 3, 2});
  CHECK(node(g, "Einsum_0").op == "Add");
  CHECK(g.weights.at("params/Einsum_0/bias@broadcast").shape() == pb::Shape{1, 1, 3, 2});
  // Einsum_1 'abc,bd->adc': b contracted (x's middle axis moved last), the free axes reordered.
  CHECK(node(g, "Einsum_1/lhs_t").attrs.ints("perm") == std::vector<int64_t>{0, 2, 1});
  CHECK(node(g, "Einsum_1/split").attrs.ints("shape") == std::vector<int64_t>{-1, 4, 5});
  CHECK(node(g, "Einsum_1/einsum").attrs.ints("perm") == std::vector<int64_t>{0, 2, 1});
  CHECK(g.weights.at("params/Einsum_1/bias@broadcast").shape() == pb::Shape{1, 5, 1});
  const Tensor& k1 = s.tensors.at("params/Einsum_1/kernel");
  CHECK(values(g.weights.at("params/Einsum_1/kernel@einsum")) == values(k1));  // [b, d] as it is
  // Einsum_2 'abc,cbd->ad': two axes contracted; the kernel [c, b, d] to [b·c, d] in x's order.
  const Tensor& k2 = s.tensors.at("params/Einsum_2/kernel");
  const Tensor& w2 = g.weights.at("params/Einsum_2/kernel@einsum");
  CHECK(w2.shape() == pb::Shape{12, 6});
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t c = 0; c < 4; ++c)
      for (int64_t d = 0; d < 6; ++d) CHECK(w2.data<float>()[(b * 4 + c) * 6 + d] == k2.data<float>()[(c * 3 + b) * 6 + d]);
  CHECK(node(g, "Einsum_2").op == "MatMul");
  // jnp.einsum 'abc,acd->abd' is the IR's batched MatMul as it is; matmul too.
  CHECK(node(g, "einsum_0").op == "MatMul");
  CHECK(node(g, "einsum_0").inputs == std::vector<std::string>{"x", "y"});
  CHECK(node(g, "einsum_1").attrs.ints("perm") == std::vector<int64_t>{2, 1, 0});
  CHECK(node(g, "matmul_0").op == "MatMul");
  CHECK(node(g, "matmul_0").inputs == std::vector<std::string>{"x", "y"});
  check_outputs(s, g);
  pbtest::check_passes(pbtest::ladder(s, jax()), s);

  // The kernel's index order is what makes Einsum_2 match: the same bytes read as [b, c, d] do not.
  json swapped = without_taps(doc);
  swapped["model"]["modules"][2]["einsum_str"] = "abc,bcd->ad";
  swapped["model"]["modules"][2]["shape"] = {3, 4, 6};
  swapped["tensors"]["params/Einsum_2/kernel"]["shape"] = {3, 4, 6};
  CHECK(worst_excess(swapped) > 1e-3);

  struct Case {
    std::function<void(json&)> mutate;
    const char* where;
    const char* what;
  };
  const auto mod = [](json& d, int i) -> json& { return d["model"]["modules"][i]; };
  const std::vector<Case> cases = {
      {[&](json& d) { mod(d, 0)["einsum_str"] = "abc,cde"; }, "model.modules[0].einsum_str", "must be explicit and include \"->\""},
      {[&](json& d) { mod(d, 0)["einsum_str"] = "...c,cde->...de"; }, "model.modules[0].einsum_str", "ellipsis (...) is not supported"},
      {[&](json& d) { mod(d, 0)["einsum_str"] = "abb,cde->abde"; }, "model.modules[0].einsum_str",
       "index 'b' repeats in the first operand \"abb\" (a trace or diagonal): not supported"},
      {[&](json& d) { mod(d, 0)["einsum_str"] = "abc,cde,ef->abde"; }, "model.modules[0].einsum_str", "expected exactly two operands"},
      {[&](json& d) { mod(d, 0)["einsum_str"] = "ab1,cde->abde"; }, "model.modules[0].einsum_str", "unexpected character '1'"},
      {[&](json& d) { mod(d, 0)["einsum_str"] = "abc,cde->abdd"; }, "model.modules[0].einsum_str", "index 'd' repeats in the output"},
      {[&](json& d) { mod(d, 3)["subscripts"] = "abc,acd->abx"; }, "model.modules[3].subscripts", "output index 'x' is in neither operand"},
      {[&](json& d) { mod(d, 3)["subscripts"] = "abc,acd->ab"; }, "model.modules[3].subscripts",
       "index 'd' is summed within one operand only: not supported"},
      {[&](json& d) { mod(d, 3)["subscripts"] = "ab,bcd->acd"; }, "model.modules[3].subscripts",
       "the first operand \"ab\" has 2 indices, the array is [2, 3, 4]"},
      {[&](json& d) { mod(d, 3)["subscripts"] = "abc,bcd->abd"; }, "model.modules[3].subscripts", "index 'b' is 3 in one operand and 2 in the other"},
      {[&](json& d) { mod(d, 3)["subscripts"] = "abc,dce->abde"; }, "model.modules[3].subscripts",
       "two axes the graph keeps open (the batch) would need inferring in one reshape"},
      {[&](json& d) { mod(d, 0)["shape"] = {4, 3, 3}; }, "tensors[\"params/Einsum_0/kernel\"].shape", "expected shape = [4, 3, 3], got [4, 3, 2]"},
      {[&](json& d) { d["tensors"]["params/Einsum_1/bias"]["shape"] = {1, 5}; }, "tensors[\"params/Einsum_1/bias\"].shape",
       "the kernel's dims of the output indices, in the output's order = [5]"},
      {[&](json& d) { mod(d, 2)["use_bias"] = true; }, "model.modules[2]", "missing param \"params/Einsum_2/bias\""},
      {[&](json& d) { mod(d, 0)["use_bias"] = false; }, "tensors[\"params/Einsum_0/bias\"]", "use_bias = false"},
      {[&](json& d) { mod(d, 6)["precision"] = "highest"; }, "model.modules[6].precision", "only the default precision"},
  };
  for (const Case& c : cases) {
    json d = doc;
    c.mutate(d);
    INFO(c.where << ": " << c.what);
    CHECK_THROWS_MATCHES(decode(d), pb::Error, ErrorAt(c.where, c.what));
  }
  // numpy's vector case of matmul (a 1-D operand) is refused.
  json vec = doc;
  vec["model"]["modules"] = json::array({{{"type", "matmul"}, {"name", "matmul_0"}, {"inputs", {"x", "v"}}}});
  vec["model"]["inputs"] = {"x", "v"};
  vec["model"]["outputs"] = {"matmul_0"};
  vec["tensors"] = {{"input.0", {{"dtype", "f32"}, {"shape", {2, 3, 4}}, {"data", std::vector<float>(24, 1.f)}}},
                    {"input.1", {{"dtype", "f32"}, {"shape", {4}}, {"data", std::vector<float>(4, 1.f)}}},
                    {"output.0", {{"dtype", "f32"}, {"shape", {2, 3}}, {"data", std::vector<float>(6, 4.f)}}}};
  vec["expected"] = {"output.0"};
  vec.erase("taps");
  CHECK_THROWS_MATCHES(decode(vec), pb::Error, ErrorAt("model.modules[0]", "matmul of a 1-D operand [4] (numpy's vector case) is not supported"));
}

TEST_CASE("jax decoder: MultiHeadDotProductAttention and SelfAttention - projections, scaled scores, Flax's masks, cross-attention", "[jax]") {
  json doc = load_doc("attention");
  const pb::Stream s = to_stream(doc);
  const Graph g = jax().decode(s);

  // query DenseGeneral kernel [in 6, heads 2, head_dim 3] read flat [6, 6] and transposed; bias [2, 3] flat.
  const pb::ir::Node& q0 = node(g, "MultiHeadDotProductAttention_0/query/dense");
  CHECK(q0.op == "Dense");
  CHECK(q0.inputs == std::vector<std::string>{"x", "params/MultiHeadDotProductAttention_0/query/kernel@T",
                                              "params/MultiHeadDotProductAttention_0/query/bias@flat"});
  const Tensor& kq = s.tensors.at("params/MultiHeadDotProductAttention_0/query/kernel");
  const Tensor& wq = g.weights.at("params/MultiHeadDotProductAttention_0/query/kernel@T");
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t f = 0; f < 6; ++f) CHECK(wq.data<float>()[f * 6 + i] == kq.data<float>()[i * 6 + f]);
  CHECK(node(g, "MultiHeadDotProductAttention_0/q").attrs.ints("shape") == std::vector<int64_t>{0, 0, 2, 3});
  const pb::ir::Node& scores = node(g, "MultiHeadDotProductAttention_0/scores");
  CHECK(scores.attrs.i("transpose_b") == 1);
  CHECK(scores.attrs.f("scale") == Approx(1 / std::sqrt(3.0)));
  CHECK(node(g, "MultiHeadDotProductAttention_0/weights").attrs.i("axis") == -1);
  CHECK(g.weights.at("params/MultiHeadDotProductAttention_0/out/kernel@T").shape() == pb::Shape{6, 6});
  // The causal mask is a constant [1, 1, 5, 5] expanded to the batch; Where puts finfo(f32).min.
  CHECK(node(g, "make_causal_mask_0").op == "Expand");
  const pb::ir::Node& masked = node(g, "SelfAttention_0/scores");  // after the mask (the product: SelfAttention_0/product)
  CHECK(masked.op == "Where");
  CHECK(masked.inputs[0] == "make_causal_mask_0");
  CHECK(values(g.weights.at(masked.inputs[2])) == std::vector<float>{std::numeric_limits<float>::lowest()});
  CHECK(node(g, "SelfAttention_0/query/dense").inputs.size() == 2);  // use_bias false
  CHECK(g.weights.at("params/SelfAttention_0/out/kernel@T").shape() == pb::Shape{4, 6});
  // Cross-attention: key and value project kv [2, 7, 4].
  CHECK(node(g, "MultiHeadDotProductAttention_1/key/dense").inputs[0] == "kv");
  CHECK(node(g, "MultiHeadDotProductAttention_1/value/dense").inputs[0] == "kv");
  CHECK(node(g, "MultiHeadDotProductAttention_1/query/dense").inputs[0] == "x");
  CHECK(node(g, "make_attention_mask_0/pairs").op == "Mul");
  CHECK(node(g, "make_attention_mask_1/pairs").attrs.s("mode") == "ge");
  check_outputs(s, g);
  pbtest::check_passes(pbtest::ladder(s, jax()), s);

  // The steps inside each attention module are IR values named as the capture's taps
  // "<module>/<step>" (capture/flax.js attentionSteps), so a tap comparison names the step.
  for (const char* module : {"MultiHeadDotProductAttention_0", "SelfAttention_0", "MultiHeadDotProductAttention_1", "MultiHeadDotProductAttention_2"})
    for (const char* step : {"q", "k", "v", "scores", "weights", "context"}) {
      const std::string name = std::string(module) + "/" + step;
      INFO(name);
      CHECK(g.find_node(name) != nullptr);
      if (doc["taps"].contains(name)) CHECK(s.taps.at(name) == "tap." + name);
    }
  CHECK(node(g, "MultiHeadDotProductAttention_0/q").op == "Reshape");
  CHECK(node(g, "MultiHeadDotProductAttention_0/context").op == "Transpose");

  // The masks matter: SelfAttention_0 without its causal mask is another result.
  json unmasked = without_taps(doc);
  unmasked["model"]["modules"][2]["inputs"] = {"x"};
  unmasked["model"]["modules"][2]["arguments"] = {"inputs_q"};
  CHECK(worst_excess(unmasked) > 1e-3);

  struct Case {
    std::function<void(json&)> mutate;
    const char* where;
    const char* what;
  };
  const auto mod = [](json& d, int i) -> json& { return d["model"]["modules"][i]; };
  const auto int_valid = [](json& d) {
    d["tensors"]["input.2"]["dtype"] = "i32";
  };
  const std::vector<Case> cases = {
      {[&](json& d) { mod(d, 0)["decode"] = true; }, "model.modules[0].decode", "autoregressive cache"},
      {[&](json& d) { mod(d, 0)["normalize_qk"] = true; }, "model.modules[0].normalize_qk", "not supported"},
      {[&](json& d) { mod(d, 0)["attention_fn"] = "my_attention"; }, "model.modules[0].attention_fn", "only flax.linen.dot_product_attention"},
      {[&](json& d) { mod(d, 0)["deterministic"] = false; mod(d, 0)["dropout_rate"] = 0.1; }, "model.modules[0]", "not deterministic is random"},
      {[&](json& d) { mod(d, 0)["num_heads"] = 4; }, "model.modules[0].num_heads", "qkv_features 6 is not divisible by num_heads 4"},
      {[&](json& d) { mod(d, 3)["qkv_features"] = 5; }, "model.modules[3].qkv_features", "qkv_features 5 is not divisible by num_heads 2"},
      {[&](json& d) { mod(d, 5)["arguments"] = {"inputs_q", "inputs_q", "inputs_v", "mask"}; }, "model.modules[5].arguments[1]",
       "argument \"inputs_q\" given twice"},
      {[&](json& d) { mod(d, 5)["arguments"] = {"inputs_q", "query", "inputs_v", "mask"}; }, "model.modules[5].arguments[1]",
       "unknown argument \"query\" of MultiHeadDotProductAttention"},
      {[&](json& d) { mod(d, 2)["arguments"] = {"inputs_q", "inputs_k"}; }, "model.modules[2].arguments[1]", "unknown argument \"inputs_k\" of SelfAttention"},
      {[&](json& d) { mod(d, 5)["arguments"] = {"inputs_q", "mask"}; }, "model.modules[5].arguments", "names 2 arguments for 4 inputs"},
      {[&](json& d) { mod(d, 5)["arguments"] = {"inputs_q", "inputs_k", "inputs_kv", "mask"}; }, "model.modules[5].arguments", "exclusive"},
      {[&](json& d) { mod(d, 5)["arguments"] = {"mask", "inputs_k", "inputs_v", "inputs_q"}; mod(d, 5)["arguments"][0] = "inputs_kv"; },
       "model.modules[5].arguments", "exclusive"},
      {[&](json& d) { mod(d, 5)["inputs"] = {"x", "x", "make_attention_mask_0"}; mod(d, 5)["arguments"] = {"inputs_q", "inputs_v", "mask"}; },
       "model.modules[5].arguments", "inputs_v without inputs_k"},
      {[&](json& d) { mod(d, 5)["arguments"] = {"inputs_k", "inputs_v", "inputs_kv", "mask"}; mod(d, 5)["arguments"][2] = "inputs_v"; },
       "model.modules[5].arguments[2]", "given twice"},
      {[&](json& d) { mod(d, 5)["inputs"] = {"x", "make_attention_mask_0"}; mod(d, 5)["arguments"] = {"inputs_k", "mask"}; },
       "model.modules[5].arguments", "inputs_q is required"},
      {[&](json& d) { mod(d, 5).erase("arguments"); }, "model.modules[5]", "4 inputs without \"arguments\""},
      {[&](json& d) { mod(d, 0)["inputs"] = {"valid"}; mod(d, 0)["arguments"] = {"inputs_q"}; }, "model.modules[0]",
       "attention over [2, 5] is not supported: inputs are [batch, length, features]"},
      {[&](json& d) { int_valid(d); mod(d, 0)["inputs"] = {"valid"}; }, "model.modules[0]", "attention inputs must be f32, got i32"},
      {[&](json& d) { int_valid(d); }, "model.modules[4].pairwise_fn", "multiply of integer inputs is not supported"},
      {[&](json& d) { mod(d, 5)["inputs"] = {"x", "x", "kv", "make_attention_mask_0"}; }, "model.modules[5]",
       "need one batch and equal key and value lengths"},
      {[&](json& d) { mod(d, 3)["inputs"] = {"x", "kv", "make_causal_mask_0"}; mod(d, 3)["arguments"] = {"inputs_q", "inputs_kv", "mask"}; },
       "model.modules[3]", "the mask [2, 1, 5, 5] does not broadcast to [batch, num_heads, q_length, kv_length] = [2, 2, 5, 7]"},
      {[&](json& d) { d["tensors"]["params/MultiHeadDotProductAttention_0/query/kernel"]["shape"] = {6, 3, 2}; },
       "tensors[\"params/MultiHeadDotProductAttention_0/query/kernel\"].shape",
       "expected [in_features, num_heads, head_dim] = [6, 2, 3] (DenseGeneral's layout), got [6, 3, 2]"},
      {[&](json& d) { d["tensors"]["params/MultiHeadDotProductAttention_0/out/kernel"]["shape"] = {3, 2, 6}; },
       "tensors[\"params/MultiHeadDotProductAttention_0/out/kernel\"].shape", "expected [num_heads, head_dim, out_features] = [2, 3, 6]"},
      {[&](json& d) { d["tensors"]["params/MultiHeadDotProductAttention_0/key/bias"]["shape"] = {6}; },
       "tensors[\"params/MultiHeadDotProductAttention_0/key/bias\"].shape", "expected [num_heads, head_dim] = [2, 3], got [6]"},
      {[&](json& d) { mod(d, 2)["use_bias"] = true; }, "model.modules[2]", "missing param \"params/SelfAttention_0/query/bias\""},
      {[&](json& d) { mod(d, 0)["use_bias"] = false; }, "tensors[\"params/MultiHeadDotProductAttention_0/query/bias\"]",
       "use_bias = false but the stream has its query/bias"},
      {[&](json& d) { mod(d, 1)["extra_batch_dims"] = 1; }, "model.modules[1].extra_batch_dims", "only extra_batch_dims = 0"},
      {[&](json& d) { mod(d, 4)["dtype"] = "bool"; }, "model.modules[4].dtype", "only dtype float32"},
      {[&](json& d) { mod(d, 1)["inputs"] = {"x"}; }, "model.modules[1]", "make_causal_mask of [2, 5, 6] is not supported: pass x [batch, length]"},
      {[&](json& d) { mod(d, 6)["pairwise_fn"] = "logical_and"; }, "model.modules[6].pairwise_fn", "unsupported pairwise_fn \"logical_and\""},
      {[&](json& d) { mod(d, 6)["inputs"] = {"valid", "x"}; }, "model.modules[6]", "make_attention_mask of [2, 5] and [2, 5, 6] is not supported"},
  };
  for (const Case& c : cases) {
    json d = doc;
    c.mutate(d);
    INFO(c.where << ": " << c.what);
    CHECK_THROWS_MATCHES(decode(d), pb::Error, ErrorAt(c.where, c.what));
  }
}

TEST_CASE("jax decoder: SwiGLU as LLaMA writes it in Flax - gate_proj, silu, up_proj, multiply, down_proj", "[jax]") {
  const pb::Stream s = to_stream(load_doc("swiglu"));
  const Graph g = jax().decode(s);
  CHECK(node(g, "SwiGLU_0/gate_proj").inputs[0] == "x");
  CHECK(node(g, "SwiGLU_0/up_proj").inputs[0] == "x");
  CHECK(node(g, "SwiGLU_0/silu_0").attrs.s("function") == "silu");
  CHECK(node(g, "SwiGLU_0/multiply_0").op == "Mul");
  CHECK(node(g, "SwiGLU_0/multiply_0").inputs == std::vector<std::string>{"SwiGLU_0/silu_0", "SwiGLU_0/up_proj"});
  CHECK(node(g, "SwiGLU_0/down_proj").inputs[0] == "SwiGLU_0/multiply_0");
  CHECK(g.weights.at("params/SwiGLU_0/down_proj/kernel@T").shape() == pb::Shape{4, 6});
  check_outputs(s, g);
  pbtest::check_passes(pbtest::ladder(s, jax()), s);
}

TEST_CASE("jax decoder: errors in conv, pool, norm, reduction and Embed fields name the JSON path", "[jax]") {
  const json conv = load_doc("conv");
  struct Case {
    std::function<void(json&)> mutate;
    const char* where;
    const char* what;
  };
  const auto mod = [](json& d, int i) -> json& { return d["model"]["modules"][i]; };
  const std::vector<Case> conv_cases = {
      {[&](json& d) { mod(d, 0)["kernel_size"] = 3; }, "model.modules[0].kernel_size", "expected a list"},
      {[&](json& d) { mod(d, 0)["padding"] = "CIRCULAR"; }, "model.modules[0].padding", "(not supported)"},
      {[&](json& d) { mod(d, 1)["padding"] = {{2, 0, 1}, {0, 1}}; }, "model.modules[1].padding[0]", "expected a [low, high] pair"},
      {[&](json& d) { mod(d, 1)["padding"] = {{2, 0}}; }, "model.modules[1].padding", "expected 2 entries"},
      {[&](json& d) { mod(d, 1)["padding"] = {{-1, 0}, {0, 1}}; }, "model.modules[1].padding[0][0]", "negative padding"},
      {[&](json& d) { mod(d, 1)["strides"] = {2, 1, 1}; }, "model.modules[1].strides", "expected 2 values"},
      {[&](json& d) { mod(d, 1)["kernel_dilation"] = 0; }, "model.modules[1].kernel_dilation", "positive integer"},
      {[&](json& d) { mod(d, 2)["feature_group_count"] = 2; }, "model.modules[2].feature_group_count", "do not divide"},
      {[&](json& d) { mod(d, 0)["input_dilation"] = {2, 1}; }, "model.modules[0].input_dilation", "not supported"},
      {[&](json& d) { mod(d, 0)["mask"] = nullptr; mod(d, 0)["mask"] = 1; }, "model.modules[0].mask", "not understood for Conv"},
      {[&](json& d) { mod(d, 0)["kernel_size"] = {2}; }, "model.modules[0]", "needs an input [batch, spatial..., features] of rank 3"},
      // A kernel in the IR's [O, I, kh, kw] layout is refused, never re-read.
      {[&](json& d) { d["tensors"]["params/Conv_0/kernel"]["shape"] = {2, 3, 2, 3}; },
       "tensors[\"params/Conv_0/kernel\"].shape",
       "expected [kernel_size..., in_features / feature_group_count, features] = [2, 3, 3, 2] (Flax's layout), got [2, 3, 2, 3]"},
      {[&](json& d) { d["tensors"].erase("params/Conv_1/kernel"); }, "model.modules[1]", "Conv \"Conv_1\": missing param"},
      {[&](json& d) { mod(d, 3)["shape"] = {5, -1}; }, "model.modules[3].shape[0]", "the batch dim must stay first"},
      {[&](json& d) { mod(d, 3)["shape"] = {2, 7}; }, "model.modules[3]", "cannot reshape [2, 5, 4, 2] (80 elements) to [0, 7] = [2, 7]"},
  };
  for (size_t i = 0; i < conv_cases.size(); ++i) {
    INFO("conv case " << i);
    json bad = conv;
    conv_cases[i].mutate(bad);
    CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt(conv_cases[i].where, conv_cases[i].what));
  }

  const json np = load_doc("norms_pools");
  const std::vector<Case> np_cases = {
      {[&](json& d) { mod(d, 1)["use_running_average"] = false; }, "model.modules[1].use_running_average", "capture at inference"},
      {[&](json& d) { mod(d, 1).erase("use_running_average"); }, "model.modules[1].use_running_average", "missing required field"},
      {[&](json& d) { mod(d, 1)["axis"] = 1; }, "model.modules[1].axis", "only the last axis"},
      {[&](json& d) { d["tensors"].erase("batch_stats/BatchNorm_0/var"); }, "model.modules[1]",
       "BatchNorm \"BatchNorm_0\": missing variable \"batch_stats/BatchNorm_0/var\""},
      {[&](json& d) { d["tensors"]["batch_stats/BatchNorm_0/mean"]["shape"] = {1, 2}; },
       "tensors[\"batch_stats/BatchNorm_0/mean\"].shape", "expected [features] (the input's last dim) = [2], got [1, 2]"},
      {[&](json& d) { mod(d, 3)["padding"] = 1; }, "model.modules[3].padding", "a list of [low, high] pairs"},
      {[&](json& d) { mod(d, 3)["window_shape"] = {3}; }, "model.modules[3]", "nn.max_pool over 1 spatial dims"},
      {[&](json& d) { mod(d, 4)["count_include_pad"] = nullptr; mod(d, 3)["count_include_pad"] = true; },
       "model.modules[3].count_include_pad", "not understood for nn.max_pool"},
      {[&](json& d) { mod(d, 6)["axis"] = {1}; }, "model.modules[6].axis", "only a reduction over every spatial axis"},
      {[&](json& d) { mod(d, 6)["keepdims"] = true; }, "model.modules[6].keepdims", "not supported"},
      {[&](json& d) { mod(d, 7)["reduction_axes"] = 0; }, "model.modules[7].reduction_axes", "only the last axis"},
      {[&](json& d) { mod(d, 8)["use_scale"] = false; }, "tensors[\"params/RMSNorm_0/scale\"]", "use_scale = false"},
  };
  for (size_t i = 0; i < np_cases.size(); ++i) {
    INFO("norms_pools case " << i);
    json bad = np;
    np_cases[i].mutate(bad);
    CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt(np_cases[i].where, np_cases[i].what));
  }

  json embed = load_doc("embed_conv1d");
  json bad = embed;
  bad["tensors"]["input.0"]["dtype"] = "f32";
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.modules[0]", "Embed needs integer ids (i32 or i64), got f32"));
  bad = embed;
  mod(bad, 1)["inputs"] = {"x"};
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.modules[1]", "only Embed (ids) and attention masks take integers"));
  bad = embed;
  mod(bad, 0)["num_embeddings"] = 8;
  CHECK_THROWS_MATCHES(decode(bad), pb::Error,
                       ErrorAt("tensors[\"params/Embed_0/embedding\"].shape", "expected [num_embeddings, features] = [8, 3], got [7, 3]"));
}

// ------------------------------------------------------------------ live: jax-js under Node

TEST_CASE("live jax: the jax-js capture serves dense, residual, conv and batchnorm fixtures that pass the ladder", "[jax][live]") {
  PBTEST_SKIP_IF(std::string(std::system("node --version >/dev/null 2>&1") != 0 ? "no node on PATH" : ""), "the live jax-js test needs Node 20");
  pbtest::TempDir tmp;
  const pb::host::Suite suite = pb::host::parse_suite(R"(
suite: jax-live
defaults: {tolerance: {atol: 1.0e-5, rtol: 1.0e-5}, samples: 20, seed: 42}
fixtures:
  - {id: mlp_8_8_3_tanh, layer: dense, spec: {input: 8, units: [8, 3], activation: tanh}, planets: [jax]}
  - {id: mlp_8_4_no_bias, layer: dense, spec: {input: 8, units: [4, 4], bias: false}, planets: [jax]}
  - {id: residual_4, layer: residual, spec: {features: 4}, planets: [jax]}
  - {id: conv2_9_4_relu, layer: cnn2, spec: {in_channels: 3, size: 9, filters: [4], kernel: 4, stride: 2, padding: same, activation: relu}, planets: [jax]}
  - {id: batchnorm_conv1d_4, layer: batchnorm, spec: {dims: 1, in_channels: 3, size: 8, filters: 4}, planets: [jax]}
  - {id: conv_nope, layer: conv9, spec: {}, planets: [jax]}
)", "jax-live.yaml");
  pb::host::PluginRegistry plugins;
  plugins.load(pbtest::plugin_path("jax"));
  pb::host::RunOptions opt;
  opt.out_dir = tmp.file("out");
  const std::vector<pb::host::CaseResult> results = pb::host::run_suite(suite, plugins, opt);
  REQUIRE(results.size() == 6);
  // Node without the npm packages: the capture says so.
  PBTEST_SKIP_IF(std::string(results[0].verdict == pb::host::Verdict::SKIP ? results[0].message : ""), "the live jax-js test needs npm ci");
  const std::vector<size_t> composed = {1, 1, 1, 1, 2};  // Dense; Conv; Conv and BatchNorm
  for (size_t i = 0; i < 5; ++i) {
    const auto& r = results[i];
    INFO(r.name() << ": " << pb::host::verdict_name(r.verdict) << " " << r.message << " " << r.worst);
    CHECK((r.verdict == pb::host::Verdict::EXACT || r.verdict == pb::host::Verdict::PASS));
    CHECK(r.reload_identical);
    CHECK(r.composed.size() == composed[i]);  // Flax modules composed from jax-js ops
  }
  CHECK(results[5].verdict == pb::host::Verdict::ERROR);
  CHECK(results[5].message.find("layer \"conv9\" is not supported by the jax capture") != std::string::npos);
}

// ------------------------------------------------------------------ errors

TEST_CASE("jax decoder: unknown module types and functions name the path", "[jax]") {
  json doc = load_doc("mlp_no_bias");
  json bad = doc;
  bad["model"]["modules"][2]["type"] = "ConvLocal";
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.modules", "module type \"ConvLocal\" (model.modules[2].type)"));
  bad["model"]["modules"][1]["fn"] = "nn.foo";  // both at once
  CHECK_THROWS_MATCHES(decode(bad), pb::Error,
                       ErrorAt("model.modules", "2 nodes use what this planet cannot translate: function \"nn.foo\" (model.modules[1].fn), "
                                                "module type \"ConvLocal\" (model.modules[2].type)"));
  bad = doc;
  bad["model"]["modules"][1].erase("fn");
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.modules[1].fn", "missing required field"));
  bad = doc;
  bad["model"]["modules"][0]["fn"] = "nn.relu";
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.modules[0].fn", "only modules of type \"fn\""));
  bad = doc;
  bad["model"]["format"] = "haiku";
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.format", "expected \"flax.linen\""));
}

TEST_CASE("jax decoder: attributes it would have to ignore are errors", "[jax]") {
  json doc = load_doc("mlp_no_bias");
  json bad = doc;
  bad["model"]["modules"][1]["negative_slope"] = 0.1;  // nn.relu has none
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.modules[1].negative_slope", "not understood for nn.relu"));
  bad = doc;
  bad["model"]["modules"][0]["kernel_size"] = 3;
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.modules[0].kernel_size", "not understood for Dense"));
  bad = doc;
  bad["model"]["modules"][0]["dtype"] = "bfloat16";
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.modules[0].dtype", "only float32"));
  bad = doc;
  bad["model"]["modules"][0]["precision"] = "highest";
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.modules[0].precision", "default precision"));
  // null is Flax's default and reads as absent
  bad = doc;
  bad["model"]["modules"][0]["dtype"] = nullptr;
  CHECK_NOTHROW(decode(bad));
}

TEST_CASE("jax decoder: missing, mis-shaped and unused params are errors", "[jax]") {
  json doc = load_doc("dense_square");
  json bad = doc;
  bad["tensors"].erase("params/Dense_0/kernel");
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.modules[0]", "Dense \"Dense_0\": missing param \"params/Dense_0/kernel\""));
  bad = doc;
  bad["tensors"].erase("params/Dense_0/bias");
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.modules[0]", "missing param \"params/Dense_0/bias\""));

  // A kernel in the IR's [out, in] layout is not silently accepted: features is its last dim.
  bad = doc;
  bad["model"]["modules"][0]["features"] = 2;
  bad["tensors"]["params/Dense_0/bias"] = {{"dtype", "f32"}, {"shape", {2}}, {"data", {0, 0}}};
  bad["tensors"]["output.0"] = {{"dtype", "f32"}, {"shape", {2, 2}}, {"data", {0, 0, 0, 0}}};
  bad["tensors"]["params/Dense_0/kernel"] = {{"dtype", "f32"}, {"shape", {2, 3}}, {"data", {1, 2, 3, 4, 5, 6}}};
  CHECK_THROWS_MATCHES(decode(bad), pb::Error,
                       ErrorAt("tensors[\"params/Dense_0/kernel\"].shape", "expected [in, features] with features = 2 (Flax's layout), got [2, 3]"));
  bad = doc;
  bad["tensors"]["params/Dense_0/kernel"]["shape"] = {9};
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("tensors[\"params/Dense_0/kernel\"].shape", "got [9]"));
  bad = doc;
  bad["tensors"]["params/Dense_0/bias"] = {{"dtype", "f32"}, {"shape", {1, 3}}, {"data", {0, 0, 0}}};
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("tensors[\"params/Dense_0/bias\"].shape", "expected [features] = [3], got [1, 3]"));
  bad = doc;
  bad["tensors"]["params/Dense_0/bias"]["dtype"] = "f64";
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("tensors[\"params/Dense_0/bias\"].dtype", "expected f32, got f64"));

  // use_bias false with a bias in the stream, and params no module reads: never dropped.
  bad = doc;
  bad["model"]["modules"][0]["use_bias"] = false;
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("tensors[\"params/Dense_0/bias\"]", "use_bias = false"));
  bad = doc;
  bad["tensors"]["params/Dense_9/kernel"] = {{"dtype", "f32"}, {"shape", {1}}, {"data", {0}}};
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("tensors[\"params/Dense_9/kernel\"]", "not used by any part of the model"));
  bad = doc;
  bad["tensors"]["batch_stats/BatchNorm_0/mean"] = {{"dtype", "f32"}, {"shape", {1}}, {"data", {0}}};
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("tensors[\"batch_stats/BatchNorm_0/mean\"]", "not used by any part of the model"));
}

TEST_CASE("jax decoder: module inputs, names and model outputs are checked", "[jax]") {
  json doc = load_doc("residual");
  json bad = doc;
  bad["model"]["modules"][2]["inputs"] = {"relu_0", "Dense_1"};
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.modules[2].inputs[1]", "\"Dense_1\" is not defined before this module"));
  bad = doc;
  bad["model"]["modules"][2]["inputs"] = {"relu_0"};
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.modules[2].inputs", "add takes 2 inputs, got 1"));
  bad = doc;
  bad["model"]["modules"][2].erase("inputs");
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.modules[2]", "add \"add_0\" needs \"inputs\""));
  bad = doc;
  bad["model"]["modules"][3].erase("axis");
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.modules[3].axis", "missing required field"));
  bad = doc;
  bad["model"]["modules"][1]["name"] = "Dense_0";
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.modules[1].name", "\"Dense_0\" is already defined"));
  bad = doc;
  bad["model"]["modules"][1]["name"] = "x";
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.modules[1].name", "\"x\" is already defined"));
  bad = doc;
  bad["model"]["outputs"] = {"Dense_1", "Dense_7"};
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.outputs[1]", "\"Dense_7\" is not an input or module"));
  bad = doc;
  bad["model"]["outputs"] = {"Dense_1"};
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.outputs", "names 1 outputs, the stream has 2 expected outputs"));
  bad = doc;
  bad["model"]["inputs"] = {"x", "y"};
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.inputs", "names 2 inputs, the stream has 1"));
  bad = doc;
  bad["model"].erase("outputs");
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.outputs", "missing required field"));
}

// ------------------------------------------------------------------ recurrent: nn.RNN, nn.Bidirectional

namespace {

// Flax Dense kernel [in, h] of stream tensor `name`, read at [i, j].
float kernel_at(const pb::Stream& s, const std::string& name, int64_t i, int64_t j) {
  const Tensor& k = s.tensors.at(name);
  return k.data<float>()[i * k.shape()[1] + j];
}

// Checks that IR weight `w` [1, G·H, in] stacks, per IR gate g, the transpose of Flax kernel
// `<prefix>/<dense[g]>/kernel` [in, H].
void check_stacked(const Graph& g, const pb::Stream& s, const std::string& w, const std::string& prefix,
                   const std::vector<std::string>& dense) {
  INFO(w);
  const Tensor& t = g.weights.at(w);
  const int64_t h = t.shape()[1] / int64_t(dense.size()), in = t.shape()[2];
  REQUIRE(t.shape() == pb::Shape{1, int64_t(dense.size()) * h, in});
  for (size_t gate = 0; gate < dense.size(); ++gate) {
    const std::string k = prefix + "/" + dense[gate] + "/kernel";
    REQUIRE(s.tensors.at(k).shape() == pb::Shape{in, h});
    for (int64_t j = 0; j < h; ++j)
      for (int64_t i = 0; i < in; ++i) CHECK(t.data<float>()[(gate * h + j) * in + i] == kernel_at(s, k, i, j));
  }
}

// Checks that IR bias `b` [1, G·H] holds, per IR gate, `<prefix>/<dense>/bias` or zeros ("").
void check_bias(const Graph& g, const pb::Stream& s, const std::string& b, const std::string& prefix, const std::vector<std::string>& dense) {
  INFO(b);
  const std::vector<float> got = values(g.weights.at(b));
  const size_t h = got.size() / dense.size();
  for (size_t gate = 0; gate < dense.size(); ++gate) {
    const std::vector<float> want =
        dense[gate].empty() ? std::vector<float>(h, 0.f) : values(s.tensors.at(prefix + "/" + dense[gate] + "/bias"));
    REQUIRE(want.size() == h);
    if (!dense[gate].empty()) CHECK(std::any_of(want.begin(), want.end(), [](float v) { return v != 0.f; }));  // a real test
    CHECK(std::vector<float>(got.begin() + gate * h, got.begin() + (gate + 1) * h) == want);
  }
}

void rename_tensor(json& doc, const std::string& from, const std::string& to) {
  doc["tensors"][to] = doc["tensors"][from];
  doc["tensors"].erase(from);
}

void swap_tensors(json& doc, const std::string& a, const std::string& b) { std::swap(doc["tensors"][a], doc["tensors"][b]); }

}  // namespace

TEST_CASE("jax decoder: LSTMCell gates i, f, g, o from ii..io (no bias) and hi..ho (bias in RB); carry (c, h); reverse without keep_order", "[jax]") {
  json doc = load_doc("rnn_lstm");
  const pb::Stream s = to_stream(doc);
  const Graph g = jax().decode(s);
  const std::string cell = "params/RNN_0/cell";
  const pb::ir::Node& rnn = node(g, "RNN_0");
  CHECK(rnn.op == "LSTM");
  CHECK(rnn.origin == "flax:RNN_0 (RNN(LSTMCell))");
  // x, W, R, no B (Flax's input denses have no bias), RB, h0, c0.
  CHECK(rnn.inputs == std::vector<std::string>{"x", cell + "@W", cell + "@R", "", cell + "@RB", "RNN_0/h0", "RNN_0/c0"});
  CHECK(rnn.outputs == std::vector<std::string>{"RNN_0", "RNN_0:h_n", "RNN_0:c_n"});
  CHECK(rnn.attrs.s("direction") == "forward");
  CHECK(rnn.attrs.i("batch_first") == 1);
  check_stacked(g, s, cell + "@W", cell, {"ii", "if", "ig", "io"});
  check_stacked(g, s, cell + "@R", cell, {"hi", "hf", "hg", "ho"});
  check_bias(g, s, cell + "@RB", cell, {"hi", "hf", "hg", "ho"});
  CHECK(g.weights.count(cell + "@B") == 0);
  // Flax's carry is (c, h): the module's inputs [x, c0, h0] give the IR's c0 and h0 [1, N, H].
  CHECK(node(g, "RNN_0/c0").inputs == std::vector<std::string>{"c0"});
  CHECK(node(g, "RNN_0/h0").inputs == std::vector<std::string>{"h0"});
  CHECK(node(g, "RNN_0/h0").op == "Reshape");
  CHECK(node(g, "RNN_0/h0").attrs.ints("shape") == std::vector<int64_t>{1, -1, 4});
  // return_carry: the final carry's leaves, [N, H].
  CHECK(node(g, "RNN_0:carry/c").op == "Flatten");
  CHECK(node(g, "RNN_0:carry/c").inputs == std::vector<std::string>{"RNN_0:c_n"});
  CHECK(node(g, "RNN_0:carry/h").inputs == std::vector<std::string>{"RNN_0:h_n"});
  CHECK(node(g, "Dense_0").inputs[0] == "RNN_0:carry/h");
  // reverse without keep_order: the reverse scan, then its outputs in processing order.
  CHECK(node(g, "RNN_1/scan").attrs.s("direction") == "reverse");
  CHECK(node(g, "RNN_1/scan").origin == "flax:RNN_1 (RNN(OptimizedLSTMCell))");
  const pb::ir::Node& flip = node(g, "RNN_1");
  CHECK(flip.op == "Slice");
  CHECK(flip.inputs == std::vector<std::string>{"RNN_1/scan"});
  CHECK(flip.attrs.ints("axes") == std::vector<int64_t>{1});
  CHECK(flip.attrs.ints("steps") == std::vector<int64_t>{-1});
  CHECK(flip.attrs.ints("starts") == std::vector<int64_t>{-1});
  // OptimizedLSTMCell has LSTMCell's parameters (same names, layouts and arithmetic).
  check_stacked(g, s, "params/RNN_1/cell@W", "params/RNN_1/cell", {"ii", "if", "ig", "io"});
  check_outputs(s, g);

  // Each fact changes the result when violated: the carry read as (h, c), the outputs kept in
  // order, two gates swapped, a hidden bias on the input side.
  json bad = doc;
  bad["model"]["modules"][0]["inputs"] = {"x", "h0", "c0"};
  CHECK(worst_excess(bad) > 1e-3);
  bad = doc;
  bad["model"]["modules"][1]["keep_order"] = true;
  CHECK(worst_excess(bad) > 1e-3);
  bad = doc;
  swap_tensors(bad, cell + "/if/kernel", cell + "/ig/kernel");
  CHECK(worst_excess(bad) > 1e-3);
  bad = doc;
  swap_tensors(bad, cell + "/hf/kernel", cell + "/ho/kernel");
  CHECK(worst_excess(bad) > 1e-3);
  bad = doc;
  swap_tensors(bad, cell + "/hi/bias", cell + "/hg/bias");
  CHECK(worst_excess(bad) > 1e-3);
  // LSTMCell in place of OptimizedLSTMCell: the same graph.
  bad = doc;
  bad["model"]["modules"][1]["cell"]["type"] = "LSTMCell";
  CHECK(worst_excess(bad) <= 0);

  // The params live at the cell's Flax path, its "name": a cell made inline in a compact method
  // is the parent's "LSTMCell_0", not the adopted "RNN_0/cell".
  CHECK(doc["model"]["modules"][0]["cell"]["name"] == "RNN_0/cell");
  bad = doc;
  std::vector<std::string> keys;
  for (const auto& kv : bad["tensors"].items())
    if (kv.key().rfind(cell + "/", 0) == 0) keys.push_back(kv.key());
  REQUIRE(keys.size() == 12);  // 8 kernels, 4 biases
  for (const std::string& k : keys) rename_tensor(bad, k, "params/LSTMCell_0/" + k.substr(cell.size() + 1));
  bad["model"]["modules"][0]["cell"]["name"] = "LSTMCell_0";
  CHECK(worst_excess(bad) <= 0);
  CHECK(decode(bad).weights.count("params/LSTMCell_0@W") == 1);
  bad["model"]["modules"][0]["cell"].erase("name");  // absent: the adopted path
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.modules[0]", "missing param \"params/RNN_0/cell/ii/kernel\""));
}

TEST_CASE("jax decoder: GRUCell gates z, r, n from iz, ir, in (biases in B) and hz, hr, hn (hn's bias inside the reset product); time-major; Bidirectional", "[jax]") {
  json doc = load_doc("rnn_gru");
  const pb::Stream s = to_stream(doc);
  const Graph g = jax().decode(s);
  const std::string cell = "params/RNN_0/cell";
  const pb::ir::Node& gru = node(g, "RNN_0");
  CHECK(gru.op == "GRU");
  CHECK(gru.inputs == std::vector<std::string>{"x", cell + "@W", cell + "@R", cell + "@B", cell + "@RB"});
  CHECK(gru.attrs.i("linear_before_reset") == 1);  // n = tanh(in(x) + r * hn(h)), hn's bias inside
  CHECK(gru.attrs.s("direction") == "reverse");    // reverse with keep_order: aligned with the input steps
  CHECK(gru.attrs.i("batch_first") == 0);          // time_major
  check_stacked(g, s, cell + "@W", cell, {"iz", "ir", "in"});
  check_stacked(g, s, cell + "@R", cell, {"hz", "hr", "hn"});
  check_bias(g, s, cell + "@B", cell, {"iz", "ir", "in"});
  check_bias(g, s, cell + "@RB", cell, {"", "", "hn"});  // hr and hz have no bias in Flax

  // Bidirectional: one node per direction (each tapped), then [forward, backward] features.
  const pb::ir::Node& fwd = node(g, "Bidirectional_0/forward_rnn");
  const pb::ir::Node& bwd = node(g, "Bidirectional_0/backward_rnn");
  CHECK(fwd.op == "GRU");
  CHECK(fwd.attrs.s("direction") == "forward");
  CHECK(bwd.attrs.s("direction") == "reverse");  // Bidirectional: reverse=True, keep_order=True
  CHECK(fwd.attrs.i("batch_first") == 0);
  CHECK(bwd.attrs.i("batch_first") == 0);
  CHECK(fwd.origin == "flax:Bidirectional_0/forward_rnn (RNN(GRUCell))");
  CHECK(fwd.inputs[1] == "params/Bidirectional_0/forward_rnn/cell@W");
  CHECK(bwd.inputs[1] == "params/Bidirectional_0/backward_rnn/cell@W");
  check_bias(g, s, "params/Bidirectional_0/backward_rnn/cell@RB", "params/Bidirectional_0/backward_rnn/cell", {"", "", "hn"});
  const pb::ir::Node& merge = node(g, "Bidirectional_0");
  CHECK(merge.op == "Concat");
  CHECK(merge.attrs.i("axis") == -1);
  CHECK(merge.inputs == std::vector<std::string>{"Bidirectional_0/forward_rnn", "Bidirectional_0/backward_rnn"});
  CHECK(node(g, "Bidirectional_0:carry/backward_rnn").inputs == std::vector<std::string>{"Bidirectional_0/backward_rnn:h_n"});
  check_outputs(s, g);

  json bad = doc;
  swap_tensors(bad, cell + "/ir/kernel", cell + "/iz/kernel");
  CHECK(worst_excess(bad) > 1e-3);
  bad = doc;
  swap_tensors(bad, cell + "/in/bias", cell + "/hn/bias");  // B_n and RB_n are not interchangeable
  CHECK(worst_excess(bad) > 1e-3);
  bad = doc;
  bad["model"]["modules"][0]["keep_order"] = false;
  CHECK(worst_excess(bad) > 1e-3);
  bad = doc;
  bad["model"]["modules"][1]["merge_fn"] = "add";
  CHECK(node(decode(bad), "Bidirectional_0").op == "Add");
}

TEST_CASE("jax decoder: SimpleCell i (bias in B) and h (no bias); relu; residual adds the identity to R; mixed-cell Bidirectional; merge add", "[jax]") {
  json doc = load_doc("rnn_simple");
  const pb::Stream s = to_stream(doc);
  const Graph g = jax().decode(s);
  const pb::ir::Node& r0 = node(g, "RNN_0");
  CHECK(r0.op == "RNN");
  CHECK(r0.attrs.s("activation") == "tanh");
  CHECK(r0.inputs == std::vector<std::string>{"x", "params/RNN_0/cell@W", "params/RNN_0/cell@R", "params/RNN_0/cell@B"});
  check_stacked(g, s, "params/RNN_0/cell@W", "params/RNN_0/cell", {"i"});
  check_stacked(g, s, "params/RNN_0/cell@R", "params/RNN_0/cell", {"h"});
  check_bias(g, s, "params/RNN_0/cell@B", "params/RNN_0/cell", {"i"});
  // residual: act(i(x) + h(carry) + carry) = act(i(x) + (Wh + I) carry).
  const pb::ir::Node& r1 = node(g, "RNN_1");
  CHECK(r1.attrs.s("activation") == "relu");
  const Tensor& R = g.weights.at("params/RNN_1/cell@R");
  for (int64_t j = 0; j < 4; ++j)
    for (int64_t i = 0; i < 4; ++i)
      CHECK(R.data<float>()[j * 4 + i] == kernel_at(s, "params/RNN_1/cell/h/kernel", i, j) + (i == j ? 1.f : 0.f));
  // Each direction has its own cell: SimpleCell(3) forward, LSTMCell(2) backward, 5 features.
  CHECK(node(g, "Bidirectional_0/forward_rnn").op == "RNN");
  CHECK(node(g, "Bidirectional_0/backward_rnn").op == "LSTM");
  CHECK(node(g, "Bidirectional_0").op == "Concat");
  CHECK(node(g, "Bidirectional_1").op == "Add");
  check_outputs(s, g);

  json bad = doc;
  bad["model"]["modules"][1]["cell"]["residual"] = false;
  CHECK(worst_excess(bad) > 1e-3);
  bad = doc;
  bad["model"]["modules"][1]["cell"]["activation_fn"] = "nn.tanh";
  CHECK(worst_excess(bad) > 1e-3);
  bad = doc;
  bad["model"]["modules"][3]["merge_fn"] = "concatenate";
  CHECK(run(to_stream(bad), decode(bad))[0].shape() == pb::Shape{2, 5, 6});  // Flax's add gives [2, 5, 3]
}

TEST_CASE("jax decoder: the recurrent streams' taps name each layer and direction", "[jax]") {
  for (const char* name : {"rnn_lstm", "rnn_gru", "rnn_simple"}) {
    INFO(name);
    const pb::Stream s = to_stream(load_doc(name));
    const pb::host::CaseResult r = pbtest::ladder(s, jax());
    pbtest::check_passes(r, s);
    std::vector<std::string> tapped;
    for (const auto& t : r.taps) tapped.push_back(t.value);
    if (std::string(name) == "rnn_gru")
      CHECK(tapped == std::vector<std::string>{"RNN_0", "Bidirectional_0/forward_rnn", "Bidirectional_0:carry/forward_rnn",
                                               "Bidirectional_0/backward_rnn", "Bidirectional_0:carry/backward_rnn", "Bidirectional_0"});
  }
  const std::vector<std::string> types = jax().source_types();
  for (const char* t : {"RNN", "Bidirectional", "SimpleCell", "LSTMCell", "OptimizedLSTMCell", "GRUCell"})
    CHECK(std::find(types.begin(), types.end(), t) != types.end());
}

TEST_CASE("jax decoder: recurrent refusals name the JSON path", "[jax]") {
  struct Case {
    const char* stream;
    std::function<void(json&)> mutate;
    const char* where;
    const char* what;
  };
  const std::string lstm = "params/RNN_0/cell";
  const std::vector<Case> cases = {
      // Cell functions the IR does not compute, and a carry_init other than zeros.
      {"rnn_lstm", [](json& d) { d["model"]["modules"][0]["cell"]["gate_fn"] = "nn.hard_sigmoid"; }, "model.modules[0].cell.gate_fn",
       "only nn.sigmoid (Flax's default) is supported: the IR's LSTM gates are sigmoids, got \"nn.hard_sigmoid\""},
      {"rnn_lstm", [](json& d) { d["model"]["modules"][0]["cell"]["activation_fn"] = "nn.relu"; }, "model.modules[0].cell.activation_fn",
       "only nn.tanh (Flax's default)"},
      {"rnn_gru", [](json& d) { d["model"]["modules"][0]["cell"]["gate_fn"] = "nn.relu"; }, "model.modules[0].cell.gate_fn",
       "the IR's GRU gates are sigmoids"},
      {"rnn_simple", [](json& d) { d["model"]["modules"][0]["cell"]["activation_fn"] = "nn.gelu"; }, "model.modules[0].cell.activation_fn",
       "only nn.tanh (Flax's default) and nn.relu are supported, got \"nn.gelu\""},
      {"rnn_simple", [](json& d) { d["model"]["modules"][0]["cell"]["gate_fn"] = "nn.sigmoid"; }, "model.modules[0].cell.gate_fn",
       "not understood for SimpleCell"},
      {"rnn_lstm", [](json& d) { d["model"]["modules"][0]["cell"]["carry_init"] = "ones"; }, "model.modules[0].cell.carry_init",
       "only \"zeros\" (Flax's zeros_init()) is supported"},
      {"rnn_lstm", [](json& d) { d["model"]["modules"][0]["cell"]["type"] = "MGUCell"; }, "model.modules[0].cell.type",
       "unsupported cell \"MGUCell\" (known: GRUCell, LSTMCell, OptimizedLSTMCell, SimpleCell)"},
      {"rnn_lstm", [](json& d) { d["model"]["modules"][0]["cell"]["kernel_init"] = "orthogonal"; }, "model.modules[0].cell.kernel_init",
       "not understood for LSTMCell"},
      {"rnn_lstm", [](json& d) { d["model"]["modules"][0]["cell"]["param_dtype"] = "bfloat16"; }, "model.modules[0].cell.param_dtype",
       "only float32"},
      {"rnn_lstm", [](json& d) { d["model"]["modules"][0]["cell"] = "LSTMCell"; }, "model.modules[0].cell", "expected a cell description"},
      {"rnn_lstm", [](json& d) { d["model"]["modules"][0]["cell"]["name"] = ""; }, "model.modules[0].cell.name", "expected the cell's Flax path"},
      {"rnn_lstm", [](json& d) { d["model"]["modules"][0]["cell"]["name"] = "LSTMCell_0"; }, "model.modules[0]",
       "RNN \"RNN_0\": missing param \"params/LSTMCell_0/ii/kernel\" of its LSTMCell \"LSTMCell_0\""},
      // Parameters: Flax's layouts and names, nothing missing, nothing extra.
      {"rnn_lstm", [](json& d) { d["model"]["modules"][0]["cell"]["features"] = 5; }, "tensors[\"params/RNN_0/cell/ii/kernel\"].shape",
       "expected [in, features] = [3, 5] (Flax's Dense layout), got [3, 4]"},
      {"rnn_lstm", [&](json& d) { d["tensors"][lstm + "/ii/kernel"]["shape"] = {4, 3}; }, "tensors[\"params/RNN_0/cell/ii/kernel\"].shape",
       "expected [in, features] = [3, 4] (Flax's Dense layout), got [4, 3]"},
      {"rnn_lstm", [&](json& d) { d["tensors"].erase(lstm + "/hg/bias"); }, "model.modules[0]",
       "RNN \"RNN_0\": missing param \"params/RNN_0/cell/hg/bias\""},
      {"rnn_lstm", [&](json& d) { d["tensors"][lstm + "/ii/bias"] = d["tensors"][lstm + "/hi/bias"]; }, "tensors[\"params/RNN_0/cell/ii/bias\"]",
       "Flax's LSTMCell creates no bias for its Dense \"ii\""},
      {"rnn_gru", [](json& d) { rename_tensor(d, "params/RNN_0/cell/hn/bias", "params/RNN_0/cell/hr/bias"); }, "tensors[\"params/RNN_0/cell/hr/bias\"]",
       "Flax's GRUCell creates no bias for its Dense \"hr\""},
      {"rnn_lstm", [&](json& d) { d["tensors"][lstm + "/hi/bias"]["shape"] = {1, 4}; }, "tensors[\"params/RNN_0/cell/hi/bias\"].shape",
       "expected [features] = [4], got [1, 4]"},
      // Inputs: a sequence [N, T, F], then the whole initial carry in Flax's order.
      {"rnn_lstm", [](json& d) { d["model"]["modules"][0]["inputs"] = {"x", "c0"}; }, "model.modules[0].inputs",
       "nn.RNN reads the sequence and, optionally, the initial carry's 2 arrays (Flax's order), got 2 inputs"},
      {"rnn_lstm", [](json& d) { d["model"]["modules"][0]["inputs"] = {"x", "c0", "x"}; }, "model.modules[0].inputs[2]",
       "the initial carry leaf h must be [batch, features] = [2, 4], got [2, 5, 3]"},
      {"rnn_lstm", [](json& d) { d["model"]["modules"][1]["inputs"] = {"RNN_0:carry/h"}; }, "model.modules[1]",
       "nn.RNN needs a sequence [batch, time, features] (time_major false), got [2, 4]"},
      {"rnn_lstm", [](json& d) { d["model"]["modules"][0]["return_carry"] = false; }, "model.modules[2].inputs[0]",
       "\"RNN_0:carry/h\" is not defined before this module"},
      {"rnn_lstm", [](json& d) { d["model"]["modules"][0]["seq_lengths"] = {5, 3}; }, "model.modules[0].seq_lengths", "not understood for RNN"},
      {"rnn_lstm", [](json& d) { d["model"]["modules"][0]["unroll"] = 0; }, "model.modules[0].unroll", "expected a positive integer"},
      // Bidirectional: merge_fn, and the settings it makes itself.
      {"rnn_gru", [](json& d) { d["model"]["modules"][1]["merge_fn"] = "multiply"; }, "model.modules[1].merge_fn",
       "expected \"concatenate\" (Flax's default: forward then backward features) or \"add\" (jnp.add), got \"multiply\""},
      {"rnn_gru", [](json& d) { d["model"]["modules"][1]["forward_rnn"]["reverse"] = true; }, "model.modules[1].forward_rnn.reverse",
       "nn.Bidirectional sets its RNNs' reverse itself at call time"},
      {"rnn_gru", [](json& d) { d["model"]["modules"][1]["backward_rnn"]["type"] = "Bidirectional"; }, "model.modules[1].backward_rnn",
       "expected an nn.RNN"},
      {"rnn_gru", [](json& d) { d["model"]["modules"][1]["backward_rnn"]["cell"]["features"] = 2; },
       "tensors[\"params/Bidirectional_0/backward_rnn/cell/iz/kernel\"].shape", "expected [in, features] = [4, 2]"},
      {"rnn_gru", [](json& d) { d["model"]["modules"][1]["inputs"] = {"RNN_0", "RNN_0"}; }, "model.modules[1].inputs",
       "nn.Bidirectional reads the sequence and, optionally, the initial carry's 2 arrays"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i << ": " << cases[i].where);
    json bad = load_doc(cases[i].stream);
    cases[i].mutate(bad);
    CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt(cases[i].where, cases[i].what));
  }
}
