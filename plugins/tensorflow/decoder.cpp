// TensorFlow dialect: a Keras model config (tfjs LayersModel.toJSON, Python Keras 2 or 3
// model.to_json) plus a weight table -> IR (docs/planets/tensorflow.md). One translator per
// Keras layer class, registered in op_table.cpp with the config keys it understands; the
// translators are in op/*.cpp. Keras's values are channels-last; the decoder context
// (planetbridge/decoder.h) holds each in the layouts the IR's ops need.
#include <algorithm>
#include <map>

#include "layer.h"
#include "planetbridge/plugin.h"

namespace pb::tensorflow {

namespace {

// One application of a layer: its translator, with the layer's config checked first. Returns
// the application's outputs (out, then "<out>:1", ... for a layer with several).
std::vector<std::string> translate(Decoder& d, KerasModel& m, const JsonRef& layer_json, const std::string& name, const std::string& out,
                                   std::vector<std::string> inputs, CallArgs call_args = {}) {
  const JsonRef cls = layer_json["class_name"];
  const std::string type = cls.str();
  auto it = layer_table().find(type);
  if (it == layer_table().end())
    cls.fail("unsupported layer class \"" + type + "\" (layer \"" + name + "\"; known: " + joined(table_keys(layer_table())) + ")");
  const KerasTranslator& tr = it->second;
  const JsonRef config = layer_json["config"];
  check_attributes(config, tr.attributes, type, informational_keys());
  check_float32(config);
  if (tr.arity && inputs.size() != tr.arity) {
    const std::string takes = tr.arity == 1 ? "one input" : tr.arity == 2 ? "exactly two inputs" : std::to_string(tr.arity) + " inputs";
    layer_json.fail(type + " takes " + takes + ", got " + std::to_string(inputs.size()));
  }
  d.translating(layer_json, "keras:" + name + " (" + type + ")");
  const Layer L(d, m, layer_json, name, out, std::move(inputs), std::move(call_args));
  tr.translate(L);
  if (!d.has(out)) L.fail("internal: the " + type + " translator produced no output");
  L.check_all_weights_used();
  m.translated.insert(name);
  std::vector<std::string> outputs;
  while (d.has(L.output(outputs.size()))) outputs.push_back(L.output(outputs.size()));
  return outputs;
}

std::string layer_name(const JsonRef& layer) {
  if (auto n = layer.find("name")) return n->str();  // functional configs repeat it at top level
  return layer["config"]["name"].str();
}

// Declares graph input `i` (the stream's inputs[i]) as value `name`, after checking what the
// config states: the InputLayer's keys, and the shape (batch_input_shape in tfjs / Keras 2,
// batch_shape in Keras 3) against the stream's tensor.
void add_input(Decoder& d, size_t i, const std::string& name, const JsonRef& layer, bool input_layer) {
  const JsonRef config = layer["config"];
  if (input_layer) {
    // optional (Keras 3) only says the input may be None; the stream always has it.
    check_attributes(config, {"batch_input_shape", "batch_shape", "dtype", "sparse", "ragged", "optional", "name"}, "InputLayer");
    refuse_unless(config, "sparse", !config.boolean("sparse", false), "sparse inputs are not supported");
    refuse_unless(config, "ragged", !config.boolean("ragged", false), "ragged inputs are not supported");
  }
  d.translating(layer, "keras:" + name + " (InputLayer)");
  const Shape& shape = d.input(name, i, layer).type.shape;
  auto declared = config.find("batch_input_shape");
  if (!declared) declared = config.find("batch_shape");
  if (!declared) return;
  auto dims = declared->items();
  bool ok = dims.size() == shape.size();
  for (size_t k = 1; ok && k < dims.size(); ++k) ok = dims[k].is_null() || dims[k].i64() == shape[k];
  if (!ok)
    declared->fail("the model expects " + declared->raw().dump() + ", the stream's input \"" + d.stream().inputs[i] + "\" is " + shape_str(shape));
}

std::vector<std::string> decode_sequential(Decoder& d, KerasModel& m, const JsonRef& config) {
  JsonRef layers = config["layers"];
  if (layers.size() == 0) layers.fail("a Sequential model with no layers");
  if (d.stream().inputs.size() != 1)
    layers.fail("a Sequential model takes one input, the stream has " + std::to_string(d.stream().inputs.size()));
  JsonRef l0 = layers[0];
  const bool input_layer = l0["class_name"].str() == "InputLayer";
  // Without an InputLayer (tfjs), Keras names the implicit input after the first layer.
  std::string value = input_layer ? layer_name(l0) : layer_name(l0) + "_input";
  add_input(d, 0, value, l0, input_layer);
  for (size_t i = input_layer ? 1 : 0; i < layers.size(); ++i) {
    JsonRef layer = layers[i];
    if (layer["class_name"].str() == "InputLayer") layer["class_name"].fail("InputLayer is only allowed as the first layer of a Sequential model");
    const std::string name = layer_name(layer);
    if (translate(d, m, layer, name, name, {value}).size() != 1)
      layer.fail("layer \"" + name + "\" has several outputs (return_state?): a Sequential model's layers have one");
    value = name;
  }
  return {value};
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

// The call keyword arguments a layer class understands (any other that is not null is refused: it
// may change what the layer computes). `tensors` become further inputs, appended after the
// positional ones in this order (Keras 2 writes every argument after the first as a keyword,
// Keras 3 writes them as called); `others` reach the translator (Layer::call_arg).
struct CallKeywords {
  std::vector<std::string> tensors, others;
};

const CallKeywords& call_keywords(const std::string& cls) {
  static const CallKeywords none, rnn{{"initial_state"}, {}};
  static const std::map<std::string, CallKeywords> table = {
      {"SimpleRNN", rnn},
      {"LSTM", rnn},
      {"GRU", rnn},
      {"Bidirectional", rnn},
      // attention_mask is both: a tensor (Keras 2/3) becomes the last input and the translator is
      // told it was given; the tfjs capture's `true` says its fourth input is the mask.
      {"MultiHeadAttention",
       {{"query", "value", "key", "attention_mask"},
        {"use_causal_mask", "attention_mask", "query_mask", "value_mask", "key_mask", "return_attention_scores", "training"}}},
  };
  auto it = table.find(cls);
  return it == table.end() ? none : it->second;
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

// tfjs / Keras 2 tensors in call keyword arguments: [layer, node, tensor], or a list of them.
void collect_refs(const JsonRef& a, std::vector<TensorRef>& out) {
  if (!a.is_array()) a.fail("expected a tensor reference [layer name, node index, tensor index] or a list of them");
  if (a.size() > 0 && a[0].is_string()) return out.push_back(parse_ref(a));
  for (const JsonRef& e : a.items()) collect_refs(e, out);
}

// One application: the tensors it consumes, in order, and its other call arguments.
struct Call {
  std::vector<TensorRef> refs;
  CallArgs args;
};

// The keyword arguments `kw` of one call of a `cls` layer into `call` (its tensors into
// `tensors`, by keyword). tfjs repeats a call's keywords on each input tensor: a repeat must
// say the same.
void add_keywords(const std::string& cls, const JsonRef& kw, bool keras3, Call& call, std::map<std::string, std::vector<TensorRef>>& tensors,
                  std::map<std::string, std::string>& seen) {
  const CallKeywords& known = call_keywords(cls);
  auto in = [](const std::vector<std::string>& v, const std::string& k) { return std::find(v.begin(), v.end(), k) != v.end(); };
  for (const std::string& k : kw.keys()) {
    if (kw.raw()[k].is_null()) continue;  // not given (JsonRef's [] would call it missing)
    const JsonRef a = kw[k];
    auto [it, first] = seen.emplace(k, a.raw().dump());
    if (!first) {
      if (it->second != a.raw().dump()) a.fail("call keyword argument \"" + k + "\" differs between the call's input tensors");
      continue;
    }
    if (in(known.tensors, k) && !(in(known.others, k) && a.raw().is_boolean())) {
      if (keras3) collect_keras3(a, tensors[k]);
      else collect_refs(a, tensors[k]);
      if (in(known.others, k)) call.args.emplace(k, a);
    } else if (in(known.others, k)) {
      call.args.emplace(k, a);
    } else {
      a.fail("call keyword argument \"" + k + "\" is not supported" + (known.tensors.empty() && known.others.empty() ? "" : " by " + cls) +
             " (it may change what the layer computes)");
    }
  }
}

// One inbound node of a `cls` layer. tfjs and Keras 2 write [[name, node, tensor, kwargs], ...]
// (a recurrent layer's initial states are further refs); Keras 3 writes {"args": [...],
// "kwargs": {...}}, an RNN's initial states as the keyword argument initial_state.
Call inbound_call(const JsonRef& node, const std::string& cls) {
  Call call;
  std::map<std::string, std::vector<TensorRef>> tensors;
  std::map<std::string, std::string> seen;
  if (node.is_object()) {
    collect_keras3(node["args"], call.refs);
    if (auto kw = node.find("kwargs")) add_keywords(cls, *kw, true, call, tensors, seen);
  } else {
    for (const JsonRef& e : node.items()) {
      call.refs.push_back(parse_ref(e));
      if (e.size() > 3 && !e[3].is_null()) add_keywords(cls, e[3], false, call, tensors, seen);
    }
  }
  for (const std::string& k : call_keywords(cls).tensors)
    if (auto t = tensors.find(k); t != tensors.end()) call.refs.insert(call.refs.end(), t->second.begin(), t->second.end());
  return call;
}

// input_layers / output_layers: a list of refs, or (Keras 3, one tensor) a single ref.
std::vector<TensorRef> ref_list(const JsonRef& j) {
  if (j.is_array() && j.size() > 0 && j[0].is_string()) return {parse_ref(j)};
  std::vector<TensorRef> out;
  for (const JsonRef& e : j.items()) out.push_back(parse_ref(e));
  return out;
}

std::string value_key(const std::string& layer, int64_t node) { return layer + "#" + std::to_string(node); }

// The value a ref's tensor index names among a layer application's outputs.
const std::string& output_of(const TensorRef& r, const std::vector<std::string>& outputs) {
  if (r.tensor < 0 || r.tensor >= int64_t(outputs.size()))
    throw Error(r.path, "tensor index " + std::to_string(r.tensor) + ": layer \"" + r.layer + "\" has " + std::to_string(outputs.size()) +
                            (outputs.size() == 1 ? " output" : " outputs"));
  return outputs[size_t(r.tensor)];
}

std::vector<std::string> decode_functional(Decoder& d, KerasModel& m, const JsonRef& config) {
  JsonRef layers = config["layers"];
  std::map<std::string, JsonRef> by_name;
  for (const JsonRef& l : layers.items())
    if (!by_name.emplace(layer_name(l), l).second) l.fail("duplicate layer name \"" + layer_name(l) + "\"");

  std::map<std::string, std::vector<std::string>> values;  // value_key(layer, node) -> its Keras values, by tensor index
  JsonRef input_layers = config["input_layers"];
  std::vector<TensorRef> ins = ref_list(input_layers);
  if (ins.size() != d.stream().inputs.size())
    input_layers.fail("the model has " + std::to_string(ins.size()) + " inputs, the stream has " + std::to_string(d.stream().inputs.size()));
  for (size_t i = 0; i < ins.size(); ++i) {
    auto it = by_name.find(ins[i].layer);
    if (it == by_name.end() || it->second["class_name"].str() != "InputLayer")
      input_layers[i].fail("\"" + ins[i].layer + "\" is not an InputLayer of this model");
    add_input(d, i, ins[i].layer, it->second, true);
    values[value_key(ins[i].layer, 0)] = {ins[i].layer};
  }

  // Every (layer, inbound node) is one application. Config order is not always a topological
  // order of applications (a shared layer's later call), so translate whatever is ready, repeat.
  struct Pending {
    JsonRef layer;
    std::string name;
    int64_t node;
    Call call;
  };
  std::vector<Pending> pending;
  for (const JsonRef& l : layers.items()) {
    const std::string name = layer_name(l);
    if (l["class_name"].str() == "InputLayer") continue;
    auto nodes = l.find("inbound_nodes");
    if (!nodes || nodes->size() == 0) l.fail("layer \"" + name + "\" has no inbound_nodes (it is never called)");
    const std::string cls = l["class_name"].str();
    for (size_t k = 0; k < nodes->size(); ++k) pending.push_back({l, name, int64_t(k), inbound_call((*nodes)[k], cls)});
  }
  while (!pending.empty()) {
    std::vector<Pending> later;
    for (Pending& p : pending) {
      std::vector<std::string> inputs;
      bool ready = true;
      for (const TensorRef& r : p.call.refs) {
        auto v = values.find(value_key(r.layer, r.node));
        if (v == values.end()) ready = false;
        else inputs.push_back(output_of(r, v->second));
      }
      if (!ready) {
        later.push_back(std::move(p));
        continue;
      }
      // A shared layer's second call gets its own value name; its first keeps the layer name.
      const std::string out = p.node == 0 ? p.name : p.name + "@" + std::to_string(p.node);
      values[value_key(p.name, p.node)] = translate(d, m, p.layer, p.name, out, inputs, p.call.args);
    }
    if (later.size() == pending.size()) {
      const Pending& p = later.front();
      for (const TensorRef& r : p.call.refs)
        if (!values.count(value_key(r.layer, r.node)))
          throw Error(r.path, "refers to output " + std::to_string(r.node) + " of layer \"" + r.layer + "\", which no layer produces (unknown layer or a cycle)");
    }
    pending = std::move(later);
  }

  std::vector<std::string> outputs;
  for (const TensorRef& r : ref_list(config["output_layers"])) {
    auto v = values.find(value_key(r.layer, r.node));
    if (v == values.end()) throw Error(r.path, "names output " + std::to_string(r.node) + " of layer \"" + r.layer + "\", which no layer produces");
    outputs.push_back(output_of(r, v->second));
  }
  return outputs;
}

// Every layer class the model uses that the table lacks (wrapped layers included), as one error.
void check_supported(const JsonRef& config) {
  UnsupportedTypes unsupported;
  for (const JsonRef& l : config["layers"].items()) {
    if (l["class_name"].str() == "InputLayer") continue;
    unsupported.check(layer_table(), l["class_name"].str(), "layer class", l["class_name"]);
    if (auto inner = l["config"].find("layer"); inner && inner->is_object() && inner->has("class_name"))
      unsupported.check(layer_table(), (*inner)["class_name"].str(), "layer class", (*inner)["class_name"]);
  }
  unsupported.fail_if_any(config["layers"]);
}

class TensorflowDialect : public Dialect {
 public:
  std::string planet() const override { return "tensorflow"; }
  std::string version() const override { return "0.2.0"; }

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
    Decoder d(stream, "keras", Layout::ChannelsLast);
    const JsonRef topology = d.model()["topology"];
    KerasModel m{d.model().find("weights"), topology.str("keras_version", ""), {}};
    if (m.weights && !m.weights->is_object()) m.weights->fail("expected an object {layer name: {weight name: tensor name}}");

    const JsonRef cls = topology["class_name"];
    const std::string kind = cls.str();
    if (kind == "Sequential" || kind == "Functional" || kind == "Model") check_supported(topology["config"]);
    std::vector<std::string> outputs;
    if (kind == "Sequential") outputs = decode_sequential(d, m, topology["config"]);
    else if (kind == "Functional" || kind == "Model") outputs = decode_functional(d, m, topology["config"]);
    else cls.fail("unsupported model class \"" + kind + "\" (expected Sequential, Functional or Model)");

    // Every layer named in the weight table must exist (a typo would otherwise go unnoticed).
    if (m.weights) {
      for (const std::string& k : m.weights->keys())
        if (!m.translated.count(k)) (*m.weights)[k].fail("no layer \"" + k + "\" in the model uses these weights");
    }
    // Outputs channels-last; every stream tensor an input, an output, a tap or a layer's weight.
    return d.finish(outputs, topology);
  }
};

}  // namespace
}  // namespace pb::tensorflow

PLANETBRIDGE_DIALECT(pb::tensorflow::TensorflowDialect)
