// Python values computed from shapes (FxScalar): x.size(), x.shape, x.dim(), x.numel(), their
// arithmetic and comparisons, math functions, torch._assert and torch.arange, evaluated while
// decoding: no IR node. An int keeps how it depends on the batch (per_batch·N + offset) through
// + - * // where that form holds, so a comparison or an assertion that holds for every batch is
// told from one that holds for the captured batch only.
#include <cmath>

#include "../fx_node.h"

namespace pb::pytorch {

namespace {

using Kind = FxScalar::Kind;

const std::map<std::string, std::string>& symbols() {
  static const std::map<std::string, std::string> t = {
      {"add", "+"},  {"sub", "-"},   {"mul", "*"},  {"truediv", "/"}, {"floordiv", "//"}, {"mod", "%"}, {"pow", "**"},
      {"neg", "-"},  {"eq", "=="},   {"ne", "!="},  {"lt", "<"},      {"le", "<="},       {"gt", ">"},  {"ge", ">="}};
  return t;
}

bool is_comparison(const std::string& op) { return op == "eq" || op == "ne" || op == "lt" || op == "le" || op == "gt" || op == "ge"; }

// Python's floor division and modulo of ints.
int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
int64_t floor_mod(int64_t a, int64_t b) { return a - floor_div(a, b) * b; }

template <typename T>
bool compare(const std::string& op, T a, T b) {
  if (op == "eq") return a == b;
  if (op == "ne") return a != b;
  if (op == "lt") return a < b;
  if (op == "le") return a <= b;
  if (op == "gt") return a > b;
  return a >= b;
}

FxScalar depends_on_batch(FxScalar s) {
  s.nonlinear = true;
  s.source.clear();
  return s;
}

// a `op` b as Python computes it (a bool counts as the int 0 or 1); for ints, the batch form too.
FxScalar apply(const FxNode& n, const std::string& op, const FxScalar& a, const FxScalar& b) {
  if (a.kind == Kind::Device || b.kind == Kind::Device) n.fail("a device is not a number (" + symbols().at(op) + ")");
  if (a.kind == Kind::DType || b.kind == Kind::DType) n.fail("a dtype is not a number (" + symbols().at(op) + ")");
  const bool batch = a.batch() || b.batch();
  const bool linear = !a.nonlinear && !b.nonlinear;
  if (is_comparison(op)) {
    const bool ints = a.kind != Kind::Float && b.kind != Kind::Float;
    FxScalar r = FxScalar::boolean(ints ? compare(op, a.i, b.i) : compare(op, a.number(), b.number()));
    // Two linear forms with the same multiple of the batch compare the same for every batch.
    if (batch && !(ints && linear && a.per_batch == b.per_batch)) r = depends_on_batch(r);
    return r;
  }
  if (a.kind == Kind::Float || b.kind == Kind::Float || op == "truediv" || (op == "pow" && b.i < 0)) {
    const double x = a.number(), y = b.number();
    if ((op == "truediv" || op == "floordiv" || op == "mod") && y == 0) n.fail("division by zero");
    const double v = op == "add" ? x + y : op == "sub" ? x - y : op == "mul" ? x * y : op == "truediv" ? x / y
                   : op == "floordiv" ? std::floor(x / y) : op == "mod" ? x - std::floor(x / y) * y : std::pow(x, y);
    FxScalar r = FxScalar::real(v);
    return batch ? depends_on_batch(r) : r;
  }
  if ((op == "floordiv" || op == "mod") && b.i == 0) n.fail("integer division by zero");
  FxScalar r = FxScalar::integer(0);
  if (op == "add" || op == "sub") {
    const int64_t s = op == "add" ? 1 : -1;
    r.i = a.i + s * b.i;
    r.per_batch = a.per_batch + s * b.per_batch;
    r.offset = a.offset + s * b.offset;
  } else if (op == "mul") {
    r.i = a.i * b.i;
    if (a.batch() && b.batch()) return depends_on_batch(r);
    const FxScalar& var = a.batch() ? a : b;
    const int64_t k = a.batch() ? b.i : a.i;
    r.per_batch = var.per_batch * k;
    r.offset = var.offset * k;
  } else if (op == "floordiv") {
    r.i = floor_div(a.i, b.i);
    // (k·N + c) // d is (k/d)·N + c/d for every N only when d divides both.
    if (b.batch() || (a.batch() && (a.per_batch % b.i != 0 || a.offset % b.i != 0))) return depends_on_batch(r);
    r.per_batch = a.per_batch / b.i;
    r.offset = a.batch() ? a.offset / b.i : r.i;
  } else if (op == "mod") {
    r = FxScalar::integer(floor_mod(a.i, b.i));
    if (batch) return depends_on_batch(r);
  } else {  // pow, a non-negative exponent
    r = FxScalar::integer(static_cast<int64_t>(std::llround(std::pow(double(a.i), double(b.i)))));
    if (batch) return depends_on_batch(r);
  }
  if (!linear) return depends_on_batch(r);
  if (r.is_batch()) {  // N + 0, N * 1: still read from where N was
    const FxScalar& from = a.is_batch() ? a : b;
    r.source = from.source;
    r.source_dim = from.source_dim;
  }
  return r;
}

FxScalar negated(const FxNode& n, const FxScalar& a) {
  if (a.kind == Kind::Device || a.kind == Kind::DType) n.fail("a device or dtype is not a number (-)");
  if (a.kind == Kind::Float) return FxScalar::real(-a.f);
  FxScalar r = FxScalar::integer(-a.i);
  r.per_batch = -a.per_batch;
  r.offset = -a.offset;
  r.nonlinear = a.nonlinear;
  return r;
}

// A tuple operand: a node returning one, or a literal whose elements may be numbers too.
FxTuple tuple_operand(const FxNode& n, const JsonRef& a) {
  if (!a.is_array()) return n.tuple_arg(a);
  FxTuple t;
  for (const JsonRef& e : a.items()) {
    if (auto v = n.scalar(e)) t.items.push_back(FxTuple(*v));
    else t.items.push_back(e.is_array() || n.tuple_ref(e) ? tuple_operand(n, e) : FxTuple(n.decoder().planet_form(n.node_ref(e)), {}));
  }
  return t;
}

// x.size() and x.shape: each dim of IR value `in` as a Python int.
void define_shape(const FxNode& n, const std::string& in) {
  FxTuple t;
  for (size_t i = 0; i < n.decoder().ir_type(in).shape.size(); ++i) t.items.push_back(FxTuple(n.dim_size(in, i)));
  n.define_tuple(std::move(t));
}

// A torch.arange bound: a Python int that does not depend on the batch.
int64_t range_bound(const FxNode& n, const JsonRef& a, const std::string& what) {
  const std::optional<FxScalar> s = n.scalar(a);
  if (s && s->kind == Kind::Float) a.fail("torch.arange over floats is not supported (integer ranges only)");
  return n.constant_int(a, "torch.arange's " + what);
}

}  // namespace

// x.size() (a tuple of ints) and x.size(dim) (one).
void translate_size(const FxNode& n) {
  const std::string in = n.in(0);
  const size_t rank = n.decoder().ir_type(in).shape.size();
  if (auto dim = n.arg(1, "dim")) return n.define_scalar(n.dim_size(in, size_t(resolved_dim(n, n.constant_int(*dim, "dim"), rank, "size dim"))));
  define_shape(n, in);
}

// getattr(x, "shape" | "ndim" | "device" | "dtype"), as fx records x.shape; x.mT and x.mH (real
// values: the same) swap the last two dims.
void translate_getattr(const FxNode& n) {
  auto name = n.arg(1);
  if (!name || !name->is_string()) n.fail("getattr needs an attribute name");
  const std::string in = n.in(0);
  const std::string attr = name->str();
  if (attr == "shape") return define_shape(n, in);
  if (attr == "ndim") return n.define_scalar(FxScalar::integer(int64_t(n.decoder().ir_type(in).shape.size())));
  if (attr == "device") {  // for torch.arange(..., device=x.device): the IR runs on one device
    FxScalar d;
    d.kind = Kind::Device;
    return n.define_scalar(d);
  }
  if (attr == "dtype") {  // for x.to(q.dtype), softmax(..., dtype=q.dtype): the value's own dtype
    FxScalar d;
    d.kind = Kind::DType;
    d.i = static_cast<int64_t>(n.decoder().ir_type(in).dtype);
    return n.define_scalar(d);
  }
  if (attr == "mT" || attr == "mH") {
    if (n.decoder().ir_type(in).shape.size() < 2) name->fail("x." + attr + " of a tensor of rank below 2");
    return emit_swap(n, -2, -1, "x." + attr);
  }
  name->fail("getattr(tensor, \"" + attr + "\") is not supported (shape, ndim, device, dtype, mT and mH are)");
}

// x.dim() / x.ndimension(): the rank.
void translate_dim(const FxNode& n) { n.define_scalar(FxScalar::integer(int64_t(n.type(0).shape.size()))); }

// x.numel(): the product of the dims.
void translate_numel(const FxNode& n) {
  const std::string x = n.in(0);
  FxScalar count = FxScalar::integer(1);
  for (size_t i = 0; i < n.decoder().ir_type(x).shape.size(); ++i) count = apply(n, "mul", count, n.dim_size(x, i));
  n.define_scalar(count);
}

Translate arithmetic(const std::string& op, const std::string& ir_op) {
  return [op, ir_op](const FxNode& n) {
    const bool unary = op == "neg";
    auto lhs = n.arg(0, "input");
    auto rhs = unary ? lhs : n.arg(1, "other");
    if (!lhs || !rhs) n.fail("missing operand");
    // (a, b) + (c, d): tuples concatenate (x.size()[:-1] + (heads, head_dim)).
    if (op == "add" && (n.tuple_ref(*lhs) || lhs->is_array()) && (n.tuple_ref(*rhs) || rhs->is_array())) {
      FxTuple t = tuple_operand(n, *lhs);
      for (FxTuple& e : tuple_operand(n, *rhs).items) t.items.push_back(std::move(e));
      return n.define_tuple(std::move(t));
    }
    const std::optional<FxScalar> a = n.scalar(*lhs), b = n.scalar(*rhs);
    if (a && b) return n.define_scalar(unary ? negated(n, *a) : apply(n, op, *a, *b));
    if (op == "pow" && !a && b) return translate_pow(n);  // tensor ** number
    if (ir_op.empty()) n.fail("a tensor operand of " + symbols().at(op) + " is not supported (only Python numbers computed from shapes)");
    if (unary) return n.emit(ir_op, {n.in(0), n.number_constant(*lhs, FxScalar::integer(-1), "rhs")});  // -x = x · -1
    // A number from a node (a literal one is the binary translator's): a constant beside the tensor.
    const bool from_node = (a && lhs->is_object()) || (b && rhs->is_object());
    if (!from_node) return binary(ir_op)(n);
    if (a && ir_op == "Div") n.fail("a number divided by a tensor is not supported (the IR's Div cannot broadcast its dividend)");
    n.emit(ir_op, {a ? n.number_constant(*lhs, *a, "lhs") : n.in(0), b ? n.number_constant(*rhs, *b, "rhs") : n.in(1, "other")});
  };
}

Translate comparison(const std::string& op) {
  return [op](const FxNode& n) {
    auto lhs = n.arg(0, "input"), rhs = n.arg(1, "other");
    if (!lhs || !rhs) n.fail("missing operand");
    const std::optional<FxScalar> a = n.scalar(*lhs), b = n.scalar(*rhs);
    if (a && b) return n.define_scalar(apply(n, op, *a, *b));
    emit_compare(n, op);
  };
}

// math.sqrt / floor / ceil of a Python number (fx traces the math module's functions as calls).
Translate math_function(const std::string& fn) {
  return [fn](const FxNode& n) {
    auto a = n.arg(0);
    const std::optional<FxScalar> x = a ? n.scalar(*a) : std::nullopt;
    if (!x || x->kind == Kind::Device || x->kind == Kind::DType) n.fail("math." + fn + " needs a Python number");
    const double v = x->number();
    FxScalar r = fn == "sqrt" ? FxScalar::real(std::sqrt(v)) : FxScalar::integer(int64_t(fn == "floor" ? std::floor(v) : std::ceil(v)));
    if (fn != "sqrt" && x->kind == Kind::Int) r = *x;  // floor / ceil of an int is that int
    n.define_scalar(x->batch() && !r.batch() ? depends_on_batch(r) : r);
  };
}

// torch._assert(condition, message): checked while decoding. One that holds for the captured
// batch only (its truth depends on the batch) is refused: the graph serves any batch.
void translate_assert(const FxNode& n) {
  auto cond = n.arg(0, "condition");
  auto message = n.arg(1, "message");
  if (!cond) n.fail("torch._assert needs a condition");
  const std::optional<FxScalar> c = n.scalar(*cond);
  if (!c || c->kind == Kind::Device || c->kind == Kind::DType) cond->fail("torch._assert on a tensor is not supported (its value is known only when the graph runs)");
  const std::string text = message ? (message->is_string() ? message->str() : message->raw().dump()) : "";
  if (c->number() == 0) n.fail("torch._assert failed" + (text.empty() ? "" : ": " + text));
  if (c->batch())
    cond->fail("torch._assert holds for the captured batch only (the condition depends on the batch, which the graph leaves open)" +
               (text.empty() ? "" : ": " + text));
}

// torch.arange(end), (start, end), (start, end, step) over ints: a range the decoder knows.
// device is ignored (the IR runs on one device); a float dtype or bound is refused.
void translate_arange(const FxNode& n) {
  const size_t positional = n.json().find("args") ? n.json()["args"].size() : 0;
  std::optional<JsonRef> start, end, step;
  if (positional <= 1) {
    end = n.arg(0, "end");
    start = n.kwarg("start");
  } else {
    start = n.arg(0, "start");
    end = n.arg(1, "end");
  }
  step = n.arg(2, "step");
  if (!end) n.fail("torch.arange needs an end");
  if (auto dtype = n.kwarg("dtype")) {
    const std::string d = dtype->is_object() && dtype->has("repr") ? (*dtype)["repr"].str() : dtype->raw().dump();
    if (d != "torch.int64" && d != "torch.int32") dtype->fail("torch.arange with dtype " + d + " is not supported (torch.int64 or torch.int32 ranges only)");
  }
  FxRange r;
  r.start = start ? range_bound(n, *start, "start") : 0;
  r.step = step ? range_bound(n, *step, "step") : 1;
  const int64_t stop = range_bound(n, *end, "end");
  if (r.step == 0) n.fail("torch.arange with step 0");
  r.count = r.step > 0 ? (stop - r.start + r.step - 1) / r.step : (r.start - stop - r.step - 1) / -r.step;
  if (r.count <= 0) n.fail("torch.arange(" + std::to_string(r.start) + ", " + std::to_string(stop) + ", " + std::to_string(r.step) +
                           ") is empty: values without elements are not supported");
  n.define_range(r);
}

}  // namespace pb::pytorch
