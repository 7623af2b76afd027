// The tensorflow decoder (plugins/tensorflow/decoder.cpp), loaded as a plugin, on small streams in
// tests/streams/tensorflow/: Keras configs typed out as tfjs, Python Keras 2 and Keras 3 write
// them (make_streams.py there; no Python or Node needed here), and one stream recorded from real
// tfjs (record.js). Error cases mutate those documents.
#include <cmath>
#include <filesystem>
#include <memory>

#include "ladder.h"
#include "planetbridge/network.h"
#include "plugin_loader.h"
#include "test_util.h"

using nlohmann::json;
using pb::Tensor;
using pb::ir::Graph;
using pbtest::ErrorAt;

namespace {

std::string tensorflow_plugin_path() {
#ifdef PB_TENSORFLOW_PLUGIN
  return PB_TENSORFLOW_PLUGIN;
#else
  // Every planet builds into one plugin directory.
  return (std::filesystem::path(PB_PYTORCH_PLUGIN).parent_path() / "libplanet_tensorflow.so").string();
#endif
}

const pb::Dialect& tensorflow() {
  static const std::string path = tensorflow_plugin_path();
  static const pb::host::PluginRegistry registry = [] {
    pb::host::PluginRegistry r;
    r.load(path);
    return r;
  }();
  const pb::Dialect* d = registry.find("tensorflow");
  if (!d) FAIL("cannot load " << path << ": " << (registry.refused().empty() ? "?" : registry.refused()[0].reason));
  return *d;
}

std::string stream_path(const std::string& file) { return std::string(PB_TEST_STREAMS_DIR) + "/tensorflow/" + file; }

json load_doc(const std::string& name) { return json::parse(pbtest::read_text(stream_path(name + ".json"))); }

pb::Stream to_stream(const json& doc) {
  const std::string text = doc.dump();
  return pb::read_stream_bytes(reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

Graph decode(const json& doc) { return tensorflow().decode(to_stream(doc)); }

// Compiles the graph for the stream's input shapes, runs it, returns copies of the outputs.
std::vector<Tensor> run(const pb::Stream& s, const Graph& g) {
  std::map<std::string, pb::Shape> shapes;
  std::vector<const Tensor*> inputs;
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    shapes[g.inputs[i].name] = s.tensors.at(s.inputs[i]).shape();
    inputs.push_back(&s.tensors.at(s.inputs[i]));
  }
  pb::Network net(g, shapes);
  net.run(inputs);
  std::vector<Tensor> out;
  for (size_t i = 0; i < net.output_count(); ++i) out.push_back(net.output(i).clone());
  return out;
}

void check_close(const Tensor& got, const Tensor& want, double tol = 1e-5) {
  REQUIRE(got.shape() == want.shape());
  for (int64_t i = 0; i < got.numel(); ++i) {
    INFO("element " << i);
    CHECK(std::fabs(got.data<float>()[i] - want.data<float>()[i]) <= tol);
  }
}

// The largest element-wise difference (for "this would visibly fail" checks).
double max_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, double(std::fabs(a.data<float>()[i] - b.data<float>()[i])));
  return m;
}

const pb::ir::Node& node(const Graph& g, const std::string& name) {
  const pb::ir::Node* n = g.find_node(name);
  if (!n) FAIL("no node \"" << name << "\" in\n" << g.summary());
  return *n;
}

// x [rows, in] · K [in, out] + b: the Keras definition, by hand.
std::vector<float> keras_dense(const Tensor& x, const Tensor& k, const Tensor* b) {
  const int64_t rows = x.shape()[0], in = k.shape()[0], out = k.shape()[1];
  std::vector<float> y(rows * out);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = b ? b->data<float>()[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) acc += double(x.data<float>()[r * in + i]) * k.data<float>()[i * out + o];
      y[r * out + o] = float(acc);
    }
  return y;
}

}  // namespace

// ------------------------------------------------------------------ translations

TEST_CASE("tensorflow decoder: square Dense kernels [in, out] are transposed exactly once", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("sequential_square"));
  const Graph g = tensorflow().decode(s);
  REQUIRE(g.inputs.size() == 1);
  CHECK(g.inputs[0].name == "dense_Dense1_input");  // Keras's name for a Sequential's implicit input
  CHECK(g.inputs[0].shape == pb::Shape{-1, 3});
  REQUIRE(g.nodes.size() == 2);
  const pb::ir::Node& d1 = node(g, "dense_Dense1");
  CHECK(d1.op == "Dense");
  CHECK(d1.inputs == std::vector<std::string>{"dense_Dense1_input", "dense_Dense1/kernel", "dense_Dense1/bias"});
  CHECK(d1.attrs.s("activation") == "relu");
  CHECK(d1.origin == "keras:dense_Dense1 (Dense)");
  CHECK(node(g, "dense_Dense2").inputs[0] == "dense_Dense1");
  CHECK(node(g, "dense_Dense2").attrs.s("activation") == "identity");
  CHECK(g.outputs == std::vector<std::string>{"dense_Dense2"});

  // The IR weight is [out, in]: element [o, i] is the stream kernel's [i, o].
  for (const char* name : {"dense_Dense1/kernel", "dense_Dense2/kernel"}) {
    INFO(name);
    const Tensor& k = s.tensors.at(name);
    const Tensor& w = g.weights.at(name);
    REQUIRE(w.shape() == pb::Shape{3, 3});
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t o = 0; o < 3; ++o) CHECK(w.data<float>()[o * 3 + i] == k.data<float>()[i * 3 + o]);
  }

  // Against a reference computed here by hand from the Keras definition, and the recorded output.
  const Tensor& x = s.tensors.at("input.0");
  std::vector<float> h = keras_dense(x, s.tensors.at("dense_Dense1/kernel"), &s.tensors.at("dense_Dense1/bias"));
  for (float& v : h) v = std::max(v, 0.f);
  const std::vector<float> y = keras_dense(pbtest::f32({2, 3}, h), s.tensors.at("dense_Dense2/kernel"), &s.tensors.at("dense_Dense2/bias"));
  const std::vector<Tensor> got = run(s, g);
  check_close(got[0], pbtest::f32({2, 3}, y));
  check_close(got[0], s.tensors.at("output.0"));

  // A missed (or doubled) transpose would visibly fail: the kernels are not symmetric.
  Graph untransposed = g;
  for (const char* name : {"dense_Dense1/kernel", "dense_Dense2/kernel"})
    untransposed.weights[name] = s.tensors.at(name).clone();
  CHECK(max_diff(run(s, untransposed)[0], s.tensors.at("output.0")) > 0.1);
}

TEST_CASE("tensorflow decoder: functional Add and Concatenate over a shared input", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("functional_add"));
  const Graph g = tensorflow().decode(s);
  REQUIRE(g.inputs.size() == 1);
  CHECK(g.inputs[0].name == "input1");
  CHECK(node(g, "left").inputs[0] == "input1");
  CHECK(node(g, "right").inputs[0] == "input1");
  CHECK(node(g, "right").attrs.s("activation") == "tanh");
  CHECK(node(g, "sum").op == "Add");
  CHECK(node(g, "sum").inputs == std::vector<std::string>{"left", "right"});
  CHECK(node(g, "cat").op == "Concat");
  CHECK(node(g, "cat").inputs == std::vector<std::string>{"sum", "input1"});
  CHECK(node(g, "cat").attrs.i("axis") == -1);
  CHECK(g.outputs == std::vector<std::string>{"cat"});
  check_close(run(s, g)[0], s.tensors.at("output.0"));
}

TEST_CASE("tensorflow decoder: a Python Keras 2 functional config", "[tensorflow]") {
  json doc = load_doc("keras2_functional");
  const pb::Stream s = to_stream(doc);
  const Graph g = tensorflow().decode(s);
  CHECK(g.inputs[0].name == "input_1");
  CHECK(g.inputs[0].shape == pb::Shape{-1, 4});
  CHECK(node(g, "dense_1").inputs.size() == 2);  // use_bias false: no bias input
  CHECK(node(g, "subtract").op == "Sub");
  CHECK(node(g, "subtract").inputs == std::vector<std::string>{"dense", "dense_1"});
  const pb::ir::Node& hs = node(g, "activation");
  CHECK(hs.op == "Activation");
  CHECK(hs.attrs.s("function") == "hard_sigmoid");
  CHECK(hs.attrs.f("alpha") == 0.2);  // Keras 2's slope
  CHECK(hs.attrs.f("beta") == 0.5);
  CHECK(node(g, "dropout").op == "Identity");
  // Softmax cannot be a Dense post-op: a separate node, which carries the layer's name.
  CHECK(node(g, "dense_2/linear").op == "Dense");
  CHECK(node(g, "dense_2").op == "Softmax");
  CHECK(node(g, "dense_2").inputs == std::vector<std::string>{"dense_2/linear"});
  CHECK(node(g, "dense_2").attrs.i("axis") == -1);
  check_close(run(s, g)[0], s.tensors.at("output.0"));

  // The same config from Keras 3 would mean hard_sigmoid = clip(x/6 + 0.5): other numbers.
  doc["model"]["topology"]["keras_version"] = "3.0.0";
  const Graph k3 = decode(doc);
  CHECK(node(k3, "activation").attrs.f("alpha") == Approx(1.0 / 6.0));
  CHECK(max_diff(run(s, k3)[0], s.tensors.at("output.0")) > 1e-3);
}

TEST_CASE("tensorflow decoder: a Keras 3 functional config", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("keras3_functional"));
  const Graph g = tensorflow().decode(s);
  CHECK(g.inputs[0].name == "input_layer");
  CHECK(node(g, "dense").attrs.s("activation") == "silu");
  CHECK(node(g, "dense_1").attrs.s("activation") == "hard_sigmoid");
  CHECK(node(g, "dense_1").attrs.f("alpha") == Approx(1.0 / 6.0));
  CHECK(node(g, "multiply").op == "Mul");
  CHECK(node(g, "multiply").inputs == std::vector<std::string>{"dense", "dense_1"});
  CHECK(g.outputs == std::vector<std::string>{"multiply"});
  check_close(run(s, g)[0], s.tensors.at("output.0"));
}

TEST_CASE("tensorflow decoder: a stream recorded from tfjs (every activation, a shared layer)", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("tfjs_functional"));
  const Graph g = tensorflow().decode(s);
  CHECK(node(g, "d_gelu").attrs.s("activation") == "gelu_erf");  // tfjs 'gelu' is the erf form
  CHECK(node(g, "d_gelu_new").attrs.s("activation") == "gelu_tanh");
  CHECK(node(g, "d_swish").attrs.s("activation") == "silu");
  CHECK(node(g, "d_hardSigmoid").attrs.f("alpha") == 0.2);
  CHECK(node(g, "d_logSoftmax").op == "Softmax");
  CHECK(node(g, "d_logSoftmax").attrs.i("log") == 1);
  CHECK(node(g, "softmax_layer").attrs.i("axis") == 1);  // tfjs's Softmax layer default
  CHECK(node(g, "relu6_layer").attrs.s("function") == "relu6");
  CHECK(node(g, "sum/1").op == "Add");  // many inputs fold pairwise
  // The shared layer's second call: its own value, the same weights.
  CHECK(node(g, "shared@1").inputs == std::vector<std::string>{"pre", "shared/kernel", "shared/bias"});
  CHECK(node(g, "shared").inputs[0] == "x");
  // Taps are keyed by layer name and line up with IR values.
  CHECK(s.taps.size() > 20);
  for (const auto& [layer, tensor] : s.taps) {
    INFO(layer);
    CHECK(g.find_node(layer) != nullptr);
  }
  pbtest::TempDir tmp;
  pb::host::LadderOptions opt;
  opt.tolerance = {1e-5, 1e-5};
  opt.entity_path = tmp.file("tfjs_functional.entity");
  const pb::host::CaseResult r = pb::host::run_ladder(s, tensorflow(), opt);
  INFO(r.message);
  CHECK((r.verdict == pb::host::Verdict::EXACT || r.verdict == pb::host::Verdict::PASS));
  CHECK(r.reload_identical);
}

TEST_CASE("tensorflow decoder: every hand-written stream passes the ladder", "[tensorflow]") {
  pbtest::TempDir tmp;
  for (const char* name : {"sequential_square", "functional_add", "keras2_functional", "keras3_functional"}) {
    INFO(name);
    pb::host::LadderOptions opt;
    opt.tolerance = {1e-5, 1e-5};
    opt.entity_path = tmp.file(std::string("entities/") + name + ".entity");
    const pb::host::CaseResult r = pb::host::run_ladder(to_stream(load_doc(name)), tensorflow(), opt);
    INFO(r.message);
    CHECK((r.verdict == pb::host::Verdict::EXACT || r.verdict == pb::host::Verdict::PASS));
    CHECK(r.reload_identical);
  }
}

TEST_CASE("tensorflow decoder: source types and capture command", "[tensorflow]") {
  const std::vector<std::string> types = tensorflow().source_types();
  for (const char* t : {"Sequential", "Functional", "InputLayer", "Dense", "Add", "Concatenate", "activation:gelu"})
    CHECK(std::find(types.begin(), types.end(), t) != types.end());
  const pb::CaptureCommand cmd = tensorflow().capture();
  REQUIRE(cmd.argv.size() == 3);
  CHECK(cmd.argv[1].size() > 11);
  CHECK(cmd.argv[1].substr(cmd.argv[1].size() - 11) == "/capture.js");
  CHECK(cmd.argv[2] == "--serve");
}

// ------------------------------------------------------------------ errors

TEST_CASE("tensorflow decoder: an unknown layer class names its path", "[tensorflow]") {
  json doc = load_doc("sequential_square");
  doc["model"]["topology"]["config"]["layers"][1]["class_name"] = "Conv2D";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[1].class_name", "unsupported layer class \"Conv2D\" (layer \"dense_Dense2\")"));

  doc = load_doc("sequential_square");
  doc["model"]["topology"]["class_name"] = "Graph";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.topology.class_name", "unsupported model class \"Graph\""));

  doc = load_doc("sequential_square");
  doc["model"]["format"] = "torch.fx";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.format", "expected \"keras\""));
}

TEST_CASE("tensorflow decoder: an unknown activation names its path", "[tensorflow]") {
  json doc = load_doc("sequential_square");
  doc["model"]["topology"]["config"]["layers"][0]["config"]["activation"] = "foo";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[0].config.activation", "unknown activation \"foo\""));

  // Keras has softsign; the IR has no function for it yet: refused, never approximated.
  doc["model"]["topology"]["config"]["layers"][0]["config"]["activation"] = "softsign";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[0].config.activation", "\"softsign\" has no IR function yet"));

  // hard_sigmoid's slope depends on the Keras version: without one it is refused.
  doc = load_doc("keras2_functional");
  doc["model"]["topology"].erase("keras_version");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[4].config.activation", "needs \"keras_version\""));
}

TEST_CASE("tensorflow decoder: missing weights name their path", "[tensorflow]") {
  json doc = load_doc("sequential_square");
  doc["model"]["weights"]["dense_Dense1"].erase("bias");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.weights.dense_Dense1", "layer \"dense_Dense1\" (Dense) has no \"bias\" weight"));

  doc = load_doc("sequential_square");
  doc["model"]["weights"].erase("dense_Dense2");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.weights", "no entry for layer \"dense_Dense2\" (Dense needs \"kernel\")"));

  doc = load_doc("sequential_square");
  doc["tensors"].erase("dense_Dense2/kernel");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.weights.dense_Dense2.kernel", "names tensor \"dense_Dense2/kernel\""));

  doc = load_doc("sequential_square");
  doc["model"].erase("weights");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.topology.config.layers[0]", "no \"weights\" table"));
}

TEST_CASE("tensorflow decoder: wrong weight shapes name their path", "[tensorflow]") {
  json doc = load_doc("sequential_square");
  doc["tensors"]["dense_Dense2/kernel"] = {{"dtype", "f32"}, {"shape", {3, 2}}, {"data", {1, 2, 3, 4, 5, 6}}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.weights.dense_Dense2.kernel", "expected a float kernel of shape [in, units] = [*, 3] for Dense \"dense_Dense2\", got f32 [3, 2]"));

  doc = load_doc("sequential_square");
  doc["tensors"]["dense_Dense1/bias"] = {{"dtype", "f32"}, {"shape", {2}}, {"data", {1, 2}}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.weights.dense_Dense1.bias", "expected a float bias of shape [3]"));

  // A kernel in torch's [out, in] layout is caught whenever in != out.
  doc = load_doc("keras2_functional");
  doc["tensors"]["dense_2/kernel"] = {{"dtype", "f32"}, {"shape", {2, 3}}, {"data", {1, 2, 3, 4, 5, 6}}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.weights.dense_2.kernel", "[in, units] = [*, 2]"));
}

TEST_CASE("tensorflow decoder: weights nobody uses are errors, not dropped", "[tensorflow]") {
  json doc = load_doc("sequential_square");
  doc["model"]["topology"]["config"]["layers"][0]["config"]["use_bias"] = false;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.weights.dense_Dense1.bias", "weight \"bias\" is not used by Dense"));

  doc = load_doc("sequential_square");
  doc["model"]["weights"]["ghost"] = {{"kernel", "dense_Dense1/kernel"}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.weights.ghost", "no layer \"ghost\" in the model"));
}

TEST_CASE("tensorflow decoder: malformed functional graphs name their path", "[tensorflow]") {
  json doc = load_doc("functional_add");
  doc["model"]["topology"]["config"]["layers"][3]["inbound_nodes"][0][1][0] = "nowhere";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[3].inbound_nodes[0][1]", "layer \"nowhere\", which no layer produces"));

  doc = load_doc("functional_add");
  doc["model"]["topology"]["config"]["output_layers"][0][0] = "nowhere";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.topology.config.output_layers[0]", "which no layer produces"));

  doc = load_doc("functional_add");
  doc["model"]["topology"]["config"]["layers"][1]["inbound_nodes"][0][0][3] = {{"training", true}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[1].inbound_nodes[0][0][3]", "call keyword arguments are not supported"));

  doc = load_doc("functional_add");
  doc["model"]["topology"]["config"]["layers"][0]["config"]["batch_input_shape"] = {nullptr, 5};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[0].config.batch_input_shape", "the model expects [null,5]"));

  doc = load_doc("keras3_functional");
  doc["model"]["topology"]["config"]["layers"][3]["inbound_nodes"][0]["args"][0][1] = 3;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[3].inbound_nodes[0].args[0][1]", "expected a keras tensor"));
}
