#pragma once
// The IR's op schemas: one table of every op (inputs, outputs, typed attributes with their
// defaults) and its shape inference. Decoders, the graph check after decoding and the kernels
// all use it, so no one else redoes an op's shape arithmetic. docs/ir.md's op table is checked
// against ops_markdown() by a test; `planetbridge ops` prints it.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "planetbridge/ir.h"

namespace pb::ir {

// A value's type. -1 marks a dimension not known until compile time (the batch).
struct TensorType {
  DType dtype = DType::f32;
  Shape shape;
  bool operator==(const TensorType& o) const { return dtype == o.dtype && shape == o.shape; }
};
std::string type_str(const TensorType& t);  // "f32[-1, 8]"
// The most elements one value may have (docs/security.md): far above what any model here needs,
// low enough that a size an attribute decides (a padding of 10^11) is refused with the node's
// name by shape inference instead of failing in a kernel's allocation.
inline constexpr int64_t kMaxValueElements = int64_t(1) << 34;
// The largest dimension, and the largest window attribute (kernel, stride, dilation, pad): what
// oneDNN's kernels hold in an int.
inline constexpr int64_t kMaxDim = (int64_t(1) << 31) - 1;

enum class AttrType { Int, Float, String, Ints, Floats };
const char* attr_type_name(AttrType t);

struct AttrSchema {
  std::string name;
  AttrType type;
  std::optional<AttrValue> default_value;  // nullopt: required (unless `optional`)
  bool optional = false;                   // may be absent with no default (e.g. an activation's alpha)
  std::string doc;
};

// What may feed an input: any value, or only a constant weight (the kernel packs it at compile time).
enum class InputKind { Value, Weight, Any };

struct InputSchema {
  std::string name;
  InputKind kind = InputKind::Value;
  bool optional = false;  // may be omitted ("" or absent at the end)
  bool variadic = false;  // the last input may repeat (one or more)
  std::string doc;        // expected shape, e.g. "[out, in]"
};

class InferContext;
using InferFn = std::function<std::vector<TensorType>(const InferContext&)>;

struct OpSchema {
  std::string name;
  std::string summary;
  std::vector<InputSchema> inputs;
  std::vector<std::string> outputs;
  std::vector<AttrSchema> attrs;
  InferFn infer;
  std::string notes;  // implementation notes for docs/ir.md
};

// What an infer function sees: the node, its input types (nullptr for an omitted optional
// input) and its attributes with every default filled in.
class InferContext {
 public:
  InferContext(const Node& node, const std::vector<const TensorType*>& inputs, const Attrs& attrs)
      : node_(node), inputs_(inputs), attrs_(attrs) {}
  const Node& node() const { return node_; }
  size_t count() const { return inputs_.size(); }
  bool has(size_t i) const { return i < inputs_.size() && inputs_[i]; }
  const TensorType& in(size_t i) const;
  const Shape& shape(size_t i) const { return in(i).shape; }
  const Attrs& attrs() const { return attrs_; }
  [[noreturn]] void fail(const std::string& message) const;

 private:
  const Node& node_;
  const std::vector<const TensorType*>& inputs_;
  const Attrs& attrs_;
};

// Every op, by name. One entry per op; its kernel is registered in layers/kernels/registry.cpp.
const std::map<std::string, OpSchema>& op_schemas();
// The op's schema; an unknown op is an error naming the node.
const OpSchema& schema_of(const Node& node);

// The node's attributes checked against its schema (every key known, every type right, every
// required one present) with defaults filled in. Errors name the node and the attribute.
Attrs checked_attrs(const Node& node);

// Checks the node's inputs and attributes against its schema and returns its output types.
// `is_weight` tells whether an input names a constant weight (for InputKind::Weight).
std::vector<TensorType> infer_node(const Node& node, const std::vector<const TensorType*>& inputs,
                                   const std::function<bool(const std::string&)>& is_weight);

// Validates the graph and infers every value's type; inputs take `input_shapes` where given
// (else their declared shapes). Throws pb::Error naming the node.
std::map<std::string, TensorType> infer_graph(const Graph& graph, const std::map<std::string, Shape>& input_shapes = {});

// ------------------------------------------------------------------ shared arithmetic

// Canonical activation function names (docs/ir.md) and the attributes each needs.
struct ActivationInfo {
  std::string name;
  std::vector<std::string> required;  // "alpha", "beta"
  std::string definition;
};
const std::vector<ActivationInfo>& activation_functions();
// Checks `function` is canonical and its required parameters are in `attrs`; errors name the node.
void check_activation(const Node& node, const std::string& function, const Attrs& attrs);

// The windowed ops' (Conv, Pool) geometry for kernel.size() spatial dims, defaults expanded.
struct Window {
  std::vector<int64_t> kernel, strides, dilations, pads_begin, pads_end;
};
Window read_window(const Node& node, const Attrs& attrs, std::vector<int64_t> kernel);
// floor((in + pb + pe - d·(k-1) - 1) / s) + 1 per spatial dim (-1 stays unknown).
std::vector<int64_t> window_output(const Node& node, const Shape& in_spatial, const Window& w);

// The elements a Slice takes along one dim of size n: the first index and how many (ONNX's
// clamping: negative start/end count from the end; a negative step walks backwards).
struct SliceRange {
  int64_t first = 0, count = 0;
};
SliceRange slice_range(int64_t n, int64_t start, int64_t end, int64_t step);

// Numpy broadcasting (-1 matches anything); errors name the node.
Shape broadcast_shapes(const Node& node, const Shape& a, const Shape& b);
// axis in [-rank, rank) made non-negative; errors name the node and `what`.
int64_t normalize_axis(const Node& node, int64_t axis, size_t rank, const std::string& what = "axis");

// The op table and the activation functions as markdown tables, as docs/ir.md holds them.
std::string ops_markdown();
std::string activations_markdown();

}  // namespace pb::ir
