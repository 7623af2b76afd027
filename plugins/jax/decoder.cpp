// JAX dialect: a Flax (linen) module list in call order + the flattened variables pytree -> IR
// (docs/planets/jax.md). One translator per Flax module type (nn.RNN and nn.Bidirectional with
// their cells among them) and per function, registered in op_table.cpp; the translators are in
// op/*.cpp. Flax's values are channels-last; the decoder context (planetbridge/decoder.h) holds
// each in the layouts the IR's ops need.
#include <cstdlib>

#include "module.h"
#include "planetbridge/plugin.h"

namespace pb::jax {

namespace {

// nn.RNN and nn.Bidirectional read a sequence and, optionally, an initial carry: Sequential
// order gives them the previous value.
bool recurrent(const std::string& type) { return type == "RNN" || type == "Bidirectional"; }
// Attention reads its query, keys and values, and optionally a mask, in any number of inputs;
// without "inputs", the previous value (self-attention).
bool attention(const std::string& type) { return type == "MultiHeadDotProductAttention" || type == "SelfAttention"; }
// Modules that read integer arrays: Embed's ids, a mask function's arrays (make_causal_mask
// reads only the shape), attention's mask (its translator checks the rest are f32).
bool reads_integers(const std::string& type) {
  return type == "Embed" || type == "make_causal_mask" || type == "make_attention_mask" || attention(type);
}

class JaxDialect : public Dialect {
 public:
  std::string planet() const override { return "jax"; }
  std::string version() const override { return "0.4.0"; }

  std::vector<std::string> source_types() const override {
    std::vector<std::string> out;
    for (const auto& kv : module_table())
      if (kv.first != "fn") out.push_back(kv.first);
    for (const auto& kv : function_table()) out.push_back(kv.first);
    for (const std::string& c : cell_types()) out.push_back(c);  // the cells an RNN scans
    return out;
  }

  // jax-js under Node by default; PLANETBRIDGE_JAX_CAPTURE=flax serves the same fixtures from
  // real JAX/Flax (capture_flax.py) where Python has them.
  CaptureCommand capture() const override {
    const std::string dir = std::string(PB_PLUGIN_SOURCE_DIR) + "/capture/";
    const char* which = std::getenv("PLANETBRIDGE_JAX_CAPTURE");
    if (which && std::string(which) == "flax") return serve_command("PLANETBRIDGE_PYTHON", "python3", dir + "capture_flax.py");
    return serve_command("PLANETBRIDGE_NODE", "node", dir + "capture.js");
  }

  ir::Graph decode(const Stream& stream) const override {
    Decoder d(stream, "flax.linen", Layout::ChannelsLast);
    const JsonRef model = d.model();

    // model.inputs names the graph inputs, in the order of the stream's "inputs".
    JsonRef input_names = model["inputs"];
    if (input_names.size() != stream.inputs.size())
      input_names.fail("names " + std::to_string(input_names.size()) + " inputs, the stream has " + std::to_string(stream.inputs.size()));
    for (size_t i = 0; i < stream.inputs.size(); ++i) d.input(input_names[i].str(), i, input_names[i]);

    UnsupportedTypes unsupported;  // every missing module type and function, as one error
    for (const JsonRef& mj : model["modules"].items()) {
      if (mj["type"].str() == "fn") unsupported.check(function_table(), mj["fn"].str(), "function", mj["fn"]);
      else unsupported.check(module_table(), mj["type"].str(), "module type", mj["type"]);
    }
    unsupported.fail_if_any(model["modules"]);

    // Sequential by default: a module without "inputs" takes the previous module's output.
    std::string previous = stream.inputs.size() == 1 ? input_names[0].str() : "";
    for (const JsonRef& mj : model["modules"].items()) {
      JsonRef name_json = mj["name"];
      const std::string name = name_json.str();
      if (name.empty()) name_json.fail("expected a non-empty module name");
      if (d.has(name)) name_json.fail("\"" + name + "\" is already defined");

      const std::string type = mj["type"].str();
      const JaxTranslator* tr = &find_translator(module_table(), type, mj["type"], "module type");
      std::string what = type;
      if (type == "fn") {
        tr = &find_translator(function_table(), mj["fn"].str(), mj["fn"], "function");
        what = mj["fn"].str();
      } else if (mj.has("fn")) {
        mj["fn"].fail("only modules of type \"fn\" name a function");
      }
      check_attributes(mj, tr->attributes, what, {"type", "name", "inputs", "fn"});

      std::vector<std::string> inputs;
      if (auto in = mj.find("inputs")) {
        for (const JsonRef& i : in->items()) {
          if (!d.has(i.str())) i.fail("\"" + i.str() + "\" is not defined before this module");
          inputs.push_back(i.str());
        }
        if (tr->arity ? inputs.size() != tr->arity : inputs.empty())
          in->fail(what + " takes " + (tr->arity ? std::to_string(tr->arity) : "one or more") + " inputs, got " + std::to_string(inputs.size()));
      } else if ((tr->arity == 1 || recurrent(type) || attention(type)) && !previous.empty()) {
        inputs = {previous};
      } else {
        mj.fail(what + " \"" + name + "\" needs \"inputs\" (only a one-input module after a single value defaults to it)");
      }
      // Only Embed and the masks read integers; every other module computes in f32.
      for (const std::string& i : inputs)
        if (!reads_integers(type) && d.type(i).dtype != DType::f32)
          mj.fail(what + " \"" + name + "\" reads \"" + i + "\" of dtype " + dtype_name(d.type(i).dtype) +
                  "; only Embed (ids) and attention masks take integers");

      d.translating(mj, "flax:" + name + " (" + what + ")");
      tr->translate(Module(d, mj, name, inputs));
      previous = name;
    }

    JsonRef outputs = model["outputs"];
    std::vector<std::string> names;
    for (const JsonRef& o : outputs.items()) {
      if (!d.has(o.str())) o.fail("\"" + o.str() + "\" is not an input or module of the model");
      names.push_back(o.str());
    }
    return d.finish(names, outputs);
  }
};

}  // namespace
}  // namespace pb::jax

PLANETBRIDGE_DIALECT(pb::jax::JaxDialect)
