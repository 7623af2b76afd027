// flax.linen.Dense, DenseGeneral and Embed.
#include <algorithm>

#include "../module.h"

namespace pb::jax {

// Dense: kernel [in, features] (Flax's layout), optional bias [features]; contracts the last axis.
void translate_dense(const Module& m) {
  const JsonRef& j = m.json();
  const int64_t features = positive(j["features"]);
  check_float32(j);
  const Tensor& kernel = m.var("kernel");
  if (kernel.shape().size() != 2 || kernel.shape()[1] != features)
    m.fail_var_shape("kernel", "[in, features] with features = " + std::to_string(features) + " (Flax's layout)");
  // Flax's kernel is [in, out], the IR's Dense weight [out, in]: always a transposing copy,
  // because that is Flax's layout, never read from the shape (a square kernel fits both).
  std::vector<std::string> inputs = {m.last(), m.decoder().derived(m.var_name("kernel"), "T", permuted(kernel, {1, 0}))};
  if (auto b = m.optional_var(j.boolean("use_bias", true), "use_bias", "bias", {features}, "[features]")) inputs.push_back(*b);
  m.emit(Layout::ChannelsLast, "Dense", inputs);
}

// DenseGeneral(features: int or tuple, axis: int or tuple = -1): dot_general contracting x's
// `axis` (sorted, as Flax normalises them) with the kernel's leading dims; kernel
// [x.shape[a] for a in axis..., features...], bias [features...]; the output is x's other dims in
// order, then the features. In the IR: the contracted axes moved last (a Transpose, only when
// they are not already the trailing ones), Reshape{[0, ..., -1]}, Dense with the kernel
// flattened to [prod(features), prod(in)] (a transposing copy), Reshape to [0, ..., features...].
void translate_dense_general(const Module& m) {
  const JsonRef& j = m.json();
  check_float32(j);
  if (auto b = j.find("batch_dims"); b && !b->is_null() && !(b->is_array() && b->size() == 0))
    b->fail("batch_dims (a kernel per batch index) is not supported; only ()");
  const JsonRef fj = j["features"];
  Ints features;
  if (fj.is_array()) {
    if (fj.size() == 0) fj.fail("expected a positive int or a non-empty list of them");
    for (const JsonRef& e : fj.items()) features.push_back(positive(e));
  } else {
    features.push_back(positive(fj));
  }
  const Shape& xs = m.shape();
  const int64_t r = int64_t(xs.size());
  Ints axes = {-1};
  if (auto aj = j.find("axis")) axes = aj->is_array() ? aj->ints() : Ints{aj->i64()};
  const JsonRef apath = j.find("axis") ? j["axis"] : j;
  if (axes.empty()) apath.fail("expected at least one axis");
  for (int64_t& a : axes) {
    if (a < -r || a >= r) apath.fail("axis " + std::to_string(a) + " is out of range for an input of rank " + std::to_string(r));
    if (a < 0) a += r;
    if (a == 0) apath.fail("contracting the batch dim (axis 0) is not supported");
  }
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) apath.fail("repeated axes");
  Ints perm;
  for (int64_t d = 0; d < r; ++d)
    if (!std::binary_search(axes.begin(), axes.end(), d)) perm.push_back(d);
  const size_t kept = perm.size();
  perm.insert(perm.end(), axes.begin(), axes.end());

  Shape want;
  int64_t in = 1, out = 1;
  for (int64_t a : axes) {
    want.push_back(xs[size_t(a)]);
    in *= xs[size_t(a)];
  }
  for (int64_t f : features) {
    want.push_back(f);
    out *= f;
  }
  const Tensor& kernel = m.var("kernel");
  if (kernel.shape() != want)
    m.fail_var_shape("kernel", "[x.shape[axis]..., features...] = " + shape_str(want) + " (Flax's layout)");
  const Tensor flat = kernel.reshaped({in, out});  // the same bytes; then a transposing copy
  std::string x = m.last();
  bool moved = false;
  for (size_t i = 0; i < perm.size(); ++i) moved = moved || perm[i] != int64_t(i);
  if (moved) x = m.emit_step("moved", "Transpose", {x}, attrs_of({{"perm", perm}}));
  Ints merge(kept, 0);
  merge.push_back(-1);
  if (axes.size() > 1) x = m.emit_step("merged", "Reshape", {x}, attrs_of({{"shape", merge}}));
  std::vector<std::string> inputs = {x, m.decoder().derived(m.var_name("kernel"), "T", permuted(flat, {1, 0}))};
  if (j.boolean("use_bias", true)) {
    const Tensor* b = m.find_var("bias");
    if (!b) m.var("bias");  // the missing-param error
    if (b->shape() != Shape(features.begin(), features.end())) m.fail_var_shape("bias", "[features...] = " + shape_str(features));
    inputs.push_back(m.decoder().derived(m.var_name("bias"), "flat", b->reshaped({out})));
  } else if (m.find_var("bias")) {
    throw Error(json_path_member("tensors", m.var_name("bias")), "the module has use_bias = false but the stream has its bias");
  }
  if (features.size() == 1) return m.emit(Layout::ChannelsLast, "Dense", inputs);
  const std::string y = m.emit_step("dense", "Dense", inputs, {});
  Ints split(kept, 0);
  split.insert(split.end(), features.begin(), features.end());
  m.emit(Layout::ChannelsLast, "Reshape", {y}, attrs_of({{"shape", split}}));
}

// Embed: jnp.take(embedding, ids, axis=0); embedding [num_embeddings, features].
void translate_embed(const Module& m) {
  const JsonRef& j = m.json();
  check_float32(j);
  if (m.dtype() != DType::i32 && m.dtype() != DType::i64)
    j.fail(std::string("Embed needs integer ids (i32 or i64), got ") + dtype_name(m.dtype()));
  const int64_t v = positive(j["num_embeddings"]), d = positive(j["features"]);
  m.emit(Layout::ChannelsLast, "Embedding", {m.last(), m.var_weight("embedding", {v, d}, "[num_embeddings, features]")});
}

}  // namespace pb::jax
