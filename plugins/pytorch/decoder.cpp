// PyTorch dialect: torch.fx graph + module table -> IR (docs/planets/pytorch.md).
// One translator per module type / function / method, each registered in one table.
#include <functional>
#include <map>

#include "planetbridge/decoder.h"
#include "planetbridge/plugin.h"

namespace pb::pytorch {

namespace {

// Everything a translator needs about the fx node it translates.
class FxNode {
 public:
  FxNode(const Stream& stream, JsonRef node, ir::Graph& graph) : stream_(stream), node_(node), graph_(graph) {
    name_ = node["name"].str();
  }

  const std::string& name() const { return name_; }
  const JsonRef& json() const { return node_; }
  [[noreturn]] void fail(const std::string& msg) const { node_.fail(msg); }

  // Positional argument i, else keyword `kw`; nullopt when neither is given (or null).
  std::optional<JsonRef> arg(size_t i, const std::string& kw = "") const {
    if (auto args = node_.find("args"); args && i < args->size() && !(*args)[i].is_null()) return (*args)[i];
    if (!kw.empty())
      if (auto kwargs = node_.find("kwargs")) return kwargs->find(kw);
    return std::nullopt;
  }

  // The IR value an argument refers to ({"node": name}).
  std::string value_arg(size_t i, const std::string& kw = "input") const {
    auto a = arg(i, kw);
    if (!a) fail("missing argument " + std::to_string(i) + " (" + kw + ")");
    return node_ref(*a);
  }

  static std::string node_ref(const JsonRef& a) {
    if (!a.is_object() || !a.has("node")) a.fail("expected a node reference {\"node\": name}");
    return a["node"].str();
  }

  int64_t int_arg(size_t i, const std::string& kw, int64_t fallback) const {
    auto a = arg(i, kw);
    return a ? a->i64() : fallback;
  }
  double float_arg(size_t i, const std::string& kw, double fallback) const {
    auto a = arg(i, kw);
    return a ? a->f64() : fallback;
  }

  // Copies a stream tensor into the graph's weights (same name) and returns its name.
  std::string weight(const std::string& tensor_name, const JsonRef& where) const {
    const Tensor& t = stream_.tensor(tensor_name, where.path());
    graph_.weights.emplace(tensor_name, t);
    return tensor_name;
  }

  const Tensor& weight_tensor(const std::string& name) const { return graph_.weights.at(name); }

  // A constant the source expresses as a literal (a scalar operand, BatchNorm without affine).
  std::string constant(const std::string& suffix, Tensor t) const {
    const std::string name = name_ + "." + suffix;
    graph_.weights[name] = std::move(t);
    return name;
  }

  std::optional<JsonRef> kwarg(const std::string& kw) const {
    auto kwargs = node_.find("kwargs");
    return kwargs ? kwargs->find(kw) : std::nullopt;
  }

  // Adds the IR node for this fx node; its output value carries the fx node's name.
  void emit(const std::string& op, std::vector<std::string> inputs, ir::Attrs attrs = {}) const {
    add_node(graph_, name_, op, std::move(inputs), std::move(attrs), origin_);
  }

  void set_origin(std::string origin) { origin_ = std::move(origin); }

 private:
  const Stream& stream_;
  JsonRef node_;
  ir::Graph& graph_;
  std::string name_;
  std::string origin_;
};

void emit_activation(const FxNode& n, const std::string& input, const std::string& function,
                     std::initializer_list<std::pair<const std::string, ir::AttrValue>> extra = {}) {
  ir::Attrs a = attrs_of(extra);
  a.set("function", function);
  n.emit("Activation", {input}, std::move(a));
}

// torch's implicit softmax dim depends on the input rank (a deprecated rule); we refuse it
// rather than guess.
[[noreturn]] void implicit_softmax_dim(const FxNode& n) {
  n.fail("softmax without an explicit dim uses torch's deprecated implicit-dim rule; pass dim");
}

std::string gelu_function(const std::string& approximate, const JsonRef& where) {
  if (approximate == "none") return "gelu_erf";
  if (approximate == "tanh") return "gelu_tanh";
  where.fail("unknown GELU approximation \"" + approximate + "\" (expected \"none\" or \"tanh\")");
}

// ------------------------------------------------------------------ modules

using ModuleTranslator = std::function<void(const FxNode&, const JsonRef& module, const std::string& input)>;

JsonRef module_attr(const JsonRef& module, const std::string& key) { return module["attrs"][key]; }

std::optional<std::string> module_param(const FxNode& n, const JsonRef& module, const std::string& key, bool buffer = false) {
  auto table = module.find(buffer ? "buffers" : "params");
  if (!table) return std::nullopt;
  auto p = table->find(key);
  if (!p) return std::nullopt;
  return n.weight(p->str(), *p);
}

ModuleTranslator activation_module(const std::string& function) {
  return [function](const FxNode& n, const JsonRef&, const std::string& in) { emit_activation(n, in, function); };
}

ModuleTranslator softmax_module(bool log) {
  return [log](const FxNode& n, const JsonRef& m, const std::string& in) {
    auto dim = m["attrs"].find("dim");
    if (!dim) implicit_softmax_dim(n);
    n.emit("Softmax", {in}, attrs_of({{"axis", dim->i64()}, {"log", int64_t(log)}}));
  };
}

void translate_linear(const FxNode& n, const JsonRef& m, const std::string& in) {
  const int64_t in_f = module_attr(m, "in_features").i64(), out_f = module_attr(m, "out_features").i64();
  auto w = module_param(n, m, "weight");
  if (!w) m["params"].fail("Linear has no \"weight\"");
  // PyTorch keeps Linear.weight as [out, in], the IR's own layout: used as is, never guessed.
  if (n.weight_tensor(*w).shape() != Shape{out_f, in_f})
    m["params"]["weight"].fail("expected shape [out_features, in_features] = " + shape_str({out_f, in_f}) + ", got " +
                               shape_str(n.weight_tensor(*w).shape()));
  std::vector<std::string> inputs = {in, *w};
  if (auto b = module_param(n, m, "bias")) {
    if (n.weight_tensor(*b).shape() != Shape{out_f})
      m["params"]["bias"].fail("expected shape [" + std::to_string(out_f) + "], got " + shape_str(n.weight_tensor(*b).shape()));
    inputs.push_back(*b);
  }
  n.emit("Dense", inputs);
}

void translate_dropout(const FxNode& n, const JsonRef& m, const std::string& in) {
  if (m.boolean("training", false))
    m["training"].fail("Dropout in training mode is random; capture the model in eval()");
  n.emit("Identity", {in});
}

template <size_t Rank>
void translate_conv(const FxNode& n, const JsonRef& m, const std::string& in) {
  JsonRef a = m["attrs"];
  const auto kernel = int_or_list(a["kernel_size"], Rank), stride = int_or_list(a["stride"], Rank),
             dilation = int_or_list(a["dilation"], Rank);
  if (a.str("padding_mode", "zeros") != "zeros") a["padding_mode"].fail("only padding_mode \"zeros\" is supported");
  std::vector<int64_t> pb(Rank), pe(Rank);
  JsonRef pad = a["padding"];
  if (pad.is_string()) {
    // torch's "same": total = dilation * (kernel - 1), the extra element on the end side.
    const std::string mode = pad.str();
    if (mode != "same" && mode != "valid") pad.fail("expected \"same\", \"valid\" or integers, got \"" + mode + "\"");
    for (size_t i = 0; i < Rank && mode == "same"; ++i) {
      const int64_t total = dilation[i] * (kernel[i] - 1);
      pb[i] = total / 2;
      pe[i] = total - pb[i];
    }
  } else {
    pb = pe = int_or_list(pad, Rank);
  }
  auto w = module_param(n, m, "weight");
  if (!w) m["params"].fail("Conv has no \"weight\"");
  const int64_t out_c = a["out_channels"].i64(), in_c = a["in_channels"].i64(), groups = a.i64("groups", 1);
  Shape want = {out_c, in_c / groups};
  want.insert(want.end(), kernel.begin(), kernel.end());
  if (n.weight_tensor(*w).shape() != want)
    m["params"]["weight"].fail("expected [out_channels, in_channels/groups, kernel...] = " + shape_str(want) + ", got " +
                               shape_str(n.weight_tensor(*w).shape()));
  std::vector<std::string> inputs = {in, *w};
  if (auto b = module_param(n, m, "bias")) {
    if (n.weight_tensor(*b).shape() != Shape{out_c})
      m["params"]["bias"].fail("expected shape [" + std::to_string(out_c) + "], got " + shape_str(n.weight_tensor(*b).shape()));
    inputs.push_back(*b);
  }
  ir::Attrs at = window_attrs(stride, dilation, pb, pe);
  at.set("groups", groups);
  n.emit("Conv", inputs, at);
}

template <size_t Rank>
void translate_max_pool(const FxNode& n, const JsonRef& m, const std::string& in) {
  JsonRef a = m["attrs"];
  if (a.boolean("return_indices", false)) a["return_indices"].fail("return_indices is not supported");
  if (a.boolean("ceil_mode", false)) a["ceil_mode"].fail("ceil_mode is not supported yet; use ceil_mode=False");
  const auto kernel = int_or_list(a["kernel_size"], Rank);
  const auto stride = a.has("stride") ? int_or_list(a["stride"], Rank) : kernel;
  const auto pad = int_or_list(a["padding"], Rank), dilation = int_or_list(a["dilation"], Rank);
  ir::Attrs at = window_attrs(stride, dilation, pad, pad);
  at.set("mode", std::string("max"));
  at.set("kernel", kernel);
  n.emit("Pool", {in}, at);
}

template <size_t Rank>
void translate_avg_pool(const FxNode& n, const JsonRef& m, const std::string& in) {
  JsonRef a = m["attrs"];
  if (a.has("divisor_override")) a["divisor_override"].fail("divisor_override is not supported");
  if (a.boolean("ceil_mode", false)) a["ceil_mode"].fail("ceil_mode is not supported yet; use ceil_mode=False");
  const auto kernel = int_or_list(a["kernel_size"], Rank);
  const auto stride = a.has("stride") ? int_or_list(a["stride"], Rank) : kernel;
  const auto pad = int_or_list(a["padding"], Rank);
  ir::Attrs at = window_attrs(stride, std::vector<int64_t>(Rank, 1), pad, pad);
  at.set("mode", std::string("avg"));
  at.set("kernel", kernel);
  at.set("count_include_pad", int64_t(a.boolean("count_include_pad", true)));
  n.emit("Pool", {in}, at);
}

// Adaptive pooling to size 1 is a global pool; other sizes would need per-window bounds.
void translate_adaptive_pool(const FxNode& n, const JsonRef& m, const std::string& in, const std::string& mode) {
  JsonRef size = m["attrs"]["output_size"];
  for (int64_t s : size.is_array() ? size.ints() : std::vector<int64_t>{size.i64()})
    if (s != 1) size.fail("only output_size 1 (global pooling) is supported");
  n.emit("Pool", {in}, attrs_of({{"mode", mode}, {"global", int64_t(1)}}));
}

Tensor filled(int64_t n, float v) {
  Tensor t(DType::f32, {n});
  for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = v;
  return t;
}

void translate_batchnorm(const FxNode& n, const JsonRef& m, const std::string& in) {
  if (m.boolean("training", false)) m["training"].fail("BatchNorm in training mode uses batch statistics; capture in eval()");
  JsonRef a = m["attrs"];
  const int64_t c = a["num_features"].i64();
  auto mean = module_param(n, m, "running_mean", true), var = module_param(n, m, "running_var", true);
  if (!mean || !var) m["buffers"].fail("BatchNorm without running statistics (track_running_stats=False) normalises with batch statistics; not supported");
  auto scale = module_param(n, m, "weight"), shift = module_param(n, m, "bias");
  const std::string s = scale ? *scale : n.constant("scale", filled(c, 1.f));
  const std::string b = shift ? *shift : n.constant("shift", filled(c, 0.f));
  n.emit("BatchNorm", {in, s, b, *mean, *var}, attrs_of({{"eps", a["eps"].f64()}}));
}

void translate_layernorm(const FxNode& n, const JsonRef& m, const std::string& in) {
  JsonRef a = m["attrs"];
  const std::vector<int64_t> shape = a["normalized_shape"].ints();
  std::vector<std::string> inputs = {in, "", ""};
  if (auto w = module_param(n, m, "weight")) inputs[1] = *w;
  if (auto b = module_param(n, m, "bias")) inputs[2] = *b;
  n.emit("LayerNorm", inputs, attrs_of({{"axis", -static_cast<int64_t>(shape.size())}, {"eps", a["eps"].f64()}}));
}

// torch >= 2.4 nn.RMSNorm, and the capture's composed RMSNorm (torch 1.13 has none), which it
// traces as a leaf with the same attributes.
void translate_rmsnorm(const FxNode& n, const JsonRef& m, const std::string& in) {
  JsonRef a = m["attrs"];
  if (a["normalized_shape"].ints().size() != 1) a["normalized_shape"].fail("RMSNorm over more than the last dim is not supported");
  if (!a.has("eps")) a.fail("RMSNorm needs an explicit eps (torch's default depends on the input dtype)");
  std::vector<std::string> inputs = {in};
  if (auto w = module_param(n, m, "weight")) inputs.push_back(*w);
  n.emit("RMSNorm", inputs, attrs_of({{"axis", int64_t(-1)}, {"eps", a["eps"].f64()}}));
}

void translate_embedding(const FxNode& n, const JsonRef& m, const std::string& in) {
  JsonRef a = m["attrs"];
  if (a.has("max_norm")) a["max_norm"].fail("max_norm renormalises rows during forward; not supported");
  auto w = module_param(n, m, "weight");
  if (!w) m["params"].fail("Embedding has no \"weight\"");
  const Shape want = {a["num_embeddings"].i64(), a["embedding_dim"].i64()};
  if (n.weight_tensor(*w).shape() != want)
    m["params"]["weight"].fail("expected [num_embeddings, embedding_dim] = " + shape_str(want) + ", got " +
                               shape_str(n.weight_tensor(*w).shape()));
  n.emit("Embedding", {in, *w});
}

const std::map<std::string, ModuleTranslator>& module_table() {
  static const std::map<std::string, ModuleTranslator> t = {
      {"Linear", translate_linear},
      {"ReLU", activation_module("relu")},
      {"ReLU6", activation_module("relu6")},
      {"Tanh", activation_module("tanh")},
      {"Sigmoid", activation_module("sigmoid")},
      {"SiLU", activation_module("silu")},
      {"SELU", activation_module("selu")},
      {"Mish", activation_module("mish")},
      {"Hardswish", activation_module("hardswish")},
      {"GELU",
       [](const FxNode& n, const JsonRef& m, const std::string& in) {
         auto a = m["attrs"].find("approximate");
         emit_activation(n, in, a ? gelu_function(a->str(), *a) : "gelu_erf");
       }},
      {"LeakyReLU",
       [](const FxNode& n, const JsonRef& m, const std::string& in) {
         emit_activation(n, in, "leaky_relu", {{"alpha", module_attr(m, "negative_slope").f64()}});
       }},
      {"ELU",
       [](const FxNode& n, const JsonRef& m, const std::string& in) {
         emit_activation(n, in, "elu", {{"alpha", module_attr(m, "alpha").f64()}});
       }},
      {"Softplus",
       [](const FxNode& n, const JsonRef& m, const std::string& in) {
         // torch switches to the identity above `threshold`; with beta 1 the two agree in f32.
         if (module_attr(m, "beta").f64() != 1.0) m["attrs"]["beta"].fail("only beta = 1 is supported");
         emit_activation(n, in, "softplus");
       }},
      {"Softmax", softmax_module(false)},
      {"LogSoftmax", softmax_module(true)},
      {"Identity", [](const FxNode& n, const JsonRef&, const std::string& in) { n.emit("Identity", {in}); }},
      {"Dropout", translate_dropout},
      {"Dropout1d", translate_dropout},
      {"Dropout2d", translate_dropout},
      {"Dropout3d", translate_dropout},
      {"AlphaDropout", translate_dropout},
      {"Conv1d", translate_conv<1>},
      {"Conv2d", translate_conv<2>},
      {"Conv3d", translate_conv<3>},
      {"MaxPool1d", translate_max_pool<1>},
      {"MaxPool2d", translate_max_pool<2>},
      {"MaxPool3d", translate_max_pool<3>},
      {"AvgPool1d", translate_avg_pool<1>},
      {"AvgPool2d", translate_avg_pool<2>},
      {"AvgPool3d", translate_avg_pool<3>},
      {"AdaptiveAvgPool1d", [](const FxNode& n, const JsonRef& m, const std::string& in) { translate_adaptive_pool(n, m, in, "avg"); }},
      {"AdaptiveAvgPool2d", [](const FxNode& n, const JsonRef& m, const std::string& in) { translate_adaptive_pool(n, m, in, "avg"); }},
      {"AdaptiveAvgPool3d", [](const FxNode& n, const JsonRef& m, const std::string& in) { translate_adaptive_pool(n, m, in, "avg"); }},
      {"AdaptiveMaxPool1d", [](const FxNode& n, const JsonRef& m, const std::string& in) { translate_adaptive_pool(n, m, in, "max"); }},
      {"AdaptiveMaxPool2d", [](const FxNode& n, const JsonRef& m, const std::string& in) { translate_adaptive_pool(n, m, in, "max"); }},
      {"AdaptiveMaxPool3d", [](const FxNode& n, const JsonRef& m, const std::string& in) { translate_adaptive_pool(n, m, in, "max"); }},
      {"BatchNorm1d", translate_batchnorm},
      {"BatchNorm2d", translate_batchnorm},
      {"BatchNorm3d", translate_batchnorm},
      {"LayerNorm", translate_layernorm},
      {"RMSNorm", translate_rmsnorm},
      {"Embedding", translate_embedding},
      {"Flatten",
       [](const FxNode& n, const JsonRef& m, const std::string& in) {
         n.emit("Flatten", {in},
                attrs_of({{"start", module_attr(m, "start_dim").i64()}, {"end", module_attr(m, "end_dim").i64()}}));
       }},
  };
  return t;
}

// ------------------------------------------------------------------ functions and methods

// Functions and methods share translators: argument 0 is the input tensor (`self` for methods).
using CallTranslator = std::function<void(const FxNode&)>;

CallTranslator activation_call(const std::string& function) {
  return [function](const FxNode& n) { emit_activation(n, n.value_arg(0), function); };
}

CallTranslator softmax_call(bool log) {
  return [log](const FxNode& n) {
    auto dim = n.arg(1, "dim");
    if (!dim) implicit_softmax_dim(n);
    n.emit("Softmax", {n.value_arg(0)}, attrs_of({{"axis", dim->i64()}, {"log", int64_t(log)}}));
  };
}

CallTranslator flatten_call(int64_t default_start) {
  return [default_start](const FxNode& n) {
    n.emit("Flatten", {n.value_arg(0)},
           attrs_of({{"start", n.int_arg(1, "start_dim", default_start)}, {"end", n.int_arg(2, "end_dim", -1)}}));
  };
}

void translate_gelu_call(const FxNode& n) {
  auto a = n.kwarg("approximate");  // keyword-only in F.gelu
  emit_activation(n, n.value_arg(0), a ? gelu_function(a->str(), *a) : "gelu_erf");
}

void translate_dropout_call(const FxNode& n) {
  // F.dropout(input, p=0.5, training=True, inplace=False): the default is training mode.
  auto training = n.arg(2, "training");
  if (!training || training->boolean())
    n.fail("F.dropout with training=True is random; pass training=self.training and capture in eval()");
  n.emit("Identity", {n.value_arg(0)});
}

// a (+ - * /) b where either side may be a Python number.
CallTranslator binary_call(const std::string& op) {
  return [op](const FxNode& n) {
    std::vector<std::string> ins;
    for (size_t i = 0; i < 2; ++i) {
      auto a = n.arg(i, i == 0 ? "input" : "other");
      if (!a) n.fail("missing operand " + std::to_string(i));
      if (a->is_number()) {
        Tensor t(DType::f32, {});
        t.data<float>()[0] = static_cast<float>(a->f64());
        ins.push_back(n.constant(i == 0 ? "lhs" : "rhs", t));
      } else {
        ins.push_back(FxNode::node_ref(*a));
      }
    }
    if (auto alpha = n.kwarg("alpha"); alpha && alpha->f64() != 1.0) alpha->fail("torch.add/sub with alpha != 1 is not supported");
    if (auto mode = n.kwarg("rounding_mode")) mode->fail("torch.div with rounding_mode is not supported (plain division only)");
    if (op == "Div" && n.arg(0, "input")->is_number())
      n.fail("a number divided by a tensor is not supported (the IR's Div cannot broadcast its dividend)");
    n.emit(op, ins);
  };
}

void translate_cat(const FxNode& n) {
  auto list = n.arg(0, "tensors");
  if (!list || !list->is_array()) n.fail("torch.cat needs a list of tensors");
  std::vector<std::string> ins;
  for (const JsonRef& t : list->items()) ins.push_back(FxNode::node_ref(t));
  n.emit("Concat", ins, attrs_of({{"axis", n.int_arg(1, "dim", 0)}}));
}

// x.transpose(a, b) / torch.transpose: swap two dims. The IR perm may name only the leading
// dims; negative dims would need the rank, known only at compile time, so they are refused.
void translate_transpose(const FxNode& n) {
  const int64_t a = n.int_arg(1, "dim0", -1), b = n.int_arg(2, "dim1", -1);
  if (a < 0 || b < 0) n.fail("transpose with negative dims is not supported; use non-negative dims");
  std::vector<int64_t> perm(static_cast<size_t>(std::max(a, b) + 1));
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(i);
  std::swap(perm[a], perm[b]);
  n.emit("Transpose", {n.value_arg(0)}, attrs_of({{"perm", perm}}));
}

void translate_permute(const FxNode& n) {
  auto dims = n.arg(1, "dims");
  if (!dims) n.fail("permute needs dims");
  std::vector<int64_t> perm;
  if (dims->is_array()) {
    perm = dims->ints();
  } else {  // x.permute(0, 2, 1): the dims are the remaining positional args
    for (size_t i = 1; n.arg(i); ++i) perm.push_back(n.arg(i)->i64());
  }
  // permute names every dim, so the rank is known and negative dims resolve here.
  const int64_t rank = static_cast<int64_t>(perm.size());
  for (int64_t& p : perm) {
    if (p < -rank || p >= rank) n.fail("permute dim " + std::to_string(p) + " is out of range for rank " + std::to_string(rank));
    if (p < 0) p += rank;
  }
  n.emit("Transpose", {n.value_arg(0)}, attrs_of({{"perm", perm}}));
}

// x.view(a, b) / x.reshape(a, b) / x.view((a, b)).
void translate_reshape(const FxNode& n) {
  auto first = n.arg(1, "shape");
  if (!first) n.fail("reshape needs a shape");
  std::vector<int64_t> shape;
  if (first->is_array()) {
    shape = first->ints();
  } else {
    for (size_t i = 1; n.arg(i); ++i) shape.push_back(n.arg(i)->i64());
  }
  n.emit("Reshape", {n.value_arg(0)}, attrs_of({{"shape", shape}}));
}

const std::map<std::string, CallTranslator>& function_table() {
  static const std::map<std::string, CallTranslator> t = {
      {"torch.relu", activation_call("relu")},
      {"torch.nn.functional.relu", activation_call("relu")},
      {"torch.nn.functional.relu6", activation_call("relu6")},
      {"torch.tanh", activation_call("tanh")},
      {"torch.nn.functional.tanh", activation_call("tanh")},
      {"torch.sigmoid", activation_call("sigmoid")},
      {"torch.nn.functional.sigmoid", activation_call("sigmoid")},
      {"torch.nn.functional.silu", activation_call("silu")},
      {"torch.nn.functional.selu", activation_call("selu")},
      {"torch.nn.functional.mish", activation_call("mish")},
      {"torch.nn.functional.hardswish", activation_call("hardswish")},
      {"torch.nn.functional.gelu", translate_gelu_call},
      {"torch.nn.functional.leaky_relu",
       [](const FxNode& n) {
         emit_activation(n, n.value_arg(0), "leaky_relu", {{"alpha", n.float_arg(1, "negative_slope", 0.01)}});
       }},
      {"torch.nn.functional.elu",
       [](const FxNode& n) { emit_activation(n, n.value_arg(0), "elu", {{"alpha", n.float_arg(1, "alpha", 1.0)}}); }},
      {"torch.softmax", softmax_call(false)},
      {"torch.nn.functional.softmax", softmax_call(false)},
      {"torch.log_softmax", softmax_call(true)},
      {"torch.nn.functional.log_softmax", softmax_call(true)},
      {"torch.flatten", flatten_call(0)},
      {"torch.nn.functional.dropout", translate_dropout_call},
      {"_operator.add", binary_call("Add")},
      {"torch.add", binary_call("Add")},
      {"_operator.sub", binary_call("Sub")},
      {"torch.sub", binary_call("Sub")},
      {"_operator.mul", binary_call("Mul")},
      {"torch.mul", binary_call("Mul")},
      {"_operator.truediv", binary_call("Div")},
      {"torch.div", binary_call("Div")},
      {"torch.cat", translate_cat},
      {"torch.transpose", translate_transpose},
      {"torch.permute", translate_permute},
      {"torch.reshape", translate_reshape},
  };
  return t;
}

const std::map<std::string, CallTranslator>& method_table() {
  static const std::map<std::string, CallTranslator> t = {
      {"relu", activation_call("relu")},
      {"tanh", activation_call("tanh")},
      {"sigmoid", activation_call("sigmoid")},
      {"softmax", softmax_call(false)},
      {"log_softmax", softmax_call(true)},
      {"flatten", flatten_call(0)},
      {"add", binary_call("Add")},
      {"sub", binary_call("Sub")},
      {"mul", binary_call("Mul")},
      {"div", binary_call("Div")},
      {"transpose", translate_transpose},
      {"permute", translate_permute},
      {"view", translate_reshape},
      {"contiguous", [](const FxNode& n) { n.emit("Identity", {n.value_arg(0)}); }},  // IR values are always contiguous
      {"reshape", translate_reshape},
  };
  return t;
}

// ------------------------------------------------------------------ the graph

void collect_outputs(const JsonRef& a, std::vector<std::string>& out) {
  if (a.is_array()) {
    for (const JsonRef& e : a.items()) collect_outputs(e, out);
  } else {
    out.push_back(FxNode::node_ref(a));
  }
}

class PytorchDialect : public Dialect {
 public:
  std::string planet() const override { return "pytorch"; }
  std::string version() const override { return "0.1.0"; }

  std::vector<std::string> source_types() const override {
    std::vector<std::string> out;
    for (const auto& kv : module_table()) out.push_back(kv.first);
    for (const auto& kv : function_table()) out.push_back(kv.first);
    for (const auto& kv : method_table()) out.push_back("Tensor." + kv.first);
    return out;
  }

  CaptureCommand capture() const override {
    return serve_command("PLANETBRIDGE_PYTHON", "/usr/bin/python3", std::string(PB_PLUGIN_SOURCE_DIR) + "/capture/capture.py");
  }

  ir::Graph decode(const Stream& stream) const override {
    JsonRef model = model_of(stream, "torch.fx");
    std::optional<JsonRef> modules = model.find("modules");

    ir::Graph g;
    g.metadata = stream_metadata(stream);
    size_t placeholder_index = 0;
    bool have_output = false;
    for (const JsonRef& node : model["graph"].items()) {
      FxNode n(stream, node, g);
      const std::string op = node["op"].str();
      JsonRef target = node["target"];
      if (op == "placeholder") {
        if (placeholder_index >= stream.inputs.size())
          node.fail("placeholder \"" + n.name() + "\" has no matching entry in the stream's \"inputs\"");
        const Tensor& t = stream.tensor(stream.inputs[placeholder_index], "inputs");
        Shape shape = t.shape();
        if (!shape.empty()) shape[0] = -1;  // batch: fixed when compiled
        g.inputs.push_back({n.name(), t.dtype() == DType::f64 ? DType::f32 : t.dtype(), shape});
        ++placeholder_index;
      } else if (op == "call_module") {
        const std::string path = target.str();
        if (!modules || !modules->has(path)) target.fail("module \"" + path + "\" is not in model.modules");
        JsonRef module = (*modules)[path];
        const std::string type = module["type"].str();
        auto tr = module_table().find(type);
        if (tr == module_table().end())
          node.fail("unsupported module type \"" + type + "\" (module \"" + path + "\")");
        n.set_origin("fx:" + n.name() + " (" + type + ")");
        tr->second(n, module, n.value_arg(0));
      } else if (op == "call_function" || op == "call_method") {
        const auto& table = op == "call_function" ? function_table() : method_table();
        const std::string name = target.str();
        auto tr = table.find(name);
        if (tr == table.end()) node.fail("unsupported " + std::string(op == "call_function" ? "function" : "method") + " \"" + name + "\"");
        n.set_origin("fx:" + n.name() + " (" + name + ")");
        tr->second(n);
      } else if (op == "get_attr") {
        // A parameter or buffer read directly (not through a module): a constant named after
        // the fx node, from the tensor the capture stored under the target.
        g.weights[n.name()] = stream.tensor(target.str(), target.path()).cast(DType::f32);
      } else if (op == "output") {
        auto a = n.arg(0);
        if (!a) node.fail("output node has no argument");
        collect_outputs(*a, g.outputs);
        have_output = true;
      } else {
        node["op"].fail("unsupported fx op \"" + op + "\"");
      }
    }
    if (placeholder_index != stream.inputs.size())
      model["graph"].fail("has " + std::to_string(placeholder_index) + " placeholders, the stream has " +
                          std::to_string(stream.inputs.size()) + " inputs");
    if (!have_output) model["graph"].fail("has no output node");
    if (g.outputs.size() != stream.expected.size())
      model["graph"].fail("the output node returns " + std::to_string(g.outputs.size()) + " values, the stream has " +
                          std::to_string(stream.expected.size()) + " expected outputs");
    g.validate();
    return g;
  }
};

}  // namespace
}  // namespace pb::pytorch

PLANETBRIDGE_DIALECT(pb::pytorch::PytorchDialect)
