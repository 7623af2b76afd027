#pragma once
// Suite runs compared case by case (docs/nightly.md): what a nightly job asks -- what changed
// since the baseline, and is it worse?
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "catalog.h"

namespace pb::host {

struct DiffOptions {
  double error_factor = 10;   // max |diff| grew by at least this factor ...
  double bound_share = 0.1;   // ... and is above this share of the case's atol: a regression
  // The steady-state run (median of repeats) grew by this factor and by at least
  // slower_min_ms: reported as slower, a regression only with fail_on_slower.
  double slower_factor = 1.5;
  double slower_min_ms = 0.1;
  bool fail_on_slower = false;
};

// Compares two sets of run summaries (run_summary), matched by (planet, fixture):
//   regressions   a case that passed (EXACT, PASS) now FAIL/ERROR, a new case that FAILs or
//                 ERRORs, a passing case whose error grew beyond DiffOptions;
//   fixed         FAIL/ERROR before, EXACT/PASS now;
//   new, removed  cases in one side only;   new_skip: SKIP now, not before;
//   slower        the steady-state run's median grew beyond DiffOptions (rows without one,
//                 written before repeats were timed, are not compared);
//   engine        the planet's engine version changed (named per row).
// Returns {"regressions": [...], "fixed": [...], "new": [...], "removed": [...], "new_skip": [...],
// "slower": [...], "engine_changes": [...], "unchanged": N, "regressed": bool}; each row
// {planet, fixture, before, after, why}.
nlohmann::json diff_runs(const std::vector<nlohmann::json>& before, const std::vector<nlohmann::json>& after, const DiffOptions& options = {});

// The rows of one side: a batch id in `catalog`, "latest" (the newest finished batch of
// `suite` other than `excluding`), or a file: a `run --json` report or a `runs --json` listing.
// Throws pb::Error naming what it could not find or read. `label` gets what was read.
std::vector<nlohmann::json> diff_side(const Catalog& catalog, const std::string& which, const std::string& suite,
                                      const std::string& excluding, std::string* label);

// The comparison for a console, or as Markdown (a CI job summary).
std::string diff_text(const nlohmann::json& diff, const std::string& before, const std::string& after);
std::string diff_markdown(const nlohmann::json& diff, const std::string& before, const std::string& after);

}  // namespace pb::host
