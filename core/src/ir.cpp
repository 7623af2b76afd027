#include "planetbridge/ir.h"

#include <set>
#include <sstream>

#include "planetbridge/error.h"

namespace pb::ir {

const AttrValue& Attrs::get(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) throw Error(owner, "missing attribute \"" + key + "\"");
  return it->second;
}

namespace {
template <typename T>
const T& typed(const AttrValue& v, const std::string& owner, const std::string& key, const char* want) {
  if (auto p = std::get_if<T>(&v)) return *p;
  throw Error(owner, "attribute \"" + key + "\" must be " + want + ", got " + attr_str(v));
}
}  // namespace

int64_t Attrs::i(const std::string& key) const { return typed<int64_t>(get(key), owner, key, "an integer"); }
int64_t Attrs::i(const std::string& key, int64_t fallback) const { return has(key) ? i(key) : fallback; }

double Attrs::f(const std::string& key) const {
  const AttrValue& v = get(key);
  if (auto p = std::get_if<int64_t>(&v)) return static_cast<double>(*p);
  return typed<double>(v, owner, key, "a number");
}
double Attrs::f(const std::string& key, double fallback) const { return has(key) ? f(key) : fallback; }

const std::string& Attrs::s(const std::string& key) const { return typed<std::string>(get(key), owner, key, "a string"); }
std::string Attrs::s(const std::string& key, const std::string& fallback) const { return has(key) ? s(key) : fallback; }

const std::vector<int64_t>& Attrs::ints(const std::string& key) const {
  return typed<std::vector<int64_t>>(get(key), owner, key, "a list of integers");
}
std::vector<int64_t> Attrs::ints(const std::string& key, std::vector<int64_t> fallback) const {
  return has(key) ? ints(key) : fallback;
}

std::string attr_str(const AttrValue& v) {
  std::ostringstream o;
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          o << '"' << x << '"';
        } else if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, double>) {
          o << x;
        } else {
          o << '[';
          for (size_t k = 0; k < x.size(); ++k) o << (k ? ", " : "") << x[k];
          o << ']';
        }
      },
      v);
  return o.str();
}

std::string node_where(const Node& node) {
  std::string s = "node \"" + node.name + "\" (" + node.op + ")";
  if (!node.origin.empty()) s += " from " + node.origin;
  return s;
}

const Node* Graph::find_node(const std::string& name) const {
  for (const Node& n : nodes)
    if (n.name == name) return &n;
  return nullptr;
}

void Graph::validate() const {
  std::set<std::string> defined;
  for (const ValueInfo& in : inputs) {
    if (in.name.empty()) throw Error("graph.inputs", "an input has an empty name");
    if (!defined.insert(in.name).second) throw Error("graph.inputs", "duplicate input \"" + in.name + "\"");
  }
  for (const auto& kv : weights) {
    if (!defined.insert(kv.first).second)
      throw Error("graph.weights", "weight \"" + kv.first + "\" has the same name as a graph input");
  }
  std::set<std::string> node_names;
  for (const Node& n : nodes) {
    std::string where = "node \"" + n.name + "\" (" + n.op + ")";
    if (n.name.empty()) throw Error("graph.nodes", "a " + n.op + " node has an empty name");
    if (!node_names.insert(n.name).second) throw Error(where, "duplicate node name");
    for (const std::string& in : n.inputs)
      if (!in.empty() && !defined.count(in))
        throw Error(where, "input \"" + in + "\" is not defined by an earlier node, input or weight");
    if (n.outputs.empty()) throw Error(where, "has no outputs");
    for (const std::string& out : n.outputs)
      if (!defined.insert(out).second) throw Error(where, "output \"" + out + "\" is defined twice");
  }
  if (outputs.empty()) throw Error("graph.outputs", "the graph has no outputs");
  for (const std::string& out : outputs)
    if (!defined.count(out)) throw Error("graph.outputs", "output \"" + out + "\" is never produced");
}

std::string Graph::summary() const {
  std::ostringstream o;
  for (const ValueInfo& in : inputs) o << "input  " << in.name << " " << dtype_name(in.dtype) << shape_str(in.shape) << "\n";
  for (const Node& n : nodes) {
    o << "node   " << n.name << " = " << n.op << "(";
    for (size_t i = 0; i < n.inputs.size(); ++i) o << (i ? ", " : "") << (n.inputs[i].empty() ? "-" : n.inputs[i]);
    o << ")";
    if (!n.attrs.all().empty()) {
      o << " {";
      bool first = true;
      for (const auto& [k, v] : n.attrs.all()) { o << (first ? "" : ", ") << k << "=" << attr_str(v); first = false; }
      o << "}";
    }
    o << " -> ";
    for (size_t i = 0; i < n.outputs.size(); ++i) o << (i ? ", " : "") << n.outputs[i];
    if (!n.origin.empty()) o << "   [" << n.origin << "]";
    o << "\n";
  }
  for (const std::string& out : outputs) o << "output " << out << "\n";
  return o.str();
}

}  // namespace pb::ir
