// TensorFlow dialect: a Keras model config (tfjs LayersModel.toJSON, Python Keras 2 or 3
// model.to_json) plus a weight table -> IR (docs/planets/tensorflow.md).
// One translator per Keras layer class, registered in one table; activations by name in another.
#include <cstdlib>
#include <functional>
#include <map>
#include <set>

#include "planetbridge/plugin.h"

namespace pb::tensorflow {

namespace {

using AttrList = std::initializer_list<std::pair<const std::string, ir::AttrValue>>;

ir::Attrs attrs_of(AttrList kv) {
  ir::Attrs a;
  for (const auto& [k, v] : kv) a.set(k, v);
  return a;
}

// State shared by every layer of one decode.
struct Model {
  const Stream& stream;
  ir::Graph& graph;
  std::optional<JsonRef> weights;  // model.weights: {layer name: {short name: tensor name}}
  std::string keras_version;       // "tfjs-layers 4.22.0", "2.15.0", "3.3.3", or "" when absent
  std::set<std::string> translated;  // layer names
};

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
  // The IR value this application produces (the layer name, so taps line up).
  const std::string& out() const { return out_; }
  [[noreturn]] void fail(const std::string& msg) const { json_.fail(msg); }

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
  const Tensor& tensor(const JsonRef& ref) const { return model_.stream.tensor(ref.str(), ref.path()); }
  // Weights the table lists for this layer that no translator used: never silently dropped.
  void check_all_weights_used() const {
    auto table = layer_weights();
    if (!table) return;
    for (const std::string& k : table->keys())
      if (!used_.count(k)) (*table)[k].fail("weight \"" + k + "\" is not used by " + class_ + " (this configuration of the layer has no such weight)");
  }

  // Adds an IR node; its output is out() + suffix.
  void emit(const std::string& op, std::vector<std::string> inputs, ir::Attrs attrs = {}, const std::string& suffix = "") const {
    ir::Node n;
    n.name = out_ + suffix;
    n.op = op;
    n.inputs = std::move(inputs);
    n.outputs = {n.name};
    n.attrs = std::move(attrs);
    n.origin = "keras:" + name_ + " (" + class_ + ")";
    model_.graph.nodes.push_back(std::move(n));
  }

  std::string add_weight(const std::string& name, const Tensor& t) const {
    model_.graph.weights.emplace(name, t);
    return name;
  }

 private:
  std::optional<JsonRef> layer_weights() const { return model_.weights ? model_.weights->find(name_) : std::nullopt; }

  Model& model_;
  JsonRef json_;
  std::string name_, out_, class_;
  mutable std::set<std::string> used_;
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

// The layer's output as `act(input)`: Activation or Softmax node named out() + suffix.
void emit_act(const Layer& L, const std::string& input, const Act& act, const std::string& suffix = "") {
  if (act.softmax) return L.emit("Softmax", {input}, attrs_of({{"axis", int64_t(-1)}, {"log", int64_t(act.log)}}), suffix);
  ir::Attrs a = act.params;
  a.set("function", act.function);
  L.emit("Activation", {input}, std::move(a), suffix);
}

// ------------------------------------------------------------------ layers

using Inputs = std::vector<std::string>;
using LayerTranslator = std::function<void(const Layer&, const Inputs&)>;

const std::string& one_input(const Layer& L, const Inputs& in) {
  if (in.size() != 1) L.fail(L.class_name() + " takes one input, got " + std::to_string(in.size()));
  return in[0];
}

// Keras Dense kernel is [in, units]; the IR wants [out, in]. Transposed by an explicit copy here,
// from the layout Keras defines, never from the shape (a square kernel looks the same both ways).
Tensor transpose_kernel(const Tensor& kernel) {
  Tensor k = kernel.dtype() == DType::f32 ? kernel : kernel.cast(DType::f32);
  const int64_t in = k.shape()[0], out = k.shape()[1];
  Tensor w(DType::f32, {out, in});
  const float* src = k.data<float>();
  float* dst = w.data<float>();
  for (int64_t i = 0; i < in; ++i)
    for (int64_t o = 0; o < out; ++o) dst[o * in + i] = src[i * out + o];
  return w;
}

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
  // Kept under the stream tensor's name, now in the IR layout [units, in].
  std::vector<std::string> inputs = {x, L.add_weight(kref.str(), transpose_kernel(kernel))};
  if (c.boolean("use_bias", true)) {
    JsonRef bref = L.weight_ref("bias");
    const Tensor& bias = L.tensor(bref);
    if (!is_float(bias.dtype()) || bias.shape() != Shape{units})
      bref.fail("expected a float bias of shape [" + std::to_string(units) + "] for Dense \"" + L.name() + "\", got " +
                dtype_name(bias.dtype()) + " " + shape_str(bias.shape()));
    inputs.push_back(L.add_weight(bref.str(), bias.dtype() == DType::f32 ? bias : bias.cast(DType::f32)));
  }
  ir::Attrs a = attrs_of({{"in_features", kernel.shape()[0]}, {"out_features", units}});
  if (act.softmax) {
    // Softmax is not an element-wise post-op: a separate node after the Dense.
    L.emit("Dense", inputs, std::move(a), "/linear");
    return emit_act(L, L.out() + "/linear", act);
  }
  for (const auto& [k, v] : act.params.all()) a.set(k, v);
  a.set("activation", act.function);
  L.emit("Dense", inputs, std::move(a));
}

LayerTranslator identity_layer() {
  return [](const Layer& L, const Inputs& in) { L.emit("Identity", {one_input(L, in)}); };
}

// Merge layers: Add/Multiply fold any number of inputs pairwise; Keras shapes broadcast as numpy.
LayerTranslator fold_merge(const std::string& op) {
  return [op](const Layer& L, const Inputs& in) {
    if (in.size() < 2) L.fail(L.class_name() + " needs at least two inputs, got " + std::to_string(in.size()));
    std::string acc = in[0];
    for (size_t i = 1; i < in.size(); ++i) {
      const std::string suffix = i + 1 < in.size() ? "/" + std::to_string(i) : "";
      L.emit(op, {acc, in[i]}, {}, suffix);
      acc = L.out() + suffix;
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
         L.emit("Softmax", {one_input(L, in)}, attrs_of({{"axis", L.config()["axis"].i64()}, {"log", int64_t(0)}}));
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
         L.emit("Flatten", {one_input(L, in)}, attrs_of({{"start", int64_t(1)}, {"end", int64_t(-1)}}));
       }},
      {"Reshape",
       [](const Layer& L, const Inputs& in) {
         // target_shape excludes the batch dimension; IR 0 copies it.
         std::vector<int64_t> shape = {0};
         for (int64_t d : L.config()["target_shape"].ints()) shape.push_back(d);
         L.emit("Reshape", {one_input(L, in)}, attrs_of({{"shape", shape}}));
       }},
      {"Add", fold_merge("Add")},
      {"Multiply", fold_merge("Mul")},
      {"Subtract",
       [](const Layer& L, const Inputs& in) {
         if (in.size() != 2) L.fail("Subtract takes exactly two inputs, got " + std::to_string(in.size()));
         L.emit("Sub", {in[0], in[1]});
       }},
      {"Concatenate",
       [](const Layer& L, const Inputs& in) {
         if (in.size() < 2) L.fail("Concatenate needs at least two inputs, got " + std::to_string(in.size()));
         L.emit("Concat", in, attrs_of({{"axis", L.config().i64("axis", -1)}}));
       }},
  };
  return t;
}

void translate(Model& m, JsonRef layer_json, const std::string& name, const std::string& out, const Inputs& inputs) {
  Layer L(m, layer_json, name, out);
  auto tr = layer_table().find(L.class_name());
  if (tr == layer_table().end()) layer_json["class_name"].fail("unsupported layer class \"" + L.class_name() + "\" (layer \"" + name + "\")");
  tr->second(L, inputs);
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
  m.graph.inputs.push_back({name, t.dtype() == DType::f64 ? DType::f32 : t.dtype(), shape});
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
  m.graph.outputs = {value};
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

  std::map<std::string, std::string> values;  // value_key(layer, node) -> IR value
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
    m.graph.outputs.push_back(v->second);
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
    const char* node = std::getenv("PLANETBRIDGE_NODE");
    return {{node ? node : "node", std::string(PB_PLUGIN_SOURCE_DIR) + "/capture/capture.js", "--serve"}, {}};
  }

  ir::Graph decode(const Stream& stream) const override {
    JsonRef model = stream.model();
    JsonRef format = model["format"];
    if (format.str() != "keras") format.fail("expected \"keras\", got \"" + format.str() + "\"");
    JsonRef topology = model["topology"];

    ir::Graph g;
    g.metadata = {{"planet", stream.planet}, {"planet_version", stream.planet_version}, {"model_id", stream.model_id}};
    Model m{stream, g, model.find("weights"), topology.str("keras_version", ""), {}};
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

std::shared_ptr<Dialect> create() { return std::make_shared<TensorflowDialect>(); }

}  // namespace
}  // namespace pb::tensorflow

namespace pb_tensorflow_plugin {
std::shared_ptr<pb::Dialect> create() { return pb::tensorflow::create(); }
}  // namespace pb_tensorflow_plugin

PLANETBRIDGE_PLUGIN(pb_tensorflow_plugin::create)
