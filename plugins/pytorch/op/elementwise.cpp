// Activations, softmax, Dropout / Identity, and + - * / (with Python numbers as constants).
// Modules and calls read their tensor as argument 0 ("input"); modules take their parameters
// from the module's attributes, calls from their arguments.
#include "../fx_node.h"

namespace pb::pytorch {

namespace {

void emit_activation(const FxNode& n, const std::string& function, ir::Attrs a = {}) {
  a.set("function", function);
  n.emit("Activation", {n.in(0)}, std::move(a));
}

std::string gelu_function(const std::optional<JsonRef>& approximate) {
  if (!approximate) return "gelu_erf";
  const std::string a = approximate->str();
  if (a == "none") return "gelu_erf";
  if (a == "tanh") return "gelu_tanh";
  approximate->fail("unknown GELU approximation \"" + a + "\" (expected \"none\" or \"tanh\")");
}

// A dtype argument as the capture sends it ({"repr": "torch.float32"}), or "".
std::string dtype_repr(const JsonRef& a) { return a.is_object() && a.has("repr") ? a["repr"].str() : ""; }

// Whether dtype argument `a` names float32: torch.float32 / torch.float, or a value's x.dtype
// that is float32. nullopt when `a` is no dtype at all.
std::optional<bool> names_float32(const FxNode& n, const JsonRef& a) {
  const std::string d = dtype_repr(a);
  if (d.rfind("torch.", 0) == 0) return d == "torch.float32" || d == "torch.float";
  const std::optional<FxScalar> s = a.is_object() && a.has("node") ? n.scalar(a) : std::nullopt;
  if (s && s->kind == FxScalar::Kind::DType) return static_cast<DType>(s->i) == DType::f32;
  return std::nullopt;
}

// torch's implicit softmax dim depends on the input rank (a deprecated rule): refused, not guessed.
// dtype (F.softmax(x, dim=-1, dtype=torch.float32), as Hugging Face's attention writes it) casts
// the input first: float32 of a float32 input changes nothing; any other is refused.
void emit_softmax(const FxNode& n, const std::optional<JsonRef>& dim, bool log, const std::optional<JsonRef>& dtype = std::nullopt) {
  if (!dim) n.fail("softmax without an explicit dim uses torch's deprecated implicit-dim rule; pass dim");
  if (dtype && !dtype->raw().is_null()) {
    if (names_float32(n, *dtype) != true)
      dtype->fail("softmax with dtype " + dtype->raw().dump() + " is not supported (float32 only: the IR computes in float32)");
    if (n.type(0).dtype != DType::f32)
      dtype->fail("softmax with dtype float32 of a " + std::string(dtype_name(n.type(0).dtype)) + " input is not supported (the IR has no cast)");
  }
  n.emit("Softmax", {n.in(0)}, attrs_of({{"axis", dim->i64()}, {"log", int64_t(log)}}));
}

}  // namespace

Translate activation(const std::string& function) {
  return [function](const FxNode& n) { emit_activation(n, function); };
}

// ReLU6 is Hardtanh(0, 6) in torch 1.13: its bounds are attributes.
void translate_relu6_module(const FxNode& n) {
  n.require_attr("min_val", 0, "ReLU6 clips to [0, 6]; other bounds are not supported");
  n.require_attr("max_val", 6, "ReLU6 clips to [0, 6]; other bounds are not supported");
  emit_activation(n, "relu6");
}

void translate_gelu_module(const FxNode& n) { emit_activation(n, gelu_function(n.attrs().find("approximate"))); }
void translate_gelu_call(const FxNode& n) { emit_activation(n, gelu_function(n.kwarg("approximate"))); }  // keyword-only

void translate_leaky_relu_module(const FxNode& n) {
  emit_activation(n, "leaky_relu", attrs_of({{"alpha", n.attr("negative_slope").f64()}}));
}
void translate_leaky_relu_call(const FxNode& n) {
  emit_activation(n, "leaky_relu", attrs_of({{"alpha", n.float_arg(1, "negative_slope", 0.01)}}));
}
void translate_elu_module(const FxNode& n) { emit_activation(n, "elu", attrs_of({{"alpha", n.attr("alpha").f64()}})); }
void translate_elu_call(const FxNode& n) { emit_activation(n, "elu", attrs_of({{"alpha", n.float_arg(1, "alpha", 1.0)}})); }

// Hardtanh(min_val, max_val) clips: F.hardtanh(input, min_val=-1, max_val=1, inplace=False).
void translate_hardtanh_module(const FxNode& n) {
  emit_activation(n, "clip", attrs_of({{"alpha", n.attr("min_val").f64()}, {"beta", n.attr("max_val").f64()}}));
}
void translate_hardtanh_call(const FxNode& n) {
  emit_activation(n, "clip", attrs_of({{"alpha", n.float_arg(1, "min_val", -1.0)}, {"beta", n.float_arg(2, "max_val", 1.0)}}));
}

// PReLU: weight [num_parameters], one slope or one per channel (dim 1).
void translate_prelu_module(const FxNode& n) {
  const std::string w = n.required_param("weight");
  n.check_param_shape("weight", w, {n.attr("num_parameters").i64()}, "[num_parameters] = ");
  n.emit("PReLU", {n.in(0), w});
}
// torch.prelu(input, weight), as F.prelu is named: the weight is a parameter (a get_attr value).
void translate_prelu_call(const FxNode& n) { n.emit("PReLU", {n.in(0), n.in(1, "weight")}); }

// Softsign x / (1 + |x|) and Tanhshrink x − tanh(x), as torch writes them.
void translate_softsign(const FxNode& n) {
  const std::string x = n.in(0);
  const std::string a = n.step("abs", "Activation", {x}, attrs_of({{"function", std::string("abs")}}));
  const std::string d = n.step("denominator", "Activation", {a}, attrs_of({{"function", std::string("linear")}, {"alpha", 1.0}, {"beta", 1.0}}));
  n.emit("Div", {x, d});
}
void translate_tanhshrink(const FxNode& n) {
  const std::string x = n.in(0);
  n.emit("Sub", {x, n.step("tanh", "Activation", {x}, attrs_of({{"function", std::string("tanh")}}))});
}

// Hardsigmoid is relu6(x + 3) / 6 = clip(x / 6 + 1 / 2, 0, 1).
void translate_hardsigmoid(const FxNode& n) { emit_activation(n, "hard_sigmoid", attrs_of({{"alpha", 1.0 / 6.0}, {"beta", 0.5}})); }

// Softplus: log(1 + e^(beta x)) / beta, and torch returns x itself where beta x > threshold.
// With beta 1 and threshold >= 20 (the defaults) the two agree in f32 (e^-20 is below x's
// rounding); a lower threshold changes the result between it and 20.
void translate_softplus_module(const FxNode& n) {
  const JsonRef a = n.attrs();
  if (a.f64("beta", 1.0) != 1.0) a["beta"].fail("only beta = 1 is supported");
  if (a.f64("threshold", 20.0) < 20.0) a["threshold"].fail("only threshold >= 20 is supported (below it torch returns x where log(1 + exp(x)) differs)");
  emit_activation(n, "softplus");
}

Translate softmax_module(bool log) {
  return [log](const FxNode& n) { emit_softmax(n, n.attrs().find("dim"), log); };
}
// dtype_at: dtype's position (F.softmax(input, dim, _stacklevel, dtype): 3; torch.softmax(input,
// dim, dtype) and x.softmax(dim, dtype): 2).
Translate softmax_call(bool log, size_t dtype_at) {
  return [log, dtype_at](const FxNode& n) { emit_softmax(n, n.arg(1, "dim"), log, n.arg(dtype_at, "dtype")); };
}

// Identity, and x.contiguous(): IR values are always contiguous.
void translate_identity(const FxNode& n) { n.emit("Identity", {n.in(0)}); }

// Dropout (any of them) in eval mode is the identity; p only matters in training.
void translate_dropout_module(const FxNode& n) {
  if (n.module().boolean("training", false)) n.module()["training"].fail("Dropout in training mode is random; capture the model in eval()");
  translate_identity(n);
}

// F.dropout(input, p=0.5, training=True, inplace=False): the default is training mode.
void translate_dropout_call(const FxNode& n) {
  auto training = n.arg(2, "training");
  if (!training || training->boolean())
    n.fail("F.dropout with training=True is random; pass training=self.training and capture in eval()");
  translate_identity(n);
}

// torchvision.ops.stochastic_depth(input, p, mode, training=True): drops whole residual branches
// at random in training; in eval (training=False, as its module passes) it is the identity.
void translate_stochastic_depth(const FxNode& n) {
  auto training = n.arg(3, "training");
  if ((!training || training->boolean()) && n.float_arg(1, "p", 0.0) != 0.0)
    n.fail("stochastic_depth with training=True is random; capture the model in eval()");
  translate_identity(n);
}

// a (+ - * /) b where either side may be a Python number: a scalar constant "<value>.lhs" / ".rhs".
Translate binary(const std::string& op) {
  return [op](const FxNode& n) {
    if (auto alpha = n.kwarg("alpha"); alpha && alpha->f64() != 1.0) alpha->fail("torch.add/sub with alpha != 1 is not supported");
    if (auto mode = n.kwarg("rounding_mode")) mode->fail("torch.div with rounding_mode is not supported (plain division only)");
    std::vector<std::string> ins;
    for (size_t i = 0; i < 2; ++i) {
      auto a = n.arg(i, i == 0 ? "input" : "other");
      if (!a) n.fail("missing operand " + std::to_string(i));
      if (!a->is_number()) {
        ins.push_back(n.decoder().planet_form(n.node_ref(*a)));
        continue;
      }
      if (op == "Div" && i == 0) n.fail("a number divided by a tensor is not supported (the IR's Div cannot broadcast its dividend)");
      Tensor t(DType::f32, {});
      t.data<float>()[0] = static_cast<float>(a->f64());
      ins.push_back(n.constant(i == 0 ? "lhs" : "rhs", std::move(t)));
    }
    n.emit(op, ins);
  };
}

// x.pow(exponent) / torch.pow / x ** exponent with a Python number, as torch 1.13's CPU kernel
// computes the exponents it special-cases: 2 and 3 by multiplication, 0.5 sqrt, -0.5 rsqrt, 1 a
// copy. Others are refused (the IR has no general power).
void translate_pow(const FxNode& n) {
  auto e = n.arg(1, "exponent");
  if (!e) n.fail("pow needs an exponent");
  const std::optional<FxScalar> v = n.scalar(*e);
  if (!v || v->kind == FxScalar::Kind::Device || v->kind == FxScalar::Kind::DType || v->kind == FxScalar::Kind::Bool) e->fail("the exponent must be a Python number (a tensor exponent is not supported)");
  if (v->batch()) e->fail("the exponent depends on the batch, which the graph leaves open");
  const double p = v->number();
  const std::string x = n.in(0);
  if (p == 1) return n.emit("Identity", {x});
  if (p == 2) return n.emit("Mul", {x, x});
  if (p == 3) return n.emit("Mul", {n.step("square", "Mul", {x, x}), x});
  if (p == 0.5) return n.emit("Activation", {x}, attrs_of({{"function", std::string("sqrt")}}));
  if (p == -0.5) return n.emit("Activation", {x}, attrs_of({{"function", std::string("rsqrt")}}));
  e->fail("pow with exponent " + e->raw().dump() + " is not supported (1, 2, 3, 0.5 and -0.5 are)");
}

namespace {

// x computed as float32 (already so): Identity; anything else is refused naming `what`.
void same_float(const FxNode& n, const std::string& what) {
  const DType t = n.type(0).dtype;
  if (t != DType::f32) n.fail(what + " of a " + dtype_name(t) + " value is not supported (the IR computes in float32 and has no cast)");
  n.emit("Identity", {n.in(0)});
}

}  // namespace

// x.float() (the IR computes in float32).
void translate_float(const FxNode& n) { same_float(n, "x.float()"); }

// x.type_as(other): a float32 x as float32 other.
void translate_type_as(const FxNode& n) {
  const DType other = n.type(1, "other").dtype;
  if (other != DType::f32) n.fail("x.type_as(other) with a " + std::string(dtype_name(other)) + " other is not supported (float32 only)");
  same_float(n, "x.type_as(other)");
}

// x.to(torch.float32), x.to(q.dtype) of a float32 q, x.to(device) / x.to("cpu"), x.to(other):
// float32 stays float32, and the device is irrelevant here; another dtype is refused.
void translate_to(const FxNode& n) {
  for (size_t i = 1; i < 3; ++i) {
    auto a = n.arg(i, i == 1 ? "dtype" : "device");
    if (!a) continue;
    const std::string d = dtype_repr(*a);
    const std::optional<FxScalar> s = n.scalar(*a);
    const bool device = (s && s->kind == FxScalar::Kind::Device) || a->raw().is_string() || d.rfind("device(", 0) == 0;
    if (device || names_float32(n, *a) == true) continue;  // torch.float32, or x.dtype of a float32 x
    if (a->is_object() && a->has("node") && !s) {
      if (n.type(i).dtype != DType::f32) a->fail("x.to(other) with a non-float32 other is not supported");
      continue;
    }
    a->fail("x.to(" + a->raw().dump() + ") is not supported (float32 and devices only: the IR computes in float32)");
  }
  if (auto d = n.kwarg("dtype"); d && names_float32(n, *d) != true)
    d->fail("x.to(dtype=" + d->raw().dump() + ") is not supported (float32 only)");
  same_float(n, "x.to(...)");
}

}  // namespace pb::pytorch
