// The PyTorch dialect's vocabulary: one line per module type (with the module attributes it
// understands: vars(module) as torch 1.13 fills it), per function and per Tensor method (with
// the keyword arguments it understands). Anything else in attrs or kwargs is refused by name.
// An attribute listed here either is read by the translator (and a value it cannot compute is
// refused there) or does not change inference (inplace, momentum, padding_idx, ...).
#include "fx_node.h"

namespace pb::pytorch {

namespace {

using Attrs = std::vector<std::string>;

const Attrs kInplace = {"inplace"};
const Attrs kConv = {"in_channels", "out_channels", "kernel_size", "stride",         "padding",
                     "dilation",    "transposed",   "output_padding", "groups",      "padding_mode"};
// nn.Upsample and its two subclasses: F.interpolate's arguments; name is the class's.
const Attrs kUpsample = {"name", "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor"};
// nn.InstanceNorm1d-3d: momentum only steers training's updates of running statistics.
const Attrs kInstanceNorm = {"num_features", "eps", "momentum", "affine", "track_running_stats"};
const Attrs kMaxPool = {"kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"};
const Attrs kAvgPool = {"kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"};
// momentum and track_running_stats=True only steer training's updates of the statistics.
const Attrs kBatchNorm = {"num_features", "eps", "momentum", "affine", "track_running_stats"};
// p only matters in training; a module in training mode is refused.
const Attrs kDropout = {"p", "inplace"};
// nn.RNN / LSTM / GRU (nn.RNNBase): mode names the cell torch runs; dropout acts in training only.
const Attrs kRecurrent = {"mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional", "proj_size"};

// nn.MultiheadAttention (vars as torch 1.13 fills them): bias_k / bias_v are null unless
// add_bias_kv (then parameters, refused); dropout acts in training only; _qkv_same_embed_dim is
// private (the parameters present say it).
const Attrs kMultiheadAttention = {"embed_dim", "kdim", "vdim", "num_heads", "dropout", "batch_first", "head_dim", "bias_k", "bias_v", "add_zero_attn"};
// activation: a function ({"function": name}) or, when a module, the child "activation".
const Attrs kEncoderLayer = {"norm_first", "activation_relu_or_gelu", "activation"};
// norm: null without a final norm (a LayerNorm is the child "norm"); enable_nested_tensor and
// mask_check steer torch's padding fast path, which the translation reproduces.
const Attrs kEncoder = {"num_layers", "norm", "enable_nested_tensor", "mask_check"};
// activation: as for the encoder layer (no activation_relu_or_gelu: no fused kernel).
const Attrs kDecoderLayer = {"norm_first", "activation"};
const Attrs kDecoder = {"num_layers", "norm"};
// The children say everything; these attributes only repeat the layers' facts.
const Attrs kTransformer = {"d_model", "nhead", "batch_first"};

FxTranslator module(Attrs attrs, Translate t) { return {std::move(attrs), 1, std::move(t)}; }
// A module called with up to `arity` positional arguments (inputs, masks, flags).
FxTranslator module_n(size_t arity, Attrs attrs, Translate t) { return {std::move(attrs), arity, std::move(t)}; }
// A recurrent module takes its input and the initial state hx.
FxTranslator recurrent(Attrs attrs, Translate t) { return {std::move(attrs), 2, std::move(t)}; }
Attrs plus(Attrs a, const Attrs& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

const FxTable& module_table() {
  static const FxTable t = {
      {"Linear", module({"in_features", "out_features"}, translate_linear)},
      {"ReLU", module(kInplace, activation("relu"))},
      {"ReLU6", module({"inplace", "min_val", "max_val"}, translate_relu6_module)},
      {"Tanh", module({}, activation("tanh"))},
      {"Sigmoid", module({}, activation("sigmoid"))},
      {"SiLU", module(kInplace, activation("silu"))},
      {"SELU", module(kInplace, activation("selu"))},
      {"Mish", module(kInplace, activation("mish"))},
      {"Hardswish", module(kInplace, activation("hardswish"))},
      {"Hardsigmoid", module(kInplace, translate_hardsigmoid)},
      {"GELU", module({"approximate"}, translate_gelu_module)},
      {"Hardtanh", module({"min_val", "max_val", "inplace"}, translate_hardtanh_module)},
      {"PReLU", module({"num_parameters"}, translate_prelu_module)},
      {"Softsign", module({}, translate_softsign)},
      {"Tanhshrink", module({}, translate_tanhshrink)},
      {"LeakyReLU", module({"negative_slope", "inplace"}, translate_leaky_relu_module)},
      {"ELU", module({"alpha", "inplace"}, translate_elu_module)},
      {"Softplus", module({"beta", "threshold"}, translate_softplus_module)},
      {"Softmax", module({"dim"}, softmax_module(false))},
      {"LogSoftmax", module({"dim"}, softmax_module(true))},
      {"Identity", module({}, translate_identity)},
      {"Dropout", module(kDropout, translate_dropout_module)},
      {"Dropout1d", module(kDropout, translate_dropout_module)},
      {"Dropout2d", module(kDropout, translate_dropout_module)},
      {"Dropout3d", module(kDropout, translate_dropout_module)},
      {"AlphaDropout", module(kDropout, translate_dropout_module)},
      {"Conv1d", module(kConv, conv(1))},
      {"Conv2d", module(kConv, conv(2))},
      {"Conv3d", module(kConv, conv(3))},
      {"ConvTranspose1d", module(kConv, conv_transpose(1))},
      {"ConvTranspose2d", module(kConv, conv_transpose(2))},
      {"ConvTranspose3d", module(kConv, conv_transpose(3))},
      {"Upsample", module(kUpsample, translate_upsample_module)},
      {"UpsamplingNearest2d", module(kUpsample, translate_upsample_module)},
      {"UpsamplingBilinear2d", module(kUpsample, translate_upsample_module)},
      {"PixelShuffle", module({"upscale_factor"}, translate_pixel_shuffle_module)},
      {"PixelUnshuffle", module({"downscale_factor"}, translate_pixel_unshuffle_module)},
      {"MaxPool1d", module(kMaxPool, max_pool(1))},
      {"MaxPool2d", module(kMaxPool, max_pool(2))},
      {"MaxPool3d", module(kMaxPool, max_pool(3))},
      {"AvgPool1d", module(kAvgPool, avg_pool(1))},
      {"AvgPool2d", module(kAvgPool, avg_pool(2))},
      {"AvgPool3d", module(kAvgPool, avg_pool(3))},
      {"AdaptiveAvgPool1d", module({"output_size"}, adaptive_pool("avg", 1))},
      {"AdaptiveAvgPool2d", module({"output_size"}, adaptive_pool("avg", 2))},
      {"AdaptiveAvgPool3d", module({"output_size"}, adaptive_pool("avg", 3))},
      {"AdaptiveMaxPool1d", module({"output_size", "return_indices"}, adaptive_pool("max", 1))},
      {"AdaptiveMaxPool2d", module({"output_size", "return_indices"}, adaptive_pool("max", 2))},
      {"AdaptiveMaxPool3d", module({"output_size", "return_indices"}, adaptive_pool("max", 3))},
      {"BatchNorm1d", module(kBatchNorm, translate_batchnorm)},
      {"BatchNorm2d", module(kBatchNorm, translate_batchnorm)},
      {"BatchNorm3d", module(kBatchNorm, translate_batchnorm)},
      {"GroupNorm", module({"num_groups", "num_channels", "eps", "affine"}, translate_groupnorm)},
      {"InstanceNorm1d", module(kInstanceNorm, instancenorm(1))},
      {"InstanceNorm2d", module(kInstanceNorm, instancenorm(2))},
      {"InstanceNorm3d", module(kInstanceNorm, instancenorm(3))},
      {"LayerNorm", module({"normalized_shape", "eps", "elementwise_affine"}, translate_layernorm)},
      {"RMSNorm", module({"normalized_shape", "eps", "elementwise_affine"}, translate_rmsnorm)},
      // padding_idx, scale_grad_by_freq and sparse only shape training; norm_type only max_norm.
      {"Embedding",
       module({"num_embeddings", "embedding_dim", "padding_idx", "max_norm", "norm_type", "scale_grad_by_freq", "sparse"},
              translate_embedding)},
      {"Flatten", module({"start_dim", "end_dim"}, translate_flatten_module)},
      {"RNN", recurrent(plus(kRecurrent, {"nonlinearity"}), translate_rnn)},
      {"LSTM", recurrent(kRecurrent, translate_lstm)},
      {"GRU", recurrent(kRecurrent, translate_gru)},
      // forward(query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights)
      {"MultiheadAttention", module_n(7, kMultiheadAttention, translate_multihead_attention)},
      {"TransformerEncoderLayer", module_n(3, kEncoderLayer, translate_encoder_layer)},  // (src, src_mask, src_key_padding_mask)
      {"TransformerEncoder", module_n(3, kEncoder, translate_encoder)},                  // (src, mask, src_key_padding_mask)
      // (tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask)
      {"TransformerDecoderLayer", module_n(6, kDecoderLayer, translate_decoder_layer)},
      {"TransformerDecoder", module_n(6, kDecoder, translate_decoder)},
      // (src, tgt, src_mask, tgt_mask, memory_mask, src_key_padding_mask, tgt_key_padding_mask,
      // memory_key_padding_mask)
      {"Transformer", module_n(8, kTransformer, translate_transformer)},
  };
  return t;
}

const std::vector<std::string>& module_keywords(const std::string& type) {
  static const std::map<std::string, std::vector<std::string>> t = {
      {"RNN", {"hx"}},
      {"LSTM", {"hx"}},
      {"GRU", {"hx"}},
      {"MultiheadAttention", {"query", "key", "value", "key_padding_mask", "need_weights", "attn_mask", "average_attn_weights"}},
      {"TransformerEncoderLayer", {"src", "src_mask", "src_key_padding_mask"}},
      {"TransformerEncoder", {"src", "mask", "src_key_padding_mask"}},
      {"TransformerDecoderLayer", {"tgt", "memory", "tgt_mask", "memory_mask", "tgt_key_padding_mask", "memory_key_padding_mask"}},
      {"TransformerDecoder", {"tgt", "memory", "tgt_mask", "memory_mask", "tgt_key_padding_mask", "memory_key_padding_mask"}},
      {"Transformer",
       {"src", "tgt", "src_mask", "tgt_mask", "memory_mask", "src_key_padding_mask", "tgt_key_padding_mask", "memory_key_padding_mask"}},
  };
  static const std::vector<std::string> none;
  auto it = t.find(type);
  return it == t.end() ? none : it->second;
}

namespace {

// A call's translator: the keyword arguments it understands (besides "input", argument 0).
FxTranslator call(Attrs kwargs, Translate t) { return {std::move(kwargs), 1, std::move(t)}; }

const Attrs kSoftmax = {"dim", "_stacklevel", "dtype"};  // dtype float32 only (op/elementwise.cpp)
const Attrs kReduce = {"dim", "keepdim", "dtype"};
const Attrs kMaxPoolCall = {"kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"};
const Attrs kAvgPoolCall = {"kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"};
const Attrs kBinary = {"other", "alpha", "rounding_mode"};
// torch.conv_transpose1d-3d (F.conv_transpose2d, ...).
const Attrs kConvTranspose = {"weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"};
const Attrs kPacked = {"lengths", "batch_first", "enforce_sorted", "sequences", "sequence", "padding_value", "total_length"};

}  // namespace

const FxTable& function_table() {
  static const FxTable t = {
      {"torch.relu", call({}, activation("relu"))},
      {"torch.nn.functional.relu", call(kInplace, activation("relu"))},
      {"torch.nn.functional.relu6", call(kInplace, activation("relu6"))},
      {"torch.tanh", call({}, activation("tanh"))},
      {"torch.nn.functional.tanh", call({}, activation("tanh"))},
      {"torch.sigmoid", call({}, activation("sigmoid"))},
      {"torch.nn.functional.sigmoid", call({}, activation("sigmoid"))},
      {"torch.nn.functional.silu", call(kInplace, activation("silu"))},
      {"torch.nn.functional.selu", call(kInplace, activation("selu"))},
      {"torch.nn.functional.mish", call(kInplace, activation("mish"))},
      {"torch.nn.functional.hardswish", call(kInplace, activation("hardswish"))},
      {"torch.nn.functional.hardsigmoid", call(kInplace, translate_hardsigmoid)},
      // F.gelu is a builtin: torch.fx names it torch._C._nn.gelu.
      {"torch.nn.functional.gelu", call({"approximate"}, translate_gelu_call)},
      {"torch._C._nn.gelu", call({"approximate"}, translate_gelu_call)},
      {"torch.nn.functional.leaky_relu", call({"negative_slope", "inplace"}, translate_leaky_relu_call)},
      {"torch.nn.functional.elu", call({"alpha", "inplace"}, translate_elu_call)},
      {"torch.softmax", call(kSoftmax, softmax_call(false, 2))},
      {"torch.nn.functional.softmax", call(kSoftmax, softmax_call(false, 3))},
      {"torch.log_softmax", call(kSoftmax, softmax_call(true, 2))},
      {"torch.nn.functional.log_softmax", call(kSoftmax, softmax_call(true, 3))},
      {"torch.flatten", call({"start_dim", "end_dim"}, translate_flatten_call)},
      {"torch.nn.functional.dropout", call({"p", "training", "inplace"}, translate_dropout_call)},
      {"torchvision.ops.stochastic_depth.stochastic_depth", call({"p", "mode", "training"}, translate_stochastic_depth)},
      // torchvision's Swin Transformer marks these torch.fx.wrap: one node each (op/swin.cpp).
      {"torchvision.models.swin_transformer._get_relative_position_bias",
       call({"relative_position_bias_table", "relative_position_index", "window_size"}, translate_relative_position_bias)},
      {"torchvision.models.swin_transformer._patch_merging_pad", call({"x"}, translate_patch_merging_pad)},
      {"torchvision.models.swin_transformer.shifted_window_attention",
       call({"qkv_weight", "proj_weight", "relative_position_bias", "window_size", "num_heads", "shift_size", "attention_dropout", "dropout",
             "qkv_bias", "proj_bias", "logit_scale"},
            translate_shifted_window_attention)},
      {"torch.nn.functional.layer_norm", call({"normalized_shape", "weight", "bias", "eps"}, translate_layer_norm_call)},
      {"torch.nn.functional.group_norm", call({"num_groups", "weight", "bias", "eps"}, translate_group_norm_call)},
      {"torch.nn.functional.instance_norm",
       call({"running_mean", "running_var", "weight", "bias", "use_input_stats", "momentum", "eps"}, translate_instance_norm_call)},
      {"torch.conv_transpose1d", call(kConvTranspose, conv_transpose_call(1))},
      {"torch.conv_transpose2d", call(kConvTranspose, conv_transpose_call(2))},
      {"torch.conv_transpose3d", call(kConvTranspose, conv_transpose_call(3))},
      // F.upsample, F.upsample_nearest and F.upsample_bilinear call it.
      {"torch.nn.functional.interpolate",
       call({"size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias"}, translate_interpolate)},
      {"torch.pixel_shuffle", call({"upscale_factor"}, translate_pixel_shuffle_call)},
      {"torch.pixel_unshuffle", call({"downscale_factor"}, translate_pixel_unshuffle_call)},
      {"torch.prelu", call({"weight"}, translate_prelu_call)},
      {"torch.nn.functional.hardtanh", call({"min_val", "max_val", "inplace"}, translate_hardtanh_call)},
      {"torch.nn.functional.softsign", call({}, translate_softsign)},
      {"torch.nn.functional.tanhshrink", call({}, translate_tanhshrink)},
      // F.max_pool* (boolean_dispatch keeps the Python names) and F.avg_pool* (builtins fx names by their C binding).
      {"torch.nn.functional.max_pool1d", call(kMaxPoolCall, max_pool_call(1))},
      {"torch.nn.functional.max_pool2d", call(kMaxPoolCall, max_pool_call(2))},
      {"torch.nn.functional.max_pool3d", call(kMaxPoolCall, max_pool_call(3))},
      {"torch.avg_pool1d", call(kAvgPoolCall, avg_pool_call(1))},
      {"torch._C._nn.avg_pool2d", call(kAvgPoolCall, avg_pool_call(2))},
      {"torch._C._nn.avg_pool3d", call(kAvgPoolCall, avg_pool_call(3))},
      {"torch.adaptive_avg_pool1d", call({"output_size"}, adaptive_pool_call("avg", 1))},
      {"torch.nn.functional.adaptive_avg_pool2d", call({"output_size"}, adaptive_pool_call("avg", 2))},
      {"torch.nn.functional.adaptive_avg_pool3d", call({"output_size"}, adaptive_pool_call("avg", 3))},
      {"torch.nn.functional.adaptive_max_pool1d", call({"output_size", "return_indices"}, adaptive_pool_call("max", 1))},
      {"torch.nn.functional.adaptive_max_pool2d", call({"output_size", "return_indices"}, adaptive_pool_call("max", 2))},
      {"torch.nn.functional.adaptive_max_pool3d", call({"output_size", "return_indices"}, adaptive_pool_call("max", 3))},
      {"torch.mean", call(kReduce, reduce("mean"))},
      {"torch.sum", call(kReduce, reduce("sum"))},
      {"torch.amax", call(kReduce, reduce("max"))},
      {"torch.amin", call(kReduce, reduce("min"))},
      {"_operator.add", call({}, arithmetic("add", "Add"))},
      {"torch.add", call(kBinary, binary("Add"))},
      {"_operator.sub", call({}, arithmetic("sub", "Sub"))},
      {"torch.sub", call(kBinary, binary("Sub"))},
      {"_operator.mul", call({}, arithmetic("mul", "Mul"))},
      {"torch.mul", call(kBinary, binary("Mul"))},
      {"_operator.truediv", call({}, arithmetic("truediv", "Div"))},
      // Python numbers from shapes (op/scalar.cpp): evaluated while decoding, no IR node.
      {"_operator.floordiv", call({}, arithmetic("floordiv", ""))},
      {"_operator.mod", call({}, arithmetic("mod", ""))},
      {"_operator.pow", call({}, arithmetic("pow", ""))},
      {"_operator.neg", call({}, arithmetic("neg", "Mul"))},
      {"_operator.eq", call({}, comparison("eq"))},
      {"_operator.ne", call({}, comparison("ne"))},
      {"_operator.lt", call({}, comparison("lt"))},
      {"_operator.le", call({}, comparison("le"))},
      {"_operator.gt", call({}, comparison("gt"))},
      {"_operator.ge", call({}, comparison("ge"))},
      {"torch.eq", call({"other"}, comparison("eq"))},
      {"torch.ne", call({"other"}, comparison("ne"))},
      {"torch.lt", call({"other"}, comparison("lt"))},
      {"torch.le", call({"other"}, comparison("le"))},
      {"torch.gt", call({"other"}, comparison("gt"))},
      {"torch.ge", call({"other"}, comparison("ge"))},
      {"getattr", call({}, translate_getattr)},
      {"math.sqrt", call({}, math_function("sqrt"))},
      {"math.floor", call({}, math_function("floor"))},
      {"math.ceil", call({}, math_function("ceil"))},
      {"torch._assert", call({"condition", "message"}, translate_assert)},
      // The capture records torch.arange on traced sizes as a leaf function.
      {"torch.arange", call({"start", "end", "step", "dtype", "device"}, translate_arange)},
      {"torch.masked_fill", call({"mask", "value"}, translate_masked_fill)},
      {"torch.where", call({"condition", "other"}, translate_where)},
      {"torch.chunk", call({"chunks", "dim"}, translate_chunk)},
      {"torch.functional.split", call({"tensor", "split_size_or_sections", "dim"}, translate_split)},  // torch.split
      {"torch.unsqueeze", call({"dim"}, translate_unsqueeze)},
      {"torch.squeeze", call({"dim"}, translate_squeeze)},
      {"torch.div", call(kBinary, binary("Div"))},
      {"torch.pow", call({"exponent"}, translate_pow)},
      {"torch.sqrt", call({}, activation("sqrt"))},
      {"torch.rsqrt", call({}, activation("rsqrt"))},
      {"torch.repeat_interleave", call({"repeats", "dim", "output_size"}, translate_repeat_interleave)},
      {"_operator.matmul", call({}, translate_matmul)},
      {"torch.matmul", call({"other"}, translate_matmul)},
      {"torch.bmm", call({"mat2"}, translate_matmul)},
      {"torch.cat", call({"tensors", "dim", "axis"}, translate_cat)},
      {"torch.stack", call({"tensors", "dim"}, translate_stack)},
      {"torch.transpose", call({"dim0", "dim1"}, translate_transpose)},
      {"torch.swapdims", call({"dim0", "dim1"}, translate_transpose)},
      {"torch.swapaxes", call({"axis0", "axis1"}, translate_swapaxes)},
      {"torch.permute", call({"dims"}, translate_permute)},
      {"torch.reshape", call({"shape"}, translate_reshape)},
      {"_operator.getitem", call({}, translate_getitem)},
      // Packed sequences: refused by name (the capture records them as leaf functions), whatever
      // keywords they are given.
      {"torch.nn.utils.rnn.pack_padded_sequence", call(kPacked, translate_packed_sequence)},
      {"torch.nn.utils.rnn.pack_sequence", call(kPacked, translate_packed_sequence)},
      {"torch.nn.utils.rnn.pad_packed_sequence", call(kPacked, translate_packed_sequence)},
  };
  return t;
}

// Methods share the functions' translators: argument 0 is `self`.
const FxTable& method_table() {
  static const FxTable t = {
      {"relu", call({}, activation("relu"))},
      {"tanh", call({}, activation("tanh"))},
      {"sigmoid", call({}, activation("sigmoid"))},
      {"softmax", call(kSoftmax, softmax_call(false, 2))},
      {"log_softmax", call(kSoftmax, softmax_call(true, 2))},
      {"flatten", call({"start_dim", "end_dim"}, translate_flatten_call)},
      {"add", call(kBinary, binary("Add"))},
      {"sub", call(kBinary, binary("Sub"))},
      {"mul", call(kBinary, binary("Mul"))},
      {"div", call(kBinary, binary("Div"))},
      {"pow", call({"exponent"}, translate_pow)},
      {"sqrt", call({}, activation("sqrt"))},
      {"rsqrt", call({}, activation("rsqrt"))},
      // Casts: the IR computes in float32 (others refused); non_blocking and copy change nothing here.
      {"float", call({"memory_format"}, translate_float)},
      {"type_as", call({"other"}, translate_type_as)},
      {"to", call({"dtype", "device", "non_blocking", "copy", "memory_format"}, translate_to)},
      {"repeat_interleave", call({"repeats", "dim", "output_size"}, translate_repeat_interleave)},
      {"matmul", call({"other"}, translate_matmul)},
      {"bmm", call({"mat2"}, translate_matmul)},
      {"transpose", call({"dim0", "dim1"}, translate_transpose)},
      {"swapdims", call({"dim0", "dim1"}, translate_transpose)},
      {"swapaxes", call({"axis0", "axis1"}, translate_swapaxes)},
      {"permute", call({"dims"}, translate_permute)},
      {"view", call({"shape"}, translate_reshape)},
      {"reshape", call({"shape"}, translate_reshape)},
      {"size", call({"dim"}, translate_size)},
      {"dim", call({}, translate_dim)},
      {"ndimension", call({}, translate_dim)},
      {"numel", call({}, translate_numel)},
      {"chunk", call({"chunks", "dim"}, translate_chunk)},
      {"split", call({"split_size", "dim"}, translate_split)},
      {"unsqueeze", call({"dim"}, translate_unsqueeze)},
      {"squeeze", call({"dim"}, translate_squeeze)},
      {"expand", call({"size"}, translate_expand)},
      {"expand_as", call({"other"}, translate_expand_as)},
      {"masked_fill", call({"mask", "value"}, translate_masked_fill)},
      {"eq", call({"other"}, comparison("eq"))},
      {"ne", call({"other"}, comparison("ne"))},
      {"lt", call({"other"}, comparison("lt"))},
      {"le", call({"other"}, comparison("le"))},
      {"gt", call({"other"}, comparison("gt"))},
      {"ge", call({"other"}, comparison("ge"))},
      {"contiguous", call({"memory_format"}, translate_identity)},
      {"mean", call(kReduce, reduce("mean"))},
      {"sum", call(kReduce, reduce("sum"))},
      {"amax", call(kReduce, reduce("max"))},
      {"amin", call(kReduce, reduce("min"))},  // IR values are always contiguous
  };
  return t;
}

}  // namespace pb::pytorch
