#pragma once
// The PyTorch dialect's source node: one torch.fx node (call_module with its entry of
// model.modules, call_function or call_method) as its translator sees it. PyTorch's layout is
// the IR's own (channels-first, Linear.weight [out, in]): every value and weight is used as
// the stream has it. Translators live in op/*.cpp, registered in op_table.cpp.
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "planetbridge/decoder.h"

namespace pb::pytorch {

using Ints = std::vector<int64_t>;

// A Python tuple the fx graph passes around: a recurrent module's (y, h_n) or (y, (h_n, c_n)),
// a tuple literal argument ((h0, c0)). fx has no tuple values of its own: a node returning one
// is indexed by _operator.getitem nodes, and such a node stands for all of it in the output.
// Each element is an IR value or a nested tuple.
struct FxTuple {
  std::string value;           // a leaf: the IR value
  std::vector<FxTuple> items;  // a tuple: its elements
  bool is_tuple() const { return value.empty(); }
};
// The tuples the graph's nodes return, by fx node name; kept beside the decoder context, whose
// source values are tensors.
using FxTuples = std::map<std::string, FxTuple>;

class FxNode {
 public:
  // `module`: the model.modules entry of a call_module node (absent for functions and methods).
  FxNode(Decoder& d, FxTuples& tuples, JsonRef node, std::optional<JsonRef> module);

  Decoder& decoder() const { return d_; }
  const JsonRef& json() const { return node_; }
  // The fx node's name: the source value it defines, the IR value computing it.
  const std::string& name() const { return name_; }
  [[noreturn]] void fail(const std::string& msg) const { node_.fail(msg); }

  // ---- arguments (args / kwargs as docs/planets/pytorch.md encodes them)
  // Positional argument i, else keyword `kw`; nullopt when neither is given (or null).
  std::optional<JsonRef> arg(size_t i, const std::string& kw = "") const;
  std::optional<JsonRef> kwarg(const std::string& kw) const;
  // The source value argument i refers to ({"node": name}); it must be defined before.
  std::string value_arg(size_t i, const std::string& kw = "input") const;
  // That value's IR name and type.
  std::string in(size_t i, const std::string& kw = "input") const { return d_.planet_form(value_arg(i, kw)); }
  const ir::TensorType& type(size_t i, const std::string& kw = "input") const { return d_.type(value_arg(i, kw)); }
  // The value a reference {"node": name} names, defined before this node (a tuple is refused:
  // index it first).
  std::string node_ref(const JsonRef& a) const;
  // The tuple a reference {"node": name} names, or nullptr when it names none.
  const FxTuple* tuple_ref(const JsonRef& a) const;
  // An argument that is a tuple: a tuple literal ([{"node": a}, {"node": b}], nested) or a
  // reference to a node returning one.
  FxTuple tuple_arg(const JsonRef& a) const;
  // The IR values argument `a` stands for, nested tuples flattened in order (the output node).
  void flat_values(const JsonRef& a, std::vector<std::string>& out) const;
  int64_t int_arg(size_t i, const std::string& kw, int64_t fallback) const;
  double float_arg(size_t i, const std::string& kw, double fallback) const;
  // A list given as one argument ([a, b] or (a, b)) or as the remaining positional ones (x.view(a, b)).
  // Missing: "<what> needs <kw>".
  Ints ints_from(size_t i, const std::string& kw, const std::string& what) const;

  // ---- the module (call_module only)
  const JsonRef& module() const;
  JsonRef attrs() const { return module()["attrs"]; }
  JsonRef attr(const std::string& key) const { return attrs()[key]; }
  // The module's parameter (or buffer) `key` as an IR weight (the stream tensor as is; f64
  // rounds once into "<tensor>@f32"); nullopt when the module has none.
  std::optional<std::string> param(const std::string& key, bool buffer = false) const;
  // The parameter, required: missing is an error naming the module's params.
  std::string required_param(const std::string& key) const;
  // The parameter's stream shape checked against what the module's attributes say.
  void check_param_shape(const std::string& key, const std::string& weight, const Shape& want, const std::string& what) const;
  // Refuses attribute `key` unless it holds `expected` (an int, or every element of a list),
  // the only value whose computation the IR has; absent or null passes unless `required`.
  void require_attr(const std::string& key, int64_t expected, const std::string& why, bool required = false) const;
  void refuse_if_true(const std::string& key, const std::string& why) const;
  // The module's submodule `name` (model.modules.<m>.children.<name>, an nn.MultiheadAttention's
  // out_proj) seen as this node's module: its attributes and parameters; steps still belong to
  // this node. Missing: an error naming the module's children.
  FxNode child(const std::string& name) const;

  // ---- emission
  // A constant the source writes as a literal (a scalar operand, BatchNorm's implied ones):
  // "<value>.<role>".
  std::string constant(const std::string& role, Tensor t) const { return d_.constant(name_, role, std::move(t)); }
  // The node computing this fx node's value.
  void emit(const std::string& op, std::vector<std::string> inputs, ir::Attrs attrs = {}) const {
    d_.define(name_, Layout::ChannelsFirst, op, std::move(inputs), std::move(attrs));
  }
  // An intermediate IR node of this translation, "<node>/<step>"; returns its name.
  std::string step(const std::string& step, const std::string& op, std::vector<std::string> inputs, ir::Attrs attrs = {}) const {
    d_.step(name_ + "/" + step, op, std::move(inputs), std::move(attrs));
    return name_ + "/" + step;
  }
  // This node returns a tuple (no IR value of its own).
  void define_tuple(FxTuple t) const;

 private:
  Decoder& d_;
  FxTuples& tuples_;
  JsonRef node_;
  std::optional<JsonRef> module_;
  std::string name_;
};

using FxTranslator = Translator<const FxNode>;
using FxTable = TranslatorTable<const FxNode>;

// A module translator's `attributes` are the module attrs it understands (vars(module), as the
// capture sends them), its arity how many positional inputs the call takes; a function or method
// translator's `attributes` are the keyword arguments it understands.
const FxTable& module_table();    // call_module: the module's class name
// The keyword arguments a module type's call understands (an LSTM's hx, an attention module's
// masks); none for most.
const std::vector<std::string>& module_keywords(const std::string& type);
const FxTable& function_table();  // call_function: the qualified name torch.fx prints
const FxTable& method_table();    // call_method: the Tensor method

// ------------------------------------------------------------------ translators (op/*.cpp)

using Translate = std::function<void(const FxNode&)>;

// op/linear.cpp
void translate_linear(const FxNode& n);
void translate_embedding(const FxNode& n);
void translate_matmul(const FxNode& n);

// op/conv.cpp: Conv1d-3d and the pools over `rank` spatial dims
Translate conv(size_t rank);
Translate max_pool(size_t rank);
Translate avg_pool(size_t rank);
Translate adaptive_pool(const std::string& mode);

// op/norm.cpp
void translate_batchnorm(const FxNode& n);
void translate_layernorm(const FxNode& n);
void translate_rmsnorm(const FxNode& n);

// op/elementwise.cpp: activations (a module or a call on argument 0), softmax, dropout,
// identity, + - * /
Translate activation(const std::string& function);
void translate_relu6_module(const FxNode& n);
void translate_gelu_module(const FxNode& n);
void translate_gelu_call(const FxNode& n);
void translate_leaky_relu_module(const FxNode& n);
void translate_leaky_relu_call(const FxNode& n);
void translate_elu_module(const FxNode& n);
void translate_elu_call(const FxNode& n);
void translate_softplus_module(const FxNode& n);
Translate softmax_module(bool log);
Translate softmax_call(bool log);
void translate_identity(const FxNode& n);
void translate_dropout_module(const FxNode& n);
void translate_dropout_call(const FxNode& n);
Translate binary(const std::string& op);

// op/recurrent.cpp: nn.RNN, nn.LSTM, nn.GRU; torch.nn.utils.rnn's packed sequences (refused)
void translate_rnn(const FxNode& n);
void translate_lstm(const FxNode& n);
void translate_gru(const FxNode& n);
void translate_packed_sequence(const FxNode& n);

// op/attention.cpp: nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerEncoder
void translate_multihead_attention(const FxNode& n);
void translate_encoder_layer(const FxNode& n);
void translate_encoder(const FxNode& n);

// op/shape.cpp
void translate_getitem(const FxNode& n);
void translate_flatten_module(const FxNode& n);
void translate_flatten_call(const FxNode& n);
void translate_reshape(const FxNode& n);
void translate_transpose(const FxNode& n);
void translate_permute(const FxNode& n);
void translate_cat(const FxNode& n);

}  // namespace pb::pytorch
