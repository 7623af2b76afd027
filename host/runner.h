#pragma once
// Runs a suite: one capture process per planet, the ladder for every (fixture, planet).
#include <functional>
#include <string>
#include <vector>

#include "ladder.h"
#include "plugin_loader.h"
#include "suite.h"

namespace pb::host {

struct RunOptions {
  std::vector<std::string> planets;  // empty: every planet in the suite
  std::vector<std::string> layers;   // empty: every layer
  std::string fixture_glob;          // empty: every fixture (fnmatch pattern otherwise)
  std::string out_dir = ".planetbridge";  // the run store (--out/--data): <out_dir>/runs/<id>/
  std::string host_version;          // recorded with the batch
  size_t shard = 1, shards = 1;      // run only shard `shard` (1-based) of `shards`: every `shards`-th planned case
  double capture_timeout_s = 900;    // per reply from a capture process
  std::function<void(const std::string& planet, const std::string& fixture, size_t done, size_t total)> on_start;
  std::function<void(const CaseResult&)> on_result;
};

struct PlannedCase {
  const Fixture* fixture;
  std::string planet;
  size_t index = 0;  // position in the whole plan (before sharding)
};

// The cases a run would execute, grouped by planet in order of first appearance; with shards,
// the planned cases whose index modulo `shards` is `shard - 1` (each case in exactly one shard).
// Throws pb::Error for a --planet or --layer that matches nothing. `planned` gets the whole
// plan's size.
std::vector<PlannedCase> plan_cases(const Suite& suite, const RunOptions& options, size_t* planned = nullptr);

// Every case, whatever its verdict, is recorded as a run in the store at options.out_dir
// (source "run", the suite's name) and belongs to one batch for the whole suite run, recorded
// in the catalog (its id in *batch when given); CaseResult::run_id names each run. Results come
// back in plan order. Throws pb::Error when the store cannot be written.
std::vector<CaseResult> run_suite(const Suite& suite, const PluginRegistry& plugins, const RunOptions& options,
                                  std::string* batch = nullptr);

}  // namespace pb::host
