#pragma once
// Shared by the windowed ops (Conv, Pool): attribute reading and output-size arithmetic.
#include <string>
#include <vector>

#include "kernel.h"

namespace pb::layers {

struct Window {
  std::vector<int64_t> kernel, strides, dilations, pads_begin, pads_end;  // one per spatial dim
};

// Reads strides/dilations/pads_begin/pads_end (defaults 1/1/0/0) for `rank` spatial dims.
Window read_window(const ir::Node& node, std::vector<int64_t> kernel);

// floor((in + pb + pe - d*(k-1) - 1) / s) + 1 per spatial dim; an empty result is an error.
std::vector<int64_t> window_output(const ir::Node& node, const Shape& in_spatial, const Window& w);

// oneDNN counts dilation from 0 (no dilation), the planets from 1.
dnnl::memory::dims dnnl_dilations(const Window& w);

}  // namespace pb::layers
