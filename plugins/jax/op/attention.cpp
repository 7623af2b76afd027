// flax.linen.MultiHeadDotProductAttention and SelfAttention, make_causal_mask and
// make_attention_mask (flax/linen/attention.py), composed from the IR's Dense, MatMul, Where
// and Softmax as Flax computes them.
#include <cmath>
#include <limits>
#include <set>

#include "../module.h"

namespace pb::jax {

namespace {

// The call's array arguments by Flax's keyword: "arguments" names each input; absent, the
// inputs are positional (inputs_q, inputs_k, inputs_v).
std::map<std::string, size_t> call_arguments(const Module& m, bool self_attention) {
  const JsonRef& j = m.json();
  const std::set<std::string> allowed = self_attention ? std::set<std::string>{"inputs_q", "mask"}
                                                       : std::set<std::string>{"inputs_q", "inputs_k", "inputs_v", "inputs_kv", "mask"};
  std::vector<std::string> names;
  const std::optional<JsonRef> aj = j.find("arguments");
  if (aj) {
    for (const JsonRef& a : aj->items()) names.push_back(a.str());
    if (names.size() != m.arity()) aj->fail("names " + std::to_string(names.size()) + " arguments for " + std::to_string(m.arity()) + " inputs");
  } else {
    const std::vector<std::string> positional = {"inputs_q", "inputs_k", "inputs_v"};
    if (m.arity() > (self_attention ? 1 : 3))
      j.fail(std::to_string(m.arity()) + " inputs without \"arguments\": say which is the mask (and inputs_kv)");
    names.assign(positional.begin(), positional.begin() + long(m.arity()));
  }
  std::map<std::string, size_t> out;
  for (size_t i = 0; i < names.size(); ++i) {
    const JsonRef where = aj ? (*aj)[i] : j;
    if (!allowed.count(names[i]))
      where.fail("unknown argument \"" + names[i] + "\" of " + (self_attention ? "SelfAttention" : "MultiHeadDotProductAttention") +
                 " (known: " + joined(std::vector<std::string>(allowed.begin(), allowed.end())) + ")");
    if (!out.emplace(names[i], i).second) where.fail("argument \"" + names[i] + "\" given twice");
  }
  const JsonRef where = aj ? *aj : j;
  if (!out.count("inputs_q")) where.fail("inputs_q is required");
  if (out.count("inputs_kv") && (out.count("inputs_k") || out.count("inputs_v")))
    where.fail("inputs_kv and inputs_k / inputs_v are exclusive (as Flax)");
  if (out.count("inputs_v") && !out.count("inputs_k")) where.fail("inputs_v without inputs_k (Flax refuses it)");
  return out;
}

// DenseGeneral(features=(heads, head_dim), axis=-1) named `which` of the module: Dense to
// [N, L, heads·head_dim], reshaped to Flax's [N, L, heads, head_dim] ("<name>/<tap>": q, k or
// v, the capture's tap), then heads first [N, heads, L, head_dim] for the products.
std::string project(const Module& m, const std::string& which, const std::string& tap, size_t input, int64_t heads, int64_t head_dim,
                    bool bias) {
  Decoder& d = m.decoder();
  const int64_t in = m.shape(input).back(), f = heads * head_dim;
  const std::string kernel = which + "/kernel";
  const Tensor& k = m.var(kernel);
  if (k.shape() != Shape{in, heads, head_dim})
    m.fail_var_shape(kernel, "[in_features, num_heads, head_dim] = " + shape_str(Shape{in, heads, head_dim}) + " (DenseGeneral's layout)");
  std::vector<std::string> inputs = {m.last(input), d.derived(m.var_name(kernel), "T", permuted(k.reshaped({in, f}), {1, 0}))};
  const std::string leaf = which + "/bias";
  if (bias) {
    const Tensor& b = m.var(leaf);
    if (b.shape() != Shape{heads, head_dim}) m.fail_var_shape(leaf, "[num_heads, head_dim] = " + shape_str(Shape{heads, head_dim}));
    inputs.push_back(d.derived(m.var_name(leaf), "flat", b.reshaped({f})));
  } else if (m.find_var(leaf)) {
    throw Error(json_path_member("tensors", m.var_name(leaf)), "the module has use_bias = false but the stream has its " + leaf);
  }
  const std::string dense = m.emit_step(which + "/dense", "Dense", inputs, {});
  const std::string split = m.emit_step(tap, "Reshape", {dense}, attrs_of({{"shape", Ints{0, 0, heads, head_dim}}}));
  return m.emit_step(which + "/heads", "Transpose", {split}, attrs_of({{"perm", Ints{0, 2, 1, 3}}}));
}

void translate_attention(const Module& m, bool self_attention) {
  const JsonRef& j = m.json();
  check_float32(j);
  if (j.boolean("decode", false)) j["decode"].fail("the autoregressive cache (decode = true) is not supported");
  if (j.boolean("normalize_qk", false)) j["normalize_qk"].fail("normalize_qk (LayerNorm on query and key) is not supported");
  if (auto a = j.find("attention_fn"); a && a->str() != "dot_product_attention")
    a->fail("only flax.linen.dot_product_attention (the default) is supported, got \"" + a->str() + "\"");
  if (!j.boolean("deterministic", false) && j.f64("dropout_rate", 0.0) != 0.0)
    j.fail("attention dropout that is not deterministic is random; capture with deterministic = true");

  const std::map<std::string, size_t> args = call_arguments(m, self_attention);
  const size_t q = args.at("inputs_q");
  const size_t k = args.count("inputs_kv") ? args.at("inputs_kv") : args.count("inputs_k") ? args.at("inputs_k") : q;
  const size_t v = args.count("inputs_kv") ? args.at("inputs_kv") : args.count("inputs_v") ? args.at("inputs_v") : k;
  for (size_t i : {q, k, v}) {
    if (m.dtype(i) != DType::f32) j.fail(std::string("attention inputs must be f32, got ") + dtype_name(m.dtype(i)));
    if (m.shape(i).size() != 3)
      j.fail("attention over " + shape_str(m.shape(i)) + " is not supported: inputs are [batch, length, features] (one batch dim)");
  }
  const Shape &qs = m.shape(q), &ks = m.shape(k), &vs = m.shape(v);
  if (ks[0] != qs[0] || vs[0] != qs[0] || ks[1] != vs[1])
    j.fail("query " + shape_str(qs) + ", key " + shape_str(ks) + " and value " + shape_str(vs) + " need one batch and equal key and value lengths");

  const int64_t heads = positive(j["num_heads"]);
  const int64_t qkv = j.has("qkv_features") ? positive(j["qkv_features"]) : qs[2];
  const int64_t features = j.has("out_features") ? positive(j["out_features"]) : qs[2];
  if (qkv % heads) (j.has("qkv_features") ? j["qkv_features"] : j["num_heads"]).fail(
      "qkv_features " + std::to_string(qkv) + " is not divisible by num_heads " + std::to_string(heads));
  const int64_t head_dim = qkv / heads;
  const bool bias = j.boolean("use_bias", true);

  // IR values named as the capture's taps "<name>/<step>" (capture/flax.js attentionSteps): q, k,
  // v (Flax's DenseGeneral outputs), scores (scaled, after the mask), weights (the softmax),
  // context (the einsum with the values, [N, L, heads, head_dim]); the out projection is the
  // module's own value.
  const std::string query = project(m, "query", "q", q, heads, head_dim, bias);
  const std::string key = project(m, "key", "k", k, heads, head_dim, bias);
  const std::string value = project(m, "value", "v", v, heads, head_dim, bias);
  // Flax divides the query by sqrt(head_dim) before the product; here the product is scaled.
  std::string scores = m.emit_step(args.count("mask") ? "product" : "scores", "MatMul", {query, key}, attrs_of({{"transpose_b", int64_t(1)}, {"scale", 1.0 / std::sqrt(double(head_dim))}}));
  if (args.count("mask")) {
    const size_t mi = args.at("mask");
    const Shape& ms = m.shape(mi);
    const Shape full = {qs[0], heads, qs[1], ks[1]};
    bool fits = ms.size() == 4;
    for (size_t i = 0; fits && i < 4; ++i) fits = ms[i] == 1 || ms[i] == full[i];
    if (!fits)
      j.fail("the mask " + shape_str(ms) + " does not broadcast to [batch, num_heads, q_length, kv_length] = " + shape_str(full));
    // jnp.where(mask, attn_weights, finfo(float32).min): a masked key gets exp(min - max) = 0.
    Tensor big_neg = filled({1}, double(std::numeric_limits<float>::lowest()));
    scores = m.emit_step("scores", "Where", {m.last(mi), scores, m.constant("big_neg", std::move(big_neg))}, {});
  }
  const std::string weights = m.emit_step("weights", "Softmax", {scores}, attrs_of({{"axis", int64_t(-1)}}));
  const std::string context = m.emit_step("context_heads", "MatMul", {weights, value}, {});
  // einsum('...hqk,...khd->...qhd'): [N, L, heads, head_dim], merged for out's DenseGeneral(axis=(-2, -1)).
  const std::string x = m.emit_step("context", "Transpose", {context}, attrs_of({{"perm", Ints{0, 2, 1, 3}}}));
  const std::string merged = m.emit_step("out/merged", "Reshape", {x}, attrs_of({{"shape", Ints{0, 0, qkv}}}));
  const Tensor& ok = m.var("out/kernel");
  if (ok.shape() != Shape{heads, head_dim, features})
    m.fail_var_shape("out/kernel", "[num_heads, head_dim, out_features] = " + shape_str(Shape{heads, head_dim, features}) + " (DenseGeneral's layout)");
  std::vector<std::string> inputs = {merged, m.decoder().derived(m.var_name("out/kernel"), "T", permuted(ok.reshaped({qkv, features}), {1, 0}))};
  if (auto b = m.optional_var(bias, "use_bias", "out/bias", {features}, "[out_features]")) inputs.push_back(*b);
  m.emit(Layout::ChannelsLast, "Dense", inputs);
}

void check_mask_options(const JsonRef& j) {
  if (auto e = j.find("extra_batch_dims"); e && e->i64() != 0) e->fail("only extra_batch_dims = 0 is supported");
  if (auto d = j.find("dtype"); d && d->str() != "float32") d->fail("only dtype float32 (Flax's default) is supported, got \"" + d->str() + "\"");
}

// Where(c, 1, 0): Compare's i32 truth as the float32 mask Flax returns (astype(dtype)).
std::string as_float(const Module& m, const std::string& c) {
  return m.emit_step("float", "Where", {c, m.constant("one", filled({1}, 1.0)), m.constant("zero", filled({1}, 0.0))}, {});
}

}  // namespace

void translate_multi_head_attention(const Module& m) { translate_attention(m, false); }
void translate_self_attention(const Module& m) { translate_attention(m, true); }

// make_causal_mask(x): [batch, 1, L, L], 1 where key j <= query i, of x [batch, L] (any dtype:
// only its shape counts). The values depend on L alone: a constant [1, 1, L, L] expanded to
// the open batch.
void translate_causal_mask(const Module& m) {
  check_mask_options(m.json());
  const Shape& s = m.shape();
  if (s.size() != 2) m.json().fail("make_causal_mask of " + shape_str(s) + " is not supported: pass x [batch, length]");
  const int64_t l = s[1];
  Tensor c(DType::f32, {1, 1, l, l});
  for (int64_t i = 0; i < l; ++i)
    for (int64_t k = 0; k < l; ++k) c.data<float>()[i * l + k] = k <= i ? 1.f : 0.f;
  // Expand's `like` has the output's rank: x viewed as [N, 1, 1, L] lends its batch.
  const std::string like = m.emit_step("batch", "Reshape", {m.last()}, attrs_of({{"shape", Ints{0, 1, 1, l}}}));
  m.emit(Layout::ChannelsLast, "Expand", {m.constant("causal", std::move(c)), like}, attrs_of({{"shape", Ints{0, -1, -1, -1}}}));
}

// make_attention_mask(query_input [batch, L], key_input [batch, S], pairwise_fn):
// pairwise_fn(q[..., :, None], k[..., None, :]) with a head axis inserted, as float32.
void translate_attention_mask(const Module& m) {
  const JsonRef& j = m.json();
  check_mask_options(j);
  const Shape &qs = m.shape(0), &ks = m.shape(1);
  if (qs.size() != 2 || ks.size() != 2 || qs[0] != ks[0])
    j.fail("make_attention_mask of " + shape_str(qs) + " and " + shape_str(ks) + " is not supported: pass query and key inputs [batch, length]");
  static const std::map<std::string, std::string> compare = {{"greater_equal", "ge"}, {"greater", "gt"}, {"less_equal", "le"},
                                                             {"less", "lt"},          {"equal", "eq"},   {"not_equal", "ne"}};
  const std::string fn = j.str("pairwise_fn", "multiply");
  const std::string qc = m.emit_step("query", "Reshape", {m.last(0)}, attrs_of({{"shape", Ints{0, qs[1], 1}}}));
  const std::string kc = m.emit_step("key", "Reshape", {m.last(1)}, attrs_of({{"shape", Ints{0, 1, ks[1]}}}));
  std::string pair;
  if (fn == "multiply") {
    if (m.dtype(0) != DType::f32 || m.dtype(1) != DType::f32)
      (j.has("pairwise_fn") ? j["pairwise_fn"] : j).fail("multiply of integer inputs is not supported: pass float32 (1.0 / 0.0) inputs");
    // The IR's Mul broadcasts only its second operand: the query side expanded first.
    const std::string wide = m.emit_step("query_wide", "Expand", {qc, qc}, attrs_of({{"shape", Ints{0, -1, ks[1]}}}));
    pair = m.emit_step("pairs", "Mul", {wide, kc}, {});
  } else if (auto it = compare.find(fn); it != compare.end()) {
    pair = as_float(m, m.emit_step("pairs", "Compare", {qc, kc}, attrs_of({{"mode", it->second}})));
  } else {
    j["pairwise_fn"].fail("unsupported pairwise_fn \"" + fn + "\" (known: multiply, greater_equal, greater, less_equal, less, equal, not_equal)");
  }
  m.emit(Layout::ChannelsLast, "Reshape", {pair}, attrs_of({{"shape", Ints{0, 1, qs[1], ks[1]}}}));
}

}  // namespace pb::jax
