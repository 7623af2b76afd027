#include "compare.h"

#include <cmath>
#include <cstring>
#include <vector>

namespace pb::host {

std::string unravel(int64_t flat, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t k = shape.size(); k-- > 0;) {
    idx[k] = shape[k] ? flat % shape[k] : 0;
    flat = shape[k] ? flat / shape[k] : 0;
  }
  return shape_str(idx);
}

namespace {
double element(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::f32: return t.data<float>()[i];
    case DType::f64: return t.data<double>()[i];
    case DType::i32: return t.data<int32_t>()[i];
    case DType::i64: return static_cast<double>(t.data<int64_t>()[i]);
  }
  return 0;
}
}  // namespace

Comparison compare(const Tensor& bridged, const Tensor& native, const Tolerance& tol, const Tensor* reference) {
  Comparison c;
  if (bridged.shape() != native.shape()) {
    c.mismatch = "shape " + shape_str(bridged.shape()) + " vs native " + shape_str(native.shape());
    return c;
  }
  if (is_float(bridged.dtype()) != is_float(native.dtype())) {
    c.mismatch = std::string("dtype ") + dtype_name(bridged.dtype()) + " vs native " + dtype_name(native.dtype());
    return c;
  }
  const int64_t n = native.numel();
  if (reference && reference->shape() == native.shape()) {
    c.has_reference = true;
    for (int64_t i = 0; i < n; ++i) {
      const double r = element(*reference, i);
      c.planet_vs_reference = std::max(c.planet_vs_reference, std::fabs(element(native, i) - r));
      c.bridged_vs_reference = std::max(c.bridged_vs_reference, std::fabs(element(bridged, i) - r));
    }
    // A non-finite error (an overflow on one side) rescues nothing.
    c.reference_bound = std::isfinite(c.planet_vs_reference) ? kReferenceFactor * c.planet_vs_reference + tol.atol : 0;
  }
  bool all_equal = true;
  double worst_ratio = -1;
  for (int64_t i = 0; i < n; ++i) {
    const double b = element(bridged, i), v = element(native, i);
    const bool both_nan = std::isnan(b) && std::isnan(v);
    const double d = both_nan ? 0.0 : std::fabs(b - v);  // NaN when only one side is NaN
    const double bound = tol.atol + tol.rtol * std::fabs(v);
    // A non-finite value on either side matches only itself: an infinite bound accepts nothing.
    const bool finite = std::isfinite(b) && std::isfinite(v);
    const bool rescued = c.has_reference && finite && std::fabs(b - element(*reference, i)) <= c.reference_bound;
    const bool ok = both_nan || b == v || (finite && (d <= bound || rescued));
    if (!(b == v || both_nan)) all_equal = false;
    if (!ok) ++c.violations;
    if (ok && rescued && !(both_nan || b == v || d <= bound)) ++c.rescued;
    if (std::isfinite(v)) c.max_native = std::max(c.max_native, std::fabs(v));
    const double dd = (b == v || both_nan) ? 0.0 : (std::isnan(d) ? INFINITY : d);
    c.max_abs = std::max(c.max_abs, dd);
    if (v != 0) c.max_rel = std::max(c.max_rel, dd / std::fabs(v));
    double ratio = 0;  // how far past its bound this element is; a non-finite mismatch is worst
    if (!(both_nan || b == v)) ratio = !finite ? INFINITY : bound > 0 ? dd / bound : INFINITY;
    if (ratio > worst_ratio) {
      worst_ratio = ratio;
      c.worst = i;
      c.worst_native = v;
      c.worst_bridged = b;
    }
  }
  c.exact = bridged.dtype() == native.dtype() ? bridged.bit_equal(native) : all_equal;
  c.within = c.violations == 0;
  c.degenerate = is_float(native.dtype()) && n > 0 && c.max_native < kDegenerateFactor * tol.atol;
  if (c.worst >= 0) c.worst_index = unravel(c.worst, native.shape());
  return c;
}

}  // namespace pb::host
