#pragma once
// Element-wise comparison: |bridged - native| <= atol + rtol * |native|; with a float64
// reference, an element also passes when |bridged - reference| <= kReferenceFactor times the
// planet's own largest float32 error against the reference, plus atol (docs/suites.md).
#include <string>

#include "planetbridge/tensor.h"
#include "suite.h"

namespace pb::host {

struct Comparison {
  bool exact = false;        // every element equal (bitwise when both sides have one dtype)
  bool within = false;       // every element within tolerance
  double max_abs = 0;        // max |bridged - native|
  double max_rel = 0;        // max |bridged - native| / |native| over native != 0
  int64_t violations = 0;    // elements outside tolerance
  int64_t worst = -1;        // flat index with the largest |diff| / (atol + rtol |native|)
  double worst_native = 0, worst_bridged = 0;
  std::string worst_index;   // "[17, 3]"
  std::string mismatch;      // non-empty when shapes or dtypes make comparison impossible
  double max_native = 0;     // max |native|: below kDegenerateFactor · atol a PASS proves nothing
  bool degenerate = false;
  // With a float64 reference (has_reference): each side's largest error against it, and the
  // bound that rescues an element outside the fixed tolerance.
  bool has_reference = false;
  double planet_vs_reference = 0, bridged_vs_reference = 0, reference_bound = 0;
  int64_t rescued = 0;       // elements outside the fixed tolerance but within reference_bound
};

// How far planetbridge's float32 error may exceed the planet's own (both against float64):
// two independent float32 computations of a deep model differ by about their own error each.
inline constexpr double kReferenceFactor = 4;
// An output whose largest magnitude is below this many atol is flagged degenerate.
inline constexpr double kDegenerateFactor = 10;

Comparison compare(const Tensor& bridged, const Tensor& native, const Tolerance& tol, const Tensor* reference = nullptr);

// "[i, j, k]" for a flat index into shape.
std::string unravel(int64_t flat, const Shape& shape);

}  // namespace pb::host
