// The pytorch decoder (plugins/pytorch/decoder.cpp), loaded as a plugin, on small hand-written
// streams in plugins/pytorch/tests/streams/ (no torch needed). Error cases mutate those documents.
#include <cmath>
#include <iomanip>
#include <memory>

#include "ladder.h"
#include "planetbridge/network.h"
#include "plugin_loader.h"
#include "test_util.h"

using nlohmann::json;
using pb::Tensor;
using pb::ir::Graph;
using pbtest::check_close;
using pbtest::decode;
using pbtest::ErrorAt;
using pbtest::load_doc;
using pbtest::run;
using pbtest::to_stream;
using pbtest::values;

namespace {

const pb::Dialect& pytorch() { return pbtest::planet(); }

}  // namespace

// ------------------------------------------------------------------ translations

TEST_CASE("pytorch decoder: square Linear uses the weight as [out, in], never transposed", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("linear_square"));
  const Graph g = pytorch().decode(s);
  REQUIRE(g.inputs.size() == 1);
  CHECK(g.inputs[0].name == "x");
  CHECK(g.inputs[0].dtype == pb::DType::f32);
  CHECK(g.inputs[0].shape == pb::Shape{-1, 3});
  REQUIRE(g.nodes.size() == 1);
  const pb::ir::Node& n = g.nodes[0];
  CHECK(n.name == "_0");
  CHECK(n.op == "Dense");
  CHECK(n.inputs == std::vector<std::string>{"x", "0.weight", "0.bias"});
  CHECK(n.outputs == std::vector<std::string>{"_0"});
  CHECK(g.weights.at(n.inputs[1]).shape()[1] == 3);  // [out, in]
  CHECK(g.weights.at(n.inputs[1]).shape()[0] == 3);
  CHECK(n.origin == "fx:_0 (Linear)");
  CHECK(g.outputs == std::vector<std::string>{"_0"});
  CHECK(g.weights.at("0.weight").bit_equal(s.tensors.at("0.weight")));
  CHECK(g.metadata.at("planet") == "pytorch");
  CHECK(g.metadata.at("model_id") == "linear_square");

  const std::vector<Tensor> out = run(s, g);
  REQUIRE(out.size() == 1);
  // x·Wᵀ + b, by hand; x·W + b would start with -5.5.
  CHECK(values(out[0]) == std::vector<float>{-1.5f, -3.f, -1.f, 14.f, 29.f, 51.5f});
  CHECK(out[0].bit_equal(s.tensors.at("y")));
}

TEST_CASE("pytorch decoder: Linear without bias, nested output tuple, f64 input", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("linear_no_bias"));
  const Graph g = pytorch().decode(s);
  REQUIRE(g.nodes.size() == 1);
  CHECK(g.nodes[0].inputs == std::vector<std::string>{"input_1", "fc.weight"});
  CHECK(g.weights.count("fc.bias") == 0);
  CHECK(g.inputs[0].dtype == pb::DType::f32);  // f64 captures compute in f32
  CHECK(g.outputs == std::vector<std::string>{"fc"});
  const std::vector<Tensor> out = run(s, g);
  CHECK(values(out[0]) == std::vector<float>{2.f, 9.f, 6.f});
}

TEST_CASE("pytorch decoder: relu as module, function, torch function and method", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("relu_forms"));
  const Graph g = pytorch().decode(s);
  REQUIRE(g.nodes.size() == 4);
  const std::vector<std::string> origins = {"fx:act (ReLU)", "fx:relu (torch.nn.functional.relu)", "fx:relu_1 (torch.relu)",
                                            "fx:relu_2 (relu)"};
  for (size_t i = 0; i < 4; ++i) {
    INFO("node " << g.nodes[i].name);
    CHECK(g.nodes[i].op == "Activation");
    CHECK(g.nodes[i].attrs.s("function") == "relu");
    CHECK(g.nodes[i].origin == origins[i]);
  }
  CHECK(g.nodes[1].inputs == std::vector<std::string>{"act"});
  const std::vector<Tensor> out = run(s, g);
  CHECK(out[0].bit_equal(s.tensors.at("y")));
}

TEST_CASE("pytorch decoder: GELU approximate tanh and erf", "[pytorch]") {
  json doc = load_doc("gelu_tanh");
  const pb::Stream s = to_stream(doc);
  const Graph g = pytorch().decode(s);
  REQUIRE(g.nodes.size() == 2);
  CHECK(g.nodes[0].attrs.s("function") == "gelu_tanh");
  CHECK(g.nodes[1].attrs.s("function") == "gelu_tanh");
  CHECK(g.outputs == std::vector<std::string>{"g", "gelu"});
  const std::vector<Tensor> out = run(s, g);
  REQUIRE(out.size() == 2);
  check_close(out[0], s.tensors.at("y0"), 1e-6);
  check_close(out[1], s.tensors.at("y1"), 1e-6);

  doc["model"]["modules"]["g"]["attrs"]["approximate"] = "none";
  doc["model"]["graph"][2]["kwargs"].erase("approximate");
  const Graph erf = decode(doc);
  CHECK(erf.nodes[0].attrs.s("function") == "gelu_erf");
  CHECK(erf.nodes[1].attrs.s("function") == "gelu_erf");

  doc["model"]["modules"]["g"]["attrs"]["approximate"] = "fast";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.modules.g.attrs.approximate", "unknown GELU approximation \"fast\" (expected \"none\" or \"tanh\")"));
}

TEST_CASE("pytorch decoder: Softmax dim and log_softmax", "[pytorch]") {
  json doc = load_doc("softmax_dim");
  const pb::Stream s = to_stream(doc);
  const Graph g = pytorch().decode(s);
  REQUIRE(g.nodes.size() == 3);
  for (const auto& n : g.nodes) CHECK(n.op == "Softmax");
  CHECK(g.nodes[0].attrs.i("axis") == 0);
  CHECK(g.nodes[0].attrs.i("log") == 0);
  CHECK(g.nodes[1].attrs.i("axis") == -1);
  CHECK(g.nodes[2].attrs.i("axis") == 1);
  CHECK(g.nodes[2].attrs.i("log") == 1);
  const std::vector<Tensor> out = run(s, g);
  REQUIRE(out.size() == 3);
  check_close(out[0], s.tensors.at("y0"), 1e-6);
  check_close(out[1], s.tensors.at("y1"), 1e-6);
  check_close(out[2], s.tensors.at("y2"), 1e-6);

  // torch's implicit dim is refused rather than guessed.
  json implicit = doc;
  implicit["model"]["modules"]["sm"]["attrs"]["dim"] = nullptr;
  CHECK_THROWS_MATCHES(decode(implicit), pb::Error, ErrorAt("model.graph[1]", "deprecated implicit-dim rule; pass dim"));
  implicit = doc;
  implicit["model"]["graph"][2]["kwargs"] = json::object();
  CHECK_THROWS_MATCHES(decode(implicit), pb::Error, ErrorAt("model.graph[2]", "implicit-dim"));
}

TEST_CASE("pytorch decoder: Flatten module, method and function", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("flatten"));
  const Graph g = pytorch().decode(s);
  REQUIRE(g.nodes.size() == 3);
  CHECK(g.nodes[0].attrs.i("start") == 1);
  CHECK(g.nodes[0].attrs.i("end") == -1);
  CHECK(g.nodes[1].attrs.i("start") == 1);
  CHECK(g.nodes[1].attrs.i("end") == -1);
  CHECK(g.nodes[2].attrs.i("start") == 0);
  CHECK(g.nodes[2].attrs.i("end") == 1);
  const std::vector<Tensor> out = run(s, g);
  REQUIRE(out.size() == 3);
  CHECK(out[0].bit_equal(s.tensors.at("y0")));
  CHECK(out[1].bit_equal(s.tensors.at("y1")));
  CHECK(out[2].bit_equal(s.tensors.at("y2")));
}

TEST_CASE("pytorch decoder: Dropout and Identity in eval mode are identities", "[pytorch]") {
  json doc = load_doc("relu_forms");
  doc["model"]["modules"]["act"] = {{"type", "Dropout"}, {"training", false}, {"attrs", {{"p", 0.5}}}};
  doc["model"]["graph"][2]["target"] = "torch.nn.functional.dropout";
  doc["model"]["graph"][2]["kwargs"] = {{"p", 0.5}, {"training", false}};
  const Graph g = decode(doc);
  CHECK(g.nodes[0].op == "Identity");
  CHECK(g.nodes[1].op == "Identity");
  CHECK(g.nodes[2].op == "Activation");
}

TEST_CASE("pytorch decoder: every hand-written stream passes the ladder", "[pytorch]") {
  for (const char* name : {"linear_square", "linear_no_bias", "relu_forms", "gelu_tanh", "softmax_dim", "flatten"}) {
    INFO(name);
    const pb::Stream s = to_stream(load_doc(name));
    pbtest::check_passes(pbtest::ladder(s, pytorch(), 1e-6, 1e-5), s);
  }
}

// ------------------------------------------------------------------ errors

TEST_CASE("pytorch decoder: an unsupported module type names the graph node", "[pytorch]") {
  json doc = load_doc("linear_square");
  // A user-defined module (fx leaves those it cannot trace through as call_module).
  doc["model"]["modules"]["0"]["type"] = "MyCustomBlock";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.graph", "1 node uses what this planet cannot translate: module type \"MyCustomBlock\" (model.graph[1]); "
                                              "known module types: "));
}

TEST_CASE("pytorch decoder: unsupported functions, methods and fx ops", "[pytorch]") {
  json doc = load_doc("relu_forms");
  doc["model"]["graph"][2]["target"] = "torch.fft.fft";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.graph", "function \"torch.fft.fft\" (model.graph[2])"));

  doc = load_doc("relu_forms");
  doc["model"]["graph"][4]["target"] = "numpy";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.graph", "method \"numpy\" (model.graph[4])"));

  // Everything missing is named at once, with each vocabulary's known types.
  doc = load_doc("relu_forms");
  doc["model"]["graph"][2]["target"] = "torch.fft.fft";
  doc["model"]["graph"][3]["target"] = "torch.fft.fft";
  doc["model"]["graph"][4]["target"] = "numpy";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.graph", "3 nodes use what this planet cannot translate: function \"torch.fft.fft\" (model.graph[2] and 1 more), "
                                              "method \"numpy\" (model.graph[4]); known functions: "));
  CHECK_THROWS_WITH(decode(doc), Catch::Contains("; known methods: "));

  doc = load_doc("relu_forms");
  doc["model"]["graph"][1]["op"] = "call_magic";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.graph[1].op", "unsupported fx op \"call_magic\""));

  // get_attr reads a tensor the stream must carry under its target.
  doc = load_doc("relu_forms");
  doc["model"]["graph"][1]["op"] = "get_attr";
  doc["model"]["graph"][1]["target"] = "no_such_tensor";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.graph[1].target", "names tensor \"no_such_tensor\""));

  doc = load_doc("relu_forms");
  doc["model"]["graph"][1]["target"] = "missing";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.graph[1].target", "module \"missing\" is not in model.modules"));

  doc = load_doc("relu_forms");
  doc["model"]["graph"][1]["args"] = json::array({5});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.graph[1].args[0]", "expected a node reference"));

  doc = load_doc("relu_forms");
  doc["model"]["graph"][1].erase("args");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.graph[1]", "missing argument 0 (input)"));

  doc = load_doc("relu_forms");
  doc["model"]["format"] = "torch.jit";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.format", "expected \"torch.fx\", got \"torch.jit\""));

  doc = load_doc("relu_forms");
  doc["model"]["graph"][1]["args"] = json::array({json{{"node", "nowhere"}}});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.graph[1].args[0]", "\"nowhere\" is not defined before node \"act\""));
  // A reference to a node defined later in the graph is no better.
  doc = load_doc("relu_forms");
  doc["model"]["graph"][1]["args"] = json::array({json{{"node", "relu_2"}}});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.graph[1].args[0]", "\"relu_2\" is not defined before node \"act\""));
}

TEST_CASE("pytorch decoder: Linear weights of the wrong shape or missing are errors", "[pytorch]") {
  // A weight stored as [in, out] (transposed) is refused, never transposed back silently.
  json doc = load_doc("linear_no_bias");
  doc["tensors"]["fc.weight"]["shape"] = json::array({2, 3});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.modules.fc.params.weight", "expected shape [out_features, in_features] = [3, 2], got [2, 3]"));

  doc = load_doc("linear_square");
  doc["model"]["modules"]["0"]["attrs"]["in_features"] = 2;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.modules[\"0\"].params.weight", "expected shape [out_features, in_features] = [3, 2], got [3, 3]"));

  doc = load_doc("linear_square");
  doc["tensors"]["0.bias"]["shape"] = json::array({1, 3});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules[\"0\"].params.bias", "expected shape [3], got [1, 3]"));

  doc = load_doc("linear_square");
  doc["model"]["modules"]["0"]["params"]["weight"] = "missing.weight";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.modules[\"0\"].params.weight", "names tensor \"missing.weight\", which is not in \"tensors\""));

  doc = load_doc("linear_square");
  doc["model"]["modules"]["0"]["params"].erase("weight");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules[\"0\"].params", "Linear has no \"weight\""));

  doc = load_doc("linear_square");
  doc["model"]["modules"]["0"]["attrs"].erase("out_features");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules[\"0\"].attrs.out_features", "missing required field"));
}

TEST_CASE("pytorch decoder: Dropout in training mode is an error", "[pytorch]") {
  json doc = load_doc("relu_forms");
  doc["model"]["modules"]["act"] = {{"type", "Dropout"}, {"training", true}, {"attrs", {{"p", 0.5}}}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.modules.act.training", "Dropout in training mode is random; capture the model in eval()"));

  doc = load_doc("relu_forms");
  doc["model"]["graph"][2]["target"] = "torch.nn.functional.dropout";
  doc["model"]["graph"][2]["kwargs"] = json::object();  // F.dropout defaults to training=True
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.graph[2]", "F.dropout with training=True is random"));
}

TEST_CASE("pytorch decoder: placeholders and outputs must match the stream", "[pytorch]") {
  json doc = load_doc("relu_forms");
  auto& graph = doc["model"]["graph"];
  graph.insert(graph.begin() + 1, json{{"name", "y"}, {"op", "placeholder"}, {"target", "y"}});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.graph[1]", "input \"y\" has no matching entry in the stream's \"inputs\" (1 given)"));

  doc = load_doc("relu_forms");
  doc["inputs"] = json::array({"x", "y"});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.graph", "has 1 placeholders, the stream has 2 inputs"));

  doc = load_doc("relu_forms");
  doc["expected"] = json::array({"y", "x"});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.graph[5].args[0]", "names 1 outputs, the stream has 2 expected outputs"));

  doc = load_doc("relu_forms");
  doc["model"]["graph"].erase(doc["model"]["graph"].size() - 1);
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.graph", "has no output node"));
}

// ------------------------------------------------------------------ attributes, weights, names

TEST_CASE("pytorch decoder: a module attribute no translator understands is refused naming its path", "[pytorch]") {
  json doc = load_doc("linear_square");
  doc["model"]["modules"]["0"]["attrs"]["lora_rank"] = 4;  // a subclass's extra attribute
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.modules[\"0\"].attrs.lora_rank", "attribute not understood for Linear (known: in_features, out_features)"));
  // null is absent (the capture sends None as null).
  doc["model"]["modules"]["0"]["attrs"]["lora_rank"] = nullptr;
  CHECK_NOTHROW(decode(doc));

  doc = load_doc("relu_forms");
  doc["model"]["modules"]["act"]["attrs"]["threshold"] = 0.5;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.act.attrs.threshold", "attribute not understood for ReLU (known: inplace)"));
  // inplace does not change what is computed.
  doc["model"]["modules"]["act"]["attrs"] = {{"inplace", true}};
  CHECK(decode(doc).nodes[0].attrs.s("function") == "relu");

  doc = load_doc("relu_forms");
  doc["model"]["modules"]["act"] = {{"type", "Tanh"}, {"training", false}, {"attrs", {{"inplace", false}}}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.act.attrs.inplace", "attribute not understood for Tanh (it takes none)"));
}

TEST_CASE("pytorch decoder: a keyword argument no translator understands is refused naming its path", "[pytorch]") {
  json doc = load_doc("relu_forms");
  doc["model"]["graph"][2]["kwargs"]["approximate"] = "tanh";  // F.relu has no such keyword
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.graph[2].kwargs.approximate", "attribute not understood for torch.nn.functional.relu (known: inplace)"));

  // F.softmax(x, dim=1, dtype=torch.float64) computes in another dtype; dtype=None is absent, and
  // float32 of a float32 input changes nothing.
  doc = load_doc("softmax_dim");
  doc["model"]["graph"][2]["kwargs"]["dtype"] = nullptr;
  CHECK_NOTHROW(decode(doc));
  doc["model"]["graph"][2]["kwargs"]["dtype"] = {{"repr", "torch.float32"}};
  CHECK_NOTHROW(decode(doc));
  doc["model"]["graph"][2]["kwargs"]["dtype"] = {{"repr", "torch.float64"}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.graph[2].kwargs.dtype", "softmax with dtype {\"repr\":\"torch.float64\"} is not supported (float32 only"));

  // A module is called with its input only.
  doc = load_doc("linear_square");
  doc["model"]["graph"][1]["kwargs"] = {{"scale", 2}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.graph[1].kwargs.scale", "attribute not understood for Linear (it takes none)"));
  doc["model"]["graph"][1]["kwargs"] = json::object();
  doc["model"]["graph"][1]["args"] = json::array({json{{"node", "x"}}, json{{"node", "x"}}});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.graph[1].args", "Linear takes 1 input, got 2 arguments"));
  // ... which it may pass by keyword.
  doc["model"]["graph"][1]["args"] = json::array();
  doc["model"]["graph"][1]["kwargs"] = {{"input", {{"node", "x"}}}};
  CHECK(decode(doc).nodes[0].inputs[0] == "x");
}

TEST_CASE("pytorch decoder: attributes that change the computation and are not supported are refused by name", "[pytorch]") {
  json doc = load_doc("relu_forms");
  json& act = doc["model"]["modules"]["act"];
  act = {{"type", "Softplus"}, {"training", false}, {"attrs", {{"beta", 1}, {"threshold", 20}}}};
  CHECK(decode(doc).nodes[0].attrs.s("function") == "softplus");
  act["attrs"]["threshold"] = 5;  // torch returns x above 5, where log(1 + exp(x)) is visibly larger
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.act.attrs.threshold", "only threshold >= 20 is supported"));
  act["attrs"] = {{"beta", 2}, {"threshold", 20}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.act.attrs.beta", "only beta = 1 is supported"));

  act = {{"type", "ReLU6"}, {"training", false}, {"attrs", {{"inplace", false}, {"min_val", 0.0}, {"max_val", 6.0}}}};
  CHECK(decode(doc).nodes[0].attrs.s("function") == "relu6");
  act["attrs"]["max_val"] = 4.0;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.act.attrs.max_val", "ReLU6 clips to [0, 6]"));

  act = {{"type", "Dropout"}, {"training", false}, {"attrs", {{"p", 0.5}, {"inplace", false}}}};
  CHECK(decode(doc).nodes[0].op == "Identity");
}

TEST_CASE("pytorch decoder: every stream tensor must be used - an extra one is refused by name", "[pytorch]") {
  json doc = load_doc("linear_square");
  doc["tensors"]["0.lora_a"] = {{"dtype", "f32"}, {"shape", {3}}, {"data", {1, 2, 3}}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("tensors[\"0.lora_a\"]", "not used by any part of the model"));
  // A parameter the translator does not read is such a tensor.
  doc["model"]["modules"]["0"]["params"]["lora_a"] = "0.lora_a";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("tensors[\"0.lora_a\"]", "not used by any part of the model"));
}

TEST_CASE("pytorch decoder: weights keep their stream names; an f64 one becomes <tensor>@f32", "[pytorch]") {
  json doc = load_doc("linear_no_bias");
  doc["tensors"]["fc.weight"]["dtype"] = "f64";
  const pb::Stream s = to_stream(doc);
  const Graph g = pytorch().decode(s);
  CHECK(g.nodes[0].inputs == std::vector<std::string>{"input_1", "fc.weight@f32"});
  CHECK(g.weights.count("fc.weight") == 0);
  CHECK(g.weights.at("fc.weight@f32").dtype() == pb::DType::f32);
  CHECK(values(run(s, g)[0]) == std::vector<float>{2.f, 9.f, 6.f});

  // A Linear weight of integers is no weight.
  doc["tensors"]["fc.weight"] = {{"dtype", "i64"}, {"shape", {3, 2}}, {"data", {1, -1, 2, 0, 0, 3}}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.fc.params.weight", "expected a float tensor, got i64"));
}

TEST_CASE("pytorch decoder: get_attr binds the node to the stream tensor; f64 and integer ones compute as <tensor>@f32", "[pytorch]") {
  json doc = load_doc("bare_parameter");
  for (const char* dtype : {"f64", "i64"}) {
    INFO(dtype);
    doc["tensors"]["scale"] = {{"dtype", dtype}, {"shape", {4}}, {"data", {1, 2, -1, 3}}};
    const Graph g = decode(doc);
    CHECK(pbtest::node(g, "mul").inputs == std::vector<std::string>{"fc", "scale@f32"});
    CHECK(values(g.weights.at("scale@f32")) == std::vector<float>{1, 2, -1, 3});
    CHECK(g.weights.count("scale") == 0);
  }
}

TEST_CASE("pytorch decoder: F.gelu as torch.fx names it (torch._C._nn.gelu)", "[pytorch]") {
  json doc = load_doc("gelu_tanh");
  doc["model"]["graph"][2]["target"] = "torch._C._nn.gelu";
  const pb::Stream s = to_stream(doc);
  const Graph g = pytorch().decode(s);
  CHECK(g.nodes[1].attrs.s("function") == "gelu_tanh");
  CHECK(g.nodes[1].origin == "fx:gelu (torch._C._nn.gelu)");
  check_close(run(s, g)[1], s.tensors.at("y1"), 1e-6);
}

TEST_CASE("pytorch decoder: a shape the op schema refuses is an error naming the fx node", "[pytorch]") {
  // Linear(3, 3) applied to a [N, 4] input: the Dense schema finds the mismatch when decoding.
  json doc = load_doc("linear_square");
  doc["tensors"]["x"] = {{"dtype", "f32"}, {"shape", {1, 4}}, {"data", {1, 2, 3, 4}}};
  doc["tensors"]["y"] = {{"dtype", "f32"}, {"shape", {1, 3}}, {"data", {0, 0, 0}}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.graph[1]", "does not end in the weight's in-features 3"));
}
