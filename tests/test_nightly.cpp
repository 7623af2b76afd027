// The nightly job end to end (docs/nightly.md): a suite run twice with no change reports no
// regression; the same run with a deliberately broken kernel plugged in reports exactly the
// cases that use it. Also shards balanced by measured durations, and "slower" judged on the
// steady-state runs' median.
#include <catch2/catch.hpp>

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <filesystem>
#include <set>
#include <thread>

#include "../layers/kernels/kernel.h"
#include "catalog.h"
#include "diff.h"
#include "planetbridge/entity.h"
#include "plugin_loader.h"
#include "run_store.h"
#include "runner.h"
#include "suite.h"
#include "test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;
using pb::host::CaseResult;
using pb::host::PlannedCase;
using pb::host::RunOptions;

namespace {

// A Softmax that is off by 1e-3: the real kernel, then every output element + 1e-3 in place.
std::unique_ptr<pb::layers::Kernel> broken_softmax(const pb::ir::Node& node, pb::layers::CompileContext& ctx) {
  auto seq = std::make_unique<pb::layers::SequenceKernel>();
  seq->add(pb::layers::kernel_table().at("Softmax")(node, ctx));
  dnnl::memory out = ctx.memory(node.outputs.at(0));
  const dnnl::eltwise_forward::primitive_desc pd(
      {dnnl::prop_kind::forward_inference, dnnl::algorithm::eltwise_linear, out.get_desc(), 1.0f, 1e-3f}, ctx.engine());
  seq->add(std::make_unique<pb::layers::PrimitiveKernel>(dnnl::eltwise_forward(pd), std::map<int, dnnl::memory>{{DNNL_ARG_SRC, out}, {DNNL_ARG_DST, out}}));
  return seq;
}

std::vector<json> batch_rows(const std::string& data, const std::string& batch) {
  pb::host::RunStore store(data);
  std::string label;
  return pb::host::diff_side(store.catalog(), batch, "", "", &label);
}

std::set<std::string> names(const json& rows) {
  std::set<std::string> out;
  for (const json& r : rows) out.insert(r["planet"].get<std::string>() + "." + r["fixture"].get<std::string>());
  return out;
}

pb::host::Suite fake_suite(size_t fixtures) {
  std::string yaml = "suite: shards\nfixtures:\n";
  for (size_t i = 0; i < fixtures; ++i) yaml += "  - {id: f" + std::to_string(i) + ", layer: dense, spec: {}, planets: [alpha, beta]}\n";
  return pb::host::parse_suite(yaml, "shards.yaml");
}

std::vector<std::vector<size_t>> split(const pb::host::Suite& suite, RunOptions opt, size_t shards) {
  std::vector<std::vector<size_t>> out;
  opt.shards = shards;
  for (size_t s = 1; s <= shards; ++s) {
    opt.shard = s;
    out.emplace_back();
    for (const PlannedCase& c : pb::host::plan_cases(suite, opt)) out.back().push_back(c.index);
  }
  return out;
}

json summary(const std::string& fixture, const std::string& verdict, double run_median_ms) {
  json r = {{"planet", "pytorch"}, {"fixture", fixture}, {"verdict", verdict}, {"max_abs", 1e-7}, {"engine", "torch 1"}};
  if (run_median_ms > 0) r["run_median_ms"] = run_median_ms;
  return r;
}

}  // namespace

TEST_CASE("nightly: no change gives no regression; a broken kernel regresses exactly the cases that use it", "[nightly][live]") {
  PBTEST_SKIP_IF(pbtest::planet_unavailable("sklearn"), "the nightly test runs the sklearn planet live");
  pbtest::TempDir tmp;
  const pb::host::Suite suite = pb::host::load_suite(PB_SOURCE_DIR "/config/suites/bedrock.yaml");
  const pb::host::PluginRegistry plugins = pb::host::PluginRegistry::discover({fs::path(pbtest::plugin_path("sklearn")).parent_path().string()});
  RunOptions opt;
  opt.planets = {"sklearn"};
  opt.layers = {"sklearn"};
  opt.out_dir = tmp.file("data");
  opt.repeats = 3;

  std::string last_night, tonight, broken;
  const std::vector<CaseResult> first = pb::host::run_suite(suite, plugins, opt, &last_night);
  pb::host::run_suite(suite, plugins, opt, &tonight);
  for (const CaseResult& r : first) {
    INFO(r.name() << ": " << r.message);
    REQUIRE(r.ok());
    CHECK(r.wall_ms > 0);
    if (r.verdict == pb::host::Verdict::SKIP) continue;
    CHECK(r.run_repeats == 3);
    CHECK(r.run_min_ms <= r.run_median_ms);
  }
  const json same = pb::host::diff_runs(batch_rows(opt.out_dir, last_night), batch_rows(opt.out_dir, tonight));
  CHECK(same["regressions"].empty());
  CHECK_FALSE(same["regressed"].get<bool>());
  CHECK(same["new"].empty());
  CHECK(same["removed"].empty());

  std::vector<CaseResult> with_bug;
  {
    pb::layers::KernelOverride bug("Softmax", broken_softmax);
    with_bug = pb::host::run_suite(suite, plugins, opt, &broken);
  }
  // The affected cases, from what each run compiled: its checkpoint's graph has a Softmax.
  std::set<std::string> uses_softmax, all;
  for (const CaseResult& r : with_bug) {
    all.insert(r.name());
    if (r.entity_path.empty()) continue;
    const pb::entity::Loaded loaded = pb::entity::load(r.entity_path);
    if (std::any_of(loaded.graph.nodes.begin(), loaded.graph.nodes.end(), [](const pb::ir::Node& n) { return n.op == "Softmax"; }))
      uses_softmax.insert(r.name());
  }
  REQUIRE(uses_softmax.size() >= 2);
  REQUIRE(uses_softmax.size() < all.size());
  const json bad = pb::host::diff_runs(batch_rows(opt.out_dir, tonight), batch_rows(opt.out_dir, broken));
  CHECK(bad["regressed"].get<bool>());
  CHECK(names(bad["regressions"]) == uses_softmax);
  for (const json& r : bad["regressions"]) CHECK_THAT(r["why"].get<std::string>(), Catch::Contains("-> FAIL"));

  // The override is gone with its guard: the next night is fixed.
  std::string mended;
  pb::host::run_suite(suite, plugins, opt, &mended);
  const json fixed = pb::host::diff_runs(batch_rows(opt.out_dir, broken), batch_rows(opt.out_dir, mended));
  CHECK(fixed["regressions"].empty());
  CHECK(names(fixed["fixed"]) == uses_softmax);
}

TEST_CASE("nightly: shards balanced by measured durations cover the plan once, deterministically", "[nightly]") {
  const pb::host::Suite suite = fake_suite(10);  // 20 cases: f0..f9 on alpha, then on beta
  RunOptions opt;
  // Without durations: every Nth case.
  const auto by_count = split(suite, opt, 3);
  CHECK(by_count[0] == std::vector<size_t>{0, 3, 6, 9, 12, 15, 18});

  // One long case and many short ones: the long one has a shard to itself.
  opt.durations = {{"alpha/f0", 1000}};
  for (size_t i = 1; i < 10; ++i) opt.durations["alpha/f" + std::to_string(i)] = 10;
  for (size_t i = 0; i < 10; ++i) opt.durations["beta/f" + std::to_string(i)] = 20;
  const auto by_time = split(suite, opt, 3);
  CHECK(by_time == split(suite, opt, 3));  // the same on every runner
  std::vector<size_t> seen;
  for (const auto& shard : by_time) {
    CHECK(std::is_sorted(shard.begin(), shard.end()));  // grouped by planet as planned
    seen.insert(seen.end(), shard.begin(), shard.end());
  }
  std::sort(seen.begin(), seen.end());
  std::vector<size_t> every(20);
  for (size_t i = 0; i < every.size(); ++i) every[i] = i;
  CHECK(seen == every);
  CHECK(by_time[0] == std::vector<size_t>{0});
  auto load = [&](const std::vector<size_t>& shard) {
    double ms = 0;
    for (size_t i : shard) ms += i < 10 ? opt.durations["alpha/f" + std::to_string(i)] : 20.0;
    return ms;
  };
  CHECK(std::abs(load(by_time[1]) - load(by_time[2])) <= 20);

  // A case never measured counts as the median of those that were.
  opt.durations.erase("beta/f9");
  const auto partial = split(suite, opt, 3);
  size_t covered = 0;
  for (const auto& shard : partial) covered += shard.size();
  CHECK(covered == 20);

  CHECK(pb::host::durations_basis({}) == "count");
  CHECK(pb::host::durations_basis(opt.durations) != pb::host::durations_basis({{"alpha/f0", 1000}}));
  CHECK(pb::host::durations_basis(opt.durations).rfind("crc32:", 0) == 0);
  const auto d = pb::host::shard_durations({{{"planet", "alpha"}, {"fixture", "f0"}, {"wall_ms", 5.0}},
                                            {{"planet", "alpha"}, {"fixture", "f0"}, {"wall_ms", 9.0}},  // older: the first is kept
                                            {{"planet", "alpha"}, {"fixture", "f1"}}});                  // never measured
  CHECK(d == std::map<std::string, double>{{"alpha/f0", 5.0}});
}

TEST_CASE("nightly: slower is judged on the steady run's median, reported apart, a regression only when asked", "[nightly]") {
  const std::vector<json> before = {summary("a", "PASS", 1.0), summary("b", "PASS", 0.01), summary("c", "PASS", 0), summary("d", "PASS", 4.0)};
  const std::vector<json> after = {summary("a", "PASS", 2.0), summary("b", "PASS", 0.05), summary("c", "PASS", 9.0), summary("d", "PASS", 5.0)};
  const json d = pb::host::diff_runs(before, after);
  REQUIRE(d["slower"].size() == 1);  // b grew 5x by 0.04 ms only; c has no earlier time; d grew 1.25x
  CHECK(d["slower"][0]["fixture"] == "a");
  CHECK_THAT(d["slower"][0]["why"].get<std::string>(), Catch::Contains("1 ms -> 2 ms"));
  CHECK(d["regressions"].empty());

  pb::host::DiffOptions strict;
  strict.fail_on_slower = true;
  strict.slower_factor = 1.2;
  const json s = pb::host::diff_runs(before, after, strict);
  CHECK(names(s["slower"]) == std::set<std::string>{"pytorch.a", "pytorch.d"});
  CHECK(names(s["regressions"]) == names(s["slower"]));
  CHECK(s["regressed"].get<bool>());
}

TEST_CASE("nightly: --durations and merge name what they cannot use", "[nightly][cli]") {
  pbtest::TempDir tmp;
  const std::string suite = tmp.file("suite.yaml");
  pbtest::write_text(suite, "suite: shards\nfixtures:\n  - {id: f0, layer: dense, spec: {}, planets: [alpha]}\n"
                            "  - {id: f1, layer: dense, spec: {}, planets: [alpha]}\n");
  const std::string out = tmp.file("out.txt");
  const std::string run = std::string(PB_CLI) + " run " + pbtest::quote(suite) + " --data " + pbtest::quote(tmp.file("data")) + " --shard 1/2";
  CHECK(pbtest::shell(run + " --durations /nonexistent/report.json >" + out + " 2>&1") == 2);
  CHECK_THAT(pbtest::read_text(out), Catch::Contains("--durations") && Catch::Contains("/nonexistent/report.json"));
  const std::string old_report = tmp.file("old.json");
  pbtest::write_text(old_report, R"({"suite": "shards", "cases": [{"planet": "alpha", "fixture": "f0", "verdict": "PASS"}]})");
  CHECK(pbtest::shell(run + " --durations " + old_report + " >" + out + " 2>&1") == 2);
  CHECK_THAT(pbtest::read_text(out), Catch::Contains("holds no case durations"));

  // Shards split on different durations cannot be merged: they may overlap or miss cases.
  auto report = [&](const std::string& name, size_t index, const std::string& basis) {
    const json doc = {{"suite", "shards"}, {"planned", 2}, {"shard", std::to_string(index + 1) + "/2"}, {"balanced_by", basis},
                      {"summary", {{"seconds", 1.0}}},
                      {"cases", {{{"planet", "alpha"}, {"fixture", "f" + std::to_string(index)}, {"verdict", "PASS"}, {"plan_index", index}}}}};
    pbtest::write_text(tmp.file(name), doc.dump());
    return tmp.file(name);
  };
  const std::string a = report("a.json", 0, "count"), b = report("b.json", 1, "crc32:0badf00d");
  CHECK(pbtest::shell(std::string(PB_CLI) + " merge " + a + " " + b + " >" + out + " 2>&1") == 2);
  CHECK_THAT(pbtest::read_text(out), Catch::Contains("b.json: was split by crc32:0badf00d") && Catch::Contains("same --durations"));
  const std::string c = report("c.json", 1, "count");
  CHECK(pbtest::shell(std::string(PB_CLI) + " merge " + a + " " + c + " >" + out + " 2>&1") == 0);
}

TEST_CASE("nightly: a batch is compared with the last one that selected the same cases, else the suite's newest", "[nightly][catalog]") {
  pbtest::TempDir tmp;
  pb::host::Catalog catalog(tmp.file("data"));
  auto night = [&](const std::string& shard, const std::string& planet = "") {
    pb::host::BatchInfo info;
    info.suite = "bedrock";
    info.filters = {{"planets", planet.empty() ? json::array() : json::array({planet})}, {"layers", json::array()}, {"fixture", ""}, {"shard", shard}};
    const std::string id = catalog.begin_batch(info);
    catalog.end_batch(id);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // batch ids are by the millisecond
    return id;
  };
  const std::string s1 = night("1/2"), s2 = night("2/2"), t1 = night("1/2"), t2 = night("2/2"), sk = night("1/1", "sklearn");
  CHECK(catalog.previous_batch("bedrock", t1) == s1);  // not s2, which finished last
  CHECK(catalog.previous_batch("bedrock", t2) == s2);
  CHECK(catalog.latest_batch("bedrock", t1) == s1);
  CHECK(catalog.previous_batch("bedrock", s1) == std::nullopt);
  CHECK(catalog.previous_batch("bedrock", sk) == t2);   // nothing selected sklearn alone before: the newest
  CHECK(catalog.latest_batch("bedrock", "") == sk);     // no batch of its own: the newest
}
