// TensorFlow dialect: a Keras model config (tfjs LayersModel.toJSON, Python Keras 2 or 3
// model.to_json) plus a weight table -> IR (docs/planets/tensorflow.md).
// One translator per Keras layer class, registered in one table; activations by name in another.
#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "planetbridge/decoder.h"
#include "planetbridge/plugin.h"

namespace pb::tensorflow {

namespace {

// Where a value's channels sit. Keras is channels-last ([N, spatial..., C]); the IR's spatial ops
// are channels-first ([N, C, spatial...]). Values of rank < 3 have one form only.
enum class Layout { last, first };

// One Keras tensor. Its channels-last form is the IR value named after the layer (so taps, which
// hold Keras's channels-last values, line up); its channels-first form is "<name>/cf". A layer
// computes one form; the other is made by an explicit Transpose the first time something needs it.
struct Value {
  Shape shape;            // Keras layout; dim 0 (batch) is -1
  DType dtype = DType::f32;
  std::string origin;     // the producing layer, for the layout nodes
  bool last = false, first = false;  // which forms exist
};

std::string first_name(const std::string& v) { return v + "/cf"; }

// State shared by every layer of one decode.
struct Model {
  const Stream& stream;
  ir::Graph& graph;
  std::optional<JsonRef> weights;  // model.weights: {layer name: {short name: tensor name}}
  std::string keras_version;       // "tfjs-layers 4.22.0", "2.15.0", "3.3.3", or "" when absent
  std::set<std::string> translated;  // layer names
  std::map<std::string, Value> values;  // by the name of the channels-last form

  // The IR value holding `v` in layout `want`, adding the Transpose on first use.
  std::string as(const std::string& v, Layout want) {
    Value& val = values.at(v);
    const size_t rank = val.shape.size();
    if (rank < 3) return v;
    if (want == Layout::last && !val.last) {
      add_node(graph, v, "Transpose", {first_name(v)}, attrs_of({{"perm", channels_last_perm(rank)}}), val.origin);
      val.last = true;
    } else if (want == Layout::first && !val.first) {
      add_node(graph, first_name(v), "Transpose", {v}, attrs_of({{"perm", channels_first_perm(rank)}}), val.origin);
      val.first = true;
    }
    return want == Layout::last ? v : first_name(v);
  }
};

// A tensor as f32 (the IR computes in f32).
Tensor f32(const Tensor& t) { return t.dtype() == DType::f32 ? t : t.cast(DType::f32); }

Tensor filled(const Shape& shape, float v) {
  Tensor t(DType::f32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = v;
  return t;
}

// One application of a Keras layer: what its translator needs.
class Layer {
 public:
  Layer(Model& model, JsonRef json, std::string name, std::string out)
      : model_(model), json_(json), name_(std::move(name)), out_(std::move(out)) {
    class_ = json["class_name"].str();
  }

  const std::string& name() const { return name_; }
  const std::string& class_name() const { return class_; }
  JsonRef json() const { return json_; }
  JsonRef config() const { return json_["config"]; }
  const Model& model() const { return model_; }
  // The name of this application's value (the layer name, so taps line up).
  const std::string& out() const { return out_; }
  std::string origin() const { return "keras:" + name_ + " (" + class_ + ")"; }
  [[noreturn]] void fail(const std::string& msg) const { json_.fail(msg); }

  // ---- inputs
  const Value& value(const std::string& v) const { return model_.values.at(v); }
  const Shape& shape(const std::string& v) const { return value(v).shape; }
  std::string as(const std::string& v, Layout l) const { return model_.as(v, l); }

  // ---- the output
  // Declares this application's value (shape in Keras layout) and returns the IR name the node
  // computing it must carry: out() when computed channels-last, out() + "/cf" when channels-first.
  std::string define(Shape shape, Layout layout, DType dtype = DType::f32) const {
    if (defined_) fail("internal: " + class_ + " defined its output twice");
    defined_ = true;
    Value v{std::move(shape), dtype, origin()};
    const bool first = layout == Layout::first && v.shape.size() >= 3;
    (first ? v.first : v.last) = true;
    model_.values[out_] = v;
    return first ? first_name(out_) : out_;
  }
  bool defined() const { return defined_; }

  // ---- weights
  // model.weights[layer][short]: the entry naming the stream tensor.
  JsonRef weight_ref(const std::string& short_name) const {
    if (!model_.weights) json_.fail(class_ + " layer \"" + name_ + "\" needs weight \"" + short_name + "\", but the model has no \"weights\" table");
    auto table = layer_weights();
    if (!table) model_.weights->fail("no entry for layer \"" + name_ + "\" (" + class_ + " needs \"" + short_name + "\")");
    auto ref = table->find(short_name);
    if (!ref) table->fail("layer \"" + name_ + "\" (" + class_ + ") has no \"" + short_name + "\" weight");
    used_.insert(short_name);
    return *ref;
  }
  bool has_weight(const std::string& short_name) const {
    auto table = layer_weights();
    return table && table->has(short_name);
  }
  const Tensor& tensor(const JsonRef& ref) const { return model_.stream.tensor(ref.str(), ref.path()); }
  // A float weight of exactly `want` (Keras layout, described by `layout` in errors), as f32.
  std::pair<JsonRef, Tensor> weight(const std::string& short_name, const Shape& want, const std::string& layout) const {
    JsonRef ref = weight_ref(short_name);
    const Tensor& t = tensor(ref);
    if (!is_float(t.dtype()) || t.shape() != want)
      ref.fail("expected a float " + short_name + " of shape " + layout + " = " + shape_str(want) + " for " + class_ + " \"" + name_ +
               "\", got " + dtype_name(t.dtype()) + " " + shape_str(t.shape()));
    return {ref, f32(t)};
  }
  // Weights the table lists for this layer that no translator used: never silently dropped.
  void check_all_weights_used() const {
    auto table = layer_weights();
    if (!table) return;
    for (const std::string& k : table->keys())
      if (!used_.count(k)) (*table)[k].fail("weight \"" + k + "\" is not used by " + class_ + " (this configuration of the layer has no such weight)");
  }

  // Adds an IR node computing `name` (default out()).
  void emit(const std::string& op, std::vector<std::string> inputs, ir::Attrs attrs = {}, const std::string& name = "") const {
    add_node(model_.graph, name.empty() ? out_ : name, op, std::move(inputs), std::move(attrs), origin());
  }

  std::string add_weight(const std::string& name, const Tensor& t) const {
    model_.graph.weights.emplace(name, t);
    return name;
  }
  // A constant the Keras layer implies but the stream has no tensor for (gamma of scale=False).
  std::string constant(const std::string& what, const Tensor& t) const {
    const std::string name = out_ + "/" + what;
    if (model_.stream.tensors.count(name) || model_.graph.weights.count(name))
      fail("the constant \"" + name + "\" that " + class_ + " needs clashes with a stream tensor of that name");
    model_.graph.weights.emplace(name, t);
    return name;
  }

 private:
  std::optional<JsonRef> layer_weights() const { return model_.weights ? model_.weights->find(name_) : std::nullopt; }

  Model& model_;
  JsonRef json_;
  std::string name_, out_, class_;
  mutable std::set<std::string> used_;
  mutable bool defined_ = false;
};

// ------------------------------------------------------------------ activations

// A Keras activation as IR: an Activation function (fusable into Dense) or a Softmax.
struct Act {
  std::string function;  // IR activation function; "" for softmax
  ir::Attrs params;      // alpha / beta
  bool softmax = false, log = false;
};

bool keras3(const Model& m) { return m.keras_version.rfind("3.", 0) == 0; }

using ActFn = std::function<Act(const Model&, const JsonRef& where)>;

ActFn fn(const std::string& function, AttrList params = {}) {
  ir::Attrs p = attrs_of(params);
  return [function, p](const Model&, const JsonRef&) { return Act{function, p}; };
}

ActFn softmax_act(bool log) {
  return [log](const Model&, const JsonRef&) { return Act{"", {}, true, log}; };
}

// tfjs and Keras 2: clip(0.2x + 0.5, 0, 1); Keras 3: relu6(x + 3) / 6 = clip(x/6 + 0.5, 0, 1).
Act hard_sigmoid(const Model& m, const JsonRef& where) {
  if (m.keras_version.empty())
    where.fail("hard_sigmoid differs between Keras 2 (slope 0.2) and Keras 3 (slope 1/6); the model config needs \"keras_version\"");
  return Act{"hard_sigmoid", attrs_of({{"alpha", keras3(m) ? 1.0 / 6.0 : 0.2}, {"beta", 0.5}})};
}

// Activation names as tfjs and Python Keras 2/3 serialise them.
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

Act keras_activation(const Model& m, const JsonRef& a) {
  if (!a.is_string()) a.fail("expected an activation name, got " + a.raw().dump());
  const std::string name = a.str();
  auto it = activation_table().find(name);
  if (it != activation_table().end()) return it->second(m, a);
  if (name == "softsign") a.fail("activation \"softsign\" has no IR function yet");
  std::string known;
  for (const auto& kv : activation_table()) known += (known.empty() ? "" : ", ") + kv.first;
  a.fail("unknown activation \"" + name + "\" (known: " + known + ")");
}

// Element-wise layers compute in whichever layout their inputs already have: channels-first when
// every input has that form and all shapes agree (a chain of spatial layers stays channels-first).
Layout common_layout(const Layer& L, const std::vector<std::string>& in) {
  for (const std::string& v : in) {
    const Value& val = L.value(v);
    if (val.shape.size() < 3 || !val.first || val.shape != L.shape(in[0])) return Layout::last;
  }
  return Layout::first;
}

ir::Attrs softmax_attrs(int64_t axis, bool log) { return attrs_of({{"axis", axis}, {"log", int64_t(log)}}); }

// The layer's output as `act(x)`: an Activation (either layout) or a Softmax over Keras's last axis.
void emit_act(const Layer& L, const std::string& x, const Act& act) {
  const Shape& shape = L.shape(x);
  if (act.softmax) return L.emit("Softmax", {L.as(x, Layout::last)}, softmax_attrs(-1, act.log), L.define(shape, Layout::last));
  const Layout layout = common_layout(L, {x});
  ir::Attrs a = act.params;
  a.set("function", act.function);
  L.emit("Activation", {L.as(x, layout)}, std::move(a), L.define(shape, layout));
}

// ------------------------------------------------------------------ layers

using Inputs = std::vector<std::string>;  // Keras values (names of their channels-last forms)
using LayerTranslator = std::function<void(const Layer&, const Inputs&)>;

const std::string& one_input(const Layer& L, const Inputs& in) {
  if (in.size() != 1) L.fail(L.class_name() + " takes one input, got " + std::to_string(in.size()));
  return in[0];
}

int64_t product(const Shape& s, size_t from) {
  int64_t n = 1;
  for (size_t d = from; d < s.size(); ++d) n *= s[d];
  return n;
}

// Keras Dense kernel is [in, units]; the IR wants [out, in]. Transposed by an explicit copy here,
// from the layout Keras defines, never from the shape (a square kernel looks the same both ways).
Tensor transpose_kernel(const Tensor& kernel) { return permuted(f32(kernel), {1, 0}); }

void translate_dense(const Layer& L, const Inputs& in) {
  const std::string& x = one_input(L, in);
  JsonRef c = L.config();
  const int64_t units = c["units"].i64();
  if (auto lora = c.find("lora_rank"); lora && lora->i64() != 0) lora->fail("LoRA-adapted Dense is not supported");
  auto activation = c.find("activation");
  const Act act = activation ? keras_activation(L.model(), *activation) : Act{"identity", {}};

  JsonRef kref = L.weight_ref("kernel");
  const Tensor& kernel = L.tensor(kref);
  if (!is_float(kernel.dtype()) || kernel.shape().size() != 2 || kernel.shape()[1] != units)
    kref.fail("expected a float kernel of shape [in, units] = [*, " + std::to_string(units) + "] for Dense \"" + L.name() + "\", got " +
              dtype_name(kernel.dtype()) + " " + shape_str(kernel.shape()));
  Shape shape = L.shape(x);  // Dense acts on Keras's last axis
  if (shape.size() < 2 || shape.back() != kernel.shape()[0])
    kref.fail("kernel " + shape_str(kernel.shape()) + " of Dense \"" + L.name() + "\" does not fit its input " + shape_str(shape));
  shape.back() = units;
  // Kept under the stream tensor's name, now in the IR layout [units, in].
  std::vector<std::string> inputs = {L.as(x, Layout::last), L.add_weight(kref.str(), transpose_kernel(kernel))};
  if (c.boolean("use_bias", true)) {
    JsonRef bref = L.weight_ref("bias");
    const Tensor& bias = L.tensor(bref);
    if (!is_float(bias.dtype()) || bias.shape() != Shape{units})
      bref.fail("expected a float bias of shape [" + std::to_string(units) + "] for Dense \"" + L.name() + "\", got " +
                dtype_name(bias.dtype()) + " " + shape_str(bias.shape()));
    inputs.push_back(L.add_weight(bref.str(), f32(bias)));
  }
  ir::Attrs a;
  if (act.softmax) {
    // Softmax is not an element-wise post-op: a separate node after the Dense.
    L.emit("Dense", inputs, std::move(a), L.out() + "/linear");
    return L.emit("Softmax", {L.out() + "/linear"}, softmax_attrs(-1, act.log), L.define(shape, Layout::last));
  }
  for (const auto& [k, v] : act.params.all()) a.set(k, v);
  a.set("activation", act.function);
  L.emit("Dense", inputs, std::move(a), L.define(shape, Layout::last));
}

LayerTranslator identity_layer() {
  return [](const Layer& L, const Inputs& in) {
    const std::string& x = one_input(L, in);
    const Layout layout = common_layout(L, in);
    L.emit("Identity", {L.as(x, layout)}, {}, L.define(L.shape(x), layout));
  };
}

// numpy broadcasting of Keras shapes (batch -1 matches anything).
Shape broadcast(const Layer& L, const Inputs& in) {
  Shape out;
  for (const std::string& v : in) {
    const Shape& s = L.shape(v);
    if (s.size() > out.size()) out.insert(out.begin(), s.size() - out.size(), 1);
    for (size_t i = 0; i < s.size(); ++i) {
      int64_t& o = out[out.size() - s.size() + i];
      const int64_t d = s[i];
      if (o == 1 || o == d) o = d;
      else if (d != 1 && !(o == -1 || d == -1)) L.fail(L.class_name() + " cannot broadcast its input shapes (" + shape_str(L.shape(in[0])) + ", " + shape_str(s) + ")");
    }
  }
  return out;
}

// Merge layers: Add/Multiply fold any number of inputs pairwise (`<value>/1`, ... then the value).
LayerTranslator fold_merge(const std::string& op, bool exactly_two = false) {
  return [op, exactly_two](const Layer& L, const Inputs& in) {
    if (exactly_two && in.size() != 2) L.fail(L.class_name() + " takes exactly two inputs, got " + std::to_string(in.size()));
    if (in.size() < 2) L.fail(L.class_name() + " needs at least two inputs, got " + std::to_string(in.size()));
    const Layout layout = common_layout(L, in);
    const std::string y = L.define(broadcast(L, in), layout);
    std::string acc = L.as(in[0], layout);
    for (size_t i = 1; i < in.size(); ++i) {
      const std::string name = i + 1 < in.size() ? y + "/" + std::to_string(i) : y;
      L.emit(op, {acc, L.as(in[i], layout)}, {}, name);
      acc = name;
    }
  };
}

void translate_relu_layer(const Layer& L, const Inputs& in) {
  JsonRef c = L.config();
  const double slope = c.f64("negative_slope", 0.0), threshold = c.f64("threshold", 0.0);
  auto max_value = c.find("max_value");
  if (threshold != 0.0) c["threshold"].fail("ReLU with a non-zero threshold has no IR function");
  Act act;
  if (!max_value && slope == 0.0) act = {"relu", {}};
  else if (!max_value) act = {"leaky_relu", attrs_of({{"alpha", slope}})};
  else if (slope == 0.0 && max_value->f64() == 6.0) act = {"relu6", {}};
  else max_value->fail("ReLU with max_value " + max_value->raw().dump() + " (and negative_slope " + std::to_string(slope) + ") has no IR function; only max_value 6 is supported");
  emit_act(L, one_input(L, in), act);
}

void translate_reshape(const Layer& L, const Inputs& in) {
  const std::string& x = one_input(L, in);
  JsonRef target = L.config()["target_shape"];
  // target_shape excludes the batch dimension; IR 0 copies it.
  std::vector<int64_t> attr = {0};
  Shape shape = {-1};
  int64_t known = 1, infer = -1;
  for (int64_t d : target.ints()) {
    attr.push_back(d);
    if (d == -1 && infer < 0) infer = int64_t(shape.size());
    else if (d <= 0) target.fail("expected positive sizes and at most one -1, got " + target.raw().dump());
    else known *= d;
    shape.push_back(d);
  }
  const int64_t n = product(L.shape(x), 1);
  if (infer >= 0) shape[infer] = n / known;
  if (product(shape, 1) != n) target.fail("cannot reshape " + shape_str(L.shape(x)) + " to " + target.raw().dump());
  L.emit("Reshape", {L.as(x, Layout::last)}, attrs_of({{"shape", attr}}), L.define(shape, Layout::last));
}

void translate_concatenate(const Layer& L, const Inputs& in) {
  if (in.size() < 2) L.fail("Concatenate needs at least two inputs, got " + std::to_string(in.size()));
  const int64_t axis = L.config().i64("axis", -1);  // the batch axis counts, as in Keras
  Shape shape = L.shape(in[0]);
  const int64_t rank = int64_t(shape.size()), a = axis < 0 ? axis + rank : axis;
  if (a <= 0 || a >= rank) L.config()["axis"].fail("axis " + std::to_string(axis) + " is not a feature axis of " + shape_str(shape));
  std::vector<std::string> xs;
  for (size_t i = 0; i < in.size(); ++i) {
    if (i) shape[a] += L.shape(in[i])[a];
    xs.push_back(L.as(in[i], Layout::last));
  }
  L.emit("Concat", xs, attrs_of({{"axis", axis}}), L.define(shape, Layout::last));
}

// ------------------------------------------------------------------ spatial layers
// Channels-last in Keras, channels-first in the IR: each reads its input's channels-first form
// and computes its output channels-first; Keras-layout values appear only where used (Flatten,
// Dense, outputs, taps). data_format "channels_first" is refused (tfjs's wasm backend has none).

// An int or a list of `rank` ints (Keras writes kernel_size 3 or [3, 3]).
std::vector<int64_t> per_dim(const JsonRef& v, size_t rank) { return int_or_list(v, rank); }

std::vector<int64_t> per_dim(const JsonRef& config, const std::string& key, size_t rank, int64_t fallback) {
  auto v = config.find(key);
  return v ? int_or_list(*v, rank) : std::vector<int64_t>(rank, fallback);
}

// The input of a layer over `rank` spatial dims: [N, spatial..., C], float.
const Shape& spatial_input(const Layer& L, const std::string& x, size_t rank) {
  if (auto df = L.config().find("data_format"); df && df->str() != "channels_last")
    df->fail("data_format \"" + df->str() + "\" is not supported (only channels_last)");
  const Value& v = L.value(x);
  if (v.shape.size() != rank + 2 || !is_float(v.dtype))
    L.fail(L.class_name() + " \"" + L.name() + "\" needs a float input [batch, " + std::to_string(rank) + " spatial dims, channels], got " +
           dtype_name(v.dtype) + " " + shape_str(v.shape));
  return v.shape;
}

// Pads and output size per spatial dim for a Keras `padding`: "valid" none; "same" out = ceil(in / s)
// with total = max((out - 1)·s + (k - 1)·d + 1 - in, 0) split total/2 before and the rest after
// (TF's rule, which tfjs follows: an odd pad goes at the end); "causal" (Conv1D) (k - 1)·d before.
struct Window {
  std::vector<int64_t> pads_begin, pads_end, out;
};

Window keras_window(const Layer& L, const JsonRef& padding, const Shape& in_shape, const std::vector<int64_t>& k,
                    const std::vector<int64_t>& s, const std::vector<int64_t>& d, bool causal_ok) {
  const std::string mode = padding.str();
  if (mode != "valid" && mode != "same" && !(causal_ok && mode == "causal"))
    padding.fail("expected \"valid\"" + std::string(causal_ok ? ", \"same\" or \"causal\"" : " or \"same\"") + ", got \"" + mode + "\"");
  Window w;
  for (size_t i = 0; i < k.size(); ++i) {
    const int64_t in = in_shape[i + 1], span = (k[i] - 1) * d[i] + 1;
    if (k[i] < 1 || s[i] < 1 || d[i] < 1) L.fail("kernel sizes, strides and dilation rates must be >= 1");
    int64_t pb = 0, pe = 0;
    if (mode == "same") {
      const int64_t total = same_padding_total(in, k[i], s[i], d[i]);
      pb = total / 2;
      pe = total - pb;
    } else if (mode == "causal") {
      pb = span - 1;
    }
    if (in + pb + pe < span)
      L.fail(L.class_name() + " \"" + L.name() + "\": spatial size " + std::to_string(in) + " is smaller than its window " + std::to_string(span));
    w.pads_begin.push_back(pb);
    w.pads_end.push_back(pe);
    w.out.push_back((in + pb + pe - span) / s[i] + 1);
  }
  return w;
}

// Keras conv kernel [k..., in/groups, out] -> IR [out, in/groups, k...], by an explicit copy.
Tensor conv_kernel(const Tensor& k) { return permuted(k, kernel_oi_first_perm(k.shape().size())); }

// Keras depthwise kernel [k..., C, M] -> IR grouped conv weight [C·M, 1, k...]. Keras's output
// channel c·M + m is input channel c times multiplier m: IR group c, its output m.
Tensor depthwise_kernel(const Tensor& k) {
  const Shape& ks = k.shape();
  const size_t r = ks.size();
  std::vector<int64_t> perm = {int64_t(r) - 2, int64_t(r) - 1};  // [C, M, k...]
  for (size_t d = 0; d + 2 < r; ++d) perm.push_back(int64_t(d));
  Shape ws = {ks[r - 2] * ks[r - 1], 1};
  ws.insert(ws.end(), ks.begin(), ks.end() - 2);
  return permuted(k, perm).reshaped(ws);
}

// Conv1D/2D/3D and DepthwiseConv2D: the kernel, optional bias and activation (fused into the Conv).
LayerTranslator conv_layer(size_t rank, bool depthwise) {
  return [rank, depthwise](const Layer& L, const Inputs& in) {
    const std::string& x = one_input(L, in);
    const Shape& xs = spatial_input(L, x, rank);
    JsonRef c = L.config();
    const int64_t cin = xs.back();
    const auto k = per_dim(c["kernel_size"], rank), s = per_dim(c, "strides", rank, 1), d = per_dim(c, "dilation_rate", rank, 1);
    int64_t groups = 1, out_c = 0;
    std::string kname = "kernel";
    Shape want(k.begin(), k.end());
    if (depthwise) {
      const int64_t mult = c.i64("depth_multiplier", 1);
      groups = cin;
      out_c = cin * mult;
      kname = L.has_weight("kernel") && !L.has_weight("depthwise_kernel") ? "kernel" : "depthwise_kernel";  // Keras 3 says "kernel"
      want.insert(want.end(), {cin, mult});
    } else {
      out_c = c["filters"].i64();
      groups = c.i64("groups", 1);  // Keras >= 2.3; tfjs has none
      if (groups < 1 || cin % groups || out_c % groups)
        c["groups"].fail(std::to_string(groups) + " groups do not divide " + std::to_string(cin) + " input channels and " + std::to_string(out_c) + " filters");
      want.insert(want.end(), {cin / groups, out_c});
    }
    auto [kref, kernel] = L.weight(kname, want, depthwise ? "[kernel..., channels, depth_multiplier]" : "[kernel..., in_channels/groups, filters]");
    // Kept under the stream tensor's name, now in the IR layout [out, in/groups, k...].
    std::vector<std::string> inputs = {L.as(x, Layout::first), L.add_weight(kref.str(), depthwise ? depthwise_kernel(kernel) : conv_kernel(kernel))};
    if (c.boolean("use_bias", true)) {
      auto [bref, bias] = L.weight("bias", {out_c}, "[out_channels]");
      inputs.push_back(L.add_weight(bref.str(), bias));
    }
    const Window w = keras_window(L, c["padding"], xs, k, s, d, rank == 1 && !depthwise);
    ir::Attrs a = window_attrs(s, d, w.pads_begin, w.pads_end);
    a.set("groups", groups);
    if (auto activation = c.find("activation")) {
      const Act act = keras_activation(L.model(), *activation);
      if (act.softmax) activation->fail("a softmax activation inside a convolution is not supported; use a Softmax layer");
      for (const auto& [key, v] : act.params.all()) a.set(key, v);
      a.set("activation", act.function);
    }
    Shape ys = {-1};
    ys.insert(ys.end(), w.out.begin(), w.out.end());
    ys.push_back(out_c);
    L.emit("Conv", inputs, std::move(a), L.define(ys, Layout::first));
  };
}

// MaxPooling / AveragePooling 1D-3D. Keras never counts padding in an average ("same" averages
// only the real elements: count_include_pad 0); max pooling ignores it.
LayerTranslator pool_layer(size_t rank, const std::string& mode) {
  return [rank, mode](const Layer& L, const Inputs& in) {
    const std::string& x = one_input(L, in);
    const Shape& xs = spatial_input(L, x, rank);
    JsonRef c = L.config();
    const auto k = per_dim(c["pool_size"], rank);
    const auto s = c.has("strides") ? per_dim(c["strides"], rank) : k;  // null: the pool size
    const std::vector<int64_t> d(rank, 1);
    const Window w = keras_window(L, c["padding"], xs, k, s, d, false);
    ir::Attrs a = window_attrs(s, d, w.pads_begin, w.pads_end);
    a.set("mode", mode);
    a.set("kernel", k);
    a.set("count_include_pad", int64_t(0));
    Shape ys = {-1};
    ys.insert(ys.end(), w.out.begin(), w.out.end());
    ys.push_back(xs.back());
    L.emit("Pool", {L.as(x, Layout::first)}, std::move(a), L.define(ys, Layout::first));
  };
}

// GlobalAverage/MaxPooling 1D-3D: a global Pool, then Flatten to Keras's [N, C].
LayerTranslator global_pool_layer(size_t rank, const std::string& mode) {
  return [rank, mode](const Layer& L, const Inputs& in) {
    const std::string& x = one_input(L, in);
    const Shape& xs = spatial_input(L, x, rank);
    if (auto keep = L.config().find("keepdims"); keep && keep->boolean())
      keep->fail("keepdims true is not supported (the output would keep Keras's [N, 1..., C] layout)");
    L.emit("Pool", {L.as(x, Layout::first)}, attrs_of({{"mode", mode}, {"global", int64_t(1)}}), L.out() + "/pool");
    L.emit("Flatten", {L.out() + "/pool"}, attrs_of({{"start", int64_t(1)}, {"end", int64_t(-1)}}), L.define({-1, xs.back()}, Layout::last));
  };
}

// ZeroPadding1D/2D/3D as a depthwise 1x1 Conv with weight 1 and the pads: exactly x, zeros
// around (the IR has no Pad op). padding: n, [a, b] (one pair in 1D, per dim in 2D/3D) or
// [[before, after], ...].
LayerTranslator zero_padding_layer(size_t rank) {
  return [rank](const Layer& L, const Inputs& in) {
    const std::string& x = one_input(L, in);
    const Shape& xs = spatial_input(L, x, rank);
    JsonRef p = L.config()["padding"];
    Window w;
    auto bad = [&]() { p.fail("expected an integer, " + std::string(rank == 1 ? "[before, after]" : "one integer per dim") + " or [[before, after] per dim], got " + p.raw().dump()); };
    if (p.is_number()) {
      w.pads_begin = w.pads_end = std::vector<int64_t>(rank, p.i64());
    } else if (rank == 1 && p.is_array() && p.size() == 2 && p[0].is_number()) {
      w.pads_begin = {p[0].i64()};
      w.pads_end = {p[1].i64()};
    } else if (p.is_array() && p.size() == rank) {
      for (const JsonRef& e : p.items()) {
        if (e.is_number()) {
          w.pads_begin.push_back(e.i64());
          w.pads_end.push_back(e.i64());
        } else if (e.is_array() && e.size() == 2) {
          w.pads_begin.push_back(e[0].i64());
          w.pads_end.push_back(e[1].i64());
        } else {
          bad();
        }
      }
    } else {
      bad();
    }
    Shape ys = xs;
    for (size_t i = 0; i < rank; ++i) {
      if (w.pads_begin[i] < 0 || w.pads_end[i] < 0) bad();
      ys[i + 1] += w.pads_begin[i] + w.pads_end[i];
    }
    const int64_t ch = xs.back();
    Shape ones_shape = {ch, 1};
    ones_shape.insert(ones_shape.end(), rank, 1);
    ir::Attrs a = window_attrs(std::vector<int64_t>(rank, 1), std::vector<int64_t>(rank, 1), w.pads_begin, w.pads_end);
    a.set("groups", ch);
    L.emit("Conv", {L.as(x, Layout::first), L.constant("weight=1", filled(ones_shape, 1.f))}, std::move(a), L.define(ys, Layout::first));
  };
}

// Keras axis settings (an int or a list; negative counts from the end) as sorted positive axes.
std::vector<int64_t> keras_axes(const JsonRef& axis, size_t rank) {
  std::vector<int64_t> out = axis.is_array() ? axis.ints() : std::vector<int64_t>{axis.i64()};
  for (int64_t& a : out) {
    if (a < 0) a += int64_t(rank);
    if (a <= 0 || a >= int64_t(rank)) axis.fail("axis " + axis.raw().dump() + " is not a feature axis of a rank-" + std::to_string(rank) + " input");
  }
  std::sort(out.begin(), out.end());
  return out;
}

// BatchNormalization (inference: moving statistics) over the channels axis; the IR normalises
// axis 1, so inputs of rank >= 3 are read channels-first. center/scale False: beta 0 / gamma 1.
void translate_batchnorm(const Layer& L, const Inputs& in) {
  const std::string& x = one_input(L, in);
  const Shape& xs = L.shape(x);
  JsonRef c = L.config();
  if (xs.size() < 2 || !is_float(L.value(x).dtype)) L.fail("BatchNormalization needs a float input of rank >= 2, got " + shape_str(xs));
  if (keras_axes(c["axis"], xs.size()) != std::vector<int64_t>{int64_t(xs.size()) - 1})
    c["axis"].fail("only the channels axis (-1) is supported, got " + c["axis"].raw().dump());
  const int64_t ch = xs.back();
  const Shape want = {ch};
  auto param = [&](const std::string& short_name, bool present, float fallback) {
    if (!present) return L.constant(short_name + (fallback == 1.f ? "=1" : "=0"), filled(want, fallback));
    auto [ref, t] = L.weight(short_name, want, "[channels]");
    return L.add_weight(ref.str(), t);
  };
  const std::string gamma = param("gamma", c.boolean("scale", true), 1.f), beta = param("beta", c.boolean("center", true), 0.f);
  const std::string mean = param("moving_mean", true, 0.f), var = param("moving_variance", true, 1.f);
  const Layout layout = xs.size() >= 3 ? Layout::first : Layout::last;
  L.emit("BatchNorm", {L.as(x, layout), gamma, beta, mean, var}, attrs_of({{"eps", c["epsilon"].f64()}}), L.define(xs, layout));
}

// LayerNormalization over trailing axes (Keras's gamma/beta have those axes' shape).
void translate_layernorm(const Layer& L, const Inputs& in) {
  const std::string& x = one_input(L, in);
  const Shape& xs = L.shape(x);
  JsonRef c = L.config();
  if (c.boolean("rms_scaling", false)) c["rms_scaling"].fail("rms_scaling (Keras 3) is not supported");
  const std::vector<int64_t> axes = keras_axes(c["axis"], xs.size());
  for (size_t i = 0; i < axes.size(); ++i)
    if (axes[i] != int64_t(xs.size() - axes.size() + i))
      c["axis"].fail("only trailing axes are supported (the IR normalises from an axis to the end), got " + c["axis"].raw().dump());
  Shape want;
  for (int64_t a : axes) want.push_back(xs[a]);
  std::vector<std::string> inputs = {L.as(x, Layout::last), "", ""};
  if (c.boolean("scale", true)) {
    auto [ref, t] = L.weight("gamma", want, "[normalised dims]");
    inputs[1] = L.add_weight(ref.str(), t);
  }
  if (c.boolean("center", true)) {
    auto [ref, t] = L.weight("beta", want, "[normalised dims]");
    inputs[2] = L.add_weight(ref.str(), t);
  }
  L.emit("LayerNorm", inputs, attrs_of({{"axis", -int64_t(axes.size())}, {"eps", c["epsilon"].f64()}}), L.define(xs, Layout::last));
}

// The capture's composed RMSNorm (tfjs has no RMSNorm layer): x · rsqrt(mean(x², -1) + epsilon) · scale.
void translate_rmsnorm(const Layer& L, const Inputs& in) {
  const std::string& x = one_input(L, in);
  const Shape& xs = L.shape(x);
  JsonRef c = L.config();
  if (keras_axes(c["axis"], xs.size()) != std::vector<int64_t>{int64_t(xs.size()) - 1})
    c["axis"].fail("only the last axis (-1) is supported, got " + c["axis"].raw().dump());
  auto [ref, scale] = L.weight("scale", {xs.back()}, "[features]");
  L.emit("RMSNorm", {L.as(x, Layout::last), L.add_weight(ref.str(), scale)}, attrs_of({{"axis", int64_t(-1)}, {"eps", c["epsilon"].f64()}}),
         L.define(xs, Layout::last));
}

// Embedding: integer ids [N, ...] -> rows of embeddings [input_dim, output_dim].
void translate_embedding(const Layer& L, const Inputs& in) {
  const std::string& x = one_input(L, in);
  JsonRef c = L.config();
  // A mask would change what the layers after it compute (they skip masked steps).
  if (c.boolean("mask_zero", false)) c["mask_zero"].fail("mask_zero true is not supported");
  const Value& ids = L.value(x);
  if (ids.dtype != DType::i32 && ids.dtype != DType::i64)
    L.fail("Embedding \"" + L.name() + "\" takes integer ids; its input is " + dtype_name(ids.dtype) + " (send ids as int32)");
  const int64_t vocab = c["input_dim"].i64(), dim = c["output_dim"].i64();
  auto [ref, table] = L.weight("embeddings", {vocab, dim}, "[input_dim, output_dim]");
  Shape ys = ids.shape;
  ys.push_back(dim);
  L.emit("Embedding", {L.as(x, Layout::last), L.add_weight(ref.str(), table)}, {}, L.define(ys, Layout::last));
}

const std::map<std::string, LayerTranslator>& layer_table() {
  static const std::map<std::string, LayerTranslator> t = {
      {"Dense", translate_dense},
      {"Activation",
       [](const Layer& L, const Inputs& in) { emit_act(L, one_input(L, in), keras_activation(L.model(), L.config()["activation"])); }},
      {"ReLU", translate_relu_layer},
      {"LeakyReLU",
       [](const Layer& L, const Inputs& in) {
         // tfjs and Keras 2 call the slope "alpha" (default 0.3); Keras 3 "negative_slope".
         JsonRef c = L.config();
         const double alpha = c.has("negative_slope") ? c["negative_slope"].f64() : c.f64("alpha", 0.3);
         emit_act(L, one_input(L, in), {"leaky_relu", attrs_of({{"alpha", alpha}})});
       }},
      {"ELU",
       [](const Layer& L, const Inputs& in) {
         emit_act(L, one_input(L, in), {"elu", attrs_of({{"alpha", L.config().f64("alpha", 1.0)}})});
       }},
      {"Softmax",
       [](const Layer& L, const Inputs& in) {
         // Every writer states the axis (tfjs's default is 1, Keras's -1): no default assumed.
         const std::string& x = one_input(L, in);
         L.emit("Softmax", {L.as(x, Layout::last)}, softmax_attrs(L.config()["axis"].i64(), false), L.define(L.shape(x), Layout::last));
       }},
      // Inference-time identities (predict() never applies dropout or noise).
      {"Dropout", identity_layer()},
      {"SpatialDropout1D", identity_layer()},
      {"SpatialDropout2D", identity_layer()},
      {"SpatialDropout3D", identity_layer()},
      {"AlphaDropout", identity_layer()},
      {"GaussianDropout", identity_layer()},
      {"GaussianNoise", identity_layer()},
      {"Flatten",
       [](const Layer& L, const Inputs& in) {
         // channels_first makes Keras permute to channels-last before flattening.
         if (auto df = L.config().find("data_format"); df && df->str() == "channels_first")
           df->fail("Flatten with data_format \"channels_first\" is not supported");
         // Keras flattens its channels-last value (order H, W, C): never the channels-first form.
         const std::string& x = one_input(L, in);
         L.emit("Flatten", {L.as(x, Layout::last)}, attrs_of({{"start", int64_t(1)}, {"end", int64_t(-1)}}),
                L.define({-1, product(L.shape(x), 1)}, Layout::last));
       }},
      {"Reshape", translate_reshape},
      {"Add", fold_merge("Add")},
      {"Multiply", fold_merge("Mul")},
      {"Subtract", fold_merge("Sub", true)},  // Keras 2/3; tfjs has none
      {"Concatenate", translate_concatenate},
      {"Conv1D", conv_layer(1, false)},
      {"Conv2D", conv_layer(2, false)},
      {"Conv3D", conv_layer(3, false)},
      {"DepthwiseConv2D", conv_layer(2, true)},
      {"MaxPooling1D", pool_layer(1, "max")},
      {"MaxPooling2D", pool_layer(2, "max")},
      {"MaxPooling3D", pool_layer(3, "max")},
      {"AveragePooling1D", pool_layer(1, "avg")},
      {"AveragePooling2D", pool_layer(2, "avg")},
      {"AveragePooling3D", pool_layer(3, "avg")},
      {"GlobalAveragePooling1D", global_pool_layer(1, "avg")},
      {"GlobalAveragePooling2D", global_pool_layer(2, "avg")},
      {"GlobalAveragePooling3D", global_pool_layer(3, "avg")},
      {"GlobalMaxPooling1D", global_pool_layer(1, "max")},
      {"GlobalMaxPooling2D", global_pool_layer(2, "max")},
      {"GlobalMaxPooling3D", global_pool_layer(3, "max")},
      {"ZeroPadding1D", zero_padding_layer(1)},
      {"ZeroPadding2D", zero_padding_layer(2)},
      {"ZeroPadding3D", zero_padding_layer(3)},
      {"BatchNormalization", translate_batchnorm},
      {"LayerNormalization", translate_layernorm},
      {"RMSNorm", translate_rmsnorm},
      {"Embedding", translate_embedding},
  };
  return t;
}

void translate(Model& m, JsonRef layer_json, const std::string& name, const std::string& out, const Inputs& inputs) {
  Layer L(m, layer_json, name, out);
  auto tr = layer_table().find(L.class_name());
  if (tr == layer_table().end()) layer_json["class_name"].fail("unsupported layer class \"" + L.class_name() + "\" (layer \"" + name + "\")");
  tr->second(L, inputs);
  if (!L.defined()) L.fail("internal: the " + L.class_name() + " translator produced no output");
  // A tap holds Keras's channels-last value: make that form right here, so the tap is compared
  // with a value of its layout, in execution order (the first diverging node is the right one).
  if (m.stream.taps.count(out)) m.as(out, Layout::last);
  L.check_all_weights_used();
  m.translated.insert(name);
}

// ------------------------------------------------------------------ the graph

std::string layer_name(const JsonRef& layer) {
  if (auto n = layer.find("name")) return n->str();  // functional configs repeat it at top level
  return layer["config"]["name"].str();
}

// Declares graph input `i` (the stream's inputs[i]) as value `name`, after checking the shape
// the config states (batch_input_shape in tfjs/Keras 2, batch_shape in Keras 3), if any.
void add_input(Model& m, size_t i, const std::string& name, const std::optional<JsonRef>& config, const JsonRef& where) {
  if (i >= m.stream.inputs.size())
    where.fail("input \"" + name + "\" has no matching entry in the stream's \"inputs\" (" + std::to_string(m.stream.inputs.size()) + " given)");
  const Tensor& t = m.stream.tensor(m.stream.inputs[i], "inputs");
  Shape shape = t.shape();
  if (config) {
    auto declared = config->find("batch_input_shape");
    if (!declared) declared = config->find("batch_shape");
    if (declared) {
      auto dims = declared->items();
      bool ok = dims.size() == shape.size();
      for (size_t d = 1; ok && d < dims.size(); ++d) ok = dims[d].is_null() || dims[d].i64() == shape[d];
      if (!ok) declared->fail("the model expects " + declared->raw().dump() + ", the stream's input \"" + m.stream.inputs[i] + "\" is " + shape_str(shape));
    }
  }
  if (!shape.empty()) shape[0] = -1;  // batch: fixed when compiled
  const DType dtype = t.dtype() == DType::f64 ? DType::f32 : t.dtype();
  m.graph.inputs.push_back({name, dtype, shape});
  Value v{shape, dtype, "keras:" + name + " (InputLayer)"};
  v.last = true;  // Keras inputs are channels-last
  m.values[name] = v;
}

void decode_sequential(Model& m, const JsonRef& config) {
  JsonRef layers = config["layers"];
  if (layers.size() == 0) layers.fail("a Sequential model with no layers");
  if (m.stream.inputs.size() != 1) layers.fail("a Sequential model takes one input, the stream has " + std::to_string(m.stream.inputs.size()));
  size_t first = 0;
  std::string value;
  JsonRef l0 = layers[0];
  if (l0["class_name"].str() == "InputLayer") {
    value = layer_name(l0);
    add_input(m, 0, value, l0["config"], l0);
    first = 1;
  } else {
    value = layer_name(l0) + "_input";  // the name Keras gives the implicit input
    add_input(m, 0, value, l0["config"], l0);
  }
  for (size_t i = first; i < layers.size(); ++i) {
    JsonRef layer = layers[i];
    if (layer["class_name"].str() == "InputLayer") layer["class_name"].fail("InputLayer is only allowed as the first layer of a Sequential model");
    const std::string name = layer_name(layer);
    translate(m, layer, name, name, {value});
    value = name;
  }
  m.graph.outputs = {m.as(value, Layout::last)};
}

// A reference to a layer's output: (layer name, node index, tensor index).
struct TensorRef {
  std::string layer;
  int64_t node = 0, tensor = 0;
  std::string path;  // where it was written, for errors
};

TensorRef parse_ref(const JsonRef& r) {
  if (!r.is_array() || r.size() < 3 || !r[0].is_string()) r.fail("expected [layer name, node index, tensor index]");
  return {r[0].str(), r[1].i64(), r[2].i64(), r.path()};
}

// Keras 3 call arguments: keras tensors ({"class_name": "__keras_tensor__", "config": {"keras_history":
// [layer, node, tensor]}}), possibly inside lists (merge layers take a list).
void collect_keras3(const JsonRef& a, std::vector<TensorRef>& out) {
  if (a.is_array()) {
    for (const JsonRef& e : a.items()) collect_keras3(e, out);
  } else if (a.is_object() && a.str("class_name", "") == "__keras_tensor__") {
    out.push_back(parse_ref(a["config"]["keras_history"]));
  } else {
    a.fail("unsupported call argument " + a.raw().dump().substr(0, 80) + " (expected a keras tensor)");
  }
}

// One inbound node -> the tensors it consumes, in order. tfjs and Keras 2 write
// [[name, node, tensor, kwargs], ...]; Keras 3 writes {"args": [...], "kwargs": {...}}.
std::vector<TensorRef> inbound_refs(const JsonRef& node) {
  std::vector<TensorRef> refs;
  if (node.is_object()) {
    collect_keras3(node["args"], refs);
    if (auto kw = node.find("kwargs"); kw && !kw->keys().empty())
      kw->fail("call keyword arguments are not supported (they may change what the layer computes)");
    return refs;
  }
  for (const JsonRef& e : node.items()) {
    refs.push_back(parse_ref(e));
    if (e.size() > 3 && !e[3].is_null() && !e[3].keys().empty())
      e[3].fail("call keyword arguments are not supported (they may change what the layer computes)");
  }
  return refs;
}

// input_layers / output_layers: a list of refs, or (Keras 3, one tensor) a single ref.
std::vector<TensorRef> ref_list(const JsonRef& j) {
  if (j.is_array() && j.size() > 0 && j[0].is_string()) return {parse_ref(j)};
  std::vector<TensorRef> out;
  for (const JsonRef& e : j.items()) out.push_back(parse_ref(e));
  return out;
}

std::string value_key(const std::string& layer, int64_t node) { return layer + "#" + std::to_string(node); }

void decode_functional(Model& m, const JsonRef& config) {
  JsonRef layers = config["layers"];
  std::map<std::string, JsonRef> by_name;
  for (const JsonRef& l : layers.items())
    if (!by_name.emplace(layer_name(l), l).second) l.fail("duplicate layer name \"" + layer_name(l) + "\"");

  std::map<std::string, std::string> values;  // value_key(layer, node) -> Keras value
  JsonRef input_layers = config["input_layers"];
  std::vector<TensorRef> ins = ref_list(input_layers);
  if (ins.size() != m.stream.inputs.size())
    input_layers.fail("the model has " + std::to_string(ins.size()) + " inputs, the stream has " + std::to_string(m.stream.inputs.size()));
  for (size_t i = 0; i < ins.size(); ++i) {
    auto it = by_name.find(ins[i].layer);
    if (it == by_name.end() || it->second["class_name"].str() != "InputLayer")
      input_layers[i].fail("\"" + ins[i].layer + "\" is not an InputLayer of this model");
    add_input(m, i, ins[i].layer, it->second["config"], it->second);
    values[value_key(ins[i].layer, 0)] = ins[i].layer;
  }

  // Every (layer, inbound node) is one application. Config order is not always a topological
  // order of applications (a shared layer's later call), so translate whatever is ready, repeat.
  struct Pending {
    JsonRef layer;
    std::string name;
    int64_t node;
    std::vector<TensorRef> refs;
  };
  std::vector<Pending> pending;
  for (const JsonRef& l : layers.items()) {
    const std::string name = layer_name(l);
    if (l["class_name"].str() == "InputLayer") continue;
    auto nodes = l.find("inbound_nodes");
    if (!nodes || nodes->size() == 0) l.fail("layer \"" + name + "\" has no inbound_nodes (it is never called)");
    for (size_t k = 0; k < nodes->size(); ++k) pending.push_back({l, name, int64_t(k), inbound_refs((*nodes)[k])});
  }
  while (!pending.empty()) {
    std::vector<Pending> later;
    for (Pending& p : pending) {
      Inputs inputs;
      bool ready = true;
      for (const TensorRef& r : p.refs) {
        if (r.tensor != 0) throw Error(r.path, "tensor index " + std::to_string(r.tensor) + ": every supported layer has one output");
        auto v = values.find(value_key(r.layer, r.node));
        if (v == values.end()) ready = false;
        else inputs.push_back(v->second);
      }
      if (!ready) {
        later.push_back(std::move(p));
        continue;
      }
      // A shared layer's second call gets its own value name; its first keeps the layer name.
      const std::string out = p.node == 0 ? p.name : p.name + "@" + std::to_string(p.node);
      translate(m, p.layer, p.name, out, inputs);
      values[value_key(p.name, p.node)] = out;
    }
    if (later.size() == pending.size()) {
      const Pending& p = later.front();
      for (const TensorRef& r : p.refs)
        if (!values.count(value_key(r.layer, r.node)))
          throw Error(r.path, "refers to output " + std::to_string(r.node) + " of layer \"" + r.layer + "\", which no layer produces (unknown layer or a cycle)");
    }
    pending = std::move(later);
  }

  JsonRef output_layers = config["output_layers"];
  for (const TensorRef& r : ref_list(output_layers)) {
    auto v = values.find(value_key(r.layer, r.node));
    if (v == values.end()) throw Error(r.path, "names output " + std::to_string(r.node) + " of layer \"" + r.layer + "\", which no layer produces");
    m.graph.outputs.push_back(m.as(v->second, Layout::last));
  }
}

class TensorflowDialect : public Dialect {
 public:
  std::string planet() const override { return "tensorflow"; }
  std::string version() const override { return "0.1.0"; }

  std::vector<std::string> source_types() const override {
    std::vector<std::string> out = {"Sequential", "Functional", "Model", "InputLayer"};
    for (const auto& kv : layer_table()) out.push_back(kv.first);
    for (const auto& kv : activation_table()) out.push_back("activation:" + kv.first);
    return out;
  }

  CaptureCommand capture() const override {
    return serve_command("PLANETBRIDGE_NODE", "node", std::string(PB_PLUGIN_SOURCE_DIR) + "/capture/capture.js");
  }

  ir::Graph decode(const Stream& stream) const override {
    JsonRef model = model_of(stream, "keras");
    JsonRef topology = model["topology"];

    ir::Graph g;
    g.metadata = stream_metadata(stream);
    Model m{stream, g, model.find("weights"), topology.str("keras_version", ""), {}, {}};
    if (m.weights && !m.weights->is_object()) m.weights->fail("expected an object {layer name: {weight name: tensor name}}");

    JsonRef cls = topology["class_name"];
    const std::string kind = cls.str();
    if (kind == "Sequential") decode_sequential(m, topology["config"]);
    else if (kind == "Functional" || kind == "Model") decode_functional(m, topology["config"]);
    else cls.fail("unsupported model class \"" + kind + "\" (expected Sequential, Functional or Model)");

    // Every layer named in the weight table must exist (a typo would otherwise go unnoticed).
    if (m.weights) {
      for (const std::string& k : m.weights->keys())
        if (!m.translated.count(k)) (*m.weights)[k].fail("no layer \"" + k + "\" in the model uses these weights");
    }
    if (g.outputs.size() != stream.expected.size())
      topology.fail("the model has " + std::to_string(g.outputs.size()) + " outputs, the stream has " + std::to_string(stream.expected.size()) +
                    " expected outputs");
    g.validate();
    return g;
  }
};

}  // namespace
}  // namespace pb::tensorflow

PLANETBRIDGE_DIALECT(pb::tensorflow::TensorflowDialect)
