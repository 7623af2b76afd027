// The plugin loader (host/plugin_loader.h): the real pytorch plugin, and the test-only plugins
// built by tests/CMakeLists.txt into PB_TEST_PLUGIN_DIR (wrong ABI, not a plugin, duplicates).
#include <algorithm>
#include <filesystem>
#include <set>

#include "ladder.h"
#include "planetbridge/version.h"
#include "plugin_loader.h"
#include "test_util.h"

using pb::host::PluginRegistry;
using pb::host::RefusedPlugin;

namespace {

const std::string kTestPlugins = PB_TEST_PLUGIN_DIR;

std::string test_plugin(const std::string& name) { return kTestPlugins + "/libplanet_" + name + ".so"; }

const RefusedPlugin* refusal_for(const PluginRegistry& r, const std::string& file_part) {
  for (const RefusedPlugin& p : r.refused())
    if (p.file.find(file_part) != std::string::npos) return &p;
  return nullptr;
}

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

}  // namespace

TEST_CASE("plugins: the pytorch plugin loads and describes itself", "[plugins]") {
  PluginRegistry r;
  REQUIRE(r.load(PB_PYTORCH_PLUGIN));
  CHECK(r.refused().empty());
  REQUIRE(r.plugins().size() == 1);
  const pb::Dialect* d = r.find("pytorch");
  REQUIRE(d != nullptr);
  CHECK(d->planet() == "pytorch");
  CHECK_FALSE(d->version().empty());
  const std::vector<std::string> types = d->source_types();
  CHECK(contains(types, "Linear"));
  CHECK(contains(types, "ReLU"));
  CHECK(contains(types, "torch.nn.functional.relu"));
  CHECK(contains(types, "Tensor.relu"));
  CHECK_FALSE(contains(types, "MyCustomBlock"));
  const pb::CaptureCommand cmd = d->capture();
  REQUIRE(cmd.argv.size() >= 2);
  CHECK_THAT(cmd.argv[1], Catch::EndsWith("capture/capture.py"));
  CHECK(r.find("tensorflow") == nullptr);
  CHECK(r.plugins()[0].file == std::filesystem::absolute(PB_PYTORCH_PLUGIN).string());
}

TEST_CASE("plugins: the default search path finds the built pytorch plugin", "[plugins]") {
  // <bin>/../lib/planetbridge/plugins, relative to this test executable in build/bin.
  const std::vector<std::string> dirs = pb::host::plugin_search_path(kTestPlugins);
  REQUIRE(dirs.size() >= 2);
  CHECK(dirs.front() == kTestPlugins);
  CHECK(std::filesystem::equivalent(dirs.back(), std::filesystem::path(PB_PYTORCH_PLUGIN).parent_path()));
  PluginRegistry r = PluginRegistry::discover({dirs.back()});
  REQUIRE(r.find("pytorch") != nullptr);
  CHECK(r.searched() == std::vector<std::string>{dirs.back()});
}

TEST_CASE("plugins: a plugin built for another ABI is refused with both versions", "[plugins]") {
  PluginRegistry r;
  CHECK_FALSE(r.load(test_plugin("wrongabi")));
  CHECK(r.plugins().empty());
  REQUIRE(r.refused().size() == 1);
  const RefusedPlugin& p = r.refused()[0];
  CHECK(p.file == test_plugin("wrongabi"));
  CHECK_THAT(p.reason, Catch::Contains("plugin ABI version 999"));
  CHECK_THAT(p.reason, Catch::Contains("this host needs " + std::to_string(PB_PLUGIN_ABI_VERSION)));
  CHECK_THAT(p.reason, Catch::Contains("planetbridge " PLANETBRIDGE_VERSION));  // both sides' builds are named
  CHECK(r.find("wrongabi") == nullptr);
}

TEST_CASE("plugins: a missing file is refused as not found", "[plugins]") {
  PluginRegistry r;
  const std::string missing = kTestPlugins + "/libplanet_missing.so";
  CHECK_FALSE(r.load(missing));
  REQUIRE(r.refused().size() == 1);
  CHECK(r.refused()[0].file == missing);
  CHECK_THAT(r.refused()[0].reason, Catch::Contains("not found"));
}

TEST_CASE("plugins: a library without the exports is not a plugin", "[plugins]") {
  PluginRegistry r;
  CHECK_FALSE(r.load(test_plugin("notaplugin")));
  REQUIRE(r.refused().size() == 1);
  CHECK_THAT(r.refused()[0].reason, Catch::Contains("not a planetbridge plugin"));

  // A file that is not a shared library at all.
  pbtest::TempDir tmp;
  const std::string junk = tmp.file("libplanet_junk.so");
  pbtest::write_text(junk, "this is not an ELF file\n");
  CHECK_FALSE(r.load(junk));
  REQUIRE(r.refused().size() == 2);
  CHECK(r.refused()[1].file == junk);
  CHECK_THAT(r.refused()[1].reason, Catch::Contains("cannot load"));
}

TEST_CASE("plugins: a good test plugin loads, a second one for its planet is refused", "[plugins]") {
  PluginRegistry r;
  REQUIRE(r.load(test_plugin("fake_a")));
  const pb::Dialect* d = r.find("fake");
  REQUIRE(d != nullptr);
  CHECK(d->source_types() == std::vector<std::string>{"FakeLayer"});
  CHECK_FALSE(r.load(test_plugin("fake_b")));
  REQUIRE(r.refused().size() == 1);
  CHECK_THAT(r.refused()[0].reason, Catch::Contains("planet \"fake\" is already provided by"));
  CHECK_THAT(r.refused()[0].reason, Catch::Contains("libplanet_fake_a.so"));
  CHECK(r.find("fake") == d);
}

TEST_CASE("plugins: an ABI 1 plugin (no C entry point) is refused with both versions", "[plugins]") {
  PluginRegistry r;
  CHECK_FALSE(r.load(test_plugin("abi1")));
  REQUIRE(r.refused().size() == 1);
  CHECK_THAT(r.refused()[0].reason, Catch::Contains("plugin ABI version 1, this host needs " + std::to_string(PB_PLUGIN_ABI_VERSION)));
  CHECK_THAT(r.refused()[0].reason, Catch::Contains("rebuild the plugin"));
}

TEST_CASE("plugins: errors and exceptions cross the C boundary as errors naming their place", "[plugins]") {
  PluginRegistry r;
  REQUIRE(r.load(test_plugin("fake_a")));
  const pb::Dialect& d = *r.find("fake");
  nlohmann::json doc = {{"format", "planetbridge.stream"}, {"version", 1}, {"planet", "fake"}, {"planet_version", "0"},
                        {"model_id", "m"}, {"model", {{"format", "fake"}}},
                        {"tensors", {{"x", {{"dtype", "f32"}, {"shape", {1}}, {"data", {1.0}}}}}},
                        {"inputs", {"x"}}, {"expected", {"x"}}};
  // A pb::Error keeps its JSON path.
  CHECK_THROWS_MATCHES(d.decode(pbtest::to_stream(doc)), pb::Error, pbtest::ErrorAt("model", "the fake planet decodes nothing"));
  // Any other exception is caught on the plugin's side and reported, never unwound into the host.
  doc["model"]["throw"] = "std";
  CHECK_THROWS_MATCHES(d.decode(pbtest::to_stream(doc)), pb::Error,
                       pbtest::ErrorAt("", "the plugin failed: something inside the fake planet broke"));
  const pb::CaptureCommand c = d.capture();
  CHECK(c.argv == std::vector<std::string>{"/bin/false"});
  CHECK(c.env == std::map<std::string, std::string>{{"FAKE", "1"}});
  // What it was built with is recorded.
  CHECK(r.plugins()[0].sdk_version == PLANETBRIDGE_VERSION);
  CHECK_FALSE(r.plugins()[0].toolchain.empty());
}

TEST_CASE("plugins: a planet written in plain C loads, decodes and passes the ladder", "[plugins]") {
  PluginRegistry r;
  REQUIRE(r.load(test_plugin("cplanet")));
  const pb::Dialect& d = *r.find("cplanet");
  CHECK(d.source_types() == std::vector<std::string>{"identity"});
  CHECK(r.plugins()[0].sdk_version == "none (plain C)");
  nlohmann::json doc = {{"format", "planetbridge.stream"}, {"version", 1}, {"planet", "cplanet"}, {"planet_version", "0"},
                        {"model_id", "identity"}, {"model", nlohmann::json::object()},
                        {"tensors", {{"x", {{"dtype", "f32"}, {"shape", {2, 3}}, {"data", {1, 2, 3, 4, 5, 6}}}},
                                     {"y", {{"dtype", "f32"}, {"shape", {2, 3}}, {"data", {1, 2, 3, 4, 5, 6}}}}}},
                        {"inputs", {"x"}}, {"expected", {"y"}}};
  const pb::Stream s = pbtest::to_stream(doc);
  const pb::ir::Graph g = d.decode(s);
  CHECK(g.inputs.at(0).shape == pb::Shape{-1, 3});
  CHECK(g.nodes.at(0).op == "Identity");
  pbtest::TempDir tmp;
  pb::host::LadderOptions opt;
  opt.entity_path = tmp.file("c.entity");
  const pb::host::CaseResult result = pb::host::run_ladder(s, d, opt);
  INFO(result.message);
  CHECK(result.verdict == pb::host::Verdict::EXACT);
  CHECK(result.reload_identical);
  // Its own errors come back as it wrote them.
  doc["tensors"].erase("x");
  doc["tensors"]["x"] = {{"dtype", "i32"}, {"shape", {2}}, {"data", {1, 2}}};
  CHECK_THROWS_MATCHES(d.decode(pbtest::to_stream(doc)), pb::Error, pbtest::ErrorAt("tensors.x", "cplanet needs an f32 tensor x"));
}

TEST_CASE("plugins: discover lists every plugin and every refusal", "[plugins]") {
  pbtest::TempDir tmp;
  // Files that do not look like plugins are not even tried.
  pbtest::write_text(tmp.file("README.so"), "x");
  pbtest::write_text(tmp.file("libplanet_notes.txt"), "x");
  PluginRegistry r = PluginRegistry::discover({kTestPlugins, tmp.path().string(), "/nonexistent/pb-plugins"});
  CHECK(r.searched() == std::vector<std::string>{kTestPlugins, tmp.path().string(), "/nonexistent/pb-plugins"});

  // Sorted by file name: cplanet and fake_a load; fake_b comes after fake_a and is the duplicate.
  REQUIRE(r.plugins().size() == 2);
  CHECK(r.plugins()[0].dialect->planet() == "cplanet");
  CHECK(r.plugins()[1].dialect->planet() == "fake");
  CHECK_THAT(r.plugins()[1].file, Catch::EndsWith("libplanet_fake_a.so"));

  REQUIRE(r.refused().size() == 4);
  const RefusedPlugin* dup = refusal_for(r, "libplanet_fake_b.so");
  const RefusedPlugin* abi = refusal_for(r, "libplanet_wrongabi.so");
  const RefusedPlugin* abi1 = refusal_for(r, "libplanet_abi1.so");
  const RefusedPlugin* nap = refusal_for(r, "libplanet_notaplugin.so");
  REQUIRE(dup != nullptr);
  REQUIRE(abi != nullptr);
  REQUIRE(abi1 != nullptr);
  REQUIRE(nap != nullptr);
  CHECK_THAT(dup->reason, Catch::Contains("already provided by"));
  CHECK_THAT(abi->reason, Catch::Contains("999"));
  CHECK_THAT(abi1->reason, Catch::Contains("plugin ABI version 1"));
  CHECK_THAT(nap->reason, Catch::Contains("not a planetbridge plugin"));

  // The plugins it loaded stay usable while the registry lives, after a move too.
  PluginRegistry moved = std::move(r);
  REQUIRE(moved.find("fake") != nullptr);
  CHECK(moved.find("fake")->version() == "0.0.1");
}

// ------------------------------------------------------------------ docs/planets/<planet>.md

namespace {

// The backticked names of the doc's "## Every source type translated" section.
std::set<std::string> documented_types(const std::string& doc_path) {
  const std::string doc = pbtest::read_text(doc_path);
  const std::string heading = "\n## Every source type translated\n";
  const size_t begin = doc.find(heading);
  if (begin == std::string::npos) return {};
  const size_t end = doc.find("\n#", begin + heading.size());
  const std::string section = doc.substr(begin + heading.size(), end == std::string::npos ? std::string::npos : end - begin - heading.size());
  std::set<std::string> names;
  for (size_t i = section.find('`'); i != std::string::npos; i = section.find('`', i + 1)) {
    const size_t j = section.find('`', i + 1);
    if (j == std::string::npos) break;
    names.insert(section.substr(i + 1, j - i - 1));
    i = j;
  }
  return names;
}

void check_documented(const std::string& planet, const std::string& plugin) {
  if (!std::filesystem::exists(plugin)) return;  // a planet not built here
  PluginRegistry r;
  REQUIRE(r.load(plugin));
  const pb::Dialect* d = r.find(planet);
  REQUIRE(d != nullptr);
  const std::vector<std::string> types = d->source_types();
  const std::set<std::string> translated(types.begin(), types.end());
  const std::string doc = PB_SOURCE_DIR "/docs/planets/" + planet + ".md";
  std::string expected;
  for (const std::string& t : translated) expected += (expected.empty() ? "`" : " `") + t + "`";
  INFO(doc << " needs, under \"## Every source type translated\", exactly:\n" << expected);
  CHECK(documented_types(doc) == translated);
}

}  // namespace

TEST_CASE("plugins: each planet's doc lists every source type its decoder translates", "[plugins][docs]") {
  check_documented("pytorch", PB_PYTORCH_PLUGIN);
#ifdef PB_TENSORFLOW_PLUGIN
  check_documented("tensorflow", PB_TENSORFLOW_PLUGIN);
#endif
#ifdef PB_JAX_PLUGIN
  check_documented("jax", PB_JAX_PLUGIN);
#endif
#ifdef PB_SKLEARN_PLUGIN
  check_documented("sklearn", PB_SKLEARN_PLUGIN);
#endif
}
