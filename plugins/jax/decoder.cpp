// JAX dialect: a Flax (linen) module list in call order + the flattened variables pytree -> IR
// (docs/planets/jax.md). One translator per Flax module type and per function, each registered
// in one table.
//
// Layouts: Flax's spatial values are channels-last (N, spatial..., C); the IR's spatial ops are
// channels-first. Every Flax value keeps its Flax shape here and is held in the IR in either
// layout, converted by explicit Transpose nodes only where a module needs the other one. A
// value's channels-last IR form carries the module's name (so the stream's taps, in Flax's
// layout, line up); its channels-first form is named "<module>@NCHW" (@NCW, @NCDHW), which no
// tap names, so a tap is never compared with a value of another layout. A tapped module held
// only channels-first also gets its channels-last form, right after it, for the tap alone
// (Values::tap_view): the optimised compile drops it unless something reads it.
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "planetbridge/decoder.h"
#include "planetbridge/plugin.h"

namespace pb::jax {

namespace {

using Ints = std::vector<int64_t>;

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

std::string tensor_path(const std::string& name) { return json_path_member("tensors", name); }

// ------------------------------------------------------------------ values and layouts

enum class Layout { Last, First };

// A Flax value (a model input or a module's output).
struct Value {
  Shape shape;  // Flax's shape (channels last); dim 0 is the batch as captured
  DType dtype = DType::f32;
  std::string last, first;  // the IR values holding it channels-last / channels-first ("" until made)
  bool last_for_tap = false;  // `last` exists only for the module's tap (no module has read it)
};

// Rank < 3 has no spatial dims: both layouts are the same tensor.
bool spatial(const Shape& s) { return s.size() >= 3; }

std::string first_suffix(size_t rank) {
  switch (rank) {
    case 3: return "@NCW";
    case 4: return "@NCHW";
    case 5: return "@NCDHW";
    default: return "@channels_first";
  }
}

// The model's values by Flax name, and the graph they are emitted into.
class Values {
 public:
  explicit Values(ir::Graph& g) : g_(g) {}

  bool has(const std::string& name) const { return values_.count(name) != 0; }
  const Value& at(const std::string& name) const { return values_.at(name); }
  void define(const std::string& name, Value v) { values_[name] = std::move(v); }

  void emit(const std::string& name, const std::string& op, std::vector<std::string> inputs, ir::Attrs attrs,
            const std::string& origin) {
    add_node(g_, name, op, std::move(inputs), std::move(attrs), origin);
  }

  // The IR value holding `name` in `layout`, adding a Transpose the first time it is needed.
  std::string get(const std::string& name, Layout layout) {
    Value& v = values_.at(name);
    if (!spatial(v.shape)) return v.last.empty() ? v.first : v.last;
    const size_t rank = v.shape.size();
    if (layout == Layout::Last) v.last_for_tap = false;  // a module reads it: a layout it really has
    if (layout == Layout::Last && v.last.empty()) {
      v.last = name;  // the Flax layout: the tap's name
      emit(v.last, "Transpose", {v.first}, attrs_of({{"perm", channels_last_perm(rank)}}), "flax:" + name + " (to channels-last)");
    } else if (layout == Layout::First && v.first.empty()) {
      v.first = name + first_suffix(rank);
      emit(v.first, "Transpose", {v.last}, attrs_of({{"perm", channels_first_perm(rank)}}), "flax:" + name + " (to channels-first)");
    }
    return layout == Layout::Last ? v.last : v.first;
  }

  // The layout a value already has (channels-last when it has both). A channels-last form made
  // only for a tap does not count: element-wise consumers compute as they would without taps.
  Layout held(const std::string& name) const {
    const Value& v = values_.at(name);
    return v.last.empty() || v.last_for_tap ? Layout::First : Layout::Last;
  }

  // The stream taps `name` (Flax's layout, keyed by module name): when the value is held only
  // channels-first, emit its channels-last form now, named after the module, so the tap is
  // compared, in execution order (the first diverging module is the one named). A module that
  // later needs channels-last reuses this node; when none does, nothing reads it and the
  // optimised compile's remove_unused drops it, so the run-time graph is unchanged.
  void tap_view(const std::string& name) {
    Value& v = values_.at(name);
    if (!spatial(v.shape) || !v.last.empty()) return;
    get(name, Layout::Last);
    v.last_for_tap = true;
  }

 private:
  ir::Graph& g_;
  std::map<std::string, Value> values_;
};

// One entry of model.modules as its translator sees it.
class Module {
 public:
  Module(const Stream& stream, ir::Graph& graph, Values& values, std::set<std::string>& used, JsonRef json,
         std::string name, std::string origin, std::vector<std::string> inputs)
      : stream_(stream), graph_(graph), values_(values), used_(used), json_(json), name_(std::move(name)),
        origin_(std::move(origin)), inputs_(std::move(inputs)) {}

  const JsonRef& json() const { return json_; }
  const std::string& name() const { return name_; }
  size_t arity() const { return inputs_.size(); }

  // Input i: its Flax shape and dtype, and its IR value in a layout.
  const Shape& shape(size_t i = 0) const { return values_.at(inputs_.at(i)).shape; }
  DType dtype(size_t i = 0) const { return values_.at(inputs_.at(i)).dtype; }
  std::string in(size_t i, Layout layout) const { return values_.get(inputs_.at(i), layout); }
  std::string last(size_t i = 0) const { return in(i, Layout::Last); }
  std::string first(size_t i = 0) const { return in(i, Layout::First); }

  // For layout-free ops: channels-first when every input has the same spatial rank and one of
  // them exists only channels-first (no transposes in a channels-first chain); else Flax's.
  Layout common_layout() const {
    bool any_first_only = false;
    for (size_t i = 0; i < inputs_.size(); ++i) {
      if (!spatial(shape(i)) || shape(i).size() != shape(0).size()) return Layout::Last;
      any_first_only |= values_.held(inputs_[i]) == Layout::First;
    }
    return any_first_only ? Layout::First : Layout::Last;
  }

  // Flax keeps a module's variables at <collection>/<module path>/<leaf> in the flattened pytree.
  std::string var_name(const std::string& leaf, const std::string& collection = "params") const {
    return collection + "/" + name_ + "/" + leaf;
  }

  // The variable's stream tensor (marked as used), or nullptr when the stream has none.
  const Tensor* find_var(const std::string& leaf, const std::string& collection = "params") const {
    const std::string n = var_name(leaf, collection);
    const Tensor* t = stream_.find_tensor(n);
    if (!t) return nullptr;
    used_.insert(n);
    if (t->dtype() != DType::f32) throw Error(tensor_path(n) + ".dtype", std::string("expected f32, got ") + dtype_name(t->dtype()));
    return t;
  }
  const Tensor& var(const std::string& leaf, const std::string& collection = "params") const {
    if (const Tensor* t = find_var(leaf, collection)) return *t;
    json_.fail(json_["type"].str() + " \"" + name_ + "\": missing " + (collection == "params" ? "param" : "variable") +
               " \"" + var_name(leaf, collection) + "\" (no such tensor in the stream)");
  }
  // The variable checked against its Flax shape and added to the graph's weights; returns its name.
  std::string var_weight(const std::string& leaf, const Shape& want, const std::string& what,
                         const std::string& collection = "params") const {
    const Tensor& t = var(leaf, collection);
    if (t.shape() != want) fail_var_shape(leaf, what + " = " + shape_str(want), collection);
    add_weight(var_name(leaf, collection), t);
    return var_name(leaf, collection);
  }
  [[noreturn]] void fail_var_shape(const std::string& leaf, const std::string& expected,
                                   const std::string& collection = "params") const {
    const std::string n = var_name(leaf, collection);
    throw Error(tensor_path(n) + ".shape", "expected " + expected + ", got " + shape_str(stream_.find_tensor(n)->shape()));
  }
  // An optional param (use_bias / use_scale): required when `present`, an error when not.
  std::optional<std::string> optional_var(bool present, const std::string& flag, const std::string& leaf,
                                          const Shape& want, const std::string& what) const {
    if (present) return var_weight(leaf, want, what);
    if (find_var(leaf)) throw Error(tensor_path(var_name(leaf)), "the module has " + flag + " = false but the stream has its " + leaf);
    return std::nullopt;
  }

  void add_weight(const std::string& name, const Tensor& t) const { graph_.weights.emplace(name, t); }
  // A constant Flax implies (BatchNorm without scale: ones), named after the module.
  std::string constant(const std::string& suffix, Tensor t) const {
    graph_.weights[name_ + "." + suffix] = std::move(t);
    return name_ + "." + suffix;
  }

  // Adds the IR node computing this module's output in `layout`; `shape` is the Flax shape.
  void emit(Layout layout, const std::string& op, std::vector<std::string> inputs, ir::Attrs attrs, Shape shape,
            DType dtype = DType::f32) const {
    Value v{std::move(shape), dtype, "", ""};
    const bool first = layout == Layout::First && spatial(v.shape);
    const std::string out = first ? name_ + first_suffix(v.shape.size()) : name_;
    (first ? v.first : v.last) = out;
    values_.emit(out, op, std::move(inputs), std::move(attrs), origin_);
    values_.define(name_, std::move(v));
  }
  // An intermediate IR node of this module (a global pool before its flatten), named name + suffix.
  std::string emit_step(const std::string& suffix, const std::string& op, std::vector<std::string> inputs,
                        ir::Attrs attrs) const {
    values_.emit(name_ + suffix, op, std::move(inputs), std::move(attrs), origin_);
    return name_ + suffix;
  }

 private:
  const Stream& stream_;
  ir::Graph& graph_;
  Values& values_;
  std::set<std::string>& used_;
  JsonRef json_;
  std::string name_, origin_;
  std::vector<std::string> inputs_;
};

// A module type or a function: the attribute keys it understands (any other key is an error,
// never ignored), how many inputs it takes (0 = one or more) and the translation.
struct Translator {
  std::vector<std::string> attributes;
  size_t arity = 1;
  std::function<void(const Module&)> translate;
};

// ------------------------------------------------------------------ attribute helpers

// Only the f32 computation the IR does; a lower-precision Flax module would compute otherwise.
void check_float32(const JsonRef& j) {
  for (const char* key : {"dtype", "param_dtype"})
    if (auto d = j.find(key); d && d->str() != "float32") d->fail("only float32 is supported, got \"" + d->str() + "\"");
  if (auto p = j.find("precision")) p->fail("only the default precision (null) is supported");
}

int64_t positive(const JsonRef& j) {
  const int64_t v = j.i64();
  if (v <= 0) j.fail("expected a positive integer, got " + std::to_string(v));
  return v;
}

// An int or a list of n ints (Flax's strides, kernel_dilation); absent or null gives `fallback`.
Ints per_dim(const JsonRef& j, const std::string& key, size_t n, int64_t fallback) {
  auto v = j.find(key);
  if (!v) return Ints(n, fallback);
  if (!v->is_array()) return Ints(n, positive(*v));
  if (v->size() != n) v->fail("expected " + std::to_string(n) + " values (one per spatial dim), got " + std::to_string(v->size()));
  Ints out;
  for (const JsonRef& e : v->items()) out.push_back(positive(e));
  return out;
}

// Flax's (and lax's) padding: "SAME" puts the odd element at the end (like TF), "SAME_LOWER" at
// the beginning, "VALID" none; an int pads both sides; a list gives one int or [low, high] pair
// per spatial dim. `int_ok`: Conv takes ints, the pooling functions only pairs.
struct Pads {
  Ints begin, end;
};
Pads flax_padding(const JsonRef& pad, const Shape& in, const Ints& window, const Ints& strides, const Ints& dilations,
                  bool int_ok) {
  const size_t n = window.size();
  Pads p{Ints(n, 0), Ints(n, 0)};
  if (pad.is_string()) {
    const std::string mode = pad.str();
    if (mode == "VALID") return p;
    if (mode != "SAME" && mode != "SAME_LOWER")
      pad.fail("expected \"SAME\", \"VALID\", \"SAME_LOWER\"" + std::string(int_ok ? ", an int" : "") +
               " or [low, high] pairs, got \"" + mode + "\"" +
               (mode == "CIRCULAR" || mode == "CAUSAL" ? " (not supported)" : ""));
    for (size_t i = 0; i < n; ++i) {
      // lax.padtype_to_pads: out = ceil(in / s); total = max((out - 1) s + (k - 1) d + 1 - in, 0).
      const int64_t total = same_padding_total(in[i], window[i], strides[i], dilations[i]);
      const int64_t small = total / 2;
      p.begin[i] = mode == "SAME" ? small : total - small;
      p.end[i] = total - p.begin[i];
    }
    return p;
  }
  auto check = [](const JsonRef& e) {
    const int64_t v = e.i64();
    if (v < 0) e.fail("negative padding (cropping) is not supported, got " + std::to_string(v));
    return v;
  };
  if (!pad.is_array()) {
    if (!int_ok) pad.fail("expected \"SAME\", \"VALID\" or a list of [low, high] pairs");
    p.begin = p.end = Ints(n, check(pad));
    return p;
  }
  if (pad.size() != n) pad.fail("expected " + std::to_string(n) + " entries (one per spatial dim), got " + std::to_string(pad.size()));
  for (size_t i = 0; i < n; ++i) {
    const JsonRef e = pad[i];
    if (e.is_array()) {
      if (e.size() != 2) e.fail("expected a [low, high] pair, got " + std::to_string(e.size()) + " values");
      p.begin[i] = check(e[0]);
      p.end[i] = check(e[1]);
    } else {
      if (!int_ok) e.fail("expected a [low, high] pair");
      p.begin[i] = p.end[i] = check(e);
    }
  }
  return p;
}

// floor((in + pb + pe - d (k - 1) - 1) / s) + 1 per spatial dim, as lax computes it.
Ints window_output(const JsonRef& where, const Shape& in, const Ints& window, const Ints& strides, const Ints& dilations,
                   const Pads& p) {
  Ints out;
  for (size_t i = 0; i < window.size(); ++i) {
    const int64_t span = dilations[i] * (window[i] - 1) + 1, padded = in[i] + p.begin[i] + p.end[i];
    if (padded < span)
      where.fail("spatial dim " + std::to_string(i) + " of size " + std::to_string(in[i]) + " (padded " +
                 std::to_string(padded) + ") is smaller than the window " + std::to_string(span));
    out.push_back((padded - span) / strides[i] + 1);
  }
  return out;
}

// Every windowed module reads x [batch, spatial (n dims)..., C]: exactly one batch dim.
void check_spatial_input(const Module& m, size_t n, const std::string& what) {
  if (m.shape().size() != n + 2)
    m.json().fail(what + " over " + std::to_string(n) + " spatial dims needs an input [batch, spatial..., features] of rank " +
                  std::to_string(n + 2) + ", got " + shape_str(m.shape()) +
                  " (inputs without a batch dim or with several are not supported)");
}

Shape with_spatial(const Shape& in, const Ints& spatial_dims, int64_t channels) {
  Shape s = {in[0]};
  s.insert(s.end(), spatial_dims.begin(), spatial_dims.end());
  s.push_back(channels);
  return s;
}

Tensor filled(int64_t n, float v) {
  Tensor t(DType::f32, {n});
  for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = v;
  return t;
}

// Flax's reduction_axes / feature_axes / axis: only the last axis (-1, rank - 1 or [-1]).
void check_last_axis(const JsonRef& j, const std::string& key, size_t rank) {
  auto v = j.find(key);
  if (!v) return;
  Ints axes = v->is_array() ? v->ints() : Ints{v->i64()};
  if (axes.size() != 1 || (axes[0] != -1 && axes[0] != int64_t(rank) - 1))
    v->fail("only the last axis (-1) is supported");
}

// ------------------------------------------------------------------ modules

void translate_dense(const Module& m) {
  const JsonRef& j = m.json();
  const int64_t features = positive(j["features"]);
  const bool use_bias = j.boolean("use_bias", true);  // Flax's default
  check_float32(j);
  const Tensor& kernel = m.var("kernel");
  if (kernel.shape().size() != 2 || kernel.shape()[1] != features)
    m.fail_var_shape("kernel", "[in, features] with features = " + std::to_string(features) + " (Flax's layout)");
  const int64_t in = kernel.shape()[0];
  if (m.shape().empty() || m.shape().back() != in)
    j.fail("Dense \"" + m.name() + "\": its kernel takes " + std::to_string(in) + " features, the input is " + shape_str(m.shape()));
  // Flax's kernel is [in, out], the IR's Dense weight [out, in]: always a transposing copy,
  // because that is Flax's layout, never read from the shape (a square kernel fits both).
  const std::string weight_name = m.var_name("kernel") + ".T";
  m.add_weight(weight_name, permuted(kernel, {1, 0}));

  // Dense contracts the last axis: channels-last for a spatial input.
  std::vector<std::string> inputs = {m.last(), weight_name};
  if (auto b = m.optional_var(use_bias, "use_bias", "bias", {features}, "[features]")) inputs.push_back(*b);
  Shape out = m.shape();
  out.back() = features;
  m.emit(Layout::Last, "Dense", inputs, {}, out);
}

// flax.linen.Conv: x [N, spatial..., in], kernel [kernel_size..., in / groups, features].
void translate_conv(const Module& m) {
  const JsonRef& j = m.json();
  check_float32(j);
  const int64_t features = positive(j["features"]);
  JsonRef ks = j["kernel_size"];
  // Flax rejects an int kernel_size (its rank would be ambiguous): a list, one per spatial dim.
  if (!ks.is_array() || ks.size() < 1 || ks.size() > 3) ks.fail("expected a list of 1 to 3 ints (one per spatial dim)");
  Ints kernel;
  for (const JsonRef& e : ks.items()) kernel.push_back(positive(e));
  const size_t n = kernel.size();
  check_spatial_input(m, n, "Conv");
  const Ints strides = per_dim(j, "strides", n, 1), dilations = per_dim(j, "kernel_dilation", n, 1);
  if (per_dim(j, "input_dilation", n, 1) != Ints(n, 1))
    j["input_dilation"].fail("input_dilation (a fractionally strided conv) is not supported; only 1");
  const int64_t groups = j.find("feature_group_count") ? positive(j["feature_group_count"]) : 1;
  const int64_t in_c = m.shape().back();
  if (in_c % groups || features % groups)
    j["feature_group_count"].fail(std::to_string(groups) + " groups do not divide " + std::to_string(in_c) +
                                  " input features and " + std::to_string(features) + " features");
  const Shape in_spatial(m.shape().begin() + 1, m.shape().end() - 1);
  static const nlohmann::json same = "SAME";  // Flax Conv's default
  const Pads pads = flax_padding(j.find("padding") ? j["padding"] : JsonRef(same, j.path() + ".padding"), in_spatial,
                                 kernel, strides, dilations, true);

  // Flax's kernel [k..., I/g, O] -> the IR's [O, I/g, k...]: always a transposing copy (Flax's
  // layout, never read from the shape; a square kernel with I = O fits both).
  const int64_t ig = in_c / groups;
  Shape want = kernel;
  want.push_back(ig);
  want.push_back(features);
  const Tensor& k = m.var("kernel");
  if (k.shape() != want)
    m.fail_var_shape("kernel", "[kernel_size..., in_features / feature_group_count, features] = " + shape_str(want) + " (Flax's layout)");
  const std::string weight_name = m.var_name("kernel") + "." + std::string("OI") + std::string("DHW").substr(3 - n);
  m.add_weight(weight_name, permuted(k, kernel_oi_first_perm(k.shape().size())));

  std::vector<std::string> inputs = {m.first(), weight_name};
  if (auto b = m.optional_var(j.boolean("use_bias", true), "use_bias", "bias", {features}, "[features]")) inputs.push_back(*b);
  ir::Attrs a = window_attrs(strides, dilations, pads.begin, pads.end);
  a.set("groups", groups);
  const Ints out = window_output(j, in_spatial, kernel, strides, dilations, pads);
  m.emit(Layout::First, "Conv", inputs, std::move(a), with_spatial(m.shape(), out, features));
}

// flax.linen.BatchNorm at inference: (x - mean) * rsqrt(var + epsilon) * scale + bias with the
// batch_stats collection's running statistics.
void translate_batchnorm(const Module& m) {
  const JsonRef& j = m.json();
  check_float32(j);
  // Flax's default is None (given at call time); in training mode it normalises with the batch.
  JsonRef ura = j["use_running_average"];
  if (!ura.boolean())
    ura.fail("BatchNorm with use_running_average = false normalises with the batch's statistics; capture at inference (true)");
  if (auto a = j.find("axis_name")) a->fail("cross-device statistics (axis_name) are not supported");
  check_last_axis(j, "axis", m.shape().size());
  if (m.shape().size() < 2) j.fail("BatchNorm needs an input [batch, ..., features], got " + shape_str(m.shape()));
  const int64_t c = m.shape().back();
  const std::string what = "[features] (the input's last dim)";
  std::vector<std::string> inputs = {m.first()};
  auto scale = m.optional_var(j.boolean("use_scale", true), "use_scale", "scale", {c}, what);
  auto bias = m.optional_var(j.boolean("use_bias", true), "use_bias", "bias", {c}, what);
  inputs.push_back(scale ? *scale : m.constant("scale", filled(c, 1.f)));
  inputs.push_back(bias ? *bias : m.constant("bias", filled(c, 0.f)));
  inputs.push_back(m.var_weight("mean", {c}, what, "batch_stats"));
  inputs.push_back(m.var_weight("var", {c}, what, "batch_stats"));
  m.emit(Layout::First, "BatchNorm", inputs, attrs_of({{"eps", j.f64("epsilon", 1e-5)}}), m.shape());
}

// flax.linen.LayerNorm / RMSNorm over the last axis (their defaults: epsilon 1e-6).
void translate_norm(const Module& m, bool rms) {
  const JsonRef& j = m.json();
  check_float32(j);
  check_last_axis(j, "reduction_axes", m.shape().size());
  check_last_axis(j, "feature_axes", m.shape().size());
  if (m.shape().empty()) j.fail("a norm needs an input of rank >= 1");
  const int64_t f = m.shape().back();
  const std::string what = "[features] (the input's last dim)";
  auto scale = m.optional_var(j.boolean("use_scale", true), "use_scale", "scale", {f}, what);
  const ir::Attrs a = attrs_of({{"axis", int64_t(-1)}, {"eps", j.f64("epsilon", 1e-6)}});
  if (rms) {
    std::vector<std::string> inputs = {m.last()};
    if (scale) inputs.push_back(*scale);
    m.emit(Layout::Last, "RMSNorm", inputs, a, m.shape());
    return;
  }
  auto bias = m.optional_var(j.boolean("use_bias", true), "use_bias", "bias", {f}, what);
  m.emit(Layout::Last, "LayerNorm", {m.last(), scale.value_or(""), bias.value_or("")}, a, m.shape());
}

// flax.linen.Embed: jnp.take(embedding, ids, axis=0); embedding [num_embeddings, features].
void translate_embed(const Module& m) {
  const JsonRef& j = m.json();
  check_float32(j);
  if (m.dtype() != DType::i32 && m.dtype() != DType::i64)
    j.fail(std::string("Embed needs integer ids (i32 or i64), got ") + dtype_name(m.dtype()));
  const int64_t v = positive(j["num_embeddings"]), d = positive(j["features"]);
  const std::string table = m.var_weight("embedding", {v, d}, "[num_embeddings, features]");
  Shape out = m.shape();
  out.push_back(d);
  m.emit(Layout::Last, "Embedding", {m.last(), table}, {}, out);
}

// flax.linen.Dropout: the identity when deterministic (Flax's default is None: given at call time).
void translate_dropout(const Module& m) {
  const JsonRef& j = m.json();
  if (!j.boolean("deterministic", false) && j.f64("rate", 0.5) != 0.0)
    j.fail("Dropout that is not deterministic is random; capture with deterministic = true");
  const Layout l = m.common_layout();
  m.emit(l, "Identity", {m.in(0, l)}, {}, m.shape(), m.dtype());
}

// x.reshape(shape) over Flax's channels-last layout (flatten order H, W, C). Dim 0 is the batch:
// the captured batch size (x.shape[0]) or -1 becomes the IR's "keep dim 0" / "infer".
void translate_reshape(const Module& m) {
  const JsonRef& j = m.json();
  JsonRef sj = j["shape"];
  Ints shape = sj.ints();
  if (shape.empty()) sj.fail("expected a non-empty shape");
  const int64_t batch = m.shape().empty() ? 0 : m.shape()[0];
  if (shape[0] != batch && shape[0] != -1)
    sj[0].fail("the batch dim must stay first (x.reshape((x.shape[0], ...))): expected " + std::to_string(batch) +
               " or -1, got " + std::to_string(shape[0]));
  int64_t known = 1, total = 1, infer = -1;
  for (int64_t d : m.shape()) total *= d;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) sj[i].fail("more than one -1");
      infer = int64_t(i);
    } else if (shape[i] <= 0) {
      sj[i].fail("expected a positive size or -1, got " + std::to_string(shape[i]));
    } else {
      known *= shape[i];
    }
  }
  Shape out = shape;
  if (infer >= 0) out[infer] = known ? total / known : 0;
  int64_t count = 1;
  for (int64_t d : out) count *= d;
  if (count != total) sj.fail("cannot reshape " + shape_str(m.shape()) + " to " + shape_str(shape));
  Ints ir_shape = shape;
  if (ir_shape[0] == batch) ir_shape[0] = 0;  // the IR runs any batch size
  m.emit(Layout::Last, "Reshape", {m.last()}, attrs_of({{"shape", ir_shape}}), out);
}

// jnp.mean / jnp.max over every spatial axis (1 .. rank-2) of [N, spatial..., C]: a global pool.
Translator global_reduce(const std::string& mode) {
  return {{"axis", "keepdims"}, 1, [mode](const Module& m) {
            const JsonRef& j = m.json();
            const Shape& s = m.shape();
            const int64_t r = int64_t(s.size());
            JsonRef aj = j["axis"];
            Ints axes = aj.is_array() ? aj.ints() : Ints{aj.i64()};
            for (int64_t& a : axes)
              if (a < 0) a += r;
            std::sort(axes.begin(), axes.end());
            Ints spatial_axes;
            for (int64_t d = 1; d + 1 < r; ++d) spatial_axes.push_back(d);
            if (r < 3 || axes != spatial_axes)
              aj.fail("only a reduction over every spatial axis (1 .. rank-2 of [batch, spatial..., features]), a global "
                      "pool, is supported; the input is " + shape_str(s));
            if (j.boolean("keepdims", false)) j["keepdims"].fail("keepdims = true is not supported");
            // Pool gives [N, C, 1...]; flattening the ones gives Flax's [N, C].
            const std::string pooled = m.emit_step("@pool", "Pool", {m.first()}, attrs_of({{"mode", mode}, {"global", int64_t(1)}}));
            m.emit(Layout::Last, "Flatten", {pooled}, attrs_of({{"start", int64_t(1)}, {"end", int64_t(-1)}}), {s[0], s.back()});
          }};
}

// Numpy broadcasting of two Flax shapes.
Shape broadcast(const Module& m, const Shape& a, const Shape& b) {
  Shape out(std::max(a.size(), b.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    const int64_t x = i < out.size() - a.size() ? 1 : a[i - (out.size() - a.size())];
    const int64_t y = i < out.size() - b.size() ? 1 : b[i - (out.size() - b.size())];
    if (x != y && x != 1 && y != 1) m.json().fail("shapes " + shape_str(a) + " and " + shape_str(b) + " do not broadcast");
    out[i] = x == 1 ? y : x;
  }
  return out;
}

Translator binary(const std::string& op) {
  return {{}, 2, [op](const Module& m) {
            const Layout l = m.common_layout();  // equal ranks: broadcasting is layout-free
            m.emit(l, op, {m.in(0, l), m.in(1, l)}, {}, broadcast(m, m.shape(0), m.shape(1)));
          }};
}

void translate_concatenate(const Module& m) {
  JsonRef aj = m.json()["axis"];
  const int64_t r = int64_t(m.shape().size());
  const int64_t flax_axis = aj.i64();
  if (flax_axis < -r || flax_axis >= r) aj.fail("axis " + std::to_string(flax_axis) + " is out of range for rank " + std::to_string(r));
  const int64_t axis = flax_axis < 0 ? flax_axis + r : flax_axis;
  Shape out = m.shape();
  out[axis] = 0;
  std::vector<std::string> ins;
  const Layout l = m.common_layout();
  for (size_t i = 0; i < m.arity(); ++i) {
    if (m.shape(i).size() != size_t(r)) aj.fail("inputs of different ranks");
    out[axis] += m.shape(i)[axis];
    ins.push_back(m.in(i, l));
  }
  // Channels-first moves the features (last) axis to 1 and the spatial axes one up.
  const int64_t ir_axis = l == Layout::Last ? flax_axis : axis == 0 ? 0 : axis == r - 1 ? 1 : axis + 1;
  m.emit(l, "Concat", ins, attrs_of({{"axis", ir_axis}}), out);
}

const std::map<std::string, Translator>& module_table() {
  static const std::map<std::string, Translator> t = {
      {"Dense", {{"features", "use_bias", "dtype", "param_dtype", "precision"}, 1, translate_dense}},
      {"Conv",
       {{"features", "kernel_size", "strides", "padding", "input_dilation", "kernel_dilation", "feature_group_count",
         "use_bias", "dtype", "param_dtype", "precision"},
        1, translate_conv}},
      // momentum and use_fast_variance only shape training: informational at inference.
      {"BatchNorm",
       {{"use_running_average", "axis", "momentum", "epsilon", "use_bias", "use_scale", "axis_name", "use_fast_variance",
         "dtype", "param_dtype"},
        1, translate_batchnorm}},
      // use_fast_variance (mean(x²) - mean(x)², Flax's default) and the IR's mean((x - mean)²)
      // agree within f32 rounding for activations of unit scale.
      {"LayerNorm",
       {{"epsilon", "use_bias", "use_scale", "reduction_axes", "feature_axes", "use_fast_variance", "dtype", "param_dtype"},
        1, [](const Module& m) { translate_norm(m, false); }}},
      {"RMSNorm",
       {{"epsilon", "use_scale", "reduction_axes", "feature_axes", "dtype", "param_dtype"}, 1,
        [](const Module& m) { translate_norm(m, true); }}},
      {"Embed", {{"num_embeddings", "features", "dtype", "param_dtype"}, 1, translate_embed}},
      {"Dropout", {{"rate", "deterministic", "broadcast_dims"}, 1, translate_dropout}},
      // jnp operators between module outputs (residual connections): numpy broadcasting, as the IR.
      {"add", binary("Add")},
      {"subtract", binary("Sub")},
      {"multiply", binary("Mul")},
      {"concatenate", {{"axis"}, 0, translate_concatenate}},
      {"reshape", {{"shape"}, 1, translate_reshape}},
      {"mean", global_reduce("avg")},
      {"max", global_reduce("max")},
      // {"type": "fn", "fn": "nn.relu"}: a function of the table below.
      {"fn", {}},
  };
  return t;
}

// ------------------------------------------------------------------ functions (flax.linen / jax.nn)

// Element-wise: computed in whichever layout the input already has.
Translator activation(const std::string& function, std::vector<std::string> attributes = {},
                      std::function<ir::Attrs(const JsonRef&)> params = nullptr) {
  return {std::move(attributes), 1, [function, params](const Module& m) {
            ir::Attrs a = params ? params(m.json()) : ir::Attrs{};
            if (!a.has("function")) a.set("function", function);  // nn.gelu picks its own
            const Layout l = m.common_layout();
            m.emit(l, "Activation", {m.in(0, l)}, std::move(a), m.shape());
          }};
}

Translator softmax(bool log) {
  return {{"axis"}, 1, [log](const Module& m) {
            // jax.nn.softmax(x, axis=-1); a tuple of axes has no IR equivalent (i64 fails on it).
            m.emit(Layout::Last, "Softmax", {m.last()}, attrs_of({{"axis", m.json().i64("axis", -1)}, {"log", int64_t(log)}}),
                   m.shape());
          }};
}

// flax.linen.max_pool / avg_pool(inputs, window_shape, strides=None (ones), padding="VALID",
// count_include_pad=True): max pads with -inf (the IR's max pool ignores the padding), avg
// divides by the whole window when count_include_pad.
Translator pool(const std::string& mode) {
  std::vector<std::string> attributes = {"window_shape", "strides", "padding"};
  if (mode == "avg") attributes.push_back("count_include_pad");
  return {attributes, 1, [mode](const Module& m) {
            const JsonRef& j = m.json();
            JsonRef ws = j["window_shape"];
            if (!ws.is_array() || ws.size() < 1 || ws.size() > 3) ws.fail("expected a list of 1 to 3 ints (one per spatial dim)");
            Ints window;
            for (const JsonRef& e : ws.items()) window.push_back(positive(e));
            const size_t n = window.size();
            check_spatial_input(m, n, j["fn"].str());
            const Ints strides = per_dim(j, "strides", n, 1), ones(n, 1);
            const Shape in_spatial(m.shape().begin() + 1, m.shape().end() - 1);
            static const nlohmann::json valid = "VALID";  // the pooling functions' default
            const Pads pads = flax_padding(j.find("padding") ? j["padding"] : JsonRef(valid, j.path() + ".padding"), in_spatial,
                                           window, strides, ones, false);
            ir::Attrs a = window_attrs(strides, ones, pads.begin, pads.end);
            a.set("mode", mode);
            a.set("kernel", window);
            if (mode == "avg") a.set("count_include_pad", int64_t(j.boolean("count_include_pad", true)));
            const Ints out = window_output(j, in_spatial, window, strides, ones, pads);
            m.emit(Layout::First, "Pool", {m.first()}, std::move(a), with_spatial(m.shape(), out, m.shape().back()));
          }};
}

const std::map<std::string, Translator>& function_table() {
  static const std::map<std::string, Translator> t = {
      {"nn.relu", activation("relu")},
      {"nn.relu6", activation("relu6")},
      {"nn.tanh", activation("tanh")},
      {"nn.sigmoid", activation("sigmoid")},
      {"nn.silu", activation("silu")},
      {"nn.swish", activation("silu")},  // jax.nn.swish is jax.nn.silu
      {"nn.selu", activation("selu")},
      {"nn.softplus", activation("softplus")},
      {"nn.hard_swish", activation("hardswish")},
      {"nn.hard_silu", activation("hardswish")},
      // relu6(x + 3) / 6 = clip(x/6 + 1/2, 0, 1)
      {"nn.hard_sigmoid",
       activation("hard_sigmoid", {}, [](const JsonRef&) { return attrs_of({{"alpha", 1.0 / 6.0}, {"beta", 0.5}}); })},
      // jax.nn.gelu defaults to approximate=True, the tanh form (unlike torch's GELU).
      {"nn.gelu",
       activation("gelu", {"approximate"},
                  [](const JsonRef& j) {
                    return attrs_of({{"function", std::string(j.boolean("approximate", true) ? "gelu_tanh" : "gelu_erf")}});
                  })},
      {"nn.leaky_relu",
       activation("leaky_relu", {"negative_slope"},
                  [](const JsonRef& j) { return attrs_of({{"alpha", j.f64("negative_slope", 0.01)}}); })},
      {"nn.elu", activation("elu", {"alpha"}, [](const JsonRef& j) { return attrs_of({{"alpha", j.f64("alpha", 1.0)}}); })},
      {"nn.softmax", softmax(false)},
      {"nn.log_softmax", softmax(true)},
      {"nn.max_pool", pool("max")},
      {"nn.avg_pool", pool("avg")},
  };
  return t;
}

// ------------------------------------------------------------------ the model

// Fails at the first key of `json` that is neither common nor one the translator understands.
void check_keys(const JsonRef& json, const std::vector<std::string>& understood, const std::string& what) {
  static const std::set<std::string> common = {"type", "name", "inputs", "fn"};
  for (const std::string& key : json.keys()) {
    if (common.count(key) || std::find(understood.begin(), understood.end(), key) != understood.end()) continue;
    if (auto v = json.find(key))
      v->fail("attribute not understood for " + what +
              (understood.empty() ? " (it takes none)" : " (known: " + joined(understood) + ")"));
  }
}

class JaxDialect : public Dialect {
 public:
  std::string planet() const override { return "jax"; }
  std::string version() const override { return "0.2.0"; }

  std::vector<std::string> source_types() const override {
    std::vector<std::string> out;
    for (const auto& kv : module_table())
      if (kv.first != "fn") out.push_back(kv.first);
    for (const auto& kv : function_table()) out.push_back(kv.first);
    return out;
  }

  // jax-js under Node by default; PLANETBRIDGE_JAX_CAPTURE=flax serves the same fixtures from
  // real JAX/Flax (capture_flax.py) where Python has them.
  CaptureCommand capture() const override {
    const std::string dir = std::string(PB_PLUGIN_SOURCE_DIR) + "/capture/";
    const char* which = std::getenv("PLANETBRIDGE_JAX_CAPTURE");
    if (which && std::string(which) == "flax") return serve_command("PLANETBRIDGE_PYTHON", "python3", dir + "capture_flax.py");
    return serve_command("PLANETBRIDGE_NODE", "node", dir + "capture.js");
  }

  ir::Graph decode(const Stream& stream) const override {
    JsonRef model = model_of(stream, "flax.linen");

    ir::Graph g;
    g.metadata = stream_metadata(stream);
    Values values(g);
    std::set<std::string> used;

    // model.inputs names the graph inputs, in the order of the stream's "inputs" (Flax's layout).
    JsonRef input_names = model["inputs"];
    if (input_names.size() != stream.inputs.size())
      input_names.fail("names " + std::to_string(input_names.size()) + " inputs, the stream has " +
                       std::to_string(stream.inputs.size()));
    for (size_t i = 0; i < stream.inputs.size(); ++i) {
      const std::string name = input_names[i].str();
      if (values.has(name)) input_names[i].fail("\"" + name + "\" is named twice");
      const Tensor& t = stream.tensor(stream.inputs[i], json_path_index("inputs", i));
      const DType dtype = t.dtype() == DType::f64 ? DType::f32 : t.dtype();
      Shape shape = t.shape();
      if (!shape.empty()) shape[0] = -1;  // batch: fixed when compiled
      g.inputs.push_back({name, dtype, shape});
      values.define(name, {t.shape(), dtype, name, ""});
      used.insert(stream.inputs[i]);
    }

    // Sequential by default: a module without "inputs" takes the previous module's output.
    std::string previous = g.inputs.size() == 1 ? g.inputs[0].name : "";
    for (const JsonRef& mj : model["modules"].items()) {
      JsonRef name_json = mj["name"];
      const std::string name = name_json.str();
      if (name.empty()) name_json.fail("expected a non-empty module name");
      if (values.has(name)) name_json.fail("\"" + name + "\" is already defined");

      JsonRef type_json = mj["type"];
      const std::string type = type_json.str();
      auto mt = module_table().find(type);
      if (mt == module_table().end())
        type_json.fail("unknown module type \"" + type + "\" (known: " + joined(table_keys(module_table())) + ")");
      const Translator* tr = &mt->second;
      std::string what = type;
      if (type == "fn") {
        JsonRef fn = mj["fn"];
        auto ft = function_table().find(fn.str());
        if (ft == function_table().end())
          fn.fail("unknown function \"" + fn.str() + "\" (known: " + joined(table_keys(function_table())) + ")");
        tr = &ft->second;
        what = fn.str();
      } else if (mj.has("fn")) {
        mj["fn"].fail("only modules of type \"fn\" name a function");
      }
      check_keys(mj, tr->attributes, what);

      std::vector<std::string> inputs;
      if (auto in = mj.find("inputs")) {
        for (const JsonRef& i : in->items()) {
          if (!values.has(i.str())) i.fail("\"" + i.str() + "\" is not defined before this module");
          inputs.push_back(i.str());
        }
        if (tr->arity ? inputs.size() != tr->arity : inputs.empty())
          in->fail(what + " takes " + (tr->arity ? std::to_string(tr->arity) : "one or more") + " inputs, got " +
                   std::to_string(inputs.size()));
      } else if (tr->arity == 1 && !previous.empty()) {
        inputs = {previous};
      } else {
        mj.fail(what + " \"" + name + "\" needs \"inputs\" (only a one-input module after a single value defaults to it)");
      }
      // Only Embed reads integers; every other module computes in f32.
      for (size_t i = 0; i < inputs.size(); ++i)
        if (type != "Embed" && values.at(inputs[i]).dtype != DType::f32)
          mj.fail(what + " \"" + name + "\" reads \"" + inputs[i] + "\" of dtype " + dtype_name(values.at(inputs[i]).dtype) +
                  "; only Embed takes integer ids");

      Module m(stream, g, values, used, mj, name, "flax:" + name + " (" + what + ")", inputs);
      tr->translate(m);
      if (stream.taps.count(name)) values.tap_view(name);
      previous = name;
    }

    // Outputs in Flax's layout: a channels-first value gets its Transpose back here.
    JsonRef outputs = model["outputs"];
    for (const JsonRef& o : outputs.items()) {
      if (!values.has(o.str())) o.fail("\"" + o.str() + "\" is not an input or module of the model");
      g.outputs.push_back(values.get(o.str(), Layout::Last));
    }
    if (g.outputs.size() != stream.expected.size())
      outputs.fail("names " + std::to_string(g.outputs.size()) + " outputs, the stream has " +
                   std::to_string(stream.expected.size()) + " expected outputs");

    // Nothing silently dropped: every tensor is an input, an output, a tap or a used variable.
    for (const auto& e : stream.expected) used.insert(e);
    for (const auto& [node, tensor] : stream.taps) used.insert(tensor);
    for (const auto& [tname, t] : stream.tensors)
      if (!used.count(tname)) throw Error(tensor_path(tname), "not used by any module of model.modules");
    g.validate();
    return g;
  }
};

}  // namespace
}  // namespace pb::jax

PLANETBRIDGE_DIALECT(pb::jax::JaxDialect)
