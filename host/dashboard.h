#pragma once
// The dashboard of `planetbridge serve`: two pages rendered on the server from the run store's
// JSON (plain HTML, inline CSS, a small inline script, an inline SVG chart; no build step and
// no external URL). Every string from a run is HTML-escaped.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pb::host {

// GET /: the runs (summaries, newest first) with auto-refresh. `total` counts every stored run.
std::string dashboard_index(const std::vector<nlohmann::json>& runs, size_t total, const std::string& version);

// GET /runs/{id}: one run document (GET /api/v1/runs/{id}): verdict, outputs, per-node
// divergence chart from the taps, timings and the graph.
std::string dashboard_run(const nlohmann::json& run);

std::string html_escape(const std::string& s);

}  // namespace pb::host
