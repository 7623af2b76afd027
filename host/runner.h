#pragma once
// Runs a suite: one capture process per planet, the ladder for every (fixture, planet).
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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
  size_t shard = 1, shards = 1;      // run only shard `shard` (1-based) of `shards`
  // Measured wall time per case ("planet/fixture" -> ms; shard_durations()): shards are then
  // balanced by time instead of by count.
  std::map<std::string, double> durations;
  int repeats = 5;                   // timed steady-state runs per case (LadderOptions::repeats)
  double capture_timeout_s = 900;    // per reply from a capture process
  std::function<void(const std::string& planet, const std::string& fixture, size_t done, size_t total)> on_start;
  std::function<void(const CaseResult&)> on_result;
};

struct PlannedCase {
  const Fixture* fixture;
  std::string planet;
  size_t index = 0;  // position in the whole plan (before sharding)
};

// The cases a run would execute, grouped by planet in order of first appearance. With shards,
// each planned case goes to exactly one shard: without durations, those whose index modulo
// `shards` is `shard - 1`; with durations, longest first to the shard with the least time so far
// (a case never measured counts as the median of those that were). Deterministic: every shard
// given the same suite, filters and durations computes the same split. Throws pb::Error for a
// --planet or --layer that matches nothing. `planned` gets the whole plan's size.
std::vector<PlannedCase> plan_cases(const Suite& suite, const RunOptions& options, size_t* planned = nullptr);

// Durations to balance shards by, from run summaries (diff_side's rows: a batch, a report, a
// listing): each case's wall_ms. Rows without one are left out.
std::map<std::string, double> shard_durations(const std::vector<nlohmann::json>& rows);
// "crc32:<hex>" of the durations a split used ("count" without any): merged shards must agree.
std::string durations_basis(const std::map<std::string, double>& durations);

// Every case, whatever its verdict, is recorded as a run in the store at options.out_dir
// (source "run", the suite's name) and belongs to one batch for the whole suite run, recorded
// in the catalog (its id in *batch when given); CaseResult::run_id names each run. Results come
// back in plan order. Throws pb::Error when the store cannot be written.
std::vector<CaseResult> run_suite(const Suite& suite, const PluginRegistry& plugins, const RunOptions& options,
                                  std::string* batch = nullptr);

}  // namespace pb::host
