#include "dashboard.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace pb::host {

using nlohmann::json;

namespace {

const char kCss[] = R"(
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .4em}h2{font-size:1.1em;margin:1.6em 0 .4em}
table{border-collapse:collapse}th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.mono{font-family:ui-monospace,monospace;font-size:12px}.muted{color:#777}a{color:#1558b0}
.v{font-weight:600;padding:1px 6px;border-radius:3px;color:#fff;font-size:12px}
.v-EXACT,.v-PASS{background:#2e7d32}.v-FAIL,.v-ERROR{background:#c62828}.v-SKIP{background:#b26a00}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px}dt{color:#666}dd{margin:0}
pre{white-space:pre-wrap;margin:0;font-size:12px}.bar{background:#90a4ae;height:10px}
header{display:flex;gap:1.2em;align-items:baseline}
)";

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}
double num(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0;
}
bool flag(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}
const json& arr(const json& j, const char* key) {
  static const json empty = json::array();
  auto it = j.find(key);
  return it != j.end() && it->is_array() ? *it : empty;
}

std::string fmt(const char* format, double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}
std::string sci(double v) { return v == 0 ? "0" : fmt("%.2e", v); }

std::string page(const std::string& title, const std::string& body, const std::string& script = "") {
  return "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>" +
         html_escape(title) + "</title><style>" + kCss + "</style></head><body>\n" + body +
         (script.empty() ? "" : "<script>" + script + "</script>\n") + "</body></html>\n";
}

std::string verdict_badge(const std::string& v, const std::string& title = "") {
  return "<span class=\"v v-" + html_escape(v) + "\"" + (title.empty() ? "" : " title=\"" + html_escape(title) + "\"") + ">" +
         html_escape(v) + "</span>";
}

bool ran(const std::string& verdict) { return verdict == "EXACT" || verdict == "PASS" || verdict == "FAIL"; }

std::string planet_label(const json& r) {
  const std::string engine = str(r, "engine");
  return html_escape(str(r, "planet")) + (engine.empty() ? "" : " <span class=\"muted\">(" + html_escape(engine) + ")</span>");
}

std::string join(const json& list, const std::string& sep) {
  std::string out;
  for (const json& v : list) out += (out.empty() ? "" : sep) + (v.is_string() ? v.get<std::string>() : v.dump());
  return out;
}

// Horizontal bars of each tapped node's max |bridged - native| on a log scale, in execution
// order, with the absolute tolerance marked: where the bridge starts to drift is visible at once.
std::string divergence_chart(const json& taps, double atol) {
  double lo = HUGE_VAL, hi = 0;
  for (const json& t : taps) {
    const double v = num(t, "max_abs");
    if (v > 0) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  if (atol > 0) {
    lo = std::min(lo, atol);
    hi = std::max(hi, atol);
  }
  if (hi == 0) {  // every tap exact and no atol: any range will do
    lo = 1e-9;
    hi = 1;
  }
  const int d0 = static_cast<int>(std::floor(std::log10(lo))), d1 = std::max(d0 + 1, static_cast<int>(std::ceil(std::log10(hi))));
  const double label_w = 250, plot_w = 420, row_h = 18, top = 24;
  const double width = label_w + plot_w + 90, height = top + row_h * static_cast<double>(taps.size()) + 8;
  auto x = [&](double v) { return label_w + (std::log10(v) - d0) / (d1 - d0) * plot_w; };
  std::string s = "<svg id=\"divergence\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt("%.0f", width) + "\" height=\"" +
                  fmt("%.0f", height) + "\" role=\"img\" aria-label=\"max abs error per tapped node\" font-size=\"11\">";
  for (int d = d0; d <= d1; ++d) {
    const std::string xs = fmt("%.1f", x(std::pow(10.0, d)));
    s += "<line x1=\"" + xs + "\" x2=\"" + xs + "\" y1=\"" + fmt("%.0f", top - 4) + "\" y2=\"" + fmt("%.0f", height) +
         "\" stroke=\"#e0e0e0\"/><text x=\"" + xs + "\" y=\"12\" text-anchor=\"middle\" fill=\"#777\">1e" + std::to_string(d) + "</text>";
  }
  if (atol > 0) {
    const std::string xs = fmt("%.1f", x(atol));
    s += "<line x1=\"" + xs + "\" x2=\"" + xs + "\" y1=\"" + fmt("%.0f", top - 4) + "\" y2=\"" + fmt("%.0f", height) +
         "\" stroke=\"#c62828\" stroke-dasharray=\"4 3\"/><text x=\"" + xs + "\" y=\"" + fmt("%.0f", top - 6) +
         "\" fill=\"#c62828\" text-anchor=\"start\" dx=\"3\">atol</text>";
  }
  for (size_t i = 0; i < taps.size(); ++i) {
    const json& t = taps[i];
    const double v = num(t, "max_abs"), y = top + row_h * static_cast<double>(i);
    std::string name = str(t, "node");
    if (name.size() > 36) name = name.substr(0, 35) + "…";
    s += "<g><title>" + html_escape(str(t, "node") + " · " + str(t, "origin") + " · max|diff| " + sci(v) + " · max rel " +
                                    sci(num(t, "max_rel")) + (flag(t, "within") ? "" : " · OUTSIDE TOLERANCE")) +
         "</title><text x=\"" + fmt("%.0f", label_w - 6) + "\" y=\"" + fmt("%.1f", y + 13) + "\" text-anchor=\"end\">" +
         html_escape(name) + "</text>";
    if (v > 0)
      s += "<rect x=\"" + fmt("%.0f", label_w) + "\" y=\"" + fmt("%.1f", y + 3) + "\" width=\"" +
           fmt("%.1f", std::max(1.0, x(v) - label_w)) + "\" height=\"" + fmt("%.0f", row_h - 6) + "\" fill=\"" +
           (flag(t, "within") ? "#2e7d32" : "#c62828") + "\"/>";
    s += "<text x=\"" + fmt("%.0f", label_w + plot_w + 6) + "\" y=\"" + fmt("%.1f", y + 13) + "\">" +
         (v > 0 ? sci(v) : std::string("exact")) + "</text></g>";
  }
  return s + "</svg>";
}

}  // namespace

std::string html_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string dashboard_index(const std::vector<json>& runs, size_t total, const std::string& version) {
  std::map<std::string, int> counts;
  std::string rows;
  for (const json& r : runs) {
    const std::string id = str(r, "id"), verdict = str(r, "verdict");
    ++counts[verdict];
    const std::string suite = str(r, "suite");
    rows += "<tr><td class=\"mono\"><a href=\"/runs/" + html_escape(id) + "\">" + html_escape(id) + "</a></td><td>" +
            html_escape(str(r, "time")) + "</td><td>" + html_escape(str(r, "source")) +
            (suite.empty() ? "" : " <span class=\"muted\">" + html_escape(suite) + "</span>") + "</td><td>" + planet_label(r) +
            "</td><td class=\"mono\">" + html_escape(str(r, "fixture")) + "</td><td>" +
            verdict_badge(verdict, str(r, "message")) + "</td>";
    if (ran(verdict))
      rows += "<td class=\"n\">" + sci(num(r, "max_abs")) + "</td><td class=\"n\">" + sci(num(r, "max_rel")) + "</td><td>" +
              (flag(r, "reload_identical") ? "same" : "<b>DIFFERS</b>") + "</td><td class=\"n\">" + fmt("%.1f", num(r, "total_ms")) +
              "</td>";
    else
      rows += "<td class=\"n\">-</td><td class=\"n\">-</td><td>-</td><td class=\"n\">-</td>";
    rows += "</tr>\n";
  }
  std::string summary = std::to_string(runs.size()) + (runs.size() == total ? "" : " of " + std::to_string(total)) + " runs";
  for (const char* v : {"EXACT", "PASS", "FAIL", "ERROR", "SKIP"})
    if (counts[v]) summary += " · " + std::to_string(counts[v]) + " " + v;
  std::string body = "<header><h1>planetbridge</h1><span class=\"muted\">" + html_escape(version) + "</span><span id=\"counts\">" +
                     summary + "</span><label><input type=\"checkbox\" id=\"auto\" checked> auto-refresh</label></header>\n";
  if (runs.empty())
    body += "<p id=\"runs\">No runs yet. Stream a model: <code>POST /api/v1/loom/stream/{planet}</code>, or run "
            "<code>planetbridge run SUITE.yaml</code> with the same <code>--data</code> folder.</p>\n";
  else
    body += "<table id=\"runs\"><thead><tr><th>run</th><th>time (UTC)</th><th>source</th><th>planet (engine)</th><th>model</th>"
            "<th>verdict</th><th>max|diff|</th><th>max rel</th><th>reload</th><th>ms</th></tr></thead><tbody>\n" +
            rows + "</tbody></table>\n";
  // Refetches this page and swaps the table in: one renderer (the server), no client templates.
  const std::string script = R"(
setInterval(async () => {
  if (!document.getElementById('auto').checked) return;
  try {
    const r = await fetch(location.href, {cache: 'no-store'});
    if (!r.ok) return;
    const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
    for (const id of ['runs', 'counts']) document.getElementById(id).replaceWith(doc.getElementById(id));
  } catch (e) { /* the server may be restarting: try again next time */ }
}, 3000);
)";
  return page("planetbridge runs", body, script);
}

std::string dashboard_run(const json& r) {
  const std::string id = str(r, "id"), verdict = str(r, "verdict"), model = str(r, "fixture");
  std::string b = "<p><a href=\"/\">← all runs</a></p>\n<h1><span class=\"mono\">" + html_escape(model) + "</span> " +
                  verdict_badge(verdict) + "</h1>\n<dl>";
  auto row = [&](const std::string& term, const std::string& html) {
    if (!html.empty()) b += "<dt>" + term + "</dt><dd>" + html + "</dd>";
  };
  const std::string suite = str(r, "suite");
  row("run", "<span class=\"mono\">" + html_escape(id) + "</span>");
  row("time (UTC)", html_escape(str(r, "time")));
  row("source", html_escape(str(r, "source")) + (suite.empty() ? "" : " · suite " + html_escape(suite)));
  row("planet", planet_label(r));
  row("native", str(r, "native") == "composed" ? "composed: " + html_escape(join(arr(r, "composed"), "; ")) : "stock");
  if (r.contains("tolerance"))
    row("tolerance", "|bridged − native| ≤ " + sci(num(r["tolerance"], "atol")) + " + " + sci(num(r["tolerance"], "rtol")) + " · |native|");
  if (!str(r, "message").empty()) row("message", "<pre>" + html_escape(str(r, "message")) + "</pre>");
  row("worst element", html_escape(str(r, "worst")));
  row("first diverging node", html_escape(str(r, "first_divergence")));
  if (ran(verdict)) row("reload", flag(r, "reload_identical") ? "bit-identical" : "<b>DIFFERS</b>");
  if (flag(r, "stored_entity"))
    row("checkpoint", html_escape(str(r, "entity")) + " (" + fmt("%.0f", num(r, "entity_bytes")) + " bytes) · <a href=\"/api/v1/entities/" +
                          html_escape(id) + "\">download</a>");
  if (num(r, "stream_bytes") > 0)
    row("stream", fmt("%.0f", num(r, "stream_bytes")) + " bytes · <a href=\"/api/v1/streams/" + html_escape(id) + "\">download</a>");
  row("JSON", "<a href=\"/api/v1/runs/" + html_escape(id) + "\">/api/v1/runs/" + html_escape(id) + "</a>");
  b += "</dl>\n";

  if (!arr(r, "outputs").empty()) {
    b += "<h2>Outputs</h2><table><thead><tr><th>output</th><th>bit-exact</th><th>within tolerance</th><th>max|diff|</th><th>max rel</th>"
         "<th>outside</th><th>worst element</th><th>native</th><th>bridged</th><th>reload</th></tr></thead><tbody>\n";
    for (const json& o : arr(r, "outputs"))
      b += "<tr><td class=\"mono\">" + html_escape(str(o, "name")) + "</td><td>" + (flag(o, "exact") ? "yes" : "no") + "</td><td>" +
           (flag(o, "within_tolerance") ? "yes" : "<b>no</b>") + "</td><td class=\"n\">" + sci(num(o, "max_abs")) +
           "</td><td class=\"n\">" + sci(num(o, "max_rel")) + "</td><td class=\"n\">" + fmt("%.0f", num(o, "violations")) +
           "</td><td class=\"mono\">" + html_escape(str(o, "worst_index")) + "</td><td class=\"n\">" + fmt("%.9g", num(o, "worst_native")) +
           "</td><td class=\"n\">" + fmt("%.9g", num(o, "worst_bridged")) + "</td><td>" +
           (flag(o, "reload_identical") ? "same" : "<b>DIFFERS</b>") + "</td></tr>\n";
    b += "</tbody></table>\n";
  }

  b += "<h2>Per-node divergence</h2>\n";
  const json& taps = arr(r, "taps");
  if (!str(r, "tap_error").empty()) b += "<p>The taps could not be compared: " + html_escape(str(r, "tap_error")) + "</p>\n";
  if (taps.empty()) {
    b += "<p class=\"muted\">No tapped node to compare (the stream has no taps, or the case did not run).</p>\n";
  } else {
    b += "<p class=\"muted\">max |bridged − native| of each tapped node's own output (compiled without fusion), in execution order.</p>\n" +
         divergence_chart(taps, r.contains("tolerance") ? num(r["tolerance"], "atol") : 0) +
         "\n<table><thead><tr><th>node</th><th>origin</th><th>max|diff|</th><th>max rel</th><th>within</th></tr></thead><tbody>\n";
    for (const json& t : taps)
      b += "<tr><td class=\"mono\">" + html_escape(str(t, "node")) + "</td><td class=\"mono\">" + html_escape(str(t, "origin")) +
           "</td><td class=\"n\">" + sci(num(t, "max_abs")) + "</td><td class=\"n\">" + sci(num(t, "max_rel")) + "</td><td>" +
           (flag(t, "within") ? "yes" : "<b>no</b> " + html_escape(str(t, "mismatch"))) + "</td></tr>\n";
    b += "</tbody></table>\n";
  }

  if (r.contains("ms") && r["ms"].is_object() && !r["ms"].empty()) {
    // JSON objects come back sorted by name: show the stages in pipeline order instead.
    std::vector<std::pair<std::string, double>> stages;
    for (const char* known : {"parse", "decode", "compile", "run", "taps", "save", "reload"})
      if (r["ms"].contains(known)) stages.emplace_back(known, num(r["ms"], known));
    for (const auto& [stage, ms] : r["ms"].items()) {
      const std::string name = stage;  // a lambda may not capture a structured binding before C++20 (clang)
      if (std::none_of(stages.begin(), stages.end(), [&](const auto& st) { return st.first == name; }))
        stages.emplace_back(name, ms.is_number() ? ms.get<double>() : 0.0);
    }
    double max_ms = 0;
    for (const auto& st : stages) max_ms = std::max(max_ms, st.second);
    b += "<h2>Timings</h2><table><tbody>\n";
    for (const auto& [stage, v] : stages) {
      b += "<tr><td>" + html_escape(stage) + "</td><td class=\"n\">" + fmt("%.2f", v) + " ms</td><td style=\"width:300px\"><div class=\"bar\" style=\"width:" +
           fmt("%.1f", max_ms > 0 ? 100 * v / max_ms : 0) + "%\"></div></td></tr>\n";
    }
    b += "</tbody></table>\n";
  }

  const json& graph = arr(r, "graph");
  if (!graph.empty()) {
    b += "<h2>Graph (" + std::to_string(graph.size()) + " nodes)</h2><table><thead><tr><th>#</th><th>node</th><th>op</th>"
         "<th>inputs</th><th>outputs</th><th>origin</th><th>attributes</th></tr></thead><tbody>\n";
    for (size_t i = 0; i < graph.size(); ++i) {
      const json& n = graph[i];
      std::string attrs;
      if (n.contains("attrs") && n["attrs"].is_object())
        for (const auto& [k, v] : n["attrs"].items()) attrs += (attrs.empty() ? "" : ", ") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
      b += "<tr><td class=\"n\">" + std::to_string(i) + "</td><td class=\"mono\">" + html_escape(str(n, "name")) + "</td><td>" +
           html_escape(str(n, "op")) + "</td><td class=\"mono\">" + html_escape(join(arr(n, "inputs"), ", ")) + "</td><td class=\"mono\">" +
           html_escape(join(arr(n, "outputs"), ", ")) + "</td><td class=\"mono\">" + html_escape(str(n, "origin")) +
           "</td><td class=\"mono\">" + html_escape(attrs) + "</td></tr>\n";
    }
    b += "</tbody></table>\n";
  } else if (!str(r, "graph_error").empty()) {
    b += "<h2>Graph</h2><p>" + html_escape(str(r, "graph_error")) + "</p>\n";
  }
  return page(model + " · " + verdict + " · planetbridge", b);
}

}  // namespace pb::host
