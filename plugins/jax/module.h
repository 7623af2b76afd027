#pragma once
// The JAX dialect's source node: one entry of model.modules (a Flax module or a function), as
// its translator sees it. Flax values are channels-last; the decoder context holds each in the
// layouts the IR needs. Translators live in op/*.cpp, registered in op_table.cpp.
#include <optional>
#include <string>
#include <vector>

#include "planetbridge/decoder.h"

namespace pb::jax {

using Ints = std::vector<int64_t>;

class Module {
 public:
  Module(Decoder& d, JsonRef json, std::string name, std::vector<std::string> inputs)
      : d_(d), json_(json), name_(std::move(name)), inputs_(std::move(inputs)) {}

  Decoder& decoder() const { return d_; }
  const JsonRef& json() const { return json_; }
  const std::string& name() const { return name_; }
  size_t arity() const { return inputs_.size(); }

  // Input i: its Flax type, and its IR value in a layout.
  const Shape& shape(size_t i = 0) const { return d_.type(inputs_.at(i)).shape; }
  DType dtype(size_t i = 0) const { return d_.type(inputs_.at(i)).dtype; }
  std::string in(size_t i, Layout layout) const { return d_.as(inputs_.at(i), layout); }
  std::string last(size_t i = 0) const { return in(i, Layout::ChannelsLast); }
  std::string first(size_t i = 0) const { return in(i, Layout::ChannelsFirst); }
  Layout common_layout() const { return d_.common_layout(inputs_); }

  // Flax keeps a module's variables at <collection>/<module path>/<leaf> in the flattened pytree.
  std::string var_name(const std::string& leaf, const std::string& collection = "params") const {
    return collection + "/" + name_ + "/" + leaf;
  }
  // The variable's stream tensor (marked as used), or nullptr when the stream has none.
  const Tensor* find_var(const std::string& leaf, const std::string& collection = "params") const;
  // The variable; missing: an error naming the module.
  const Tensor& var(const std::string& leaf, const std::string& collection = "params") const;
  // The variable checked against its Flax shape, as an IR weight; returns its name.
  std::string var_weight(const std::string& leaf, const Shape& want, const std::string& what,
                         const std::string& collection = "params") const;
  [[noreturn]] void fail_var_shape(const std::string& leaf, const std::string& expected,
                                   const std::string& collection = "params") const;
  // An optional param (use_bias / use_scale): required when `present`, an error when not.
  std::optional<std::string> optional_var(bool present, const std::string& flag, const std::string& leaf, const Shape& want,
                                          const std::string& what) const;
  // A constant Flax implies (BatchNorm without scale: ones), named after the module.
  std::string constant(const std::string& role, Tensor t) const { return d_.constant(name_, role, std::move(t)); }

  // Emits the node computing this module's output in `layout`.
  void emit(Layout layout, const std::string& op, std::vector<std::string> inputs, ir::Attrs attrs = {}) const {
    d_.define(name_, layout, op, std::move(inputs), std::move(attrs));
  }
  // An intermediate node of this module ("<name>/<step>"); returns its IR name.
  std::string emit_step(const std::string& step, const std::string& op, std::vector<std::string> inputs, ir::Attrs attrs) const {
    d_.step(name_ + "/" + step, op, std::move(inputs), std::move(attrs));
    return name_ + "/" + step;
  }

 private:
  Decoder& d_;
  JsonRef json_;
  std::string name_;
  std::vector<std::string> inputs_;
};

using JaxTranslator = Translator<const Module>;
using JaxTable = TranslatorTable<const Module>;

const JaxTable& module_table();    // Flax module types, and the jnp operators between them
const JaxTable& function_table();  // {"type": "fn", "fn": "nn.relu"}

// ------------------------------------------------------------------ attribute helpers (attrs.cpp)

// Only the f32 computation the IR does; a lower-precision Flax module would compute otherwise.
void check_float32(const JsonRef& j);
int64_t positive(const JsonRef& j);
// An int or a list of n ints (Flax's strides, kernel_dilation); absent or null gives `fallback`.
Ints per_dim(const JsonRef& j, const std::string& key, size_t n, int64_t fallback);
// A list of 1 to 3 positive ints, one per spatial dim (kernel_size, window_shape).
Ints window_shape(const JsonRef& j);
// Every windowed module reads x [batch, spatial (n dims)..., C]: exactly one batch dim.
void check_spatial_input(const Module& m, size_t n, const std::string& what);
// Flax's reduction_axes / feature_axes / axis: only the last axis (-1, rank - 1 or [-1]).
void check_last_axis(const JsonRef& j, const std::string& key, size_t rank);

struct Pads {
  Ints begin, end;
};
// Flax's (and lax's) padding per spatial dim. `int_ok`: Conv takes ints, the pooling functions only pairs.
Pads flax_padding(const JsonRef& pad, const Shape& in, const Ints& window, const Ints& strides, const Ints& dilations, bool int_ok);

// ------------------------------------------------------------------ translators (op/*.cpp)

void translate_dense(const Module& m);
void translate_dense_general(const Module& m);
void translate_embed(const Module& m);
void translate_einsum_module(const Module& m);  // flax.linen.Einsum (op/einsum.cpp)
void translate_einsum(const Module& m);         // jnp.einsum of two values
void translate_matmul(const Module& m);         // jnp.matmul, a @ b
// flax.linen attention (op/attention.cpp).
void translate_multi_head_attention(const Module& m);
void translate_self_attention(const Module& m);
void translate_causal_mask(const Module& m);
void translate_attention_mask(const Module& m);
void translate_conv(const Module& m);
void translate_conv_transpose(const Module& m);
JaxTranslator pool(const std::string& mode);
JaxTranslator global_reduce(const std::string& mode);
void translate_batchnorm(const Module& m);
void translate_groupnorm(const Module& m);
void translate_norm(const Module& m, bool rms);
void translate_dropout(const Module& m);
void translate_reshape(const Module& m);
void translate_concatenate(const Module& m);
JaxTranslator binary(const std::string& op);
JaxTranslator activation(const std::string& function, std::vector<std::string> attributes = {},
                         std::function<ir::Attrs(const JsonRef&)> params = nullptr);
JaxTranslator softmax(bool log);
// flax.linen.RNN / Bidirectional over the cells of cell_types() (op/recurrent.cpp).
void translate_rnn(const Module& m);
void translate_bidirectional(const Module& m);
std::vector<std::string> cell_types();  // SimpleCell, LSTMCell, OptimizedLSTMCell, GRUCell

}  // namespace pb::jax
