// JAX dialect: a Flax (linen) module list in call order + the flattened params pytree -> IR
// (docs/planets/jax.md). One translator per Flax module type and per function, each registered
// in one table.
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>

#include "planetbridge/plugin.h"

namespace pb::jax {

namespace {

using AttrList = std::initializer_list<std::pair<const std::string, ir::AttrValue>>;

ir::Attrs attrs_of(AttrList kv) {
  ir::Attrs a;
  for (const auto& [k, v] : kv) a.set(k, v);
  return a;
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

std::string tensor_path(const std::string& name) { return json_path_member("tensors", name); }

// One entry of model.modules as its translator sees it.
class Module {
 public:
  Module(const Stream& stream, ir::Graph& graph, std::set<std::string>& used, JsonRef json, std::string name,
         std::string origin, std::vector<std::string> inputs)
      : stream_(stream), graph_(graph), used_(used), json_(json), name_(std::move(name)),
        origin_(std::move(origin)), inputs_(std::move(inputs)) {}

  const JsonRef& json() const { return json_; }
  const std::string& name() const { return name_; }
  const std::vector<std::string>& inputs() const { return inputs_; }
  const std::string& input() const { return inputs_.at(0); }

  // Flax keeps a module's variables at params/<module path>/<leaf> in the flattened pytree.
  std::string param_name(const std::string& leaf) const { return "params/" + name_ + "/" + leaf; }

  // The parameter's stream tensor (marked as used), or nullptr when the stream has none.
  const Tensor* find_param(const std::string& leaf) const {
    const Tensor* t = stream_.find_tensor(param_name(leaf));
    if (!t) return nullptr;
    used_.insert(param_name(leaf));
    if (t->dtype() != DType::f32)
      throw Error(tensor_path(param_name(leaf)) + ".dtype", std::string("expected f32, got ") + dtype_name(t->dtype()));
    return t;
  }
  const Tensor& param(const std::string& leaf) const {
    if (const Tensor* t = find_param(leaf)) return *t;
    json_.fail(json_["type"].str() + " \"" + name_ + "\": missing param \"" + param_name(leaf) +
               "\" (no such tensor in the stream)");
  }
  [[noreturn]] void fail_param_shape(const std::string& leaf, const std::string& expected) const {
    throw Error(tensor_path(param_name(leaf)) + ".shape",
                "expected " + expected + ", got " + shape_str(stream_.find_tensor(param_name(leaf))->shape()));
  }

  void add_weight(const std::string& name, const Tensor& t) const { graph_.weights.emplace(name, t); }

  // Adds the IR node for this module; its output value carries the module's name, so the
  // stream's taps (keyed by module name) line up.
  void emit(const std::string& op, std::vector<std::string> inputs, ir::Attrs attrs = {}) const {
    ir::Node n;
    n.name = name_;
    n.op = op;
    n.inputs = std::move(inputs);
    n.outputs = {name_};
    n.attrs = std::move(attrs);
    n.origin = origin_;
    graph_.nodes.push_back(std::move(n));
  }

 private:
  const Stream& stream_;
  ir::Graph& graph_;
  std::set<std::string>& used_;
  JsonRef json_;
  std::string name_, origin_;
  std::vector<std::string> inputs_;
};

// A module type or a function: the attribute keys it understands (any other key is an error,
// never ignored), how many inputs it takes (0 = one or more) and the translation.
struct Translator {
  std::vector<std::string> attributes;
  size_t arity = 1;
  std::function<void(const Module&)> translate;
};

// ------------------------------------------------------------------ modules

void translate_dense(const Module& m) {
  const JsonRef& j = m.json();
  const int64_t features = j["features"].i64();
  if (features <= 0) j["features"].fail("expected a positive integer");
  const bool use_bias = j.boolean("use_bias", true);  // Flax's default
  // Only the f32 computation the IR does; a lower-precision Flax Dense would compute otherwise.
  if (auto d = j.find("dtype"); d && d->str() != "float32") d->fail("only float32 is supported, got \"" + d->str() + "\"");
  if (auto d = j.find("param_dtype"); d && d->str() != "float32")
    d->fail("only float32 is supported, got \"" + d->str() + "\"");
  if (auto p = j.find("precision")) p->fail("only the default precision (null) is supported");

  const Tensor& kernel = m.param("kernel");
  if (kernel.shape().size() != 2 || kernel.shape()[1] != features)
    m.fail_param_shape("kernel", "[in, features] with features = " + std::to_string(features) + " (Flax's layout)");
  const int64_t in = kernel.shape()[0];
  // Flax's kernel is [in, out], the IR's Dense weight [out, in]: always a transposing copy,
  // because that is Flax's layout, never read from the shape (a square kernel fits both).
  Tensor weight(DType::f32, {features, in});
  const float* k = kernel.data<float>();
  float* w = weight.data<float>();
  for (int64_t i = 0; i < in; ++i)
    for (int64_t o = 0; o < features; ++o) w[o * in + i] = k[i * features + o];
  const std::string weight_name = m.param_name("kernel") + ".T";
  m.add_weight(weight_name, weight);

  std::vector<std::string> inputs = {m.input(), weight_name};
  if (use_bias) {
    const Tensor& bias = m.param("bias");
    if (bias.shape() != Shape{features}) m.fail_param_shape("bias", "[features] = [" + std::to_string(features) + "]");
    m.add_weight(m.param_name("bias"), bias);
    inputs.push_back(m.param_name("bias"));
  } else if (m.find_param("bias")) {
    throw Error(tensor_path(m.param_name("bias")), "the module has use_bias = false but the stream has its bias");
  }
  m.emit("Dense", inputs, attrs_of({{"in_features", in}, {"out_features", features}}));
}

Translator binary(const std::string& op) {
  return {{}, 2, [op](const Module& m) { m.emit(op, m.inputs()); }};
}

const std::map<std::string, Translator>& module_table() {
  static const std::map<std::string, Translator> t = {
      {"Dense", {{"features", "use_bias", "dtype", "param_dtype", "precision"}, 1, translate_dense}},
      // jnp operators between module outputs (residual connections): numpy broadcasting, as the IR.
      {"add", binary("Add")},
      {"subtract", binary("Sub")},
      {"multiply", binary("Mul")},
      {"concatenate",
       {{"axis"}, 0, [](const Module& m) { m.emit("Concat", m.inputs(), attrs_of({{"axis", m.json()["axis"].i64()}})); }}},
      // {"type": "fn", "fn": "nn.relu"}: a function of the activation table below.
      {"fn", {}},
  };
  return t;
}

// ------------------------------------------------------------------ functions (flax.linen / jax.nn)

Translator activation(const std::string& function, std::vector<std::string> attributes = {},
                      std::function<ir::Attrs(const JsonRef&)> params = nullptr) {
  return {std::move(attributes), 1, [function, params](const Module& m) {
            ir::Attrs a = params ? params(m.json()) : ir::Attrs{};
            a.set("function", function);
            m.emit("Activation", {m.input()}, std::move(a));
          }};
}

Translator softmax(bool log) {
  return {{"axis"}, 1, [log](const Module& m) {
            // jax.nn.softmax(x, axis=-1); a tuple of axes has no IR equivalent (i64 fails on it).
            m.emit("Softmax", {m.input()}, attrs_of({{"axis", m.json().i64("axis", -1)}, {"log", int64_t(log)}}));
          }};
}

const std::map<std::string, Translator>& function_table() {
  static const std::map<std::string, Translator> t = {
      {"nn.relu", activation("relu")},
      {"nn.relu6", activation("relu6")},
      {"nn.tanh", activation("tanh")},
      {"nn.sigmoid", activation("sigmoid")},
      {"nn.silu", activation("silu")},
      {"nn.swish", activation("silu")},  // jax.nn.swish is jax.nn.silu
      {"nn.selu", activation("selu")},
      {"nn.softplus", activation("softplus")},
      {"nn.hard_swish", activation("hardswish")},
      {"nn.hard_silu", activation("hardswish")},
      // relu6(x + 3) / 6 = clip(x/6 + 1/2, 0, 1)
      {"nn.hard_sigmoid",
       activation("hard_sigmoid", {}, [](const JsonRef&) { return attrs_of({{"alpha", 1.0 / 6.0}, {"beta", 0.5}}); })},
      // jax.nn.gelu defaults to approximate=True, the tanh form (unlike torch's GELU).
      {"nn.gelu",
       {{"approximate"}, 1,
        [](const Module& m) {
          m.emit("Activation", {m.input()},
                 attrs_of({{"function", std::string(m.json().boolean("approximate", true) ? "gelu_tanh" : "gelu_erf")}}));
        }}},
      {"nn.leaky_relu",
       activation("leaky_relu", {"negative_slope"},
                  [](const JsonRef& j) { return attrs_of({{"alpha", j.f64("negative_slope", 0.01)}}); })},
      {"nn.elu", activation("elu", {"alpha"}, [](const JsonRef& j) { return attrs_of({{"alpha", j.f64("alpha", 1.0)}}); })},
      {"nn.softmax", softmax(false)},
      {"nn.log_softmax", softmax(true)},
  };
  return t;
}

// ------------------------------------------------------------------ the model

// Fails at the first key of `json` that is neither common nor one the translator understands.
void check_keys(const JsonRef& json, const std::vector<std::string>& understood, const std::string& what) {
  static const std::set<std::string> common = {"type", "name", "inputs", "fn"};
  for (const std::string& key : json.keys()) {
    if (common.count(key) || std::find(understood.begin(), understood.end(), key) != understood.end()) continue;
    if (auto v = json.find(key))
      v->fail("attribute not understood for " + what +
              (understood.empty() ? " (it takes none)" : " (known: " + joined(understood) + ")"));
  }
}

class JaxDialect : public Dialect {
 public:
  std::string planet() const override { return "jax"; }
  std::string version() const override { return "0.1.0"; }

  std::vector<std::string> source_types() const override {
    std::vector<std::string> out;
    for (const auto& kv : module_table())
      if (kv.first != "fn") out.push_back(kv.first);
    for (const auto& kv : function_table()) out.push_back(kv.first);
    return out;
  }

  // jax-js under Node by default; PLANETBRIDGE_JAX_CAPTURE=flax serves the same fixtures from
  // real JAX/Flax (capture_flax.py) where Python has them.
  CaptureCommand capture() const override {
    const std::string dir = std::string(PB_PLUGIN_SOURCE_DIR) + "/capture/";
    const char* which = std::getenv("PLANETBRIDGE_JAX_CAPTURE");
    if (which && std::string(which) == "flax") {
      const char* python = std::getenv("PLANETBRIDGE_PYTHON");
      return {{python ? python : "python3", dir + "capture_flax.py", "--serve"}, {}};
    }
    const char* node = std::getenv("PLANETBRIDGE_NODE");
    return {{node ? node : "node", dir + "capture.js", "--serve"}, {}};
  }

  ir::Graph decode(const Stream& stream) const override {
    JsonRef model = stream.model();
    JsonRef format = model["format"];
    if (format.str() != "flax.linen") format.fail("expected \"flax.linen\", got \"" + format.str() + "\"");

    ir::Graph g;
    g.metadata = {{"planet", stream.planet}, {"planet_version", stream.planet_version}, {"model_id", stream.model_id}};
    std::set<std::string> defined, used;

    // model.inputs names the graph inputs, in the order of the stream's "inputs".
    JsonRef input_names = model["inputs"];
    if (input_names.size() != stream.inputs.size())
      input_names.fail("names " + std::to_string(input_names.size()) + " inputs, the stream has " +
                       std::to_string(stream.inputs.size()));
    for (size_t i = 0; i < stream.inputs.size(); ++i) {
      const std::string name = input_names[i].str();
      if (!defined.insert(name).second) input_names[i].fail("\"" + name + "\" is named twice");
      const Tensor& t = stream.tensor(stream.inputs[i], json_path_index("inputs", i));
      Shape shape = t.shape();
      if (!shape.empty()) shape[0] = -1;  // batch: fixed when compiled
      g.inputs.push_back({name, t.dtype() == DType::f64 ? DType::f32 : t.dtype(), shape});
      used.insert(stream.inputs[i]);
    }

    // Sequential by default: a module without "inputs" takes the previous module's output.
    std::string previous = g.inputs.size() == 1 ? g.inputs[0].name : "";
    for (const JsonRef& mj : model["modules"].items()) {
      JsonRef name_json = mj["name"];
      const std::string name = name_json.str();
      if (name.empty()) name_json.fail("expected a non-empty module name");
      if (defined.count(name)) name_json.fail("\"" + name + "\" is already defined");

      JsonRef type_json = mj["type"];
      const std::string type = type_json.str();
      auto mt = module_table().find(type);
      if (mt == module_table().end())
        type_json.fail("unknown module type \"" + type + "\" (known: " + joined(table_keys(module_table())) + ")");
      const Translator* tr = &mt->second;
      std::string what = type;
      if (type == "fn") {
        JsonRef fn = mj["fn"];
        auto ft = function_table().find(fn.str());
        if (ft == function_table().end())
          fn.fail("unknown function \"" + fn.str() + "\" (known: " + joined(table_keys(function_table())) + ")");
        tr = &ft->second;
        what = fn.str();
      } else if (mj.has("fn")) {
        mj["fn"].fail("only modules of type \"fn\" name a function");
      }
      check_keys(mj, tr->attributes, what);

      std::vector<std::string> inputs;
      if (auto in = mj.find("inputs")) {
        for (const JsonRef& i : in->items()) {
          if (!defined.count(i.str())) i.fail("\"" + i.str() + "\" is not defined before this module");
          inputs.push_back(i.str());
        }
        if (tr->arity ? inputs.size() != tr->arity : inputs.empty())
          in->fail(what + " takes " + (tr->arity ? std::to_string(tr->arity) : "one or more") + " inputs, got " +
                   std::to_string(inputs.size()));
      } else if (tr->arity == 1 && !previous.empty()) {
        inputs = {previous};
      } else {
        mj.fail(what + " \"" + name + "\" needs \"inputs\" (only a one-input module after a single value defaults to it)");
      }

      Module m(stream, g, used, mj, name, "flax:" + name + " (" + what + ")", inputs);
      tr->translate(m);
      defined.insert(name);
      previous = name;
    }

    JsonRef outputs = model["outputs"];
    for (const JsonRef& o : outputs.items()) {
      if (!defined.count(o.str())) o.fail("\"" + o.str() + "\" is not an input or module of the model");
      g.outputs.push_back(o.str());
    }
    if (g.outputs.size() != stream.expected.size())
      outputs.fail("names " + std::to_string(g.outputs.size()) + " outputs, the stream has " +
                   std::to_string(stream.expected.size()) + " expected outputs");

    // Nothing silently dropped: every tensor is an input, an output, a tap or a used param.
    for (const auto& e : stream.expected) used.insert(e);
    for (const auto& [node, tensor] : stream.taps) used.insert(tensor);
    for (const auto& [tname, t] : stream.tensors)
      if (!used.count(tname)) throw Error(tensor_path(tname), "not used by any module of model.modules");
    g.validate();
    return g;
  }
};

std::shared_ptr<Dialect> create() { return std::make_shared<JaxDialect>(); }

}  // namespace
}  // namespace pb::jax

namespace pb_jax_plugin {
std::shared_ptr<pb::Dialect> create() { return pb::jax::create(); }
}  // namespace pb_jax_plugin

PLANETBRIDGE_PLUGIN(pb_jax_plugin::create)
