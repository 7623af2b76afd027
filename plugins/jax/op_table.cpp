// The JAX dialect's vocabulary: one line per Flax module type, jnp operator and function.
#include "module.h"

namespace pb::jax {

const JaxTable& module_table() {
  static const JaxTable t = {
      {"Dense", {{"features", "use_bias", "dtype", "param_dtype", "precision"}, 1, translate_dense}},
      {"DenseGeneral", {{"features", "axis", "batch_dims", "use_bias", "dtype", "param_dtype", "precision"}, 1, translate_dense_general}},
      {"Conv",
       {{"features", "kernel_size", "strides", "padding", "input_dilation", "kernel_dilation", "feature_group_count", "use_bias", "dtype",
         "param_dtype", "precision"},
        1, translate_conv}},
      // lax.conv_transpose (no feature_group_count in Flax's ConvTranspose; mask is refused as not understood).
      {"ConvTranspose",
       {{"features", "kernel_size", "strides", "padding", "kernel_dilation", "use_bias", "transpose_kernel", "dtype", "param_dtype", "precision"}, 1,
        translate_conv_transpose}},
      // momentum and use_fast_variance only shape training: informational at inference.
      {"BatchNorm",
       {{"use_running_average", "axis", "momentum", "epsilon", "use_bias", "use_scale", "axis_name", "use_fast_variance", "dtype",
         "param_dtype"},
        1, translate_batchnorm}},
      {"LayerNorm",
       {{"epsilon", "use_bias", "use_scale", "reduction_axes", "feature_axes", "use_fast_variance", "dtype", "param_dtype"}, 1,
        [](const Module& m) { translate_norm(m, false); }}},
      {"GroupNorm",
       {{"num_groups", "group_size", "epsilon", "use_bias", "use_scale", "reduction_axes", "axis_name", "axis_index_groups", "use_fast_variance",
         "dtype", "param_dtype"},
        1, translate_groupnorm}},
      {"RMSNorm",
       {{"epsilon", "use_scale", "reduction_axes", "feature_axes", "dtype", "param_dtype"}, 1,
        [](const Module& m) { translate_norm(m, true); }}},
      {"Embed", {{"num_embeddings", "features", "dtype", "param_dtype"}, 1, translate_embed}},
      {"Einsum", {{"shape", "einsum_str", "use_bias", "dtype", "param_dtype", "precision"}, 1, translate_einsum_module}},
      // The call's arrays in "inputs", each named by its keyword in "arguments" (inputs_q,
      // inputs_k, inputs_v, inputs_kv, mask); broadcast_dropout only shapes training.
      {"MultiHeadDotProductAttention",
       {{"num_heads", "qkv_features", "out_features", "use_bias", "dropout_rate", "deterministic", "broadcast_dropout", "decode",
         "normalize_qk", "attention_fn", "arguments", "dtype", "param_dtype", "precision"},
        0, translate_multi_head_attention}},
      {"SelfAttention",
       {{"num_heads", "qkv_features", "out_features", "use_bias", "dropout_rate", "deterministic", "broadcast_dropout", "decode",
         "normalize_qk", "attention_fn", "arguments", "dtype", "param_dtype", "precision"},
        0, translate_self_attention}},
      // flax.linen.make_causal_mask(x) / make_attention_mask(query_input, key_input, pairwise_fn).
      {"make_causal_mask", {{"extra_batch_dims", "dtype"}, 1, translate_causal_mask}},
      {"make_attention_mask", {{"pairwise_fn", "extra_batch_dims", "dtype"}, 2, translate_attention_mask}},
      {"Dropout", {{"rate", "deterministic", "broadcast_dims"}, 1, translate_dropout}},
      // Recurrent scans: inputs the sequence, then optionally the initial carry's leaves (arity 0;
      // without "inputs" they read the previous value, as a one-input module).
      {"RNN", {{"cell", "time_major", "return_carry", "reverse", "keep_order", "unroll"}, 0, translate_rnn}},
      {"Bidirectional", {{"forward_rnn", "backward_rnn", "merge_fn", "time_major", "return_carry"}, 0, translate_bidirectional}},
      // jnp operators between module outputs (residual connections): numpy broadcasting, as the IR.
      {"add", binary("Add")},
      {"subtract", binary("Sub")},
      {"multiply", binary("Mul")},
      {"concatenate", {{"axis"}, 0, translate_concatenate}},
      {"reshape", {{"shape"}, 1, translate_reshape}},
      {"einsum", {{"subscripts", "precision"}, 2, translate_einsum}},
      {"matmul", {{"precision"}, 2, translate_matmul}},
      {"mean", global_reduce("avg")},
      {"max", global_reduce("max")},
      // {"type": "fn", "fn": "nn.relu"}: a function of the table below.
      {"fn", {}},
  };
  return t;
}

const JaxTable& function_table() {
  static const JaxTable t = {
      {"nn.relu", activation("relu")},
      {"nn.relu6", activation("relu6")},
      {"nn.tanh", activation("tanh")},
      {"nn.sigmoid", activation("sigmoid")},
      {"nn.silu", activation("silu")},
      {"nn.swish", activation("silu")},  // jax.nn.swish is jax.nn.silu
      {"nn.selu", activation("selu")},
      {"nn.softplus", activation("softplus")},
      {"nn.hard_swish", activation("hardswish")},
      {"nn.hard_silu", activation("hardswish")},
      // relu6(x + 3) / 6 = clip(x/6 + 1/2, 0, 1)
      {"nn.hard_sigmoid", activation("hard_sigmoid", {}, [](const JsonRef&) { return attrs_of({{"alpha", 1.0 / 6.0}, {"beta", 0.5}}); })},
      // jax.nn.gelu defaults to approximate=True, the tanh form (unlike torch's GELU).
      {"nn.gelu", activation("gelu", {"approximate"},
                             [](const JsonRef& j) {
                               return attrs_of({{"function", std::string(j.boolean("approximate", true) ? "gelu_tanh" : "gelu_erf")}});
                             })},
      {"nn.leaky_relu",
       activation("leaky_relu", {"negative_slope"}, [](const JsonRef& j) { return attrs_of({{"alpha", j.f64("negative_slope", 0.01)}}); })},
      {"nn.elu", activation("elu", {"alpha"}, [](const JsonRef& j) { return attrs_of({{"alpha", j.f64("alpha", 1.0)}}); })},
      {"nn.softmax", softmax(false)},
      {"nn.log_softmax", softmax(true)},
      {"nn.max_pool", pool("max")},
      {"nn.avg_pool", pool("avg")},
  };
  return t;
}

}  // namespace pb::jax
