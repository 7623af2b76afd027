// pb::Network on Compare, Where and Expand (C++ loops over a broadcast output) against naive
// references written here: every comparison mode, each operand broadcasting, integer and float
// conditions, -inf selected, Expand's new leading dims and its `like` input (a batch known only
// when compiled), and what their schemas refuse.
#include <cmath>
#include <random>

#include "kernel_test_util.h"
#include "planetbridge/network.h"

using pb::DType;
using pb::Shape;
using pb::Tensor;
using pbtest::attrs;
using pbtest::ErrorAt;
using pbtest::GraphBuilder;
using pbtest::where;

namespace {

using Ints = std::vector<int64_t>;

// The flat index into a tensor of shape `s` (aligned to the end of `out`, broadcast along its
// dims of 1) of the output element at flat index `i`.
int64_t source_index(int64_t i, const Shape& out, const Shape& s) {
  int64_t index = 0, stride = 1;
  for (size_t d = out.size(); d-- > 0;) {
    const int64_t coord = i % out[d];
    i /= out[d];
    const size_t k = d + s.size();
    if (k < out.size()) continue;  // a leading dim s does not have
    const int64_t dim = s[k - out.size()];
    index += (dim == 1 ? 0 : coord) * stride;
    stride *= dim;
  }
  return index;
}

Tensor counting(DType dtype, Shape shape, double scale = 1, double shift = 0) {
  Tensor t(dtype, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double v = double(i) * scale + shift;
    if (dtype == DType::f32) t.data<float>()[i] = float(v);
    if (dtype == DType::i32) t.data<int32_t>()[i] = int32_t(v);
    if (dtype == DType::i64) t.data<int64_t>()[i] = int64_t(v);
  }
  return t;
}

}  // namespace

TEST_CASE("kernels: Compare, every mode, either operand broadcast, gives an i32 mask", "[kernels]") {
  // a [2, 1, 3] against b [4, 1]: both broadcast to [2, 4, 3]; values repeat so every mode sees
  // equal, smaller and larger pairs.
  Tensor a(DType::f32, {2, 1, 3}), b(DType::f32, {4, 1});
  const std::vector<float> av = {0, 1, 2, 3, 1, -1}, bv = {1, 2, -1, 0};
  std::copy(av.begin(), av.end(), a.data<float>());
  std::copy(bv.begin(), bv.end(), b.data<float>());
  const std::map<std::string, std::function<bool(float, float)>> modes = {
      {"eq", std::equal_to<float>()}, {"ne", std::not_equal_to<float>()}, {"lt", std::less<float>()},
      {"le", std::less_equal<float>()}, {"gt", std::greater<float>()},   {"ge", std::greater_equal<float>()}};
  for (const auto& [mode, cmp] : modes) {
    INFO(mode);
    GraphBuilder gb;
    gb.input("a", a).input("b", b).node("c", "Compare", {"a", "b"}, attrs({{"mode", mode}}));
    const Tensor y = gb.run();
    REQUIRE(y.dtype() == DType::i32);
    REQUIRE(y.shape() == Shape{2, 4, 3});
    for (int64_t i = 0; i < y.numel(); ++i) {
      const bool want = cmp(av[source_index(i, y.shape(), a.shape())], bv[source_index(i, y.shape(), b.shape())]);
      CHECK(y.data<int32_t>()[i] == int32_t(want));
    }
  }
  GraphBuilder bad;
  bad.input("a", a).input("b", b).node("c", "Compare", {"a", "b"}, attrs({{"mode", std::string("like")}}));
  CHECK_THROWS_MATCHES(bad.run(), pb::Error, ErrorAt(where("c", "Compare"), "unknown comparison \"like\""));
}

TEST_CASE("kernels: Where selects by an i32, i64 or f32 condition, the three operands broadcast", "[kernels]") {
  const Tensor a = counting(DType::f32, {3, 1}, 1, 10);       // [[10], [11], [12]]
  const Tensor b = counting(DType::f32, {2, 3, 4}, 0.5, -3);  // the full shape
  Tensor minus_inf(DType::f32, {});
  minus_inf.data<float>()[0] = -INFINITY;
  for (DType dtype : {DType::i32, DType::i64, DType::f32}) {
    INFO(pb::dtype_name(dtype));
    const Tensor cond = counting(dtype, {4}, 1, -1);  // -1, 0, 1, 2: false only at column 1
    GraphBuilder gb;
    gb.input("cond", cond).input("a", a).input("b", b).node("w", "Where", {"cond", "a", "b"});
    const Tensor y = gb.run();
    REQUIRE(y.shape() == Shape{2, 3, 4});
    for (int64_t i = 0; i < y.numel(); ++i) {
      const float want = i % 4 == 1 ? b.data<float>()[i] : a.data<float>()[source_index(i, y.shape(), a.shape())];
      CHECK(y.data<float>()[i] == want);
    }
  }
  // masked_fill(mask, -inf): a weight scalar where the mask holds.
  GraphBuilder fill;
  fill.input("mask", counting(DType::i32, {2, 3, 4})).weight("ninf", minus_inf).input("x", b).node("w", "Where", {"mask", "ninf", "x"});
  const Tensor y = fill.run();
  CHECK(y.data<float>()[0] == b.data<float>()[0]);
  CHECK(y.data<float>()[5] == -INFINITY);

  GraphBuilder wide;
  wide.input("cond", counting(DType::f32, {5})).input("a", a).input("b", b).node("w", "Where", {"cond", "a", "b"});
  CHECK_THROWS_MATCHES(wide.run(), pb::Error, ErrorAt(where("w", "Where"), "do not broadcast"));
}

TEST_CASE("kernels: Expand repeats dims of 1 and new leading dims, copies a batch from like, any dtype", "[kernels]") {
  const Tensor x = counting(DType::f32, {3, 1}, 1, 1);  // [[1], [2], [3]]
  GraphBuilder gb;
  gb.input("x", x).node("e", "Expand", {"x"}, attrs({{"shape", Ints{2, -1, 4}}}));
  Tensor y = gb.run();
  REQUIRE(y.shape() == Shape{2, 3, 4});
  for (int64_t i = 0; i < y.numel(); ++i) CHECK(y.data<float>()[i] == float(1 + (i / 4) % 3));

  // A class token [1, 1, D] to the batch of x [N, T, D], N known only when compiled.
  pb::ir::Graph g;
  g.inputs.push_back({"x", DType::f32, {-1, 5, 2}});
  g.weights["token"] = counting(DType::f32, {1, 1, 2}, 1, 7);
  g.nodes.push_back(pbtest::make_node("e", "Expand", {"token", "x"}, attrs({{"shape", Ints{0, -1, -1}}})));
  g.outputs = {"e"};
  const Tensor batch = counting(DType::f32, {3, 5, 2});
  pb::Network net(g, {{"x", batch.shape()}});
  net.run({&batch});
  REQUIRE(net.output(0).shape() == Shape{3, 1, 2});
  for (int64_t i = 0; i < 6; ++i) CHECK(net.output(0).data<float>()[i] == float(7 + i % 2));

  // Integer values too (ids), a run of the innermost dim at a time.
  GraphBuilder ids;
  ids.input("x", counting(DType::i64, {1, 3})).node("e", "Expand", {"x"}, attrs({{"shape", Ints{2, 3}}}));
  y = ids.run();
  CHECK(std::vector<int64_t>(y.data<int64_t>(), y.data<int64_t>() + 6) == std::vector<int64_t>{0, 1, 2, 0, 1, 2});

  GraphBuilder bad;
  bad.input("x", x).node("e", "Expand", {"x"}, attrs({{"shape", Ints{2, 4}}}));
  CHECK_THROWS_MATCHES(bad.run(), pb::Error, ErrorAt(where("e", "Expand"), "x [3, 1] cannot expand to [2, 4]"));
  GraphBuilder unlike;
  unlike.input("x", x).node("e", "Expand", {"x"}, attrs({{"shape", Ints{0, 1}}}));
  CHECK_THROWS_MATCHES(unlike.run(), pb::Error, ErrorAt(where("e", "Expand"), "copies a dim of like, which is missing"));
  GraphBuilder leading;
  leading.input("x", x).node("e", "Expand", {"x"}, attrs({{"shape", Ints{-1, 3, 1}}}));
  CHECK_THROWS_MATCHES(leading.run(), pb::Error, ErrorAt(where("e", "Expand"), "-1 at dim 0 is not a size"));
}
