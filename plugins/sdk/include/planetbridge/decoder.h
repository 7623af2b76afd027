#pragma once
// The decoder context: one per decode, shared by every planet. It holds what the stream says,
// builds the IR graph node by node, infers each node's type from the op schemas as it is
// emitted (a shape mistake is an error naming the source node being translated), tracks which
// stream tensors were used (an unused one is an error at the end), and keeps every source value
// in the layouts the IR needs (one tracker for channels-last planets). Naming rules, one each:
//   <value>                 a source value in the planet's own layout (taps line up)
//   <value>@NCHW (NCW, NCDHW, or NHWC... for a channels-first planet)  the same value channels-first
//   <value>/<step>          an intermediate node of one translation (Dense before its softmax)
//   <tensor>@<transform>    a weight derived from a stream tensor (kernel@T, kernel@OIHW, coef_@f32)
//   <value>.<role>          a constant the decoder makes (BatchNorm's ones when it has no scale)
//   <node>:<output>         output i > 0 of a node with several (lstm:h_n)
// docs/writing-a-plugin.md shows a translator end to end.
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "planetbridge/decoder_util.h"
#include "planetbridge/ir.h"
#include "planetbridge/json.h"
#include "planetbridge/ops.h"
#include "planetbridge/stream.h"

namespace pb {

// Where a spatial value's channels sit: [N, spatial..., C] or [N, C, spatial...].
enum class Layout { ChannelsLast, ChannelsFirst };

// A source value: a model input or a source node's output.
struct SourceValue {
  ir::TensorType type;  // in the planet's layout; dim 0 is the batch as captured
  std::map<Layout, std::string> forms;  // the IR values holding it, by layout (rank >= 3 may have two)
  std::string origin;   // the source node that produced it
  bool planet_form_for_tap = false;  // its planet-layout form exists only so the tap is compared
};

class Decoder {
 public:
  // Checks the stream's model.format; the graph records the stream's planet, version and model.
  Decoder(const Stream& stream, const std::string& model_format, Layout planet_layout);

  const Stream& stream() const { return stream_; }
  JsonRef model() const { return model_; }
  Layout planet_layout() const { return planet_layout_; }

  // The source node being translated: its JSON (inference errors name it) and the origin
  // recorded on the nodes it emits ("fx:linear_1 (Linear)").
  void translating(const JsonRef& where, std::string origin);
  const JsonRef& where() const { return where_; }
  const std::string& origin() const { return origin_; }

  // ---- graph inputs
  // Declares graph input `name` as the stream's inputs[index]: f64 computes as f32, dim 0 is
  // -1 in the graph (any batch) and the captured size while decoding.
  const SourceValue& input(const std::string& name, size_t index, const JsonRef& where);

  // ---- source values
  bool has(const std::string& value) const { return values_.count(value) != 0; }
  const SourceValue& value(const std::string& value) const;
  const ir::TensorType& type(const std::string& value) const { return this->value(value).type; }
  // The IR value holding `value` in `layout`, adding a Transpose the first time one is needed.
  std::string as(const std::string& value, Layout layout);
  std::string planet_form(const std::string& value) { return as(value, planet_layout_); }
  // The layout a value is held in (its planet layout when it has that form for a consumer).
  Layout held(const std::string& value) const;
  // For element-wise ops: channels-first when the inputs share a spatial rank and one of them is
  // held only channels-first (a channels-first chain stays free of transposes), else the planet's.
  Layout common_layout(const std::vector<std::string>& values) const;

  // ---- nodes
  // Emits IR node `name` (one output of the same name) and returns its inferred type.
  ir::TensorType step(const std::string& name, const std::string& op, std::vector<std::string> inputs, ir::Attrs attrs = {},
                      const std::string& origin = "");
  // A node of several outputs (a recurrent layer's y, h_n, c_n): the node is named `name`, its
  // first output too, output i > 0 "<name>:<its schema name>". Returns the output names; their
  // types are ir_type(name). Bind them to source values as the planet needs.
  std::vector<std::string> steps(const std::string& name, const std::string& op, std::vector<std::string> inputs, ir::Attrs attrs = {});
  // Emits the node computing source value `value` in `layout` (IR name: the value's form in that
  // layout) and defines the value. A tapped value gets its planet-layout form right away.
  const SourceValue& define(const std::string& value, Layout layout, const std::string& op, std::vector<std::string> inputs,
                            ir::Attrs attrs = {});
  // Defines source value `value` as an existing IR value or weight (no node), held in `layout`:
  // a parameter read directly (PyTorch's get_attr), an alias a source model gives a value.
  const SourceValue& bind(const std::string& value, const std::string& ir_name, Layout layout);
  // The IR type of any value or weight emitted so far.
  const ir::TensorType& ir_type(const std::string& name) const;
  // The graph emitted so far (its inputs' batch dims are -1, as the compiled graph sees them).
  const ir::Graph& graph() const { return graph_; }

  // ---- weights
  // The stream tensor, marked as used; missing: an error naming `where`.
  const Tensor& tensor(const std::string& name, const std::string& where);
  // The stream tensor when it exists (marked as used), else nullptr.
  const Tensor* find_tensor(const std::string& name);
  // A stream tensor the model carries but inference never reads (BatchNorm's
  // num_batches_tracked): used, deliberately.
  void ignore(const std::string& name) { used_.insert(name); }
  // The stream tensor as an IR weight of the same name (f32 as is; f64 rounds once into
  // "<name>@f32"). Returns the weight's name.
  std::string weight(const std::string& name, const std::string& where);
  // A weight derived from stream tensor `source` by `transform` ("T", "OIHW"): "<source>@<transform>".
  // Derived weights and constants are stored as f32 (a double is rounded once, here).
  std::string derived(const std::string& source, const std::string& transform, Tensor t);
  // A constant the decoder makes, owned by value `owner`: "<owner>.<role>".
  std::string constant(const std::string& owner, const std::string& role, Tensor t);

  // ---- the end
  // Outputs (source values, in the planet's layout, or IR values), in the stream's expected
  // order; every stream tensor must be an input, an expected output, a tap or used. `where`
  // names the model's output list.
  ir::Graph finish(const std::vector<std::string>& outputs, const JsonRef& where);

 private:
  void add_weight(const std::string& name, Tensor t);
  std::vector<ir::TensorType> emit(ir::Node node);

  const Stream& stream_;
  JsonRef model_;
  Layout planet_layout_;
  ir::Graph graph_;
  JsonRef where_;
  std::string origin_;
  std::map<std::string, SourceValue> values_;
  std::map<std::string, ir::TensorType> types_;  // every IR value and weight
  std::set<std::string> used_;
};

// ------------------------------------------------------------------ translator tables

// A source type's translator: the attribute keys it understands (any other key is refused,
// never ignored), how many inputs it takes (0: one or more) and the function. Each planet has
// one table per vocabulary.
template <typename Source>
struct Translator {
  std::vector<std::string> attributes;
  size_t arity = 1;
  std::function<void(Source&)> translate;
};
template <typename Source>
using TranslatorTable = std::map<std::string, Translator<Source>>;

template <typename Table>
std::vector<std::string> table_keys(const Table& t) {
  std::vector<std::string> out;
  for (const auto& kv : t) out.push_back(kv.first);
  return out;
}

// "a, b, c"
std::string joined(const std::vector<std::string>& names);

// The table's entry for `type`; an unknown type fails at `where`: `unknown <what> "X" (known: ...)`.
template <typename Source>
const Translator<Source>& find_translator(const TranslatorTable<Source>& table, const std::string& type, const JsonRef& where,
                                          const std::string& what) {
  auto it = table.find(type);
  if (it == table.end()) where.fail("unsupported " + what + " \"" + type + "\" (known: " + joined(table_keys(table)) + ")");
  return it->second;
}

// Every source type a model uses that its planet's tables lack, found before anything is
// translated, so one error names all the blockers (a user fixes them all, then reruns once).
class UnsupportedTypes {
 public:
  // Records `type` (a `what`, e.g. "module type") used at `where` when `known` lacks it.
  template <typename Table>
  void check(const Table& known, const std::string& type, const std::string& what, const JsonRef& where) {
    if (!known.count(type)) add(what, type, where.path(), table_keys(known));
  }
  // Throws at `where` when anything was recorded: every missing type, where it is used, and
  // what each vocabulary knows.
  void fail_if_any(const JsonRef& where) const;

 private:
  void add(const std::string& what, const std::string& type, const std::string& path, std::vector<std::string> known);
  std::map<std::string, std::map<std::string, std::vector<std::string>>> missing_;  // what -> type -> paths
  std::map<std::string, std::vector<std::string>> known_;                          // what -> known types
  size_t count_ = 0;
};

// Refuses the first key of `object` that is neither in `understood` nor in `common`, naming it
// and what understands which keys.
void check_attributes(const JsonRef& object, const std::vector<std::string>& understood, const std::string& what,
                      const std::set<std::string>& common = {});

}  // namespace pb
