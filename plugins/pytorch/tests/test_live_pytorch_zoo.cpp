// The zoo suite (config/suites/zoo.yaml), live: real torchvision models as users take them,
// every one EXACT or PASS (deep ones judged against torch's own float64 result), reloaded bit
// for bit, no output degenerate, and each judged against a float64 reference. Skipped
// (PB-SKIP) without torch or torchvision.
#include "plugin_loader.h"
#include "runner.h"
#include "suite.h"
#include "test_util.h"

TEST_CASE("live zoo: every torchvision model passes against torch's float64 reference", "[live][zoo]") {
  PBTEST_SKIP_IF(pbtest::python_missing("torch"), "the live zoo needs torch");
  PBTEST_SKIP_IF(pbtest::python_missing("torchvision"), "the live zoo needs torchvision (apt install python3-torchvision)");
  pbtest::TempDir tmp;
  const pb::host::Suite suite = pb::host::load_suite(PB_SOURCE_DIR "/config/suites/zoo.yaml");
  pb::host::PluginRegistry plugins;
  REQUIRE(plugins.load(PB_PLANET_PLUGIN));
  pb::host::RunOptions opt;
  opt.planets = {"pytorch"};
  opt.out_dir = tmp.file("data");
  opt.capture_timeout_s = 300;
  const std::vector<pb::host::CaseResult> results = pb::host::run_suite(suite, plugins, opt);
  REQUIRE(results.size() == suite.fixtures.size());
  for (const pb::host::CaseResult& r : results) {
    INFO(r.name() << ": " << pb::host::verdict_name(r.verdict) << " " << r.message << " " << r.worst);
    CHECK((r.verdict == pb::host::Verdict::EXACT || r.verdict == pb::host::Verdict::PASS));
    CHECK(r.reload_identical);
    for (const pb::host::OutputCheck& o : r.outputs) {
      INFO(o.name << ": max|native| " << o.vs_native.max_native);
      CHECK_FALSE(o.vs_native.degenerate);
      CHECK(o.vs_native.has_reference);
    }
  }
}
