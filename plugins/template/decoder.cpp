// The template planet: a minimal working dialect to copy (plugins/template/README.md).
// Its model format, "template.layers", is a list of layers run one after another:
//   {"type": "dense", "name": "fc1", "weight": "<tensor [out, in]>", "bias": "<tensor [out]>"}  bias optional
//   {"type": "relu",  "name": "act1"}
// Each layer reads the previous layer's output (the first reads the stream's one input) and
// the last one is the model's output.
#include "planetbridge/decoder.h"
#include "planetbridge/plugin.h"

namespace pb::template_planet {  // "template" is a C++ keyword

namespace {

// What a translator sees: the shared decoder context, the layer's JSON (errors name its path),
// the layer's name (its output value, so a tap on "fc1" lines up) and its input value.
struct Layer {
  Decoder& d;
  JsonRef json;
  std::string name;
  std::string input;
};

// dense: the weight is already [out, in], the IR's Dense layout, so it goes in as the stream
// tensor itself (no copy). A planet whose kernels are [in, out] would transpose here with
// d.derived(name, "T", permuted(w, {1, 0})): a layout is known per planet, never guessed from a
// shape (a square weight fits both). No shape checks here: the op schema infers Dense's output
// and refuses a weight that does not fit the input, naming this layer.
void translate_dense(const Layer& l) {
  JsonRef weight = l.json["weight"];
  // d.weight() marks the stream tensor as used; one the model never reads fails d.finish().
  std::vector<std::string> inputs = {l.input, l.d.weight(weight.str(), weight.path())};
  if (auto bias = l.json.find("bias")) inputs.push_back(l.d.weight(bias->str(), bias->path()));
  l.d.define(l.name, Layout::ChannelsFirst, "Dense", inputs);
}

void translate_relu(const Layer& l) {
  l.d.define(l.name, Layout::ChannelsFirst, "Activation", {l.input}, attrs_of({{"function", std::string("relu")}}));
}

// One line per layer type: the keys it understands besides "type" and "name" (any other key is
// refused, never ignored), its input count, its translator.
const TranslatorTable<const Layer>& layer_table() {
  static const TranslatorTable<const Layer> t = {
      {"dense", {{"weight", "bias"}, 1, translate_dense}},
      {"relu", {{}, 1, translate_relu}},
  };
  return t;
}

class TemplateDialect : public Dialect {
 public:
  std::string planet() const override { return "template"; }
  std::string version() const override { return "0.1.0"; }
  std::vector<std::string> source_types() const override { return table_keys(layer_table()); }

  // The template has no framework: its capture answers "unavailable", so a suite case on this
  // planet is a SKIP. A real planet's capture.py builds each fixture in its framework.
  CaptureCommand capture() const override {
    return serve_command("PLANETBRIDGE_PYTHON", "/usr/bin/python3", std::string(PB_PLUGIN_SOURCE_DIR) + "/capture/capture.py");
  }

  ir::Graph decode(const Stream& stream) const override {
    // Checks model.format. The layout matters only for spatial values ([N, C, H, W] or
    // [N, H, W, C]); this planet has none.
    Decoder d(stream, "template.layers", Layout::ChannelsFirst);
    check_attributes(d.model(), {"layers"}, "a template.layers model", {"format"});
    if (stream.inputs.size() != 1) stream.root()["inputs"].fail("expected one input");
    d.input("x", 0, stream.root()["inputs"][0]);

    // Every layer type this planet cannot translate, named in one error before translating any.
    UnsupportedTypes unsupported;
    for (const JsonRef& lj : d.model()["layers"].items()) unsupported.check(layer_table(), lj["type"].str(), "layer type", lj["type"]);
    unsupported.fail_if_any(d.model()["layers"]);

    std::string previous = "x";
    for (const JsonRef& lj : d.model()["layers"].items()) {
      const std::string type = lj["type"].str(), name = lj["name"].str();
      if (name.empty()) lj["name"].fail("expected a non-empty layer name");
      if (d.has(name)) lj["name"].fail("\"" + name + "\" is already defined");
      const auto& tr = find_translator(layer_table(), type, lj["type"], "layer type");
      check_attributes(lj, tr.attributes, type, {"type", "name"});
      // Errors from here on (a schema's shape check included) name this layer's JSON; every
      // node it emits records this origin.
      d.translating(lj, "template:" + name + " (" + type + ")");
      tr.translate(Layer{d, lj, name, previous});
      previous = name;
    }
    // Also refuses any stream tensor nothing used (a weight the model forgot is not ignored).
    return d.finish({previous}, stream.root()["expected"]);
  }
};

}  // namespace
}  // namespace pb::template_planet

PLANETBRIDGE_DIALECT(pb::template_planet::TemplateDialect)
