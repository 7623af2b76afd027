#include "planetbridge/decoder.h"

#include <algorithm>

#include "planetbridge/error.h"

namespace pb {

namespace {

bool spatial(const ir::TensorType& t) { return t.shape.size() >= 3; }

// "@NCHW" for a rank-4 channels-first form, "@NHWC" channels-last.
std::string layout_suffix(Layout layout, size_t rank) {
  static const char* spatial_dims[] = {"W", "HW", "DHW"};
  const std::string s = rank >= 3 && rank <= 5 ? spatial_dims[rank - 3] : "*";
  return layout == Layout::ChannelsFirst ? "@NC" + s : "@N" + s + "C";
}

std::vector<int64_t> perm_to(Layout layout, size_t rank) {
  return layout == Layout::ChannelsFirst ? channels_first_perm(rank) : channels_last_perm(rank);
}

Shape permuted_shape(const Shape& s, const std::vector<int64_t>& perm) {
  Shape out(s.size());
  for (size_t i = 0; i < s.size(); ++i) out[i] = s[size_t(perm[i])];
  return out;
}

}  // namespace

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

void UnsupportedTypes::add(const std::string& what, const std::string& type, const std::string& path, std::vector<std::string> known) {
  missing_[what][type].push_back(path);
  known_[what] = std::move(known);
  ++count_;
}

void UnsupportedTypes::fail_if_any(const JsonRef& where) const {
  if (missing_.empty()) return;
  std::string listed, vocabularies;
  for (const auto& [what, types] : missing_) {
    for (const auto& [type, paths] : types) {
      listed += (listed.empty() ? "" : ", ") + what + " \"" + type + "\" (" + paths.front();
      if (paths.size() > 1) listed += " and " + std::to_string(paths.size() - 1) + " more";
      listed += ")";
    }
    vocabularies += "; known " + what + (what.back() == 's' ? "es: " : "s: ") + joined(known_.at(what));
  }
  where.fail(std::to_string(count_) + (count_ == 1 ? " node uses what this planet cannot translate: " : " nodes use what this planet cannot translate: ") +
             listed + vocabularies);
}

void check_attributes(const JsonRef& object, const std::vector<std::string>& understood, const std::string& what,
                      const std::set<std::string>& common) {
  for (const std::string& key : object.keys()) {
    if (common.count(key) || std::find(understood.begin(), understood.end(), key) != understood.end()) continue;
    if (auto v = object.find(key))
      v->fail("attribute not understood for " + what + (understood.empty() ? " (it takes none)" : " (known: " + joined(understood) + ")"));
  }
}

Decoder::Decoder(const Stream& stream, const std::string& model_format, Layout planet_layout)
    : stream_(stream), model_(model_of(stream, model_format)), planet_layout_(planet_layout), where_(model_) {
  graph_.metadata = stream_metadata(stream);
}

void Decoder::translating(const JsonRef& where, std::string origin) {
  where_ = where;
  origin_ = std::move(origin);
}

const SourceValue& Decoder::input(const std::string& name, size_t index, const JsonRef& where) {
  if (has(name)) where.fail("\"" + name + "\" is named twice");
  if (index >= stream_.inputs.size())
    where.fail("input \"" + name + "\" has no matching entry in the stream's \"inputs\" (" + std::to_string(stream_.inputs.size()) + " given)");
  const Tensor& t = stream_.tensor(stream_.inputs[index], json_path_index("inputs", index));
  const DType dtype = t.dtype() == DType::f64 ? DType::f32 : t.dtype();
  Shape graph_shape = t.shape();
  if (!graph_shape.empty()) graph_shape[0] = -1;  // the batch: fixed when compiled
  graph_.inputs.push_back({name, dtype, graph_shape});
  types_[name] = {dtype, t.shape()};
  SourceValue& v = values_[name];
  v.type = {dtype, t.shape()};
  v.forms[planet_layout_] = name;
  v.origin = origin_;
  return v;
}

const SourceValue& Decoder::value(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) where_.fail("\"" + name + "\" is not defined before it is used");
  return it->second;
}

std::string Decoder::as(const std::string& name, Layout layout) {
  value(name);
  SourceValue& v = values_.at(name);
  if (!spatial(v.type)) return v.forms.begin()->second;  // one form: the layouts coincide
  if (layout == planet_layout_) v.planet_form_for_tap = false;  // a consumer reads it
  auto it = v.forms.find(layout);
  if (it != v.forms.end()) return it->second;
  const size_t rank = v.type.shape.size();
  const std::string out = layout == planet_layout_ ? name : name + layout_suffix(layout, rank);
  const std::string from = v.forms.begin()->second;
  step(out, "Transpose", {from}, attrs_of({{"perm", perm_to(layout, rank)}}),
       v.origin + (layout == Layout::ChannelsFirst ? " (to channels-first)" : " (to channels-last)"));
  v.forms[layout] = out;
  return out;
}

Layout Decoder::held(const std::string& name) const {
  const SourceValue& v = value(name);
  if (v.forms.count(planet_layout_) && !v.planet_form_for_tap) return planet_layout_;
  return planet_layout_ == Layout::ChannelsLast ? Layout::ChannelsFirst : Layout::ChannelsLast;
}

Layout Decoder::common_layout(const std::vector<std::string>& names) const {
  const Layout other = planet_layout_ == Layout::ChannelsLast ? Layout::ChannelsFirst : Layout::ChannelsLast;
  bool any_other_only = false;
  for (const std::string& n : names) {
    const ir::TensorType& t = type(n);
    if (!spatial(t) || t.shape.size() != type(names.at(0)).shape.size()) return planet_layout_;
    any_other_only |= held(n) == other;
  }
  return any_other_only ? other : planet_layout_;
}

std::vector<ir::TensorType> Decoder::emit(ir::Node node) {
  std::vector<const ir::TensorType*> ins;
  for (const std::string& i : node.inputs) {
    if (i.empty()) {
      ins.push_back(nullptr);
      continue;
    }
    auto it = types_.find(i);
    if (it == types_.end()) where_.fail("internal: IR value \"" + i + "\" is used before it is defined");
    ins.push_back(&it->second);
  }
  std::vector<ir::TensorType> out;
  try {
    out = ir::infer_node(node, ins, [&](const std::string& n) { return graph_.weights.count(n) != 0; });
  } catch (const Error& e) {
    where_.fail(e.what());
  }
  for (size_t i = 0; i < out.size(); ++i)
    if (!types_.emplace(node.outputs[i], out[i]).second)
      where_.fail("\"" + node.outputs[i] + "\" would name two things in the graph (" +
                  (graph_.weights.count(node.outputs[i]) ? "a weight" : "another value") + " has that name)");
  graph_.nodes.push_back(std::move(node));
  return out;
}

ir::TensorType Decoder::step(const std::string& name, const std::string& op, std::vector<std::string> inputs, ir::Attrs attrs,
                             const std::string& origin) {
  ir::Node n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(inputs);
  n.outputs = {name};
  n.attrs = std::move(attrs);
  n.origin = origin.empty() ? origin_ : origin;
  return emit(std::move(n)).at(0);
}

std::vector<std::string> Decoder::steps(const std::string& name, const std::string& op, std::vector<std::string> inputs,
                                        ir::Attrs attrs) {
  ir::Node n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(inputs);
  n.attrs = std::move(attrs);
  n.origin = origin_;
  const ir::OpSchema* schema = nullptr;  // it names the outputs
  try {
    schema = &ir::schema_of(n);
  } catch (const Error& e) {
    where_.fail(e.what());
  }
  for (size_t i = 0; i < schema->outputs.size(); ++i) n.outputs.push_back(i == 0 ? name : name + ":" + schema->outputs[i]);
  std::vector<std::string> names = n.outputs;
  emit(std::move(n));
  return names;
}

const SourceValue& Decoder::define(const std::string& name, Layout layout, const std::string& op, std::vector<std::string> inputs,
                                   ir::Attrs attrs) {
  if (has(name)) where_.fail("\"" + name + "\" is already defined");
  // The IR name depends on the output's rank, known only after inference: name it as the
  // planet's form and rename when it turns out spatial in the other layout.
  ir::TensorType t = step(name, op, std::move(inputs), std::move(attrs));
  std::string form = name;
  if (spatial(t) && layout != planet_layout_) {
    form = name + layout_suffix(layout, t.shape.size());
    ir::Node& n = graph_.nodes.back();
    n.name = n.outputs[0] = form;
    types_.erase(name);
    types_[form] = t;
    t.shape = permuted_shape(t.shape, perm_to(planet_layout_, t.shape.size()));
  }
  SourceValue& v = values_[name];
  v.type = t;
  v.forms[spatial(t) ? layout : planet_layout_] = form;
  v.origin = origin_;
  // A tap holds the planet's layout: make that form now, so it is compared in execution order
  // (the first diverging node is the one named). Nothing else reading it, the optimised compile
  // drops it.
  if (stream_.taps.count(name) && !v.forms.count(planet_layout_)) {
    as(name, planet_layout_);
    values_.at(name).planet_form_for_tap = true;
  }
  return values_.at(name);
}

const SourceValue& Decoder::bind(const std::string& name, const std::string& ir_name, Layout layout) {
  if (has(name)) where_.fail("\"" + name + "\" is already defined");
  const ir::TensorType t = ir_type(ir_name);
  SourceValue& v = values_[name];
  v.type = t;
  if (spatial(t) && layout != planet_layout_) {
    v.type.shape = permuted_shape(t.shape, perm_to(planet_layout_, t.shape.size()));
    v.forms[layout] = ir_name;
  } else {
    v.forms[planet_layout_] = ir_name;
  }
  v.origin = origin_;
  return v;
}

const ir::TensorType& Decoder::ir_type(const std::string& name) const {
  auto it = types_.find(name);
  if (it == types_.end()) where_.fail("internal: no IR value or weight \"" + name + "\"");
  return it->second;
}

// ------------------------------------------------------------------ weights

const Tensor& Decoder::tensor(const std::string& name, const std::string& where) {
  const Tensor& t = stream_.tensor(name, where);
  used_.insert(name);
  return t;
}

const Tensor* Decoder::find_tensor(const std::string& name) {
  const Tensor* t = stream_.find_tensor(name);
  if (t) used_.insert(name);
  return t;
}

void Decoder::add_weight(const std::string& name, Tensor t) {
  if (t.dtype() != DType::f32) where_.fail("internal: weight \"" + name + "\" is " + dtype_name(t.dtype()) + ", the IR computes in f32");
  auto it = graph_.weights.find(name);
  if (it != graph_.weights.end()) {
    if (it->second.raw() != t.raw()) where_.fail("two different weights are named \"" + name + "\"");
    return;  // a shared module's second use
  }
  if (types_.count(name)) where_.fail("weight \"" + name + "\" has the name of a value of the model");
  types_[name] = {t.dtype(), t.shape()};
  graph_.weights.emplace(name, std::move(t));
}

std::string Decoder::weight(const std::string& name, const std::string& where) {
  const Tensor& t = tensor(name, where);
  if (!is_float(t.dtype())) throw Error(where, std::string("expected a float tensor, got ") + dtype_name(t.dtype()));
  if (t.dtype() == DType::f32) {
    add_weight(name, t);
    return name;
  }
  const std::string cast = name + "@f32";
  if (!graph_.weights.count(cast)) add_weight(cast, t.cast(DType::f32));
  return cast;
}

std::string Decoder::derived(const std::string& source, const std::string& transform, Tensor t) {
  const std::string name = source + "@" + transform;
  if (!graph_.weights.count(name)) add_weight(name, t.dtype() == DType::f32 ? std::move(t) : t.cast(DType::f32));
  return name;
}

std::string Decoder::constant(const std::string& owner, const std::string& role, Tensor t) {
  const std::string name = owner + "." + role;
  if (stream_.tensors.count(name)) where_.fail("the constant \"" + name + "\" clashes with a stream tensor of that name");
  if (!graph_.weights.count(name)) add_weight(name, t.dtype() == DType::f32 ? std::move(t) : t.cast(DType::f32));
  return name;
}

// ------------------------------------------------------------------ the end

ir::Graph Decoder::finish(const std::vector<std::string>& outputs, const JsonRef& where) {
  if (outputs.size() != stream_.expected.size())
    where.fail("names " + std::to_string(outputs.size()) + " outputs, the stream has " + std::to_string(stream_.expected.size()) +
               " expected outputs");
  for (const std::string& o : outputs) graph_.outputs.push_back(has(o) ? planet_form(o) : (ir_type(o), o));
  // Nothing silently dropped: every tensor is an input, an output, a tap or something a translator read.
  for (const std::string& n : stream_.inputs) used_.insert(n);
  for (const std::string& n : stream_.expected) used_.insert(n);
  for (const auto& [node, tensor] : stream_.taps) used_.insert(tensor);
  for (const auto& [output, tensor] : stream_.reference) used_.insert(tensor);
  for (const auto& [name, t] : stream_.tensors)
    if (!used_.count(name)) throw Error(json_path_member("tensors", name), "not used by any part of the model");
  graph_.validate();
  return std::move(graph_);
}

}  // namespace pb
