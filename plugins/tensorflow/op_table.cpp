// The TensorFlow dialect's vocabulary: one line per Keras layer class and one per activation
// name, as tfjs and Python Keras 2/3 serialise them. Each translator (op/*.cpp) carries the config
// keys it understands; any other key, unless informational, is refused.
#include "layer.h"

namespace pb::tensorflow {

const std::set<std::string>& informational_keys() {
  static const std::set<std::string> keys = [] {
    // The name, trainable, dtype (check_float32 refuses any but float32), declared input shapes
    // (checked against the stream's inputs when the layer is the model's first).
    std::set<std::string> k = {"name", "trainable", "dtype", "batch_input_shape", "batch_shape", "activity_regularizer",
                               "moving_mean_initializer", "moving_variance_initializer"};
    // How weights were initialised, regularised and constrained in training.
    for (const char* w : {"kernel", "bias", "depthwise", "pointwise", "alpha", "gamma", "beta", "embeddings"})
      for (const char* role : {"_initializer", "_regularizer", "_constraint"}) k.insert(std::string(w) + role);
    return k;
  }();
  return keys;
}

const KerasTable& layer_table() {
  static const KerasTable t = {
      {"Dense", dense()},
      {"Activation", activation_layer()},
      {"ReLU", relu_layer()},
      {"LeakyReLU", leaky_relu_layer()},
      {"ELU", elu_layer()},
      {"PReLU", prelu_layer()},
      {"Softmax", softmax_layer()},
      // Dropout and noise layers are identities at inference (predict() applies none of them).
      {"Dropout", inference_identity({"rate", "noise_shape", "seed"})},
      {"SpatialDropout1D", inference_identity({"rate", "noise_shape", "seed", "data_format"})},
      {"SpatialDropout2D", inference_identity({"rate", "noise_shape", "seed", "data_format"})},
      {"SpatialDropout3D", inference_identity({"rate", "noise_shape", "seed", "data_format"})},
      {"AlphaDropout", inference_identity({"rate", "noise_shape", "seed"})},
      {"GaussianDropout", inference_identity({"rate", "seed"})},
      {"GaussianNoise", inference_identity({"stddev", "seed"})},
      {"Flatten", flatten()},
      {"Reshape", reshape()},
      {"TimeDistributed", time_distributed()},
      {"Add", merge("Add")},
      {"Multiply", merge("Mul")},
      {"Subtract", merge("Sub", true)},  // Keras 2/3; tfjs has none
      {"Concatenate", concatenate()},
      {"Conv1D", conv(1)},
      {"Conv2D", conv(2)},
      {"Conv3D", conv(3)},
      {"DepthwiseConv2D", depthwise_conv(2)},
      {"SeparableConv1D", separable_conv(1)},  // Keras 2/3; tfjs has none
      {"SeparableConv2D", separable_conv(2)},
      {"Conv2DTranspose", conv_transpose(2)},
      {"Conv3DTranspose", conv_transpose(3)},
      {"UpSampling1D", upsampling(1)},  // Keras 2/3; tfjs has none
      {"UpSampling2D", upsampling(2)},
      {"UpSampling3D", upsampling(3)},  // Keras 2/3; tfjs has none
      {"MaxPooling1D", pool(1, "max")},
      {"MaxPooling2D", pool(2, "max")},
      {"MaxPooling3D", pool(3, "max")},
      {"AveragePooling1D", pool(1, "avg")},
      {"AveragePooling2D", pool(2, "avg")},
      {"AveragePooling3D", pool(3, "avg")},
      {"GlobalAveragePooling1D", global_pool(1, "avg")},
      {"GlobalAveragePooling2D", global_pool(2, "avg")},
      {"GlobalAveragePooling3D", global_pool(3, "avg")},
      {"GlobalMaxPooling1D", global_pool(1, "max")},
      {"GlobalMaxPooling2D", global_pool(2, "max")},
      {"GlobalMaxPooling3D", global_pool(3, "max")},
      {"ZeroPadding1D", zero_padding(1)},
      {"ZeroPadding2D", zero_padding(2)},
      {"ZeroPadding3D", zero_padding(3)},
      {"BatchNormalization", batch_normalization()},
      {"LayerNormalization", layer_normalization()},
      {"RMSNorm", rms_norm()},  // the capture's composed layer
      {"Embedding", embedding()},
      {"SimpleRNN", simple_rnn()},
      {"LSTM", lstm()},
      {"GRU", gru()},
      {"Bidirectional", bidirectional()},
      {"MultiHeadAttention", multi_head_attention()},  // Keras 2/3; composed in the tfjs capture
  };
  return t;
}

// ------------------------------------------------------------------ activations

namespace {

ActFn fn(const std::string& function, AttrList params = {}) {
  ir::Attrs p = attrs_of(params);
  return [function, p](const KerasModel&, const JsonRef&) { return Act{function, p}; };
}

ActFn softmax_act(bool log) {
  return [log](const KerasModel&, const JsonRef&) { return Act{"", {}, true, log}; };
}

// tfjs and Keras 2: clip(0.2x + 0.5, 0, 1); Keras 3: relu6(x + 3) / 6 = clip(x/6 + 0.5, 0, 1).
Act hard_sigmoid(const KerasModel& m, const JsonRef& where) {
  if (m.keras_version.empty())
    where.fail("hard_sigmoid differs between Keras 2 (slope 0.2) and Keras 3 (slope 1/6); the model config needs \"keras_version\"");
  return Act{"hard_sigmoid", attrs_of({{"alpha", m.keras3() ? 1.0 / 6.0 : 0.2}, {"beta", 0.5}})};
}

}  // namespace

const std::map<std::string, ActFn>& activation_table() {
  static const std::map<std::string, ActFn> t = {
      {"linear", fn("identity")},
      {"relu", fn("relu")},
      {"relu6", fn("relu6")},
      {"tanh", fn("tanh")},
      {"sigmoid", fn("sigmoid")},
      {"gelu", fn("gelu_erf")},       // tfjs: x·Φ(x) with erf; Keras 2/3: approximate=False
      {"gelu_new", fn("gelu_tanh")},  // tfjs: the tanh approximation
      {"swish", fn("silu")},          // tfjs: x·sigmoid(alpha·x), alpha 1
      {"silu", fn("silu")},           // Keras 3 spelling
      {"elu", fn("elu", {{"alpha", 1.0}})},
      {"selu", fn("selu")},
      {"softplus", fn("softplus")},
      {"mish", fn("mish")},
      {"exponential", fn("exp")},
      {"hard_silu", fn("hardswish")},  // Keras 3: x·relu6(x + 3)/6
      {"hard_swish", fn("hardswish")},
      {"leaky_relu", fn("leaky_relu", {{"alpha", 0.2}})},  // Keras 3 only; its default slope
      {"hardSigmoid", hard_sigmoid},                       // tfjs spelling
      {"hard_sigmoid", hard_sigmoid},
      {"softmax", softmax_act(false)},
      {"logSoftmax", softmax_act(true)},  // tfjs spelling
      {"log_softmax", softmax_act(true)},
  };
  return t;
}

Act keras_activation(const KerasModel& m, const JsonRef& a) {
  if (!a.is_string()) a.fail("expected an activation name, got " + a.raw().dump());
  const std::string name = a.str();
  auto it = activation_table().find(name);
  if (it != activation_table().end()) return it->second(m, a);
  if (name == "softsign") a.fail("activation \"softsign\" has no IR function yet");
  a.fail("unknown activation \"" + name + "\" (known: " + joined(table_keys(activation_table())) + ")");
}

}  // namespace pb::tensorflow
