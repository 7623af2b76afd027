// flax.linen.Dense and Embed.
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
