// Keras Dense and Embedding.
#include "../layer.h"

namespace pb::tensorflow {

namespace {

// Dense: kernel [in, units] (Keras's layout), optional bias [units]; acts on the last axis.
void translate_dense(const Layer& L) {
  const JsonRef c = L.config();
  const int64_t units = c["units"].i64();
  refuse_adapters(L);
  const auto activation = c.find("activation");
  const Act act = activation ? keras_activation(L.model(), *activation) : Act{"identity", {}};
  // The IR's Dense weight is [units, in]: always a transposing copy, because that is Keras's
  // layout, never read from the shape (a square kernel looks the same both ways).
  std::vector<std::string> inputs = {
      L.x(Layout::ChannelsLast), L.derived("kernel", {-1, units}, "[in, units]", "T", [](const Tensor& k) { return permuted(k, {1, 0}); })};
  if (c.boolean("use_bias", true)) inputs.push_back(L.weight("bias", {units}, ""));
  if (act.softmax) {
    // Softmax is not an element-wise post-op: a separate node after the Dense.
    const std::string linear = L.emit_step("linear", "Dense", inputs);
    return L.emit(Layout::ChannelsLast, "Softmax", {linear}, attrs_of({{"axis", int64_t(-1)}, {"log", int64_t(act.log)}}));
  }
  ir::Attrs a = act.params;
  a.set("activation", act.function);
  L.emit(Layout::ChannelsLast, "Dense", inputs, std::move(a));
}

// Embedding: integer ids [N, ...] -> rows of embeddings [input_dim, output_dim].
void translate_embedding(const Layer& L) {
  const JsonRef c = L.config();
  refuse_adapters(L);
  // A mask would change what the layers after it compute (they skip masked steps).
  refuse_unless(c, "mask_zero", !c.boolean("mask_zero", false), "mask_zero true is not supported");
  refuse_unless(c, "sparse", !c.boolean("sparse", false), "sparse true (a SparseTensor output) is not supported");
  const DType ids = L.type().dtype;
  if (ids != DType::i32 && ids != DType::i64)
    L.fail("Embedding \"" + L.name() + "\" takes integer ids; its input is " + dtype_name(ids) + " (send ids as int32)");
  const int64_t vocab = c["input_dim"].i64(), dim = c["output_dim"].i64();
  L.emit(Layout::ChannelsLast, "Embedding", {L.x(Layout::ChannelsLast), L.weight("embeddings", {vocab, dim}, "[input_dim, output_dim]")});
}

}  // namespace

// lora_*, quantization_config: Keras 3, refused when set.
KerasTranslator dense() { return {{"units", "activation", "use_bias", "lora_rank", "lora_alpha", "quantization_config"}, 1, translate_dense}; }

// input_length (Keras 2) only declares the input's shape.
KerasTranslator embedding() {
  return {{"input_dim", "output_dim", "mask_zero", "input_length", "sparse", "lora_rank", "lora_alpha", "quantization_config"}, 1,
          translate_embedding};
}

}  // namespace pb::tensorflow
