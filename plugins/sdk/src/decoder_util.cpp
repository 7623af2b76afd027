#include "planetbridge/decoder_util.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "planetbridge/error.h"

namespace pb {

ir::Attrs attrs_of(AttrList kv) {
  ir::Attrs a;
  for (const auto& [k, v] : kv) a.set(k, v);
  return a;
}

Tensor filled(const Shape& shape, double value, DType dtype) {
  Tensor t(dtype, shape);
  switch (dtype) {
    case DType::f32: std::fill(t.data<float>(), t.data<float>() + t.numel(), static_cast<float>(value)); break;
    case DType::f64: std::fill(t.data<double>(), t.data<double>() + t.numel(), value); break;
    case DType::i32: std::fill(t.data<int32_t>(), t.data<int32_t>() + t.numel(), static_cast<int32_t>(value)); break;
    case DType::i64: std::fill(t.data<int64_t>(), t.data<int64_t>() + t.numel(), static_cast<int64_t>(value)); break;
  }
  return t;
}

JsonRef model_of(const Stream& stream, const std::string& format) {
  JsonRef model = stream.model();
  JsonRef f = model["format"];
  if (f.str() != format) f.fail("expected \"" + format + "\", got \"" + f.str() + "\"");
  return model;
}

std::map<std::string, std::string> stream_metadata(const Stream& stream) {
  return {{"planet", stream.planet}, {"planet_version", stream.planet_version}, {"model_id", stream.model_id}};
}

CaptureCommand serve_command(const char* env, const std::string& fallback, const std::string& script) {
  const char* program = std::getenv(env);
  return {{program ? program : fallback, script, "--serve"}, {}};
}

std::vector<int64_t> int_or_list(const JsonRef& v, size_t n) {
  if (v.is_array()) {
    std::vector<int64_t> out = v.ints();
    if (out.size() != n) v.fail("expected " + std::to_string(n) + " values, got " + std::to_string(out.size()));
    return out;
  }
  return std::vector<int64_t>(n, v.i64());
}

ir::Attrs window_attrs(const std::vector<int64_t>& strides, const std::vector<int64_t>& dilations,
                       const std::vector<int64_t>& pads_begin, const std::vector<int64_t>& pads_end) {
  return attrs_of({{"strides", strides}, {"dilations", dilations}, {"pads_begin", pads_begin}, {"pads_end", pads_end}});
}

int64_t same_padding_total(int64_t in, int64_t kernel, int64_t stride, int64_t dilation) {
  const int64_t out = (in + stride - 1) / stride;
  return std::max<int64_t>((out - 1) * stride + (kernel - 1) * dilation + 1 - in, 0);
}

std::vector<int64_t> channels_first_perm(size_t rank) {
  std::vector<int64_t> p = {0, int64_t(rank) - 1};
  for (size_t d = 1; d + 1 < rank; ++d) p.push_back(int64_t(d));
  return p;
}

std::vector<int64_t> channels_last_perm(size_t rank) {
  std::vector<int64_t> p = {0};
  for (size_t d = 2; d < rank; ++d) p.push_back(int64_t(d));
  p.push_back(1);
  return p;
}

std::vector<int64_t> kernel_oi_first_perm(size_t rank) {
  std::vector<int64_t> p = {int64_t(rank) - 1, int64_t(rank) - 2};
  for (size_t d = 0; d + 2 < rank; ++d) p.push_back(int64_t(d));
  return p;
}

Tensor permuted(const Tensor& t, const std::vector<int64_t>& perm) {
  const Shape& in = t.shape();
  const size_t rank = in.size();
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  bool ok = sorted.size() == rank;
  for (size_t d = 0; ok && d < rank; ++d) ok = sorted[d] == int64_t(d);
  if (!ok) throw Error("permuted", "perm " + shape_str(perm) + " is not a permutation of the axes of " + shape_str(in));
  // Source strides (in elements), in the result's axis order.
  std::vector<int64_t> in_strides(rank, 1);
  for (size_t d = rank; d-- > 1;) in_strides[d - 1] = in_strides[d] * in[d];
  Shape out_shape(rank);
  std::vector<int64_t> strides(rank);
  for (size_t i = 0; i < rank; ++i) {
    out_shape[i] = in[size_t(perm[i])];
    strides[i] = in_strides[size_t(perm[i])];
  }
  Tensor out(t.dtype(), out_shape);
  const size_t es = dtype_size(t.dtype());
  const char* src = static_cast<const char*>(t.raw());
  char* dst = static_cast<char*>(out.raw());
  const int64_t n = out.numel();
  std::vector<int64_t> idx(rank, 0);
  int64_t from = 0;  // the source element of idx
  for (int64_t k = 0; k < n; ++k) {
    std::memcpy(dst + size_t(k) * es, src + size_t(from) * es, es);
    for (size_t d = rank; d-- > 0;) {  // the next index, row-major
      from += strides[d];
      if (++idx[d] < out_shape[d]) break;
      from -= idx[d] * strides[d];
      idx[d] = 0;
    }
  }
  return out;
}

}  // namespace pb
