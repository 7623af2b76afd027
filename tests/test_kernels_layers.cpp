// pb::Network on ConvTranspose, Resize and PReLU, against naive double-precision references
// written here from the definitions in docs/ir.md, in plain and blocked layouts.
#include <algorithm>
#include <cmath>
#include <random>

#include "planetbridge/ir.h"
#include "planetbridge/network.h"
#include "kernel_test_util.h"

using pb::Shape;
using pb::Tensor;
using pb::ir::Attrs;
using pbtest::attrs;
using pbtest::ErrorAt;
using pbtest::GraphBuilder;
using pbtest::mismatch;
using pbtest::random_tensor;
using pbtest::Ref;
using pbtest::where;

namespace {

using Ints = std::vector<int64_t>;

const std::vector<std::pair<std::string, pb::CompileOptions>> kOptions = {{"default", {}}, {"plain", {false, false}}};

int64_t count(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// Row-major strides of `s`.
Ints strides_of(const Shape& s) {
  Ints st(s.size(), 1);
  for (size_t d = s.size(); d-- > 1;) st[d - 1] = st[d] * s[d];
  return st;
}

// ------------------------------------------------------------------ ConvTranspose

struct TransposeCase {
  std::string label;
  Shape x, w;  // w [C, O/groups, k...]
  bool bias;
  Ints strides, pads_begin, pads_end, dilations, output_padding;
  int64_t groups;
};

// Every input element scatters into the output: y[n, g·O/g + o, i·s − p + k·d] += x[n, g·C/g + c, i] · w[g·C/g + c, o, k].
Ref conv_transpose_ref(const Tensor& x, const Tensor& w, const Tensor* b, const TransposeCase& c, Shape* ys) {
  const size_t r = c.x.size() - 2;
  const int64_t groups = c.groups, cg = c.w[0] / groups, og = c.w[1];
  *ys = {c.x[0], og * groups};
  for (size_t i = 0; i < r; ++i)
    ys->push_back((c.x[2 + i] - 1) * c.strides[i] - c.pads_begin[i] - c.pads_end[i] + c.dilations[i] * (c.w[2 + i] - 1) + c.output_padding[i] + 1);
  Ref y(static_cast<size_t>(count(*ys)), 0.0);
  const Ints xst = strides_of(c.x), wst = strides_of(c.w), yst = strides_of(*ys);
  const Shape xsp(c.x.begin() + 2, c.x.end()), ksp(c.w.begin() + 2, c.w.end());
  for (int64_t n = 0; n < c.x[0]; ++n)
    for (int64_t ch = 0; ch < c.x[1]; ++ch)
      for (int64_t xi = 0; xi < count(xsp); ++xi)
        for (int64_t o = 0; o < og; ++o)
          for (int64_t ki = 0; ki < count(ksp); ++ki) {
            int64_t yoff = n * yst[0] + ((ch / cg) * og + o) * yst[1], rx = xi, rk = ki, xoff = n * xst[0] + ch * xst[1];
            bool inside = true;
            for (size_t d = r; d-- > 0;) {
              const int64_t ix = rx % xsp[d], k = rk % ksp[d];
              rx /= xsp[d];
              rk /= ksp[d];
              const int64_t pos = ix * c.strides[d] - c.pads_begin[d] + k * c.dilations[d];
              inside = inside && pos >= 0 && pos < (*ys)[2 + d];
              yoff += pos * yst[2 + d];
              xoff += ix * xst[2 + d];
            }
            if (inside) y[size_t(yoff)] += double(x.data<float>()[xoff]) * double(w.data<float>()[ch * wst[0] + o * wst[1] + ki]);
          }
  if (b)
    for (size_t i = 0; i < y.size(); ++i) y[i] += double(b->data<float>()[(int64_t(i) / yst[1]) % (*ys)[1]]);
  return y;
}

// ------------------------------------------------------------------ Resize

// The source index tables of one dim, as docs/ir.md defines Resize (s in f32, coordinates in double).
struct AxisRef {
  std::vector<int64_t> i0, i1;
  std::vector<double> l1;
};

AxisRef resize_axis(const std::string& mode, const std::string& coords, int64_t in, int64_t out, double scale) {
  float s = scale > 0 ? float(1.0 / scale) : float(in) / float(out);
  if (coords == "align_corners") s = out > 1 ? float(in - 1) / float(out - 1) : 0.f;
  AxisRef a;
  for (int64_t o = 0; o < out; ++o) {
    int64_t i0 = o, i1 = o;
    double l = 0;
    if (mode == "nearest") {
      i0 = int64_t(std::floor(coords == "half_pixel" ? float((o + 0.5) * s) : float(o) * s));
      i1 = i0 = std::min(i0, in - 1);
    } else {
      const double src = std::max(coords == "half_pixel" ? s * (o + 0.5) - 0.5 : double(s) * o, 0.0);
      i0 = int64_t(src);
      i1 = std::min(i0 + 1, in - 1);
      l = src - double(i0);
    }
    a.i0.push_back(i0);
    a.i1.push_back(i1);
    a.l1.push_back(l);
  }
  return a;
}

Ref resize_ref(const Tensor& x, const std::string& mode, const std::string& coords, const Ints& sizes, const std::vector<double>& scales) {
  const Shape& xs = x.shape();
  const size_t r = xs.size() - 2;
  std::vector<AxisRef> axes;
  for (size_t i = 0; i < r; ++i) axes.push_back(resize_axis(mode, coords, xs[2 + i], sizes[i], scales.empty() ? 0 : scales[i]));
  Shape ys = {xs[0], xs[1]};
  ys.insert(ys.end(), sizes.begin(), sizes.end());
  const Ints xst = strides_of(xs);
  Ref y;
  for (int64_t flat = 0; flat < count(ys); ++flat) {
    Ints o(r);
    int64_t rest = flat;
    for (size_t d = r; d-- > 0;) {
      o[d] = rest % sizes[d];
      rest /= sizes[d];
    }
    const int64_t plane = rest;
    // The sum over the 2^r corners of the interpolation cell.
    double v = 0;
    for (int corner = 0; corner < (1 << r); ++corner) {
      double weight = 1;
      int64_t off = plane * xst[1];
      for (size_t d = 0; d < r; ++d) {
        const bool hi = (corner >> d) & 1;
        const AxisRef& a = axes[d];
        weight *= hi ? a.l1[size_t(o[d])] : 1 - a.l1[size_t(o[d])];
        off += (hi ? a.i1 : a.i0)[size_t(o[d])] * xst[2 + d];
      }
      if (weight != 0) v += weight * double(x.data<float>()[off]);
    }
    y.push_back(v);
  }
  return y;
}

struct ResizeCase {
  std::string label;
  Shape x;
  std::string mode, coords;
  Ints sizes;
  std::vector<double> scales;
  bool onednn;  // the kernel runs oneDNN's resampling (else the C++ loop)
};

}  // namespace

TEST_CASE("kernels: ConvTranspose 1-D/2-D/3-D matches a scatter reference", "[kernels]") {
  const std::vector<TransposeCase> cases = {
      {"1-D, stride 2, pads 1, output_padding 1, dilation 2", {2, 2, 5}, {2, 3, 3}, true, {2}, {1}, {1}, {2}, {1}, 1},
      {"1-D, defaults, no bias", {1, 3, 4}, {3, 2, 2}, false, {1}, {0}, {0}, {1}, {0}, 1},
      // C != O and a 3x2 kernel: a weight read as [O, C, k...] cannot match.
      {"2-D, 3x2 kernel, C=3 O=5, stride [2,1], pads [1,0]/[0,1], output_padding [1,0]", {2, 3, 4, 5}, {3, 5, 3, 2}, true,
       {2, 1}, {1, 0}, {0, 1}, {1, 1}, {1, 0}, 1},
      {"2-D, groups 2, stride 2", {1, 4, 3, 3}, {4, 3, 2, 2}, true, {2, 2}, {0, 0}, {0, 0}, {1, 1}, {0, 0}, 2},
      {"2-D, depthwise, stride 2, pads 1", {2, 3, 4, 4}, {3, 1, 3, 3}, false, {2, 2}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 3},
      {"2-D, 16->16 (blocked-friendly), UNet's 2x2 stride 2", {2, 16, 5, 6}, {16, 16, 2, 2}, true, {2, 2}, {0, 0}, {0, 0}, {1, 1}, {0, 0}, 1},
      {"3-D, 2x3x2 kernel, strides [1,2,2], groups 2", {1, 4, 2, 3, 3}, {4, 1, 2, 3, 2}, true, {1, 2, 2}, {0, 1, 0}, {0, 1, 0}, {1, 1, 1},
       {0, 1, 1}, 2},
  };
  std::mt19937 rng(31);
  for (const TransposeCase& c : cases) {
    INFO(c.label);
    const Tensor x = random_tensor(c.x, rng), w = random_tensor(c.w, rng), b = random_tensor({c.w[1] * c.groups}, rng);
    Attrs a = attrs({{"strides", c.strides}, {"pads_begin", c.pads_begin}, {"pads_end", c.pads_end}, {"dilations", c.dilations},
                     {"output_padding", c.output_padding}, {"groups", c.groups}});
    GraphBuilder gb;
    gb.input("x", x).weight("t.weight", w);
    std::vector<std::string> ins = {"x", "t.weight"};
    if (c.bias) {
      gb.weight("t.bias", b);
      ins.push_back("t.bias");
    }
    gb.node("t", "ConvTranspose", ins, a);
    Shape ys;
    const Ref ref = conv_transpose_ref(x, w, c.bias ? &b : nullptr, c, &ys);
    for (const auto& [label, options] : kOptions) {
      INFO("options: " << label);
      const Tensor y = gb.run(options);
      CHECK(y.shape() == ys);
      CHECK(mismatch(y, ref) == "");
    }
  }
}

TEST_CASE("kernels: ConvTranspose by hand: a 1-D stride-2 kernel [1, 2] over [1, 10]", "[kernels]") {
  // y[2i + k] += x[i]·w[k]: [1, 2, 10, 20]; output_padding 1 adds a last element that only the bias reaches.
  GraphBuilder gb;
  gb.input("x", pbtest::f32({1, 1, 2}, {1, 10})).weight("w", pbtest::f32({1, 1, 2}, {1, 2})).weight("b", pbtest::f32({1}, {0.5f}));
  gb.node("t", "ConvTranspose", {"x", "w", "b"}, attrs({{"strides", Ints{2}}, {"output_padding", Ints{1}}}));
  const Tensor y = gb.run();
  CHECK(y.shape() == Shape{1, 1, 5});
  CHECK(mismatch(y, {1.5, 2.5, 10.5, 20.5, 0.5}) == "");
}

TEST_CASE("kernels: ConvTranspose shapes and attributes that cannot be are refused naming the node", "[kernels]") {
  GraphBuilder gb;
  gb.input("x", Tensor(pb::DType::f32, {1, 4, 3, 3})).weight("w", Tensor(pb::DType::f32, {3, 2, 2, 2}));
  gb.node("t", "ConvTranspose", {"x", "w"});
  CHECK_THROWS_MATCHES(gb.run(), pb::Error, ErrorAt(where("t", "ConvTranspose"), "does not fit 4 input channels"));
  GraphBuilder op;
  op.input("x", Tensor(pb::DType::f32, {1, 2, 3})).weight("w", Tensor(pb::DType::f32, {2, 2, 3}));
  op.node("t", "ConvTranspose", {"x", "w"}, attrs({{"strides", Ints{2}}, {"output_padding", Ints{2}}}));
  CHECK_THROWS_MATCHES(op.run(), pb::Error, ErrorAt(where("t", "ConvTranspose"), "smaller than the stride or the dilation"));
}

TEST_CASE("kernels: Resize nearest and linear, each coordinate rule, oneDNN and the C++ loop, match the definition", "[kernels]") {
  const std::vector<ResizeCase> cases = {
      {"nearest x2 (oneDNN)", {2, 3, 3, 4}, "nearest", "asymmetric", {6, 8}, {}, true},
      {"nearest x3 with scales 3 (oneDNN)", {1, 2, 2, 3}, "nearest", "asymmetric", {6, 9}, {3.0, 3.0}, true},
      {"nearest 3-D x2 (oneDNN)", {1, 2, 2, 3, 2}, "nearest", "asymmetric", {4, 6, 4}, {}, true},
      {"nearest 4 -> 6 (floor(o·4/6))", {1, 2, 4}, "nearest", "asymmetric", {6}, {}, false},
      {"nearest downsampling 5 -> 3", {2, 1, 5}, "nearest", "asymmetric", {3}, {}, false},
      {"nearest scales 1.5 (5 -> 7)", {1, 2, 5, 5}, "nearest", "asymmetric", {7, 7}, {1.5, 1.5}, false},
      {"nearest half_pixel (nearest-exact) 4 -> 7", {1, 2, 4, 3}, "nearest", "half_pixel", {7, 5}, {}, false},
      {"linear half_pixel 3 -> 8 (oneDNN)", {2, 2, 3}, "linear", "half_pixel", {8}, {}, true},
      {"bilinear half_pixel (3, 4) -> (5, 9) (oneDNN)", {1, 3, 3, 4}, "linear", "half_pixel", {5, 9}, {}, true},
      {"bilinear x2 with scales 2 (oneDNN)", {2, 2, 4, 5}, "linear", "half_pixel", {8, 10}, {2.0, 2.0}, true},
      {"bilinear scales (1.5, 2) (3, 4) -> (4, 8)", {1, 2, 3, 4}, "linear", "half_pixel", {4, 8}, {1.5, 2.0}, false},
      {"bilinear downsampling (6, 5) -> (4, 2)", {1, 2, 6, 5}, "linear", "half_pixel", {4, 2}, {}, true},
      {"bilinear align_corners 3 -> 7, 4 -> 1", {1, 2, 3, 4}, "linear", "align_corners", {7, 1}, {}, false},
      {"linear asymmetric 4 -> 6", {1, 1, 4}, "linear", "asymmetric", {6}, {}, false},
      {"trilinear x2 (oneDNN)", {1, 2, 2, 3, 2}, "linear", "half_pixel", {4, 6, 4}, {}, true},
      {"trilinear align_corners", {1, 1, 2, 3, 3}, "linear", "align_corners", {3, 5, 4}, {}, false},
  };
  std::mt19937 rng(12);
  for (const ResizeCase& c : cases) {
    INFO(c.label);
    const Tensor x = random_tensor(c.x, rng);
    Attrs a = attrs({{"mode", c.mode}, {"coordinates", c.coords}, {"sizes", c.sizes}});
    if (!c.scales.empty()) a.set("scales", c.scales);
    GraphBuilder gb;
    gb.input("x", x).node("r", "Resize", {"x"}, a);
    const Ref ref = resize_ref(x, c.mode, c.coords, c.sizes, c.scales);
    for (const auto& [label, options] : kOptions) {
      INFO("options: " << label);
      CHECK(mismatch(gb.run(options), ref) == "");
    }
    pb::Network net(gb.g, {});
    CHECK((net.describe().find("cpp:resize") == std::string::npos) == c.onednn);
  }
}

TEST_CASE("kernels: Resize and PReLU read a Conv's blocked output as the plain one", "[kernels]") {
  std::mt19937 rng(5);
  const Tensor x = random_tensor({2, 16, 5, 6}, rng), w = random_tensor({16, 16, 3, 3}, rng), slope = random_tensor({16}, rng);
  for (const std::string coords : {"half_pixel", "asymmetric"}) {  // oneDNN, then the C++ loop
    INFO(coords);
    GraphBuilder gb;
    gb.input("x", x).weight("w", w).weight("slope", slope);
    gb.node("c", "Conv", {"x", "w"}, attrs({{"pads_begin", Ints{1, 1}}, {"pads_end", Ints{1, 1}}}));
    gb.node("p", "PReLU", {"c", "slope"});
    gb.node("r", "Resize", {"p"}, attrs({{"mode", std::string("linear")}, {"coordinates", coords}, {"sizes", Ints{10, 12}}}));
    const Tensor blocked = gb.run(), plain = gb.run({false, false});
    CHECK(mismatch(blocked, pbtest::to_double(plain)) == "");  // the two convolutions round differently
  }
}

TEST_CASE("kernels: Resize attributes that cannot be are refused naming the node", "[kernels]") {
  const Tensor x(pb::DType::f32, {1, 2, 3, 4});
  auto refused = [&](Attrs a, const std::string& part) {
    GraphBuilder gb;
    gb.input("x", x).node("r", "Resize", {"x"}, std::move(a));
    CHECK_THROWS_MATCHES(gb.run(), pb::Error, ErrorAt(where("r", "Resize"), part));
  };
  refused(attrs({{"mode", std::string("cubic")}, {"sizes", Ints{6, 8}}}), "unknown resize mode \"cubic\"");
  refused(attrs({{"mode", std::string("nearest")}, {"coordinates", std::string("align_corners")}, {"sizes", Ints{6, 8}}}),
          "nearest resizing has no align_corners");
  refused(attrs({{"mode", std::string("linear")}, {"sizes", Ints{6}}}), "need one value per spatial dim");
  refused(attrs({{"mode", std::string("linear")}, {"sizes", Ints{6, 0}}}), "sizes must be in [1, 2^31)");
  refused(attrs({{"mode", std::string("linear")}, {"sizes", Ints{6, 8}}, {"scales", std::vector<double>{2.0, -1.0}}}), "scales must be finite and > 0");
}

TEST_CASE("kernels: PReLU with one slope and a slope per channel", "[kernels]") {
  std::mt19937 rng(8);
  for (const Shape& xs : {Shape{2, 3, 4, 5}, Shape{4, 6}, Shape{2, 5, 7}}) {
    for (const bool per_channel : {true, false}) {
      INFO(pb::shape_str(xs) << (per_channel ? " per channel" : " one slope"));
      const Tensor x = random_tensor(xs, rng), slope = random_tensor({per_channel ? xs[1] : 1}, rng);
      GraphBuilder gb;
      gb.input("x", x).weight("slope", slope).node("p", "PReLU", {"x", "slope"});
      const int64_t inner = count(xs) / (xs[0] * xs[1]);
      Ref ref;
      for (int64_t i = 0; i < x.numel(); ++i) {
        const double v = x.data<float>()[i], a = slope.data<float>()[per_channel ? (i / inner) % xs[1] : 0];
        ref.push_back(v >= 0 ? v : a * v);
      }
      CHECK(mismatch(gb.run(), ref) == "");
    }
  }
  GraphBuilder bad;
  bad.input("x", Tensor(pb::DType::f32, {2, 3, 4})).weight("slope", Tensor(pb::DType::f32, {4})).node("p", "PReLU", {"x", "slope"});
  CHECK_THROWS_MATCHES(bad.run(), pb::Error, ErrorAt(where("p", "PReLU"), "1 element or one per channel"));
}
