// Resize: x [N, C, spatial...] resampled to [N, C, sizes...]. Per spatial dim, s is the input /
// output ratio (1 / scales[i] when given, else in / out; align_corners: (in − 1) / (out − 1)),
// and output index o reads the source coordinate o·s (asymmetric, align_corners) or
// (o + 0.5)·s − 0.5 (half_pixel, clamped at 0). nearest takes its floor (half_pixel: rounded
// half up); linear blends the floor (1 − λ) and the next index (λ), clamped at the end. These
// are PyTorch's formulas with its roundings (s in f32, the coordinate in double), in the C++
// loop; oneDNN's resampling computes the same coordinates for linear half_pixel at s = in / out
// and for nearest at whole upscaling factors, and runs those.
#include <array>
#include <cmath>

#include "kernel.h"

namespace pb::layers {

namespace {

// One spatial dim's source offsets (already times the dim's stride) and weights per output index.
struct Axis {
  std::vector<int64_t> i0, i1;
  std::vector<float> w0, w1;
};

Axis axis_table(bool linear, const std::string& coords, int64_t in, int64_t out, const double* scale, int64_t stride) {
  // torch's compute_scales_value / area_pixel_compute_scale, in f32.
  float s = scale ? static_cast<float>(1.0 / *scale) : static_cast<float>(in) / static_cast<float>(out);
  if (coords == "align_corners") s = out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.f;
  Axis a;
  for (int64_t o = 0; o < out; ++o) {
    int64_t i0 = 0, i1 = 0;
    float l1 = 0.f;
    if (!linear) {
      i0 = static_cast<int64_t>(std::floor(coords == "half_pixel" ? static_cast<float>((double(o) + 0.5) * s) : static_cast<float>(o) * s));
      i1 = i0 = std::min(i0, in - 1);
    } else {
      double c = coords == "half_pixel" ? double(s) * (double(o) + 0.5) - 0.5 : double(s) * double(o);
      if (c < 0) c = 0;
      i0 = static_cast<int64_t>(c);
      i1 = i0 + (i0 < in - 1 ? 1 : 0);
      l1 = static_cast<float>(c - double(i0));
    }
    a.i0.push_back(i0 * stride);
    a.i1.push_back(i1 * stride);
    a.w0.push_back(1.f - l1);
    a.w1.push_back(l1);
  }
  return a;
}

// R spatial dims (a template so that the per-element nesting unrolls).
template <size_t R>
class ResizeKernel : public Kernel {
 public:
  ResizeKernel(const Tensor& x, Tensor& y, std::vector<Axis> axes, bool linear) : x_(x), y_(y), axes_(std::move(axes)), linear_(linear) {}

  void execute(dnnl::stream&) override {
    const Shape& ys = y_.shape();
    int64_t in_plane = 1, rows_per_plane = 1;
    for (size_t d = 0; d < R; ++d) in_plane *= x_.shape()[2 + d];
    for (size_t d = 0; d + 1 < R; ++d) rows_per_plane *= ys[2 + d];
    const int64_t row = ys.back(), rows = y_.numel() / row;
    const float* x = x_.data<float>();
    float* y = y_.data<float>();
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      // Row r: plane r / rows_per_plane, then the output indices of the outer spatial dims.
      std::array<int64_t, R> o{};
      int64_t rest = r % rows_per_plane;
      for (size_t d = R - 1; d-- > 0;) {
        o[d] = rest % ys[2 + d];
        rest /= ys[2 + d];
      }
      const float* xp = x + (r / rows_per_plane) * in_plane;
      float* yr = y + r * row;
      for (int64_t k = 0; k < row; ++k) {
        o[R - 1] = k;
        yr[k] = value<0>(xp, o);
      }
    }
  }
  std::string implementation() const override { return linear_ ? "cpp:resize_linear" : "cpp:resize_nearest"; }

 private:
  // torch's order: the outer dim blends the inner dims' results, t0·w0 + t1·w1.
  template <size_t D>
  float value(const float* x, const std::array<int64_t, R>& o) const {
    const Axis& a = axes_[D];
    const int64_t k = o[D];
    if constexpr (D + 1 == R) {
      return linear_ ? x[a.i0[k]] * a.w0[k] + x[a.i1[k]] * a.w1[k] : x[a.i0[k]];
    } else {
      const float t0 = value<D + 1>(x + a.i0[k], o);
      return linear_ ? t0 * a.w0[k] + value<D + 1>(x + a.i1[k], o) * a.w1[k] : t0;
    }
  }

  const Tensor x_;
  Tensor y_;
  std::vector<Axis> axes_;
  bool linear_;
};

}  // namespace

std::unique_ptr<Kernel> build_resize(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const Shape xs = ctx.shape(node_input(node, 0));
  const Shape& ys = ctx.output_shape();
  const bool linear = node.attrs.s("mode") == "linear";
  const std::string coords = node.attrs.s("coordinates");
  const std::vector<double> scales =
      node.attrs.has("scales") ? std::get<std::vector<double>>(node.attrs.all().at("scales")) : std::vector<double>{};
  const size_t rank = xs.size() - 2;
  bool onednn = linear ? coords == "half_pixel" : coords == "asymmetric";
  for (size_t i = 0; i < rank; ++i) {
    const int64_t in = xs[2 + i], out = ys[2 + i];
    onednn = onednn && (scales.empty() || scales[i] * double(in) == double(out)) && (linear || out % in == 0);
  }
  if (onednn) {
    const auto& eng = ctx.engine();
    const memory src = ctx.memory(node_input(node, 0));
    const memory::desc dst_md(dims_of(ys), memory::data_type::f32, ctx.activation_tag(ys.size()));
    dnnl::resampling_forward::primitive_desc pd(
        {dnnl::prop_kind::forward_inference, linear ? dnnl::algorithm::resampling_linear : dnnl::algorithm::resampling_nearest,
         src.get_desc(), dst_md},
        ctx.primitive_attr(), eng);
    std::map<int, memory> args = {
        {DNNL_ARG_SRC, src},
        {DNNL_ARG_DST, ctx.define_layout(node.outputs.at(0), ys, pd.dst_desc())},
        {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())},
    };
    return std::make_unique<PrimitiveKernel>(dnnl::resampling_forward(pd), std::move(args));
  }
  std::vector<Axis> axes;
  int64_t stride = 1;
  for (size_t i = rank; i-- > 0;) {
    const int64_t in = xs[2 + i];
    axes.insert(axes.begin(), axis_table(linear, coords, in, ys[2 + i], scales.empty() ? nullptr : &scales[i], stride));
    stride *= in;
  }
  const Tensor& x = ctx.value(node_input(node, 0));
  Tensor& y = ctx.define_output(node);
  if (rank == 1) return std::make_unique<ResizeKernel<1>>(x, y, std::move(axes), linear);
  if (rank == 2) return std::make_unique<ResizeKernel<2>>(x, y, std::move(axes), linear);
  return std::make_unique<ResizeKernel<3>>(x, y, std::move(axes), linear);
}

}  // namespace pb::layers
