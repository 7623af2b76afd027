// The template decoder (plugins/template/decoder.cpp), loaded as a plugin, on its hand-written
// stream tests/streams/two_layers.json; the error cases edit that document. A copied planet
// keeps this shape: one translation test per layer type, one test per refusal.
#include "test_util.h"

using nlohmann::json;
using pb::Tensor;
using pb::ir::Graph;
using pbtest::decode;
using pbtest::ErrorAt;
using pbtest::load_doc;
using pbtest::node;
using pbtest::to_stream;

TEST_CASE("template decoder: dense, relu, dense becomes three IR nodes named after the layers", "[template]") {
  CHECK(pbtest::planet().source_types() == std::vector<std::string>{"dense", "relu"});
  const Graph g = decode(load_doc("two_layers"));
  REQUIRE(g.inputs.size() == 1);
  CHECK(g.inputs[0].name == "x");
  CHECK(g.inputs[0].shape == pb::Shape{-1, 3});  // any batch
  REQUIRE(g.nodes.size() == 3);
  const pb::ir::Node& fc1 = node(g, "fc1");
  CHECK(fc1.op == "Dense");
  CHECK(fc1.inputs == std::vector<std::string>{"x", "fc1.weight", "fc1.bias"});
  CHECK(fc1.origin == "template:fc1 (dense)");
  CHECK(node(g, "relu1").attrs.s("function") == "relu");
  CHECK(node(g, "fc2").inputs == std::vector<std::string>{"relu1", "fc2.weight"});  // no bias
  CHECK(g.outputs == std::vector<std::string>{"fc2"});
}

TEST_CASE("template decoder: the [out, in] weight goes in untouched and reproduces the native output exactly", "[template]") {
  const pb::Stream s = to_stream(load_doc("two_layers"));
  const Graph g = pbtest::planet().decode(s);
  const Tensor& w = g.weights.at("fc2.weight");  // square: its orientation cannot be read off the shape
  REQUIRE(w.shape() == pb::Shape{2, 2});
  CHECK(pbtest::values(w) == pbtest::values(s.tensors.at("fc2.weight")));

  // Dyadic values: f32 computes the hand-computed outputs exactly.
  CHECK(pbtest::values(pbtest::run(s, g).at(0)) == std::vector<float>{3.5f, 1.75f, -1.5f, 3.0f});

  // The transposed weight (what a shape-guessing decoder might use) visibly misses.
  Graph wrong = g;
  wrong.weights["fc2.weight"] = pb::permuted(w, {1, 0});
  CHECK(pbtest::max_diff(pbtest::run(s, wrong).at(0), s.tensors.at("y")) > 1);
}

TEST_CASE("template decoder: refusals name the JSON path", "[template]") {
  json doc = load_doc("two_layers");

  SECTION("a key the layer type does not understand") {
    doc["model"]["layers"][0]["activation"] = "gelu";
    CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.layers[0].activation", "attribute not understood for dense"));
  }
  SECTION("an unknown layer type") {
    doc["model"]["layers"][1]["type"] = "softmax";
    CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                         ErrorAt("model.layers", "1 node uses what this planet cannot translate: layer type \"softmax\" (model.layers[1].type); "
                                                 "known layer types: dense, relu"));
  }
  SECTION("a stream tensor no layer uses (the bias the model forgot)") {
    doc["model"]["layers"][0].erase("bias");
    CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("tensors[\"fc1.bias\"]", "not used by any part of the model"));
  }
  SECTION("a weight that does not fit its input: the op schema's check, naming the layer") {
    doc["tensors"]["fc2.weight"] = {{"dtype", "f32"}, {"shape", {1, 4}}, {"data", {1.0, 2.0, 3.0, 4.0}}};
    CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.layers[2]", "does not end in the weight's in-features 4"));
  }
}
