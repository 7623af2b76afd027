// Keras MultiHeadAttention (Keras 2 and 3; tfjs 4.22 has none, so the capture composes it from
// tfjs ops and serialises it as Keras does: capture/attention.js), translated whole into IR ops
// (docs/ir.md "MatMul and attention"). Keras's facts, each converted here explicitly:
// - called mha(query, value, key=value) on [N, T, features] (attention_axes None: attention over
//   axis 1); Keras 2 writes value and key as call keywords, Keras 3 and tfjs as they were passed;
// - query, key and value are EinsumDense "abc,cde->abde": kernel [features, num_heads, dim]
//   (key_dim; value: value_dim), bias [num_heads, dim], so head h is columns h·dim .. (h+1)·dim
//   of the kernel seen as [features, num_heads·dim]; attention_output is "abcd,cde->abe": kernel
//   [num_heads, value_dim, out] (out: output_shape, else the query's features), bias [out];
// - the query is scaled by 1/√key_dim, scores = q·kᵀ, use_causal_mask lets query i see keys
//   j ≤ i (Keras adds -1e9 elsewhere; here -inf: after the softmax both are exactly 0), softmax
//   over the keys, ·v, the heads merged by the output projection; dropout acts in training only;
// - the call argument attention_mask [N, Tq or 1, Tk] (non-zero: attend) is combined with the
//   causal mask and Keras's softmax adds (1 - mask)·(-1e9) to the scores; Keras 2 / 3 pass it as a
//   tensor keyword, the tfjs capture as the fourth input with attention_mask: true (decoder.cpp
//   makes the tensor the last input either way).
#include <cmath>
#include <limits>

#include "../layer.h"

namespace pb::tensorflow {

namespace {

int64_t positive(const JsonRef& v) {
  if (!v.is_number() || v.i64() < 1) v.fail("expected a positive integer, got " + v.raw().dump());
  return v.i64();
}

// A call argument that is only supported at its default (null / false).
void refuse_call_arg(const Layer& L, const std::string& key, const std::string& why) {
  if (auto a = L.call_arg(key); a && !(a->raw().is_boolean() && !a->boolean())) a->fail(why);
}

// query, key or value [N, T, features] -> [N, heads, T, dim]: a Dense with the kernel [features,
// heads, dim] as the IR's [heads·dim, features], split into heads. Steps "<role>", "<role>_split"
// and `tap` (q, k or v: the heads, named as the capture's tap "<layer>/<tap>").
std::string project(const Layer& L, const std::string& role, const std::string& tap, const std::string& x, int64_t features, int64_t heads,
                    int64_t dim, const std::string& dim_name, bool bias) {
  std::vector<std::string> in = {x, L.derived(role + "/kernel", {features, heads, dim}, "[features, num_heads, " + dim_name + "]", "T",
                                              [&](const Tensor& k) { return permuted(k.reshaped({features, heads * dim}), {1, 0}); })};
  if (bias)
    in.push_back(L.derived(role + "/bias", {heads, dim}, "[num_heads, " + dim_name + "]", "flat",
                           [&](const Tensor& b) { return b.reshaped({heads * dim}); }));
  const std::string p = L.emit_step(role, "Dense", in);
  const std::string split = L.emit_step(role + "_split", "Reshape", {p}, attrs_of({{"shape", Ints{0, 0, heads, dim}}}));
  return L.emit_step(tap, "Transpose", {split}, attrs_of({{"perm", Ints{0, 2, 1, 3}}}));
}

void translate_mha(const Layer& L) {
  const JsonRef c = L.config();
  // attention_mask: a tensor (Keras 2 / 3: the call's last input), or the tfjs capture's `true`
  // (its fourth input [query, value, key, attention_mask]); false / absent: none.
  bool masked = false;
  if (auto a = L.call_arg("attention_mask")) {
    if (!a->raw().is_boolean()) {
      masked = true;
    } else if (a->boolean()) {
      if (L.arity() != 4)
        a->fail("attention_mask true (the tfjs form) needs the call's inputs [query, value, key, attention_mask], got " + std::to_string(L.arity()) +
                (L.arity() == 1 ? " input" : " inputs"));
      masked = true;
    }
  }
  const size_t arity = L.arity() - (masked ? 1 : 0);  // query, value (, key)
  if (arity < 2 || arity > 3)
    L.fail("MultiHeadAttention takes query, value and optionally key; \"" + L.name() + "\" is called on " + std::to_string(arity) +
           (arity == 1 ? " tensor" : " tensors"));
  const char* names[] = {"query", "value", "key"};
  for (size_t i = 0; i < arity; ++i)
    if (L.shape(i).size() != 3 || !is_float(L.type(i).dtype))
      L.fail(std::string("MultiHeadAttention \"") + L.name() + "\" needs a float " + names[i] + " [batch, steps, features], got " +
             dtype_name(L.type(i).dtype) + " " + shape_str(L.shape(i)));
  const Shape& qs = L.shape(0);
  const Shape& vs = L.shape(1);
  const Shape& ks = L.shape(arity == 3 ? 2 : 1);
  if (ks[1] != vs[1]) L.fail("MultiHeadAttention \"" + L.name() + "\": key " + shape_str(ks) + " and value " + shape_str(vs) + " differ in length");

  const int64_t heads = positive(c["num_heads"]), key_dim = positive(c["key_dim"]);
  const int64_t value_dim = c.has("value_dim") ? positive(c["value_dim"]) : key_dim;
  int64_t out = qs[2];
  if (auto o = c.find("output_shape")) {
    const bool one = o->is_number() || (o->is_array() && o->size() == 1);
    if (!one) o->fail("only an output_shape of one dim (the output's features) is supported, got " + o->raw().dump());
    out = positive(o->is_number() ? *o : (*o)[0]);
  }
  if (auto axes = c.find("attention_axes")) {
    const Ints a = axes->is_array() ? axes->ints() : Ints{axes->i64()};
    if (a.size() != 1 || (a[0] != 1 && a[0] != -2))
      axes->fail("only attention over the steps axis (null, 1) is supported, got " + axes->raw().dump());
  }
  // Keras 2.13+ writes the shapes it was built with: they must be these inputs' (batch aside).
  const std::vector<std::pair<const char*, const Shape*>> built = {{"query_shape", &qs}, {"value_shape", &vs}, {"key_shape", &ks}};
  for (const auto& [key, shape] : built)
    if (auto s = c.find(key)) {
      auto dims = s->items();
      bool ok = dims.size() == shape->size();
      for (size_t i = 1; ok && i < dims.size(); ++i) ok = dims[i].is_null() || dims[i].i64() == (*shape)[i];
      if (!ok) s->fail(std::string(key) + " " + s->raw().dump() + " does not match the input " + shape_str(*shape));
    }

  for (const char* m : {"query_mask", "value_mask", "key_mask"}) refuse_call_arg(L, m, std::string(m) + " (a Keras mask) is not supported");
  refuse_call_arg(L, "return_attention_scores", "return_attention_scores true is not supported (the layer's output only)");
  bool causal = false;
  if (auto u = L.call_arg("use_causal_mask")) {
    if (!u->raw().is_boolean()) u->fail("expected true or false, got " + u->raw().dump());
    causal = u->boolean();
  }
  const bool bias = c.boolean("use_bias", true);

  const std::vector<std::string> xs = L.xs(Layout::ChannelsLast);
  const std::string q = project(L, "query", "q", xs[0], qs[2], heads, key_dim, "key_dim", bias);
  const std::string k = project(L, "key", "k", xs[arity == 3 ? 2 : 1], ks[2], heads, key_dim, "key_dim", bias);
  const std::string v = project(L, "value", "v", xs[1], vs[2], heads, value_dim, "value_dim", bias);
  // Steps named as the tfjs capture's taps "<layer>/<step>" (capture/attention.js): q, k, v (the
  // heads, unscaled), scores (scaled, before any mask), weights (the softmax), context (the heads
  // merged, [N, Tq, heads·value_dim]); the output projection is the layer's own value "<layer>".
  // Keras scales q before the product; here the product is scaled.
  std::string scores = L.emit_step("scores", "MatMul", {q, k}, attrs_of({{"transpose_b", int64_t(1)}, {"scale", 1 / std::sqrt(double(key_dim))}}));
  const int64_t tq = qs[1], tk = ks[1];
  if (masked) {
    // Keras's softmax adds (1 - mask)·(-1e9): 0 where the mask [N, Tq or 1, Tk] is non-zero,
    // -1e9 elsewhere (combined with the causal mask: both must allow). -1e9, not -inf, so a row
    // with every key masked is uniform over its keys as in Keras 2 and tfjs.
    const ir::TensorType& mt = L.type(L.arity() - 1);
    const Shape& ms = mt.shape;
    if (mt.dtype != DType::i32 && mt.dtype != DType::i64)
      L.fail("MultiHeadAttention \"" + L.name() + "\" needs an integer or boolean attention_mask (1: attend, 0: masked), got " + dtype_name(mt.dtype) +
             " " + shape_str(ms));
    if (ms.size() != 3 || ms[0] != qs[0] || (ms[1] != tq && ms[1] != 1) || ms[2] != tk)
      L.fail("MultiHeadAttention \"" + L.name() + "\" needs an attention_mask [batch, " + std::to_string(tq) + " or 1, " + std::to_string(tk) +
             "] for query " + shape_str(qs) + " and key " + shape_str(ks) + ", got " + shape_str(ms));
    Tensor zero(DType::f32, {1}), large(DType::f32, {1});
    zero.data<float>()[0] = 0.f;
    large.data<float>()[0] = -1e9f;
    const std::string z = L.constant("zero", zero), n = L.constant("masked_value", large);
    const std::string m4 = L.emit_step("mask_heads", "Reshape", {xs.back()}, attrs_of({{"shape", Ints{0, 1, ms[1], tk}}}));
    std::string adder = L.emit_step("mask_adder", "Where", {m4, z, n});
    if (causal) {
      Tensor seen(DType::f32, {tq, tk});
      for (int64_t i = 0; i < tq; ++i)
        for (int64_t j = 0; j < tk; ++j) seen.data<float>()[i * tk + j] = j <= i ? 1.f : 0.f;
      adder = L.emit_step("mask_causal", "Where", {L.constant("causal_seen", seen), adder, n});
    }
    scores = L.emit_step("masked", "Add", {scores, adder});
  } else if (causal) {
    Tensor mask(DType::f32, {tq, tk});
    for (int64_t i = 0; i < tq; ++i)
      for (int64_t j = 0; j < tk; ++j) mask.data<float>()[i * tk + j] = j <= i ? 0.f : -std::numeric_limits<float>::infinity();
    scores = L.emit_step("masked", "Add", {scores, L.constant("causal_mask", mask)});
  }
  const std::string weights = L.emit_step("weights", "Softmax", {scores}, attrs_of({{"axis", int64_t(-1)}}));
  const std::string context = L.emit_step("context_heads", "MatMul", {weights, v});
  const std::string merged = L.emit_step("merged", "Transpose", {context}, attrs_of({{"perm", Ints{0, 2, 1, 3}}}));
  const std::string flat = L.emit_step("context", "Reshape", {merged}, attrs_of({{"shape", Ints{0, 0, heads * value_dim}}}));
  std::vector<std::string> in = {flat, L.derived("attention_output/kernel", {heads, value_dim, out}, "[num_heads, value_dim, output]", "T",
                                                 [&](const Tensor& w) { return permuted(w.reshaped({heads * value_dim, out}), {1, 0}); })};
  if (bias) in.push_back(L.weight("attention_output/bias", {out}, "[output]"));
  L.emit(Layout::ChannelsLast, "Dense", in);
}

}  // namespace

// dropout acts in training only; seed (Keras 3) seeds it; flash_attention (Keras 3) picks an
// implementation of the same function; query/key/value_shape (Keras 2.13+) are checked.
KerasTranslator multi_head_attention() {
  return {{"num_heads", "key_dim", "value_dim", "dropout", "use_bias", "output_shape", "attention_axes", "seed", "flash_attention", "query_shape",
           "key_shape", "value_shape"},
          0,
          translate_mha};
}

}  // namespace pb::tensorflow
