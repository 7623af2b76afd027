#pragma once
// Small helpers shared by the test files: temporary directories, file I/O, shell commands,
// error matchers, loading a planet's plugin and running what it decodes, hand-built graphs.
#include <sys/wait.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "planetbridge/decoder_util.h"
#include "planetbridge/error.h"
#include "planetbridge/ir.h"
#include "planetbridge/network.h"
#include "planetbridge/stream.h"
#include "planetbridge/tensor.h"
#include "ladder.h"
#include "plugin_loader.h"

namespace pbtest {

namespace fs = std::filesystem;

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "pb_tests_XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const void* data, size_t size) {
  std::ofstream f(path, std::ios::binary);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!f.flush()) throw std::runtime_error("cannot write " + path);
}

inline void write_text(const std::string& path, const std::string& text) { write_bytes(path, text.data(), text.size()); }

// Runs a shell command; returns its exit status (or 128 + signal, -1 when it could not run).
inline int shell(const std::string& cmd) {
  const int status = std::system(cmd.c_str());
  if (status == -1) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// s single-quoted for the shell.
inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Empty when PB_PYTHON imports `module`, else why not. Checked once per module.
inline std::string python_missing(const std::string& module) {
  static std::map<std::string, std::string> reasons;
  auto it = reasons.find(module);
  if (it == reasons.end()) {
    const bool ok = shell(std::string(PB_PYTHON) + " -c 'import " + module + "' >/dev/null 2>&1") == 0;
    it = reasons.emplace(module, ok ? std::string() : std::string(PB_PYTHON) + " cannot import " + module).first;
  }
  return it->second;
}

// Matches a pb::Error whose where() equals `where` and whose message() contains `part`.
class ErrorAt : public Catch::MatcherBase<pb::Error> {
 public:
  ErrorAt(std::string where, std::string part) : where_(std::move(where)), part_(std::move(part)) {}
  bool match(const pb::Error& e) const override {
    return e.where() == where_ && e.message().find(part_) != std::string::npos;
  }
  std::string describe() const override {
    return "is a pb::Error at \"" + where_ + "\" whose message contains \"" + part_ + "\"";
  }

 private:
  std::string where_, part_;
};

// f32 tensor from values.
inline pb::Tensor f32(pb::Shape shape, const std::vector<float>& values) {
  pb::Tensor t(pb::DType::f32, std::move(shape));
  REQUIRE(static_cast<size_t>(t.numel()) == values.size());
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

// ------------------------------------------------------------------ planet decoders

// A planet's plugin as built (every planet builds into the build's plugin directory).
inline std::string plugin_path(const std::string& planet) {
  return (fs::path(PB_PLUGIN_DIR) / ("libplanet_" + planet + ".so")).string();
}

// Empty when the planet's plugin is built and its engine loads here, else why not (live tests
// SKIP with it).
inline std::string planet_unavailable(const std::string& planet) {
  if (!fs::exists(plugin_path(planet))) return "the " + planet + " plugin is not built";
  if (planet == "pytorch") return python_missing("torch");
  if (planet == "sklearn") return python_missing("sklearn");
  const std::string package = planet == "jax" ? "@jax-js/jax" : "@tensorflow/tfjs";
  const int rc = shell("cd " + quote(PB_SOURCE_DIR) + " && node -e 'require(\"" + package + "\")' >/dev/null 2>&1");
  return rc == 0 ? "" : "node cannot load " + package + " (run npm ci)";
}

// The planet's Dialect, its plugin loaded once; fails the test naming the file and why when the
// plugin cannot be loaded.
inline const pb::Dialect& dialect(const std::string& planet) {
  static std::map<std::string, std::unique_ptr<pb::host::PluginRegistry>> registries;
  const std::string path = plugin_path(planet);
  std::unique_ptr<pb::host::PluginRegistry>& registry = registries[planet];
  if (!registry) {
    registry = std::make_unique<pb::host::PluginRegistry>();
    registry->load(path);
  }
  const pb::Dialect* d = registry->find(planet);
  if (!d) FAIL("cannot load " << path << ": " << (registry->refused().empty() ? "?" : registry->refused()[0].reason));
  return *d;
}

// plugins/<planet>/tests/streams/<name>.json
inline nlohmann::json load_doc(const std::string& planet, const std::string& name) {
  return nlohmann::json::parse(read_text(std::string(PB_SOURCE_DIR) + "/plugins/" + planet + "/tests/streams/" + name + ".json"));
}

// A stream document (JSON, tensors inline) as the host reads it.
inline pb::Stream to_stream(const nlohmann::json& doc) {
  const std::string text = doc.dump();
  return pb::read_stream_bytes(reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

#ifdef PB_PLANET
// In a planet's own tests (plugins/<planet>/tests): its dialect, its recorded streams, decoding.
inline const pb::Dialect& planet() { return dialect(PB_PLANET); }
inline nlohmann::json load_doc(const std::string& name) { return load_doc(PB_PLANET, name); }
inline pb::ir::Graph decode(const nlohmann::json& doc) { return planet().decode(to_stream(doc)); }
#endif

// Compiles the graph for the stream's input shapes, runs it, returns copies of the outputs.
inline std::vector<pb::Tensor> run(const pb::Stream& s, const pb::ir::Graph& g) {
  std::map<std::string, pb::Shape> shapes;
  std::vector<const pb::Tensor*> inputs;
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    shapes[g.inputs[i].name] = s.tensors.at(s.inputs[i]).shape();
    inputs.push_back(&s.tensors.at(s.inputs[i]));
  }
  pb::Network net(g, shapes);
  net.run(inputs);
  std::vector<pb::Tensor> out;
  for (size_t i = 0; i < net.output_count(); ++i) out.push_back(net.output(i).clone());
  return out;
}

// An f32 tensor's values.
inline std::vector<float> values(const pb::Tensor& t) { return {t.data<float>(), t.data<float>() + t.numel()}; }

// |got - want| <= atol + rtol |want| element-wise (the suite's tolerance rule).
inline void check_close(const std::vector<double>& got, const std::vector<double>& want, double atol = 1e-5, double rtol = 1e-5) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << std::setprecision(9) << got[i] << ", want " << want[i]);
    CHECK(std::fabs(got[i] - want[i]) <= atol + rtol * std::fabs(want[i]));
  }
}
// The same for tensors of any float dtype (compared in double).
inline std::vector<double> doubles(const pb::Tensor& t) {
  const pb::Tensor d = t.cast(pb::DType::f64);
  return {d.data<double>(), d.data<double>() + d.numel()};
}
inline void check_close(const pb::Tensor& got, const pb::Tensor& want, double atol = 1e-5, double rtol = 1e-5) {
  REQUIRE(got.shape() == want.shape());
  check_close(doubles(got), doubles(want), atol, rtol);
}

// The largest element-wise difference (for "a wrong translation would visibly fail" checks).
inline double max_diff(const pb::Tensor& a, const pb::Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const std::vector<double> x = doubles(a), y = doubles(b);
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::fabs(x[i] - y[i]));
  return m;
}

// Every output of the graph, run on the stream's inputs, against the stream's native ones.
inline void check_outputs(const pb::Stream& s, const pb::ir::Graph& g, double atol = 1e-5, double rtol = 1e-5) {
  const std::vector<pb::Tensor> out = run(s, g);
  REQUIRE(out.size() == s.expected.size());
  for (size_t i = 0; i < out.size(); ++i) {
    INFO("output " << i << " (" << g.outputs[i] << ")");
    check_close(out[i], s.tensors.at(s.expected[i]), atol, rtol);
  }
}

// The three-way ladder on one stream (native -> bridged -> reloaded), its checkpoint in a
// temporary directory.
inline pb::host::CaseResult ladder(const pb::Stream& s, const pb::Dialect& d, double atol = 1e-5, double rtol = 1e-5) {
  TempDir tmp;
  pb::host::LadderOptions opt;
  opt.tolerance = {atol, rtol};
  opt.entity_path = tmp.file("model.entity");
  return pb::host::run_ladder(s, d, opt);
}

// EXACT or PASS, reloaded bit-identically, and every tap the stream carries compared (it lined
// up with an IR value of its layout) and within tolerance.
inline void check_passes(const pb::host::CaseResult& r, const pb::Stream& s) {
  INFO(r.message << " " << r.worst << " " << r.tap_error);
  CHECK((r.verdict == pb::host::Verdict::EXACT || r.verdict == pb::host::Verdict::PASS));
  CHECK(r.reload_identical);
  CHECK(r.tap_error.empty());
  CHECK(r.taps.size() == s.taps.size());
  for (const auto& t : r.taps) {
    INFO(t.value);
    CHECK(t.vs_native.within);
  }
}

// The graph's node `name`; fails the test, showing the graph, when there is none.
inline const pb::ir::Node& node(const pb::ir::Graph& g, const std::string& name) {
  const pb::ir::Node* n = g.find_node(name);
  if (!n) FAIL("no node \"" << name << "\" in\n" << g.summary());
  return *n;
}

// ------------------------------------------------------------------ hand-built graphs

inline pb::ir::Attrs attrs(pb::AttrList kv) { return pb::attrs_of(kv); }

// A node with one output of its own name, from "test:<name>".
inline pb::ir::Node make_node(const std::string& name, const std::string& op, std::vector<std::string> inputs,
                              pb::ir::Attrs a = {}) {
  pb::ir::Node n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(inputs);
  n.outputs = {name};
  n.attrs = std::move(a);
  n.origin = "test:" + name;
  return n;
}

// f32 values drawn uniformly from [lo, hi).
inline pb::Tensor random_tensor(pb::Shape shape, std::mt19937& rng, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> u(lo, hi);
  pb::Tensor t(pb::DType::f32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

}  // namespace pbtest

// Ends the test case as skipped when `why` is not empty: ctest reports it Skipped (every
// Catch2 test is registered with SKIP_REGULAR_EXPRESSION "PB-SKIP: "), never Passed; e.g.
// PBTEST_SKIP_IF(pbtest::python_missing("torch"), "live PyTorch tests need it").
#define PBTEST_SKIP_IF(why, what)                                                  \
  do {                                                                             \
    const std::string pbtest_why_ = (why);                                         \
    if (!pbtest_why_.empty()) {                                                    \
      std::cout << "PB-SKIP: " << pbtest_why_ << " (" << what << ")" << std::endl; \
      WARN("SKIP: " << pbtest_why_ << " (" << what << ")");                        \
      return;                                                                      \
    }                                                                              \
  } while (0)

// Catch prints a pb::Error that fails a matcher through what().
namespace Catch {
template <>
struct StringMaker<pb::Error> {
  static std::string convert(const pb::Error& e) { return "pb::Error{where: \"" + e.where() + "\", what: \"" + e.what() + "\"}"; }
};
}  // namespace Catch
