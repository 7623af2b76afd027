#include "fx_node.h"

#include <cmath>

namespace pb::pytorch {

const Shape& FxValues::batch_shape(const Decoder& d, const std::string& name) {
  const ir::Graph& g = d.graph();
  for (const ir::ValueInfo& in : g.inputs) types_.emplace(in.name, ir::TensorType{in.dtype, in.shape});
  auto type_of = [&](const std::string& v) -> const ir::TensorType* {
    if (auto it = types_.find(v); it != types_.end()) return &it->second;
    auto w = g.weights.find(v);
    return w == g.weights.end() ? nullptr : &(types_[v] = {w->second.dtype(), w->second.shape()});
  };
  for (; inferred_ < g.nodes.size(); ++inferred_) {
    const ir::Node& node = g.nodes[inferred_];
    std::vector<const ir::TensorType*> ins;
    for (const std::string& i : node.inputs) ins.push_back(i.empty() ? nullptr : type_of(i));
    std::vector<ir::TensorType> out;
    try {
      out = ir::infer_node(node, ins, [&](const std::string& w) { return g.weights.count(w) != 0; });
    } catch (const Error& e) {
      d.where().fail(std::string("with the batch left open: ") + e.what());
    }
    for (size_t k = 0; k < out.size(); ++k) types_[node.outputs[k]] = out[k];
  }
  const ir::TensorType* t = type_of(name);
  if (!t) d.where().fail("internal: no IR value \"" + name + "\"");
  return t->shape;
}

int64_t FxValues::captured_batch(const Decoder& d) const {
  for (const ir::ValueInfo& in : d.graph().inputs)
    if (!in.shape.empty()) return d.type(in.name).shape[0];
  return 0;
}

int64_t resolved_dim(const FxNode& n, int64_t dim, size_t rank, const std::string& what) {
  const int64_t r = static_cast<int64_t>(rank);
  if (dim < -r || dim >= r) n.fail(what + " " + std::to_string(dim) + " is out of range for rank " + std::to_string(r));
  return dim < 0 ? dim + r : dim;
}

FxNode::FxNode(Decoder& d, FxValues& values, JsonRef node, std::optional<JsonRef> module)
    : d_(d), values_(values), node_(node), module_(std::move(module)), name_(node["name"].str()) {}

std::optional<JsonRef> FxNode::arg(size_t i, const std::string& kw) const {
  if (auto args = node_.find("args"); args && i < args->size() && !(*args)[i].is_null()) return (*args)[i];
  return kw.empty() ? std::nullopt : kwarg(kw);
}

std::optional<JsonRef> FxNode::kwarg(const std::string& kw) const {
  auto kwargs = node_.find("kwargs");
  return kwargs ? kwargs->find(kw) : std::nullopt;
}

std::string FxNode::node_ref(const JsonRef& a) const {
  if (!a.is_object() || !a.has("node")) a.fail("expected a node reference {\"node\": name}");
  const std::string value = a["node"].str();
  if (auto t = values_.tuples.find(value); t != values_.tuples.end()) {
    if (t->second.scalar)
      a.fail("\"" + value + "\" is a Python number computed from shapes, not a tensor (torch.tensor(...) of it is not supported)");
    a.fail("\"" + value + "\" is a tuple (" + std::to_string(t->second.items.size()) +
           " elements), not a tensor: select an element first (y, h = ... or [i])");
  }
  if (auto r = values_.ranges.find(value); r != values_.ranges.end() && !d_.has(value)) {
    Tensor t(DType::f32, {r->second.count});
    for (int64_t k = 0; k < r->second.count; ++k) t.data<float>()[k] = static_cast<float>(r->second.start + k * r->second.step);
    d_.bind(value, d_.constant(value, "values", std::move(t)), Layout::ChannelsFirst);
  }
  if (!d_.has(value)) a.fail("\"" + value + "\" is not defined before node \"" + name_ + "\"");
  return value;
}

const FxTuple* FxNode::tuple_ref(const JsonRef& a) const {
  if (!a.is_object() || !a.has("node")) return nullptr;
  auto it = values_.tuples.find(a["node"].str());
  return it == values_.tuples.end() || !it->second.is_tuple() ? nullptr : &it->second;
}

const FxRange* FxNode::range_ref(const JsonRef& a) const {
  if (!a.is_object() || !a.has("node")) return nullptr;
  auto it = values_.ranges.find(a["node"].str());
  return it == values_.ranges.end() ? nullptr : &it->second;
}

std::optional<FxScalar> FxNode::scalar(const JsonRef& a) const {
  const nlohmann::json& raw = a.raw();
  if (raw.is_boolean()) return FxScalar::boolean(raw.get<bool>());
  if (raw.is_number_integer()) return FxScalar::integer(a.i64());
  if (raw.is_number()) return FxScalar::real(a.f64());
  if (!a.is_object()) return std::nullopt;
  if (auto repr = a.find("repr")) {
    const std::string r = repr->str();
    if (r == "inf" || r == "-inf") return FxScalar::real(r == "inf" ? INFINITY : -INFINITY);
    if (r == "nan") return FxScalar::real(NAN);
    return std::nullopt;
  }
  if (!a.has("node")) return std::nullopt;
  auto it = values_.tuples.find(a["node"].str());
  return it == values_.tuples.end() ? std::nullopt : it->second.scalar;
}

int64_t FxNode::constant_int(const JsonRef& a, const std::string& what) const {
  const std::optional<FxScalar> s = scalar(a);
  if (!s || s->kind != FxScalar::Kind::Int) a.fail(what + " must be an int, got " + a.raw().dump());
  if (s->batch())
    a.fail(what + " " + a.raw().dump() + " (" + std::to_string(s->i) +
           " here) depends on the batch, which the graph leaves open; it cannot be a constant");
  return s->i;
}

std::vector<FxScalar> FxNode::scalars_from(size_t i, const std::string& kw, const std::string& what) const {
  auto first = arg(i, kw);
  if (!first) fail(what + " needs " + kw);
  std::vector<FxScalar> out;
  if (const FxTuple* t = tuple_ref(*first)) {
    for (const FxTuple& e : t->items) {
      if (!e.scalar || e.scalar->kind != FxScalar::Kind::Int) first->fail(what + ": " + first->raw().dump() + " is not a tuple of ints");
      out.push_back(*e.scalar);
    }
    return out;
  }
  std::vector<JsonRef> items;
  if (first->is_array()) items = first->items();
  else if (!node_.find("args") || i >= node_["args"].size()) items = {*first};
  else
    for (size_t k = i; arg(k); ++k) items.push_back(*arg(k));
  for (const JsonRef& e : items) {
    const std::optional<FxScalar> s = scalar(e);
    if (!s || s->kind != FxScalar::Kind::Int) e.fail(what + ": expected an int, got " + e.raw().dump());
    out.push_back(*s);
  }
  return out;
}

FxScalar FxNode::dim_size(const std::string& ir, size_t dim) const {
  const int64_t v = d_.ir_type(ir).shape.at(dim);
  FxScalar s = FxScalar::integer(v);
  if (batch_shape(ir).at(dim) >= 0) return s;
  const int64_t n = values_.captured_batch(d_);
  s.offset = 0;
  if (n > 0 && v % n == 0) s.per_batch = v / n;
  else s.nonlinear = true;
  if (s.is_batch()) {
    s.source = ir;
    s.source_dim = static_cast<int64_t>(dim);
  }
  return s;
}

FxTuple FxNode::tuple_arg(const JsonRef& a) const {
  if (const FxTuple* t = tuple_ref(a)) return *t;
  if (!a.is_array()) a.fail("expected a tuple (a tuple literal or a node returning one)");
  FxTuple t;
  for (const JsonRef& e : a.items()) t.items.push_back(e.is_array() || tuple_ref(e) ? tuple_arg(e) : FxTuple{d_.planet_form(node_ref(e)), {}});
  return t;
}

std::string FxNode::number_constant(const JsonRef& a, const FxScalar& v, const std::string& role) const {
  if (v.kind == FxScalar::Kind::Device) a.fail("a device is not a number");
  if (v.kind == FxScalar::Kind::DType) a.fail("a dtype is not a number");
  if (v.batch())
    a.fail(a.raw().dump() + " (" + std::to_string(v.i) + " here) depends on the batch, which the graph leaves open; it cannot become a constant");
  Tensor t(DType::f32, {});
  t.data<float>()[0] = static_cast<float>(v.number());
  return constant(role, std::move(t));
}

std::string FxNode::operand(const JsonRef& a, const std::string& role) const {
  if (auto v = scalar(a)) return number_constant(a, *v, role);
  return d_.planet_form(node_ref(a));
}

void FxNode::flat_values(const JsonRef& a, std::vector<std::string>& out) const {
  if (a.is_array()) {
    for (const JsonRef& e : a.items()) flat_values(e, out);
    return;
  }
  if (const FxTuple* t = tuple_ref(a)) {
    std::function<void(const FxTuple&)> leaves = [&](const FxTuple& u) {
      if (u.scalar) a.fail("holds a Python number computed from shapes; the stream's outputs are tensors");
      if (!u.is_tuple()) return out.push_back(u.value);
      for (const FxTuple& e : u.items) leaves(e);
    };
    return leaves(*t);
  }
  out.push_back(node_ref(a));
}

void FxNode::define_tuple(FxTuple t) const {
  if (values_.defines(name_) || d_.has(name_)) fail("\"" + name_ + "\" is already defined");
  values_.tuples.emplace(name_, std::move(t));
}

void FxNode::define_scalar(FxScalar v) const { define_tuple(FxTuple(std::move(v))); }

void FxNode::define_range(FxRange r) const {
  if (values_.defines(name_) || d_.has(name_)) fail("\"" + name_ + "\" is already defined");
  values_.ranges.emplace(name_, r);
}

std::string FxNode::value_arg(size_t i, const std::string& kw) const {
  auto a = arg(i, kw);
  if (!a) fail("missing argument " + std::to_string(i) + " (" + kw + ")");
  return node_ref(*a);
}

int64_t FxNode::int_arg(size_t i, const std::string& kw, int64_t fallback) const {
  auto a = arg(i, kw);
  return a ? constant_int(*a, kw) : fallback;
}

double FxNode::float_arg(size_t i, const std::string& kw, double fallback) const {
  auto a = arg(i, kw);
  return a ? a->f64() : fallback;
}

Ints FxNode::ints_from(size_t i, const std::string& kw, const std::string& what) const {
  Ints out;
  for (const FxScalar& s : scalars_from(i, kw, what)) {
    if (s.batch()) fail(what + ": " + kw + " holds " + std::to_string(s.i) + ", which depends on the batch (the graph leaves it open)");
    out.push_back(s.i);
  }
  return out;
}

const JsonRef& FxNode::module() const {
  if (!module_) fail("internal: a function or method has no module");
  return *module_;
}

std::optional<std::string> FxNode::param(const std::string& key, bool buffer) const {
  auto table = module().find(buffer ? "buffers" : "params");
  if (!table) return std::nullopt;
  auto p = table->find(key);
  if (!p) return std::nullopt;
  return d_.weight(p->str(), p->path());
}

std::string FxNode::required_param(const std::string& key) const {
  if (auto w = param(key)) return *w;
  module()["params"].fail(module()["type"].str() + " has no \"" + key + "\"");
}

void FxNode::check_param_shape(const std::string& key, const std::string& weight, const Shape& want, const std::string& what) const {
  const Shape& got = d_.ir_type(weight).shape;
  if (got != want) module()["params"][key].fail("expected " + what + shape_str(want) + ", got " + shape_str(got));
}

void FxNode::require_attr(const std::string& key, int64_t expected, const std::string& why, bool required) const {
  auto v = required ? std::optional<JsonRef>(attr(key)) : attrs().find(key);
  if (!v) return;
  for (int64_t x : v->is_array() ? v->ints() : Ints{v->i64()})
    if (x != expected) v->fail(why);
}

FxNode FxNode::child(const std::string& name) const {
  auto children = module().find("children");
  if (!children || !children->has(name)) (children ? *children : module()).fail(module()["type"].str() + " has no submodule \"" + name + "\"");
  return FxNode(d_, values_, node_, (*children)[name]);
}

void FxNode::refuse_if_true(const std::string& key, const std::string& why) const {
  if (attrs().boolean(key, false)) attr(key).fail(why);
}

}  // namespace pb::pytorch
