#pragma once
// The dashboard of `planetbridge serve`: pages rendered on the server from the run catalog's
// JSON (plain HTML, inline CSS, small inline scripts, inline SVG charts; no build step and no
// external URL). Every string from a run is HTML-escaped.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "catalog.h"

namespace pb::host {

// The slice of a longer list a page shows: page 1 is the first `limit` rows of `total`.
struct Paging {
  size_t page = 1, limit = 100, total = 0;
  bool more = false;  // counting stopped at `total`: there are more
  size_t offset() const { return (page - 1) * limit; }
};

// GET /: the batches (suite runs), newest first. Each is Catalog::batch()'s document plus
// "previous" (the batch it is compared with, or null) and "changes" (diff_runs' row counts
// against it: regressions, fixed, new, removed, new_skip, slower, engine_changes, unchanged).
std::string dashboard_batches(const std::vector<nlohmann::json>& batches, const Paging& paging, const std::string& version);

// GET /runs: the runs matching `filter` (summaries, newest first) with auto-refresh.
std::string dashboard_runs(const std::vector<nlohmann::json>& runs, const RunFilter& filter, const Paging& paging,
                           const std::string& version);

// GET /batches/{id}: a batch (as on GET /, with "previous"), its runs counted by planet, layer
// and verdict (Catalog::batch_groups), and the page of its runs matching `filter`, by case.
std::string dashboard_batch(const nlohmann::json& batch, const std::vector<nlohmann::json>& groups,
                            const std::vector<nlohmann::json>& runs, const RunFilter& filter, const Paging& paging);

// GET /fixtures/{planet}/{fixture}: a page of the fixture's runs, newest first, charted.
std::string dashboard_fixture(const std::string& planet, const std::string& fixture, const std::vector<nlohmann::json>& runs,
                              const Paging& paging);

// GET /compare?a=&b=: diff_runs of batch a's runs (before) and batch b's (after).
std::string dashboard_compare(const nlohmann::json& a, const nlohmann::json& b, const nlohmann::json& diff);

// GET /runs/{id}: one run document (GET /api/v1/runs/{id}): verdict, outputs, per-node
// divergence chart from the taps, timings and the graph.
std::string dashboard_run(const nlohmann::json& run);

std::string html_escape(const std::string& s);
// s percent-encoded for a URL's path segment or query value (all but A-Z a-z 0-9 - . _ ~).
std::string url_encode(const std::string& s);

}  // namespace pb::host
