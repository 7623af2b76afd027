#include "layer.h"

#include <algorithm>

namespace pb::tensorflow {

Layer::Layer(Decoder& d, const KerasModel& model, JsonRef json, std::string name, std::string out, std::vector<std::string> inputs,
             CallArgs call_args)
    : d_(d), model_(model), json_(json), name_(std::move(name)), out_(std::move(out)), inputs_(std::move(inputs)), call_args_(std::move(call_args)) {
  class_ = json_["class_name"].str();
}

// ------------------------------------------------------------------ weights

JsonRef Layer::weight_ref(const std::string& short_name) const {
  if (!model_.weights) fail(class_ + " layer \"" + name_ + "\" needs weight \"" + short_name + "\", but the model has no \"weights\" table");
  auto table = layer_weights();
  if (!table) model_.weights->fail("no entry for layer \"" + name_ + "\" (" + class_ + " needs \"" + short_name + "\")");
  auto ref = table->find(short_name);
  if (!ref) table->fail("layer \"" + name_ + "\" (" + class_ + ") has no \"" + short_name + "\" weight");
  used_.insert(short_name);
  return *ref;
}

std::vector<std::string> Layer::xs(Layout layout) const {
  std::vector<std::string> out;
  for (const std::string& v : inputs_) out.push_back(d_.as(v, layout));
  return out;
}

bool Layer::has_weight(const std::string& short_name) const {
  auto table = layer_weights();
  return table && table->has(short_name);
}

namespace {
// "[*, 3]": the wanted shape, -1 for any size.
std::string wanted(const Shape& want) {
  std::string s;
  for (int64_t d : want) s += (s.empty() ? "" : ", ") + (d < 0 ? std::string("*") : std::to_string(d));
  return "[" + s + "]";
}
}  // namespace

const Tensor& Layer::checked(const std::string& short_name, const Shape& want, const std::string& layout) const {
  JsonRef ref = weight_ref(short_name);
  const Tensor& t = d_.tensor(ref.str(), ref.path());
  bool ok = is_float(t.dtype()) && t.shape().size() == want.size();
  for (size_t i = 0; ok && i < want.size(); ++i) ok = want[i] < 0 || want[i] == t.shape()[i];
  if (!ok)
    ref.fail("expected a float " + short_name + " of shape " + (layout.empty() ? "" : layout + " = ") + wanted(want) + " for " + class_ +
             " \"" + name_ + "\", got " + dtype_name(t.dtype()) + " " + shape_str(t.shape()));
  return t;
}

std::string Layer::weight(const std::string& short_name, const Shape& want, const std::string& layout) const {
  checked(short_name, want, layout);
  JsonRef ref = weight_ref(short_name);
  return d_.weight(ref.str(), ref.path());
}

std::string Layer::derived(const std::string& short_name, const Shape& want, const std::string& layout, const std::string& transform,
                           const std::function<Tensor(const Tensor&)>& to_ir) const {
  const Tensor& t = checked(short_name, want, layout);
  return d_.derived(weight_ref(short_name).str(), transform, to_ir(t));
}

void Layer::check_all_weights_used() const {
  auto table = layer_weights();
  if (!table) return;
  for (const std::string& k : table->keys())
    if (!used_.count(k)) (*table)[k].fail("weight \"" + k + "\" is not used by " + class_ + " (this configuration of the layer has no such weight)");
}

// ------------------------------------------------------------------ config helpers

void check_float32(const JsonRef& config) {
  auto dtype = config.find("dtype");
  if (!dtype) return;
  // Keras 3 (and Keras 2 for mixed precision) write a policy object; its config names the dtype.
  const JsonRef name = dtype->is_object() ? (*dtype)["config"]["name"] : *dtype;
  if (!name.is_string()) name.fail("expected a dtype name or a dtype policy object");
  if (name.str() != "float32")
    name.fail("only float32 is supported (the IR computes in f32), got " + std::string(dtype->is_object() ? "dtype policy " : "") + "\"" +
              name.str() + "\"");
}

void refuse_unless(const JsonRef& config, const std::string& key, bool ok, const std::string& why) {
  if (!ok) config[key].fail(why);
}

void refuse_adapters(const Layer& L) {
  const JsonRef c = L.config();
  for (const char* key : {"lora_rank", "dora_rank"})
    if (auto r = c.find(key); r && !(r->is_number() && r->i64() == 0))
      r->fail(std::string(key[0] == 'l' ? "LoRA" : "DoRA") + "-adapted " + L.class_name() + " is not supported");
  if (auto q = c.find("quantization_config")) q->fail("a quantized " + L.class_name() + " is not supported");
}

Ints per_dim(const JsonRef& config, const std::string& key, size_t rank, std::optional<int64_t> fallback) {
  auto v = config.find(key);
  if (!v && fallback) return Ints(rank, *fallback);
  const JsonRef j = v ? *v : config[key];  // absent and required: fails naming the key
  Ints out = int_or_list(j, rank);
  for (int64_t x : out)
    if (x < 1) j.fail("expected positive sizes, got " + j.raw().dump());
  return out;
}

Ints keras_axes(const JsonRef& axis, size_t rank) {
  Ints out = axis.is_array() ? axis.ints() : Ints{axis.i64()};
  for (int64_t& a : out) {
    if (a < 0) a += int64_t(rank);
    if (a <= 0 || a >= int64_t(rank)) axis.fail("axis " + axis.raw().dump() + " is not a feature axis of a rank-" + std::to_string(rank) + " input");
  }
  std::sort(out.begin(), out.end());
  return out;
}

void check_spatial_input(const Layer& L, size_t rank) {
  if (auto df = L.config().find("data_format"); df && df->str() != "channels_last")
    df->fail("data_format \"" + df->str() + "\" is not supported (only channels_last)");
  if (L.shape().size() != rank + 2 || !is_float(L.type().dtype))
    L.fail(L.class_name() + " \"" + L.name() + "\" needs a float input [batch, " + std::to_string(rank) + " spatial dims, channels], got " +
           dtype_name(L.type().dtype) + " " + shape_str(L.shape()));
}

// "same": out = ceil(in / s), total = max((out - 1)·s + (k - 1)·d + 1 - in, 0), total / 2 before and
// the rest after (TF's rule, which tfjs follows: an odd pad goes at the end).
Pads keras_padding(const JsonRef& padding, const Shape& in, const Ints& kernel, const Ints& strides, const Ints& dilations, bool causal_ok) {
  const std::string mode = padding.str();
  if (mode != "valid" && mode != "same" && !(causal_ok && mode == "causal"))
    padding.fail("expected \"valid\"" + std::string(causal_ok ? ", \"same\" or \"causal\"" : " or \"same\"") + ", got \"" + mode + "\"");
  Pads p{Ints(kernel.size(), 0), Ints(kernel.size(), 0)};
  for (size_t i = 0; i < kernel.size(); ++i) {
    if (mode == "same") {
      const int64_t total = same_padding_total(in[i + 1], kernel[i], strides[i], dilations[i]);
      p.begin[i] = total / 2;
      p.end[i] = total - p.begin[i];
    } else if (mode == "causal") {
      p.begin[i] = (kernel[i] - 1) * dilations[i];
    }
  }
  return p;
}

void emit_activation(const Layer& L, const Act& act) {
  if (act.softmax)
    return L.emit(Layout::ChannelsLast, "Softmax", {L.x(Layout::ChannelsLast)}, attrs_of({{"axis", int64_t(-1)}, {"log", int64_t(act.log)}}));
  const Layout layout = L.common_layout();
  ir::Attrs a = act.params;
  a.set("function", act.function);
  L.emit(layout, "Activation", {L.x(layout)}, std::move(a));
}

}  // namespace pb::tensorflow
