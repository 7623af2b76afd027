// MatMul against a naive double-precision reference (every broadcast of the batch dims, b
// transposed or not, a scale, either operand a weight), and scaled dot-product attention built
// from the IR's ops (MatMul, Add, Softmax, MatMul) as the decoders emit it.
#include <cmath>
#include <random>
#include <sstream>

#include "planetbridge/ir.h"
#include "planetbridge/network.h"
#include "kernel_test_util.h"

using pb::DType;
using pb::Shape;
using pb::Tensor;
using pb::ir::Attrs;
using pb::ir::Graph;
using pbtest::attrs;
using pbtest::ErrorAt;
using pbtest::GraphBuilder;
using pbtest::mismatch;
using pbtest::Ref;
using pbtest::where;
using pbtest::make_node;
using pbtest::random_tensor;

namespace {


// Index of output element `flat` of shape `out` in a tensor of shape `s` broadcast to out's
// leading `lead` dims (s's own last two dims given separately as r, c).
int64_t batch_offset(const std::vector<int64_t>& idx, const Shape& s, size_t lead) {
  const size_t sb = s.size() - 2;  // s's batch dims, aligned right with the output's `lead`
  int64_t off = 0;
  for (size_t d = 0; d < sb; ++d) {
    const int64_t i = s[d] == 1 ? 0 : idx[lead - sb + d];
    off = off * s[d] + i;
  }
  return off;
}

// scale · a · b (b [.., N, K] when transpose_b), numpy-broadcast batch dims, in double.
Ref matmul_ref(const Tensor& a, const Tensor& b, bool transpose_b, double scale, const Shape& out) {
  const Shape& as = a.shape();
  const Shape& bs = b.shape();
  const int64_t m = as[as.size() - 2], k = as.back(), n = out.back();
  const size_t lead = out.size() - 2;
  int64_t batches = 1;
  for (size_t d = 0; d < lead; ++d) batches *= out[d];
  Ref y(static_cast<size_t>(batches * m * n));
  std::vector<int64_t> idx(lead);
  for (int64_t bi = 0; bi < batches; ++bi) {
    for (int64_t f = bi, d = static_cast<int64_t>(lead) - 1; d >= 0; --d) {
      idx[d] = f % out[d];
      f /= out[d];
    }
    const float* ap = a.data<float>() + batch_offset(idx, as, lead) * m * k;
    const float* bp = b.data<float>() + batch_offset(idx, bs, lead) * k * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t q = 0; q < k; ++q) s += double(ap[i * k + q]) * double(transpose_b ? bp[j * k + q] : bp[q * n + j]);
        y[static_cast<size_t>((bi * m + i) * n + j)] = scale * s;
      }
  }
  return y;
}


}  // namespace

TEST_CASE("kernels: MatMul broadcasts batch dims, transposes b, scales, takes weights", "[kernels]") {
  std::mt19937 rng(31);
  struct Case {
    Shape a, b, y;
    bool transpose_b = false;
    double scale = 1.0;
    bool a_weight = false, b_weight = false;
  };
  const std::vector<Case> cases = {
      {{3, 4}, {4, 5}, {3, 5}},
      {{2, 3, 4}, {2, 4, 5}, {2, 3, 5}},
      {{2, 3, 4}, {4, 5}, {2, 3, 5}, false, 1.0, false, true},          // a weight b: Dense without its bias
      {{4, 3}, {2, 3, 5}, {2, 4, 5}, false, 1.0, true, false},          // a weight a
      {{2, 1, 3, 4}, {1, 3, 4, 5}, {2, 3, 3, 5}},                        // both broadcast
      {{2, 3, 6, 4}, {2, 3, 7, 4}, {2, 3, 6, 7}, true, 0.5},             // q · kᵀ / sqrt(4)
      {{2, 3, 6, 4}, {3, 7, 4}, {2, 3, 6, 7}, true, 0.125},
      {{1, 6, 4}, {5, 4, 7}, {5, 6, 7}},
      {{2, 4, 6, 7}, {2, 4, 7, 3}, {2, 4, 6, 3}},                        // weights · v
      {{1, 1}, {1, 1}, {1, 1}, false, -2.0},
      {{2, 3, 1, 1, 5, 4}, {3, 2, 1, 4, 6}, {2, 3, 2, 1, 5, 6}},
  };
  for (const Case& c : cases) {
    INFO(pb::shape_str(c.a) << " · " << pb::shape_str(c.b) << (c.transpose_b ? "ᵀ" : "") << " scale " << c.scale);
    const Tensor a = random_tensor(c.a, rng), b = random_tensor(c.b, rng);
    GraphBuilder gb;
    if (c.a_weight) gb.weight("a", a);
    else gb.input("a", a);
    if (c.b_weight) gb.weight("b", b);
    else gb.input("b", b);
    gb.node("mm", "MatMul", {"a", "b"}, attrs({{"transpose_b", int64_t(c.transpose_b)}, {"scale", c.scale}}));
    for (const pb::CompileOptions& options : {pb::CompileOptions{}, pb::CompileOptions{false, false}}) {
      const Tensor y = gb.run(options);
      CHECK(y.shape() == c.y);
      CHECK(mismatch(y, matmul_ref(a, b, c.transpose_b, c.scale, c.y)) == "");
    }
  }
}

TEST_CASE("kernels: MatMul shapes that do not fit name the node", "[kernels]") {
  std::mt19937 rng(32);
  auto graph = [&](const Shape& a, const Shape& b, int64_t transpose_b = 0) {
    GraphBuilder gb;
    gb.input("a", random_tensor(a, rng)).input("b", random_tensor(b, rng)).node("mm", "MatMul", {"a", "b"}, attrs({{"transpose_b", transpose_b}}));
    return gb.g;
  };
  CHECK_THROWS_MATCHES(pb::Network(graph({3, 4}, {5, 6}), {}), pb::Error,
                       ErrorAt(where("mm", "MatMul"), "a [3, 4] has 4 columns, b [5, 6] has 5 rows"));
  CHECK_THROWS_MATCHES(pb::Network(graph({3, 4}, {6, 5}, 1), {}), pb::Error,
                       ErrorAt(where("mm", "MatMul"), "a [3, 4] has 4 columns, b [6, 5] (transposed) has 5 rows"));
  CHECK_THROWS_MATCHES(pb::Network(graph({4}, {4, 2}), {}), pb::Error, ErrorAt(where("mm", "MatMul"), "a and b need rank >= 2"));
  CHECK_THROWS_MATCHES(pb::Network(graph({2, 3, 4}, {3, 4, 5}), {}), pb::Error,
                       ErrorAt(where("mm", "MatMul"), "shapes [2] and [3] do not broadcast"));
}

// softmax(q · kᵀ · scale + mask) · v over heads, as a decoder emits multi-head attention.
TEST_CASE("kernels: scaled dot-product attention from MatMul, Add, Softmax, MatMul", "[kernels]") {
  std::mt19937 rng(33);
  const int64_t n = 2, h = 3, l = 5, s = 7, d = 4;
  const Tensor q = random_tensor({n, h, l, d}, rng, -2.f, 2.f), k = random_tensor({n, h, s, d}, rng, -2.f, 2.f),
               v = random_tensor({n, h, s, d}, rng), mask = random_tensor({l, s}, rng, -3.f, 0.f);
  const double scale = 1 / std::sqrt(double(d));
  GraphBuilder gb;
  gb.input("q", q).input("k", k).input("v", v).weight("mask", mask);
  gb.node("scores", "MatMul", {"q", "k"}, attrs({{"transpose_b", int64_t(1)}, {"scale", scale}}));
  gb.node("masked", "Add", {"scores", "mask"});
  gb.node("weights", "Softmax", {"masked"}, attrs({{"axis", int64_t(-1)}}));
  gb.node("context", "MatMul", {"weights", "v"});
  const Tensor y = gb.run();

  Ref want(static_cast<size_t>(n * h * l * d));
  for (int64_t b = 0; b < n * h; ++b)
    for (int64_t i = 0; i < l; ++i) {
      std::vector<double> p(static_cast<size_t>(s));
      double mx = -1e300, sum = 0;
      for (int64_t j = 0; j < s; ++j) {
        double dot = 0;
        for (int64_t c = 0; c < d; ++c) dot += double(q.data<float>()[(b * l + i) * d + c]) * double(k.data<float>()[(b * s + j) * d + c]);
        p[j] = dot * scale + mask.data<float>()[i * s + j];
        mx = std::max(mx, p[j]);
      }
      for (double& x : p) sum += (x = std::exp(x - mx));
      for (int64_t c = 0; c < d; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < s; ++j) acc += p[j] / sum * double(v.data<float>()[(b * s + j) * d + c]);
        want[static_cast<size_t>((b * l + i) * d + c)] = acc;
      }
    }
  CHECK(y.shape() == Shape{n, h, l, d});
  CHECK(mismatch(y, want) == "");
}
