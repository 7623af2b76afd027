// The whole bedrock suite, live, one planet per test case (ctest runs them side by side): every
// case EXACT or PASS with a bit-identical reload and no degenerate output, or SKIP because the
// suite marks it not applicable. A planet whose engine is missing here is a SKIP warning, never a silent pass.
#include <algorithm>

#include "runner.h"
#include "suite.h"
#include "test_util.h"

namespace {

const std::string kSuite = PB_SOURCE_DIR "/config/suites/bedrock.yaml";

void run_planet(const std::string& planet) {
  PBTEST_SKIP_IF(pbtest::planet_unavailable(planet), "live " + planet + " suite");
  pbtest::TempDir tmp;
  const pb::host::Suite suite = pb::host::load_suite(kSuite);
  pb::host::PluginRegistry plugins;
  REQUIRE(plugins.load(pbtest::plugin_path(planet)));
  pb::host::RunOptions opt;
  opt.planets = {planet};
  opt.out_dir = tmp.file("data");
  opt.capture_timeout_s = 300;
  const size_t planned = pb::host::plan_cases(suite, opt).size();
  REQUIRE(planned >= 12);
  const std::vector<pb::host::CaseResult> results = pb::host::run_suite(suite, plugins, opt);
  REQUIRE(results.size() == planned);
  size_t ran = 0, not_applicable = 0;
  for (const pb::host::CaseResult& r : results) {
    INFO(r.name() << ": " << pb::host::verdict_name(r.verdict) << " " << r.message << " " << r.worst);
    CHECK(!r.engine.empty());
    if (r.verdict == pb::host::Verdict::SKIP) {
      CHECK(r.message.rfind("not applicable: ", 0) == 0);
      ++not_applicable;
      continue;
    }
    CHECK((r.verdict == pb::host::Verdict::EXACT || r.verdict == pb::host::Verdict::PASS));
    CHECK(r.reload_identical);
    // An output far below atol passes whatever the bridge computes: no fixture of ours may be one.
    for (const pb::host::OutputCheck& o : r.outputs) {
      INFO(o.name << ": max|native| " << o.vs_native.max_native);
      CHECK_FALSE(o.vs_native.degenerate);
    }
    ++ran;
  }
  // Only the cases the suite marks not applicable to this planet may skip.
  size_t marked = 0;
  for (const pb::host::Fixture& f : suite.fixtures)
    marked += f.not_applicable.count(planet) && std::find(f.planets.begin(), f.planets.end(), planet) != f.planets.end();
  CHECK(not_applicable == marked);
  CHECK(ran + not_applicable == planned);
}

}  // namespace

TEST_CASE("live bedrock: every pytorch case passes", "[live][bedrock]") { run_planet("pytorch"); }
TEST_CASE("live bedrock: every tensorflow case passes", "[live][bedrock]") { run_planet("tensorflow"); }
TEST_CASE("live bedrock: every jax case passes", "[live][bedrock]") { run_planet("jax"); }
TEST_CASE("live bedrock: every sklearn case passes or is not applicable", "[live][bedrock]") { run_planet("sklearn"); }
