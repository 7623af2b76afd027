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

// A Python value that traced code computes from shapes rather than tensors (x.size(1), h // p,
// x.dim() == 3, math.sqrt(d), x.device): evaluated while decoding, it has no IR node. The IR
// graph serves any batch (dim 0 of every graph input is -1 there), so an int read from a dim
// that depends on the batch keeps how: per_batch·N + offset for the batch N, or `nonlinear`
// where no such form holds (N // 3, N·N). A shape it lands in must not fix the batch.
struct FxScalar {
  enum class Kind { Bool, Int, Float, Device, DType };  // DType (x.dtype): i holds the pb::DType
  Kind kind = Kind::Int;
  int64_t i = 0;  // Bool, Int: the value as captured
  double f = 0;   // Float
  int64_t per_batch = 0, offset = 0;  // Int: i = per_batch·N + offset at the captured batch N
  bool nonlinear = false;
  // Where an int equal to the batch was read: an IR value and its dim (an Expand's `like`).
  std::string source;
  int64_t source_dim = -1;

  static FxScalar integer(int64_t v) { return of(Kind::Int, v, 0); }
  static FxScalar real(double v) { return of(Kind::Float, 0, v); }
  static FxScalar boolean(bool v) { return of(Kind::Bool, v, 0); }
  bool batch() const { return per_batch != 0 || nonlinear; }
  bool is_batch() const { return kind == Kind::Int && !nonlinear && per_batch == 1 && offset == 0; }  // N itself
  double number() const { return kind == Kind::Float ? f : double(i); }

 private:
  static FxScalar of(Kind k, int64_t i, double f) {
    FxScalar s;
    s.kind = k;
    s.i = s.offset = i;
    s.f = f;
    return s;
  }
};

// torch.arange over ints: a tensor the decoder knows. Where a tensor is needed it becomes the
// constant "<node>.values" (f32, as integer buffers compute); an Embedding reads those rows of
// its table instead (a Slice).
struct FxRange {
  int64_t start = 0, step = 1, count = 0;
};

// A Python tuple the fx graph passes around: a recurrent module's (y, h_n) or (y, (h_n, c_n)),
// a tuple literal argument ((h0, c0)), x.size() or torch.chunk's pieces. fx has no tuple values
// of its own: a node returning one is indexed by _operator.getitem nodes, and such a node stands
// for all of it in the output. Each element is an IR value, a Python value or a nested tuple.
struct FxTuple {
  std::string value;               // a leaf: the IR value
  std::vector<FxTuple> items;      // a tuple: its elements
  std::optional<FxScalar> scalar;  // a leaf: a Python value
  FxTuple() = default;
  FxTuple(std::string leaf, std::vector<FxTuple> elements) : value(std::move(leaf)), items(std::move(elements)) {}
  explicit FxTuple(FxScalar v) : scalar(std::move(v)) {}
  bool is_tuple() const { return value.empty() && !scalar; }
};

// What the graph's nodes return besides the decoder context's tensors, by fx node name: tuples,
// Python values (a leaf FxTuple) and integer ranges; and which dims of the IR values depend on
// the batch.
class FxValues {
 public:
  std::map<std::string, FxTuple> tuples;
  std::map<std::string, FxRange> ranges;
  bool defines(const std::string& name) const { return tuples.count(name) || ranges.count(name); }
  // IR value or weight `name`'s dims as the compiled graph sees them: -1 where they depend on
  // the batch. The graph is inferred again with its inputs' batch dims at -1, node by node as
  // it grows.
  const Shape& batch_shape(const Decoder& d, const std::string& name);
  // The batch as captured: dim 0 of the first graph input that has dims.
  int64_t captured_batch(const Decoder& d) const;

 private:
  std::map<std::string, ir::TensorType> types_;
  size_t inferred_ = 0;
};

class FxNode {
 public:
  // `module`: the model.modules entry of a call_module node (absent for functions and methods).
  FxNode(Decoder& d, FxValues& values, JsonRef node, std::optional<JsonRef> module);

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
  // The value a reference {"node": name} names, defined before this node (a tuple or a Python
  // value is refused: index it first; a range becomes its constant).
  std::string node_ref(const JsonRef& a) const;
  // The tuple a reference {"node": name} names, or nullptr when it names none.
  const FxTuple* tuple_ref(const JsonRef& a) const;
  // The range a reference names (torch.arange), or nullptr.
  const FxRange* range_ref(const JsonRef& a) const;
  // Argument `a` as a Python value: a number or bool literal (a non-finite float arrives as
  // {"repr": "inf"}), or a node returning one; nullopt for anything else.
  std::optional<FxScalar> scalar(const JsonRef& a) const;
  // An int argument that must not depend on the batch: a literal or a node returning one.
  int64_t constant_int(const JsonRef& a, const std::string& what) const;
  // Python ints given as one argument (a list literal, or a node returning a tuple: x.size())
  // or as the remaining positional ones (x.view(B, T, -1)). Missing: "<what> needs <kw>".
  std::vector<FxScalar> scalars_from(size_t i, const std::string& kw, const std::string& what) const;
  // The size of dim `dim` of IR value `ir_value` as a Python int, with its batch dependence.
  FxScalar dim_size(const std::string& ir_value, size_t dim) const;
  // Python value `v` (argument `a`) as the scalar constant "<node>.<role>" (f32); one that
  // depends on the batch is refused.
  std::string number_constant(const JsonRef& a, const FxScalar& v, const std::string& role) const;
  // An operand that is a tensor (its IR value) or a Python value (number_constant).
  std::string operand(const JsonRef& a, const std::string& role) const;
  // IR value `ir_value`'s dims as the compiled graph sees them: -1 where they depend on the batch.
  const Shape& batch_shape(const std::string& ir_value) const { return values_.batch_shape(d_, ir_value); }
  // An argument that is a tuple: a tuple literal ([{"node": a}, {"node": b}], nested) or a
  // reference to a node returning one.
  FxTuple tuple_arg(const JsonRef& a) const;
  // The IR values argument `a` stands for, nested tuples flattened in order (the output node).
  void flat_values(const JsonRef& a, std::vector<std::string>& out) const;
  // An int argument (a literal, or a node returning one that does not depend on the batch).
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
  // This node returns a Python value, or an integer range (no IR value of its own).
  void define_scalar(FxScalar v) const;
  void define_range(FxRange r) const;

 private:
  Decoder& d_;
  FxValues& values_;
  JsonRef node_;
  std::optional<JsonRef> module_;
  std::string name_;
};

// dim in [-rank, rank), made non-negative; `what` names it in the error.
int64_t resolved_dim(const FxNode& n, int64_t dim, size_t rank, const std::string& what);

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
Translate conv_transpose(size_t rank);
Translate conv_transpose_call(size_t rank);
Translate max_pool(size_t rank);
Translate avg_pool(size_t rank);
Translate max_pool_call(size_t rank);
Translate avg_pool_call(size_t rank);
Translate adaptive_pool(const std::string& mode, size_t rank);
Translate adaptive_pool_call(const std::string& mode, size_t rank);

// op/upsample.cpp: nn.Upsample* and F.interpolate (Resize), nn.PixelShuffle / PixelUnshuffle
void translate_upsample_module(const FxNode& n);
void translate_interpolate(const FxNode& n);
void translate_pixel_shuffle_module(const FxNode& n);
void translate_pixel_unshuffle_module(const FxNode& n);
void translate_pixel_shuffle_call(const FxNode& n);
void translate_pixel_unshuffle_call(const FxNode& n);

// op/norm.cpp
void translate_batchnorm(const FxNode& n);
void translate_layernorm(const FxNode& n);
void translate_rmsnorm(const FxNode& n);
void translate_layer_norm_call(const FxNode& n);
void translate_groupnorm(const FxNode& n);
void translate_group_norm_call(const FxNode& n);
Translate instancenorm(size_t rank);
void translate_instance_norm_call(const FxNode& n);

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
void translate_hardsigmoid(const FxNode& n);
void translate_hardtanh_module(const FxNode& n);
void translate_hardtanh_call(const FxNode& n);
void translate_prelu_module(const FxNode& n);
void translate_prelu_call(const FxNode& n);
void translate_softsign(const FxNode& n);
void translate_tanhshrink(const FxNode& n);
void translate_stochastic_depth(const FxNode& n);
Translate softmax_module(bool log);
Translate softmax_call(bool log, size_t dtype_at);
void translate_identity(const FxNode& n);
void translate_dropout_module(const FxNode& n);
void translate_dropout_call(const FxNode& n);
Translate binary(const std::string& op);
void translate_pow(const FxNode& n);
void translate_float(const FxNode& n);
void translate_type_as(const FxNode& n);
void translate_to(const FxNode& n);

// op/reduce.cpp: mean, sum, amax, amin
Translate reduce(const std::string& mode);

// op/recurrent.cpp: nn.RNN, nn.LSTM, nn.GRU; torch.nn.utils.rnn's packed sequences (refused)
void translate_rnn(const FxNode& n);
void translate_lstm(const FxNode& n);
void translate_gru(const FxNode& n);
void translate_packed_sequence(const FxNode& n);

// op/attention.cpp: nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerEncoder,
// nn.TransformerDecoderLayer, nn.TransformerDecoder, nn.Transformer
void translate_multihead_attention(const FxNode& n);
void translate_encoder_layer(const FxNode& n);
void translate_encoder(const FxNode& n);
void translate_decoder_layer(const FxNode& n);
void translate_decoder(const FxNode& n);
void translate_transformer(const FxNode& n);

// op/scalar.cpp: Python values computed from shapes: x.size(), x.shape, x.dim(), x.numel(),
// their arithmetic and comparisons, math functions, torch._assert, torch.arange. `arithmetic`
// and `comparison` take a tensor operand too (a Python value becomes a constant): + - * / go
// on to `binary`, comparisons to a Compare node; `ir_op` "" has no tensor form.
void translate_size(const FxNode& n);
void translate_getattr(const FxNode& n);
void translate_dim(const FxNode& n);
void translate_numel(const FxNode& n);
Translate arithmetic(const std::string& op, const std::string& ir_op);
Translate comparison(const std::string& op);
Translate math_function(const std::string& fn);
void translate_assert(const FxNode& n);
void translate_arange(const FxNode& n);

// op/select.cpp: comparisons of tensors (Compare), masked_fill and torch.where (Where)
void emit_compare(const FxNode& n, const std::string& mode);
void translate_masked_fill(const FxNode& n);
void translate_where(const FxNode& n);

// op/shape.cpp
void translate_chunk(const FxNode& n);
void translate_split(const FxNode& n);
void translate_unsqueeze(const FxNode& n);
void translate_squeeze(const FxNode& n);
void translate_expand(const FxNode& n);
void translate_expand_as(const FxNode& n);
void translate_getitem(const FxNode& n);
void translate_flatten_module(const FxNode& n);
void translate_flatten_call(const FxNode& n);
void translate_reshape(const FxNode& n);
void translate_transpose(const FxNode& n);
void translate_swapaxes(const FxNode& n);
// The Transpose of argument 0 swapping dims dim0 and dim1 (negative from the end); `what` names them in errors.
void emit_swap(const FxNode& n, int64_t dim0, int64_t dim1, const std::string& what);
void translate_permute(const FxNode& n);
void translate_cat(const FxNode& n);
void translate_stack(const FxNode& n);
void translate_repeat_interleave(const FxNode& n);

// op/swin.cpp: torchvision.models.swin_transformer's fx-wrapped functions (torchvision 0.14)
void translate_relative_position_bias(const FxNode& n);
void translate_patch_merging_pad(const FxNode& n);
void translate_shifted_window_attention(const FxNode& n);

}  // namespace pb::pytorch
