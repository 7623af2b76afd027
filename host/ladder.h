#pragma once
// The three-way ladder for one stream: native -> bridged (in memory) -> reloaded from .entity.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "compare.h"
#include "planetbridge/dialect.h"
#include "planetbridge/stream.h"
#include "suite.h"

namespace pb::host {

enum class Verdict { EXACT, PASS, FAIL, ERROR, SKIP };
const char* verdict_name(Verdict v);

struct OutputCheck {
  std::string name;          // the stream's expected tensor
  Comparison vs_native;      // bridged vs native
  bool reload_identical = false;
};

// One tapped node: its own output (compiled without fusion) against the planet's.
struct TapCheck {
  std::string node;          // the IR node
  std::string origin;        // the source-planet node it came from
  std::string value;         // the tapped value (the stream's "taps" key)
  Comparison vs_native;
};

struct CaseResult {
  std::string planet;
  std::string fixture;       // model id
  std::string layer;         // suite layer key ("" for a single stream)
  std::string engine;        // "torch 1.13.0a0", from the stream
  std::vector<std::string> composed;  // native layers built from the planet's ops (not stock)
  Verdict verdict = Verdict::ERROR;
  std::string message;       // why it is ERROR, SKIP or FAIL
  Tolerance tolerance;
  std::vector<OutputCheck> outputs;
  double max_abs = 0, max_rel = 0;
  std::string worst;         // "y[17, 3]: bridged 0.1234 vs native 0.1235"
  bool reload_identical = false;
  std::string entity_path;
  uint64_t entity_bytes = 0;
  std::string first_divergence;  // the first tapped node outside tolerance (FAIL only)
  std::vector<TapCheck> taps;    // every tapped node in execution order (streams with taps)
  std::string tap_error;         // why the taps could not be compared ("" when they were)
  std::string run_id;            // the run store's id, once recorded
  size_t plan_index = 0;         // `run`: the case's position in the whole suite run's plan (shards merge by it)
  std::vector<std::pair<std::string, double>> stage_ms;  // decode, compile, run, taps, save, reload
  // Steady-state inference: the compiled network run again `run_repeats` times after the
  // checked run (warm caches, memory touched); the median is what `diff` calls slower.
  double run_median_ms = 0, run_min_ms = 0;
  int run_repeats = 0;
  double wall_ms = 0;            // `run`: the case's share of the suite run's wall time (capture included); shards balance by it
  double total_ms() const;
  std::string name() const { return planet + "." + fixture; }
  bool ok() const { return verdict == Verdict::EXACT || verdict == Verdict::PASS || verdict == Verdict::SKIP; }
};

struct LadderOptions {
  Tolerance tolerance;
  std::string entity_path;  // where the checkpoint is written (directories are created)
  int repeats = 5;          // timed steady-state runs after the checked one (0: none) ...
  double repeat_budget_ms = 500;  // ... stopping early, after at least two, once they took this long
  std::function<void(bool)> quiet;  // called with true before the repeats, false after: pauses other work
};

// Never throws: any error becomes verdict ERROR with the message.
CaseResult run_ladder(const Stream& stream, const Dialect& dialect, const LadderOptions& options);

}  // namespace pb::host
