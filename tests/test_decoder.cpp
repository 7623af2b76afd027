// The decoder context every planet shares (plugins/sdk/include/planetbridge/decoder.h): inputs,
// node emission typed by the op schemas, the layout tracker, weight naming, the unused-tensor
// check, translator tables and attribute checks. Streams are built by hand here.
#include "planetbridge/decoder.h"
#include "test_util.h"

using nlohmann::json;
using pb::Decoder;
using pb::Layout;
using pbtest::ErrorAt;

namespace {

// A stream of planet "test": input x [2, 4, 4, 3] (channels-last), one expected output y, and
// whatever extra tensors and taps a test adds.
json doc_with(json extra_tensors = json::object(), json taps = json::object()) {
  json tensors = {{"x", {{"dtype", "f32"}, {"shape", {2, 4, 4, 3}}, {"data", std::vector<float>(96, 0.5f)}}},
                  {"y", {{"dtype", "f32"}, {"shape", {2, 3}}, {"data", std::vector<float>(6, 0.5f)}}}};
  for (auto& [k, v] : extra_tensors.items()) tensors[k] = v;
  json doc = {{"format", "planetbridge.stream"}, {"version", 1}, {"planet", "test"}, {"planet_version", "0"},
              {"model_id", "m"}, {"model", {{"format", "test.model"}, {"layers", {{{"name", "conv"}}, {{"name", "pool"}}}}}},
              {"tensors", tensors}, {"inputs", {"x"}}, {"expected", {"y"}}};
  if (!taps.empty()) doc["taps"] = taps;
  return doc;
}

json f32(pb::Shape shape, double fill) {
  return {{"dtype", "f32"}, {"shape", shape}, {"data", std::vector<double>(size_t(pb::element_count(shape)), fill)}};
}

}  // namespace

TEST_CASE("decoder: inputs are typed as captured, the graph takes any batch", "[decoder]") {
  const pb::Stream s = pbtest::to_stream(doc_with());
  Decoder d(s, "test.model", Layout::ChannelsLast);
  d.input("x", 0, d.model());
  CHECK(d.type("x").shape == pb::Shape{2, 4, 4, 3});
  CHECK_THROWS_MATCHES(d.input("x", 0, d.model()), pb::Error, ErrorAt("model", "\"x\" is named twice"));
  CHECK_THROWS_MATCHES(d.input("z", 1, d.model()), pb::Error, ErrorAt("model", "has no matching entry in the stream's \"inputs\""));
  // Format checked at construction.
  CHECK_THROWS_MATCHES(Decoder(s, "other.model", Layout::ChannelsLast), pb::Error, ErrorAt("model.format", "expected \"other.model\""));
}

TEST_CASE("decoder: one layout tracker - a channels-last value held channels-first, transposes made once", "[decoder]") {
  const pb::Stream s = pbtest::to_stream(doc_with({{"k", f32({5, 3, 1, 1}, 0.25)}}));
  Decoder d(s, "test.model", Layout::ChannelsLast);
  d.input("x", 0, d.model());
  d.translating(d.model()["layers"][0], "test:conv");
  // A conv computes channels-first: its input gets a Transpose, named by the layout rule.
  const std::string xf = d.as("x", Layout::ChannelsFirst);
  CHECK(xf == "x@NCHW");
  CHECK(d.as("x", Layout::ChannelsFirst) == xf);  // once
  const pb::SourceValue& conv = d.define("conv", Layout::ChannelsFirst, "Conv", {xf, d.weight("k", "tensors.k")});
  // The IR value carries the layout suffix; the source value keeps the planet's shape.
  CHECK(conv.forms.at(Layout::ChannelsFirst) == "conv@NCHW");
  CHECK(conv.type.shape == pb::Shape{2, 4, 4, 5});
  CHECK(d.ir_type("conv@NCHW").shape == pb::Shape{2, 5, 4, 4});
  CHECK(d.held("conv") == Layout::ChannelsFirst);
  // An element-wise op after it stays channels-first; a channels-last consumer gets one Transpose.
  CHECK(d.common_layout({"conv"}) == Layout::ChannelsFirst);
  CHECK(d.common_layout({"conv", "x"}) == Layout::ChannelsFirst);
  CHECK(d.planet_form("conv") == "conv");
  CHECK(d.held("conv") == Layout::ChannelsLast);  // now a consumer reads it channels-last
  const pb::ir::Graph g = d.finish({"conv"}, d.model());
  CHECK(g.outputs == std::vector<std::string>{"conv"});
  CHECK(pbtest::node(g, "conv").op == "Transpose");
  CHECK(pbtest::node(g, "conv").origin == "test:conv (to channels-last)");
  CHECK(g.inputs.at(0).shape == pb::Shape{-1, 4, 4, 3});
}

TEST_CASE("decoder: a tapped value gets its planet-layout form at once, which does not change the layout it is held in", "[decoder]") {
  const pb::Stream s = pbtest::to_stream(doc_with({{"k", f32({3, 3, 1, 1}, 0.25)}, {"tap.conv", f32({2, 4, 4, 3}, 0)}}, {{"conv", "tap.conv"}}));
  Decoder d(s, "test.model", Layout::ChannelsLast);
  d.input("x", 0, d.model());
  d.define("conv", Layout::ChannelsFirst, "Conv", {d.as("x", Layout::ChannelsFirst), d.weight("k", "tensors.k")});
  CHECK(d.value("conv").forms.count(Layout::ChannelsLast) == 1);  // the tap's form, named "conv"
  CHECK(d.held("conv") == Layout::ChannelsFirst);                // but not read by any consumer yet
  const pb::SourceValue& relu =
      d.define("relu", d.common_layout({"conv"}), "Activation", {d.as("conv", d.common_layout({"conv"}))}, pb::attrs_of({{"function", std::string("relu")}}));
  CHECK(relu.forms.count(Layout::ChannelsFirst) == 1);
}

TEST_CASE("decoder: every node is typed by its schema as it is emitted; mistakes name the source node", "[decoder]") {
  const pb::Stream s = pbtest::to_stream(doc_with({{"k", f32({5, 7, 1, 1}, 0.25)}}));
  Decoder d(s, "test.model", Layout::ChannelsLast);
  d.input("x", 0, d.model());
  d.translating(d.model()["layers"][1], "test:pool");
  const pb::ir::TensorType t = d.step("p", "Pool", {d.as("x", Layout::ChannelsFirst)},
                                      pb::attrs_of({{"mode", std::string("max")}, {"kernel", std::vector<int64_t>{2, 2}}, {"strides", std::vector<int64_t>{2, 2}}}));
  CHECK(t.shape == pb::Shape{2, 3, 2, 2});
  CHECK(d.ir_type("p").shape == t.shape);
  // A window larger than the input, a kernel with the wrong channels, an unknown attribute:
  CHECK_THROWS_MATCHES(d.step("q", "Pool", {"p"}, pb::attrs_of({{"mode", std::string("max")}, {"kernel", std::vector<int64_t>{3, 3}}})),
                       pb::Error, ErrorAt("model.layers[1]", "spatial size 2 (padded 2) is smaller than the window 3"));
  CHECK_THROWS_MATCHES(d.step("c", "Conv", {"p", d.weight("k", "tensors.k")}), pb::Error,
                       ErrorAt("model.layers[1]", "does not fit 3 input channels"));
  CHECK_THROWS_MATCHES(d.step("a", "Activation", {"p"}, pb::attrs_of({{"function", std::string("relu")}, {"slope", 0.1}})),
                       pb::Error, ErrorAt("model.layers[1]", "attribute \"slope\" is not an attribute of Activation"));
  CHECK_THROWS_MATCHES(d.step("b", "Activation", {"nowhere"}), pb::Error,
                       ErrorAt("model.layers[1]", "IR value \"nowhere\" is used before it is defined"));
}

TEST_CASE("decoder: weights - one naming rule, used tensors tracked, nothing dropped silently", "[decoder]") {
  const pb::Stream s = pbtest::to_stream(doc_with({{"w", f32({3, 3}, 1)},
                                                   {"w64", {{"dtype", "f64"}, {"shape", {3}}, {"data", {1, 2, 3}}}},
                                                   {"ids", {{"dtype", "i32"}, {"shape", {2}}, {"data", {1, 2}}}},
                                                   {"stray", f32({1}, 0)},
                                                   {"bn.shift", f32({3}, 0)},
                                                   {"h", f32({1}, 0)},
                                                   {"counter", f32({1}, 0)}}));
  Decoder d(s, "test.model", Layout::ChannelsFirst);
  d.input("x", 0, d.model());
  CHECK(d.weight("w", "tensors.w") == "w");                    // as is: its own name, no copy
  CHECK(d.weight("w64", "tensors.w64") == "w64@f32");          // rounded once, named for it
  CHECK(d.derived("w", "T", pb::permuted(s.tensors.at("w"), {1, 0})) == "w@T");
  CHECK(d.constant("bn", "scale", pb::filled({3}, 1.0)) == "bn.scale");
  CHECK_THROWS_MATCHES(d.weight("ids", "tensors.ids"), pb::Error, ErrorAt("tensors.ids", "expected a float tensor, got i32"));
  CHECK_THROWS_MATCHES(d.constant("bn", "shift", pb::filled({3}, 0.0)), pb::Error, ErrorAt("model", "clashes with a stream tensor"));
  d.ignore("counter");
  d.ignore("bn.shift");
  // A value and a weight never share a name, whichever comes first.
  CHECK_THROWS_MATCHES(d.step("w", "Identity", {"x"}), pb::Error, ErrorAt("model", "\"w\" would name two things in the graph (a weight"));
  d.step("h", "Identity", {"x"});
  CHECK_THROWS_MATCHES(d.weight("h", "tensors.h"), pb::Error, ErrorAt("model", "weight \"h\" has the name of a value of the model"));
  // "stray" was never read: the decode fails naming it.
  d.define("y", Layout::ChannelsFirst, "Identity", {"x"});
  CHECK_THROWS_MATCHES(d.finish({"y"}, d.model()), pb::Error, ErrorAt("tensors.stray", "not used by any part of the model"));
}

TEST_CASE("decoder: a node of several outputs names them after the schema", "[decoder]") {
  const pb::Stream s = pbtest::to_stream(doc_with({{"W", f32({1, 8, 3}, 0.1)}, {"R", f32({1, 8, 2}, 0.1)}}));
  Decoder d(s, "test.model", Layout::ChannelsFirst);
  d.input("x", 0, d.model());
  d.step("seq", "Reshape", {"x"}, pb::attrs_of({{"shape", std::vector<int64_t>{0, 16, 3}}}));
  const std::vector<std::string> out = d.steps("lstm", "LSTM", {"seq", d.weight("W", "tensors.W"), d.weight("R", "tensors.R")});
  CHECK(out == std::vector<std::string>{"lstm", "lstm:h_n", "lstm:c_n"});
  CHECK(d.ir_type("lstm").shape == pb::Shape{2, 16, 2});
  CHECK(d.ir_type("lstm:c_n").shape == pb::Shape{1, 16, 2});
  CHECK_THROWS_MATCHES(d.steps("x2", "Mystery", {"x"}), pb::Error, ErrorAt("model", "unknown op \"Mystery\""));
}

TEST_CASE("decoder: outputs are counted against the stream's expected ones", "[decoder]") {
  const pb::Stream s = pbtest::to_stream(doc_with());
  Decoder d(s, "test.model", Layout::ChannelsFirst);
  d.input("x", 0, d.model());
  CHECK_THROWS_MATCHES(d.finish({"x", "x"}, d.model()["layers"]), pb::Error,
                       ErrorAt("model.layers", "names 2 outputs, the stream has 1 expected outputs"));
}

TEST_CASE("decoder: bind makes a weight a source value; check_attributes and find_translator name the key", "[decoder]") {
  const pb::Stream s = pbtest::to_stream(doc_with({{"p", f32({3}, 2)}}));
  Decoder d(s, "test.model", Layout::ChannelsFirst);
  d.input("x", 0, d.model());
  d.bind("param_node", d.weight("p", "tensors.p"), Layout::ChannelsFirst);
  CHECK(d.planet_form("param_node") == "p");
  CHECK(d.type("param_node").shape == pb::Shape{3});

  const json layer = {{"name", "l"}, {"units", 3}, {"kernel_quantizer", "int8"}, {"unset", nullptr}};
  const pb::JsonRef l(layer, "model.layers[0]");
  CHECK_NOTHROW(pb::check_attributes(l, {"units", "kernel_quantizer"}, "Dense", {"name"}));
  CHECK_THROWS_MATCHES(pb::check_attributes(l, {"units"}, "Dense", {"name"}), pb::Error,
                       ErrorAt("model.layers[0].kernel_quantizer", "attribute not understood for Dense (known: units)"));

  pb::TranslatorTable<const int> table = {{"Dense", {{"units"}, 1, [](const int&) {}}}};
  CHECK(&pb::find_translator(table, "Dense", l, "layer class") == &table.at("Dense"));
  CHECK_THROWS_MATCHES(pb::find_translator(table, "Conv", l, "layer class"), pb::Error,
                       ErrorAt("model.layers[0]", "unsupported layer class \"Conv\" (known: Dense)"));
}
