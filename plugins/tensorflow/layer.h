#pragma once
// The TensorFlow dialect's source node: one application of a Keras layer (a layer called once,
// or one call of a shared layer), as its translator sees it. Keras values are channels-last; the
// decoder context (planetbridge/decoder.h) holds each in the layouts the IR needs. Translators
// live in op/*.cpp, registered in op_table.cpp.
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "planetbridge/decoder.h"

namespace pb::tensorflow {

using Ints = std::vector<int64_t>;

// What one decode knows of the Keras model as a whole.
struct KerasModel {
  std::optional<JsonRef> weights;    // model.weights: {layer name: {short name: tensor name}}
  std::string keras_version;         // "tfjs-layers 4.22.0", "2.15.0", "3.3.3", or "" when absent
  std::set<std::string> translated;  // layer names
  bool keras3() const { return keras_version.rfind("3.", 0) == 0; }
};

// A call's keyword arguments that are not tensors (MultiHeadAttention's use_causal_mask), by name.
using CallArgs = std::map<std::string, JsonRef>;

class Layer {
 public:
  Layer(Decoder& d, const KerasModel& model, JsonRef json, std::string name, std::string out, std::vector<std::string> inputs,
        CallArgs call_args = {});

  Decoder& decoder() const { return d_; }
  const KerasModel& model() const { return model_; }
  const JsonRef& json() const { return json_; }
  JsonRef config() const { return json_["config"]; }
  const std::string& name() const { return name_; }          // the layer's name
  const std::string& class_name() const { return class_; }
  const std::string& out() const { return out_; }            // this application's value (taps line up)
  // Its output i: out() for 0, "<out>:<i>" for the others of a layer with several (an RNN's
  // return_state), as a functional config's [layer, node, i] refers to them.
  std::string output(size_t i) const { return i == 0 ? out_ : out_ + ":" + std::to_string(i); }
  size_t arity() const { return inputs_.size(); }
  [[noreturn]] void fail(const std::string& message) const { json_.fail(message); }
  // A keyword argument of this call (decoder.cpp lists the ones each class may have), or nullopt.
  std::optional<JsonRef> call_arg(const std::string& key) const {
    auto it = call_args_.find(key);
    return it == call_args_.end() ? std::nullopt : std::optional<JsonRef>(it->second);
  }

  // ---- inputs. Most Keras layers take one, x; merge layers take several.
  // Input i's type as Keras has it (channels-last; dim 0 the captured batch).
  const ir::TensorType& type(size_t i = 0) const { return d_.type(inputs_.at(i)); }
  const Shape& shape(size_t i = 0) const { return type(i).shape; }
  // The one input as an IR value in `layout` (a Transpose the first time a layout is needed).
  std::string x(Layout layout) const { return d_.as(inputs_.at(0), layout); }
  // Every input as an IR value in `layout`, in call order.
  std::vector<std::string> xs(Layout layout) const;
  // The layout element-wise layers compute in: the one their inputs already have.
  Layout common_layout() const { return d_.common_layout(inputs_); }

  // ---- weights: model.weights[layer][short name] names the stream tensor
  JsonRef weight_ref(const std::string& short_name) const;
  bool has_weight(const std::string& short_name) const;
  // The weight's stream tensor, float and of shape `want` (-1: any size) in Keras's layout, which
  // `layout` describes in the error ("[in, units]"; "" for none). Marked as used.
  const Tensor& checked(const std::string& short_name, const Shape& want, const std::string& layout) const;
  // The checked weight as an IR weight, used as it is (the stream tensor's name).
  std::string weight(const std::string& short_name, const Shape& want, const std::string& layout) const;
  // The checked weight moved into the IR's layout: "<tensor>@<transform>".
  std::string derived(const std::string& short_name, const Shape& want, const std::string& layout, const std::string& transform,
                      const std::function<Tensor(const Tensor&)>& to_ir) const;
  // Weights the table lists for this layer that no translator used: never silently dropped.
  void check_all_weights_used() const;
  // A constant the Keras layer implies (gamma of scale = false): "<layer>.<role>".
  std::string constant(const std::string& role, Tensor t) const { return d_.constant(name_, role, std::move(t)); }

  // ---- nodes
  // Emits the node computing this application's value in `layout`.
  void emit(Layout layout, const std::string& op, std::vector<std::string> inputs, ir::Attrs attrs = {}) const {
    d_.define(out_, layout, op, std::move(inputs), std::move(attrs));
  }
  // Emits the node computing output i (channels-last, as Keras holds it).
  void emit_output(size_t i, const std::string& op, std::vector<std::string> inputs, ir::Attrs attrs = {}) const {
    d_.define(output(i), Layout::ChannelsLast, op, std::move(inputs), std::move(attrs));
  }
  // Output i is an IR value already emitted (an output of a node of several).
  void bind_output(size_t i, const std::string& ir_name) const { d_.bind(output(i), ir_name, Layout::ChannelsLast); }
  // An intermediate node of this application ("<value>/<step>"); returns its IR name.
  std::string emit_step(const std::string& step, const std::string& op, std::vector<std::string> inputs, ir::Attrs attrs = {}) const {
    d_.step(out_ + "/" + step, op, std::move(inputs), std::move(attrs));
    return out_ + "/" + step;
  }

 private:
  std::optional<JsonRef> layer_weights() const { return model_.weights ? model_.weights->find(name_) : std::nullopt; }

  Decoder& d_;
  const KerasModel& model_;
  JsonRef json_;
  std::string name_, out_, class_;
  std::vector<std::string> inputs_;
  CallArgs call_args_;
  mutable std::set<std::string> used_;
};

using KerasTranslator = Translator<const Layer>;
using KerasTable = TranslatorTable<const Layer>;

const KerasTable& layer_table();
// Config keys every Keras layer may carry that do not change what inference computes: the name,
// trainable, dtype (checked by check_float32), declared input shapes, initializers, regularizers
// and constraints.
const std::set<std::string>& informational_keys();

// ------------------------------------------------------------------ activations (op_table.cpp)

// A Keras activation as IR: an Activation function (fusable into Dense and Conv) or a Softmax.
struct Act {
  std::string function;  // IR activation function; "" for softmax
  ir::Attrs params;      // alpha / beta
  bool softmax = false, log = false;
};
using ActFn = std::function<Act(const KerasModel&, const JsonRef& where)>;
const std::map<std::string, ActFn>& activation_table();
// The activation a config names ("relu", "hardSigmoid", ...); unknown ones fail at `a`.
Act keras_activation(const KerasModel& m, const JsonRef& a);

// ------------------------------------------------------------------ config helpers (layer.cpp)

// The layer computes in float32 only: `dtype` a string or a dtype policy object
// ({"class_name": "DTypePolicy", "config": {"name": "float32"}}); anything else fails naming it.
void check_float32(const JsonRef& config);
// A config key that is understood but only supported at `ok` (its Keras default): fails naming it.
void refuse_unless(const JsonRef& config, const std::string& key, bool ok, const std::string& why);
// Keras LoRA / DoRA / quantisation settings (Keras 3): refused when set.
void refuse_adapters(const Layer& L);
// An int or a list of `rank` positive ints (kernel_size 3 or [3, 3]); absent: `fallback` each.
Ints per_dim(const JsonRef& config, const std::string& key, size_t rank, std::optional<int64_t> fallback = std::nullopt);
// Keras axis settings (an int or a list; negative counts from the end) as sorted feature axes.
Ints keras_axes(const JsonRef& axis, size_t rank);
// The input of a layer over `rank` spatial dims: float [N, spatial..., C], data_format channels_last.
void check_spatial_input(const Layer& L, size_t rank);

struct Pads {
  Ints begin, end;
};
// Keras's `padding` per spatial dim: "valid" none; "same" TF's rule (an odd pad at the end);
// "causal" (Conv1D) (k - 1)·d before. The output size comes from the op's shape inference.
Pads keras_padding(const JsonRef& padding, const Shape& in, const Ints& kernel, const Ints& strides, const Ints& dilations, bool causal_ok);

// The layer's output as act(x): an Activation in the input's layout or a Softmax over Keras's last axis.
void emit_activation(const Layer& L, const Act& act);

// ------------------------------------------------------------------ translators (op/*.cpp)
// Each with the config keys it understands (beyond informational_keys()) and its arity.

// op/dense.cpp
KerasTranslator dense();
KerasTranslator embedding();
// op/conv.cpp, over `rank` spatial dims
KerasTranslator conv(size_t rank);
KerasTranslator depthwise_conv(size_t rank);
KerasTranslator separable_conv(size_t rank);
KerasTranslator conv_transpose(size_t rank);
KerasTranslator upsampling(size_t rank);  // UpSampling1D / 2D / 3D
KerasTranslator pool(size_t rank, const std::string& mode);
KerasTranslator global_pool(size_t rank, const std::string& mode);
KerasTranslator zero_padding(size_t rank);
// op/norm.cpp
KerasTranslator batch_normalization();
KerasTranslator layer_normalization();
KerasTranslator rms_norm();
// op/merge.cpp: Add, Multiply, Subtract (`op`), Concatenate
KerasTranslator merge(const std::string& op, bool exactly_two = false);
KerasTranslator concatenate();
// op/shape.cpp
KerasTranslator flatten();
KerasTranslator reshape();
KerasTranslator time_distributed();  // wraps any one-input layer of the table
// op/recurrent.cpp: SimpleRNN, LSTM, GRU (one IR RNN / LSTM / GRU node each) and the Bidirectional wrapper
KerasTranslator simple_rnn();
KerasTranslator lstm();
KerasTranslator gru();
KerasTranslator bidirectional();
// op/activation.cpp: activation layers, and the layers that are identities at inference
KerasTranslator activation_layer();
KerasTranslator relu_layer();
KerasTranslator leaky_relu_layer();
KerasTranslator elu_layer();
KerasTranslator prelu_layer();
KerasTranslator softmax_layer();
KerasTranslator inference_identity(std::vector<std::string> attributes);
// op/attention.cpp
KerasTranslator multi_head_attention();

}  // namespace pb::tensorflow
