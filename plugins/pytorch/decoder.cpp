// PyTorch dialect: a torch.fx graph + its module table -> IR (docs/planets/pytorch.md). One
// translator per module type, function and Tensor method, registered in op_table.cpp; the
// translators are in op/*.cpp. PyTorch's layout is the IR's (channels-first), so the decoder
// context (planetbridge/decoder.h) holds every value as torch has it.
#include "fx_node.h"
#include "planetbridge/plugin.h"

namespace pb::pytorch {

namespace {

// get_attr: a parameter or buffer read directly (not through a module), stored under the
// target's qualified name. Float tensors are weights as is (f64: "<target>@f32"); an integer
// buffer computes as f32 like torch's type promotion: "<target>@f32" too.
void translate_get_attr(Decoder& d, const FxNode& n) {
  const JsonRef target = n.json()["target"];
  const Tensor& t = d.tensor(target.str(), target.path());
  const std::string w = is_float(t.dtype()) ? d.weight(target.str(), target.path()) : d.derived(target.str(), "f32", t.cast(DType::f32));
  d.bind(n.name(), w, Layout::ChannelsFirst);
}

// call_module, call_function, call_method: the table's translator after its attributes.
void translate_call(Decoder& d, FxValues& values, const JsonRef& node, const std::optional<JsonRef>& modules) {
  const std::string op = node["op"].str();
  const std::string target = node["target"].str();
  const FxTranslator* tr = nullptr;
  std::optional<JsonRef> module;
  std::string type = target;
  if (op == "call_module") {
    if (!modules || !modules->has(target)) node["target"].fail("module \"" + target + "\" is not in model.modules");
    module = (*modules)[target];
    type = (*module)["type"].str();
    tr = &find_translator(module_table(), type, node, "module type");
    check_attributes((*module)["attrs"], tr->attributes, type);
    if (auto args = node.find("args"); args && args->size() > tr->arity)
      args->fail(type + " takes " + std::to_string(tr->arity) + (tr->arity == 1 ? " input" : " inputs") + ", got " +
                  std::to_string(args->size()) + " arguments");
  } else {
    tr = &find_translator(op == "call_function" ? function_table() : method_table(), target, node,
                          op == "call_function" ? "function" : "method");
  }
  // A module's call passes its tensor only, but for the keywords its type lists (a recurrent
  // module's initial state hx, an attention module's masks); a function's or method's keywords
  // are its own.
  if (auto kwargs = node.find("kwargs")) check_attributes(*kwargs, module ? module_keywords(type) : tr->attributes, type, {"input"});
  d.translating(node, "fx:" + node["name"].str() + " (" + type + ")");
  tr->translate(FxNode(d, values, node, module));
}

// Every module type, function and method the graph calls that no table has, as one error.
void check_supported(const JsonRef& graph, const std::optional<JsonRef>& modules) {
  UnsupportedTypes unsupported;
  for (const JsonRef& node : graph.items()) {
    const std::string op = node["op"].str();
    if (op == "call_module" && modules && modules->has(node["target"].str()))
      unsupported.check(module_table(), (*modules)[node["target"].str()]["type"].str(), "module type", node);
    else if (op == "call_function") unsupported.check(function_table(), node["target"].str(), "function", node);
    else if (op == "call_method") unsupported.check(method_table(), node["target"].str(), "method", node);
  }
  unsupported.fail_if_any(graph);
}

class PytorchDialect : public Dialect {
 public:
  std::string planet() const override { return "pytorch"; }
  std::string version() const override { return "0.1.0"; }
  CaptureCommand capture() const override {
    return serve_command("PLANETBRIDGE_PYTHON", "/usr/bin/python3", std::string(PB_PLUGIN_SOURCE_DIR) + "/capture/capture.py");
  }

  // Module types, functions, and methods as "Tensor.<method>".
  std::vector<std::string> source_types() const override {
    std::vector<std::string> out;
    for (const FxTable* t : {&module_table(), &function_table(), &method_table()})
      for (const std::string& k : table_keys(*t)) out.push_back(t == &method_table() ? "Tensor." + k : k);
    return out;
  }

  ir::Graph decode(const Stream& stream) const override {
    Decoder d(stream, "torch.fx", Layout::ChannelsFirst);
    const JsonRef model = d.model();
    const std::optional<JsonRef> modules = model.find("modules");
    check_supported(model["graph"], modules);
    FxValues values;  // what nodes return besides tensors: tuples, Python values, ranges
    size_t placeholders = 0;
    std::optional<std::vector<std::string>> outputs;
    std::optional<JsonRef> output_arg;
    for (const JsonRef& node : model["graph"].items()) {
      const std::string op = node["op"].str();
      const FxNode n(d, values, node, std::nullopt);
      if (op == "call_module" || op == "call_function" || op == "call_method") {
        translate_call(d, values, node, modules);
        continue;
      }
      d.translating(node, "fx:" + n.name());
      if (op == "placeholder") {
        d.input(n.name(), placeholders++, node);  // placeholders are the stream's inputs, in order
      } else if (op == "get_attr") {
        translate_get_attr(d, n);
      } else if (op == "output") {
        output_arg = n.arg(0);
        if (!output_arg) node.fail("output node has no argument");
        // A node or (nested) tuples/lists of nodes, flattened in order; a node returning a
        // tuple (an RNN module's) stands for all its elements.
        outputs.emplace();
        n.flat_values(*output_arg, *outputs);
      } else {
        node["op"].fail("unsupported fx op \"" + op + "\"");
      }
    }
    if (placeholders != stream.inputs.size())
      model["graph"].fail("has " + std::to_string(placeholders) + " placeholders, the stream has " + std::to_string(stream.inputs.size()) +
                          " inputs");
    if (!outputs) model["graph"].fail("has no output node");
    return d.finish(*outputs, *output_arg);
  }
};

}  // namespace
}  // namespace pb::pytorch

PLANETBRIDGE_DIALECT(pb::pytorch::PytorchDialect)
