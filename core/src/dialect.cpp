// Both halves of the C plugin boundary (plugin_abi.h) and the graph document crossing it.
#include "planetbridge/dialect.h"

#include <cmath>
#include <cstring>

#include "planetbridge/error.h"
#include "planetbridge/ops.h"
#include "planetbridge/version.h"

namespace pb {

using nlohmann::json;

const char* core_version() { return PLANETBRIDGE_VERSION; }

// ------------------------------------------------------------------ the graph document

namespace {

constexpr const char* kGraphFormat = "planetbridge.ir";

// Attributes as one-key objects, so no value's type depends on how JSON prints a number.
json encode_attr(const ir::AttrValue& v, const ir::Node& node, const std::string& key) {
  if (auto p = std::get_if<int64_t>(&v)) return {{"i", *p}};
  if (auto p = std::get_if<std::string>(&v)) return {{"s", *p}};
  if (auto p = std::get_if<std::vector<int64_t>>(&v)) return {{"ints", *p}};
  auto finite = [&](double d) {
    if (!std::isfinite(d)) throw Error(ir::node_where(node), "attribute \"" + key + "\" is not finite");
    return d;
  };
  if (auto p = std::get_if<double>(&v)) return {{"f", finite(*p)}};
  json list = json::array();
  for (double d : std::get<std::vector<double>>(v)) list.push_back(finite(d));
  return {{"floats", list}};
}

ir::AttrValue decode_attr(const JsonRef& j) {
  if (!j.is_object() || j.keys().size() != 1) j.fail("expected one of {\"i\"}, {\"f\"}, {\"s\"}, {\"ints\"}, {\"floats\"}");
  const std::string tag = j.keys()[0];
  const JsonRef v = j[tag];
  if (tag == "i") return v.i64();
  if (tag == "f") return v.f64();
  if (tag == "s") return v.str();
  if (tag == "ints") return v.ints();
  if (tag == "floats") {
    std::vector<double> out;
    for (const JsonRef& e : v.items()) out.push_back(e.f64());
    return out;
  }
  j.fail("unknown attribute tag \"" + tag + "\"");
}

std::vector<std::string> strings(const JsonRef& j) {
  std::vector<std::string> out;
  for (const JsonRef& e : j.items()) out.push_back(e.str());
  return out;
}

DType dtype_at(const JsonRef& j) {
  DType t;
  if (!parse_dtype(j.str(), &t)) j.fail("unknown dtype \"" + j.str() + "\"");
  return t;
}

}  // namespace

std::vector<uint8_t> encode_graph(const ir::Graph& g, const Stream& stream) {
  json doc = {{"format", kGraphFormat}, {"version", 1}, {"metadata", g.metadata}, {"outputs", g.outputs}};
  json inputs = json::array(), nodes = json::array();
  for (const ir::ValueInfo& in : g.inputs) inputs.push_back({{"name", in.name}, {"dtype", dtype_name(in.dtype)}, {"shape", in.shape}});
  for (const ir::Node& n : g.nodes) {
    json attrs = json::object();
    for (const auto& [k, v] : n.attrs.all()) attrs[k] = encode_attr(v, n, k);
    nodes.push_back({{"name", n.name}, {"op", n.op}, {"inputs", n.inputs}, {"outputs", n.outputs}, {"attrs", attrs}, {"origin", n.origin}});
  }
  doc["inputs"] = inputs;
  doc["nodes"] = nodes;

  // A weight holding exactly a stream tensor's bytes is sent by name: the host has them.
  std::map<const void*, const std::pair<const std::string, Tensor>*> by_data;
  for (const auto& kv : stream.tensors) by_data[kv.second.raw()] = &kv;
  json by_name = json::object();
  std::map<std::string, Tensor> data;
  for (const auto& [name, t] : g.weights) {
    auto it = by_data.find(t.raw());
    if (it != by_data.end() && it->second->second.dtype() == t.dtype() && it->second->second.nbytes() == t.nbytes())
      by_name[name] = {{"tensor", it->second->first}, {"shape", t.shape()}};
    else
      data.emplace(name, t);
  }
  doc["stream_weights"] = by_name;
  doc["tensors"] = json::object();
  // An attention mask is -inf where it masks (torch's own masks, and a bool mask made additive):
  // such a weight says so; NaN and +inf stay refused.
  for (const auto& [name, t] : data)
    if (t.dtype() == DType::f32) {
      const float* p = t.data<float>();
      bool minus_inf = false, other = false;
      for (int64_t i = 0; i < t.numel(); ++i)
        if (!std::isfinite(p[i])) (p[i] < 0 ? minus_inf : other) = true;
      if (minus_inf && !other) doc["tensors"][name]["allow_nonfinite"] = true;
    }
  return write_framed(doc, data);
}

ir::Graph decode_graph(const uint8_t* bytes, size_t size, const Stream& stream, const std::string& where) {
  try {
    const Frame frame = parse_frame(bytes, size);
    const JsonRef root(frame.doc, "graph");
    if (root["format"].str() != kGraphFormat) root["format"].fail("expected \"" + std::string(kGraphFormat) + "\"");
    if (root["version"].i64() != 1) root["version"].fail("unsupported graph document version");
    ir::Graph g;
    const JsonRef meta = root["metadata"];
    for (const std::string& k : meta.keys()) g.metadata[k] = meta[k].str();
    for (const JsonRef& in : root["inputs"].items()) g.inputs.push_back({in["name"].str(), dtype_at(in["dtype"]), in["shape"].ints()});
    g.outputs = strings(root["outputs"]);
    for (const JsonRef& nj : root["nodes"].items()) {
      ir::Node n;
      n.name = nj["name"].str();
      n.op = nj["op"].str();
      n.inputs = strings(nj["inputs"]);
      n.outputs = strings(nj["outputs"]);
      const JsonRef attrs = nj["attrs"];
      for (const std::string& k : attrs.keys()) n.attrs.set(k, decode_attr(attrs[k]));
      n.origin = nj["origin"].str();
      g.nodes.push_back(std::move(n));
    }
    g.weights = decode_tensors(root["tensors"], frame);
    const JsonRef by_name = root["stream_weights"];
    for (const std::string& name : by_name.keys()) {
      const JsonRef ref = by_name[name];
      const Tensor& t = stream.tensor(ref["tensor"].str(), ref["tensor"].path());
      const Shape shape = ref["shape"].ints();
      if (element_count(shape) != t.numel()) ref["shape"].fail("does not hold the tensor's " + std::to_string(t.numel()) + " elements");
      if (!g.weights.emplace(name, t.reshaped(shape)).second) ref.fail("weight \"" + name + "\" is sent twice");
    }
    return g;
  } catch (const Error& e) {
    throw Error(where, "malformed graph from the plugin: " + std::string(e.what()));
  }
}

// ------------------------------------------------------------------ host side

StreamView::StreamView(const Stream& stream) {
  json head = json::object();
  for (const auto& [key, value] : stream.doc.items())
    if (key != "tensors") head[key] = value;
  json_ = head.dump();
  names_.reserve(stream.tensors.size());
  for (const auto& [name, t] : stream.tensors) {
    names_.push_back(name);
    tensors_.push_back({names_.back().c_str(), static_cast<uint32_t>(t.dtype()), static_cast<uint32_t>(t.shape().size()),
                        t.shape().data(), t.raw(), t.nbytes()});
  }
  view_ = {json_.data(), json_.size(), tensors_.data(), tensors_.size()};
}

namespace {

struct Buffer {
  std::vector<uint8_t> bytes;
  pb_sink sink{this, [](void* c, const void* d, uint64_t n) {
                 auto* b = static_cast<Buffer*>(c);
                 const auto* p = static_cast<const uint8_t*>(d);
                 b->bytes.insert(b->bytes.end(), p, p + n);
               }};
  json parse(const std::string& where, const std::string& what) const {
    try {
      return json::parse(bytes.begin(), bytes.end());
    } catch (const json::exception& e) {
      throw Error(where, what + " is not valid JSON: " + e.what());
    }
  }
};

class PluginDialect : public Dialect {
 public:
  PluginDialect(const pb_plugin* p, std::string file) : p_(p), file_(std::move(file)) {}

  std::string planet() const override { return p_->planet; }
  std::string version() const override { return p_->version; }

  std::vector<std::string> source_types() const override {
    Buffer b;
    if (p_->source_types(&b.sink) != 0) throw Error(file_, "the plugin could not list its source types");
    const json j = b.parse(file_, "the plugin's source type list");
    return strings(JsonRef(j, "source_types"));
  }

  CaptureCommand capture() const override {
    Buffer b;
    if (p_->capture(&b.sink) != 0) throw Error(file_, "the plugin could not name its capture command");
    const json j = b.parse(file_, "the plugin's capture command");
    const JsonRef r(j, "capture");
    CaptureCommand c{strings(r["argv"]), {}};
    if (c.argv.empty()) r["argv"].fail("is empty");
    if (auto env = r.find("env"))
      for (const std::string& k : env->keys()) c.env[k] = (*env)[k].str();
    return c;
  }

  ir::Graph decode(const Stream& stream) const override {
    const StreamView view(stream);
    Buffer out, err;
    if (p_->decode(view.get(), &out.sink, &err.sink) != 0) {
      const json e = err.parse(file_, "the plugin's decode error");
      if (!e.is_object() || !e.contains("where") || !e.contains("message") || !e["where"].is_string() || !e["message"].is_string())
        throw Error(file_, "decode failed with an error that is not {\"where\", \"message\"}: " + e.dump().substr(0, 200));
      throw Error(e["where"].get<std::string>(), e["message"].get<std::string>());
    }
    ir::Graph g = decode_graph(out.bytes.data(), out.bytes.size(), stream, file_);
    // The graph is shape-checked once, here: a decoder's mistake is an error naming the node.
    std::map<std::string, Shape> shapes;
    for (size_t i = 0; i < g.inputs.size() && i < stream.inputs.size(); ++i)
      shapes[g.inputs[i].name] = stream.tensors.at(stream.inputs[i]).shape();
    ir::infer_graph(g, shapes);
    return g;
  }

 private:
  const pb_plugin* p_;
  std::string file_;
};

}  // namespace

std::shared_ptr<Dialect> dialect_from_plugin(const pb_plugin* plugin, const std::string& file) {
  return std::make_shared<PluginDialect>(plugin, file);
}

// ------------------------------------------------------------------ plugin side

namespace {

void write(pb_sink* sink, const std::string& text) { sink->write(sink->context, text.data(), text.size()); }

// Runs f; any exception becomes an error document in `error` and a nonzero return.
template <typename F>
int guarded(pb_sink* error, F&& f) {
  auto report = [&](const std::string& where, const std::string& message) {
    write(error, json{{"where", where}, {"message", message}}.dump(-1, ' ', false, json::error_handler_t::replace));
    return 1;
  };
  try {
    f();
    return 0;
  } catch (const Error& e) {
    return report(e.where(), e.message());
  } catch (const std::exception& e) {
    return report("", std::string("the plugin failed: ") + e.what());
  } catch (...) {
    return report("", "the plugin failed with an unknown exception");
  }
}

}  // namespace

int plugin_source_types(const Dialect& d, pb_sink* out) {
  Buffer ignored;
  return guarded(&ignored.sink, [&] { write(out, json(d.source_types()).dump()); });
}

int plugin_capture(const Dialect& d, pb_sink* out) {
  Buffer ignored;
  return guarded(&ignored.sink, [&] {
    const CaptureCommand c = d.capture();
    write(out, json{{"argv", c.argv}, {"env", c.env}}.dump());
  });
}

int plugin_decode(const Dialect& d, const pb_stream_view* view, pb_sink* out, pb_sink* error) {
  return guarded(error, [&] {
    const Stream stream = stream_from_view(*view);
    const std::vector<uint8_t> bytes = encode_graph(d.decode(stream), stream);
    out->write(out->context, bytes.data(), bytes.size());
  });
}

Stream stream_from_view(const pb_stream_view& v) {
  json doc;
  try {
    doc = json::parse(v.json, v.json + v.json_size);
  } catch (const json::exception& e) {
    throw Error("(stream)", std::string("the host sent invalid JSON: ") + e.what());
  }
  std::map<std::string, Tensor> tensors;
  for (uint64_t i = 0; i < v.tensor_count; ++i) {
    const pb_tensor_view& t = v.tensors[i];
    if (t.dtype > PB_I64) throw Error(json_path_member("tensors", t.name), "unknown dtype code " + std::to_string(t.dtype));
    Tensor view = Tensor::view(static_cast<DType>(t.dtype), Shape(t.shape, t.shape + t.rank), t.data);
    if (view.nbytes() != t.nbytes) throw Error(json_path_member("tensors", t.name), "byte count does not match the shape");
    tensors.emplace(t.name, std::move(view));
  }
  return make_stream(std::move(doc), std::move(tensors));
}

}  // namespace pb
