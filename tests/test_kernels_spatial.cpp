// pb::Network on the spatial, normalisation, gather, layout and element-wise binary ops, against
// naive double-precision references written here (test_kernels.cpp covers Dense, Activation,
// Softmax, Flatten and Reshape). Also: blocked layouts against plain ones, and the compile passes.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <sstream>

#include "planetbridge/ir.h"
#include "planetbridge/network.h"
#include "../layers/kernels/kernel.h"
#include "kernel_test_util.h"

using pb::DType;
using pb::Shape;
using pb::Tensor;
using pb::ir::AttrValue;
using pb::ir::Attrs;
using pb::ir::Graph;
using pb::ir::Node;
using pbtest::attrs;
using pbtest::ErrorAt;
using pbtest::GraphBuilder;
using pbtest::mismatch;
using pbtest::Ref;
using pbtest::to_double;
using pbtest::where;
using pbtest::make_node;
using pbtest::random_tensor;

namespace {

using Ints = std::vector<int64_t>;

// ------------------------------------------------------------------ graph and tensor helpers

// Magnitudes in [0.5, 1.5] with random signs: safe divisors.
Tensor divisor_tensor(Shape shape, std::mt19937& rng) {
  Tensor t = random_tensor(std::move(shape), rng, 0.5f, 1.5f);
  std::bernoulli_distribution neg(0.5);
  for (int64_t i = 0; i < t.numel(); ++i)
    if (neg(rng)) t.data<float>()[i] = -t.data<float>()[i];
  return t;
}

template <typename T>
Tensor int_tensor(Shape shape, const std::vector<T>& values) {
  Tensor t(pb::dtype_of<T>::value, std::move(shape));
  REQUIRE(static_cast<size_t>(t.numel()) == values.size());
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}

const pb::CompileOptions kPlain{false, false};  // no passes, every value plain
const std::vector<std::pair<std::string, pb::CompileOptions>> kAllOptions = {
    {"default", {}}, {"plain", kPlain}, {"passes only", {true, false}}, {"blocked only", {false, true}},
    {"inspectable", pb::CompileOptions::inspectable()}};
// Whether value() must answer every intermediate: plain and never reused.
bool inspectable(const pb::CompileOptions& o) { return !o.blocked_layouts && !o.reuse_memory; }

// ------------------------------------------------------------------ index arithmetic

Ints unravel(int64_t flat, const Shape& s) {
  Ints idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    idx[d] = flat % s[d];
    flat /= s[d];
  }
  return idx;
}

int64_t ravel(const Ints& idx, const Shape& s) {
  int64_t flat = 0;
  for (size_t d = 0; d < s.size(); ++d) flat = flat * s[d] + idx[d];
  return flat;
}

// ------------------------------------------------------------------ windowed ops (Conv, Pool)

// Window attributes as given to the node, one value per spatial dim; an empty list leaves the
// attribute out (the kernel's defaults: strides/dilations 1, pads 0).
struct WinAttrs {
  Ints strides, dilations, pads_begin, pads_end;
};

void set_window(Attrs& a, const WinAttrs& w) {
  if (!w.strides.empty()) a.set("strides", w.strides);
  if (!w.dilations.empty()) a.set("dilations", w.dilations);
  if (!w.pads_begin.empty()) a.set("pads_begin", w.pads_begin);
  if (!w.pads_end.empty()) a.set("pads_end", w.pads_end);
}

// A window's geometry with the spatial dims left-padded to three (size 1, kernel 1, no pad), so
// one triple loop serves 1-D, 2-D and 3-D.
struct Geometry {
  std::array<int64_t, 3> in{1, 1, 1}, k{1, 1, 1}, s{1, 1, 1}, d{1, 1, 1}, p{0, 0, 0}, out{1, 1, 1};
  Shape out_spatial;  // the real spatial rank
  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
  int64_t k_size() const { return k[0] * k[1] * k[2]; }
};

Geometry geometry(const Shape& in_spatial, const Ints& kernel, const WinAttrs& w) {
  const size_t r = in_spatial.size(), off = 3 - r;
  auto at = [&](const Ints& v, size_t i, int64_t fallback) { return v.empty() ? fallback : v[i]; };
  Geometry g;
  for (size_t i = 0; i < r; ++i) {
    g.in[off + i] = in_spatial[i];
    g.k[off + i] = kernel[i];
    g.s[off + i] = at(w.strides, i, 1);
    g.d[off + i] = at(w.dilations, i, 1);
    g.p[off + i] = at(w.pads_begin, i, 0);
    const int64_t padded = in_spatial[i] + at(w.pads_begin, i, 0) + at(w.pads_end, i, 0);
    g.out[off + i] = (padded - g.d[off + i] * (kernel[i] - 1) - 1) / g.s[off + i] + 1;
    g.out_spatial.push_back(g.out[off + i]);
  }
  return g;
}

// Visits every output position and, for each, every kernel tap that lands inside the input:
// tap(out_index, in_spatial_offset, kernel_offset).
template <typename Fn>
void for_each_tap(const Geometry& g, int64_t od, int64_t oh, int64_t ow, Fn tap) {
  for (int64_t kd = 0; kd < g.k[0]; ++kd)
    for (int64_t kh = 0; kh < g.k[1]; ++kh)
      for (int64_t kw = 0; kw < g.k[2]; ++kw) {
        const int64_t id = od * g.s[0] - g.p[0] + kd * g.d[0];
        const int64_t ih = oh * g.s[1] - g.p[1] + kh * g.d[1];
        const int64_t iw = ow * g.s[2] - g.p[2] + kw * g.d[2];
        if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1] || iw < 0 || iw >= g.in[2]) continue;
        tap((id * g.in[1] + ih) * g.in[2] + iw, (kd * g.k[1] + kh) * g.k[2] + kw);
      }
}

// Direct convolution in double: x [N, C, spatial...], w [O, C/groups, k...]. With
// `weight_channels_last` it reads the weight as [O, k..., C/groups] instead: the layout
// mistake the comparisons must be able to tell apart.
Ref conv_ref(const Ref& x, const Shape& xs, const Tensor& w, const Tensor* b, const WinAttrs& win, int64_t groups, Shape* ys,
             bool weight_channels_last = false) {
  const Shape& ws = w.shape();
  const int64_t n_batch = xs[0], c_in = xs[1], c_out = ws[0], cg = c_in / groups, og = c_out / groups;
  const Geometry g = geometry({xs.begin() + 2, xs.end()}, {ws.begin() + 2, ws.end()}, win);
  *ys = {n_batch, c_out};
  ys->insert(ys->end(), g.out_spatial.begin(), g.out_spatial.end());
  const float* wp = w.data<float>();
  const int64_t kn = g.k_size();
  Ref y(static_cast<size_t>(n_batch * c_out * g.out_size()));
  for (int64_t n = 0; n < n_batch; ++n)
    for (int64_t o = 0; o < c_out; ++o)
      for (int64_t od = 0; od < g.out[0]; ++od)
        for (int64_t oh = 0; oh < g.out[1]; ++oh)
          for (int64_t ow = 0; ow < g.out[2]; ++ow) {
            double sum = b ? double(b->data<float>()[o]) : 0.0;
            for (int64_t ci = 0; ci < cg; ++ci) {
              const int64_t c = (o / og) * cg + ci;
              for_each_tap(g, od, oh, ow, [&](int64_t in_off, int64_t k_off) {
                const int64_t wi = weight_channels_last ? (o * kn + k_off) * cg + ci : (o * cg + ci) * kn + k_off;
                sum += x[static_cast<size_t>((n * c_in + c) * g.in_size() + in_off)] * double(wp[wi]);
              });
            }
            y[static_cast<size_t>(((n * c_out + o) * g.out[0] + od) * g.out[1] * g.out[2] + oh * g.out[2] + ow)] = sum;
          }
  return y;
}

// Max pooling ignores padding; average pooling divides by the whole window
// (count_include_pad) or by the taps inside the input.
Ref pool_ref(const Ref& x, const Shape& xs, const std::string& mode, const Ints& kernel, const WinAttrs& win,
             bool count_include_pad, Shape* ys) {
  const Geometry g = geometry({xs.begin() + 2, xs.end()}, kernel, win);
  *ys = {xs[0], xs[1]};
  ys->insert(ys->end(), g.out_spatial.begin(), g.out_spatial.end());
  const int64_t planes = xs[0] * xs[1];
  Ref y(static_cast<size_t>(planes * g.out_size()));
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t od = 0; od < g.out[0]; ++od)
      for (int64_t oh = 0; oh < g.out[1]; ++oh)
        for (int64_t ow = 0; ow < g.out[2]; ++ow) {
          double mx = -std::numeric_limits<double>::infinity(), sum = 0;
          int64_t count = 0;
          for_each_tap(g, od, oh, ow, [&](int64_t in_off, int64_t) {
            const double v = x[static_cast<size_t>(pl * g.in_size() + in_off)];
            mx = std::max(mx, v);
            sum += v;
            ++count;
          });
          const double avg = sum / double(count_include_pad ? g.k_size() : count);
          y[static_cast<size_t>((pl * g.out[0] + od) * g.out[1] * g.out[2] + oh * g.out[2] + ow)] = mode == "max" ? mx : avg;
        }
  return y;
}

// Inference batch norm over dim 1 of [N, C, ...].
Ref batchnorm_ref(const Ref& x, const Shape& xs, const Tensor& scale, const Tensor& shift, const Tensor& mean,
                  const Tensor& var, double eps) {
  const int64_t c = xs[1];
  const int64_t inner = static_cast<int64_t>(x.size()) / (xs[0] * c);
  Ref y(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const int64_t ch = (static_cast<int64_t>(i) / inner) % c;
    y[i] = (x[i] - mean.data<float>()[ch]) / std::sqrt(double(var.data<float>()[ch]) + eps) * scale.data<float>()[ch] +
           shift.data<float>()[ch];
  }
  return y;
}

Ref relu_ref(Ref v) {
  for (double& e : v) e = std::max(e, 0.0);
  return v;
}

// ------------------------------------------------------------------ numpy broadcasting

Shape broadcast(const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i + a.size() >= rank ? a[i + a.size() - rank] : 1;
    const int64_t db = i + b.size() >= rank ? b[i + b.size() - rank] : 1;
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// The flat offset in an operand of shape `s` read by output index `idx` (right-aligned, size-1
// dims repeat).
int64_t broadcast_offset(const Ints& idx, const Shape& s) {
  int64_t flat = 0;
  const size_t lead = idx.size() - s.size();
  for (size_t d = 0; d < s.size(); ++d) flat = flat * s[d] + (s[d] == 1 ? 0 : idx[lead + d]);
  return flat;
}

Ref binary_ref(const std::string& op, const Tensor& a, const Tensor& b) {
  const Shape out = broadcast(a.shape(), b.shape());
  Ref y(static_cast<size_t>(pb::element_count(out)));
  for (size_t i = 0; i < y.size(); ++i) {
    const Ints idx = unravel(static_cast<int64_t>(i), out);
    const double x = a.data<float>()[broadcast_offset(idx, a.shape())], z = b.data<float>()[broadcast_offset(idx, b.shape())];
    y[i] = op == "Add" ? x + z : op == "Sub" ? x - z : op == "Mul" ? x * z : x / z;
  }
  return y;
}

}  // namespace

// ------------------------------------------------------------------ Conv

TEST_CASE("kernels: Conv 1-D/2-D/3-D matches a direct convolution", "[kernels]") {
  struct ConvCase {
    std::string label;
    Shape x, w;
    bool bias;
    WinAttrs win;
    int64_t groups;  // 0: attribute left out (default 1)
  };
  const std::vector<ConvCase> cases = {
      {"1-D, bias, stride 2, pads 1/0", {2, 3, 10}, {4, 3, 3}, true, {{2}, {}, {1}, {0}}, 0},
      {"1-D, no bias, dilation 2, pads 2/1", {2, 3, 11}, {5, 3, 3}, false, {{}, {2}, {2}, {1}}, 0},
      {"1-D, defaults, kernel 1", {1, 4, 5}, {2, 4, 1}, true, {}, 1},
      // Non-symmetric 3x2 kernel and I != O: a weight read in another layout cannot match.
      {"2-D, 3x2 kernel, I=3 O=5, stride [1,2], pads [1,0]/[0,1]", {2, 3, 7, 9}, {5, 3, 3, 2}, true, {{1, 2}, {}, {1, 0}, {0, 1}}, 0},
      {"2-D, dilation [2,1], groups 2", {1, 4, 8, 8}, {6, 2, 3, 3}, true, {{}, {2, 1}, {1, 1}, {1, 1}}, 2},
      {"2-D, depthwise (groups == channels), pads 1", {2, 6, 9, 7}, {6, 1, 3, 3}, true, {{}, {}, {1, 1}, {1, 1}}, 6},
      {"2-D, depthwise multiplier 2, stride 2, no bias", {1, 3, 6, 6}, {6, 1, 2, 2}, false, {{2, 2}, {}, {}, {}}, 3},
      {"2-D, 16->32 channels (blocked-friendly), pads 1", {2, 16, 12, 12}, {32, 16, 3, 3}, true, {{}, {}, {1, 1}, {1, 1}}, 1},
      {"2-D, 1x1", {3, 8, 4, 5}, {16, 8, 1, 1}, false, {}, 0},
      {"3-D, 2x3x2 kernel, strides [1,2,1], pads [1,0,1]/[0,1,1]", {1, 2, 5, 6, 7}, {4, 2, 2, 3, 2}, true,
       {{1, 2, 1}, {}, {1, 0, 1}, {0, 1, 1}}, 0},
      {"3-D, groups 2, dilation [1,2,1], no bias", {2, 4, 4, 7, 5}, {4, 2, 3, 2, 2}, false, {{}, {1, 2, 1}, {}, {}}, 2},
      {"3-D, depthwise", {1, 3, 4, 4, 4}, {3, 1, 3, 3, 3}, true, {{2, 1, 1}, {}, {1, 1, 1}, {1, 1, 1}}, 3},
  };
  std::mt19937 rng(2024);
  for (const ConvCase& c : cases) {
    INFO(c.label);
    const Tensor x = random_tensor(c.x, rng), w = random_tensor(c.w, rng), b = random_tensor({c.w[0]}, rng);
    Attrs a;
    set_window(a, c.win);
    if (c.groups) a.set("groups", c.groups);
    GraphBuilder gb;
    gb.input("x", x).weight("c.weight", w);
    std::vector<std::string> ins = {"x", "c.weight"};
    if (c.bias) {
      gb.weight("c.bias", b);
      ins.push_back("c.bias");
    } else if (c.x.size() == 4) {
      ins.push_back("");  // an omitted bias spelled out (elsewhere it is simply absent)
    }
    gb.node("c", "Conv", ins, a);
    const int64_t groups = c.groups ? c.groups : 1;
    Shape ys;
    const Ref ref = conv_ref(to_double(x), c.x, w, c.bias ? &b : nullptr, c.win, groups, &ys);
    for (const auto& [label, options] : kAllOptions) {
      INFO("options: " << label);
      const Tensor y = gb.run(options);
      CHECK(y.shape() == ys);
      CHECK(mismatch(y, ref) == "");
      if (c.w[1] > 1 && pb::element_count({c.w.begin() + 2, c.w.end()}) > 1 && label == "default") {
        // The comparison is strong enough to catch a weight read channels-last.
        Shape unused;
        CHECK(mismatch(y, conv_ref(to_double(x), c.x, w, c.bias ? &b : nullptr, c.win, groups, &unused, true)) != "");
      }
    }
  }
}

TEST_CASE("kernels: Conv with a fused activation equals Conv then Activation", "[kernels]") {
  std::mt19937 rng(77);
  const Tensor x = random_tensor({2, 4, 9, 9}, rng), w = random_tensor({8, 4, 3, 3}, rng), b = random_tensor({8}, rng);
  const WinAttrs win{{}, {}, {1, 1}, {1, 1}};
  Shape ys;
  const Ref conv = conv_ref(to_double(x), x.shape(), w, &b, win, 1, &ys);
  Attrs ca;
  set_window(ca, win);

  SECTION("activation attribute on the Conv") {
    for (const auto& [label, options] : kAllOptions) {
      INFO("options: " << label);
      Attrs a = ca;
      a.set("activation", std::string("relu"));
      GraphBuilder gb;
      gb.input("x", x).weight("w", w).weight("b", b).node("c", "Conv", {"x", "w", "b"}, a);
      CHECK(mismatch(gb.run(options), relu_ref(conv)) == "");
    }
  }

  SECTION("separate Activation node, fused by the pass or not") {
    for (const std::string fn : {"relu", "leaky_relu"}) {
      INFO("function " << fn);
      Attrs act = attrs({{"function", fn}});
      if (fn == "leaky_relu") act.set("alpha", 0.1);
      GraphBuilder gb;
      gb.input("x", x).weight("w", w).weight("b", b).node("c", "Conv", {"x", "w", "b"}, ca).node("act", "Activation", {"c"}, act);
      Ref want = conv;
      for (double& v : want) v = v > 0 ? v : (fn == "relu" ? 0.0 : 0.1 * v);

      pb::Network separate(gb.g, {}, pb::CompileOptions::inspectable());
      separate.run(gb.feed_ptrs());
      CHECK(separate.executed_graph().nodes.size() == 2);
      REQUIRE(separate.value("c") != nullptr);
      CHECK(mismatch(*separate.value("c"), conv) == "");
      CHECK(mismatch(separate.output(0), want) == "");

      pb::Network fused(gb.g, {});
      fused.run(gb.feed_ptrs());
      const Graph& eg = fused.executed_graph();
      REQUIRE(eg.nodes.size() == 1);
      CHECK(eg.nodes[0].op == "Conv");
      CHECK(eg.nodes[0].attrs.s("activation") == fn);
      if (fn == "leaky_relu") CHECK(eg.nodes[0].attrs.f("alpha") == 0.1);
      CHECK(eg.nodes[0].outputs == std::vector<std::string>{"act"});
      CHECK(fused.value("c") == nullptr);  // never computed: the Conv now produces "act"
      CHECK(mismatch(fused.output(0), want) == "");
      CHECK(mismatch(fused.output(0), to_double(separate.output(0))) == "");
    }
  }
}

// The implementation each kernel of `net` runs, by node name (Network::describe's lines).
std::map<std::string, std::string> implementations(const pb::Network& net) {
  std::map<std::string, std::string> out;
  std::istringstream lines(net.describe());
  for (std::string line; std::getline(lines, line);) {
    const size_t colon = line.find(": ");
    out[line.substr(0, colon)] = line.substr(colon + 2);
  }
  return out;
}

TEST_CASE("kernels: Winograd fits 3x3 stride-1 2-D convolutions with channels in multiples of 16 and enough positions", "[kernels]") {
  const auto fits = [](const Shape& x, const Shape& w, const Attrs& a) {
    Node n = make_node("c", "Conv", {"x", "w"}, a);
    n.attrs = pb::ir::checked_attrs(n);  // defaults filled, as Network gives them
    return pb::layers::winograd_fits(n, x, w);
  };
  const Attrs pad1 = attrs({{"pads_begin", Ints{1, 1}}, {"pads_end", Ints{1, 1}}});
  CHECK(fits({2, 16, 8, 8}, {32, 16, 3, 3}, pad1));
  CHECK(fits({1, 64, 14, 14}, {64, 64, 3, 3}, {}));
  CHECK(fits({8, 512, 7, 7}, {512, 512, 3, 3}, pad1));
  CHECK_FALSE(fits({1, 512, 7, 7}, {512, 512, 3, 3}, pad1));  // 49 positions: weight-bound
  CHECK_FALSE(fits({2, 16, 8, 8}, {32, 16, 3, 3}, attrs({{"strides", Ints{2, 2}}})));
  CHECK_FALSE(fits({2, 16, 8, 8}, {32, 16, 3, 3}, attrs({{"dilations", Ints{2, 2}}})));
  CHECK_FALSE(fits({2, 32, 8, 8}, {32, 16, 3, 3}, attrs({{"groups", int64_t(2)}})));
  CHECK_FALSE(fits({2, 16, 8, 8}, {24, 16, 3, 3}, {}));   // output channels
  CHECK_FALSE(fits({2, 8, 8, 8}, {16, 8, 3, 3}, {}));     // input channels
  CHECK_FALSE(fits({2, 16, 8, 8}, {16, 16, 5, 5}, {}));   // kernel
  CHECK_FALSE(fits({1, 16, 8}, {16, 16, 3}, {}));         // 1-D
}

TEST_CASE("kernels: a network with a Winograd-shaped convolution runs it, and its other convolutions share its layout", "[kernels]") {
  // c1 fits Winograd (relu, its one supported post-op); c2 fits but has tanh, so it runs direct;
  // c3 (stride 2) and c4 (1x1) do not fit. Every result is checked against the reference, with
  // Winograd on and off; on a CPU with Winograd no reorder runs between the convolutions (only
  // the plain graph input is reordered, for c1).
  std::mt19937 rng(16);
  const Tensor x = random_tensor({2, 16, 10, 10}, rng), w1 = random_tensor({32, 16, 3, 3}, rng, -0.3f, 0.3f),
               b1 = random_tensor({32}, rng), w2 = random_tensor({32, 32, 3, 3}, rng, -0.2f, 0.2f),
               w3 = random_tensor({32, 32, 3, 3}, rng, -0.2f, 0.2f), w4 = random_tensor({16, 32, 1, 1}, rng, -0.3f, 0.3f);
  const WinAttrs pad1{{}, {}, {1, 1}, {1, 1}}, stride2{{2, 2}, {}, {1, 1}, {1, 1}};
  Attrs a1, a2, a3;
  set_window(a1, pad1);
  a1.set("activation", std::string("relu"));
  set_window(a2, pad1);
  a2.set("activation", std::string("tanh"));
  set_window(a3, stride2);
  GraphBuilder gb;
  gb.input("x", x).weight("w1", w1).weight("b1", b1).weight("w2", w2).weight("w3", w3).weight("w4", w4);
  gb.node("c1", "Conv", {"x", "w1", "b1"}, a1).node("c2", "Conv", {"c1", "w2"}, a2);
  gb.node("c3", "Conv", {"c2", "w3"}, a3).node("c4", "Conv", {"c3", "w4"});

  Shape s1, s2, s3, s4;
  Ref want = relu_ref(conv_ref(to_double(x), x.shape(), w1, &b1, pad1, 1, &s1));
  want = conv_ref(want, s1, w2, nullptr, pad1, 1, &s2);
  for (double& v : want) v = std::tanh(v);
  want = conv_ref(conv_ref(want, s2, w3, nullptr, stride2, 1, &s3), s3, w4, nullptr, {}, 1, &s4);

  const bool available = pb::layers::winograd_available(dnnl::engine(dnnl::engine::kind::cpu, 0));
  for (bool winograd : {true, false}) {
    INFO("winograd " << winograd << ", available " << available);
    pb::CompileOptions options;
    options.winograd = winograd;
    pb::Network net(gb.g, {}, options);
    net.run(gb.feed_ptrs());
    CHECK(net.output(0).shape() == s4);
    CHECK(mismatch(net.output(0), want) == "");
    const auto impl = implementations(net);
    INFO(net.describe());
    CHECK((impl.at("c1").find("wino") != std::string::npos) == (winograd && available));
    for (const std::string n : {"c2", "c3", "c4"}) CHECK(impl.at(n).find("wino") == std::string::npos);
    if (winograd && available)
      for (const std::string n : {"c2", "c3", "c4"}) CHECK(impl.at(n).find(" + ") == std::string::npos);  // no reorder
  }
}

// ------------------------------------------------------------------ Pool

TEST_CASE("kernels: Pool max/avg 1-D/2-D/3-D and global match a reference", "[kernels]") {
  struct PoolCase {
    std::string label;
    Shape x;
    std::string mode;
    Ints kernel;  // empty: global
    WinAttrs win;
  };
  const std::vector<PoolCase> cases = {
      {"1-D max, k3 s2 pads 1/1", {2, 3, 11}, "max", {3}, {{2}, {}, {1}, {1}}},
      {"1-D avg, k4 s1 pads 1/2", {2, 3, 9}, "avg", {4}, {{}, {}, {1}, {2}}},
      {"1-D max, k2 dilation 3", {1, 2, 10}, "max", {2}, {{}, {3}, {}, {}}},
      {"2-D max, k[3,2] s[2,1] pads [1,0]/[1,1]", {2, 4, 9, 8}, "max", {3, 2}, {{2, 1}, {}, {1, 0}, {1, 1}}},
      {"2-D max, k[2,3] dilations [2,2] pads 1", {1, 3, 9, 10}, "max", {2, 3}, {{1, 2}, {2, 2}, {1, 1}, {1, 1}}},
      {"2-D avg, k3 s2 pads 1", {2, 4, 9, 8}, "avg", {3, 3}, {{2, 2}, {}, {1, 1}, {1, 1}}},
      {"2-D avg, k[2,3] asymmetric pads [0,1]/[1,2]", {1, 16, 7, 6}, "avg", {2, 3}, {{2, 2}, {}, {0, 1}, {1, 2}}},
      {"2-D max, 16 channels, k2 s2", {2, 16, 8, 8}, "max", {2, 2}, {{2, 2}, {}, {}, {}}},
      {"3-D max, k[2,3,2] s[1,2,2] pads [0,1,1]/[1,1,0]", {1, 3, 5, 6, 7}, "max", {2, 3, 2}, {{1, 2, 2}, {}, {0, 1, 1}, {1, 1, 0}}},
      {"3-D avg, k2 s1 pads [1,0,1]/[0,1,1]", {2, 2, 4, 5, 4}, "avg", {2, 2, 2}, {{}, {}, {1, 0, 1}, {0, 1, 1}}},
      {"global max 1-D", {2, 3, 7}, "max", {}, {}},
      {"global avg 1-D", {2, 3, 7}, "avg", {}, {}},
      {"global max 2-D", {2, 5, 4, 6}, "max", {}, {}},
      {"global avg 2-D", {2, 16, 5, 3}, "avg", {}, {}},
      {"global max 3-D", {1, 3, 3, 4, 5}, "max", {}, {}},
      {"global avg 3-D", {1, 3, 3, 4, 5}, "avg", {}, {}},
  };
  std::mt19937 rng(5);
  for (const PoolCase& c : cases) {
    const bool global = c.kernel.empty();
    const Tensor x = random_tensor(c.x, rng);
    // Average pooling both ways; count_include_pad is meaningless for max (and left out).
    for (int cip : c.mode == "avg" ? std::vector<int>{0, 1} : std::vector<int>{-1}) {
      INFO(c.label << (cip < 0 ? "" : cip ? ", count_include_pad 1" : ", count_include_pad 0"));
      Attrs a = attrs({{"mode", c.mode}});
      if (global) a.set("global", int64_t(1));
      else a.set("kernel", c.kernel);
      set_window(a, c.win);
      if (cip >= 0) a.set("count_include_pad", int64_t(cip));
      GraphBuilder gb;
      gb.input("x", x).node("p", "Pool", {"x"}, a);
      const Ints kernel = global ? Ints(c.x.begin() + 2, c.x.end()) : c.kernel;
      Shape ys;
      const Ref ref = pool_ref(to_double(x), c.x, c.mode, kernel, c.win, cip == 1, &ys);
      for (const auto& [label, options] : kAllOptions) {
        INFO("options: " << label);
        const Tensor y = gb.run(options);
        CHECK(y.shape() == ys);
        if (global) {
          Shape want(c.x.size(), 1);
          want[0] = c.x[0];
          want[1] = c.x[1];
          CHECK(y.shape() == want);
        }
        CHECK(mismatch(y, ref) == "");
      }
    }
  }
}

// ------------------------------------------------------------------ normalisation

TEST_CASE("kernels: BatchNorm uses the running statistics and eps", "[kernels]") {
  std::mt19937 rng(11);
  for (const Shape& xs : {Shape{4, 5}, Shape{2, 3, 7}, Shape{2, 4, 5, 6}, Shape{1, 16, 3, 3}}) {
    for (double eps : {1e-5, 0.1}) {
      INFO("x " << pb::shape_str(xs) << ", eps " << eps);
      const int64_t c = xs[1];
      const Tensor x = random_tensor(xs, rng, -2.f, 2.f), scale = random_tensor({c}, rng, 0.5f, 1.5f),
                   shift = random_tensor({c}, rng), mean = random_tensor({c}, rng), var = random_tensor({c}, rng, 0.05f, 2.f);
      GraphBuilder gb;
      gb.input("x", x).weight("g", scale).weight("b", shift).weight("m", mean).weight("v", var);
      gb.node("bn", "BatchNorm", {"x", "g", "b", "m", "v"}, attrs({{"eps", eps}}));
      const Ref ref = batchnorm_ref(to_double(x), xs, scale, shift, mean, var, eps);
      for (const auto& [label, options] : kAllOptions) {
        INFO("options: " << label);
        const Tensor y = gb.run(options);
        CHECK(y.shape() == xs);
        CHECK(mismatch(y, ref) == "");
      }
    }
  }
}

TEST_CASE("kernels: LayerNorm normalises the trailing dims from axis", "[kernels]") {
  struct LnCase {
    Shape x;
    int64_t axis;
    bool scale, shift;
    double eps;
    float offset;  // added to x: the variance must not come from E[x²] - E[x]²
  };
  const std::vector<LnCase> cases = {
      {{3, 7}, -1, true, true, 1e-5, 0},      {{3, 7}, -1, false, false, 1e-5, 0}, {{2, 3, 4, 5}, -1, true, true, 1e-3, 0},
      {{2, 3, 4, 5}, -2, true, true, 1e-5, 0}, {{2, 3, 4, 5}, -2, false, false, 1e-5, 0},
      {{2, 3, 4}, 1, true, false, 1e-5, 0},   // axis 1 of rank 3 = axis -2; scale only
      {{2, 3, 4}, -2, false, true, 0.5, 0},   // shift only, a large eps
      {{4, 300}, -1, true, true, 1e-5, 10.f},
  };
  std::mt19937 rng(12);
  for (const LnCase& c : cases) {
    INFO("x " << pb::shape_str(c.x) << ", axis " << c.axis << (c.scale ? ", scale" : "") << (c.shift ? ", shift" : "")
              << ", eps " << c.eps << ", offset " << c.offset);
    const int64_t rank = static_cast<int64_t>(c.x.size()), axis = c.axis < 0 ? c.axis + rank : c.axis;
    const Shape norm_shape(c.x.begin() + axis, c.x.end());
    Tensor x = random_tensor(c.x, rng);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] += c.offset;
    const Tensor scale = random_tensor(norm_shape, rng, 0.5f, 1.5f), shift = random_tensor(norm_shape, rng);
    GraphBuilder gb;
    gb.input("x", x).weight("s", scale).weight("t", shift);
    gb.node("ln", "LayerNorm", {"x", c.scale ? "s" : "", c.shift ? "t" : ""}, attrs({{"axis", c.axis}, {"eps", c.eps}}));

    const int64_t inner = pb::element_count(norm_shape), outer = x.numel() / inner;
    const Ref xd = to_double(x);
    Ref ref(xd.size());
    for (int64_t r = 0; r < outer; ++r) {
      double mean = 0, var = 0;
      for (int64_t i = 0; i < inner; ++i) mean += xd[r * inner + i];
      mean /= double(inner);
      for (int64_t i = 0; i < inner; ++i) var += (xd[r * inner + i] - mean) * (xd[r * inner + i] - mean);
      var /= double(inner);
      for (int64_t i = 0; i < inner; ++i) {
        double v = (xd[r * inner + i] - mean) / std::sqrt(var + c.eps);
        if (c.scale) v *= scale.data<float>()[i];
        if (c.shift) v += shift.data<float>()[i];
        ref[r * inner + i] = v;
      }
    }
    for (const auto& [label, options] : {kAllOptions[0], kAllOptions[1]}) {
      INFO("options: " << label);
      const Tensor y = gb.run(options);
      CHECK(y.shape() == c.x);
      CHECK(mismatch(y, ref) == "");
    }
  }
}

TEST_CASE("kernels: RMSNorm (hand-written) matches a reference", "[kernels]") {
  std::mt19937 rng(13);
  auto rms_ref = [](const Ref& x, int64_t inner, const Tensor* scale, double eps) {
    Ref y(x.size());
    for (size_t r = 0; r < x.size() / static_cast<size_t>(inner); ++r) {
      double ss = 0;
      for (int64_t i = 0; i < inner; ++i) ss += x[r * inner + i] * x[r * inner + i];
      const double inv = 1.0 / std::sqrt(ss / double(inner) + eps);
      for (int64_t i = 0; i < inner; ++i) y[r * inner + i] = x[r * inner + i] * inv * (scale ? scale->data<float>()[i] : 1.0);
    }
    return y;
  };

  SECTION("shapes, scale on and off, eps") {
    struct RmsCase {
      Shape x;
      bool scale;
      double eps;
      bool axis_attr;  // axis -1 spelled out, else left to its default
    };
    const std::vector<RmsCase> cases = {
        {{7}, true, 1e-6, false},          {{3, 8}, false, 1e-5, true},  {{3, 8}, true, 1e-5, false},
        {{2, 3, 16}, true, 0.5, true},     {{2, 3, 16}, false, 0.5, false}, {{4, 1000}, true, 1e-6, false},
        {{64, 33}, false, 1e-6, false},    {{2, 1}, false, 1e-6, true},
    };
    for (const RmsCase& c : cases) {
      INFO("x " << pb::shape_str(c.x) << (c.scale ? ", scale" : ", no scale") << ", eps " << c.eps);
      const Tensor x = random_tensor(c.x, rng, -2.f, 2.f), scale = random_tensor({c.x.back()}, rng, -1.5f, 1.5f);
      Attrs a = attrs({{"eps", c.eps}});
      if (c.axis_attr) a.set("axis", int64_t(-1));
      GraphBuilder gb;
      gb.input("x", x).weight("s", scale);
      gb.node("rms", "RMSNorm", c.scale ? std::vector<std::string>{"x", "s"} : std::vector<std::string>{"x"}, a);
      const Tensor y = gb.run();
      CHECK(y.shape() == c.x);
      CHECK(mismatch(y, rms_ref(to_double(x), c.x.back(), c.scale ? &scale : nullptr, c.eps)) == "");
    }
  }

  SECTION("a zero row gives zeros (eps keeps it finite); each run reads the new input") {
    Tensor x = random_tensor({3, 4}, rng);
    std::fill(x.data<float>(), x.data<float>() + 4, 0.f);
    pb::Network net(GraphBuilder().input("x", x).node("rms", "RMSNorm", {"x"}, attrs({{"eps", 1e-6}})).g, {});
    net.run({&x});
    CHECK(mismatch(net.output(0), rms_ref(to_double(x), 4, nullptr, 1e-6)) == "");
    for (int i = 0; i < 4; ++i) CHECK(net.output(0).data<float>()[i] == 0.f);
    const Tensor x2 = random_tensor({3, 4}, rng, 5.f, 9.f);
    net.run({&x2});
    CHECK(mismatch(net.output(0), rms_ref(to_double(x2), 4, nullptr, 1e-6)) == "");
  }

  SECTION("after a Conv whose output may be blocked") {
    // RMSNorm reads its input plain: a blocked Conv output is reordered to plain first.
    const Tensor x = random_tensor({2, 3, 10}, rng), w = random_tensor({16, 3, 3}, rng), s = random_tensor({8}, rng);
    GraphBuilder gb;
    gb.input("x", x).weight("w", w).weight("s", s).node("c", "Conv", {"x", "w"}).node("rms", "RMSNorm", {"c", "s"}, attrs({{"eps", 1e-5}}));
    Shape ys;
    const Ref want = rms_ref(conv_ref(to_double(x), x.shape(), w, nullptr, {}, 1, &ys), 8, &s, 1e-5);
    for (const auto& [label, options] : kAllOptions) {
      INFO("options: " << label);
      CHECK(mismatch(gb.run(options), want) == "");
    }
  }

  SECTION("errors name the node") {
    const Tensor x = random_tensor({2, 5}, rng);
    GraphBuilder gb;
    gb.input("x", x).weight("s", random_tensor({4}, rng)).node("rms", "RMSNorm", {"x"}, attrs({{"eps", 1e-5}, {"axis", int64_t(0)}}));
    CHECK_THROWS_MATCHES(pb::Network(gb.g, {}), pb::Error, ErrorAt(where("rms", "RMSNorm"), "normalises the last axis only (axis -1)"));
    gb.g.nodes[0].attrs = attrs({{"eps", 1e-5}});
    gb.g.nodes[0].inputs = {"x", "s"};
    CHECK_THROWS_MATCHES(pb::Network(gb.g, {}), pb::Error, ErrorAt(where("rms", "RMSNorm"), "scale must be f32 with 5 elements, got [4]"));
  }
}

// ------------------------------------------------------------------ Embedding

TEST_CASE("kernels: Embedding (hand-written) gathers table rows for i32 and i64 ids", "[kernels]") {
  std::mt19937 rng(14);
  const Tensor table = random_tensor({7, 5}, rng);
  auto gather_ref = [&](const std::vector<int64_t>& ids) {
    Ref y;
    for (int64_t id : ids)
      for (int64_t j = 0; j < 5; ++j) y.push_back(table.data<float>()[id * 5 + j]);
    return y;
  };
  struct EmbCase {
    DType dtype;
    Shape ids;
    std::vector<int64_t> first, second;  // two runs, the second with other ids
  };
  const std::vector<EmbCase> cases = {
      {DType::i32, {2, 3}, {0, 6, 3, 3, 1, 2}, {6, 6, 0, 5, 4, 1}},
      {DType::i64, {4}, {5, 0, 0, 6}, {1, 2, 3, 4}},
      {DType::i64, {2, 2, 3}, {0, 1, 2, 3, 4, 5, 6, 5, 4, 3, 2, 1}, {6, 6, 6, 6, 6, 6, 0, 0, 0, 0, 0, 0}},
      {DType::i32, {}, {4}, {0}},  // a scalar id: output [D]
  };
  for (const EmbCase& c : cases) {
    INFO(pb::dtype_name(c.dtype) << " ids " << pb::shape_str(c.ids));
    auto ids_tensor = [&](const std::vector<int64_t>& v) {
      if (c.dtype == DType::i64) return int_tensor<int64_t>(c.ids, v);
      return int_tensor<int32_t>(c.ids, std::vector<int32_t>(v.begin(), v.end()));
    };
    const Tensor ids1 = ids_tensor(c.first), ids2 = ids_tensor(c.second);
    GraphBuilder gb;
    gb.input("ids", ids1).weight("table", table).node("emb", "Embedding", {"ids", "table"});
    pb::Network net(gb.g, {});
    Shape want = c.ids;
    want.push_back(5);
    net.run({&ids1});
    CHECK(net.output(0).shape() == want);
    CHECK(mismatch(net.output(0), gather_ref(c.first), 0, 0) == "");  // a copy: exact
    net.run({&ids2});
    CHECK(mismatch(net.output(0), gather_ref(c.second), 0, 0) == "");
  }

  // An i32 graph input fed i64 ids is converted on the way in.
  const Tensor ids64 = int_tensor<int64_t>({3}, {2, 0, 6});
  GraphBuilder gb;
  gb.input("ids", int_tensor<int32_t>({3}, {0, 0, 0})).weight("table", table).node("emb", "Embedding", {"ids", "table"});
  pb::Network net(gb.g, {});
  net.run({&ids64});
  CHECK(mismatch(net.output(0), gather_ref({2, 0, 6}), 0, 0) == "");
}

TEST_CASE("kernels: Embedding rejects an out-of-range id at run time, naming node, id and position", "[kernels]") {
  std::mt19937 rng(15);
  const Tensor table = random_tensor({7, 5}, rng);
  const std::string at = where("emb", "Embedding");

  const Tensor good = int_tensor<int64_t>({2, 3}, {0, 1, 2, 3, 4, 5});
  GraphBuilder gb;
  gb.input("ids", good).weight("table", table).node("emb", "Embedding", {"ids", "table"});
  pb::Network net(gb.g, {});
  net.run({&good});

  const Tensor negative = int_tensor<int64_t>({2, 3}, {0, 1, 2, 3, -1, 5});
  CHECK_THROWS_MATCHES(net.run({&negative}), pb::Error,
                       ErrorAt(at, "id -1 at flat position 4 of ids [2, 3] is outside the table's 7 rows"));
  const Tensor too_big = int_tensor<int64_t>({2, 3}, {7, 1, 2, 3, 4, 5});
  CHECK_THROWS_MATCHES(net.run({&too_big}), pb::Error, ErrorAt(at, "id 7 at flat position 0 of ids [2, 3]"));
  const Tensor huge = int_tensor<int64_t>({2, 3}, {0, 1, 2, 3, 4, int64_t(1) << 40});
  CHECK_THROWS_MATCHES(net.run({&huge}), pb::Error, ErrorAt(at, "id 1099511627776 at flat position 5"));
  // The network still works after a refused run.
  net.run({&good});
  CHECK(mismatch(net.output(0), Ref(table.data<float>(), table.data<float>() + 30), 0, 0) == "");  // rows 0..5

  const Tensor good32 = int_tensor<int32_t>({4}, {0, 1, 2, 3});
  GraphBuilder g32;
  g32.input("ids", good32).weight("table", table).node("emb", "Embedding", {"ids", "table"});
  pb::Network net32(g32.g, {});
  const Tensor bad32 = int_tensor<int32_t>({4}, {0, 1, 2, 7});
  CHECK_THROWS_MATCHES(net32.run({&bad32}), pb::Error, ErrorAt(at, "id 7 at flat position 3 of ids [4]"));
  const Tensor neg32 = int_tensor<int32_t>({4}, {-3, 1, 2, 3});
  CHECK_THROWS_MATCHES(net32.run({&neg32}), pb::Error, ErrorAt(at, "id -3 at flat position 0 of ids [4]"));
}

TEST_CASE("kernels: Embedding on an i32 graph input fed i64 ids beyond the i32 range", "[kernels]") {
  // Narrowing i64 ids into an i32 input must not wrap 2^32 + 1 into id 1.
  std::mt19937 rng(25);
  const Tensor table = random_tensor({7, 5}, rng);
  GraphBuilder gb;
  gb.input("ids", int_tensor<int32_t>({2}, {0, 0})).weight("table", table).node("emb", "Embedding", {"ids", "table"});
  pb::Network net(gb.g, {});
  const Tensor wide = int_tensor<int64_t>({2}, {0, (int64_t(1) << 32) + 1});
  CHECK_THROWS_MATCHES(net.run({&wide}), pb::Error, ErrorAt("input \"ids\"", "value 4294967297 at flat position 1 does not fit i32"));
}

// ------------------------------------------------------------------ layout ops

TEST_CASE("kernels: Transpose with full and leading-dims perms", "[kernels]") {
  std::mt19937 rng(16);
  const Tensor x = random_tensor({2, 3, 4, 5}, rng);
  for (const Ints& perm : {Ints{3, 1, 0, 2}, Ints{0, 1, 2, 3}, Ints{0, 2, 3, 1}, Ints{1, 0}, Ints{2, 0, 1}, Ints{0}}) {
    INFO("perm " << pb::shape_str(perm));
    Ints full = perm;
    for (size_t d = perm.size(); d < 4; ++d) full.push_back(static_cast<int64_t>(d));
    Shape ys(4);
    for (size_t i = 0; i < 4; ++i) ys[i] = x.shape()[full[i]];
    Ref ref(static_cast<size_t>(x.numel()));
    for (int64_t i = 0; i < x.numel(); ++i) {
      const Ints out = unravel(i, ys);
      Ints in(4);
      for (size_t d = 0; d < 4; ++d) in[full[d]] = out[d];
      ref[i] = x.data<float>()[ravel(in, x.shape())];
    }
    GraphBuilder gb;
    gb.input("x", x).node("t", "Transpose", {"x"}, attrs({{"perm", perm}}));
    const Tensor y = gb.run();
    CHECK(y.shape() == ys);
    CHECK(mismatch(y, ref, 0, 0) == "");
  }
}

TEST_CASE("kernels: Pad writes the border once and the interior every run", "[kernels]") {
  std::mt19937 rng(17);
  struct PadCase {
    Shape x;
    Ints begin, end;
    double value;
    bool value_attr;
  };
  const std::vector<PadCase> cases = {
      {{2, 3, 4}, {0, 1, 2}, {1, 0, 3}, 1.5, true},
      {{1, 2, 3, 3}, {0, 0, 1, 0}, {0, 0, 2, 1}, 0.0, false},  // value left to its default 0
      {{5}, {3}, {0}, -7.0, true},
      {{2, 2}, {0, 0}, {0, 0}, 9.0, true},  // nothing to pad
  };
  for (const PadCase& c : cases) {
    INFO("x " << pb::shape_str(c.x) << ", pads " << pb::shape_str(c.begin) << " / " << pb::shape_str(c.end) << ", value " << c.value);
    Shape ys(c.x.size());
    for (size_t d = 0; d < c.x.size(); ++d) ys[d] = c.x[d] + c.begin[d] + c.end[d];
    auto pad_ref = [&](const Tensor& x) {
      Ref y(static_cast<size_t>(pb::element_count(ys)), c.value);
      for (int64_t i = 0; i < x.numel(); ++i) {
        Ints idx = unravel(i, c.x);
        for (size_t d = 0; d < idx.size(); ++d) idx[d] += c.begin[d];
        y[ravel(idx, ys)] = x.data<float>()[i];
      }
      return y;
    };
    const Tensor x1 = random_tensor(c.x, rng), x2 = random_tensor(c.x, rng, 10.f, 20.f);
    Attrs a = attrs({{"pads_begin", c.begin}, {"pads_end", c.end}});
    if (c.value_attr) a.set("value", c.value);
    pb::Network net(GraphBuilder().input("x", x1).node("pad", "Pad", {"x"}, a).g, {});
    net.run({&x1});
    CHECK(net.output(0).shape() == ys);
    CHECK(mismatch(net.output(0), pad_ref(x1), 0, 0) == "");
    net.run({&x2});  // the border stays, the interior is replaced
    CHECK(mismatch(net.output(0), pad_ref(x2), 0, 0) == "");
  }
}

TEST_CASE("kernels: Concat of three inputs along axis 0, 1 and -1", "[kernels]") {
  std::mt19937 rng(18);
  struct ConcatCase {
    int64_t axis;
    std::vector<Shape> shapes;
    bool last_is_weight;
  };
  const std::vector<ConcatCase> cases = {
      {0, {{1, 3, 4}, {2, 3, 4}, {3, 3, 4}}, false},
      {1, {{2, 3, 4}, {2, 5, 4}, {2, 1, 4}}, false},
      {-1, {{2, 3, 1}, {2, 3, 2}, {2, 3, 4}}, true},
      {-2, {{2, 2, 4}, {2, 3, 4}, {2, 1, 4}}, false},
      {1, {{4, 16, 3, 3}, {4, 8, 3, 3}, {4, 16, 3, 3}}, false},
  };
  for (const ConcatCase& c : cases) {
    INFO("axis " << c.axis << ", last input a weight: " << c.last_is_weight);
    const size_t rank = c.shapes[0].size(), axis = static_cast<size_t>(c.axis < 0 ? c.axis + int64_t(rank) : c.axis);
    GraphBuilder gb;
    std::vector<Tensor> xs;
    std::vector<std::string> names;
    for (size_t i = 0; i < 3; ++i) {
      xs.push_back(random_tensor(c.shapes[i], rng));
      names.push_back("x" + std::to_string(i));
      if (i == 2 && c.last_is_weight) gb.weight(names.back(), xs.back());
      else gb.input(names.back(), xs.back());
    }
    gb.node("cat", "Concat", names, attrs({{"axis", c.axis}}));
    Shape ys = c.shapes[0];
    ys[axis] = c.shapes[0][axis] + c.shapes[1][axis] + c.shapes[2][axis];
    Ref ref(static_cast<size_t>(pb::element_count(ys)));
    for (size_t i = 0; i < ref.size(); ++i) {
      Ints idx = unravel(static_cast<int64_t>(i), ys);
      size_t k = 0;
      while (idx[axis] >= c.shapes[k][axis]) idx[axis] -= c.shapes[k++][axis];
      ref[i] = xs[k].data<float>()[ravel(idx, c.shapes[k])];
    }
    const Tensor y = gb.run();
    CHECK(y.shape() == ys);
    CHECK(mismatch(y, ref, 0, 0) == "");
  }
}

TEST_CASE("kernels: Affine is x * scale + shift per feature", "[kernels]") {
  std::mt19937 rng(19);
  for (const Shape& xs : {Shape{6}, Shape{4, 6}, Shape{2, 3, 6}, Shape{100, 1}}) {
    INFO("x " << pb::shape_str(xs));
    const int64_t f = xs.back();
    const Tensor x = random_tensor(xs, rng, -3.f, 3.f), scale = random_tensor({f}, rng, -2.f, 2.f), shift = random_tensor({f}, rng);
    Ref ref(static_cast<size_t>(x.numel()));
    for (int64_t i = 0; i < x.numel(); ++i)
      ref[i] = double(x.data<float>()[i]) * scale.data<float>()[i % f] + shift.data<float>()[i % f];
    GraphBuilder gb;
    gb.input("x", x).weight("s", scale).weight("t", shift).node("aff", "Affine", {"x", "s", "t"});
    const Tensor y = gb.run();
    CHECK(y.shape() == xs);
    CHECK(mismatch(y, ref) == "");
  }
}

// ------------------------------------------------------------------ binary ops

TEST_CASE("kernels: Add/Sub/Mul/Div broadcast like numpy", "[kernels]") {
  std::mt19937 rng(20);
  struct BinCase {
    Shape a, b;
    bool a_weight, b_weight;
  };
  const std::vector<BinCase> cases = {
      {{2, 3}, {2, 3}, false, false},       {{2, 3}, {3}, false, false},       {{3}, {2, 3}, false, false},
      {{2, 3}, {}, false, false},           {{}, {2, 3}, false, false},        {{2, 3}, {1}, false, false},
      {{2, 3, 4}, {3, 1}, false, false},    {{1, 3, 1}, {2, 3, 4}, false, false}, {{4, 1, 5}, {4, 3, 5}, false, false},
      {{2, 3, 4}, {4}, false, true},        {{4}, {2, 3, 4}, true, false},     {{2, 3}, {2, 3}, true, false},
      {{2, 3}, {}, false, true},            {{2, 16, 3, 3}, {16, 1, 1}, false, true}, {{}, {}, false, false},
      {{1}, {}, false, false},
  };
  for (const std::string op : {"Add", "Sub", "Mul", "Div"}) {
    for (const BinCase& c : cases) {
      const Shape out = broadcast(c.a, c.b);
      if (op == "Div" && c.a != out) continue;  // a broadcast dividend: an error, tested below
      INFO(op << ": " << pb::shape_str(c.a) << (c.a_weight ? " (weight)" : "") << " op " << pb::shape_str(c.b)
              << (c.b_weight ? " (weight)" : ""));
      const Tensor a = random_tensor(c.a, rng, -2.f, 2.f), b = op == "Div" ? divisor_tensor(c.b, rng) : random_tensor(c.b, rng, -2.f, 2.f);
      GraphBuilder gb;
      if (c.a_weight) gb.weight("a", a);
      else gb.input("a", a);
      if (c.b_weight) gb.weight("b", b);
      else gb.input("b", b);
      gb.node("op", op, {"a", "b"});
      const Tensor y = gb.run();
      CHECK(y.shape() == out);
      CHECK(mismatch(y, binary_ref(op, a, b)) == "");
    }
  }
}

TEST_CASE("kernels: binary shapes that cannot run name the node", "[kernels]") {
  std::mt19937 rng(21);
  auto graph = [&](const std::string& op, const Shape& a, const Shape& b) {
    GraphBuilder gb;
    gb.input("a", random_tensor(a, rng)).input("b", random_tensor(b, rng)).node("op", op, {"a", "b"});
    return gb.g;
  };
  CHECK_THROWS_MATCHES(pb::Network(graph("Add", {2, 3}, {4}), {}), pb::Error,
                       ErrorAt(where("op", "Add"), "shapes [2, 3] and [4] do not broadcast"));
  CHECK_THROWS_MATCHES(pb::Network(graph("Mul", {2, 3}, {3, 3}), {}), pb::Error,
                       ErrorAt(where("op", "Mul"), "shapes [2, 3] and [3, 3] do not broadcast"));
  CHECK_THROWS_MATCHES(pb::Network(graph("Mul", {2, 1}, {1, 3}), {}), pb::Error,
                       ErrorAt(where("op", "Mul"), "both operands [2, 1] and [1, 3] broadcast; one must have the output shape [2, 3]"));
  CHECK_THROWS_MATCHES(pb::Network(graph("Sub", {3}, {2, 1}), {}), pb::Error,
                       ErrorAt(where("op", "Sub"), "both operands [3] and [2, 1] broadcast"));
  CHECK_THROWS_MATCHES(pb::Network(graph("Div", {3}, {2, 3}), {}), pb::Error,
                       ErrorAt(where("op", "Div"), "Div with a broadcast dividend is not supported"));
  CHECK_THROWS_MATCHES(pb::Network(graph("Div", {}, {2, 3}), {}), pb::Error,
                       ErrorAt(where("op", "Div"), "Div with a broadcast dividend is not supported"));
}

// ------------------------------------------------------------------ blocked layouts

TEST_CASE("kernels: blocked layouts give the results of plain ones", "[kernels]") {
  // conv1 -> relu -> pool -> conv2 -> add(conv2, pool) -> bn: 16 channels, so oneDNN picks
  // blocked layouts (nChw8c / nChw16c, by ISA) for the activations between the ops.
  std::mt19937 rng(22);
  const Tensor w1 = random_tensor({16, 3, 3, 3}, rng, -0.5f, 0.5f), b1 = random_tensor({16}, rng);
  const Tensor w2 = random_tensor({16, 16, 3, 3}, rng, -0.2f, 0.2f), b2 = random_tensor({16}, rng);
  const Tensor scale = random_tensor({16}, rng, 0.5f, 1.5f), shift = random_tensor({16}, rng), mean = random_tensor({16}, rng),
               var = random_tensor({16}, rng, 0.5f, 2.f);
  const WinAttrs pad1{{}, {}, {1, 1}, {1, 1}}, pool_win{{2, 2}, {}, {}, {}};
  Attrs conv_attrs, pool_attrs = attrs({{"mode", std::string("max")}, {"kernel", Ints{2, 2}}});
  set_window(conv_attrs, pad1);
  set_window(pool_attrs, pool_win);

  GraphBuilder gb;
  gb.input("x", random_tensor({2, 3, 14, 14}, rng, -2.f, 2.f));
  gb.weight("w1", w1).weight("b1", b1).weight("w2", w2).weight("b2", b2);
  gb.weight("scale", scale).weight("shift", shift).weight("mean", mean).weight("var", var);
  gb.node("conv1", "Conv", {"x", "w1", "b1"}, conv_attrs);
  gb.node("relu", "Activation", {"conv1"}, attrs({{"function", std::string("relu")}}));
  gb.node("pool", "Pool", {"relu"}, pool_attrs);
  gb.node("conv2", "Conv", {"pool", "w2", "b2"}, conv_attrs);
  gb.node("add", "Add", {"conv2", "pool"});
  gb.node("bn", "BatchNorm", {"add", "scale", "shift", "mean", "var"}, attrs({{"eps", 1e-5}}));

  // Every intermediate, by node name, in double.
  auto reference = [&](const Tensor& x) {
    std::map<std::string, Ref> r;
    Shape s1, sp, s2;
    r["conv1"] = conv_ref(to_double(x), x.shape(), w1, &b1, pad1, 1, &s1);
    r["relu"] = relu_ref(r["conv1"]);
    r["pool"] = pool_ref(r["relu"], s1, "max", {2, 2}, pool_win, false, &sp);
    r["conv2"] = conv_ref(r["pool"], sp, w2, &b2, pad1, 1, &s2);
    r["add"] = r["conv2"];
    for (size_t i = 0; i < r["add"].size(); ++i) r["add"][i] += r["pool"][i];
    r["bn"] = batchnorm_ref(r["add"], s2, scale, shift, mean, var, 1e-5);
    return r;
  };
  const Tensor x2 = random_tensor({2, 3, 14, 14}, rng, -2.f, 2.f);
  const auto ref1 = reference(gb.feeds[0]), ref2 = reference(x2);

  pb::Network plain(gb.g, {}, pb::CompileOptions::inspectable());
  plain.run(gb.feed_ptrs());
  // Without passes, blocked layouts and reuse, every node output is plain and readable.
  REQUIRE(plain.executed_graph().nodes.size() == 6);
  for (const Node& n : plain.executed_graph().nodes) {
    INFO("plain: value of " << n.name);
    REQUIRE(plain.value(n.name) != nullptr);
    CHECK(mismatch(*plain.value(n.name), ref1.at(n.name)) == "");
  }
  REQUIRE(plain.value("x") != nullptr);
  CHECK(plain.value("x")->bit_equal(gb.feeds[0]));

  for (const auto& [label, options] : kAllOptions) {
    pb::Network net(gb.g, {}, options);
    INFO("options: " << label << "; kernels:\n" << net.describe());
    for (int pass = 0; pass < 2; ++pass) {  // the second run with another input
      INFO("run " << pass + 1);
      const Tensor& x = pass == 0 ? gb.feeds[0] : x2;
      const auto& ref = pass == 0 ? ref1 : ref2;
      net.run({&x});
      CHECK(net.output(0).shape() == Shape{2, 16, 7, 7});
      CHECK(mismatch(net.output(0), ref.at("bn")) == "");
      if (pass == 0) CHECK(mismatch(net.output(0), to_double(plain.output(0))) == "");
      // With blocked layouts an intermediate held in oneDNN's layout has no plain copy, so
      // value() may return nullptr for it (here conv1/relu/pool/conv2/add typically are; which
      // ones depends on the ISA); with memory reuse its bytes may hold a later value.
      CHECK(net.value("x") != nullptr);
      for (const Node& n : net.executed_graph().nodes) {
        INFO("value of " << n.name);
        const Tensor* v = net.value(n.outputs[0]);
        if (inspectable(options)) REQUIRE(v != nullptr);
        if (v && inspectable(options)) CHECK(mismatch(*v, ref.at(n.outputs[0])) == "");
      }
    }
  }
}

TEST_CASE("kernels: ops that read plain data accept blocked producers", "[kernels]") {
  // Concat, Transpose, Pad, Identity and a broadcasting Mul read their inputs plain: a Conv
  // output held blocked is reordered into a plain copy before the first of them runs (and
  // that copy is shared by the later ones).
  std::mt19937 rng(26);
  const Tensor x = random_tensor({2, 3, 6, 6}, rng), wa = random_tensor({16, 3, 3, 3}, rng), wb = random_tensor({8, 3, 1, 1}, rng),
               m = random_tensor({16, 1, 1}, rng);
  Attrs pad1;
  set_window(pad1, {{}, {}, {1, 1}, {1, 1}});
  GraphBuilder gb;
  gb.input("x", x).weight("wa", wa).weight("wb", wb).weight("m", m);
  gb.node("a", "Conv", {"x", "wa"}, pad1);  // [2, 16, 6, 6]
  gb.node("b", "Conv", {"x", "wb"});        // [2, 8, 6, 6]
  gb.node("cat", "Concat", {"a", "b"}, attrs({{"axis", int64_t(1)}}));
  gb.node("tr", "Transpose", {"a"}, attrs({{"perm", Ints{0, 2, 3, 1}}}));
  gb.node("pad", "Pad", {"b"}, attrs({{"pads_begin", Ints{0, 0, 1, 0}}, {"pads_end", Ints{0, 0, 0, 2}}, {"value", -3.0}}));
  gb.node("id", "Identity", {"a"});
  gb.node("mul", "Mul", {"a", "m"});
  gb.g.outputs = {"cat", "tr", "pad", "id", "mul"};

  Shape sa, sb;
  const Ref a = conv_ref(to_double(x), x.shape(), wa, nullptr, {{}, {}, {1, 1}, {1, 1}}, 1, &sa);
  const Ref b = conv_ref(to_double(x), x.shape(), wb, nullptr, {}, 1, &sb);
  std::map<std::string, Ref> want;
  for (int64_t i = 0; i < 2 * 24 * 36; ++i) {
    const Ints idx = unravel(i, {2, 24, 6, 6});
    want["cat"].push_back(idx[1] < 16 ? a[ravel(idx, sa)] : b[ravel({idx[0], idx[1] - 16, idx[2], idx[3]}, sb)]);
  }
  for (int64_t i = 0; i < 2 * 6 * 6 * 16; ++i) {
    const Ints idx = unravel(i, {2, 6, 6, 16});
    want["tr"].push_back(a[ravel({idx[0], idx[3], idx[1], idx[2]}, sa)]);
  }
  for (int64_t i = 0; i < 2 * 8 * 7 * 8; ++i) {
    const Ints idx = unravel(i, {2, 8, 7, 8});
    const bool inside = idx[2] >= 1 && idx[3] < 6;
    want["pad"].push_back(inside ? b[ravel({idx[0], idx[1], idx[2] - 1, idx[3]}, sb)] : -3.0);
  }
  want["id"] = a;
  for (size_t i = 0; i < a.size(); ++i) want["mul"].push_back(a[i] * m.data<float>()[(i / 36) % 16]);

  for (const auto& [label, options] : kAllOptions) {
    INFO("options: " << label);
    pb::Network net(gb.g, {}, options);
    net.run(gb.feed_ptrs());
    const char* names[] = {"cat", "tr", "pad", "id", "mul"};
    for (size_t i = 0; i < 5; ++i) {
      INFO("output " << names[i]);
      CHECK(mismatch(net.output(i), want.at(names[i])) == "");
    }
  }
}

// ------------------------------------------------------------------ compile passes

TEST_CASE("kernels: remove_unused drops dead nodes, and fusion sees through them", "[kernels]") {
  // c (Conv) -> act (relu) -> output; c also feeds dead (Pool) -> dead2 (tanh), and act feeds
  // dead3 (sigmoid): nothing reads dead2 or dead3. Until the dead Pool is gone, c has two
  // readers and the relu could not be fused into it.
  std::mt19937 rng(23);
  const Tensor x = random_tensor({1, 3, 8, 8}, rng), w = random_tensor({4, 3, 3, 3}, rng);
  GraphBuilder gb;
  gb.input("x", x).weight("w", w);
  gb.node("c", "Conv", {"x", "w"});
  gb.node("act", "Activation", {"c"}, attrs({{"function", std::string("relu")}}));
  gb.node("dead", "Pool", {"c"}, attrs({{"mode", std::string("max")}, {"kernel", Ints{2, 2}}}));
  gb.node("dead2", "Activation", {"dead"}, attrs({{"function", std::string("tanh")}}));
  gb.node("dead3", "Activation", {"act"}, attrs({{"function", std::string("sigmoid")}}));
  gb.g.outputs = {"act"};
  Shape ys;
  const Ref conv = conv_ref(to_double(x), x.shape(), w, nullptr, {}, 1, &ys);

  for (const auto& [label, options] : kAllOptions) {
    INFO("options: " << label);
    pb::Network net(gb.g, {}, options);
    net.run(gb.feed_ptrs());
    CHECK(mismatch(net.output(0), relu_ref(conv)) == "");
    const Graph& eg = net.executed_graph();
    if (options.optimize) {
      REQUIRE(eg.nodes.size() == 1);
      CHECK(eg.nodes[0].name == "c");
      CHECK(eg.nodes[0].attrs.s("activation", "identity") == "relu");
      CHECK(eg.nodes[0].outputs == std::vector<std::string>{"act"});
      for (const char* dead : {"dead", "dead2", "dead3", "c"}) CHECK(net.value(dead) == nullptr);
    } else {
      REQUIRE(eg.nodes.size() == 5);
      CHECK(eg.nodes[0].attrs.s("activation", "identity") == "identity");
      if (inspectable(options)) {
        for (const Node& n : eg.nodes) CHECK(net.value(n.name) != nullptr);
        Shape pool_shape;
        Ref want = pool_ref(conv, ys, "max", {2, 2}, {}, false, &pool_shape);
        for (double& v : want) v = std::tanh(v);
        CHECK(mismatch(*net.value("dead2"), want) == "");
      }
    }
  }
}

TEST_CASE("kernels: a residual block folds to convolutions: BatchNorm into weights, Add and ReLU into post-ops", "[kernels]") {
  // x -> c0 -> h -> c1 -> bn1 -> relu -> c2 -> bn2 -> add(.., h) -> out (relu). With the passes:
  // c0, c1 (bn1 folded, relu fused) and c2 (bn2 folded, the add and the relu fused), whose sum
  // accumulates in h's own memory -- unless h is also a graph output.
  std::mt19937 rng(31);
  const int64_t c = 8;
  const Tensor x = random_tensor({2, c, 6, 6}, rng), w0 = random_tensor({c, c, 1, 1}, rng, -0.5f, 0.5f), w1 = random_tensor({c, c, 3, 3}, rng, -0.3f, 0.3f),
               b1 = random_tensor({c}, rng), w2 = random_tensor({c, c, 3, 3}, rng, -0.3f, 0.3f);
  Tensor bn[2][4];
  for (auto& set : bn) {
    set[0] = random_tensor({c}, rng, 0.5f, 1.5f);
    set[1] = random_tensor({c}, rng);
    set[2] = random_tensor({c}, rng);
    set[3] = random_tensor({c}, rng, 0.05f, 2.f);
  }
  const Tensor w1_before = w1.clone();
  for (bool residual_is_output : {false, true}) {
    INFO("h is also a graph output: " << residual_is_output);
    GraphBuilder gb;
    gb.input("x", x).weight("w0", w0).weight("w1", w1).weight("b1", b1).weight("w2", w2);
    for (int k = 0; k < 2; ++k)
      for (int j = 0; j < 4; ++j) gb.weight("bn" + std::to_string(k) + "_" + std::to_string(j), bn[k][j]);
    const auto bn_inputs = [](const std::string& in, int k) {
      std::vector<std::string> v = {in};
      for (int j = 0; j < 4; ++j) v.push_back("bn" + std::to_string(k) + "_" + std::to_string(j));
      return v;
    };
    const Attrs pad1 = attrs({{"pads_begin", Ints{1, 1}}, {"pads_end", Ints{1, 1}}});
    gb.node("h", "Conv", {"x", "w0"});
    gb.node("c1", "Conv", {"h", "w1", "b1"}, pad1);
    gb.node("bn1", "BatchNorm", bn_inputs("c1", 0), attrs({{"eps", 1e-5}}));
    gb.node("r1", "Activation", {"bn1"}, attrs({{"function", std::string("relu")}}));
    gb.node("c2", "Conv", {"r1", "w2"}, pad1);
    gb.node("bn2", "BatchNorm", bn_inputs("c2", 1), attrs({{"eps", 1e-3}}));
    gb.node("add", "Add", {"h", "bn2"});
    gb.node("out", "Activation", {"add"}, attrs({{"function", std::string("relu")}}));
    gb.g.outputs = residual_is_output ? std::vector<std::string>{"out", "h"} : std::vector<std::string>{"out"};

    Shape ys;
    const Ref hd = conv_ref(to_double(x), x.shape(), w0, nullptr, {}, 1, &ys);
    Ref y = relu_ref(batchnorm_ref(conv_ref(hd, ys, w1, &b1, {{}, {}, {1, 1}, {1, 1}}, 1, &ys), ys, bn[0][0], bn[0][1],
                                   bn[0][2], bn[0][3], 1e-5));
    Ref want = batchnorm_ref(conv_ref(y, ys, w2, nullptr, {{}, {}, {1, 1}, {1, 1}}, 1, &ys), ys, bn[1][0], bn[1][1], bn[1][2], bn[1][3], 1e-3);
    for (size_t i = 0; i < want.size(); ++i) want[i] = std::max(0.0, want[i] + hd[i]);

    for (const auto& [label, options] : kAllOptions) {
      INFO("options: " << label);
      pb::Network net(gb.g, {}, options);
      net.run(gb.feed_ptrs());
      CHECK(mismatch(net.output(0), want) == "");
      if (residual_is_output) CHECK(mismatch(net.output(1), hd) == "");  // never overwritten
      const Graph& eg = net.executed_graph();
      if (!options.optimize) {
        CHECK(eg.nodes.size() == 8);
        continue;
      }
      REQUIRE(eg.nodes.size() == 3);
      CHECK(eg.nodes[1].inputs == std::vector<std::string>{"h", "w1@bn:bn1", "b1@bn:bn1"});
      CHECK(eg.nodes[1].attrs.s("activation") == "relu");
      CHECK(eg.nodes[2].inputs == std::vector<std::string>{"r1", "w2@bn:bn2", "bn1_1@bn:bn2", "h"});
      CHECK(eg.nodes[2].attrs.s("activation") == "relu");
      CHECK(eg.nodes[2].outputs == std::vector<std::string>{"out"});
      CHECK(eg.nodes[2].origin == "test:c2 + test:bn2 + test:add + test:out");
    }
  }
  CHECK(mismatch(w1, to_double(w1_before), 0, 0) == "");  // the stream's weights are untouched
}

TEST_CASE("kernels: fusion leaves what it cannot fold: a broadcast Add, a shared output, a BatchNorm after an activation", "[kernels]") {
  std::mt19937 rng(32);
  const Tensor x = random_tensor({1, 4, 5, 5}, rng), w = random_tensor({4, 4, 1, 1}, rng), bias4 = random_tensor({1, 4, 1, 1}, rng);
  Tensor bn[4] = {random_tensor({4}, rng, 0.5f, 1.5f), random_tensor({4}, rng), random_tensor({4}, rng), random_tensor({4}, rng, 0.1f, 1.f)};
  GraphBuilder gb;
  gb.input("x", x).weight("w", w).weight("bias4", bias4).weight("s", bn[0]).weight("t", bn[1]).weight("m", bn[2]).weight("v", bn[3]);
  gb.node("c1", "Conv", {"x", "w"});
  gb.node("add", "Add", {"c1", "bias4"});  // broadcast: not a residual
  gb.node("c2", "Conv", {"add", "w"}, attrs({{"activation", std::string("tanh")}}));
  gb.node("bn", "BatchNorm", {"c2", "s", "t", "m", "v"}, attrs({{"eps", 1e-5}}));  // after tanh: not foldable
  gb.node("c3", "Conv", {"bn", "w"});
  gb.node("bn3", "BatchNorm", {"c3", "s", "t", "m", "v"}, attrs({{"eps", 1e-5}}));  // c3 is also an output
  gb.g.outputs = {"bn3", "c3"};
  pb::Network net(gb.g, {});
  std::vector<std::string> ops;
  for (const Node& n : net.executed_graph().nodes) ops.push_back(n.op);
  CHECK(ops == std::vector<std::string>{"Conv", "Add", "Conv", "BatchNorm", "Conv", "BatchNorm"});
  pb::Network plain(gb.g, {}, kPlain);
  net.run(gb.feed_ptrs());
  plain.run(gb.feed_ptrs());
  for (size_t i = 0; i < 2; ++i) CHECK(mismatch(net.output(i), to_double(plain.output(i))) == "");
}

TEST_CASE("kernels: BatchNorm1d after a Dense folds into it; over a sequence it does not", "[kernels]") {
  std::mt19937 rng(34);
  const Tensor w = random_tensor({6, 5}, rng), b = random_tensor({6}, rng);
  Tensor bn[4] = {random_tensor({6}, rng, 0.5f, 1.5f), random_tensor({6}, rng), random_tensor({6}, rng), random_tensor({6}, rng, 0.1f, 1.f)};
  for (const Shape& xs : {Shape{4, 5}, Shape{4, 6, 5}}) {  // [N, out]: folds; [N, T=6, out=6]: BatchNorm normalises T
    INFO("x " << pb::shape_str(xs));
    GraphBuilder gb;
    gb.input("x", random_tensor(xs, rng)).weight("w", w).weight("b", b);
    gb.weight("s", bn[0]).weight("t", bn[1]).weight("m", bn[2]).weight("v", bn[3]);
    gb.node("fc", "Dense", {"x", "w", "b"});
    gb.node("bn", "BatchNorm", {"fc", "s", "t", "m", "v"}, attrs({{"eps", 1e-5}}));
    pb::Network net(gb.g, {}), plain(gb.g, {}, kPlain);
    net.run(gb.feed_ptrs());
    plain.run(gb.feed_ptrs());
    CHECK(mismatch(net.output(0), to_double(plain.output(0))) == "");
    CHECK(net.executed_graph().nodes.size() == (xs.size() == 2 ? 1u : 2u));
  }
}

TEST_CASE("kernels: a Conv's add input must have the output's shape", "[kernels]") {
  std::mt19937 rng(33);
  GraphBuilder gb;
  gb.input("x", random_tensor({1, 2, 4, 4}, rng)).input("r", random_tensor({1, 3, 4, 4}, rng)).weight("w", random_tensor({3, 2, 3, 3}, rng));
  gb.node("n", "Conv", {"x", "w", "", "r"});
  CHECK_THROWS_MATCHES(pb::Network(gb.g, {}), pb::Error, ErrorAt(where("n", "Conv"), "add [1, 3, 4, 4] must have the output's shape [1, 3, 2, 2]"));
}

// ------------------------------------------------------------------ attribute errors

TEST_CASE("kernels: bad attributes of spatial and layout ops name the node", "[kernels]") {
  std::mt19937 rng(24);
  // Compiles a one-node graph over input x (and weights) and expects an error at that node.
  auto expect_error = [&](const Tensor& x, const std::string& op, std::vector<std::string> ins, Attrs a,
                          const std::map<std::string, Tensor>& weights, const std::string& part) {
    INFO(op << ": expecting \"" << part << "\"");
    GraphBuilder gb;
    gb.input("x", x);
    for (const auto& [name, t] : weights) gb.weight(name, t);
    gb.node("n", op, std::move(ins), std::move(a));
    CHECK_THROWS_MATCHES(pb::Network(gb.g, {}), pb::Error, ErrorAt(where("n", op), part));
  };
  const Tensor x2d = random_tensor({1, 4, 4, 4}, rng);
  const std::map<std::string, Tensor> w3 = {{"w", random_tensor({6, 4, 3, 3}, rng)}};
  auto ints = [](Ints v) { return AttrValue(std::move(v)); };

  // Conv
  expect_error(x2d, "Conv", {"x", "w"}, attrs({{"pads_begin", ints({1})}, {"pads_end", ints({1, 1})}}), w3,
               "window attributes need 2 values per list (one per spatial dim), got [1]");
  expect_error(x2d, "Conv", {"x", "w"}, attrs({{"strides", ints({1, 1, 1})}}), w3, "window attributes need 2 values per list (one per spatial dim), got [1, 1, 1]");
  expect_error(x2d, "Conv", {"x", "w"}, attrs({{"pads_begin", ints({-1, 0})}}), w3, "kernel, strides and dilations must be >= 1 and pads >= 0");
  expect_error(x2d, "Conv", {"x", "w"}, attrs({{"strides", ints({0, 1})}}), w3, "kernel, strides and dilations must be >= 1 and pads >= 0");
  expect_error(x2d, "Conv", {"x", "w"}, {}, {{"w", random_tensor({2, 4, 5, 5}, rng)}}, "spatial size 4 (padded 4) is smaller than the window 5");
  expect_error(x2d, "Conv", {"x", "w"}, attrs({{"pads_begin", ints({1, 1})}, {"pads_end", ints({0, 0})}}),
               {{"w", random_tensor({2, 4, 6, 3}, rng)}}, "spatial size 4 (padded 5) is smaller than the window 6");
  expect_error(x2d, "Conv", {"x", "w"}, attrs({{"dilations", ints({1, 2})}}), {{"w", random_tensor({2, 4, 3, 3}, rng)}},
               "spatial size 4 (padded 4) is smaller than the window 5");
  expect_error(x2d, "Conv", {"x", "w"}, attrs({{"groups", int64_t(2)}}), {{"w", random_tensor({6, 4, 3, 3}, rng)}},
               "weight [6, 4, 3, 3] does not fit 4 input channels in 2 groups (expected [O, C/groups, k...])");
  expect_error(x2d, "Conv", {"x", "w"}, attrs({{"groups", int64_t(2)}}), {{"w", random_tensor({5, 2, 3, 3}, rng)}},
               "weight [5, 2, 3, 3] does not fit 4 input channels in 2 groups");
  expect_error(x2d, "Conv", {"x", "w"}, attrs({{"groups", int64_t(3)}}), {{"w", random_tensor({6, 1, 3, 3}, rng)}},
               "does not fit 4 input channels in 3 groups");
  expect_error(x2d, "Conv", {"x", "w"}, {}, {{"w", random_tensor({6, 3, 3, 3}, rng)}}, "does not fit 4 input channels in 1 groups");
  expect_error(x2d, "Conv", {"x", "w"}, {}, {{"w", random_tensor({6, 4, 3}, rng)}}, "weight [6, 4, 3] must have the input's rank 4");
  expect_error(x2d, "Conv", {"x", "w", "b"}, {}, {{"w", w3.at("w")}, {"b", random_tensor({4}, rng)}}, "bias must be f32 with 6 elements, got [4]");
  expect_error(random_tensor({2, 3}, rng), "Conv", {"x", "w"}, {}, {{"w", random_tensor({2, 3}, rng)}},
               "input must be [N, C, spatial...] with 1-3 spatial dims, got [2, 3]");
  expect_error(x2d, "Conv", {"x", "w"}, attrs({{"activation", std::string("swishy")}}), w3, "unknown activation \"swishy\"");

  // Pool
  const Attrs maxpool = attrs({{"mode", std::string("max")}, {"kernel", ints({2, 2})}});
  auto with = [](Attrs a, const std::string& k, AttrValue v) {
    a.set(k, std::move(v));
    return a;
  };
  expect_error(x2d, "Pool", {"x"}, with(maxpool, "kernel", ints({2})), {}, "kernel [2] does not match 2 spatial dims");
  expect_error(x2d, "Pool", {"x"}, with(maxpool, "pads_end", ints({0})), {}, "window attributes need 2 values per list (one per spatial dim), got [0]");
  expect_error(x2d, "Pool", {"x"}, with(maxpool, "kernel", ints({5, 2})), {}, "spatial size 4 (padded 4) is smaller than the window 5");
  expect_error(x2d, "Pool", {"x"}, with(maxpool, "strides", ints({1, 0})), {}, "kernel, strides and dilations must be >= 1");
  expect_error(x2d, "Pool", {"x"}, with(maxpool, "mode", std::string("min")), {}, "unknown pooling mode \"min\" (expected \"max\" or \"avg\")");
  expect_error(x2d, "Pool", {"x"}, attrs({{"mode", std::string("max")}}), {}, "missing attribute \"kernel\"");
  expect_error(random_tensor({4, 4}, rng), "Pool", {"x"}, maxpool, {}, "input must be [N, C, spatial...] with 1-3 spatial dims, got [4, 4]");

  // Normalisation, layout ops
  const Tensor x3 = random_tensor({2, 3, 4}, rng);
  const std::map<std::string, Tensor> bn = {{"g", random_tensor({3}, rng)}, {"b", random_tensor({3}, rng)},
                                            {"m", random_tensor({4}, rng)}, {"v", random_tensor({3}, rng)}};
  expect_error(x3, "BatchNorm", {"x", "g", "b", "m", "v"}, attrs({{"eps", 1e-5}}), bn, "mean must be f32 with 3 elements, got [4]");
  expect_error(x3, "LayerNorm", {"x"}, attrs({{"axis", int64_t(3)}, {"eps", 1e-5}}), {}, "axis 3 is out of range for an input of rank 3");
  expect_error(x3, "LayerNorm", {"x", "s"}, attrs({{"axis", int64_t(-2)}, {"eps", 1e-5}}), {{"s", random_tensor({4}, rng)}},
               "scale must be f32 with 12 elements, got [4]");
  expect_error(x3, "Pad", {"x"}, attrs({{"pads_begin", ints({1, 1})}, {"pads_end", ints({1, 1, 1})}}), {},
               "pads_begin and pads_end need one count per dimension of [2, 3, 4]");
  expect_error(x3, "Pad", {"x"}, attrs({{"pads_begin", ints({0, -1, 0})}, {"pads_end", ints({0, 0, 0})}}), {}, "pads must be >= 0");
  expect_error(x3, "Transpose", {"x"}, attrs({{"perm", ints({0, 0})}}), {}, "perm [0, 0] is not a permutation");
  expect_error(x3, "Transpose", {"x"}, attrs({{"perm", ints({0, 3, 1})}}), {}, "is not a permutation");
  expect_error(x3, "Transpose", {"x"}, attrs({{"perm", ints({0, 1, 2, 3})}}), {}, "perm [0, 1, 2, 3] is longer than the input's rank 3");
  expect_error(x3, "Concat", {"x", "y"}, attrs({{"axis", int64_t(1)}}), {{"y", random_tensor({2, 3, 5}, rng)}},
               "input shapes [2, 3, 4] and [2, 3, 5] differ outside axis 1");
  expect_error(x3, "Concat", {"x", "x"}, attrs({{"axis", int64_t(3)}}), {}, "axis 3 is out of range for an input of rank 3");
  expect_error(x3, "Affine", {"x", "s", "t"}, {}, {{"s", random_tensor({4}, rng)}, {"t", random_tensor({3}, rng)}},
               "shift must be f32 with 4 elements, got [3]");
  expect_error(x3, "Embedding", {"x", "t"}, {}, {{"t", random_tensor({7, 2}, rng)}}, "ids must be i32 or i64, got f32");
  expect_error(int_tensor<int32_t>({2}, {0, 1}), "Embedding", {"x", "t"}, {}, {{"t", random_tensor({7}, rng)}}, "table must be [V, D], got [7]");
}

TEST_CASE("kernels: Reduce mean/sum/max/min over listed axes, kept or dropped, or over all", "[kernels]") {
  const Shape xs = {2, 3, 4};
  Tensor x(DType::f32, xs);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float((i * 7) % 11) - 5.f;
  auto at = [&](int64_t a, int64_t b, int64_t c) { return double(x.data<float>()[(a * 3 + b) * 4 + c]); };
  for (const std::string mode : {"mean", "sum", "max", "min"}) {
    INFO(mode);
    auto combine = [&](const std::vector<double>& v) {
      double r = mode == "max" ? -1e30 : mode == "min" ? 1e30 : 0;
      for (double e : v) r = mode == "max" ? std::max(r, e) : mode == "min" ? std::min(r, e) : r + e;
      return mode == "mean" ? r / double(v.size()) : r;
    };
    // Axes {0, -1}, keepdims: [1, 3, 1].
    Ref over_ends;
    for (int64_t b = 0; b < 3; ++b) {
      std::vector<double> v;
      for (int64_t a = 0; a < 2; ++a)
        for (int64_t c = 0; c < 4; ++c) v.push_back(at(a, b, c));
      over_ends.push_back(combine(v));
    }
    const Tensor kept = GraphBuilder().input("x", x).node("r", "Reduce", {"x"}, attrs({{"mode", mode}, {"axes", Shape{0, -1}}})).run();
    CHECK(kept.shape() == Shape{1, 3, 1});
    CHECK(mismatch(kept, over_ends).empty());
    const Tensor dropped =
        GraphBuilder().input("x", x).node("r", "Reduce", {"x"}, attrs({{"mode", mode}, {"axes", Shape{0, -1}}, {"keepdims", int64_t(0)}})).run();
    CHECK(dropped.shape() == Shape{3});
    CHECK(mismatch(dropped, over_ends).empty());
    // No axes: every element, one value.
    std::vector<double> all(x.data<float>(), x.data<float>() + x.numel());
    const Tensor whole = GraphBuilder().input("x", x).node("r", "Reduce", {"x"}, attrs({{"mode", mode}, {"keepdims", int64_t(0)}})).run();
    CHECK(whole.shape() == Shape{});
    CHECK(mismatch(whole, Ref{combine(all)}).empty());
  }
  CHECK_THROWS_MATCHES(GraphBuilder().input("x", x).node("r", "Reduce", {"x"}, attrs({{"mode", std::string("prod")}})).run(), pb::Error,
                       ErrorAt(where("r", "Reduce"), "unknown reduction \"prod\" (expected mean, sum, max or min)"));
  CHECK_THROWS_MATCHES(GraphBuilder().input("x", x).node("r", "Reduce", {"x"}, attrs({{"mode", std::string("sum")}, {"axes", Shape{1, -2}}})).run(),
                       pb::Error, ErrorAt(where("r", "Reduce"), "axis -2 is listed twice"));
}
