#pragma once
// Element-wise comparison: |bridged - native| <= atol + rtol * |native|.
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
};

Comparison compare(const Tensor& bridged, const Tensor& native, const Tolerance& tol);

// "[i, j, k]" for a flat index into shape.
std::string unravel(int64_t flat, const Shape& shape);

}  // namespace pb::host
