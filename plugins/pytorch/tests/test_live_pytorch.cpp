// Integration with a live PyTorch (Debian's python3-torch under /usr/bin/python3): the bedrock
// suite end to end, a deliberately corrupted stream, and the `planetbridge check` CLI.
// Without torch these tests pass with a "SKIP" warning (Catch2 v2 has no SKIP).
#include <memory>

#include "ladder.h"
#include "plugin_loader.h"
#include "runner.h"
#include "suite.h"
#include "live_capture.h"
#include "test_util.h"

namespace {

const std::string kSuite = PB_SOURCE_DIR "/config/suites/bedrock.yaml";

using pbtest::quote;
using pbtest::shell;

const pb::Dialect& pytorch(const pb::host::PluginRegistry& r) {
  const pb::Dialect* d = r.find("pytorch");
  REQUIRE(d != nullptr);
  return *d;
}

pb::host::PluginRegistry load_pytorch() {
  pb::host::PluginRegistry r;
  r.load(PB_PLANET_PLUGIN);
  return r;
}

// Captures one bedrock fixture with the standalone capture CLI; returns the .pbstream path.
std::string capture_fixture(const pbtest::TempDir& tmp, const std::string& fixture) {
  const std::string out = tmp.file("streams");
  const std::string cmd = std::string(PB_PYTHON) + " " + quote(PB_SOURCE_DIR "/plugins/pytorch/capture/capture.py") + " --suite " +
                          quote(kSuite) + " --fixture " + quote(fixture) + " --out " + quote(out) + " 2>" +
                          quote(tmp.file("capture.log"));
  const int rc = shell(cmd);
  INFO("capture.py stderr: " << pbtest::read_text(tmp.file("capture.log")));
  REQUIRE(rc == 0);
  const std::string path = out + "/" + fixture + ".pbstream";
  REQUIRE(std::filesystem::exists(path));
  return path;
}

}  // namespace

TEST_CASE("live pytorch: the bedrock dense fixtures are exact or pass, and reload identically", "[live]") {
  PB_REQUIRE_TORCH();
  pbtest::TempDir tmp;
  const pb::host::Suite suite = pb::host::load_suite(kSuite);
  const pb::host::PluginRegistry plugins = load_pytorch();
  pytorch(plugins);
  pb::host::RunOptions opt;
  opt.planets = {"pytorch"};
  opt.layers = {"dense"};
  opt.out_dir = tmp.file("out");
  opt.capture_timeout_s = 120;
  size_t started = 0;
  opt.on_start = [&](const std::string&, const std::string&, size_t, size_t) { ++started; };
  const size_t planned = pb::host::plan_cases(suite, opt).size();
  CHECK(planned == 12);  // the bedrock suite's dense fixtures
  const std::vector<pb::host::CaseResult> results = pb::host::run_suite(suite, plugins, opt);
  REQUIRE(results.size() == planned);
  CHECK(started == planned);
  for (const auto& r : results) {
    INFO(r.name() << ": " << pb::host::verdict_name(r.verdict) << " " << r.message << " " << r.worst);
    CHECK((r.verdict == pb::host::Verdict::EXACT || r.verdict == pb::host::Verdict::PASS));
    CHECK(r.reload_identical);
    CHECK(r.layer == "dense");
    CHECK(r.planet == "pytorch");
    CHECK(r.entity_path == opt.out_dir + "/runs/" + r.run_id + "/model.entity");  // the run store's copy
    CHECK(std::filesystem::exists(r.entity_path));
    CHECK(r.entity_bytes == std::filesystem::file_size(r.entity_path));
  }
}

TEST_CASE("live pytorch: a corrupted weight fails and names the first divergent node", "[live]") {
  PB_REQUIRE_TORCH();
  pbtest::TempDir tmp;
  const std::string path = capture_fixture(tmp, "mlp_32_16_4_relu");
  pb::Stream stream = pb::read_stream_file(path);
  const pb::host::PluginRegistry plugins = load_pytorch();

  // The second Linear is fx node "_2" whose module "2" holds the parameter "2.weight".
  bool found = false;
  for (const auto& n : stream.doc["model"]["graph"])
    if (n["name"] == "_2") {
      found = n["op"] == "call_module" && n["target"] == "2";
      CHECK(stream.doc["model"]["modules"]["2"]["type"] == "Linear");
      CHECK(stream.doc["model"]["modules"]["2"]["params"]["weight"] == "2.weight");
    }
  REQUIRE(found);
  REQUIRE(stream.taps.count("_2") == 1);

  pb::host::LadderOptions opt;
  opt.entity_path = tmp.file("good.entity");
  const pb::host::CaseResult good = pb::host::run_ladder(stream, pytorch(plugins), opt);
  INFO("uncorrupted: " << good.message);
  REQUIRE((good.verdict == pb::host::Verdict::EXACT || good.verdict == pb::host::Verdict::PASS));

  // Tensors share their bytes: clone before changing, then replace.
  pb::Tensor w = stream.tensors.at("2.weight").clone();
  for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] += 0.5f;
  stream.tensors["2.weight"] = w;

  opt.entity_path = tmp.file("bad.entity");
  const pb::host::CaseResult bad = pb::host::run_ladder(stream, pytorch(plugins), opt);
  INFO("corrupted: " << bad.message << "; first divergence: " << bad.first_divergence);
  CHECK(bad.verdict == pb::host::Verdict::FAIL);
  CHECK_THAT(bad.first_divergence, Catch::StartsWith("node \"_2\""));
  CHECK_THAT(bad.message, Catch::EndsWith("elements outside tolerance"));
  CHECK(bad.reload_identical);  // the checkpoint still reproduces what was bridged
}

TEST_CASE("live pytorch: planetbridge check on a file, on stdin and on garbage", "[live]") {
  PB_REQUIRE_TORCH();
  pbtest::TempDir tmp;
  const std::string path = capture_fixture(tmp, "mlp_32_16_4_relu");
  const std::string cli = quote(PB_CLI);
  const std::string log = tmp.file("check.log");
  const std::string to_log = " >" + quote(log) + " 2>&1";

  int rc = shell(cli + " check " + quote(path) + " --entity " + quote(tmp.file("file.entity")) + to_log);
  INFO(pbtest::read_text(log));
  CHECK(rc == 0);
  CHECK(std::filesystem::exists(tmp.file("file.entity")));

  rc = shell("cat " + quote(path) + " | " + cli + " check - --entity " + quote(tmp.file("stdin.entity")) + to_log);
  INFO(pbtest::read_text(log));
  CHECK(rc == 0);
  CHECK(std::filesystem::exists(tmp.file("stdin.entity")));

  // A corrupted stream written back in the binary framing: exit status 1 (FAIL).
  pb::Stream stream = pb::read_stream_file(path);
  std::map<std::string, pb::Tensor> tensors = stream.tensors;
  pb::Tensor w = tensors.at("2.weight").clone();
  for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] += 0.5f;
  tensors["2.weight"] = w;
  const std::vector<uint8_t> bytes = pb::write_framed(stream.doc, tensors);
  const std::string corrupted = tmp.file("corrupted.pbstream");
  pbtest::write_bytes(corrupted, bytes.data(), bytes.size());
  rc = shell(cli + " check " + quote(corrupted) + " --entity " + quote(tmp.file("bad.entity")) + to_log);
  const std::string fail_out = pbtest::read_text(log);
  INFO(fail_out);
  CHECK(rc == 1);
  CHECK_THAT(fail_out, Catch::Contains("FAIL") && Catch::Contains("_2"));

  // Garbage: usage error 2, and the message names the file.
  const std::string garbage = tmp.file("garbage.pbstream");
  pbtest::write_text(garbage, "this is not a stream\n");
  rc = shell(cli + " check " + quote(garbage) + " --entity " + quote(tmp.file("g.entity")) + to_log);
  const std::string garbage_out = pbtest::read_text(log);
  INFO(garbage_out);
  CHECK(rc == 2);
  CHECK_THAT(garbage_out, Catch::Contains(garbage) && Catch::Contains("invalid JSON"));

  rc = shell("printf 'garbage' | " + cli + " check - --entity " + quote(tmp.file("g2.entity")) + to_log);
  const std::string stdin_out = pbtest::read_text(log);
  INFO(stdin_out);
  CHECK(rc == 2);
  CHECK_THAT(stdin_out, Catch::Contains("(stdin)"));
}
