// The tensorflow decoder's attention and gated feed-forward layers on streams recorded from tfjs by
// tests/streams/record_attention.js: Keras MultiHeadAttention (composed in the tfjs capture, tfjs
// 4.22 has none; and the same model as Python Keras 2 and Keras 3 configs), SwiGLU from stock
// layers; and hand-written Keras UpSampling1D / UpSampling3D configs (tfjs has neither). Each is
// checked against Keras's definition computed here by hand from the Keras tensors, the recorded
// native outputs against the same, and a deliberately broken fact fails visibly. Refusals name
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

// A [N, T, F] activation in double, row-major.
struct Seq {
  int64_t n = 0, t = 0, f = 0;
  std::vector<double> v;
  double at(int64_t a, int64_t b, int64_t c) const { return v[size_t((a * t + b) * f + c)]; }
};

Seq seq(const Tensor& x) {
  Seq s{x.shape()[0], x.shape()[1], x.shape()[2], pbtest::doubles(x)};
  return s;
}

// Keras's MultiHeadAttention by hand, straight from its einsums: q = x_q·K_q + b_q over
// "abc,cde->abde" ([N, T, heads, dim]), scores = (q / √key_dim)·kᵀ per head, query i sees key j
// ≤ i when causal, softmax over the keys, ·v, out = "abcd,cde->abe" with K_o [heads, value_dim,
// out] + b_o. The weights are the stream's tensors of layer `layer` (bias absent without
// use_bias).
// With `allowed` (Keras's attention_mask, combined with the causal mask), the softmax adds -1e9
// where it is false, rounded as float32 does (a row with every key masked is then uniform).
Seq keras_mha(const pb::Stream& s, const std::string& layer, const Seq& query, const Seq& value, const Seq& key, bool causal,
              const std::function<bool(int64_t, int64_t, int64_t)>& allowed = nullptr) {
  auto w = [&](const std::string& n) -> const Tensor* {
    auto it = s.tensors.find(layer + "/" + n);
    return it == s.tensors.end() ? nullptr : &it->second;
  };
  const Tensor& kq = *w("query/kernel");
  const int64_t heads = kq.shape()[1], kd = kq.shape()[2], vd = w("value/kernel")->shape()[2], out = w("attention_output/kernel")->shape()[2];
  // x [N, T, F] · kernel [F, heads, dim] + bias [heads, dim] -> [N][T][heads][dim], flattened.
  auto project = [&](const Seq& x, const std::string& role) {
    const Tensor& k = *w(role + "/kernel");
    const Tensor* b = w(role + "/bias");
    const int64_t dim = k.shape()[2];
    std::vector<double> p(size_t(x.n * x.t * heads * dim));
    for (int64_t a = 0; a < x.n; ++a)
      for (int64_t t = 0; t < x.t; ++t)
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t e = 0; e < dim; ++e) {
            double acc = b ? b->data<float>()[h * dim + e] : 0.0;
            for (int64_t c = 0; c < x.f; ++c) acc += x.at(a, t, c) * k.data<float>()[(c * heads + h) * dim + e];
            p[size_t(((a * x.t + t) * heads + h) * dim + e)] = acc;
          }
    return p;
  };
  const std::vector<double> q = project(query, "query"), k = project(key, "key"), v = project(value, "value");
  const Tensor& ko = *w("attention_output/kernel");
  const Tensor* bo = w("attention_output/bias");
  const int64_t tq = query.t, tk = key.t;
  Seq y{query.n, tq, out, std::vector<double>(size_t(query.n * tq * out), 0.0)};
  for (int64_t a = 0; a < query.n; ++a)
    for (int64_t i = 0; i < tq; ++i) {
      std::vector<double> ctx(size_t(heads * vd), 0.0);
      for (int64_t h = 0; h < heads; ++h) {
        std::vector<double> p(size_t(tk), 0.0);
        double top = -INFINITY, sum = 0;
        // Without a mask, keys above the diagonal are left out (-inf); with one, they get -1e9.
        const auto hidden = [&](int64_t j) { return !allowed && causal && j > i; };
        for (int64_t j = 0; j < tk; ++j) {
          if (hidden(j)) continue;
          double sc = 0;
          for (int64_t d = 0; d < kd; ++d) sc += q[size_t(((a * tq + i) * heads + h) * kd + d)] / std::sqrt(double(kd)) * k[size_t(((a * tk + j) * heads + h) * kd + d)];
          if (allowed && (!allowed(a, i, j) || (causal && j > i))) sc = double(float(sc) + -1e9f);
          p[size_t(j)] = sc;
          top = std::max(top, sc);
        }
        for (int64_t j = 0; j < tk; ++j) {
          p[size_t(j)] = hidden(j) ? 0.0 : std::exp(p[size_t(j)] - top);
          sum += p[size_t(j)];
        }
        for (int64_t j = 0; j < tk; ++j)
          for (int64_t e = 0; e < vd; ++e) ctx[size_t(h * vd + e)] += p[size_t(j)] / sum * v[size_t(((a * tk + j) * heads + h) * vd + e)];
      }
      for (int64_t o = 0; o < out; ++o) {
        double acc = bo ? bo->data<float>()[o] : 0.0;
        for (int64_t he = 0; he < heads * vd; ++he) acc += ctx[size_t(he)] * ko.data<float>()[he * out + o];
        y.v[size_t((a * tq + i) * out + o)] = acc;
      }
    }
  return y;
}

// The two layers of the recorded model: mha_self (causal) on [x, x], mha_cross on [mha_self, ctx, kin].
std::pair<Seq, Seq> reference(const pb::Stream& s) {
  const Seq x = seq(s.tensors.at(s.inputs[0])), ctx = seq(s.tensors.at(s.inputs[1])), kin = seq(s.tensors.at(s.inputs[2]));
  const Seq self = keras_mha(s, "mha_self", x, x, x, true);
  return {self, keras_mha(s, "mha_cross", self, ctx, kin, false)};
}

const Tensor& expected(const pb::Stream& s, size_t i) { return s.tensors.at(s.expected.at(i)); }

size_t layer_index(const json& doc, const std::string& name) {
  const json& layers = doc["model"]["topology"]["config"]["layers"];
  for (size_t i = 0; i < layers.size(); ++i)
    if (layers[i]["name"] == name) return i;
  FAIL("no layer " << name);
  return 0;
}

}  // namespace

// ------------------------------------------------------------------ MultiHeadAttention

TEST_CASE("tensorflow attention: MultiHeadAttention einsum kernels per head, causal mask, cross attention", "[tensorflow][attention]") {
  const pb::Stream s = to_stream(load_doc("tfjs_mha"));
  const Graph g = tensorflow().decode(s);

  // The recorded tfjs outputs (composed from tfjs ops) are Keras's definition.
  const auto [self, cross] = reference(s);
  check_close(pbtest::doubles(expected(s, 0)), self.v, 1e-5, 1e-4);
  check_close(pbtest::doubles(expected(s, 1)), cross.v, 1e-5, 1e-4);

  // Projections: Dense over [features] with the kernel [features, heads, dim] as [heads·dim, features].
  const pb::ir::Node& q = node(g, "mha_self/query");
  CHECK(q.op == "Dense");
  CHECK(q.inputs == std::vector<std::string>{"x", "mha_self/query/kernel@T", "mha_self/query/bias@flat"});
  const Tensor& kk = s.tensors.at("mha_cross/key/kernel");  // [7, 2, 4]
  const Tensor& wk = g.weights.at("mha_cross/key/kernel@T");
  REQUIRE(wk.shape() == Shape{8, 7});
  for (int64_t f = 0; f < 7; ++f)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t e = 0; e < 4; ++e) CHECK(wk.data<float>()[(h * 4 + e) * 7 + f] == kk.data<float>()[(f * 2 + h) * 4 + e]);
  CHECK(node(g, "mha_self/query_split").attrs.ints("shape") == std::vector<int64_t>{0, 0, 2, 3});
  CHECK(node(g, "mha_self/scores").attrs.f("scale") == Approx(1 / std::sqrt(3.0)));
  // Keras's roles: value from the second input, key from the third; no bias with use_bias false.
  CHECK(node(g, "mha_cross/query").inputs == std::vector<std::string>{"mha_self", "mha_cross/query/kernel@T"});
  CHECK(node(g, "mha_cross/value").inputs == std::vector<std::string>{"ctx", "mha_cross/value/kernel@T"});
  CHECK(node(g, "mha_cross/key").inputs == std::vector<std::string>{"kin", "mha_cross/key/kernel@T"});
  CHECK(node(g, "mha_cross/context").attrs.ints("shape") == std::vector<int64_t>{0, 0, 6});  // heads · value_dim
  CHECK(node(g, "mha_cross").inputs == std::vector<std::string>{"mha_cross/context", "mha_cross/attention_output/kernel@T"});
  // use_causal_mask: -inf above the diagonal of [T, T]; no mask on the cross layer.
  CHECK(node(g, "mha_self/masked").inputs[1] == "mha_self.causal_mask");
  const Tensor& mask = g.weights.at("mha_self.causal_mask");
  REQUIRE(mask.shape() == Shape{4, 4});
  CHECK(mask.data<float>()[0 * 4 + 1] == -INFINITY);
  CHECK(mask.data<float>()[1 * 4 + 0] == 0.f);
  CHECK(g.find_node("mha_cross/masked") == nullptr);

  const std::vector<Tensor> got = run(s, g);
  check_close(pbtest::doubles(got[0]), self.v, 1e-5, 1e-4);
  check_close(pbtest::doubles(got[1]), cross.v, 1e-5, 1e-4);
  // The steps inside the layer are IR values named as the capture's taps "<layer>/<step>"
  // (capture/attention.js tap()); the stream carries them and check_passes compares every tap.
  for (const char* layer : {"mha_self", "mha_cross"})
    for (const char* step : {"q", "k", "v", "scores", "weights", "context"}) {
      const std::string name = std::string(layer) + "/" + step;
      INFO(name);
      CHECK(g.find_node(name) != nullptr);
      CHECK(s.taps.count(name) == 1);
    }
  CHECK(node(g, "mha_self/q").op == "Transpose");
  CHECK(node(g, "mha_self/scores").op == "MatMul");  // before the mask
  CHECK(node(g, "mha_self/weights").op == "Softmax");
  CHECK(node(g, "mha_self/context").op == "Reshape");  // heads merged [N, T, heads·value_dim]
  pbtest::check_passes(pbtest::ladder(s, tensorflow()), s);

  // Without the mask, or with the heads of a projection read transposed, visibly wrong.
  Graph unmasked = g;
  unmasked.weights["mha_self.causal_mask"] = pbtest::f32({4, 4}, std::vector<float>(16, 0.f));
  CHECK(max_diff(run(s, unmasked)[0], expected(s, 0)) > 0.01);
  Graph swapped = g;
  Tensor wq = g.weights.at("mha_self/query/kernel@T").clone();  // [2·3, 6]: rows of head 0 and 1
  for (int64_t i = 0; i < 3 * 6; ++i) std::swap(wq.data<float>()[i], wq.data<float>()[3 * 6 + i]);
  swapped.weights["mha_self/query/kernel@T"] = wq;
  CHECK(max_diff(run(s, swapped)[0], expected(s, 0)) > 0.01);
}

TEST_CASE("tensorflow attention: Python Keras 2 and Keras 3 MultiHeadAttention configs", "[tensorflow][attention]") {
  for (const char* name : {"keras2_mha", "keras3_mha"}) {
    INFO(name);
    const pb::Stream s = to_stream(load_doc(name));
    const Graph g = tensorflow().decode(s);
    CHECK(node(g, "mha_self/query").inputs[0] == "x");
    CHECK(node(g, "mha_self/key").inputs[0] == "x");
    CHECK(node(g, "mha_self/value").inputs[0] == "x");
    CHECK(node(g, "mha_self/masked").op == "Add");  // use_causal_mask, a call keyword
    CHECK(node(g, "mha_cross/value").inputs[0] == "ctx");
    CHECK(node(g, "mha_cross/key").inputs[0] == "kin");
    const auto [self, cross] = reference(s);
    const std::vector<Tensor> got = run(s, g);
    check_close(pbtest::doubles(got[0]), self.v, 1e-5, 1e-4);
    check_close(pbtest::doubles(got[1]), cross.v, 1e-5, 1e-4);
    pbtest::check_passes(pbtest::ladder(s, tensorflow()), s);
  }
  // Keras 3 called with keywords only: mha(query=..., value=..., key=...).
  json k3 = load_doc("keras3_mha");
  json& node3 = k3["model"]["topology"]["config"]["layers"][layer_index(k3, "mha_cross")]["inbound_nodes"][0];
  node3["kwargs"]["value"] = node3["args"][1];
  node3["kwargs"]["query"] = node3["args"][0];
  node3["args"] = json::array();
  const pb::Stream s3 = to_stream(k3);
  const Graph g3 = tensorflow().decode(s3);
  CHECK(node(g3, "mha_cross/query").inputs[0] == "mha_self");
  CHECK(node(g3, "mha_cross/value").inputs[0] == "ctx");
  CHECK(node(g3, "mha_cross/key").inputs[0] == "kin");
  pbtest::check_outputs(s3, g3);
}

TEST_CASE("tensorflow attention: what MultiHeadAttention cannot compute is refused, naming its path", "[tensorflow][attention]") {
  const json base = load_doc("keras2_mha");
  const size_t self_i = layer_index(base, "mha_self"), cross_i = layer_index(base, "mha_cross");
  const std::string self_l = "model.topology.config.layers[" + std::to_string(self_i) + "]";
  const std::string cross_l = "model.topology.config.layers[" + std::to_string(cross_i) + "]";
  auto with = [&](size_t i, const std::function<void(json&)>& f) {
    json doc = base;
    f(doc["model"]["topology"]["config"]["layers"][i]);
    return doc;
  };
  auto config = [&](size_t i, const std::string& key, json v) { return with(i, [&](json& l) { l["config"][key] = v; }); };
  auto kwarg = [&](size_t i, const std::string& key, json v) { return with(i, [&](json& l) { l["inbound_nodes"][0][0][3][key] = v; }); };
  const std::string self_kw = self_l + ".inbound_nodes[0][0][3]";

  CHECK_THROWS_MATCHES(decode(config(self_i, "num_heads", 0)), pb::Error, ErrorAt(self_l + ".config.num_heads", "expected a positive integer, got 0"));
  CHECK_THROWS_MATCHES(decode(config(self_i, "key_dim", 4)), pb::Error,
                       ErrorAt("model.weights.mha_self[\"query/kernel\"]",
                               "expected a float query/kernel of shape [features, num_heads, key_dim] = [6, 2, 4] for MultiHeadAttention \"mha_self\", got f32 [6, 2, 3]"));
  CHECK_THROWS_MATCHES(decode(config(cross_i, "output_shape", {5, 2})), pb::Error,
                       ErrorAt(cross_l + ".config.output_shape", "only an output_shape of one dim"));
  CHECK_THROWS_MATCHES(decode(config(cross_i, "output_shape", 4)), pb::Error,
                       ErrorAt("model.weights.mha_cross[\"attention_output/kernel\"]", "[num_heads, value_dim, output] = [2, 3, 4]"));
  CHECK_THROWS_MATCHES(decode(config(self_i, "attention_axes", {2})), pb::Error,
                       ErrorAt(self_l + ".config.attention_axes", "only attention over the steps axis"));
  CHECK(decode(config(self_i, "attention_axes", {1})).find_node("mha_self/scores"));
  CHECK_THROWS_MATCHES(decode(config(cross_i, "query_shape", {nullptr, 9, 6})), pb::Error,
                       ErrorAt(cross_l + ".config.query_shape", "query_shape [null,9,6] does not match the input [2, 4, 6]"));
  CHECK_THROWS_MATCHES(decode(config(self_i, "use_bias", false)), pb::Error,
                       ErrorAt("model.weights.mha_self[\"attention_output/bias\"]", "weight \"attention_output/bias\" is not used by MultiHeadAttention"));
  CHECK_THROWS_MATCHES(decode(config(cross_i, "use_bias", true)), pb::Error, ErrorAt("model.weights.mha_cross", "has no \"query/bias\" weight"));
  CHECK_THROWS_MATCHES(decode(config(self_i, "dtype", "float16")), pb::Error, ErrorAt(self_l + ".config.dtype", "only float32 is supported"));
  CHECK_THROWS_MATCHES(decode(config(self_i, "causal", true)), pb::Error, ErrorAt(self_l + ".config.causal", "attribute not understood for MultiHeadAttention"));

  // Call arguments.
  CHECK_THROWS_MATCHES(decode(kwarg(self_i, "attention_mask", json::array({"x", 0, 0}))), pb::Error,
                       ErrorAt(self_l, "MultiHeadAttention \"mha_self\" needs an integer or boolean attention_mask (1: attend, 0: masked), got f32 [2, 4, 6]"));
  CHECK(decode(kwarg(self_i, "attention_mask", nullptr)).find_node("mha_self/masked"));  // null: not given
  CHECK(decode(kwarg(self_i, "attention_mask", false)).find_node("mha_self/mask_adder") == nullptr);  // false: none
  CHECK_THROWS_MATCHES(decode(kwarg(self_i, "attention_mask", true)), pb::Error,
                       ErrorAt(self_kw + ".attention_mask",
                               "attention_mask true (the tfjs form) needs the call's inputs [query, value, key, attention_mask], got 2 inputs"));
  CHECK_THROWS_MATCHES(decode(kwarg(self_i, "attention_mask", "x")), pb::Error, ErrorAt(self_kw + ".attention_mask", "expected a tensor reference"));
  CHECK_THROWS_MATCHES(decode(kwarg(self_i, "query_mask", json::array({"x", 0, 0}))), pb::Error,
                       ErrorAt(self_kw + ".query_mask", "query_mask (a Keras mask) is not supported"));
  CHECK_THROWS_MATCHES(decode(kwarg(self_i, "return_attention_scores", true)), pb::Error,
                       ErrorAt(self_kw + ".return_attention_scores", "return_attention_scores true is not supported"));
  CHECK(decode(kwarg(self_i, "return_attention_scores", false)).find_node("mha_self/masked"));
  CHECK_THROWS_MATCHES(decode(kwarg(self_i, "use_causal_mask", "yes")), pb::Error, ErrorAt(self_kw + ".use_causal_mask", "expected true or false"));
  CHECK(decode(kwarg(self_i, "use_causal_mask", false)).find_node("mha_self/masked") == nullptr);
  CHECK_THROWS_MATCHES(decode(kwarg(self_i, "mask", true)), pb::Error,
                       ErrorAt(self_kw + ".mask", "call keyword argument \"mask\" is not supported by MultiHeadAttention"));
  CHECK_THROWS_MATCHES(decode(kwarg(self_i, "value", 3)), pb::Error, ErrorAt(self_kw + ".value", "expected a tensor reference"));
  // Inputs: the query alone; a key of another length than the value; a rank-2 query.
  CHECK_THROWS_MATCHES(decode(with(self_i, [](json& l) { l["inbound_nodes"][0][0][3].erase("value"); })), pb::Error,
                       ErrorAt(self_l, "MultiHeadAttention takes query, value and optionally key; \"mha_self\" is called on 1 tensor"));
  CHECK_THROWS_MATCHES(decode(kwarg(cross_i, "key", json::array({"x", 0, 0}))), pb::Error,
                       ErrorAt(cross_l, "key [2, 4, 6] and value [2, 5, 3] differ in length"));

  // tfjs repeats the call's keywords on every input ref: they must agree.
  json tfjs = load_doc("tfjs_mha");
  const size_t t_self = layer_index(tfjs, "mha_self");
  tfjs["model"]["topology"]["config"]["layers"][t_self]["inbound_nodes"][0][1][3]["use_causal_mask"] = false;
  CHECK_THROWS_MATCHES(decode(tfjs), pb::Error,
                       ErrorAt("model.topology.config.layers[" + std::to_string(t_self) + "].inbound_nodes[0][1][3].use_causal_mask",
                               "call keyword argument \"use_causal_mask\" differs between the call's input tensors"));

  // Keras 3: a tensor keyword that is not a keras tensor.
  json k3 = load_doc("keras3_mha");
  const size_t k3_cross = layer_index(k3, "mha_cross");
  k3["model"]["topology"]["config"]["layers"][k3_cross]["inbound_nodes"][0]["kwargs"]["key"] = 7;
  CHECK_THROWS_MATCHES(decode(k3), pb::Error,
                       ErrorAt("model.topology.config.layers[" + std::to_string(k3_cross) + "].inbound_nodes[0].kwargs.key", "expected a keras tensor"));
}

TEST_CASE("tensorflow attention: MultiHeadAttention attention_mask, a key padding mask and one combined with the causal mask",
          "[tensorflow][attention]") {
  const json doc = load_doc("tfjs_mha_mask");
  const pb::Stream s = to_stream(doc);
  const Graph g = tensorflow().decode(s);
  // The recorded model: x [2, 4, 6], valid [2, 4] (key padding), allowed [2, 4, 4]; mha_pad on [x, x]
  // masked by Reshape(valid) [2, 1, 4]; mha_both on [mha_pad, mha_pad] masked by allowed and causal.
  const Seq x = seq(s.tensors.at(s.inputs[0]));
  const Tensor& valid = s.tensors.at(s.inputs[1]);
  const Tensor& allowed = s.tensors.at(s.inputs[2]);
  REQUIRE(valid.dtype() == pb::DType::i32);
  REQUIRE(valid.shape() == Shape{2, 4});
  const Seq pad = keras_mha(s, "mha_pad", x, x, x, false, [&](int64_t a, int64_t, int64_t j) { return valid.data<int32_t>()[a * 4 + j] != 0; });
  const Seq both = keras_mha(s, "mha_both", pad, pad, pad, true,
                             [&](int64_t a, int64_t i, int64_t j) { return allowed.data<int32_t>()[(a * 4 + i) * 4 + j] != 0; });
  // tfjs (the composed layer) computed Keras's definition; row 0's query 1 sees no key: uniform weights.
  check_close(pbtest::doubles(expected(s, 0)), pad.v, 1e-5, 1e-4);
  check_close(pbtest::doubles(expected(s, 1)), both.v, 1e-5, 1e-4);
  CHECK(allowed.data<int32_t>()[1 * 4 + 0] == 0);
  CHECK(allowed.data<int32_t>()[1 * 4 + 1] == 0);

  // The mask: Reshape to [N, 1, Tq or 1, Tk], Where(mask, 0, -1e9) added to the scores; with the
  // causal mask a second Where keeps -1e9 above the diagonal.
  CHECK(node(g, "mha_pad/value").inputs[0] == "x");
  CHECK(node(g, "mha_pad/key").inputs[0] == "x");
  CHECK(node(g, "mha_pad/mask_heads").inputs == std::vector<std::string>{"key_mask"});
  CHECK(node(g, "mha_pad/mask_heads").attrs.ints("shape") == std::vector<int64_t>{0, 1, 1, 4});
  CHECK(node(g, "mha_pad/mask_adder").op == "Where");
  CHECK(node(g, "mha_pad/mask_adder").inputs == std::vector<std::string>{"mha_pad/mask_heads", "mha_pad.zero", "mha_pad.masked_value"});
  CHECK(g.weights.at("mha_pad.masked_value").data<float>()[0] == -1e9f);
  CHECK(node(g, "mha_pad/masked").inputs == std::vector<std::string>{"mha_pad/scores", "mha_pad/mask_adder"});
  CHECK(g.find_node("mha_pad/mask_causal") == nullptr);
  CHECK(node(g, "mha_both/mask_heads").attrs.ints("shape") == std::vector<int64_t>{0, 1, 4, 4});
  CHECK(node(g, "mha_both/mask_causal").inputs == std::vector<std::string>{"mha_both.causal_seen", "mha_both/mask_adder", "mha_both.masked_value"});
  const Tensor& seen = g.weights.at("mha_both.causal_seen");
  CHECK(seen.data<float>()[0 * 4 + 1] == 0.f);
  CHECK(seen.data<float>()[1 * 4 + 0] == 1.f);

  const std::vector<Tensor> got = run(s, g);
  check_close(pbtest::doubles(got[0]), pad.v, 1e-5, 1e-4);
  check_close(pbtest::doubles(got[1]), both.v, 1e-5, 1e-4);
  pbtest::check_passes(pbtest::ladder(s, tensorflow()), s);

  // Without the mask (0 added where masked), or with the causal part dropped: visibly wrong.
  Graph unmasked = g;
  unmasked.weights["mha_pad.masked_value"] = pbtest::f32({1}, {0.f});
  CHECK(max_diff(run(s, unmasked)[0], expected(s, 0)) > 0.01);
  Graph acausal = g;
  acausal.weights["mha_both.causal_seen"] = pbtest::f32({4, 4}, std::vector<float>(16, 1.f));
  CHECK(max_diff(run(s, acausal)[1], expected(s, 1)) > 0.01);

  // The same calls as Keras 2 writes them (value and attention_mask keywords of the query's ref) and
  // as Keras 3 does (args [query, value], kwargs attention_mask): the same graph and outputs.
  const size_t pad_i = layer_index(doc, "mha_pad"), both_i = layer_index(doc, "mha_both");
  json k2 = doc;
  json& k2_layers = k2["model"]["topology"]["config"]["layers"];
  k2_layers[pad_i]["inbound_nodes"] = json::parse(R"([[["x", 0, 0, {"value": ["x", 0, 0], "attention_mask": ["key_mask", 0, 0]}]]])");
  k2_layers[both_i]["inbound_nodes"] = json::parse(
      R"([[["mha_pad", 0, 0, {"value": ["mha_pad", 0, 0], "attention_mask": ["allowed", 0, 0], "use_causal_mask": true}]]])");
  const pb::Stream s2 = to_stream(k2);
  const Graph g2 = tensorflow().decode(s2);
  CHECK(node(g2, "mha_pad/mask_heads").inputs == std::vector<std::string>{"key_mask"});
  CHECK(node(g2, "mha_both/mask_causal").op == "Where");
  pbtest::check_outputs(s2, g2);
  json k3 = doc;
  auto kt = [](const std::string& layer) { return json{{"class_name", "__keras_tensor__"}, {"config", {{"keras_history", {layer, 0, 0}}}}}; };
  k3["model"]["topology"]["config"]["layers"][pad_i]["inbound_nodes"] =
      json::array({{{"args", {kt("x"), kt("x")}}, {"kwargs", {{"attention_mask", kt("key_mask")}}}}});
  k3["model"]["topology"]["config"]["layers"][both_i]["inbound_nodes"] =
      json::array({{{"args", {kt("mha_pad"), kt("mha_pad")}}, {"kwargs", {{"attention_mask", kt("allowed")}, {"use_causal_mask", true}}}}});
  const pb::Stream s3 = to_stream(k3);
  pbtest::check_outputs(s3, tensorflow().decode(s3));

  // Refused: a mask that is not [batch, Tq or 1, Tk] (the rank-2 padding input itself); the tfjs
  // form without its fourth input.
  const std::string pad_l = "model.topology.config.layers[" + std::to_string(pad_i) + "]";
  json bad = k2;
  bad["model"]["topology"]["config"]["layers"][pad_i]["inbound_nodes"][0][0][3]["attention_mask"] = {"valid", 0, 0};
  CHECK_THROWS_MATCHES(decode(bad), pb::Error,
                       ErrorAt(pad_l, "MultiHeadAttention \"mha_pad\" needs an attention_mask [batch, 4 or 1, 4] for query [2, 4, 6] and key [2, 4, 6], got [2, 4]"));
  bad = doc;
  bad["model"]["topology"]["config"]["layers"][pad_i]["inbound_nodes"][0].erase(3);
  CHECK_THROWS_MATCHES(decode(bad), pb::Error,
                       ErrorAt(pad_l + ".inbound_nodes[0][0][3].attention_mask",
                               "attention_mask true (the tfjs form) needs the call's inputs [query, value, key, attention_mask], got 3 inputs"));
  bad = doc;
  bad["model"]["topology"]["config"]["layers"][pad_i]["inbound_nodes"][0].erase(1);
  bad["model"]["topology"]["config"]["layers"][pad_i]["inbound_nodes"][0].erase(1);
  bad["model"]["topology"]["config"]["layers"][pad_i]["inbound_nodes"][0].erase(1);
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt(pad_l + ".inbound_nodes[0][0][3].attention_mask", "got 1 input"));
  // Keras 2 with a mask and no value: the query alone besides the mask.
  bad = k2;
  bad["model"]["topology"]["config"]["layers"][pad_i]["inbound_nodes"][0][0][3].erase("value");
  CHECK_THROWS_MATCHES(decode(bad), pb::Error,
                       ErrorAt(pad_l, "MultiHeadAttention takes query, value and optionally key; \"mha_pad\" is called on 1 tensor"));
}

TEST_CASE("tensorflow attention: MultiHeadAttention on a rank-2 input is refused", "[tensorflow][attention]") {
  // x [2, 6] through a Keras 2 MultiHeadAttention: Keras needs [batch, steps, features].
  json doc = load_doc("keras2_mha");
  json& layers = doc["model"]["topology"]["config"]["layers"];
  layers[layer_index(doc, "x")]["config"]["batch_input_shape"] = {nullptr, 24};
  const std::string x = doc["inputs"][0];
  doc["tensors"][x]["shape"] = {2, 24};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[" + std::to_string(layer_index(doc, "mha_self")) + "]",
                               "MultiHeadAttention \"mha_self\" needs a float query [batch, steps, features], got f32 [2, 24]"));
}

// ------------------------------------------------------------------ SwiGLU

TEST_CASE("tensorflow attention: SwiGLU from stock layers, gate and up kept apart", "[tensorflow][attention]") {
  const pb::Stream s = to_stream(load_doc("tfjs_swiglu"));
  const Graph g = tensorflow().decode(s);
  CHECK(node(g, "gate").attrs.s("activation") == "identity");
  CHECK(node(g, "silu").attrs.s("function") == "silu");  // tfjs's swish
  CHECK(node(g, "gated").op == "Mul");
  CHECK(node(g, "gated").inputs == std::vector<std::string>{"silu", "up"});

  // down(silu(x·G + g) · (x·U + u)) by hand, x [2, 3, 6], ff 8.
  const Tensor& x = s.tensors.at(s.inputs[0]);
  auto dense = [&](const std::vector<double>& in, int64_t rows, const std::string& layer) {
    const Tensor& k = s.tensors.at(layer + "/kernel");
    const Tensor& b = s.tensors.at(layer + "/bias");
    const int64_t n_in = k.shape()[0], n_out = k.shape()[1];
    std::vector<double> y(size_t(rows * n_out));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t o = 0; o < n_out; ++o) {
        double acc = b.data<float>()[o];
        for (int64_t i = 0; i < n_in; ++i) acc += in[size_t(r * n_in + i)] * k.data<float>()[i * n_out + o];
        y[size_t(r * n_out + o)] = acc;
      }
    return y;
  };
  const std::vector<double> xv = pbtest::doubles(x);
  std::vector<double> gate = dense(xv, 6, "gate"), up = dense(xv, 6, "up");
  for (size_t i = 0; i < gate.size(); ++i) gate[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
  const std::vector<double> y = dense(gate, 6, "down");
  check_close(pbtest::doubles(expected(s, 0)), y, 1e-5, 1e-4);
  check_close(pbtest::doubles(run(s, g)[0]), y, 1e-5, 1e-4);
  pbtest::check_passes(pbtest::ladder(s, tensorflow()), s);

  // Gate and up swapped: visibly wrong (silu is not symmetric).
  Graph swapped = g;
  std::swap(swapped.weights.at("gate/kernel@T"), swapped.weights.at("up/kernel@T"));
  std::swap(swapped.weights.at("gate/bias"), swapped.weights.at("up/bias"));
  CHECK(max_diff(run(s, swapped)[0], expected(s, 0)) > 0.01);
}

// ------------------------------------------------------------------ UpSampling1D / 3D (Keras 2/3)

namespace {

// A tf.keras 2.15 Sequential stream: InputLayer x of `shape`, one `layer`, expected y.
json keras2_sequential(const json& layer, const Tensor& x, const std::vector<float>& y, const Shape& y_shape) {
  json in_shape = json::array({nullptr});
  for (size_t i = 1; i < x.shape().size(); ++i) in_shape.push_back(x.shape()[i]);
  auto tensor = [](const Shape& shape, const std::vector<float>& v) { return json{{"dtype", "f32"}, {"shape", shape}, {"data", v}}; };
  return {{"format", "planetbridge.stream"}, {"version", 1}, {"planet", "tensorflow"}, {"planet_version", "2.15.0"}, {"engine", "keras"},
          {"model_id", "upsampling"},
          {"model",
           {{"format", "keras"},
            {"topology",
             {{"class_name", "Sequential"},
              {"config",
               {{"name", "sequential"},
                {"layers", {{{"class_name", "InputLayer"},
                             {"config", {{"batch_input_shape", in_shape}, {"dtype", "float32"}, {"sparse", false}, {"ragged", false}, {"name", "x"}}}},
                            layer}}}},
              {"keras_version", "2.15.0"},
              {"backend", "tensorflow"}}}}},
          {"tensors", {{"x", tensor(x.shape(), pbtest::values(x))}, {"y", tensor(y_shape, y)}}},
          {"inputs", {"x"}},
          {"expected", {"y"}}};
}

Tensor counting(const Shape& shape) {
  Tensor t(pb::DType::f32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(i) * 0.5f - 3.f;
  return t;
}

}  // namespace

TEST_CASE("tensorflow attention: Keras UpSampling1D and UpSampling3D repeat each step", "[tensorflow][attention]") {
  // UpSampling1D(size 3) on [2, 4, 3]: step t of the output is step t / 3 of the input.
  const Tensor x1 = counting({2, 4, 3});
  std::vector<float> y1;
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t t = 0; t < 12; ++t)
      for (int64_t c = 0; c < 3; ++c) y1.push_back(x1.data<float>()[(n * 4 + t / 3) * 3 + c]);
  const json up1 = {{"class_name", "UpSampling1D"}, {"config", {{"name", "up"}, {"trainable", true}, {"dtype", "float32"}, {"size", 3}}}};
  const json d1 = keras2_sequential(up1, x1, y1, {2, 12, 3});
  const pb::Stream s1 = to_stream(d1);
  const Graph g1 = tensorflow().decode(s1);
  CHECK(node(g1, "up@NCW").op == "Resize");
  check_close(run(s1, g1)[0], s1.tensors.at("y"), 0, 0);
  pbtest::check_passes(pbtest::ladder(s1, tensorflow()), s1);

  // UpSampling3D(size [2, 1, 3]) on [1, 2, 2, 3, 2].
  const Tensor x3 = counting({1, 2, 2, 3, 2});
  std::vector<float> y3;
  for (int64_t d = 0; d < 4; ++d)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t w = 0; w < 9; ++w)
        for (int64_t c = 0; c < 2; ++c) y3.push_back(x3.data<float>()[(((d / 2) * 2 + h) * 3 + w / 3) * 2 + c]);
  const json up3 = {{"class_name", "UpSampling3D"},
                    {"config", {{"name", "up"}, {"trainable", true}, {"dtype", "float32"}, {"size", {2, 1, 3}}, {"data_format", "channels_last"}}}};
  const pb::Stream s3 = to_stream(keras2_sequential(up3, x3, y3, {1, 4, 2, 9, 2}));
  check_close(run(s3, tensorflow().decode(s3))[0], s3.tensors.at("y"), 0, 0);
  pbtest::check_passes(pbtest::ladder(s3, tensorflow()), s3);

  // Refusals: UpSampling1D has no interpolation (nearest only) nor data_format; channels_first.
  json bad = d1;
  bad["model"]["topology"]["config"]["layers"][1]["config"]["interpolation"] = "bilinear";
  CHECK_THROWS_MATCHES(decode(bad), pb::Error,
                       ErrorAt("model.topology.config.layers[1].config.interpolation", "attribute not understood for UpSampling1D"));
  bad = keras2_sequential(up3, x3, y3, {1, 4, 2, 9, 2});
  bad["model"]["topology"]["config"]["layers"][1]["config"]["data_format"] = "channels_first";
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.topology.config.layers[1].config.data_format", "is not supported (only channels_last)"));
  bad = d1;
  bad["model"]["topology"]["config"]["layers"][1]["config"]["size"] = 0;
  CHECK_THROWS_MATCHES(decode(bad), pb::Error, ErrorAt("model.topology.config.layers[1].config.size", "expected positive sizes"));
}

TEST_CASE("tensorflow attention: source types", "[tensorflow][attention]") {
  const std::vector<std::string> types = tensorflow().source_types();
  for (const char* t : {"MultiHeadAttention", "UpSampling1D", "UpSampling3D"}) CHECK(std::find(types.begin(), types.end(), t) != types.end());
}
