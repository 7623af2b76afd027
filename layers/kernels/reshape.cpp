// Layout-free views: Identity, Flatten and Reshape share their input's bytes (no copy).
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_identity(const ir::Node& node, CompileContext& ctx) {
  ctx.alias(node.outputs.at(0), node_input(node, 0), ctx.value(node_input(node, 0)).shape());
  return nullptr;
}

// Flatten dims [start, end] (inclusive, negative counts from the end) into one, as torch does.
std::unique_ptr<Kernel> build_flatten(const ir::Node& node, CompileContext& ctx) {
  const Shape& in = ctx.value(node_input(node, 0)).shape();
  const int64_t rank = static_cast<int64_t>(in.size());
  int64_t start = node.attrs.i("start", 1), end = node.attrs.i("end", -1);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  if (rank == 0 || start < 0 || end >= rank || start > end)
    throw Error(node_where(node), "cannot flatten dims [" + std::to_string(node.attrs.i("start", 1)) + ", " +
                                      std::to_string(node.attrs.i("end", -1)) + "] of " + shape_str(in));
  Shape out(in.begin(), in.begin() + start);
  int64_t merged = 1;
  for (int64_t d = start; d <= end; ++d) merged *= in[d];
  out.push_back(merged);
  out.insert(out.end(), in.begin() + end + 1, in.end());
  ctx.alias(node.outputs.at(0), node_input(node, 0), out);
  return nullptr;
}

// Reshape to attrs.shape; one -1 is inferred, 0 copies the input's dim (as ONNX).
std::unique_ptr<Kernel> build_reshape(const ir::Node& node, CompileContext& ctx) {
  const Shape& in = ctx.value(node_input(node, 0)).shape();
  Shape out = node.attrs.ints("shape");
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 0 && i < in.size()) out[i] = in[i];
    if (out[i] == -1) {
      if (infer >= 0) throw Error(node_where(node), "more than one -1 in shape");
      infer = static_cast<int64_t>(i);
    } else {
      known *= out[i];
    }
  }
  if (infer >= 0 && known > 0) out[infer] = element_count(in) / known;
  if (element_count(out) != element_count(in))
    throw Error(node_where(node), "cannot reshape " + shape_str(in) + " to " + shape_str(node.attrs.ints("shape")));
  ctx.alias(node.outputs.at(0), node_input(node, 0), out);
  return nullptr;
}

}  // namespace pb::layers
