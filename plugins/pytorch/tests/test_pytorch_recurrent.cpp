// The pytorch decoder's recurrent translators (plugins/pytorch/op/recurrent.cpp) and the fx
// tuple and indexing handling (getitem), on small streams recorded from real torch 1.13 nn.RNN,
// nn.LSTM and nn.GRU modules with taps (plugins/pytorch/tests/streams/make_streams.py: lstm_states,
// gru_bidirectional, gru_last, rnn_relu_root, rnn_select; no torch needed here). Every dialect
// fact is checked on the IR (gate order, bias placement, direction stacking, state slicing) and
// by running against torch's own outputs; a fact deliberately broken in the stream must visibly
// fail. Refusals mutate copies of those documents and name their JSON path.
#include <algorithm>
#include <limits>

#include "ladder.h"
#include "planetbridge/network.h"
#include "plugin_loader.h"
#include "fx_doc.h"
#include "test_util.h"

using nlohmann::json;
using pb::Tensor;
using pb::ir::Graph;
using pbtest::check_outputs;
using pbtest::decode;
using pbtest::ErrorAt;
using pbtest::load_doc;
using pbtest::max_diff;
using pbtest::node;
using pbtest::run;
using pbtest::to_stream;
using pytorch_test::fx_node;
using pytorch_test::graph_path;

namespace {

using Names = std::vector<std::string>;
using Ints = std::vector<int64_t>;
constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();

const pb::Dialect& pytorch() { return pbtest::planet(); }

// Rows [r0, r1) of direction `dir` of a [D, rows, cols...] weight (or of a [rows, cols...]
// stream tensor with dir 0).
std::vector<float> rows(const Tensor& t, int64_t dir, int64_t r0, int64_t r1) {
  const bool stacked = t.shape().size() == 3;
  const int64_t nrows = stacked ? t.shape()[1] : t.shape()[0];
  const int64_t cols = t.numel() / ((stacked ? t.shape()[0] : 1) * nrows);
  const float* p = t.data<float>() + (dir * nrows + r0) * cols;
  return {p, p + (r1 - r0) * cols};
}

// The same, for IR biases [D, rows] against a stream bias [rows].
std::vector<float> bias_rows(const Tensor& t, int64_t dir, int64_t r0, int64_t r1) {
  const int64_t nrows = t.shape().back();
  const float* p = t.data<float>() + dir * nrows + r0;
  return {p, p + (r1 - r0)};
}

// Swaps row blocks a and b (each `block` rows) of stream tensor `name` in the document: a gate
// order deliberately broken.
void swap_blocks(json& doc, const std::string& name, int64_t a, int64_t b, int64_t block) {
  json& t = doc["tensors"][name];
  const int64_t nrows = t["shape"][0].get<int64_t>();
  const int64_t cols = int64_t(t["data"].size()) / nrows;
  for (int64_t i = 0; i < block * cols; ++i) std::swap(t["data"][size_t(a * block * cols + i)], t["data"][size_t(b * block * cols + i)]);
}

void check_ladder(const pb::Stream& s) { pbtest::check_passes(pbtest::ladder(s, pytorch()), s); }

}  // namespace

// ------------------------------------------------------------------ LSTM

TEST_CASE("pytorch recurrent: a 2-layer LSTM is a chain of LSTM nodes; gates i,f,g,o used as is, no copy", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("lstm_states"));
  const Graph g = pytorch().decode(s);
  Names names;
  for (const auto& n : g.nodes) names.push_back(n.name);
  CHECK(names == Names{"lstm/h0_l0", "lstm/c0_l0", "lstm/l0", "lstm/h0_l1", "lstm/c0_l1", "lstm/l1", "lstm/h_n", "lstm/c_n",
                       "getitem_4/slice", "getitem_4", "getitem_5/slice", "getitem_5"});
  const pb::ir::Node& l0 = node(g, "lstm/l0");
  CHECK(l0.op == "LSTM");
  CHECK(l0.origin == "fx:lstm (LSTM)");
  CHECK(l0.inputs == Names{"x", "lstm.weight_ih_l0@dir", "lstm.weight_hh_l0@dir", "lstm.bias_ih_l0@dir", "lstm.bias_hh_l0@dir",
                           "lstm/h0_l0", "lstm/c0_l0"});
  CHECK(l0.outputs == Names{"lstm/l0", "lstm/l0:h_n", "lstm/l0:c_n"});
  CHECK(l0.attrs.s("direction") == "forward");
  CHECK(l0.attrs.i("batch_first") == 1);
  // Layer 1 reads layer 0's sequence; its input weight is [4H, H].
  const pb::ir::Node& l1 = node(g, "lstm/l1");
  CHECK(l1.inputs == Names{"lstm/l0", "lstm.weight_ih_l1@dir", "lstm.weight_hh_l1@dir", "lstm.bias_ih_l1@dir", "lstm.bias_hh_l1@dir",
                           "lstm/h0_l1", "lstm/c0_l1"});
  CHECK(g.weights.at("lstm.weight_ih_l1@dir").shape() == pb::Shape{1, 16, 4});

  // i, f, g, o is the IR's order: each weight and both biases are the stream's tensors, with a
  // leading directions axis, sharing their bytes (b_ih -> B, b_hh -> RB, never summed here).
  for (const std::string p : {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"}) {
    INFO(p);
    const Tensor& w = g.weights.at("lstm." + p + "@dir");
    const Tensor& t = s.tensors.at("lstm." + p);
    CHECK(w.raw() == t.raw());
    pb::Shape want = t.shape();
    want.insert(want.begin(), 1);
    CHECK(w.shape() == want);
  }
  CHECK(g.weights.at("lstm.weight_ih_l0@dir").shape() == pb::Shape{1, 16, 3});

  // torch's h0, c0 [num_layers, N, H]: each layer's row by a Slice; h_n, c_n by a Concat.
  const pb::ir::Node& h0_l1 = node(g, "lstm/h0_l1");
  CHECK(h0_l1.op == "Slice");
  CHECK(h0_l1.inputs == Names{"h0"});
  CHECK(h0_l1.attrs.ints("starts") == Ints{1});
  CHECK(h0_l1.attrs.ints("ends") == Ints{2});
  CHECK(h0_l1.attrs.ints("axes") == Ints{0});
  CHECK(node(g, "lstm/c0_l0").inputs == Names{"c0"});
  const pb::ir::Node& h_n = node(g, "lstm/h_n");
  CHECK(h_n.op == "Concat");
  CHECK(h_n.inputs == Names{"lstm/l0:h_n", "lstm/l1:h_n"});
  CHECK(h_n.attrs.i("axis") == 0);
  CHECK(node(g, "lstm/c_n").inputs == Names{"lstm/l0:c_n", "lstm/l1:c_n"});

  // y, (h, c) = lstm(...): the getitems bind, no node; y[:, -1] and h[-1] are Slice + Reshape.
  CHECK(g.outputs == Names{"getitem_4", "lstm/h_n", "lstm/c_n", "getitem_5"});
  const pb::ir::Node& last = node(g, "getitem_4/slice");
  CHECK(last.inputs == Names{"lstm/l1"});
  CHECK(last.attrs.ints("starts") == Ints{-1});
  CHECK(last.attrs.ints("ends") == Ints{kEnd});
  CHECK(last.attrs.ints("axes") == Ints{1});
  CHECK(node(g, "getitem_4").op == "Reshape");
  CHECK(node(g, "getitem_4").attrs.ints("shape") == Ints{0, 4});  // the batch copied: any batch
  CHECK(node(g, "getitem_5/slice").inputs == Names{"lstm/h_n"});
  CHECK(node(g, "getitem_5").attrs.ints("shape") == Ints{-1, 4});

  check_outputs(s, g);
  check_ladder(s);
}

TEST_CASE("pytorch recurrent: LSTM gate blocks moved in the stream visibly fail (the order is never guessed)", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("lstm_states"));
  json doc = load_doc("lstm_states");
  for (const std::string p : {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}) swap_blocks(doc, "lstm." + p, 1, 2, 4);  // f <-> g
  const std::vector<Tensor> wrong = run(s, decode(doc));
  CHECK(max_diff(wrong[0], s.tensors.at("output.0")) > 0.01);
}

TEST_CASE("pytorch recurrent: hx given as a keyword runs as the positional one", "[pytorch]") {
  json doc = load_doc("lstm_states");
  json& lstm = fx_node(doc, "lstm");
  lstm["kwargs"]["hx"] = lstm["args"][1];
  lstm["args"].erase(1);
  const pb::Stream s = to_stream(doc);
  const Graph g = pytorch().decode(s);
  CHECK(node(g, "lstm/l0").inputs.back() == "lstm/c0_l0");
  check_outputs(s, g);
}

// ------------------------------------------------------------------ GRU

TEST_CASE("pytorch recurrent: GRU r,z,n becomes the IR's z,r,n with linear_before_reset; directions stack", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("gru_bidirectional"));
  const Graph g = pytorch().decode(s);
  const pb::ir::Node& l0 = node(g, "gru/l0");
  CHECK(l0.op == "GRU");
  CHECK(l0.inputs == Names{"x", "gru/l0.W", "gru/l0.R", "gru/l0.B", "gru/l0.RB", "gru/h0_l0"});
  CHECK(l0.outputs == Names{"gru/l0", "gru/l0:h_n"});
  CHECK(l0.attrs.s("direction") == "bidirectional");
  CHECK(l0.attrs.s("merge") == "concat");
  CHECK(l0.attrs.i("batch_first") == 0);  // time-major, as torch's default
  CHECK(l0.attrs.i("linear_before_reset") == 1);
  CHECK(node(g, "gru/l1").inputs[0] == "gru/l0");
  CHECK(g.weights.at("gru/l1.W").shape() == pb::Shape{2, 12, 8});  // layer 1 reads both directions

  const int64_t h = 4;
  for (const auto& [role, param] : std::vector<std::pair<std::string, std::string>>{{"W", "weight_ih_l0"}, {"R", "weight_hh_l0"}}) {
    const Tensor& w = g.weights.at("gru/l0." + role);
    CHECK(w.shape()[0] == 2);
    for (int64_t dir = 0; dir < 2; ++dir) {
      INFO(role << " direction " << dir);
      const Tensor& t = s.tensors.at("gru." + param + (dir ? "_reverse" : ""));
      CHECK(rows(w, dir, 0, h) == rows(t, 0, h, 2 * h));          // z: torch's second block
      CHECK(rows(w, dir, h, 2 * h) == rows(t, 0, 0, h));          // r: torch's first block
      CHECK(rows(w, dir, 2 * h, 3 * h) == rows(t, 0, 2 * h, 3 * h));  // n stays
    }
  }
  for (const auto& [role, param] : std::vector<std::pair<std::string, std::string>>{{"B", "bias_ih_l0"}, {"RB", "bias_hh_l0"}}) {
    const Tensor& b = g.weights.at("gru/l0." + role);
    CHECK(b.shape() == pb::Shape{2, 12});
    for (int64_t dir = 0; dir < 2; ++dir) {
      const Tensor& t = s.tensors.at("gru." + param + (dir ? "_reverse" : ""));
      CHECK(bias_rows(b, dir, 0, h) == bias_rows(t, 0, h, 2 * h));
      CHECK(bias_rows(b, dir, h, 2 * h) == bias_rows(t, 0, 0, h));
      CHECK(bias_rows(b, dir, 2 * h, 3 * h) == bias_rows(t, 0, 2 * h, 3 * h));  // b_hn stays apart, in RB
    }
  }
  // h0 [num_layers·2, N, H]: layer k's rows 2k, 2k + 1.
  CHECK(node(g, "gru/h0_l1").attrs.ints("starts") == Ints{2});
  CHECK(node(g, "gru/h0_l1").attrs.ints("ends") == Ints{4});
  CHECK(g.outputs == Names{"gru/l1", "gru/h_n"});
  check_outputs(s, g);
  check_ladder(s);
}

TEST_CASE("pytorch recurrent: GRU gates left in torch's r,z,n order visibly fail", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("gru_last"));
  json doc = load_doc("gru_last");
  for (const std::string p : {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}) swap_blocks(doc, "gru." + p, 0, 1, 4);
  const std::vector<Tensor> wrong = run(s, decode(doc));
  CHECK(max_diff(wrong[0], s.tensors.at("output.0")) > 0.01);
}

TEST_CASE("pytorch recurrent: a unidirectional GRU's reordered weights are \"<tensor>@zrn\"; out[:, -1] feeds a Linear", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("gru_last"));
  const Graph g = pytorch().decode(s);
  const pb::ir::Node& l0 = node(g, "gru/l0");
  CHECK(l0.inputs == Names{"x", "gru.weight_ih_l0@zrn", "gru.weight_hh_l0@zrn", "gru.bias_ih_l0@zrn", "gru.bias_hh_l0@zrn"});
  const Tensor& w = g.weights.at("gru.weight_ih_l0@zrn");
  CHECK(w.shape() == pb::Shape{1, 12, 3});
  CHECK(rows(w, 0, 0, 4) == rows(s.tensors.at("gru.weight_ih_l0"), 0, 4, 8));
  CHECK(node(g, "fc").inputs[0] == "getitem_2");  // out, _ = gru(x) are getitem, getitem_1
  check_outputs(s, g);
  check_ladder(s);
}

// ------------------------------------------------------------------ RNN

TEST_CASE("pytorch recurrent: nn.RNN(relu, bias=False) as the root module returns its (y, h_n) tuple as is", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("rnn_relu_root"));
  const Graph g = pytorch().decode(s);
  REQUIRE(g.nodes.size() == 1);
  const pb::ir::Node& l0 = g.nodes[0];
  CHECK(l0.op == "RNN");
  CHECK(l0.attrs.s("activation") == "relu");
  CHECK(l0.inputs == Names{"x", "rnn.weight_ih_l0@dir", "rnn.weight_hh_l0@dir"});  // no biases, no initial state
  CHECK(g.outputs == Names{"rnn/l0", "rnn/l0:h_n"});  // the output node names the tuple node
  check_outputs(s, g);
  check_ladder(s);
}

TEST_CASE("pytorch recurrent: bidirectional tanh RNN, rnn(x)[0], a slice with a step, an index on the batch", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("rnn_select"));
  const Graph g = pytorch().decode(s);
  const pb::ir::Node& l0 = node(g, "rnn/l0");
  CHECK(l0.attrs.s("activation") == "tanh");
  CHECK(l0.inputs == Names{"x", "rnn/l0.W", "rnn/l0.R", "rnn/l0.B", "rnn/l0.RB"});
  CHECK(rows(g.weights.at("rnn/l0.W"), 1, 0, 4) == rows(s.tensors.at("rnn.weight_ih_l0_reverse"), 0, 0, 4));
  const pb::ir::Node& stepped = node(g, "getitem_1");  // y[:, 1:4:2]: a Slice, no dim dropped
  CHECK(stepped.op == "Slice");
  CHECK(stepped.attrs.ints("starts") == Ints{1});
  CHECK(stepped.attrs.ints("ends") == Ints{4});
  CHECK(stepped.attrs.ints("steps") == Ints{2});
  CHECK(stepped.attrs.ints("axes") == Ints{1});
  CHECK(node(g, "getitem_2/slice").attrs.ints("axes") == Ints{0});  // y[0]
  CHECK(node(g, "getitem_2").attrs.ints("shape") == Ints{5, 8});  // [T, 8]: no dim left depends on the batch
  check_outputs(s, g);
  check_ladder(s);
}

// ------------------------------------------------------------------ refusals

TEST_CASE("pytorch recurrent: what the IR cannot compute is refused, naming its JSON path", "[pytorch]") {
  json doc = load_doc("lstm_states");
  const std::string lstm = graph_path(doc, "lstm");
  auto modified = [](json d, const std::function<void(json&)>& f) {
    f(d);
    return d;
  };

  CHECK_THROWS_MATCHES(decode(modified(doc, [](json& d) { d["model"]["modules"]["lstm"]["attrs"]["proj_size"] = 2; })), pb::Error,
                       ErrorAt("model.modules.lstm.attrs.proj_size", "the IR's LSTM has no projection: not supported"));
  CHECK_THROWS_MATCHES(decode(modified(doc,
                                       [](json& d) {
                                         d["model"]["modules"]["lstm"]["training"] = true;
                                         d["model"]["modules"]["lstm"]["attrs"]["dropout"] = 0.5;
                                       })),
                       pb::Error, ErrorAt("model.modules.lstm.training", "capture the model in eval()"));
  // Training without dropout computes what eval does.
  CHECK_NOTHROW(decode(modified(doc, [](json& d) { d["model"]["modules"]["lstm"]["training"] = true; })));
  CHECK_THROWS_MATCHES(decode(modified(doc, [](json& d) { d["model"]["modules"]["lstm"]["attrs"]["mode"] = "GRU"; })), pb::Error,
                       ErrorAt("model.modules.lstm.attrs.mode", "LSTM with mode \"GRU\" (expected \"LSTM\")"));
  CHECK_THROWS_MATCHES(decode(modified(doc, [](json& d) { d["model"]["modules"]["lstm"]["attrs"]["weight_hr_l0"] = 1; })), pb::Error,
                       ErrorAt("model.modules.lstm.attrs.weight_hr_l0", "attribute not understood for LSTM"));
  CHECK_THROWS_MATCHES(decode(modified(doc, [](json& d) { d["model"]["modules"]["lstm"]["params"].erase("weight_hh_l1"); })), pb::Error,
                       ErrorAt("model.modules.lstm.params", "LSTM has no \"weight_hh_l1\""));
  CHECK_THROWS_MATCHES(
      decode(modified(doc, [](json& d) { d["model"]["modules"]["lstm"]["params"]["weight_ih_l0"] = "lstm.weight_hh_l0"; })), pb::Error,
      ErrorAt("model.modules.lstm.params.weight_ih_l0", "expected shape [16, 3], got [16, 4]"));
  // bias=False with biases in the stream: they would be ignored, so they are refused as unused.
  CHECK_THROWS_MATCHES(decode(modified(doc, [](json& d) { d["model"]["modules"]["lstm"]["attrs"]["bias"] = false; })), pb::Error,
                       ErrorAt("tensors[\"lstm.bias_hh_l0\"]", "not used by any part of the model"));
  CHECK_THROWS_MATCHES(decode(modified(doc, [](json& d) { d["model"]["modules"]["lstm"]["attrs"]["input_size"] = 5; })), pb::Error,
                       ErrorAt(lstm, "LSTM with input_size 5 called on [2, 5, 3]"));
  CHECK_THROWS_MATCHES(decode(modified(doc, [](json& d) { d["tensors"]["input.0"]["shape"] = json::parse("[10, 3]"); })), pb::Error,
                       ErrorAt(lstm, "only a batch of sequences [N, T, input_size] is supported"));
  CHECK_THROWS_MATCHES(decode(modified(doc, [&](json& d) { fx_node(d, "lstm")["args"][1] = json::parse(R"({"node": "h0"})"); })), pb::Error,
                       ErrorAt(lstm + ".args[1]", "expected a tuple"));
  CHECK_THROWS_MATCHES(decode(modified(doc, [&](json& d) { fx_node(d, "lstm")["args"][1][1] = json::parse(R"({"node": "x"})"); })), pb::Error,
                       ErrorAt(lstm + ".args[1]", "initial state must be [num_layers·directions, N, hidden_size] = [2, 2, 4], got [2, 5, 3]"));
  CHECK_THROWS_MATCHES(decode(modified(doc, [&](json& d) { fx_node(d, "lstm")["args"].push_back(nullptr); fx_node(d, "lstm")["args"].push_back(1); })),
                       pb::Error, ErrorAt(lstm + ".args", "LSTM takes 2 inputs, got 4 arguments"));
  CHECK_THROWS_MATCHES(decode(modified(doc, [&](json& d) { fx_node(d, "lstm")["kwargs"]["state"] = json::parse(R"({"node": "h0"})"); })), pb::Error,
                       ErrorAt(lstm + ".kwargs.state", "attribute not understood for LSTM"));

  json rnn = load_doc("rnn_relu_root");
  rnn["model"]["modules"]["rnn"]["attrs"]["nonlinearity"] = "sigmoid";
  CHECK_THROWS_MATCHES(decode(rnn), pb::Error, ErrorAt("model.modules.rnn.attrs.nonlinearity", "unknown RNN nonlinearity \"sigmoid\""));
  rnn["model"]["modules"]["rnn"]["attrs"]["nonlinearity"] = "tanh";  // mode still RNN_RELU
  CHECK_THROWS_MATCHES(decode(rnn), pb::Error, ErrorAt("model.modules.rnn.attrs.mode", "RNN with mode \"RNN_RELU\" (expected \"RNN_TANH\")"));

  json gru = load_doc("gru_bidirectional");
  fx_node(gru, "gru")["args"][1] = json::parse(R"({"node": "x"})");
  CHECK_THROWS_MATCHES(decode(gru), pb::Error,
                       ErrorAt(graph_path(gru, "gru") + ".args[1]", "GRU's initial state must be [num_layers·directions, N, hidden_size] = [4, 2, 4], got [5, 2, 3]"));
}

TEST_CASE("pytorch recurrent: packed sequences are refused by name", "[pytorch]") {
  // What the capture records for pack_padded_sequence(x, lengths, batch_first=True,
  // enforce_sorted=False) before the LSTM (a leaf function: traced into, it fails inside torch).
  for (const std::string fn : {"pack_padded_sequence", "pack_sequence", "pad_packed_sequence"}) {
    json doc = load_doc("lstm_states");
    json& graph = doc["model"]["graph"];
    json pack = json::parse(R"({"op": "call_function", "args": [{"node": "x"}, {"node": "h0"}], "kwargs": {"batch_first": true}})");
    pack["name"] = fn;
    pack["target"] = "torch.nn.utils.rnn." + fn;
    graph.insert(graph.begin() + 3, pack);
    fx_node(doc, "lstm")["args"][0] = json::object({{"node", fn}});
    CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                         ErrorAt("model.graph[3]", "packed sequences (torch.nn.utils.rnn." + fn + ") are not supported"));
  }
}

TEST_CASE("pytorch recurrent: tuples select by a constant index; a tuple is never a tensor", "[pytorch]") {
  json doc = load_doc("lstm_states");
  const std::string g1 = graph_path(doc, "getitem_1"), g4 = graph_path(doc, "getitem_4");
  {
    json d = doc;
    fx_node(d, "getitem_1")["args"][1] = -1;  // lstm[-1] is lstm[1]
    const pb::Stream s = to_stream(d);
    check_outputs(s, pytorch().decode(s));
  }
  json d = doc;
  fx_node(d, "getitem_1")["args"][1] = 2;
  CHECK_THROWS_MATCHES(decode(d), pb::Error, ErrorAt(g1 + ".args[1]", "index 2 is out of range for a tuple of 2"));
  d = doc;
  fx_node(d, "getitem_1")["args"][1] = json::parse(R"([{"slice": [null, 1, null]}])");
  CHECK_THROWS_MATCHES(decode(d), pb::Error, ErrorAt(g1 + ".args[1]", "a tuple (2 elements) is indexed by an integer only"));
  d = doc;
  fx_node(d, "getitem_4")["args"][0] = json::parse(R"({"node": "getitem_1"})");  // (h, c)[:, -1]
  CHECK_THROWS_MATCHES(decode(d), pb::Error, ErrorAt(g4 + ".args[1]", "a tuple (2 elements) is indexed by an integer only"));

  json gru = load_doc("gru_last");
  fx_node(gru, "fc")["args"][0] = json::parse(R"({"node": "gru"})");
  CHECK_THROWS_MATCHES(decode(gru), pb::Error,
                       ErrorAt(graph_path(gru, "fc") + ".args[0]", "\"gru\" is a tuple (2 elements), not a tensor: select an element first"));
}

TEST_CASE("pytorch recurrent: tensor indexing other than constant integers, slices, None and ... is refused", "[pytorch]") {
  const json doc = load_doc("rnn_select");
  const std::string g1 = graph_path(doc, "getitem_1");
  auto refused = [&](const json& index, const std::string& where, const std::string& message) {
    json d = doc;
    fx_node(d, "getitem_1")["args"][1] = index;
    INFO(index.dump());
    CHECK_THROWS_MATCHES(decode(d), pb::Error, ErrorAt(where, message));
  };
  refused(json::parse(R"J({"repr": "range(0, 2)"})J"), g1 + ".args[1]", "indexing with {\"repr\":\"range(0, 2)\"} is not supported");
  refused(json::parse(R"([{"repr": "Ellipsis"}, 0, {"repr": "Ellipsis"}])"), g1 + ".args[1]", "an index can have only one Ellipsis");
  refused(json::parse(R"({"node": "x"})"), g1 + ".args[1]", "indexing with {\"node\":\"x\"} is not supported");
  refused(json::parse("[0, 1.5]"), g1 + ".args[1][1]", "indexing with 1.5 is not supported");
  refused(json::parse(R"([{"slice": [null, null, -1]}])"), g1 + ".args[1][0].slice[2]", "a slice step must be positive");
  refused(json::parse(R"([{"slice": [{"node": "x"}, null, null]}])"), g1 + ".args[1][0].slice[0]", "a slice bound must be a constant integer");
  refused(json::parse("[0, 5]"), g1 + ".args[1][1]", "index 5 is out of range for dim 1 of size 5");
  refused(json::parse("[0, 0, 0, 0]"), g1 + ".args[1]", "4 indices for a tensor of rank 3");
  refused(json::parse("true"), g1 + ".args[1]", "indexing with true is not supported");
  // A whole-dim slice alone is the identity.
  json d = doc;
  fx_node(d, "getitem_1")["args"][1] = json::parse(R"([{"slice": [null, null, null]}])");
  d["tensors"].erase("tap.getitem_1");
  d["taps"].erase("getitem_1");
  d["tensors"]["output.0"] = d["tensors"]["tap.rnn/l0"];
  const pb::Stream s = to_stream(d);
  const Graph g = pytorch().decode(s);
  CHECK(node(g, "getitem_1").op == "Identity");
  check_outputs(s, g);
}
