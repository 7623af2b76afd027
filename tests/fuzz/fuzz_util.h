#pragma once
// What the fuzz targets share (docs/fuzzing.md). A target returns normally for any input the
// code under test accepts or refuses with a pb::Error; anything else is a finding:
//   - a crash, a sanitizer report, a hang or an allocation over the limit (libFuzzer's own);
//   - an exception other than pb::Error escaping (libFuzzer reports it as a deadly signal; the
//     replay fails): errors must name the file or field, never be a raw library message or
//     std::bad_alloc;
//   - a broken promise the target checks itself, reported with fail().
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "planetbridge/error.h"
#include "planetbridge/ops.h"
#include "plugin_loader.h"

namespace pbfuzz {

[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "\nFUZZ FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// The planet plugins of this build: $PB_FUZZ_PLUGIN_DIR, else the build's own plugin folder.
// Loaded once and never unloaded (no library is closed while a sanitizer may still symbolize it).
inline const pb::host::PluginRegistry& plugins() {
  static const pb::host::PluginRegistry* registry = [] {
    const char* env = std::getenv("PB_FUZZ_PLUGIN_DIR");
    const std::string dir = env && *env ? env : PB_FUZZ_PLUGIN_DIR;
    auto* r = new pb::host::PluginRegistry(pb::host::PluginRegistry::discover({dir}));
    for (const auto& refused : r->refused()) std::fprintf(stderr, "fuzz: plugin %s refused: %s\n", refused.file.c_str(), refused.reason.c_str());
    if (r->plugins().empty()) fail("no planet plugin found in " + dir + " (build the planet_* targets, or set PB_FUZZ_PLUGIN_DIR)");
    std::string names;
    for (const auto& p : r->plugins()) names += " " + p.dialect->planet();
    std::fprintf(stderr, "fuzz: planets%s (from %s)\n", names.c_str(), dir.c_str());
    return r;
  }();
  return *registry;
}

// The fuzzing budget for compiling a Network: every value's type is inferred first (a pb::Error
// there is what the compile would answer too; this is where the product's own limits, such as
// ir::kMaxValueElements, are met) and all values together hold at most 2^18 elements. A graph
// over the budget is legal but not compiled: the targets explore the readers, decoders and
// compile, not how much memory a legal model may ask for (libFuzzer stops at 2 GB, and oneDNN
// 2.6 takes 3.5 GB and 7 s to create a 1-D convolution 2.75 million samples wide).
inline bool within_budget(const pb::ir::Graph& graph, const std::map<std::string, pb::Shape>& input_shapes) {
  constexpr int64_t kBudget = int64_t(1) << 18;
  std::map<std::string, pb::ir::TensorType> types;
  try {
    types = pb::ir::infer_graph(graph, input_shapes);
  } catch (const pb::Error&) {
    return false;
  }
  int64_t total = 0;
  for (const auto& [name, t] : types) {
    int64_t n = 1;
    for (int64_t d : t.shape) {
      n *= d < 1 ? 1 : d;  // each factor <= 2^34 (ir::kMaxValueElements), n kept <= 2^18 below
      if (n > kBudget) return false;
    }
    total += n;
    if (total > kBudget) return false;
  }
  return true;
}

}  // namespace pbfuzz
