// The decoders' shared helpers (plugins/sdk/include/planetbridge/decoder_util.h).
#include <cstdlib>

#include "planetbridge/decoder_util.h"
#include "test_util.h"

using nlohmann::json;
using pb::DType;
using pb::Shape;
using pb::Tensor;
using pbtest::ErrorAt;

TEST_CASE("decoder util: permuted copies any dtype with its axes permuted", "[decoder_util]") {
  // A 2 x 3 matrix, transposed.
  Tensor m(DType::f64, {2, 3});
  for (int64_t i = 0; i < 6; ++i) m.data<double>()[i] = double(i);
  const Tensor t = pb::permuted(m, {1, 0});
  REQUIRE(t.dtype() == DType::f64);
  REQUIRE(t.shape() == Shape{3, 2});
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t c = 0; c < 3; ++c) CHECK(t.data<double>()[c * 2 + r] == m.data<double>()[r * 3 + c]);

  // A conv kernel [k0, k1, I, O] -> [O, I, k0, k1], element by element.
  const Shape ks = {2, 3, 4, 5};
  Tensor k(DType::i32, ks);
  for (int64_t i = 0; i < k.numel(); ++i) k.data<int32_t>()[i] = int32_t(i);
  const Tensor w = pb::permuted(k, pb::kernel_oi_first_perm(4));
  REQUIRE(w.shape() == Shape{5, 4, 2, 3});
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t i = 0; i < 4; ++i)
        for (int64_t o = 0; o < 5; ++o)
          CHECK(w.data<int32_t>()[((o * 4 + i) * 2 + a) * 3 + b] == k.data<int32_t>()[((a * 3 + b) * 4 + i) * 5 + o]);

  // The identity and a scalar copy; the source is not shared.
  const Tensor same = pb::permuted(m, {0, 1});
  CHECK(same.bit_equal(m));
  CHECK(same.raw() != m.raw());
  Tensor s(DType::f32, {});
  s.data<float>()[0] = 2.5f;
  CHECK(pb::permuted(s, {}).bit_equal(s));
  CHECK(pb::permuted(Tensor(DType::f32, {0, 4}), {1, 0}).shape() == Shape{4, 0});

  CHECK_THROWS_MATCHES(pb::permuted(m, {0, 0}), pb::Error, ErrorAt("permuted", "perm [0, 0] is not a permutation of the axes of [2, 3]"));
  CHECK_THROWS_MATCHES(pb::permuted(m, {0}), pb::Error, ErrorAt("permuted", "not a permutation"));
}

TEST_CASE("decoder util: layout perms, SAME padding, int-or-list, attrs, nodes", "[decoder_util]") {
  CHECK(pb::channels_first_perm(4) == std::vector<int64_t>{0, 3, 1, 2});
  CHECK(pb::channels_last_perm(4) == std::vector<int64_t>{0, 2, 3, 1});
  CHECK(pb::channels_first_perm(3) == std::vector<int64_t>{0, 2, 1});
  CHECK(pb::channels_last_perm(5) == std::vector<int64_t>{0, 2, 3, 4, 1});
  CHECK(pb::kernel_oi_first_perm(3) == std::vector<int64_t>{2, 1, 0});

  // out = ceil(in / s); total = max((out - 1) s + (k - 1) d + 1 - in, 0).
  CHECK(pb::same_padding_total(5, 3, 1, 1) == 2);
  CHECK(pb::same_padding_total(6, 3, 2, 1) == 1);
  CHECK(pb::same_padding_total(5, 3, 2, 1) == 2);
  CHECK(pb::same_padding_total(5, 3, 1, 2) == 4);
  CHECK(pb::same_padding_total(5, 1, 3, 1) == 0);  // (2 - 1) 3 + 1 - 5 < 0: none

  const json doc = {{"k", 3}, {"ks", {2, 4}}, {"bad", {1, 2, 3}}};
  const pb::JsonRef j(doc, "model");
  CHECK(pb::int_or_list(j["k"], 2) == std::vector<int64_t>{3, 3});
  CHECK(pb::int_or_list(j["ks"], 2) == std::vector<int64_t>{2, 4});
  CHECK_THROWS_MATCHES(pb::int_or_list(j["bad"], 2), pb::Error, ErrorAt("model.bad", "expected 2 values, got 3"));

  const pb::ir::Attrs a = pb::window_attrs({1, 2}, {1, 1}, {0, 1}, {1, 0});
  CHECK(a.ints("strides") == std::vector<int64_t>{1, 2});
  CHECK(a.ints("pads_end") == std::vector<int64_t>{1, 0});
  CHECK(pb::attrs_of({{"axis", int64_t(-1)}, {"eps", 1e-5}}).f("eps") == 1e-5);

  const pb::Tensor ones = pb::filled({2, 3}, 1.0);
  CHECK(ones.dtype() == pb::DType::f32);
  CHECK(pbtest::values(ones) == std::vector<float>(6, 1.f));
  CHECK(pb::filled({2}, 0.25, pb::DType::f64).data<double>()[1] == 0.25);

  pb::Stream s;
  s.doc = {{"model", {{"format", "torch.fx"}}}};
  CHECK(pb::model_of(s, "torch.fx").path() == "model");
  CHECK_THROWS_MATCHES(pb::model_of(s, "keras"), pb::Error, ErrorAt("model.format", "expected \"keras\", got \"torch.fx\""));
  s.planet = "p";
  s.planet_version = "1";
  s.model_id = "m";
  CHECK(pb::stream_metadata(s) == std::map<std::string, std::string>{{"planet", "p"}, {"planet_version", "1"}, {"model_id", "m"}});
}

TEST_CASE("decoder util: the capture command's program comes from the environment when set", "[decoder_util]") {
  ::unsetenv("PB_TEST_CAPTURE_PROGRAM");
  pb::CaptureCommand c = pb::serve_command("PB_TEST_CAPTURE_PROGRAM", "/usr/bin/python3", "/x/capture.py");
  CHECK(c.argv == std::vector<std::string>{"/usr/bin/python3", "/x/capture.py", "--serve"});
  CHECK(c.env.empty());
  ::setenv("PB_TEST_CAPTURE_PROGRAM", "/opt/py", 1);
  c = pb::serve_command("PB_TEST_CAPTURE_PROGRAM", "/usr/bin/python3", "/x/capture.py");
  CHECK(c.argv == std::vector<std::string>{"/opt/py", "/x/capture.py", "--serve"});
  ::unsetenv("PB_TEST_CAPTURE_PROGRAM");
}
