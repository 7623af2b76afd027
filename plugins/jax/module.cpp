#include "module.h"

namespace pb::jax {

namespace {
std::string tensor_path(const std::string& name) { return json_path_member("tensors", name); }
}  // namespace

const Tensor* Module::find_var(const std::string& leaf, const std::string& collection) const {
  const std::string n = var_name(leaf, collection);
  const Tensor* t = d_.find_tensor(n);
  if (t && t->dtype() != DType::f32) throw Error(tensor_path(n) + ".dtype", std::string("expected f32, got ") + dtype_name(t->dtype()));
  return t;
}

const Tensor& Module::var(const std::string& leaf, const std::string& collection) const {
  if (const Tensor* t = find_var(leaf, collection)) return *t;
  json_.fail(json_["type"].str() + " \"" + name_ + "\": missing " + (collection == "params" ? "param" : "variable") + " \"" +
             var_name(leaf, collection) + "\" (no such tensor in the stream)");
}

std::string Module::var_weight(const std::string& leaf, const Shape& want, const std::string& what,
                               const std::string& collection) const {
  const Tensor& t = var(leaf, collection);
  if (t.shape() != want) fail_var_shape(leaf, what + " = " + shape_str(want), collection);
  return d_.weight(var_name(leaf, collection), tensor_path(var_name(leaf, collection)));
}

void Module::fail_var_shape(const std::string& leaf, const std::string& expected, const std::string& collection) const {
  const std::string n = var_name(leaf, collection);
  throw Error(tensor_path(n) + ".shape", "expected " + expected + ", got " + shape_str(d_.stream().find_tensor(n)->shape()));
}

std::optional<std::string> Module::optional_var(bool present, const std::string& flag, const std::string& leaf, const Shape& want,
                                                const std::string& what) const {
  if (present) return var_weight(leaf, want, what);
  if (find_var(leaf)) throw Error(tensor_path(var_name(leaf)), "the module has " + flag + " = false but the stream has its " + leaf);
  return std::nullopt;
}

// ------------------------------------------------------------------ attribute helpers

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

Ints per_dim(const JsonRef& j, const std::string& key, size_t n, int64_t fallback) {
  auto v = j.find(key);
  if (!v) return Ints(n, fallback);
  if (!v->is_array()) return Ints(n, positive(*v));
  if (v->size() != n) v->fail("expected " + std::to_string(n) + " values (one per spatial dim), got " + std::to_string(v->size()));
  Ints out;
  for (const JsonRef& e : v->items()) out.push_back(positive(e));
  return out;
}

Ints window_shape(const JsonRef& j) {
  if (!j.is_array() || j.size() < 1 || j.size() > 3) j.fail("expected a list of 1 to 3 ints (one per spatial dim)");
  Ints out;
  for (const JsonRef& e : j.items()) out.push_back(positive(e));
  return out;
}

void check_spatial_input(const Module& m, size_t n, const std::string& what) {
  if (m.shape().size() != n + 2)
    m.json().fail(what + " over " + std::to_string(n) + " spatial dims needs an input [batch, spatial..., features] of rank " +
                  std::to_string(n + 2) + ", got " + shape_str(m.shape()) +
                  " (inputs without a batch dim or with several are not supported)");
}

void check_last_axis(const JsonRef& j, const std::string& key, size_t rank) {
  auto v = j.find(key);
  if (!v) return;
  Ints axes = v->is_array() ? v->ints() : Ints{v->i64()};
  if (axes.size() != 1 || (axes[0] != -1 && axes[0] != int64_t(rank) - 1)) v->fail("only the last axis (-1) is supported");
}

// "SAME" puts the odd element at the end (like TF), "SAME_LOWER" at the beginning, "VALID"
// none; an int pads both sides; a list gives one int or [low, high] pair per spatial dim.
Pads flax_padding(const JsonRef& pad, const Shape& in, const Ints& window, const Ints& strides, const Ints& dilations, bool int_ok) {
  const size_t n = window.size();
  Pads p{Ints(n, 0), Ints(n, 0)};
  if (pad.is_string()) {
    const std::string mode = pad.str();
    if (mode == "VALID") return p;
    if (mode != "SAME" && mode != "SAME_LOWER")
      pad.fail("expected \"SAME\", \"VALID\", \"SAME_LOWER\"" + std::string(int_ok ? ", an int" : "") + " or [low, high] pairs, got \"" +
               mode + "\"" + (mode == "CIRCULAR" || mode == "CAUSAL" ? " (not supported)" : ""));
    for (size_t i = 0; i < n; ++i) {
      const int64_t total = same_padding_total(in[i], window[i], strides[i], dilations[i]);  // lax.padtype_to_pads
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

}  // namespace pb::jax
