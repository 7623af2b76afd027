#pragma once
// The planetbridge IR: a DAG of nodes over named values. Conventions are in docs/ir.md:
// row-major activations, channels-first spatial tensors, Dense weight [out, in], and every
// layout change as an explicit node.
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "planetbridge/tensor.h"

namespace pb::ir {

using AttrValue = std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>>;

// Typed attribute access; a missing or mistyped attribute is an error naming node and key.
class Attrs {
 public:
  void set(const std::string& key, AttrValue v) { values_[key] = std::move(v); }
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  const std::map<std::string, AttrValue>& all() const { return values_; }
  std::map<std::string, AttrValue>& all() { return values_; }

  int64_t i(const std::string& key) const;
  int64_t i(const std::string& key, int64_t fallback) const;
  double f(const std::string& key) const;  // accepts an int attribute too
  double f(const std::string& key, double fallback) const;
  const std::string& s(const std::string& key) const;
  std::string s(const std::string& key, const std::string& fallback) const;
  const std::vector<int64_t>& ints(const std::string& key) const;
  std::vector<int64_t> ints(const std::string& key, std::vector<int64_t> fallback) const;

  // Which node these belong to, for error messages.
  std::string owner;

  bool operator==(const Attrs& o) const { return values_ == o.values_; }

 private:
  const AttrValue& get(const std::string& key) const;
  std::map<std::string, AttrValue> values_;
};

std::string attr_str(const AttrValue& v);

struct Node {
  std::string name;                  // unique in the graph
  std::string op;                    // "Dense", "Activation", ... (docs/ir.md)
  std::vector<std::string> inputs;   // value or weight names; "" marks an omitted optional input
  std::vector<std::string> outputs;  // value names
  Attrs attrs;
  std::string origin;                // the source-planet node it came from, e.g. "fx:linear_1 (Linear)"
};

// A node's error location: `node "linear_1" (Dense) from fx:_0 (Linear)`.
std::string node_where(const Node& node);

struct ValueInfo {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;  // -1 marks a dimension fixed only at compile time (usually the batch)
};

struct Graph {
  std::vector<ValueInfo> inputs;
  std::vector<std::string> outputs;
  std::vector<Node> nodes;                 // topologically ordered
  std::map<std::string, Tensor> weights;   // constant tensors by name
  std::map<std::string, std::string> metadata;  // planet, model_id, ...

  const Node* find_node(const std::string& name) const;
  // Checks names are unique, every input is defined before use, outputs exist.
  // Throws pb::Error naming the node.
  void validate() const;
  std::string summary() const;  // one line per node, for `inspect` and errors
};

}  // namespace pb::ir
