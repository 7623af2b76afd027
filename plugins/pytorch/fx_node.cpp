#include "fx_node.h"

namespace pb::pytorch {

FxNode::FxNode(Decoder& d, FxTuples& tuples, JsonRef node, std::optional<JsonRef> module)
    : d_(d), tuples_(tuples), node_(node), module_(std::move(module)), name_(node["name"].str()) {}

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
  if (tuples_.count(value))
    a.fail("\"" + value + "\" is a tuple (" + std::to_string(tuples_.at(value).items.size()) +
           " elements), not a tensor: select an element first (y, h = ... or [i])");
  if (!d_.has(value)) a.fail("\"" + value + "\" is not defined before node \"" + name_ + "\"");
  return value;
}

const FxTuple* FxNode::tuple_ref(const JsonRef& a) const {
  if (!a.is_object() || !a.has("node")) return nullptr;
  auto it = tuples_.find(a["node"].str());
  return it == tuples_.end() ? nullptr : &it->second;
}

FxTuple FxNode::tuple_arg(const JsonRef& a) const {
  if (const FxTuple* t = tuple_ref(a)) return *t;
  if (!a.is_array()) a.fail("expected a tuple (a tuple literal or a node returning one)");
  FxTuple t;
  for (const JsonRef& e : a.items()) t.items.push_back(e.is_array() || tuple_ref(e) ? tuple_arg(e) : FxTuple{d_.planet_form(node_ref(e)), {}});
  return t;
}

void FxNode::flat_values(const JsonRef& a, std::vector<std::string>& out) const {
  if (a.is_array()) {
    for (const JsonRef& e : a.items()) flat_values(e, out);
    return;
  }
  if (const FxTuple* t = tuple_ref(a)) {
    std::function<void(const FxTuple&)> leaves = [&](const FxTuple& u) {
      if (!u.is_tuple()) return out.push_back(u.value);
      for (const FxTuple& e : u.items) leaves(e);
    };
    return leaves(*t);
  }
  out.push_back(node_ref(a));
}

void FxNode::define_tuple(FxTuple t) const {
  if (tuples_.count(name_) || d_.has(name_)) fail("\"" + name_ + "\" is already defined");
  tuples_.emplace(name_, std::move(t));
}

std::string FxNode::value_arg(size_t i, const std::string& kw) const {
  auto a = arg(i, kw);
  if (!a) fail("missing argument " + std::to_string(i) + " (" + kw + ")");
  return node_ref(*a);
}

int64_t FxNode::int_arg(size_t i, const std::string& kw, int64_t fallback) const {
  auto a = arg(i, kw);
  return a ? a->i64() : fallback;
}

double FxNode::float_arg(size_t i, const std::string& kw, double fallback) const {
  auto a = arg(i, kw);
  return a ? a->f64() : fallback;
}

Ints FxNode::ints_from(size_t i, const std::string& kw, const std::string& what) const {
  auto first = arg(i, kw);
  if (!first) fail(what + " needs " + kw);
  if (first->is_array()) return first->ints();
  Ints out;
  for (size_t k = i; arg(k); ++k) out.push_back(arg(k)->i64());
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
  return FxNode(d_, tuples_, node_, (*children)[name]);
}

void FxNode::refuse_if_true(const std::string& key, const std::string& why) const {
  if (attrs().boolean(key, false)) attr(key).fail(why);
}

}  // namespace pb::pytorch
