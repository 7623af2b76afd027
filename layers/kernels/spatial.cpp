#include "spatial.h"

namespace pb::layers {

Window read_window(const ir::Node& node, std::vector<int64_t> kernel) {
  const size_t rank = kernel.size();
  Window w;
  w.kernel = std::move(kernel);
  w.strides = node.attrs.ints("strides", std::vector<int64_t>(rank, 1));
  w.dilations = node.attrs.ints("dilations", std::vector<int64_t>(rank, 1));
  w.pads_begin = node.attrs.ints("pads_begin", std::vector<int64_t>(rank, 0));
  w.pads_end = node.attrs.ints("pads_end", std::vector<int64_t>(rank, 0));
  for (const auto* v : {&w.strides, &w.dilations, &w.pads_begin, &w.pads_end})
    if (v->size() != rank)
      throw Error(node_where(node), "window attributes need " + std::to_string(rank) + " values per list, got " +
                                        shape_str(*v));
  for (size_t i = 0; i < rank; ++i)
    if (w.kernel[i] < 1 || w.strides[i] < 1 || w.dilations[i] < 1 || w.pads_begin[i] < 0 || w.pads_end[i] < 0)
      throw Error(node_where(node), "kernel, strides and dilations must be >= 1 and pads >= 0");
  return w;
}

std::vector<int64_t> window_output(const ir::Node& node, const Shape& in, const Window& w) {
  std::vector<int64_t> out(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const int64_t span = w.dilations[i] * (w.kernel[i] - 1) + 1;
    const int64_t padded = in[i] + w.pads_begin[i] + w.pads_end[i];
    if (padded < span)
      throw Error(node_where(node), "spatial size " + std::to_string(in[i]) + " (padded " + std::to_string(padded) +
                                        ") is smaller than the window " + std::to_string(span));
    out[i] = (padded - span) / w.strides[i] + 1;
  }
  return out;
}

dnnl::memory::dims dnnl_dilations(const Window& w) {
  dnnl::memory::dims d;
  for (int64_t v : w.dilations) d.push_back(v - 1);
  return d;
}

}  // namespace pb::layers
