// The pytorch decoder's attention translators (plugins/pytorch/op/attention.cpp) on small streams
// recorded from real torch 1.13 nn.MultiheadAttention, nn.TransformerEncoderLayer and
// nn.TransformerEncoder modules with taps (plugins/pytorch/tests/streams/make_streams.py:
// mha_self_weights, mha_cross_padding, encoder_layer_root, encoder_layer_gelu_tanh,
// encoder_stack_padding, and matmul_forms for a @ b written in plain torch; no torch needed here). Each dialect fact is checked on the IR (q, k, v
// blocks of in_proj, head split, scale, masks, head averaging, layer order, torch's fast paths)
// and by running against torch's own outputs; a fact broken on purpose must visibly fail.
// Refusals mutate copies of those documents and name their JSON path.
#include <cmath>
#include <functional>
#include <limits>

#include "ladder.h"
#include "planetbridge/network.h"
#include "fx_doc.h"
#include "test_util.h"

using nlohmann::json;
using pb::Tensor;
using pb::ir::Graph;
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

const pb::Dialect& pytorch() { return pbtest::planet(); }

void check_ladder(const pb::Stream& s) { pbtest::check_passes(pbtest::ladder(s, pytorch()), s); }

Names node_names(const Graph& g) {
  Names names;
  for (const auto& n : g.nodes) names.push_back(n.name);
  return names;
}

// The largest |ours - torch's| over every output of a decoded (possibly edited) graph.
double worst_output_diff(const pb::Stream& s, const Graph& g) {
  const std::vector<Tensor> got = run(s, g);
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const Tensor& want = s.tensors.at(s.expected[i]);
    if (got[i].shape() != want.shape()) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, max_diff(got[i], want));
  }
  return worst;
}

std::vector<float> slice_rows(const Tensor& t, int64_t r0, int64_t r1) {
  const int64_t cols = t.numel() / t.shape()[0];
  return {t.data<float>() + r0 * cols, t.data<float>() + r1 * cols};
}

std::vector<float> values(const Tensor& t) { return {t.data<float>(), t.data<float>() + t.numel()}; }

}  // namespace

// ------------------------------------------------------------------ nn.MultiheadAttention

TEST_CASE("pytorch attention: MultiheadAttention is projections, heads, a scaled MatMul, the mask, softmax, MatMul and out_proj", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("mha_self_weights"));
  const Graph g = pytorch().decode(s);
  CHECK(node_names(g) == Names{"attn/q", "attn/q_split", "attn/q_heads", "attn/k", "attn/k_split", "attn/k_heads", "attn/v", "attn/v_split",
                               "attn/v_heads", "attn/scores", "attn/masked", "attn/weights", "attn/context", "attn/merged", "attn/merged_flat",
                               "attn/out", "attn/weights_by_head", "attn/weights_mean", "attn/weights_avg"});
  CHECK(node(g, "attn/q").origin == "fx:attn (MultiheadAttention)");
  // in_proj_weight [3E, E] stacks q, k, v: each Dense takes its block of rows, and its bias's.
  const Tensor& w = s.tensors.at("attn.in_proj_weight");
  const Tensor& b = s.tensors.at("attn.in_proj_bias");
  for (int64_t i = 0; i < 3; ++i) {
    const std::string role(1, "qkv"[i]);
    INFO(role);
    CHECK(node(g, "attn/" + role).inputs == Names{"x", "attn.in_proj_weight@" + role, "attn.in_proj_bias@" + role});
    CHECK(values(g.weights.at("attn.in_proj_weight@" + role)) == slice_rows(w, 8 * i, 8 * (i + 1)));
    CHECK(values(g.weights.at("attn.in_proj_bias@" + role)) == slice_rows(b, 8 * i, 8 * (i + 1)));
    // [N, L, 8] -> [N, L, 2 heads, 4] -> [N, 2, L, 4]: head h is features 4h .. 4h + 3.
    CHECK(node(g, "attn/" + role + "_split").attrs.ints("shape") == Ints{0, 0, 2, 4});
    CHECK(node(g, "attn/" + role + "_heads").attrs.ints("perm") == Ints{0, 2, 1, 3});
  }
  const pb::ir::Node& scores = node(g, "attn/scores");
  CHECK(scores.op == "MatMul");
  CHECK(scores.inputs == Names{"attn/q_heads", "attn/k_heads"});
  CHECK(scores.attrs.i("transpose_b") == 1);
  CHECK(scores.attrs.f("scale") == 0.5);  // 1 / sqrt(head_dim 4)
  // The bool causal mask: -inf where True (above the diagonal), added to the scores.
  CHECK(node(g, "attn/masked").inputs == Names{"attn/scores", "attn.attn_mask"});
  const Tensor& mask = g.weights.at("attn.attn_mask");
  REQUIRE(mask.shape() == pb::Shape{4, 4});
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 4; ++j) CHECK(mask.data<float>()[i * 4 + j] == (j > i ? -std::numeric_limits<float>::infinity() : 0.f));
  CHECK(node(g, "attn/weights").attrs.i("axis") == -1);
  CHECK(node(g, "attn/context").inputs == Names{"attn/weights", "attn/v_heads"});
  CHECK(node(g, "attn/merged_flat").attrs.ints("shape") == Ints{0, 0, 8});
  CHECK(node(g, "attn/out").inputs == Names{"attn/merged_flat", "attn.out_proj.weight", "attn.out_proj.bias"});
  // need_weights (the default): the weights averaged over heads, torch's sum / num_heads.
  const pb::ir::Node& mean = node(g, "attn/weights_mean");
  CHECK(mean.op == "MatMul");
  CHECK(mean.attrs.f("scale") == 0.5);
  CHECK(values(g.weights.at("attn/weights_mean.ones")) == std::vector<float>{1.f, 1.f});
  CHECK(g.outputs == Names{"attn/out", "attn/weights_avg"});
  check_ladder(s);
}

TEST_CASE("pytorch attention: in_proj's q and k blocks swapped in the stream visibly fail", "[pytorch]") {
  json doc = load_doc("mha_self_weights");
  json& w = doc["tensors"]["attn.in_proj_weight"]["data"];
  for (size_t i = 0; i < 64; ++i) std::swap(w[i], w[64 + i]);
  const pb::Stream s = to_stream(doc);
  CHECK(worst_output_diff(s, pytorch().decode(s)) > 1e-2);
}

TEST_CASE("pytorch attention: kdim/vdim keep separate q/k/v_proj_weight; time-major heads; both masks; weights per head", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("mha_cross_padding"));
  const Graph g = pytorch().decode(s);
  // Separate projection weights are the stream tensors themselves (no copy); the bias stays packed.
  for (const std::string role : {"q", "k", "v"}) {
    INFO(role);
    const pb::ir::Node& p = node(g, "attn/" + role);
    CHECK(p.inputs == Names{role, "attn." + role + "_proj_weight", "attn.in_proj_bias@" + role});
    CHECK(g.weights.at("attn." + role + "_proj_weight").raw() == s.tensors.at("attn." + role + "_proj_weight").raw());
    // [L, N, 8] -> [L, N, 2, 4] -> [N, 2, L, 4]
    CHECK(node(g, "attn/" + role + "_heads").attrs.ints("perm") == Ints{1, 2, 0, 3});
  }
  CHECK(g.weights.at("attn.k_proj_weight").shape() == pb::Shape{8, 6});
  CHECK(node(g, "attn/merged").attrs.ints("perm") == Ints{2, 0, 1, 3});
  // The float attn_mask buffer [L, S] is added as is (the stream's own bytes); the bool
  // key_padding_mask input (i32 0/1 in the stream) picks 0 or -inf per key, [N, 1, 1, S].
  CHECK(node(g, "attn/masked").inputs == Names{"attn/scores", "bias"});
  CHECK(g.weights.at("bias").raw() == s.tensors.at("bias").raw());
  const pb::ir::Node& kpm = node(g, "attn.key_padding_mask");
  CHECK(kpm.op == "Embedding");
  CHECK(kpm.inputs == Names{"padding", "attn.key_padding_mask_table"});
  CHECK(values(g.weights.at("attn.key_padding_mask_table")) == std::vector<float>{0.f, -std::numeric_limits<float>::infinity()});
  CHECK(node(g, "attn.key_padding_mask/shaped").attrs.ints("shape") == Ints{-1, 1, 1, 5});
  CHECK(node(g, "attn/masked1").inputs == Names{"attn/masked", "attn.key_padding_mask/shaped"});
  // average_attn_weights=False: the softmax itself, [N, heads, L, S].
  CHECK(g.outputs == Names{"attn/out", "attn/weights"});
  CHECK(s.tensors.at(s.expected[1]).shape() == pb::Shape{2, 2, 3, 5});
  check_ladder(s);

  // The padded keys counted (a mask of zeros in the stream): visibly off.
  json doc = load_doc("mha_cross_padding");
  for (json& v : doc["tensors"]["input.3"]["data"]) v = 0;
  const pb::Stream broken = to_stream(doc);
  CHECK(worst_output_diff(broken, pytorch().decode(broken)) > 1e-2);
}

// ------------------------------------------------------------------ nn.TransformerEncoderLayer

TEST_CASE("pytorch attention: a post-norm TransformerEncoderLayer as the root: norm1(x + sa(x)), norm2(x + ff(x))", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("encoder_layer_root"));
  const Graph g = pytorch().decode(s);
  CHECK(node(g, "layer/add1").inputs == Names{"x", "layer/attn/out"});
  CHECK(node(g, "layer/norm1").inputs == Names{"layer/add1", "layer.norm1.weight", "layer.norm1.bias"});
  CHECK(node(g, "layer/norm1").attrs.f("eps") == 1e-5);
  const pb::ir::Node& lin1 = node(g, "layer/linear1");
  CHECK(lin1.inputs == Names{"layer/norm1", "layer.linear1.weight", "layer.linear1.bias"});
  CHECK(lin1.attrs.s("activation") == "relu");  // F.relu, fused
  CHECK(node(g, "layer/add2").inputs == Names{"layer/norm1", "layer/linear2"});
  const pb::ir::Node& out = node(g, "layer");  // the fx node's own value: its tap lines up
  CHECK(out.op == "LayerNorm");
  CHECK(out.inputs == Names{"layer/add2", "layer.norm2.weight", "layer.norm2.bias"});
  CHECK(g.outputs == Names{"layer"});
  check_ladder(s);
  const pb::host::CaseResult r = pbtest::ladder(s, pytorch());
  CHECK(r.taps.size() == 4);  // layer/attn/out, layer/norm1, layer/linear2, layer
  for (const auto& t : r.taps) {
    INFO(t.value);
    CHECK(t.vs_native.within);
  }

  // Pre-norm where torch ran post-norm: visibly off.
  json doc = load_doc("encoder_layer_root");
  doc["model"]["modules"]["layer"]["attrs"]["norm_first"] = true;
  const pb::Stream broken = to_stream(doc);
  CHECK(worst_output_diff(broken, pytorch().decode(broken)) > 1e-2);
}

TEST_CASE("pytorch attention: norm_first with nn.GELU(approximate=tanh): torch's fused kernel computes the exact gelu", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("encoder_layer_gelu_tanh"));
  Graph g = pytorch().decode(s);
  CHECK(node(g, "layer/norm1").inputs[0] == "x");
  CHECK(node(g, "layer/add1").inputs == Names{"x", "layer/attn/out"});
  CHECK(node(g, "layer/norm2").inputs[0] == "layer/add1");
  CHECK(node(g, "layer").op == "Add");
  CHECK(node(g, "layer").inputs == Names{"layer/add1", "layer/linear2"});
  CHECK(node(g, "layer/linear1").attrs.s("activation") == "gelu_erf");
  check_ladder(s);
  // The module's own tanh approximation is not what torch ran.
  for (auto& n : g.nodes)
    if (n.name == "layer/linear1") n.attrs.set("activation", std::string("gelu_tanh"));
  CHECK(worst_output_diff(s, g) > 1e-5);
}

// ------------------------------------------------------------------ nn.TransformerEncoder

TEST_CASE("pytorch attention: a TransformerEncoder with a padding mask zeroes padded positions and keeps the longest row's length", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("encoder_stack_padding"));
  const Graph g = pytorch().decode(s);
  CHECK(node(g, "encoder/l0/add1").inputs == Names{"x", "encoder/l0/attn/out"});
  CHECK(node(g, "encoder/l1/add1").inputs == Names{"encoder/l0", "encoder/l1/attn/out"});
  CHECK(node(g, "encoder/l1/attn/masked").inputs == Names{"encoder/l1/attn/scores", "encoder.key_padding_mask"});
  CHECK(node(g, "encoder/l1/attn/q").inputs[1] == "encoder.layers.1.self_attn.in_proj_weight@q");
  // torch 1.13's nested-tensor path: padded positions are zeros, and the output keeps only as
  // many positions as the longest row (3 of 4), before the final norm.
  CHECK(node(g, "encoder/unpadded").inputs == Names{"encoder/l1", "encoder.keep"});
  CHECK(values(g.weights.at("encoder.keep")) == std::vector<float>{1, 1, 0, 0, 1, 1, 1, 0});
  const pb::ir::Node& trimmed = node(g, "encoder/trimmed");
  CHECK(trimmed.op == "Slice");
  CHECK(trimmed.attrs.ints("ends") == Ints{3});
  CHECK(trimmed.attrs.ints("axes") == Ints{1});
  CHECK(node(g, "encoder").inputs == Names{"encoder/trimmed", "encoder.norm.weight", "encoder.norm.bias"});
  CHECK(s.tensors.at(s.expected[0]).shape() == pb::Shape{2, 3, 8});
  check_ladder(s);

  // Without the nested path (enable_nested_tensor=False torch runs densely): all 4 positions.
  json doc = load_doc("encoder_stack_padding");
  doc["model"]["modules"]["encoder"]["attrs"]["enable_nested_tensor"] = false;
  const pb::Stream dense = to_stream(doc);
  CHECK(worst_output_diff(dense, pytorch().decode(dense)) == std::numeric_limits<double>::infinity());
}

TEST_CASE("pytorch attention: a runtime padding mask whose every row is padded is refused (torch's output length depends on it)", "[pytorch]") {
  json doc = load_doc("encoder_stack_padding");
  json& buffer = fx_node(doc, "padding");
  buffer["op"] = "placeholder";
  doc["tensors"]["input.1"] = doc["tensors"]["padding"];
  doc["tensors"].erase("padding");
  doc["inputs"].push_back("input.1");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt(graph_path(doc, "encoder") + ".kwargs.src_key_padding_mask",
                               "every row of the captured src_key_padding_mask is padded (the longest keeps 3 of 4)"));
}

// ------------------------------------------------------------------ plain torch

TEST_CASE("pytorch attention: q @ k.transpose(-2, -1), .matmul, torch.matmul and torch.bmm are MatMul", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("matmul_forms"));
  const Graph g = pytorch().decode(s);
  CHECK(node(g, "transpose").attrs.ints("perm") == Ints{0, 1, 3, 2});  // -2, -1 resolved against rank 4
  for (const std::string name : {"matmul", "matmul_1", "matmul_2", "bmm"}) {
    INFO(name);
    CHECK(node(g, name).op == "MatMul");
    CHECK(node(g, name).attrs.all().empty());  // no transpose, no scale: the graph's own ops do those
  }
  CHECK(node(g, "matmul").inputs == Names{"q", "transpose"});
  CHECK(node(g, "matmul_2").inputs == Names{"matmul_1", "w"});  // a [4, 3] parameter broadcast over [2, 2]
  CHECK(g.weights.at("w").shape() == pb::Shape{4, 3});
  check_ladder(s);

  json doc = load_doc("matmul_forms");
  doc["tensors"]["w"]["shape"] = json::array({12});  // a vector: torch would promote it to a matrix
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(graph_path(doc, "matmul_2"), "a matrix product with a 1-D operand"));
}

// ------------------------------------------------------------------ refusals

TEST_CASE("pytorch attention: what the IR cannot compute is refused, naming the JSON path", "[pytorch]") {
  const json base = load_doc("mha_self_weights");
  const std::string module = "model.modules.attn";
  auto refused = [&](const std::function<void(json&)>& edit, const std::string& path, const std::string& message) {
    json doc = base;
    edit(doc);
    CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(path, message));
  };
  refused([](json& d) { d["model"]["modules"]["attn"]["params"]["bias_k"] = "attn.in_proj_bias"; }, module + ".params.bias_k",
          "add_bias_kv appends a learned key and value");
  refused([](json& d) { d["model"]["modules"]["attn"]["attrs"]["add_zero_attn"] = true; }, module + ".attrs.add_zero_attn",
          "add_zero_attn appends a zero key and value");
  refused(
      [](json& d) {
        d["model"]["modules"]["attn"]["training"] = true;
        d["model"]["modules"]["attn"]["attrs"]["dropout"] = 0.1;
      },
      module + ".training", "in training mode drops out at random");
  refused([](json& d) { d["model"]["modules"]["attn"]["attrs"]["is_causal"] = true; }, module + ".attrs.is_causal", "attribute not understood for MultiheadAttention");
  refused([](json& d) { fx_node(d, "attn")["kwargs"]["is_causal"] = true; }, graph_path(base, "attn") + ".kwargs.is_causal",
          "attribute not understood for MultiheadAttention (known: query, key, value, key_padding_mask, need_weights, attn_mask, "
          "average_attn_weights)");
  refused([](json& d) { d["model"]["modules"]["attn"]["children"]["extra"] = d["model"]["modules"]["attn"]["children"]["out_proj"]; },
          module + ".children.extra", "unexpected submodule \"extra\"");
  refused([](json& d) { d["model"]["modules"]["attn"]["children"]["out_proj"]["type"] = "Conv1d"; },
          module + ".children.out_proj.type", "MultiheadAttention.out_proj is a Conv1d");
  refused([](json& d) { d["model"]["modules"]["attn"]["attrs"]["num_heads"] = 3; }, module + ".attrs.num_heads",
          "embed_dim 8 is not divisible by num_heads 3");
  // A bool buffer sliced in the graph reaches the mask as f32 0/1: refused, not added.
  refused(
      [](json& d) {
        json& graph = d["model"]["graph"];
        graph.insert(graph.begin() + 2, json{{"name", "mask_rows"}, {"op", "call_function"}, {"target", "_operator.getitem"},
                                            {"args", json::array({json{{"node", "mask"}}, json{{"slice", json::array({nullptr, 4, nullptr})}}})},
                                            {"kwargs", json::object()}});
        fx_node(d, "attn")["kwargs"]["attn_mask"] = json{{"node", "mask_rows"}};
      },
      "model.graph[3].kwargs.attn_mask", "a bool buffer indexed or viewed in the graph");

  const json layer = load_doc("encoder_layer_root");
  json doc = layer;
  doc["model"]["modules"]["layer"]["attrs"]["activation"]["function"] = "torch.nn.functional.silu";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.modules.layer.attrs.activation", "unsupported encoder layer activation \"torch.nn.functional.silu\""));
  doc = layer;
  doc["model"]["modules"]["layer"]["attrs"]["activation_relu_or_gelu"] = 2;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.layer.attrs.activation_relu_or_gelu", "disagrees with the activation (relu)"));
  doc = layer;
  doc["model"]["modules"]["layer"]["children"]["dropout1"]["training"] = true;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.layer.children.dropout1.training", "Dropout in training mode"));
}

// ------------------------------------------------------------------ decoders

TEST_CASE("pytorch attention: a post-norm TransformerDecoderLayer: self-attention under tgt masks, cross-attention under memory masks, ff",
          "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("decoder_layer_masks"));
  const Graph g = pytorch().decode(s);
  // x = norm1(x + sa(x)); x = norm2(x + mha(x, memory)); x = norm3(x + ff(x))
  CHECK(node(g, "layer/self_attn/q").inputs[0] == "tgt");
  CHECK(node(g, "layer/add1").inputs == Names{"tgt", "layer/self_attn/out"});
  CHECK(node(g, "layer/norm1").inputs == Names{"layer/add1", "layer.norm1.weight", "layer.norm1.bias"});
  CHECK(node(g, "layer/multihead_attn/q").inputs[0] == "layer/norm1");
  CHECK(node(g, "layer/multihead_attn/k").inputs == Names{"memory", "layer.multihead_attn.in_proj_weight@k", "layer.multihead_attn.in_proj_bias@k"});
  CHECK(node(g, "layer/multihead_attn/v").inputs[0] == "memory");
  CHECK(node(g, "layer/add2").inputs == Names{"layer/norm1", "layer/multihead_attn/out"});
  CHECK(node(g, "layer/linear1").inputs[0] == "layer/norm2");
  CHECK(node(g, "layer/linear1").attrs.s("activation") == "relu");
  CHECK(node(g, "layer/add3").inputs == Names{"layer/norm2", "layer/linear2"});
  CHECK(node(g, "layer").op == "LayerNorm");
  CHECK(node(g, "layer").inputs == Names{"layer/add3", "layer.norm3.weight", "layer.norm3.bias"});
  // The float causal tgt_mask is the buffer itself; the bool memory_mask buffer -inf where True;
  // each padding input its own Embedding of the two-row table.
  CHECK(node(g, "layer/self_attn/masked").inputs == Names{"layer/self_attn/scores", "causal"});
  CHECK(node(g, "layer/self_attn/masked1").inputs == Names{"layer/self_attn/masked", "layer.tgt_key_padding_mask/shaped"});
  CHECK(node(g, "layer.tgt_key_padding_mask").inputs == Names{"tgt_padding", "layer.tgt_key_padding_mask_table"});
  CHECK(node(g, "layer/multihead_attn/masked").inputs == Names{"layer/multihead_attn/scores", "layer.memory_mask"});
  const Tensor& memory_mask = g.weights.at("layer.memory_mask");
  REQUIRE(memory_mask.shape() == pb::Shape{4, 5});
  CHECK(std::isinf(memory_mask.data<float>()[4]));
  CHECK(memory_mask.data<float>()[0] == 0.f);
  CHECK(node(g, "layer/multihead_attn/masked1").inputs == Names{"layer/multihead_attn/masked", "layer.memory_key_padding_mask/shaped"});
  CHECK(node(g, "layer.memory_key_padding_mask/shaped").attrs.ints("shape") == Ints{-1, 1, 1, 5});
  check_ladder(s);
  const pb::host::CaseResult r = pbtest::ladder(s, pytorch());
  CHECK(r.taps.size() == 4);  // layer/self_attn/out, layer/multihead_attn/out, layer/linear2, layer
  for (const auto& t : r.taps) {
    INFO(t.value);
    CHECK(t.vs_native.within);
  }

  // The memory padding left out: visibly off.
  json doc = load_doc("decoder_layer_masks");
  fx_node(doc, "layer")["kwargs"].erase("memory_key_padding_mask");
  doc["tensors"].erase("input.3");
  doc["inputs"].erase(3);
  doc["model"]["graph"].erase(3);  // the memory_padding placeholder
  const pb::Stream broken = to_stream(doc);
  CHECK(worst_output_diff(broken, pytorch().decode(broken)) > 1e-2);
}

TEST_CASE("pytorch attention: nn.Transformer as the root: the encoder stack's output is the memory of the decoder stack", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("transformer_root"));
  const Graph g = pytorch().decode(s);
  // The encoder (one post-norm layer, time-major: no fused kernel, so no nested tensor) and its
  // final norm.
  CHECK(node(g, "transformer/encoder/l0/attn/q").inputs[0] == "src");
  CHECK(node(g, "transformer/encoder").op == "LayerNorm");
  CHECK(node(g, "transformer/encoder").inputs == Names{"transformer/encoder/l0", "transformer.encoder.norm.weight", "transformer.encoder.norm.bias"});
  CHECK(node(g, "transformer/decoder/l0/self_attn/q").inputs[0] == "tgt");
  CHECK(node(g, "transformer/decoder/l0/multihead_attn/k").inputs[0] == "transformer/encoder");
  CHECK(node(g, "transformer/decoder/l0/multihead_attn/v").inputs[0] == "transformer/encoder");
  CHECK(node(g, "transformer").inputs == Names{"transformer/decoder/l0", "transformer.decoder.norm.weight", "transformer.decoder.norm.bias"});
  CHECK(g.outputs == Names{"transformer"});
  check_ladder(s);
  const pb::host::CaseResult r = pbtest::ladder(s, pytorch());
  CHECK(r.taps.size() >= 8);
  for (const auto& t : r.taps) {
    INFO(t.value);
    CHECK(t.vs_native.within);
  }

  // Pre-norm where torch ran post-norm: visibly off.
  json doc = load_doc("transformer_root");
  doc["model"]["modules"]["transformer"]["children"]["decoder"]["children"]["layers"]["children"]["0"]["attrs"]["norm_first"] = true;
  const pb::Stream broken = to_stream(doc);
  CHECK(worst_output_diff(broken, pytorch().decode(broken)) > 1e-2);
}

TEST_CASE("pytorch attention: decoder configurations the IR cannot compute are refused, naming the module and field", "[pytorch]") {
  const json base = load_doc("decoder_layer_masks");
  const std::string layer = "model.modules.layer";
  auto refused = [&](const std::function<void(json&)>& edit, const std::string& path, const std::string& message) {
    json doc = base;
    edit(doc);
    CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(path, message));
  };
  // A custom activation callable: a function the decoder does not know, a module of another
  // type, and a callable the capture cannot name at all.
  refused([](json& d) { d["model"]["modules"]["layer"]["attrs"]["activation"] = {{"function", "torch.nn.functional.silu"}}; },
          layer + ".attrs.activation", "unsupported decoder layer activation \"torch.nn.functional.silu\"");
  refused(
      [](json& d) {
        json& m = d["model"]["modules"]["layer"];
        m["attrs"].erase("activation");
        m["children"]["activation"] = {{"type", "SiLU"}, {"class", "torch.nn.modules.activation.SiLU"}, {"training", false},
                                       {"attrs", {{"inplace", false}}}, {"params", json::object()}, {"buffers", json::object()}};
      },
      layer + ".children.activation.type", "TransformerDecoderLayer.activation is a SiLU (expected ReLU, GELU)");
  refused([](json& d) { d["model"]["modules"]["layer"]["attrs"].erase("activation"); }, layer + ".attrs",
          "TransformerDecoderLayer.activation is a callable the capture cannot name");
  refused([](json& d) { d["model"]["modules"]["layer"]["children"]["dropout3"]["training"] = true; }, layer + ".children.dropout3.training",
          "Dropout in training mode");
  refused([](json& d) { d["model"]["modules"]["layer"]["children"]["multihead_attn"]["attrs"]["batch_first"] = false; },
          layer + ".children.multihead_attn.attrs.batch_first", "TransformerDecoderLayer.multihead_attn.batch_first differs from self_attn's");
  refused([](json& d) { d["model"]["modules"]["layer"]["children"].erase("norm3"); }, layer, "TransformerDecoderLayer has no submodule \"norm3\"");
  // A memory_mask of the tgt's length on both sides does not fit [L, S].
  refused([](json& d) { fx_node(d, "layer")["kwargs"]["memory_mask"] = {{"node", "causal"}}; },
          graph_path(base, "layer") + ".kwargs.memory_mask", "memory_mask [4, 4] does not fit: expected [4, 5] or [-1, 4, 5]");
  refused([](json& d) { fx_node(d, "layer")["kwargs"]["is_causal"] = true; }, graph_path(base, "layer") + ".kwargs.is_causal",
          "attribute not understood for TransformerDecoderLayer");

  const json t = load_doc("transformer_root");
  json doc = t;
  doc["model"]["modules"]["transformer"]["children"]["decoder"]["type"] = "MyDecoder";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.modules.transformer.children.decoder.type", "Transformer.decoder is a MyDecoder (expected TransformerDecoder)"));
  doc = t;
  doc["model"]["modules"]["transformer"]["children"]["decoder"]["attrs"]["num_layers"] = 2;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.modules.transformer.children.decoder.children.layers", "ModuleList has no submodule \"1\""));
}
