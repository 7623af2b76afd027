// The op table: one entry per IR op (docs/ir.md is checked against it).
#include "planetbridge/ops.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "planetbridge/error.h"

namespace pb::ir {

std::string type_str(const TensorType& t) { return std::string(dtype_name(t.dtype)) + shape_str(t.shape); }

const char* attr_type_name(AttrType t) {
  switch (t) {
    case AttrType::Int: return "int";
    case AttrType::Float: return "float";
    case AttrType::String: return "string";
    case AttrType::Ints: return "ints";
    case AttrType::Floats: return "floats";
  }
  return "?";
}

const TensorType& InferContext::in(size_t i) const {
  if (!has(i)) fail("missing input " + std::to_string(i));
  return *inputs_[i];
}

void InferContext::fail(const std::string& message) const { throw Error(node_where(node_), message); }

// ------------------------------------------------------------------ shared arithmetic

namespace {

bool known(int64_t d) { return d >= 0; }

// Product of dims; unknown when any is; INT64_MAX when it overflows (a count that large is then
// refused by infer_node's limit on every value).
int64_t product(Shape::const_iterator begin, Shape::const_iterator end) {
  int64_t n = 1;
  bool overflow = false;
  for (auto it = begin; it != end; ++it) {
    if (!known(*it)) return -1;
    overflow |= __builtin_mul_overflow(n, *it, &n);
  }
  return overflow ? INT64_MAX : n;
}

// Empty when every known dim is in [1, kMaxDim] and the product of the known dims within
// kMaxValueElements, else why not. A dim is checked on its own: a 0 elsewhere must not let a
// 2^62 through. A 0 itself is refused: oneDNN 2.6 divides by it (SIGFPE creating a matmul for
// an empty batch), and a value without elements compares nothing.
std::string shape_problem(const Shape& shape) {
  int64_t n = 1;
  bool overflow = false;
  for (int64_t d : shape) {
    if (!known(d)) continue;
    if (d > kMaxDim) return "dimension " + std::to_string(d) + " is above the limit of 2^31 - 1";
    if (d == 0) return "a dimension of 0: values without elements are not supported";
    overflow |= __builtin_mul_overflow(n, d, &n);
  }
  if (overflow || n > kMaxValueElements)
    return (overflow ? std::string("more than 2^63") : std::to_string(n)) + " elements are above the limit of 2^34 per value";
  return "";
}

// Equal, or either unknown.
bool fits(int64_t a, int64_t b) { return !known(a) || !known(b) || a == b; }

std::string list_str(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

const std::vector<ActivationInfo>& activation_functions() {
  static const std::vector<ActivationInfo> t = {
      {"identity", {}, "x"},
      {"relu", {}, "max(0, x)"},
      {"leaky_relu", {"alpha"}, "x ≥ 0 ? x : alpha·x"},
      {"elu", {}, "x ≥ 0 ? x : alpha·(eˣ − 1), alpha default 1"},
      {"selu", {}, "1.0507…·elu(x, 1.6732…)"},
      {"tanh", {}, "tanh(x)"},
      {"sigmoid", {}, "1 / (1 + e⁻ˣ)"},
      {"gelu_erf", {}, "x·Φ(x)"},
      {"gelu_tanh", {}, "the tanh approximation of gelu"},
      {"silu", {}, "x·sigmoid(x) (Keras \"swish\")"},
      {"softplus", {}, "log(1 + eˣ)"},
      {"relu6", {}, "min(max(0, x), 6)"},
      {"mish", {}, "x·tanh(softplus(x))"},
      {"hardswish", {}, "x·relu6(x + 3) / 6"},
      {"exp", {}, "eˣ"},
      {"abs", {}, "|x|"},
      {"sqrt", {}, "√x"},
      {"rsqrt", {}, "1 / √x"},
      {"linear", {"alpha", "beta"}, "alpha·x + beta"},
      {"hard_sigmoid", {"alpha", "beta"}, "clip(alpha·x + beta, 0, 1) with the planet's alpha and beta"},
      {"clip", {"alpha", "beta"}, "min(max(x, alpha), beta)"},
  };
  return t;
}

void check_activation(const Node& node, const std::string& function, const Attrs& attrs) {
  const auto& fns = activation_functions();
  auto it = std::find_if(fns.begin(), fns.end(), [&](const ActivationInfo& a) { return a.name == function; });
  if (it == fns.end()) {
    std::vector<std::string> names;
    for (const auto& a : fns) names.push_back(a.name);
    throw Error(node_where(node), "unknown activation \"" + function + "\" (known: " + list_str(names) + ")");
  }
  for (const std::string& key : it->required)
    if (!attrs.has(key)) throw Error(node_where(node), "activation \"" + function + "\" needs attribute \"" + key + "\"");
}

Window read_window(const Node& node, const Attrs& attrs, std::vector<int64_t> kernel) {
  const size_t rank = kernel.size();
  Window w;
  w.kernel = std::move(kernel);
  w.strides = attrs.ints("strides", std::vector<int64_t>(rank, 1));
  w.dilations = attrs.ints("dilations", std::vector<int64_t>(rank, 1));
  w.pads_begin = attrs.ints("pads_begin", std::vector<int64_t>(rank, 0));
  w.pads_end = attrs.ints("pads_end", std::vector<int64_t>(rank, 0));
  for (const auto* v : {&w.strides, &w.dilations, &w.pads_begin, &w.pads_end})
    if (v->size() != rank)
      throw Error(node_where(node), "window attributes need " + std::to_string(rank) + " values per list (one per spatial dim), got " +
                                        shape_str(*v));
  for (size_t i = 0; i < rank; ++i) {
    if (w.kernel[i] < 1 || w.strides[i] < 1 || w.dilations[i] < 1 || w.pads_begin[i] < 0 || w.pads_end[i] < 0)
      throw Error(node_where(node), "kernel, strides and dilations must be >= 1 and pads >= 0");
    for (int64_t v : {w.kernel[i], w.strides[i], w.dilations[i], w.pads_begin[i], w.pads_end[i]})
      if (v > kMaxDim)
        throw Error(node_where(node), "kernel, strides, dilations and pads must be < 2^31, got " + std::to_string(v));
    // Every window must see at least one input element: pads no larger than the window's reach
    // dilation·(kernel − 1), as torch's pools require and every padding mode ("same", "full",
    // causal) gives. Beyond it an output sees padding alone (an average of nothing), and oneDNN
    // 2.6 spends minutes and gigabytes creating a convolution padded by 67 million.
    const int64_t reach = w.dilations[i] * (w.kernel[i] - 1);  // both < 2^31: no overflow
    if (w.pads_begin[i] > reach || w.pads_end[i] > reach)
      throw Error(node_where(node), "pads " + std::to_string(w.pads_begin[i]) + " and " + std::to_string(w.pads_end[i]) + " of spatial dim " +
                                        std::to_string(i) + " must be smaller than the window " + std::to_string(reach + 1));
  }
  return w;
}

std::vector<int64_t> window_output(const Node& node, const Shape& in, const Window& w) {
  std::vector<int64_t> out(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (!known(in[i])) {
      out[i] = -1;
      continue;
    }
    // Each term < 2^31 (read_window, infer_node's input check): the span cannot overflow.
    int64_t span = 0;
    const bool huge = __builtin_mul_overflow(w.dilations[i], w.kernel[i] - 1, &span) || span > INT64_MAX / 2;
    span += 1;
    const int64_t padded = in[i] + w.pads_begin[i] + w.pads_end[i];
    if (huge || padded < span)
      throw Error(node_where(node), "spatial size " + std::to_string(in[i]) + " (padded " + std::to_string(padded) +
                                        ") is smaller than the window " + std::to_string(span));
    out[i] = (padded - span) / w.strides[i] + 1;
  }
  return out;
}

SliceRange slice_range(int64_t n, int64_t start, int64_t end, int64_t step) {
  auto clamp = [&](int64_t v, int64_t lo, int64_t hi) { return std::max(lo, std::min(v, hi)); };
  if (start < 0) start += n;
  if (end < 0) end += n;
  // Written so that no step, start or end (any int64 an attribute holds) overflows.
  if (step > 0) {
    start = clamp(start, 0, n);
    end = clamp(end, 0, n);
    return {start, end > start ? (end - start - 1) / step + 1 : 0};
  }
  start = clamp(start, -1, n - 1);
  end = clamp(end, -1, n - 1);
  return {start, start > end ? (step == INT64_MIN ? 1 : (start - end - 1) / -step + 1) : 0};
}

Shape broadcast_shapes(const Node& node, const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i + a.size() >= rank ? a[i + a.size() - rank] : 1;
    const int64_t db = i + b.size() >= rank ? b[i + b.size() - rank] : 1;
    if (da == 1) out[i] = db;
    else if (db == 1) out[i] = da;
    else if (fits(da, db)) out[i] = known(da) ? da : db;
    else throw Error(node_where(node), "shapes " + shape_str(a) + " and " + shape_str(b) + " do not broadcast");
  }
  return out;
}

int64_t normalize_axis(const Node& node, int64_t axis, size_t rank, const std::string& what) {
  const int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r)
    throw Error(node_where(node), what + " " + std::to_string(axis) + " is out of range for an input of rank " + std::to_string(r));
  return axis < 0 ? axis + r : axis;
}

// ------------------------------------------------------------------ infer functions

namespace {

using Types = std::vector<TensorType>;

// The attributes an op with a fused activation takes (Dense, Conv).
std::vector<AttrSchema> fused_activation_attrs() {
  return {{"activation", AttrType::String, AttrValue(std::string("identity")), false, "fused activation function"},
          {"alpha", AttrType::Float, std::nullopt, true, "the activation's alpha"},
          {"beta", AttrType::Float, std::nullopt, true, "the activation's beta"}};
}

std::vector<AttrSchema> window_attrs() {
  return {{"strides", AttrType::Ints, std::nullopt, true, "one per spatial dim, default 1"},
          {"dilations", AttrType::Ints, std::nullopt, true, "one per spatial dim, default 1 (none)"},
          {"pads_begin", AttrType::Ints, std::nullopt, true, "one per spatial dim, default 0"},
          {"pads_end", AttrType::Ints, std::nullopt, true, "one per spatial dim, default 0"}};
}

void need_f32(const InferContext& c, size_t i, const std::string& what) {
  if (c.in(i).dtype != DType::f32)
    c.fail(what + " must be f32, got " + type_str(c.in(i)));
}

// An input whose element count must be n (a per-channel or per-feature parameter).
void need_count(const InferContext& c, size_t i, int64_t n, const std::string& what) {
  const TensorType& t = c.in(i);
  const int64_t count = product(t.shape.begin(), t.shape.end());
  if (t.dtype != DType::f32 || (known(n) && count != n))
    c.fail(what + " must be f32 with " + std::to_string(n) + " elements, got " +
           (t.dtype == DType::f32 ? shape_str(t.shape) : type_str(t)));
}

// An f32 input of exactly `shape` (-1 matches anything).
void need_shape(const InferContext& c, size_t i, const Shape& shape, const std::string& what) {
  const TensorType& t = c.in(i);
  bool ok = t.dtype == DType::f32 && t.shape.size() == shape.size();
  for (size_t d = 0; ok && d < shape.size(); ++d) ok = fits(t.shape[d], shape[d]);
  if (!ok) c.fail(what + " must be f32" + shape_str(shape) + ", got " + type_str(t));
}

Types same_as_input(const InferContext& c) { return {c.in(0)}; }

Types infer_dense(const InferContext& c) {
  need_f32(c, 0, "x");
  need_f32(c, 1, "weight");
  const Shape& x = c.shape(0);
  const Shape& w = c.shape(1);
  if (w.size() != 2) c.fail("weight must be [out, in], got " + shape_str(w));
  if (x.empty() || !fits(x.back(), w[1]))
    c.fail("input " + shape_str(x) + " does not end in the weight's in-features " + std::to_string(w[1]));
  if (c.has(2)) need_count(c, 2, w[0], "bias");
  check_activation(c.node(), c.attrs().s("activation"), c.attrs());
  Shape y = x;
  y.back() = w[0];
  return {{DType::f32, y}};
}

// a [..., M, K] · b [..., K, N] (b [..., N, K] with transpose_b): the leading (batch) dims
// broadcast like numpy, so a [N, H, L, K] meets a weight [K, N] or a [1, H, K, N].
Types infer_matmul(const InferContext& c) {
  need_f32(c, 0, "a");
  need_f32(c, 1, "b");
  const Shape& a = c.shape(0);
  const Shape& b = c.shape(1);
  if (a.size() < 2 || b.size() < 2) c.fail("a and b need rank >= 2, got " + shape_str(a) + " and " + shape_str(b));
  const bool tb = c.attrs().i("transpose_b") != 0;
  const int64_t k_b = tb ? b.back() : b[b.size() - 2], n = tb ? b[b.size() - 2] : b.back();
  if (!fits(a.back(), k_b))
    c.fail("a " + shape_str(a) + " has " + std::to_string(a.back()) + " columns, b " + shape_str(b) + (tb ? " (transposed)" : "") +
           " has " + std::to_string(k_b) + " rows");
  Shape y = broadcast_shapes(c.node(), {a.begin(), a.end() - 2}, {b.begin(), b.end() - 2});
  y.push_back(a[a.size() - 2]);
  y.push_back(n);
  return {{DType::f32, y}};
}

Types infer_activation(const InferContext& c) {
  need_f32(c, 0, "x");
  check_activation(c.node(), c.attrs().s("function"), c.attrs());
  return same_as_input(c);
}

Types infer_softmax(const InferContext& c) {
  need_f32(c, 0, "x");
  normalize_axis(c.node(), c.attrs().i("axis"), c.shape(0).size());
  return same_as_input(c);
}

Types infer_flatten(const InferContext& c) {
  const Shape& in = c.shape(0);
  const int64_t rank = static_cast<int64_t>(in.size());
  int64_t start = c.attrs().i("start"), end = c.attrs().i("end");
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  if (rank == 0 || start < 0 || end >= rank || start > end)
    c.fail("cannot flatten dims [" + std::to_string(c.attrs().i("start")) + ", " + std::to_string(c.attrs().i("end")) + "] of " +
           shape_str(in));
  Shape out(in.begin(), in.begin() + start);
  out.push_back(product(in.begin() + start, in.begin() + end + 1));
  out.insert(out.end(), in.begin() + end + 1, in.end());
  return {{c.in(0).dtype, out}};
}

Types infer_reshape(const InferContext& c) {
  const Shape& in = c.shape(0);
  const Shape& target = c.attrs().ints("shape");
  Shape out = target;
  int64_t infer_at = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 0) {
      if (i >= in.size()) c.fail("shape " + shape_str(target) + ": 0 at dim " + std::to_string(i) + " has no input dim to copy");
      out[i] = in[i];
    } else if (out[i] == -1) {
      if (infer_at >= 0) c.fail("more than one -1 in shape " + shape_str(target));
      infer_at = static_cast<int64_t>(i);
    } else if (out[i] < -1) {
      c.fail("shape " + shape_str(target) + " has a negative size");
    }
  }
  // Dims copied by 0 appear on both sides and cancel: an unknown batch copied through still
  // lets the -1 be inferred.
  Shape in_rest, rest;
  for (size_t i = 0; i < in.size(); ++i)
    if (i >= target.size() || target[i] != 0) in_rest.push_back(in[i]);
  for (size_t i = 0; i < out.size(); ++i)
    if (target[i] != 0 && int64_t(i) != infer_at) rest.push_back(out[i]);
  const int64_t total = product(in_rest.begin(), in_rest.end()), k = product(rest.begin(), rest.end());
  const bool fits = !known(total) || !known(k) || (infer_at >= 0 ? k > 0 && total % k == 0 : total == k);
  if (!fits)
    c.fail("cannot reshape " + shape_str(in) + " (" + std::to_string(product(in.begin(), in.end())) + " elements) to " +
           shape_str(target) + (out != target ? " = " + shape_str(out) : ""));
  if (infer_at >= 0) out[infer_at] = known(total) && known(k) ? total / k : -1;
  return {{c.in(0).dtype, out}};
}

Types infer_binary(const InferContext& c) {
  need_f32(c, 0, "a");
  need_f32(c, 1, "b");
  return {{DType::f32, broadcast_shapes(c.node(), c.shape(0), c.shape(1))}};
}

Types infer_concat(const InferContext& c) {
  const Shape& first = c.shape(0);
  const int64_t axis = normalize_axis(c.node(), c.attrs().i("axis"), first.size());
  Shape out = first;
  out[axis] = 0;
  for (size_t i = 0; i < c.count(); ++i) {
    need_f32(c, i, "input " + std::to_string(i));
    const Shape& s = c.shape(i);
    bool ok = s.size() == first.size();
    for (size_t d = 0; ok && d < s.size(); ++d) ok = int64_t(d) == axis || fits(s[d], first[d]);
    if (!ok) c.fail("input shapes " + shape_str(first) + " and " + shape_str(s) + " differ outside axis " + std::to_string(axis));
    out[axis] = known(out[axis]) && known(s[axis]) ? out[axis] + s[axis] : -1;
  }
  return {{DType::f32, out}};
}

Types infer_affine(const InferContext& c) {
  need_f32(c, 0, "x");
  if (c.shape(0).empty()) c.fail("x must have rank >= 1");
  need_count(c, 1, c.shape(0).back(), "scale");
  need_count(c, 2, c.shape(0).back(), "shift");
  return same_as_input(c);
}

// x [N, C, spatial...] with 1-3 spatial dims.
void need_spatial(const InferContext& c) {
  need_f32(c, 0, "x");
  const size_t r = c.shape(0).size();
  if (r < 3 || r > 5) c.fail("input must be [N, C, spatial...] with 1-3 spatial dims, got " + shape_str(c.shape(0)));
}

Types infer_conv(const InferContext& c) {
  need_spatial(c);
  need_f32(c, 1, "weight");
  const Shape& xs = c.shape(0);
  const Shape& ws = c.shape(1);
  if (ws.size() != xs.size()) c.fail("weight " + shape_str(ws) + " must have the input's rank " + std::to_string(xs.size()));
  const int64_t groups = c.attrs().i("groups"), out_c = ws[0], in_c = xs[1];
  if (groups < 1 || out_c % groups || (known(in_c) && (in_c % groups || ws[1] != in_c / groups)))
    c.fail("weight " + shape_str(ws) + " does not fit " + std::to_string(in_c) + " input channels in " + std::to_string(groups) +
           " groups (expected [O, C/groups, k...])");
  if (c.has(2)) need_count(c, 2, out_c, "bias");
  check_activation(c.node(), c.attrs().s("activation"), c.attrs());
  const Window w = read_window(c.node(), c.attrs(), {ws.begin() + 2, ws.end()});
  const std::vector<int64_t> sp = window_output(c.node(), {xs.begin() + 2, xs.end()}, w);
  Shape y = {xs[0], out_c};
  y.insert(y.end(), sp.begin(), sp.end());
  if (c.has(3) && c.shape(3) != y) c.fail("add " + shape_str(c.shape(3)) + " must have the output's shape " + shape_str(y));
  return {{DType::f32, y}};
}

// ConvTranspose: the gradient of a Conv with respect to its input. x [N, C, spatial...], weight
// [C, O/groups, k...] (ONNX's and PyTorch's layout); each spatial dim grows to
// (in − 1)·stride − pads_begin − pads_end + dilation·(k − 1) + output_padding + 1.
Types infer_conv_transpose(const InferContext& c) {
  need_spatial(c);
  need_f32(c, 1, "weight");
  const Shape& xs = c.shape(0);
  const Shape& ws = c.shape(1);
  if (ws.size() != xs.size()) c.fail("weight " + shape_str(ws) + " must have the input's rank " + std::to_string(xs.size()));
  const int64_t groups = c.attrs().i("groups"), in_c = xs[1];
  if (groups < 1 || ws[0] % groups || !fits(in_c, ws[0]))
    c.fail("weight " + shape_str(ws) + " does not fit " + std::to_string(in_c) + " input channels in " + std::to_string(groups) +
           " groups (expected [C, O/groups, k...])");
  const int64_t out_c = ws[1] * groups;
  if (c.has(2)) need_count(c, 2, out_c, "bias");
  const size_t rank = xs.size() - 2;
  const Window w = read_window(c.node(), c.attrs(), {ws.begin() + 2, ws.end()});
  const std::vector<int64_t> extra = c.attrs().ints("output_padding", std::vector<int64_t>(rank, 0));
  if (extra.size() != rank) c.fail("output_padding needs one value per spatial dim, got " + shape_str(extra));
  Shape y = {xs[0], out_c};
  for (size_t i = 0; i < rank; ++i) {
    if (extra[i] < 0 || (extra[i] >= w.strides[i] && extra[i] >= w.dilations[i]))
      c.fail("output_padding " + std::to_string(extra[i]) + " must be >= 0 and smaller than the stride or the dilation");
    const int64_t in = xs[2 + i];
    // Each term < 2^31 (read_window, infer_node's input check): no overflow.
    const int64_t out = (in - 1) * w.strides[i] - w.pads_begin[i] - w.pads_end[i] + w.dilations[i] * (w.kernel[i] - 1) + extra[i] + 1;
    if (known(in) && out < 1) c.fail("spatial size " + std::to_string(in) + " gives an output of " + std::to_string(out));
    y.push_back(known(in) ? out : -1);
  }
  return {{DType::f32, y}};
}

// The factors of Resize's `scales` (none: empty).
std::vector<double> resize_scales(const Attrs& a) {
  return a.has("scales") ? std::get<std::vector<double>>(a.all().at("scales")) : std::vector<double>{};
}

// Resize: x [N, C, spatial...] resampled to `sizes` along the spatial dims.
Types infer_resize(const InferContext& c) {
  need_spatial(c);
  const Shape& xs = c.shape(0);
  const std::string mode = c.attrs().s("mode"), coords = c.attrs().s("coordinates");
  if (mode != "nearest" && mode != "linear") c.fail("unknown resize mode \"" + mode + "\" (expected nearest or linear)");
  if (coords != "half_pixel" && coords != "align_corners" && coords != "asymmetric")
    c.fail("unknown coordinates \"" + coords + "\" (expected half_pixel, align_corners or asymmetric)");
  if (mode == "nearest" && coords == "align_corners") c.fail("nearest resizing has no align_corners coordinates");
  const std::vector<int64_t>& sizes = c.attrs().ints("sizes");
  const std::vector<double> scales = resize_scales(c.attrs());
  if (sizes.size() != xs.size() - 2) c.fail("sizes " + shape_str(sizes) + " need one value per spatial dim of " + shape_str(xs));
  if (!scales.empty() && scales.size() != sizes.size()) c.fail("scales need one value per spatial dim, got " + std::to_string(scales.size()));
  for (double s : scales)
    if (!(s > 0) || !std::isfinite(s)) c.fail("scales must be finite and > 0");
  Shape y = {xs[0], xs[1]};
  for (int64_t s : sizes) {
    if (s < 1 || s > kMaxDim) c.fail("sizes must be in [1, 2^31), got " + shape_str(sizes));
    y.push_back(s);
  }
  return {{DType::f32, y}};
}

// PReLU: a slope per channel (dim 1) or one for every element.
Types infer_prelu(const InferContext& c) {
  need_f32(c, 0, "x");
  need_f32(c, 1, "slope");
  const Shape& xs = c.shape(0);
  const int64_t n = product(c.shape(1).begin(), c.shape(1).end());
  if (n != 1 && (xs.size() < 2 || !fits(n, xs[1])))
    c.fail("slope " + shape_str(c.shape(1)) + " must have 1 element or one per channel (dim 1) of " + shape_str(xs));
  return same_as_input(c);
}

Types infer_pool(const InferContext& c) {
  need_spatial(c);
  const Shape& xs = c.shape(0);
  const std::string mode = c.attrs().s("mode");
  if (mode != "max" && mode != "avg") c.fail("unknown pooling mode \"" + mode + "\" (expected \"max\" or \"avg\")");
  Shape y = {xs[0], xs[1]};
  if (c.attrs().i("global")) {
    y.insert(y.end(), xs.size() - 2, 1);
    return {{DType::f32, y}};
  }
  if (!c.attrs().has("kernel")) c.fail("missing attribute \"kernel\" (a Pool that is not global needs one)");
  const std::vector<int64_t>& kernel = c.attrs().ints("kernel");
  if (kernel.size() != xs.size() - 2)
    c.fail("kernel " + shape_str(kernel) + " does not match " + std::to_string(xs.size() - 2) + " spatial dims");
  const Window w = read_window(c.node(), c.attrs(), kernel);
  const std::vector<int64_t> sp = window_output(c.node(), {xs.begin() + 2, xs.end()}, w);
  y.insert(y.end(), sp.begin(), sp.end());
  return {{DType::f32, y}};
}

Types infer_batchnorm(const InferContext& c) {
  need_f32(c, 0, "x");
  if (c.shape(0).size() < 2) c.fail("BatchNorm needs an input [N, C, ...], got " + shape_str(c.shape(0)));
  const char* roles[] = {"scale", "shift", "mean", "variance"};
  for (size_t i = 0; i < 4; ++i) need_count(c, 1 + i, c.shape(0)[1], roles[i]);
  return same_as_input(c);
}

Types infer_layernorm(const InferContext& c) {
  need_f32(c, 0, "x");
  const Shape& xs = c.shape(0);
  const int64_t axis = normalize_axis(c.node(), c.attrs().i("axis"), xs.size());
  const int64_t inner = product(xs.begin() + axis, xs.end());
  if (c.has(1)) need_count(c, 1, inner, "scale");
  if (c.has(2)) need_count(c, 2, inner, "shift");
  return same_as_input(c);
}

Types infer_rmsnorm(const InferContext& c) {
  need_f32(c, 0, "x");
  const Shape& xs = c.shape(0);
  const int64_t axis = normalize_axis(c.node(), c.attrs().i("axis"), xs.size());
  if (c.has(1)) need_count(c, 1, product(xs.begin() + axis, xs.end()), "scale");
  return same_as_input(c);
}

Types infer_embedding(const InferContext& c) {
  const TensorType& ids = c.in(0);
  if (ids.dtype != DType::i32 && ids.dtype != DType::i64) c.fail(std::string("ids must be i32 or i64, got ") + dtype_name(ids.dtype));
  need_f32(c, 1, "table");
  if (c.shape(1).size() != 2) c.fail("table must be [V, D], got " + shape_str(c.shape(1)));
  Shape y = ids.shape;
  y.push_back(c.shape(1)[1]);
  return {{DType::f32, y}};
}

Types infer_transpose(const InferContext& c) {
  const Shape& xs = c.shape(0);
  std::vector<int64_t> perm = c.attrs().ints("perm");
  if (perm.size() > xs.size()) c.fail("perm " + shape_str(perm) + " is longer than the input's rank " + std::to_string(xs.size()));
  for (size_t d = perm.size(); d < xs.size(); ++d) perm.push_back(static_cast<int64_t>(d));
  std::vector<bool> seen(xs.size(), false);
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(xs.size()) || seen[p]) c.fail("perm " + shape_str(c.attrs().ints("perm")) + " is not a permutation");
    seen[p] = true;
  }
  Shape y(xs.size());
  for (size_t i = 0; i < perm.size(); ++i) y[i] = xs[perm[i]];
  return {{c.in(0).dtype, y}};
}

// Compare: 1 where a (mode) b holds, else 0, as i32 (a bool, as streams carry one); the operands
// broadcast like numpy.
Types infer_compare(const InferContext& c) {
  need_f32(c, 0, "a");
  need_f32(c, 1, "b");
  const std::string mode = c.attrs().s("mode");
  if (mode != "eq" && mode != "ne" && mode != "lt" && mode != "le" && mode != "gt" && mode != "ge")
    c.fail("unknown comparison \"" + mode + "\" (expected eq, ne, lt, le, gt or ge)");
  return {{DType::i32, broadcast_shapes(c.node(), c.shape(0), c.shape(1))}};
}

// Where: cond ? a : b element-wise; the three broadcast like numpy.
Types infer_where(const InferContext& c) {
  if (c.in(0).dtype == DType::f64) c.fail("cond must be f32, i32 or i64, got " + type_str(c.in(0)));
  need_f32(c, 1, "a");
  need_f32(c, 2, "b");
  return {{DType::f32, broadcast_shapes(c.node(), broadcast_shapes(c.node(), c.shape(0), c.shape(1)), c.shape(2))}};
}

// Expand: x repeated along its dims of 1 (and new leading dims, x aligned to the end) to
// `shape`: -1 keeps x's dim, 0 takes like's dim at the same position (a size known only when
// compiled, such as the batch).
Types infer_expand(const InferContext& c) {
  const Shape& x = c.shape(0);
  const Shape& target = c.attrs().ints("shape");
  if (target.size() < x.size()) c.fail("shape " + shape_str(target) + " has fewer dims than x " + shape_str(x));
  const bool copies = std::find(target.begin(), target.end(), 0) != target.end();
  if (copies != c.has(1)) c.fail(copies ? "0 in shape " + shape_str(target) + " copies a dim of like, which is missing" : "like is read only where shape has a 0");
  if (copies && c.shape(1).size() != target.size())
    c.fail("like " + shape_str(c.shape(1)) + " must have the rank of shape " + shape_str(target));
  const size_t lead = target.size() - x.size();
  Shape y(target.size());
  for (size_t i = 0; i < target.size(); ++i) {
    const int64_t from = i < lead ? 1 : x[i - lead];
    if (target[i] < -1 || (target[i] == -1 && i < lead))
      c.fail("shape " + shape_str(target) + ": " + std::to_string(target[i]) + " at dim " + std::to_string(i) + " is not a size");
    y[i] = target[i] == -1 ? from : target[i] == 0 ? c.shape(1)[i] : target[i];
    if (from != 1 && !fits(from, y[i]))
      c.fail("x " + shape_str(x) + " cannot expand to " + shape_str(target) + ": dim " + std::to_string(i) + " is neither 1 nor " + std::to_string(y[i]));
  }
  return {{c.in(0).dtype, y}};
}

Types infer_pad(const InferContext& c) {
  need_f32(c, 0, "x");
  const Shape& xs = c.shape(0);
  const std::vector<int64_t>& pb = c.attrs().ints("pads_begin");
  const std::vector<int64_t>& pe = c.attrs().ints("pads_end");
  if (pb.size() != xs.size() || pe.size() != xs.size()) c.fail("pads_begin and pads_end need one count per dimension of " + shape_str(xs));
  Shape y(xs.size());
  for (size_t d = 0; d < xs.size(); ++d) {
    if (pb[d] < 0 || pe[d] < 0) c.fail("pads must be >= 0");
    if (pb[d] > kMaxDim || pe[d] > kMaxDim) c.fail("pads must be < 2^31");
    y[d] = known(xs[d]) ? xs[d] + pb[d] + pe[d] : -1;
  }
  return {{DType::f32, y}};
}

// RNN, LSTM, GRU: one layer, one or two directions. x [T, N, I] ([N, T, I] with batch_first),
// W [D, G·H, I], R [D, G·H, H], B and RB [D, G·H], h0 (and LSTM's c0) [D, N, H]; gates stacked
// in the IR's order (docs/ir.md). Outputs y [T, N, D·H] (merge "sum": H), then h_n (and c_n) [D, N, H].
std::function<Types(const InferContext&)> infer_recurrent(int64_t gates, bool lstm) {
  return [gates, lstm](const InferContext& c) -> Types {
    need_f32(c, 0, "x");
    const Shape& x = c.shape(0);
    if (x.size() != 3) c.fail("x must be [T, N, I] ([N, T, I] with batch_first), got " + shape_str(x));
    const bool batch_first = c.attrs().i("batch_first") != 0;
    const int64_t t = batch_first ? x[1] : x[0], n = batch_first ? x[0] : x[1], in = x[2];
    const std::string direction = c.attrs().s("direction"), merge = c.attrs().s("merge");
    if (direction != "forward" && direction != "reverse" && direction != "bidirectional")
      c.fail("direction must be forward, reverse or bidirectional, got \"" + direction + "\"");
    if (merge != "concat" && merge != "sum") c.fail("merge must be concat or sum, got \"" + merge + "\"");
    if (c.attrs().has("activation") && c.attrs().s("activation") != "tanh" && c.attrs().s("activation") != "relu")
      c.fail("activation must be tanh or relu, got \"" + c.attrs().s("activation") + "\"");
    const int64_t d = direction == "bidirectional" ? 2 : 1;
    need_f32(c, 1, "W");
    need_f32(c, 2, "R");
    const Shape& w = c.shape(1);
    const Shape& r = c.shape(2);
    if (r.size() != 3 || r[0] != d || r[1] % gates || r[1] / gates != r[2])
      c.fail("R must be [" + std::to_string(d) + ", " + std::to_string(gates) + "·H, H], got " + shape_str(r));
    const int64_t h = r[2];
    if (w.size() != 3 || w[0] != d || w[1] != gates * h || !fits(w[2], in))
      c.fail("W must be [" + std::to_string(d) + ", " + std::to_string(gates * h) + ", " + std::to_string(in) + "] (directions, " +
             std::to_string(gates) + " gates · hidden, input), got " + shape_str(w));
    for (size_t i : {size_t(3), size_t(4)})
      if (c.has(i)) need_shape(c, i, {d, gates * h}, i == 3 ? "B" : "RB");
    for (size_t i = 5; i < (lstm ? 7u : 6u); ++i)
      if (c.has(i)) need_shape(c, i, {d, n, h}, i == 5 ? "h0" : "c0");
    const int64_t features = merge == "sum" ? h : d * h;
    const Shape y = batch_first ? Shape{n, t, features} : Shape{t, n, features};
    Types out = {{DType::f32, y}, {DType::f32, {d, n, h}}};
    if (lstm) out.push_back({DType::f32, {d, n, h}});
    return out;
  };
}

// Slice: ONNX's semantics. starts/ends per listed axis (negative counts from the end, clamped to
// the dim), steps (negative walks backwards), axes default 0, 1, ...
Types infer_slice(const InferContext& c) {
  const Shape& x = c.shape(0);
  const std::vector<int64_t>& starts = c.attrs().ints("starts");
  const std::vector<int64_t>& ends = c.attrs().ints("ends");
  std::vector<int64_t> axes = c.attrs().ints("axes", {});
  std::vector<int64_t> steps = c.attrs().ints("steps", {});
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(int64_t(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    c.fail("starts, ends, axes and steps need one value each per sliced axis");
  Shape y = x;
  std::vector<bool> seen(x.size(), false);
  for (size_t i = 0; i < axes.size(); ++i) {
    const int64_t a = normalize_axis(c.node(), axes[i], x.size());
    if (seen[a]) c.fail("axis " + std::to_string(axes[i]) + " is sliced twice");
    seen[a] = true;
    if (steps[i] == 0) c.fail("a step of 0");
    if (!known(x[a])) {
      y[a] = -1;
      continue;
    }
    const SliceRange range = slice_range(x[a], starts[i], ends[i], steps[i]);
    y[a] = range.count;
  }
  return {{c.in(0).dtype, y}};
}

// Reduce: mean, sum, max or min over the listed axes (negative from the end; none listed: all),
// kept as dims of 1 or dropped.
Types infer_reduce(const InferContext& c) {
  need_f32(c, 0, "x");
  const Shape& x = c.shape(0);
  const std::string mode = c.attrs().s("mode");
  if (mode != "mean" && mode != "sum" && mode != "max" && mode != "min")
    c.fail("unknown reduction \"" + mode + "\" (expected mean, sum, max or min)");
  std::vector<bool> reduced(x.size(), c.attrs().ints("axes").empty());
  for (int64_t axis : c.attrs().ints("axes")) {
    const int64_t a = normalize_axis(c.node(), axis, x.size());
    if (reduced[a]) c.fail("axis " + std::to_string(axis) + " is listed twice");
    reduced[a] = true;
  }
  Shape y;
  for (size_t i = 0; i < x.size(); ++i)
    if (!reduced[i]) y.push_back(x[i]);
    else if (c.attrs().i("keepdims")) y.push_back(1);
  return {{DType::f32, y}};
}

// ------------------------------------------------------------------ the table

InputSchema value(const std::string& name, const std::string& doc = "", bool optional = false) {
  return {name, InputKind::Value, optional, false, doc};
}
InputSchema weight(const std::string& name, const std::string& doc = "", bool optional = false) {
  return {name, InputKind::Weight, optional, false, doc};
}
AttrSchema required(const std::string& name, AttrType type, const std::string& doc = "") { return {name, type, std::nullopt, false, doc}; }
AttrSchema with_default(const std::string& name, AttrType type, AttrValue v, const std::string& doc = "") {
  return {name, type, std::move(v), false, doc};
}

std::vector<AttrSchema> join(std::vector<AttrSchema> a, const std::vector<AttrSchema>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

OpSchema binary_op(const std::string& name, const std::string& what) {
  return {name, what + " with numpy broadcasting",
          {{"a", InputKind::Any, false, false, ""}, {"b", InputKind::Any, false, false, ""}},
          {"y"}, {}, infer_binary,
          "one operand must have the output shape (oneDNN broadcasts only its second source: Add/Mul swap, Sub swaps and "
          "negates, Div cannot)"};
}

// The recurrent ops' common schema: one layer, one or two directions.
OpSchema recurrent_op(const std::string& name, int64_t gates, bool lstm, const std::string& summary, std::vector<AttrSchema> extra) {
  const std::string g = std::to_string(gates) + "·H";
  std::vector<InputSchema> inputs = {value("x", "[T, N, I] or [N, T, I]"), weight("W", "[D, " + g + ", I]"), weight("R", "[D, " + g + ", H]"),
                                     weight("B", "[D, " + g + "]", true), weight("RB", "[D, " + g + "]", true),
                                     {"h0", InputKind::Any, true, false, "[D, N, H]"}};
  std::vector<std::string> outputs = {"y", "h_n"};
  if (lstm) {
    inputs.push_back({"c0", InputKind::Any, true, false, "[D, N, H]"});
    outputs.push_back("c_n");
  }
  std::vector<AttrSchema> attrs = {with_default("direction", AttrType::String, std::string("forward"), "forward | reverse | bidirectional"),
                                   with_default("merge", AttrType::String, std::string("concat"), "bidirectional outputs: concat | sum"),
                                   with_default("batch_first", AttrType::Int, int64_t(0), "1: x and y are [N, T, ·]")};
  attrs.insert(attrs.end(), extra.begin(), extra.end());
  return {name, summary, inputs, outputs, attrs, infer_recurrent(gates, lstm),
          "oneDNN " + std::string(name == "RNN" ? "vanilla_rnn" : name == "LSTM" ? "lstm" : "gru / lbr_gru") +
              "; weights reordered once into the primitive's layout; B and RB folded (kept apart for the n gate of linear_before_reset)"};
}

std::map<std::string, OpSchema> make_table() {
  std::vector<OpSchema> ops = {
      {"Dense", "y = act(x · weightᵀ + bias)",
       {value("x", "[..., in]"), weight("weight", "[out, in]"), weight("bias", "[out]", true)}, {"y"},
       fused_activation_attrs(), infer_dense,
       "oneDNN matmul; weights reordered once at compile time; bias and activation fused as post-ops"},
      {"MatMul", "y = scale · (a · b) over the last two dims; the leading dims broadcast like numpy",
       {{"a", InputKind::Any, false, false, "[..., M, K]"}, {"b", InputKind::Any, false, false, "[..., K, N], or [..., N, K] with transpose_b"}},
       {"y"},
       {with_default("transpose_b", AttrType::Int, int64_t(0), "1: b is [..., N, K], used transposed"),
        with_default("scale", AttrType::Float, 1.0, "multiplies the product")},
       infer_matmul,
       "oneDNN matmul; a batch dim of 1 broadcasts inside the primitive; a transposed b is read through its strides (no copy); "
       "scale is the primitive's output scale"},
      {"Activation", "an element-wise function",
       {value("x")}, {"y"},
       {required("function", AttrType::String, "a canonical name (table below)"),
        {"alpha", AttrType::Float, std::nullopt, true, ""}, {"beta", AttrType::Float, std::nullopt, true, ""}},
       infer_activation, "oneDNN eltwise, in the input's layout"},
      {"Softmax", "softmax or log-softmax along one axis",
       {value("x")}, {"y"},
       {required("axis", AttrType::Int, "negative counts from the end"), with_default("log", AttrType::Int, int64_t(0), "1: log-softmax")},
       infer_softmax, "oneDNN softmax / logsoftmax"},
      {"Identity", "the input", {{"x", InputKind::Any, false, false, ""}}, {"y"}, {}, same_as_input,
       "no copy: the output shares the input's buffer"},
      {"Flatten", "merges dims start..end into one, as torch.flatten",
       {value("x")}, {"y"},
       {with_default("start", AttrType::Int, int64_t(1), "first dim merged"),
        with_default("end", AttrType::Int, int64_t(-1), "last dim merged (inclusive; negative from the end)")},
       infer_flatten, "no copy"},
      {"Reshape", "the same elements in another shape",
       {value("x")}, {"y"},
       {required("shape", AttrType::Ints, "one -1 is inferred, 0 copies the input dim")}, infer_reshape, "no copy"},
      binary_op("Add", "a + b"),
      binary_op("Sub", "a − b"),
      binary_op("Mul", "a · b"),
      binary_op("Div", "a / b"),
      {"Concat", "joins its inputs along an axis",
       {{"x", InputKind::Value, false, true, "shapes equal outside axis"}}, {"y"},
       {required("axis", AttrType::Int, "negative counts from the end")}, infer_concat, "oneDNN concat"},
      {"Affine", "x · scale + shift per feature (scikit-learn scalers)",
       {value("x", "[..., F]"), weight("scale", "[F]"), weight("shift", "[F]")}, {"y"}, {}, infer_affine,
       "one binary primitive with a fused add"},
      {"Conv", "convolution over 1-3 spatial dims",
       {value("x", "[N, C, spatial...]"), weight("weight", "[O, C/groups, k...]"), weight("bias", "[O]", true),
        value("add", "y's shape: a residual added before the activation, set by the fusion pass", true)},
       {"y"}, join(join(window_attrs(), {with_default("groups", AttrType::Int, int64_t(1), "")}), fused_activation_attrs()),
       infer_conv,
       "oneDNN convolution; pads explicit per spatial dim (decoders resolve \"same\"); weights reordered once into the "
       "primitive's layout; `add` is a sum post-op, written in place over it when nothing reads it later; 3x3 "
       "stride-1 2-D convolutions with channels in multiples of 16 and at least 128 positions run Winograd where the CPU "
       "has it (AVX-512)"},
      {"Pool", "max or average pooling over windows",
       {value("x", "[N, C, spatial...]")}, {"y"},
       join({required("mode", AttrType::String, "max | avg"), {"kernel", AttrType::Ints, std::nullopt, true, "one per spatial dim (unless global)"}},
            join(window_attrs(), {with_default("count_include_pad", AttrType::Int, int64_t(0), "avg: 1 divides by the whole window"),
                                  with_default("global", AttrType::Int, int64_t(0), "1: the window is the whole spatial extent, output [N, C, 1...]")})),
       infer_pool, "oneDNN pooling_v2"},
      {"ConvTranspose", "transposed convolution (a Conv's input gradient) over 1-3 spatial dims",
       {value("x", "[N, C, spatial...]"), weight("weight", "[C, O/groups, k...]"), weight("bias", "[O]", true)}, {"y"},
       join(window_attrs(), {{"output_padding", AttrType::Ints, std::nullopt, true, "one per spatial dim, default 0: added at the end"},
                             with_default("groups", AttrType::Int, int64_t(1), "")}),
       infer_conv_transpose,
       "oneDNN deconvolution; the weight is read as [groups, O/groups, C/groups, k...] through its strides and reordered once into "
       "the primitive's layout; output_padding is a smaller pads_end there"},
      {"Resize", "nearest or linear (bi-, trilinear) resampling of the spatial dims",
       {value("x", "[N, C, spatial...]")}, {"y"},
       {required("mode", AttrType::String, "nearest | linear"),
        with_default("coordinates", AttrType::String, std::string("half_pixel"), "half_pixel | align_corners | asymmetric (below)"),
        required("sizes", AttrType::Ints, "the output's spatial dims"),
        {"scales", AttrType::Floats, std::nullopt, true, "one factor per spatial dim that maps output to input coordinates (default sizes / input)"}},
       infer_resize,
       "oneDNN resampling where its coordinates are these (linear half_pixel at the default scales; nearest asymmetric at whole "
       "upscaling factors), else a C++ loop over index and weight tables built once"},
      {"PReLU", "x ≥ 0 ? x : slope·x, the slope per channel (dim 1) or one for all",
       {value("x"), weight("slope", "[C] or one element")}, {"y"}, {}, infer_prelu, "oneDNN prelu"},
      {"BatchNorm", "inference batch normalisation with running statistics",
       {value("x", "[N, C, ...]"), weight("scale", "[C]"), weight("shift", "[C]"), weight("mean", "[C]"), weight("variance", "[C]")},
       {"y"}, {required("eps", AttrType::Float)}, infer_batchnorm, "oneDNN batch normalisation (global stats)"},
      {"LayerNorm", "normalises the trailing dims from axis",
       {value("x"), weight("scale", "trailing dims", true), weight("shift", "trailing dims", true)}, {"y"},
       {with_default("axis", AttrType::Int, int64_t(-1), "first normalised dim"), required("eps", AttrType::Float)}, infer_layernorm,
       "oneDNN layer normalisation"},
      {"RMSNorm", "x / sqrt(mean(x²) + eps) · scale over the trailing dims from axis",
       {value("x"), weight("scale", "trailing dims", true)}, {"y"},
       {with_default("axis", AttrType::Int, int64_t(-1), "the kernel supports -1 only"), required("eps", AttrType::Float)},
       infer_rmsnorm, "a C++ loop (oneDNN 2.6 has none), mean accumulated in double"},
      {"Embedding", "rows of a table by id",
       {value("ids", "i32 or i64"), weight("table", "[V, D]")}, {"y"}, {}, infer_embedding,
       "gather; an id outside [0, V) stops the run with an error naming the node and the position"},
      {"Transpose", "permutes dims: output dim i is input dim perm[i]",
       {value("x")}, {"y"},
       {required("perm", AttrType::Ints, "a shorter perm permutes only the leading dims")}, infer_transpose,
       "oneDNN reorder from a strided view"},
      {"Compare", "1 where a (mode) b holds, else 0, with numpy broadcasting",
       {{"a", InputKind::Any, false, false, ""}, {"b", InputKind::Any, false, false, ""}}, {"y"},
       {required("mode", AttrType::String, "eq | ne | lt | le | gt | ge")}, infer_compare,
       "a C++ loop over the output (either operand broadcasts); y is i32 1 or 0 (a bool, as streams carry one)"},
      {"Expand", "x repeated along its dims of 1 and new leading dims (x aligned to the end), as torch's expand",
       {{"x", InputKind::Any, false, false, ""}, {"like", InputKind::Any, true, false, "whose dims the 0 entries of shape copy"}}, {"y"},
       {required("shape", AttrType::Ints, "-1 keeps x's dim, 0 copies like's dim at the same position (the batch)")}, infer_expand,
       "a C++ copy, one run of x's innermost dim at a time"},
      {"Where", "cond ? a : b element-wise; the three broadcast like numpy",
       {{"cond", InputKind::Any, false, false, "f32, i32 or i64: true where non-zero"}, {"a", InputKind::Any, false, false, ""},
        {"b", InputKind::Any, false, false, ""}},
       {"y"}, {}, infer_where, "a C++ loop over the output (oneDNN 2.6 has no select)"},
      {"Pad", "x surrounded by a constant",
       {value("x")}, {"y"},
       {required("pads_begin", AttrType::Ints, "one count per dim"), required("pads_end", AttrType::Ints, "one count per dim"),
        with_default("value", AttrType::Float, 0.0, "")},
       infer_pad, "the border is written once; each run copies x into the interior"},
      {"Reduce", "mean, sum, max or min over some axes",
       {value("x")}, {"y"},
       {required("mode", AttrType::String, "mean | sum | max | min"),
        with_default("axes", AttrType::Ints, std::vector<int64_t>{}, "negative counts from the end; none: every axis"),
        with_default("keepdims", AttrType::Int, int64_t(1), "1: reduced axes stay as dims of 1")},
       infer_reduce, "oneDNN reduction"},
      {"Slice", "elements start:end:step along some axes (ONNX semantics)",
       {{"x", InputKind::Any, false, false, ""}}, {"y"},
       {required("starts", AttrType::Ints, "negative counts from the end; clamped"), required("ends", AttrType::Ints, "exclusive; clamped"),
        {"axes", AttrType::Ints, std::nullopt, true, "default 0, 1, ..."}, {"steps", AttrType::Ints, std::nullopt, true, "default 1; negative walks backwards"}},
       infer_slice, "a strided copy"},
      recurrent_op("RNN", 1, false, "Elman RNN: h = act(W x + R h + b)",
                   {with_default("activation", AttrType::String, std::string("tanh"), "tanh | relu")}),
      recurrent_op("LSTM", 4, true, "LSTM, gates i, f, g, o; c = f·c + i·g, h = o·tanh(c)", {}),
      recurrent_op("GRU", 3, false, "GRU, gates z, r, n; h = (1 − z)·n + z·h",
                   {with_default("linear_before_reset", AttrType::Int, int64_t(0),
                                 "1: n = tanh(W_n x + B_n + r·(R_n h + RB_n)) (PyTorch, Flax, Keras reset_after)")}),
  };
  std::map<std::string, OpSchema> table;
  for (OpSchema& s : ops) table.emplace(s.name, std::move(s));
  return table;
}

bool type_matches(const AttrValue& v, AttrType t) {
  switch (t) {
    case AttrType::Int: return std::holds_alternative<int64_t>(v);
    case AttrType::Float: return std::holds_alternative<double>(v) || std::holds_alternative<int64_t>(v);
    case AttrType::String: return std::holds_alternative<std::string>(v);
    case AttrType::Ints: return std::holds_alternative<std::vector<int64_t>>(v);
    case AttrType::Floats: return std::holds_alternative<std::vector<double>>(v);
  }
  return false;
}

}  // namespace

const std::map<std::string, OpSchema>& op_schemas() {
  static const std::map<std::string, OpSchema> table = make_table();
  return table;
}

const OpSchema& schema_of(const Node& node) {
  const auto& table = op_schemas();
  auto it = table.find(node.op);
  if (it == table.end()) {
    std::vector<std::string> names;
    for (const auto& kv : table) names.push_back(kv.first);
    throw Error(node_where(node), "unknown op \"" + node.op + "\" (known: " + list_str(names) + ")");
  }
  return it->second;
}

Attrs checked_attrs(const Node& node) {
  const OpSchema& s = schema_of(node);
  Attrs out = node.attrs;
  out.owner = node_where(node);
  for (const auto& [key, v] : node.attrs.all()) {
    const std::string& name = key;  // a lambda may not capture a structured binding before C++20 (clang)
    auto it = std::find_if(s.attrs.begin(), s.attrs.end(), [&](const AttrSchema& a) { return a.name == name; });
    if (it == s.attrs.end()) {
      std::vector<std::string> names;
      for (const auto& a : s.attrs) names.push_back(a.name);
      throw Error(out.owner, "attribute \"" + key + "\" is not an attribute of " + node.op +
                                 (names.empty() ? " (it takes none)" : " (known: " + list_str(names) + ")"));
    }
    if (!type_matches(v, it->type))
      throw Error(out.owner, "attribute \"" + key + "\" must be " + attr_type_name(it->type) + ", got " + attr_str(v));
    if (it->type == AttrType::Float && std::holds_alternative<int64_t>(v)) out.set(key, static_cast<double>(std::get<int64_t>(v)));
  }
  for (const AttrSchema& a : s.attrs) {
    if (out.has(a.name)) continue;
    if (a.default_value) out.set(a.name, *a.default_value);
    else if (!a.optional) throw Error(out.owner, "missing attribute \"" + a.name + "\" (" + attr_type_name(a.type) + ")");
  }
  return out;
}

std::vector<TensorType> infer_node(const Node& node, const std::vector<const TensorType*>& inputs,
                                   const std::function<bool(const std::string&)>& is_weight) {
  const OpSchema& s = schema_of(node);
  const std::string where = node_where(node);
  // The last schema input stands for every further input when it is variadic.
  const bool variadic = s.inputs.back().variadic;
  if (!variadic && node.inputs.size() > s.inputs.size())
    throw Error(where, "takes at most " + std::to_string(s.inputs.size()) + " inputs, got " + std::to_string(node.inputs.size()));
  for (size_t i = 0; i < std::max(node.inputs.size(), s.inputs.size()); ++i) {
    const InputSchema& in = s.inputs[std::min(i, s.inputs.size() - 1)];
    if (i >= node.inputs.size() || node.inputs[i].empty()) {
      if (!in.optional) throw Error(where, "missing input " + std::to_string(i) + " (" + in.name + ")");
      continue;
    }
    if (in.kind == InputKind::Weight && !is_weight(node.inputs[i]))
      throw Error(where, "input " + std::to_string(i) + " (" + in.name + ") \"" + node.inputs[i] +
                             "\" must be a constant weight, not a computed value");
  }
  if (node.outputs.size() != s.outputs.size())
    throw Error(where, "has " + std::to_string(node.outputs.size()) + " outputs, " + node.op + " has " + std::to_string(s.outputs.size()));
  // Inputs within the limit too (a graph input's shape comes from a file), so that no infer
  // function's arithmetic on dims can overflow.
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i]) continue;
    const std::string why = shape_problem(inputs[i]->shape);
    if (!why.empty())
      throw Error(where, "input \"" + (i < node.inputs.size() ? node.inputs[i] : std::to_string(i)) + "\" is " + type_str(*inputs[i]) +
                             ": " + why);
  }
  const Attrs attrs = checked_attrs(node);
  std::vector<TensorType> out = s.infer(InferContext(node, inputs, attrs));
  for (size_t i = 0; i < out.size(); ++i) {
    const std::string why = shape_problem(out[i].shape);
    if (!why.empty())
      throw Error(where, "output \"" + (i < node.outputs.size() ? node.outputs[i] : std::to_string(i)) + "\" would be " +
                             type_str(out[i]) + ": " + why);
  }
  return out;
}

std::map<std::string, TensorType> infer_graph(const Graph& graph, const std::map<std::string, Shape>& input_shapes) {
  graph.validate();
  std::map<std::string, TensorType> types;
  for (const ValueInfo& in : graph.inputs) {
    auto given = input_shapes.find(in.name);
    types[in.name] = {in.dtype, given == input_shapes.end() ? in.shape : given->second};
  }
  for (const auto& [name, t] : graph.weights) types[name] = {t.dtype(), t.shape()};
  auto is_weight = [&](const std::string& n) { return graph.weights.count(n) != 0; };
  for (const Node& node : graph.nodes) {
    std::vector<const TensorType*> ins;
    for (const std::string& i : node.inputs) ins.push_back(i.empty() ? nullptr : &types.at(i));
    const std::vector<TensorType> out = infer_node(node, ins, is_weight);
    for (size_t i = 0; i < out.size(); ++i) types[node.outputs[i]] = out[i];
  }
  return types;
}

std::string ops_markdown() {
  std::ostringstream o;
  o << "| op | inputs | attributes | computes | notes |\n|---|---|---|---|---|\n";
  for (const auto& [name, s] : op_schemas()) {
    o << "| `" << name << "` | ";
    for (size_t i = 0; i < s.inputs.size(); ++i) {
      const InputSchema& in = s.inputs[i];
      o << (i ? ", " : "") << in.name << (in.variadic ? "…" : "");
      std::string note = in.doc;
      if (in.kind == InputKind::Weight) note += std::string(note.empty() ? "" : ", ") + "weight";
      if (in.optional) note += std::string(note.empty() ? "" : ", ") + "optional";
      if (!note.empty()) o << " (" << note << ")";
    }
    o << " | ";
    if (s.attrs.empty()) o << "—";
    for (size_t i = 0; i < s.attrs.size(); ++i) {
      const AttrSchema& a = s.attrs[i];
      o << (i ? ", " : "") << "`" << a.name << "` " << attr_type_name(a.type);
      if (a.default_value) o << " = " << attr_str(*a.default_value);
      else if (!a.optional) o << " (required)";
      if (!a.doc.empty()) o << ": " << a.doc;
    }
    o << " | " << s.summary << " | " << s.notes << " |\n";
  }
  return o.str();
}

std::string activations_markdown() {
  std::ostringstream o;
  o << "| function | definition | needs |\n|---|---|---|\n";
  for (const ActivationInfo& a : activation_functions()) {
    std::string needs;
    for (const std::string& r : a.required) needs += (needs.empty() ? "`" : ", `") + r + "`";
    o << "| `" << a.name << "` | " << a.definition << " | " << (needs.empty() ? "—" : needs) << " |\n";
  }
  return o.str();
}

}  // namespace pb::ir
