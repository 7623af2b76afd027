// YAML suites (host/suite.h), case planning (host/runner.h) and comparison (host/compare.h).
#include <algorithm>
#include <cmath>
#include <limits>

#include "compare.h"
#include "runner.h"
#include "suite.h"
#include "test_util.h"

using pb::host::compare;
using pb::host::Comparison;
using pb::host::parse_suite;
using pb::host::Suite;
using pb::host::Tolerance;
using pbtest::ErrorAt;

namespace {

const char* kGood = R"(# a suite for the tests
suite: unit
defaults:
  tolerance: {atol: 1.0e-4, rtol: 2.0e-3}
  samples: 10
  seed: 7
fixtures:
  - id: a
    layer: dense
    spec: {input: 4, units: [3, 2], activation: relu, name: "007", flag: true, none: null, ratio: 0.5}
    planets: [pytorch, tensorflow]
  - id: b
    layer: conv
    planets: [pytorch]
    tolerance: {atol: 0.5}
    planet_tolerance:
      tensorflow: {rtol: 0.25}
    not_applicable:
      jax: no such layer in jax
    samples: 3
    seed: 9
)";

// Parses and returns the error (fails the test if there is none).
pb::Error suite_error(const std::string& yaml) {
  try {
    parse_suite(yaml, "s.yaml");
  } catch (const pb::Error& e) {
    return e;
  }
  FAIL("parsed without error:\n" << yaml);
  throw std::logic_error("unreachable");
}

const char* kPlanning = R"(suite: planning
fixtures:
  - {id: dense_a, layer: dense, planets: [pytorch, tensorflow]}
  - {id: dense_b, layer: dense, planets: [tensorflow]}
  - {id: conv_a,  layer: conv,  planets: [pytorch]}
  - {id: other,   layer: conv,  planets: [jax, pytorch]}
)";

std::vector<std::string> plan(const Suite& s, std::vector<std::string> planets, std::vector<std::string> layers, std::string glob) {
  pb::host::RunOptions o;
  o.planets = std::move(planets);
  o.layers = std::move(layers);
  o.fixture_glob = std::move(glob);
  std::vector<std::string> out;
  for (const auto& c : pb::host::plan_cases(s, o)) out.push_back(c.planet + "." + c.fixture->id);
  return out;
}

using Strings = std::vector<std::string>;

}  // namespace

// ------------------------------------------------------------------ suites

TEST_CASE("suite: a good suite with defaults and overrides", "[suite]") {
  const Suite s = parse_suite(kGood, "good.yaml");
  CHECK(s.name == "unit");
  CHECK(s.file == "good.yaml");
  REQUIRE(s.fixtures.size() == 2);

  const auto& a = s.fixtures[0];
  CHECK(a.id == "a");
  CHECK(a.layer == "dense");
  CHECK(a.planets == Strings{"pytorch", "tensorflow"});
  CHECK(a.tolerance.atol == 1e-4);
  CHECK(a.tolerance.rtol == 2e-3);
  CHECK(a.samples == 10);
  CHECK(a.seed == 7);
  CHECK(a.spec["input"] == 4);
  CHECK(a.spec["input"].is_number_integer());
  CHECK(a.spec["units"] == nlohmann::json::array({3, 2}));
  CHECK(a.spec["activation"] == "relu");
  CHECK(a.spec["name"] == "007");  // quoted: stays a string
  CHECK(a.spec["flag"] == true);
  CHECK(a.spec["none"].is_null());
  CHECK(a.spec["ratio"] == 0.5);
  CHECK(a.not_applicable.empty());
  CHECK(a.tolerance_for("tensorflow").atol == 1e-4);

  const auto& b = s.fixtures[1];
  CHECK(b.spec == nlohmann::json::object());
  CHECK(b.tolerance.atol == 0.5);     // overridden
  CHECK(b.tolerance.rtol == 2e-3);    // from the defaults
  CHECK(b.tolerance_for("pytorch").atol == 0.5);
  CHECK(b.tolerance_for("tensorflow").atol == 0.5);  // planet override starts from the fixture's
  CHECK(b.tolerance_for("tensorflow").rtol == 0.25);
  CHECK(b.not_applicable == std::map<std::string, std::string>{{"jax", "no such layer in jax"}});
  CHECK(b.samples == 3);
  CHECK(b.seed == 9);
}

TEST_CASE("suite: the bedrock suite loads", "[suite]") {
  const Suite s = pb::host::load_suite(PB_SOURCE_DIR "/config/suites/bedrock.yaml");
  CHECK(s.name == "bedrock");
  size_t dense = 0;
  for (const auto& f : s.fixtures) {
    INFO(f.id);
    CHECK_FALSE(f.planets.empty());
    CHECK(f.samples > 0);
    for (const auto& p : f.planets) {
      CHECK(f.tolerance_for(p).atol >= 0);
      CHECK(f.tolerance_for(p).rtol >= 0);
    }
    if (f.layer == "dense") {
      ++dense;
      CHECK(f.tolerance.atol == 1e-5);
      CHECK(f.tolerance.rtol == 1e-5);
      CHECK(std::find(f.planets.begin(), f.planets.end(), "pytorch") != f.planets.end());
    }
  }
  CHECK(dense == 12);
  const std::string missing = PB_SOURCE_DIR "/config/suites/missing.yaml";
  CHECK_THROWS_MATCHES(pb::host::load_suite(missing), pb::Error, ErrorAt(missing, "cannot open suite file"));
}

TEST_CASE("suite: unknown keys are errors with file, line and key path", "[suite]") {
  pb::Error e = suite_error("suite: x\nfixtures:\n  - id: a\n    layer: dense\n    planets: [pytorch]\n    colour: red\n");
  CHECK(e.where() == "s.yaml:6: fixtures[0].colour");
  CHECK_THAT(e.message(), Catch::StartsWith("unknown key (expected one of: id, layer,"));

  e = suite_error("suite: x\ncolour: red\nfixtures: []\n");
  CHECK(e.where() == "s.yaml:2: (suite).colour");

  e = suite_error("suite: x\ndefaults:\n  tolerance: {atol: 1, btol: 2}\nfixtures: []\n");
  CHECK(e.where() == "s.yaml:3: defaults.tolerance.btol");
  CHECK_THAT(e.message(), Catch::Contains("expected one of: atol, rtol"));
}

TEST_CASE("suite: missing required keys are named", "[suite]") {
  pb::Error e = suite_error("suite: x\nfixtures:\n  - layer: dense\n    planets: [pytorch]\n");
  CHECK(e.where() == "s.yaml:3: fixtures[0].id");
  CHECK(e.message() == "missing required key");

  e = suite_error("suite: x\nfixtures:\n  - id: a\n    planets: [pytorch]\n  - id: b\n    planets: [pytorch]\n");
  CHECK(e.where() == "s.yaml:3: fixtures[0].layer");

  e = suite_error("suite: x\nfixtures:\n  - {id: a, layer: dense}\n");
  CHECK(e.where() == "s.yaml:3: fixtures[0].planets");

  e = suite_error("suite: x\nfixtures:\n  - {id: a, layer: dense, planets: []}\n");
  CHECK(e.where() == "s.yaml:3: fixtures[0].planets");
  CHECK(e.message() == "expected a non-empty list of planets");

  e = suite_error("suite: x\n");
  CHECK_THAT(e.where(), Catch::StartsWith("s.yaml:") && Catch::EndsWith(": fixtures"));

  e = suite_error("fixtures: []\n");
  CHECK_THAT(e.where(), Catch::EndsWith(": suite"));

  e = suite_error("");
  CHECK(e.where() == "s.yaml");
  CHECK(e.message() == "empty suite file");
}

TEST_CASE("suite: duplicate ids are errors at the second id", "[suite]") {
  const pb::Error e = suite_error(
      "suite: x\n"
      "fixtures:\n"
      "  - {id: a, layer: dense, planets: [pytorch]}\n"
      "  - {id: b, layer: dense, planets: [pytorch]}\n"
      "  - {id: a, layer: conv, planets: [pytorch]}\n");
  CHECK(e.where() == "s.yaml:5: fixtures[2].id");
  CHECK(e.message() == "duplicate fixture id \"a\"");
}

TEST_CASE("suite: tolerances must be non-negative numbers", "[suite]") {
  pb::Error e = suite_error("suite: x\nfixtures:\n  - id: a\n    layer: dense\n    planets: [pytorch]\n    tolerance:\n      atol: abc\n");
  CHECK(e.where() == "s.yaml:7: fixtures[0].tolerance.atol");
  CHECK(e.message() == "expected a finite number");
  for (const char* v : {".nan", ".inf", "-.inf"}) {
    e = suite_error(std::string("suite: x\nfixtures:\n  - {id: a, layer: dense, planets: [pytorch], tolerance: {rtol: ") + v + "}}\n");
    CHECK(e.where() == "s.yaml:3: fixtures[0].tolerance.rtol");
    CHECK(e.message() == "expected a finite number");
  }

  e = suite_error("suite: x\nfixtures:\n  - id: a\n    layer: dense\n    planets: [pytorch]\n    tolerance: {atol: [1]}\n");
  CHECK(e.where() == "s.yaml:6: fixtures[0].tolerance.atol");

  e = suite_error("suite: x\nfixtures:\n  - id: a\n    layer: dense\n    planets: [pytorch]\n    tolerance: {atol: -1.0e-5}\n");
  CHECK(e.where() == "s.yaml:6: fixtures[0].tolerance");
  CHECK(e.message() == "tolerances must be >= 0");

  e = suite_error("suite: x\nfixtures:\n  - id: a\n    layer: dense\n    planets: [pytorch]\n    planet_tolerance:\n      jax: {rtol: -1}\n");
  CHECK(e.where() == "s.yaml:7: fixtures[0].planet_tolerance.jax");

  e = suite_error("suite: x\ndefaults: {samples: many}\nfixtures: [{id: a}]\n");
  CHECK(e.where() == "s.yaml:2: defaults.samples");
  CHECK(e.message() == "expected an integer");

  e = suite_error("suite: x\nfixtures:\n  - {id: a, layer: dense, planets: [pytorch], samples: 0}\n");
  CHECK(e.where() == "s.yaml:3: fixtures[0].samples");
  CHECK(e.message() == "must be > 0");
}

TEST_CASE("suite: invalid YAML is reported with its line", "[suite]") {
  pb::Error e = suite_error("suite: x\nfixtures:\n  - {id: a, layer: dense\n");
  CHECK_THAT(e.where(), Catch::StartsWith("s.yaml:"));
  CHECK_THAT(e.message(), Catch::StartsWith("invalid YAML: "));

  e = suite_error("suite: x\nfixtures:\n  - id: a\n   bad indentation: here\n");
  CHECK_THAT(e.where(), Catch::StartsWith("s.yaml:"));
  CHECK_THAT(e.message(), Catch::StartsWith("invalid YAML: "));

  e = suite_error("- just\n- a list\n");
  CHECK(e.where() == "s.yaml:1: (suite)");
  CHECK(e.message() == "expected a mapping");
}

TEST_CASE("suite: aliases that contain themselves or expand exponentially are refused, fast", "[suite]") {
  // A self-referencing alias once crashed the loader with a stack overflow.
  pb::Error e = suite_error("suite: x\nfixtures:\n  - &f {id: f1, layer: dense, planets: [x], spec: {self: *f}}\n");
  CHECK_THAT(e.where(), Catch::StartsWith("s.yaml:3: fixtures[0].spec.self"));
  CHECK_THAT(e.message(), Catch::Contains("nested deeper than 64 levels"));
  // "Billion laughs" in a spec: ten levels of ten aliases each would be 10^10 values.
  std::string yaml = "suite: x\nfixtures:\n  - id: a\n    layer: dense\n    planets: [x]\n    spec:\n";
  yaml += "      l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n";
  for (int i = 1; i < 10; ++i) {
    const std::string prev = "*l" + std::to_string(i - 1);
    yaml += "      l" + std::to_string(i) + ": &l" + std::to_string(i) + " [" + prev;
    for (int k = 1; k < 10; ++k) yaml += ", " + prev;
    yaml += "]\n";
  }
  e = suite_error(yaml);
  CHECK_THAT(e.where(), Catch::Contains("fixtures[0].spec"));
  CHECK_THAT(e.message(), Catch::Contains("expands to more than 100000 values"));
}

TEST_CASE("suite: keys are plain strings, each once; fixtures is not empty", "[suite]") {
  pb::Error e = suite_error("suite: x\nfixtures:\n  - {id: a, layer: dense, planets: [x], spec: {[1, 2]: v}}\n");
  CHECK(e.where() == "s.yaml:3: fixtures[0].spec");
  CHECK(e.message() == "a mapping key must be a plain string, not a list");
  e = suite_error("suite: x\nfixtures:\n  - {id: a, layer: dense, planets: [x], samples: 3, samples: 4}\n");
  CHECK(e.where() == "s.yaml:3: fixtures[0].samples");
  CHECK(e.message() == "duplicate key");
  e = suite_error("suite: x\nfixtures:\n  - {id: a, layer: dense, planets: [x], spec: {units: [3], units: [4]}}\n");
  CHECK(e.where() == "s.yaml:3: fixtures[0].spec.units");
  e = suite_error("suite: x\nsuite: y\nfixtures: [{id: a}]\n");
  CHECK(e.where() == "s.yaml:2: (suite).suite");
  CHECK(e.message() == "duplicate key");
  e = suite_error("suite: x\nfixtures: []\n");
  CHECK(e.where() == "s.yaml:2: fixtures");
  CHECK(e.message() == "expected a non-empty list of fixtures");
}

// ------------------------------------------------------------------ planning

TEST_CASE("suite: plan_cases groups by planet and filters", "[suite]") {
  const Suite s = parse_suite(kPlanning, "plan.yaml");
  CHECK(plan(s, {}, {}, "") ==
        Strings{"pytorch.dense_a", "pytorch.conv_a", "pytorch.other", "tensorflow.dense_a", "tensorflow.dense_b", "jax.other"});
  CHECK(plan(s, {"tensorflow"}, {}, "") == Strings{"tensorflow.dense_a", "tensorflow.dense_b"});
  CHECK(plan(s, {"jax", "tensorflow"}, {}, "") == Strings{"tensorflow.dense_a", "tensorflow.dense_b", "jax.other"});
  CHECK(plan(s, {}, {"conv"}, "") == Strings{"pytorch.conv_a", "pytorch.other", "jax.other"});
  CHECK(plan(s, {}, {}, "dense_*") == Strings{"pytorch.dense_a", "tensorflow.dense_a", "tensorflow.dense_b"});
  CHECK(plan(s, {"pytorch"}, {"dense"}, "*_a") == Strings{"pytorch.dense_a"});
  CHECK(plan(s, {}, {}, "nothing*").empty());  // a glob may match nothing; the CLI reports it
}

TEST_CASE("suite: a filter that names nothing is an error naming the option", "[suite]") {
  const Suite s = parse_suite(kPlanning, "plan.yaml");
  CHECK_THROWS_MATCHES(plan(s, {"sklearn"}, {}, ""), pb::Error,
                       ErrorAt("--planet", "no fixture has planet \"sklearn\" (this suite has: jax, pytorch, tensorflow)"));
  CHECK_THROWS_MATCHES(plan(s, {"pytorch", "sklearn"}, {}, ""), pb::Error, ErrorAt("--planet", "\"sklearn\""));
  CHECK_THROWS_MATCHES(plan(s, {}, {"lstm"}, ""), pb::Error, ErrorAt("--layer", "no fixture has layer \"lstm\" (this suite has: conv, dense)"));
}

// ------------------------------------------------------------------ compare

TEST_CASE("compare: identical tensors are exact", "[compare]") {
  const pb::Tensor a = pbtest::f32({2, 2}, {1, -2, 3.5f, 0});
  const Comparison c = compare(a, a.clone(), Tolerance{0, 0});
  CHECK(c.exact);
  CHECK(c.within);
  CHECK(c.violations == 0);
  CHECK(c.max_abs == 0);
  CHECK(c.max_rel == 0);
  CHECK(c.mismatch.empty());
}

TEST_CASE("compare: small differences are within tolerance, not exact", "[compare]") {
  const pb::Tensor native = pbtest::f32({3}, {1, 1000, -2});
  const pb::Tensor bridged = pbtest::f32({3}, {1.000001f, 1000.005f, -2});
  const Comparison c = compare(bridged, native, Tolerance{1e-5, 1e-5});
  CHECK_FALSE(c.exact);
  CHECK(c.within);
  CHECK(c.violations == 0);
  CHECK(c.max_abs == Approx(0.005).margin(1e-4));
  CHECK(c.max_rel == Approx(5e-6).margin(1e-6));
  CHECK(c.worst_index == "[1]");  // largest diff relative to its bound

  // f32 against f64 of the same values compares values, not bytes.
  const Comparison cast = compare(native, native.cast(pb::DType::f64), Tolerance{0, 0});
  CHECK(cast.exact);
  CHECK(cast.within);
}

TEST_CASE("compare: differences outside tolerance are counted and located", "[compare]") {
  const pb::Tensor native = pbtest::f32({2, 3}, {0, 1, 2, 3, 4, 5});
  const pb::Tensor bridged = pbtest::f32({2, 3}, {0, 1.1f, 2, 3, 4, 5.5f});
  const Comparison c = compare(bridged, native, Tolerance{1e-5, 1e-5});
  CHECK_FALSE(c.exact);
  CHECK_FALSE(c.within);
  CHECK(c.violations == 2);
  CHECK(c.worst == 5);
  CHECK(c.worst_index == "[1, 2]");
  CHECK(c.worst_native == 5);
  CHECK(c.worst_bridged == 5.5);
  CHECK(c.max_abs == Approx(0.5));
  CHECK(c.max_rel == Approx(0.1).epsilon(1e-5));
  CHECK(pb::host::unravel(5, {2, 3}) == "[1, 2]");
  CHECK(pb::host::unravel(23, {2, 3, 4}) == "[1, 2, 3]");
  CHECK(pb::host::unravel(0, {}) == "[]");
}

// A deep model's float32 result is itself far from exact: against the float64 result, an element
// outside the fixed bound passes when planetbridge is within kReferenceFactor of the planet's
// own largest error (plus atol), and fails beyond it.
TEST_CASE("compare: a float64 reference bounds the error by the planet's own", "[compare]") {
  pb::Tensor reference(pb::DType::f64, {3});
  const double r[] = {1.0, 2.0, 3.0};
  std::copy(r, r + 3, reference.data<double>());
  const pb::Tensor native = pbtest::f32({3}, {1.0f, 2.0001f, 3.0f});  // the planet is 1e-4 off at [1]
  const Tolerance tol{1e-5, 1e-5};

  const pb::Tensor close = pbtest::f32({3}, {1.0003f, 2.0f, 3.0f});  // 3e-4 from both: outside 2e-5
  CHECK_FALSE(compare(close, native, tol).within);
  const Comparison rescued = compare(close, native, tol, &reference);
  CHECK(rescued.within);
  CHECK(rescued.has_reference);
  CHECK(rescued.rescued == 2);  // [0], and [1] where the bridge is exact and the planet is off
  CHECK(rescued.planet_vs_reference == Approx(1e-4).epsilon(1e-2));
  CHECK(rescued.bridged_vs_reference == Approx(3e-4).epsilon(1e-2));
  CHECK(rescued.reference_bound == Approx(4e-4 + 1e-5).epsilon(1e-2));

  const pb::Tensor far = pbtest::f32({3}, {1.0006f, 2.0f, 3.0f});  // 6e-4 > 4 x 1e-4 + 1e-5
  const Comparison failed = compare(far, native, tol, &reference);
  CHECK_FALSE(failed.within);
  CHECK(failed.violations == 1);
  CHECK(failed.worst_index == "[0]");

  // A planet that is exact in float32 leaves only atol: nothing more is rescued.
  const pb::Tensor exact = pbtest::f32({3}, {1.0f, 2.0f, 3.0f});
  CHECK_FALSE(compare(close, exact, tol, &reference).within);
}

TEST_CASE("compare: outputs far below atol are flagged degenerate", "[compare]") {
  const Tolerance tol{1e-5, 1e-5};
  const Comparison tiny = compare(pbtest::f32({2}, {3e-9f, -1e-6f}), pbtest::f32({2}, {2e-9f, -2e-6f}), tol);
  CHECK(tiny.within);
  CHECK(tiny.degenerate);
  CHECK(tiny.max_native == Approx(2e-6));
  CHECK_FALSE(compare(pbtest::f32({2}, {0.5f, 1e-9f}), pbtest::f32({2}, {0.5f, 0.0f}), tol).degenerate);
}

TEST_CASE("compare: NaN equals NaN, and NaN against a number fails", "[compare]") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const pb::Tensor a = pbtest::f32({3}, {nan, inf, 1});
  const Comparison same = compare(a, a.clone(), Tolerance{1e-5, 1e-5});
  CHECK(same.within);
  CHECK(same.exact);
  CHECK(same.violations == 0);
  CHECK(same.max_abs == 0);

  const pb::Tensor b = pbtest::f32({3}, {0, inf, 1});
  const Comparison one_side = compare(a, b, Tolerance{1e-5, 1e-5});
  CHECK_FALSE(one_side.within);
  CHECK(one_side.violations == 1);
  CHECK(one_side.worst_index == "[0]");
  CHECK(std::isinf(one_side.max_abs));
  const Comparison other_side = compare(b, a, Tolerance{1e-5, 1e-5});
  CHECK_FALSE(other_side.within);
  CHECK(other_side.violations == 1);
}

// With an infinite native value the bound atol + rtol*|native| is infinite; it must not accept
// a finite value or the opposite infinity.
TEST_CASE("compare: an infinite native value only matches the same infinity", "[compare]") {
  const float inf = std::numeric_limits<float>::infinity();
  const pb::Tensor native = pbtest::f32({2}, {inf, 1});
  CHECK(compare(pbtest::f32({2}, {-inf, 1}), native, Tolerance{1e-5, 1e-5}).violations == 1);
  CHECK(compare(pbtest::f32({2}, {0, 1}), native, Tolerance{1e-5, 1e-5}).violations == 1);
  CHECK_FALSE(compare(pbtest::f32({2}, {3e38f, 1}), native, Tolerance{1e-5, 1e-5}).within);
}

TEST_CASE("compare: shape and dtype mismatches are reported, not compared", "[compare]") {
  const Comparison c = compare(pbtest::f32({2}, {1, 2}), pbtest::f32({3}, {1, 2, 3}), Tolerance{});
  CHECK(c.mismatch == "shape [2] vs native [3]");
  CHECK_FALSE(c.within);
  CHECK_FALSE(c.exact);
  const Comparison d = compare(pbtest::f32({2}, {1, 2}), pb::Tensor(pb::DType::i64, {2}), Tolerance{});
  CHECK(d.mismatch == "dtype f32 vs native i64");
  CHECK_FALSE(d.within);
}
