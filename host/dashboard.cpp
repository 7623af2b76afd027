#include "dashboard.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
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
nav{margin-bottom:.8em}nav a{margin-right:.2em}.pager{margin:.8em 0}.bad{color:#c62828}
form.filters{display:flex;flex-wrap:wrap;gap:.4em 1em;align-items:baseline;margin:.8em 0}
tr.group th{background:#e8eef5;font-weight:600}
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

std::string url_encode(const std::string& s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string o;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') o += static_cast<char>(c);
    else o += {'%', hex[c >> 4], hex[c & 15]};
  }
  return o;
}

namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

// "?k=v&..." of the non-empty values, URL-encoded and HTML-escaped for an attribute.
std::string query(const Params& params) {
  std::string q;
  for (const auto& [k, v] : params)
    if (!v.empty()) q += (q.empty() ? "?" : "&") + k + "=" + url_encode(v);
  return html_escape(q);
}

std::string fixture_href(const std::string& planet, const std::string& fixture) {
  return "/fixtures/" + html_escape(url_encode(planet)) + "/" + html_escape(url_encode(fixture));
}
std::string batch_href(const std::string& id) { return "/batches/" + html_escape(url_encode(id)); }
std::string compare_href(const std::string& a, const std::string& b) { return "/compare" + query({{"a", a}, {"b", b}}); }

std::string nav(const std::string& version) {
  return "<nav><a href=\"/\">batches</a> · <a href=\"/runs\">all runs</a>" +
         (version.empty() ? "" : " <span class=\"muted\">planetbridge " + html_escape(version) + "</span>") + "</nav>\n";
}

// "rows 101–200 of 1234 · ← newer · older →", the links keeping `params` (the filters).
std::string pager(const std::string& path, Params params, const Paging& p, const char* what) {
  const size_t first = p.total == 0 ? 0 : std::min(p.total, p.offset() + 1), last = std::min(p.total, p.offset() + p.limit);
  std::string s = "<p class=\"pager\">" + std::string(what) + " " + std::to_string(first) + "–" + std::to_string(last) + " of " +
                  std::to_string(p.total) + (p.more ? "+" : "");
  auto link = [&](size_t page, const char* label) {
    Params q = params;
    q.emplace_back("page", page > 1 ? std::to_string(page) : "");
    if (p.limit != 0) q.emplace_back("limit", std::to_string(p.limit));
    s += " · <a rel=\"" + std::string(page < p.page ? "prev" : "next") + "\" href=\"" + path + query(q) + "\">" + label + "</a>";
  };
  if (p.page > 1) link(p.page - 1, "← newer");
  if (p.offset() + p.limit < p.total) link(p.page + 1, "older →");
  return s + "</p>\n";
}

// Milliseconds since the epoch of a catalog time ("2026-12-03T04:28:18.692Z"), or -1.
int64_t parse_utc(const std::string& t) {
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(t.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(::timegm(&tm)) * 1000 + ms;
}

std::string duration(const json& batch) {
  const int64_t t0 = parse_utc(str(batch, "started")), t1 = parse_utc(str(batch, "ended"));
  if (t1 < 0) return "<i>running</i>";
  if (t0 < 0) return "-";
  const double s = static_cast<double>(t1 - t0) / 1000;
  return s < 60 ? fmt("%.1f s", s) : s < 3600 ? fmt("%.0f min ", std::floor(s / 60)) + fmt("%.0f s", std::fmod(s, 60))
                                              : fmt("%.0f h ", std::floor(s / 3600)) + fmt("%.0f min", std::fmod(s, 3600) / 60);
}

const char* const kVerdicts[] = {"EXACT", "PASS", "FAIL", "ERROR", "SKIP"};

// A batch's count of runs with `verdict` (its counts are keyed in lower case).
double verdict_count(const json& batch, const char* verdict) {
  std::string key = verdict;
  std::transform(key.begin(), key.end(), key.begin(), [](char c) { return static_cast<char>(std::tolower(c)); });
  return batch.contains("counts") ? num(batch["counts"], key.c_str()) : 0;
}

std::string count_cells(const json& batch) {
  std::string s = "<td class=\"n\">" + fmt("%.0f", batch.contains("counts") ? num(batch["counts"], "total") : 0) + "</td>";
  for (const char* v : kVerdicts) {
    const double n = verdict_count(batch, v);
    s += "<td class=\"n\">" + (n > 0 ? "<span class=\"v v-" + std::string(v) + "\">" + fmt("%.0f", n) + "</span>" : std::string("·")) + "</td>";
  }
  return s;
}

std::string verdict_options(const std::string& selected) {
  std::string s = "<option value=\"\">any</option>";
  for (const char* v : kVerdicts) s += std::string("<option") + (selected == v ? " selected" : "") + ">" + v + "</option>";
  return s;
}

std::string options(const std::vector<std::string>& values, const std::string& selected) {
  std::string s = "<option value=\"\">any</option>";
  for (const std::string& v : values)
    s += "<option value=\"" + html_escape(v) + "\"" + (v == selected ? " selected" : "") + ">" + (v.empty() ? "(none)" : html_escape(v)) +
         "</option>";
  return s;
}

std::string short_text(std::string s, size_t n) {
  if (s.size() > n) s = s.substr(0, n - 1) + "…";
  return s;
}

// max |diff| of each run over time (oldest left), on a log scale; exact runs and runs without
// a comparison (ERROR, SKIP) sit on the bottom band. Points are coloured by verdict and link to
// their run; a dashed line marks where the engine version changed.
std::string history_chart(const std::vector<json>& newest_first) {
  const std::vector<json> runs(newest_first.rbegin(), newest_first.rend());
  double lo = HUGE_VAL, hi = 0;
  for (const json& r : runs)
    if (num(r, "max_abs") > 0) lo = std::min(lo, num(r, "max_abs")), hi = std::max(hi, num(r, "max_abs"));
  if (hi == 0) lo = 1e-9, hi = 1e-6;
  const int d0 = static_cast<int>(std::floor(std::log10(lo))), d1 = std::max(d0 + 1, static_cast<int>(std::ceil(std::log10(hi))));
  const double left = 56, top = 18, plot_w = 640, plot_h = 150, band = 18, pad = 12, width = left + plot_w + 20, height = top + plot_h + band + 26;
  auto x = [&](size_t i) {
    return left + pad + (runs.size() < 2 ? 0 : (plot_w - 2 * pad) * static_cast<double>(i) / static_cast<double>(runs.size() - 1));
  };
  auto y = [&](double v) { return v > 0 ? top + plot_h - (std::log10(v) - d0) / (d1 - d0) * plot_h : top + plot_h + band / 2 + 4; };
  std::string s = "<svg id=\"history\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + fmt("%.0f", width) + "\" height=\"" + fmt("%.0f", height) +
                  "\" role=\"img\" aria-label=\"max abs error per run over time\" font-size=\"11\">";
  for (int d = d0; d <= d1; ++d) {
    const std::string ys = fmt("%.1f", y(std::pow(10.0, d)));
    s += "<line x1=\"" + fmt("%.0f", left) + "\" x2=\"" + fmt("%.0f", left + plot_w) + "\" y1=\"" + ys + "\" y2=\"" + ys +
         "\" stroke=\"#e0e0e0\"/><text x=\"" + fmt("%.0f", left - 6) + "\" y=\"" + ys + "\" dy=\"4\" text-anchor=\"end\" fill=\"#777\">1e" +
         std::to_string(d) + "</text>";
  }
  s += "<text x=\"" + fmt("%.0f", left - 6) + "\" y=\"" + fmt("%.1f", y(0)) + "\" dy=\"4\" text-anchor=\"end\" fill=\"#777\">0 / none</text>";
  std::string points, path;
  for (size_t i = 0; i < runs.size(); ++i) {
    const json& r = runs[i];
    const std::string engine = str(r, "engine"), verdict = str(r, "verdict");
    if (i > 0 && !engine.empty() && engine != str(runs[i - 1], "engine")) {
      const std::string xs = fmt("%.1f", (x(i - 1) + x(i)) / 2);
      s += "<g class=\"engine-change\"><title>engine " + html_escape(str(runs[i - 1], "engine")) + " → " + html_escape(engine) +
           "</title><line x1=\"" + xs + "\" x2=\"" + xs + "\" y1=\"" + fmt("%.0f", top - 4) + "\" y2=\"" + fmt("%.0f", top + plot_h + band) +
           "\" stroke=\"#555\" stroke-dasharray=\"3 3\"/><text x=\"" + xs + "\" y=\"" + fmt("%.0f", top - 6) + "\" dx=\"3\" fill=\"#555\">" +
           html_escape(short_text(engine, 24)) + "</text></g>";
    }
    const double v = num(r, "max_abs");
    const char* colour = verdict == "EXACT" ? "#1b5e20" : verdict == "PASS" ? "#43a047" : verdict == "FAIL" ? "#c62828"
                                                      : verdict == "ERROR" ? "#6a1b9a" : "#b26a00";
    const std::string xs = fmt("%.1f", x(i)), ys = fmt("%.1f", y(ran(verdict) ? v : 0));
    if (ran(verdict) && v > 0) path += (path.empty() ? "M" : " L") + xs + " " + ys;
    points += "<a href=\"/runs/" + html_escape(url_encode(str(r, "id"))) + "\"><circle class=\"pt v-" + html_escape(verdict) + "\" cx=\"" +
              xs + "\" cy=\"" + ys + "\" r=\"4\" fill=\"" + colour + "\"><title>" +
              html_escape(str(r, "time") + " · " + verdict + " · max|diff| " + sci(v) + (engine.empty() ? "" : " · " + engine)) +
              "</title></circle></a>";
  }
  if (!path.empty()) s += "<path d=\"" + path + "\" fill=\"none\" stroke=\"#b0bec5\"/>";
  const std::vector<std::pair<const char*, const char*>> legend = {
      {"EXACT", "#1b5e20"}, {"PASS", "#43a047"}, {"FAIL", "#c62828"}, {"ERROR", "#6a1b9a"}, {"SKIP", "#b26a00"}};
  double lx = left;
  for (const auto& [name, colour] : legend) {
    s += "<circle cx=\"" + fmt("%.0f", lx) + "\" cy=\"" + fmt("%.0f", height - 8) + "\" r=\"4\" fill=\"" + colour + "\"/><text x=\"" +
         fmt("%.0f", lx + 7) + "\" y=\"" + fmt("%.0f", height - 4) + "\">" + name + "</text>";
    lx += 70;
  }
  s += "<text x=\"" + fmt("%.0f", lx + 10) + "\" y=\"" + fmt("%.0f", height - 4) + "\" fill=\"#555\">┆ engine changed</text>";
  return s + points + "</svg>";
}

// One side of a compared case: its verdict, error and run.
std::string diff_side_cell(const json& side) {
  if (!side.is_object()) return "<td class=\"muted\">-</td>";
  const std::string run = str(side, "run");
  return "<td>" + verdict_badge(str(side, "verdict")) + (ran(str(side, "verdict")) ? " " + sci(num(side, "max_abs")) : "") +
         (run.empty() ? "" : " <a class=\"mono\" href=\"/runs/" + html_escape(url_encode(run)) + "\">run</a>") + "</td>";
}

}  // namespace

// What a batch selected beyond its suite ("shard 2/4 · planets sklearn"): shards and filtered
// runs of one suite sit side by side on the batches page.
std::string selection(const json& batch) {
  const json f = batch.contains("filters") && batch["filters"].is_object() ? batch["filters"] : json::object();
  std::string s;
  auto add = [&](const std::string& part) { s += (s.empty() ? "" : " · ") + part; };
  const std::string shard = str(f, "shard");
  if (!shard.empty() && shard != "1/1") add("shard " + shard);
  for (const char* key : {"planets", "layers"})
    if (f.contains(key) && f[key].is_array() && !f[key].empty()) {
      std::string list;
      for (const json& v : f[key]) list += (list.empty() ? "" : ",") + (v.is_string() ? v.get<std::string>() : v.dump());
      add(std::string(key) + " " + list);
    }
  if (!str(f, "fixture").empty()) add("fixture " + str(f, "fixture"));
  return s;
}

std::string dashboard_batches(const std::vector<json>& batches, const Paging& paging, const std::string& version) {
  std::string b = nav(version) + "<h1>Batches</h1>\n<p class=\"muted\">Each <code>planetbridge run</code> of a suite, newest first, "
                  "compared with the previous finished batch of the same suite. Runs of <code>serve</code> and <code>check</code> "
                  "belong to no batch: <a href=\"/runs\">all runs</a>.</p>\n";
  if (batches.empty() && paging.total == 0)
    return page("planetbridge batches",
                b + "<p id=\"batches\">No batches yet: run <code>planetbridge run SUITE.yaml</code> with the same <code>--data</code> "
                    "folder.</p>\n");
  b += "<table id=\"batches\"><thead><tr><th>batch</th><th>suite</th><th>started (UTC)</th><th>duration</th><th>runs</th><th>EXACT</th>"
       "<th>PASS</th><th>FAIL</th><th>ERROR</th><th>SKIP</th><th>regressions</th><th>fixed</th><th>vs previous</th><th>host</th></tr>"
       "</thead><tbody>\n";
  for (const json& batch : batches) {
    const std::string id = str(batch, "id");
    b += "<tr class=\"batch\"><td class=\"mono\"><a href=\"" + batch_href(id) + "\">" + html_escape(id) + "</a></td><td>" +
         html_escape(str(batch, "suite")) + (selection(batch).empty() ? "" : "<br><span class=\"muted\">" + html_escape(selection(batch)) + "</span>") +
         "</td><td>" + html_escape(str(batch, "started")) + "</td><td class=\"n\">" + duration(batch) +
         "</td>" + count_cells(batch);
    if (batch.contains("previous") && batch["previous"].is_string()) {
      const json& c = batch["changes"];
      const double regressions = num(c, "regressions");
      b += "<td class=\"n\">" + (regressions > 0 ? "<b class=\"bad\">" + fmt("%.0f", regressions) + "</b>" : std::string("0")) +
           "</td><td class=\"n\">" + fmt("%.0f", num(c, "fixed")) + "</td><td><a class=\"compare\" href=\"" +
           compare_href(batch["previous"], id) + "\">compare</a> <span class=\"muted mono\">" + html_escape(batch["previous"]) +
           "</span></td>";
    } else {
      b += "<td class=\"n\">-</td><td class=\"n\">-</td><td class=\"muted\">first of its suite</td>";
    }
    const json machine = batch.contains("machine") && batch["machine"].is_object() ? batch["machine"] : json::object();
    b += "<td>" + html_escape(str(batch, "host_version")) + " <span class=\"muted\">" + html_escape(str(machine, "isa")) + "</span></td></tr>\n";
  }
  b += "</tbody></table>\n" + pager("/", {}, paging, "batches");
  return page("planetbridge batches", b);
}

std::string dashboard_runs(const std::vector<json>& runs, const RunFilter& filter, const Paging& paging, const std::string& version) {
  std::map<std::string, int> counts;
  std::string rows;
  for (const json& r : runs) {
    const std::string id = str(r, "id"), verdict = str(r, "verdict"), batch = str(r, "batch");
    ++counts[verdict];
    const std::string suite = str(r, "suite");
    rows += "<tr><td class=\"mono\"><a href=\"/runs/" + html_escape(url_encode(id)) + "\">" + html_escape(id) + "</a></td><td>" +
            html_escape(str(r, "time")) + "</td><td>" + html_escape(str(r, "source")) +
            (suite.empty() ? "" : " <span class=\"muted\">" + html_escape(suite) + "</span>") +
            (batch.empty() ? "" : " <a class=\"muted\" href=\"" + batch_href(batch) + "\">batch</a>") + "</td><td>" + planet_label(r) +
            "</td><td class=\"mono\"><a href=\"" + fixture_href(str(r, "planet"), str(r, "fixture")) + "\">" +
            html_escape(str(r, "fixture")) + "</a></td><td>" + verdict_badge(verdict, str(r, "message")) + "</td>";
    if (ran(verdict))
      rows += "<td class=\"n\">" + sci(num(r, "max_abs")) + "</td><td class=\"n\">" + sci(num(r, "max_rel")) + "</td><td>" +
              (flag(r, "reload_identical") ? "same" : "<b>DIFFERS</b>") + "</td><td class=\"n\">" + fmt("%.1f", num(r, "total_ms")) +
              "</td>";
    else
      rows += "<td class=\"n\">-</td><td class=\"n\">-</td><td>-</td><td class=\"n\">-</td>";
    rows += "</tr>\n";
  }
  std::string summary = std::to_string(runs.size()) +
                        (runs.size() == paging.total ? "" : " of " + std::to_string(paging.total) + (paging.more ? "+" : "")) + " runs";
  for (const char* v : kVerdicts)
    if (counts[v]) summary += " · " + std::to_string(counts[v]) + " " + v;
  const Params params = {{"batch", filter.batch}, {"verdict", filter.verdict}, {"planet", filter.planet},
                         {"layer", filter.layer},  {"fixture", filter.fixture_glob}, {"since", filter.since}};
  std::string body = nav(version) + "<header><h1>Runs</h1><span id=\"counts\">" + summary +
                     "</span><label><input type=\"checkbox\" id=\"auto\" checked> auto-refresh</label></header>\n"
                     "<form class=\"filters\" method=\"get\" action=\"/runs\">"
                     "<label>batch <input name=\"batch\" size=\"26\" value=\"" + html_escape(filter.batch) + "\"></label>"
                     "<label>verdict <select name=\"verdict\">" + verdict_options(filter.verdict) + "</select></label>"
                     "<label>planet <input name=\"planet\" size=\"10\" value=\"" + html_escape(filter.planet) + "\"></label>"
                     "<label>layer <input name=\"layer\" size=\"10\" value=\"" + html_escape(filter.layer) + "\"></label>"
                     "<label>fixture <input name=\"fixture\" size=\"16\" placeholder=\"glob: mlp_*\" value=\"" +
                     html_escape(filter.fixture_glob) + "\"></label>"
                     "<label>since <input name=\"since\" size=\"12\" placeholder=\"2026-12-01\" value=\"" + html_escape(filter.since) +
                     "\"></label><button>filter</button></form>\n";
  if (runs.empty())
    body += paging.total == 0 && std::all_of(params.begin(), params.end(), [](const auto& p) { return p.second.empty(); })
                ? "<p id=\"runs\">No runs yet. Stream a model: <code>POST /api/v1/loom/stream/{planet}</code>, or run "
                  "<code>planetbridge run SUITE.yaml</code> with the same <code>--data</code> folder.</p>\n"
                : "<p id=\"runs\">No run matches on this page.</p>\n";
  else
    body += "<table id=\"runs\"><thead><tr><th>run</th><th>time (UTC)</th><th>source</th><th>planet (engine)</th><th>model</th>"
            "<th>verdict</th><th>max|diff|</th><th>max rel</th><th>reload</th><th>ms</th></tr></thead><tbody>\n" +
            rows + "</tbody></table>\n";
  body += pager("/runs", params, paging, "runs");
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

std::string dashboard_batch(const json& batch, const std::vector<json>& groups, const std::vector<json>& runs, const RunFilter& filter,
                            const Paging& paging) {
  const std::string id = str(batch, "id");
  std::string b = nav(str(batch, "host_version")) + "<h1>Batch <span class=\"mono\">" + html_escape(id) + "</span></h1>\n<dl>";
  auto row = [&](const std::string& term, const std::string& html) {
    if (!html.empty()) b += "<dt>" + term + "</dt><dd>" + html + "</dd>";
  };
  row("suite", html_escape(str(batch, "suite")) + " <span class=\"muted\">" + html_escape(str(batch, "suite_file")) + " · " +
                   html_escape(str(batch, "suite_hash")) + "</span>");
  row("started (UTC)", html_escape(str(batch, "started")));
  row("duration", duration(batch));
  std::string count_text = fmt("%.0f runs", batch.contains("counts") ? num(batch["counts"], "total") : 0);
  for (const char* v : kVerdicts)
    if (verdict_count(batch, v) > 0) count_text += " · " + fmt("%.0f ", verdict_count(batch, v)) + verdict_badge(v);
  row("runs", count_text);
  if (batch.contains("filters") && batch["filters"].is_object() && !batch["filters"].empty())
    row("filters", "<span class=\"mono\">" + html_escape(batch["filters"].dump()) + "</span>");
  const json machine = batch.contains("machine") && batch["machine"].is_object() ? batch["machine"] : json::object();
  row("machine", html_escape(str(machine, "cpu")) + " · " + html_escape(str(machine, "isa")) + " · " + fmt("%.0f threads", num(machine, "threads")));
  row("host", html_escape(str(batch, "host_version")));
  if (batch.contains("previous") && batch["previous"].is_string())
    row("previous", "<a class=\"mono\" href=\"" + batch_href(batch["previous"]) + "\">" + html_escape(batch["previous"]) +
                        "</a> · <a id=\"compare\" href=\"" + compare_href(batch["previous"], id) + "\">compare with it</a>");
  row("JSON", "<a href=\"/api/v1" + batch_href(id) + "\">/api/v1" + batch_href(id) + "</a>");
  b += "</dl>\n";

  std::vector<std::string> planets, layers;
  for (const json& g : groups) {
    for (auto [list, key] : {std::pair<std::vector<std::string>*, const char*>{&planets, "planet"}, {&layers, "layer"}})
      if (std::find(list->begin(), list->end(), str(g, key)) == list->end()) list->push_back(str(g, key));
  }
  std::sort(layers.begin(), layers.end());
  b += "<form id=\"filter\" class=\"filters\" method=\"get\" action=\"" + batch_href(id) + "\">"
       "<label>verdict <select name=\"verdict\">" + verdict_options(filter.verdict) + "</select></label>"
       "<label>planet <select name=\"planet\">" + options(planets, filter.planet) + "</select></label>"
       "<label>layer <select name=\"layer\">" + options(layers, filter.layer) + "</select></label>"
       "<label>fixture <input name=\"fixture\" size=\"18\" placeholder=\"glob: mlp_*\" value=\"" + html_escape(filter.fixture_glob) +
       "\"></label><button>ask the server</button> <span id=\"shown\" class=\"muted\"></span></form>\n"
       "<p class=\"muted\">Changing a field filters the rows of this page at once (kept in the URL after #); "
       "<i>ask the server</i> filters the whole batch, page by page.</p>\n";
  if (runs.empty()) {
    b += "<p id=\"rows\">No run of this batch matches on this page.</p>\n";
  } else {
    b += "<table id=\"rows\"><thead><tr><th>fixture</th><th>verdict</th><th>max|diff|</th><th>max rel</th><th>ms</th><th>engine</th>"
         "<th>run</th><th>message</th></tr></thead><tbody>\n";
    std::string group;
    for (const json& r : runs) {
      const std::string planet = str(r, "planet"), layer = str(r, "layer"), verdict = str(r, "verdict"), key = planet + "/" + layer;
      if (key != group) {
        group = key;
        size_t in_batch = 0;
        for (const json& g : groups)
          if (str(g, "planet") == planet && str(g, "layer") == layer) in_batch += static_cast<size_t>(num(g, "runs"));
        b += "<tr class=\"group\" data-group=\"" + html_escape(key) + "\"><th colspan=\"8\">" + html_escape(planet) + " · " +
             (layer.empty() ? "<span class=\"muted\">no layer</span>" : html_escape(layer)) + " <span class=\"muted\">" +
             std::to_string(in_batch) + " runs in the batch</span></th></tr>\n";
      }
      const std::string run = str(r, "id");
      b += "<tr class=\"run\" data-group=\"" + html_escape(key) + "\" data-verdict=\"" + html_escape(verdict) + "\" data-planet=\"" +
           html_escape(planet) + "\" data-layer=\"" + html_escape(layer) + "\" data-fixture=\"" + html_escape(str(r, "fixture")) +
           "\"><td class=\"mono\"><a class=\"fixture\" href=\"" + fixture_href(planet, str(r, "fixture")) + "\">" +
           html_escape(str(r, "fixture")) + "</a></td><td>" + verdict_badge(verdict) + "</td>" +
           (ran(verdict) ? "<td class=\"n\">" + sci(num(r, "max_abs")) + "</td><td class=\"n\">" + sci(num(r, "max_rel")) + "</td>"
                         : std::string("<td class=\"n\">-</td><td class=\"n\">-</td>")) +
           "<td class=\"n\">" + fmt("%.1f", num(r, "total_ms")) + "</td><td>" + html_escape(str(r, "engine")) +
           "</td><td class=\"mono\"><a href=\"/runs/" + html_escape(url_encode(run)) + "\">" + html_escape(run) + "</a></td><td>" +
           html_escape(short_text(str(r, "message"), 120)) + "</td></tr>\n";
    }
    b += "</tbody></table>\n";
  }
  b += pager(batch_href(id), {{"verdict", filter.verdict}, {"planet", filter.planet}, {"layer", filter.layer}, {"fixture", filter.fixture_glob}},
             paging, "runs");
  // Filters the rows shown without a round trip, as the server would (fixture: a GLOB), and
  // keeps the filter in the URL's hash so a link reproduces the view.
  const std::string script = R"(
const form = document.getElementById('filter');
const rows = [...document.querySelectorAll('#rows tr.run')], groups = [...document.querySelectorAll('#rows tr.group')];
const keys = ['verdict', 'planet', 'layer', 'fixture'];
function glob(p) {
  let re = '';
  for (let i = 0; i < p.length; ++i) {
    const c = p[i], close = c === '[' ? p.indexOf(']', i + 2) : -1;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (close > 0) { re += '[' + p.slice(i + 1, close).replace(/\\/g, '\\\\') + ']'; i = close; }
    else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp('^' + re + '$');
}
function apply(updateHash) {
  const f = {};
  for (const k of keys) if (form.elements[k].value) f[k] = form.elements[k].value;
  const fixture = f.fixture ? glob(f.fixture) : null;
  let shown = 0;
  for (const r of rows) {
    const d = r.dataset;
    r.hidden = !((!f.verdict || d.verdict === f.verdict) && (!f.planet || d.planet === f.planet) &&
                 (!f.layer || d.layer === f.layer) && (!fixture || fixture.test(d.fixture)));
    if (!r.hidden) ++shown;
  }
  for (const g of groups) g.hidden = !rows.some(r => !r.hidden && r.dataset.group === g.dataset.group);
  document.getElementById('shown').textContent = shown + ' of ' + rows.length + ' rows of this page shown';
  if (updateHash) history.replaceState(null, '', location.pathname + location.search + (shown === rows.length && !Object.keys(f).length ? '' : '#' + new URLSearchParams(f)));
}
if (location.hash.length > 1) {
  const h = new URLSearchParams(location.hash.slice(1));
  for (const k of keys) if (h.has(k)) form.elements[k].value = h.get(k);
}
form.addEventListener('input', () => apply(true));
apply(false);
)";
  return page("batch " + id + " · planetbridge", b, script);
}

std::string dashboard_fixture(const std::string& planet, const std::string& fixture, const std::vector<json>& runs, const Paging& paging) {
  std::string b = nav("") + "<h1><span class=\"mono\">" + html_escape(fixture) + "</span> on " + html_escape(planet) + "</h1>\n"
                  "<p class=\"muted\">Every run of this case, newest first. The chart shows this page's runs, oldest left.</p>\n" +
                  history_chart(runs) + "\n<table id=\"history-rows\"><thead><tr><th>time (UTC)</th><th>verdict</th><th>max|diff|</th>"
                  "<th>max rel</th><th>ms</th><th>engine</th><th>batch</th><th>run</th><th>message</th></tr></thead><tbody>\n";
  for (const json& r : runs) {
    const std::string verdict = str(r, "verdict"), run = str(r, "id"), batch = str(r, "batch");
    b += "<tr><td>" + html_escape(str(r, "time")) + "</td><td>" + verdict_badge(verdict) + "</td>" +
         (ran(verdict) ? "<td class=\"n\">" + sci(num(r, "max_abs")) + "</td><td class=\"n\">" + sci(num(r, "max_rel")) + "</td>"
                       : std::string("<td class=\"n\">-</td><td class=\"n\">-</td>")) +
         "<td class=\"n\">" + fmt("%.1f", num(r, "total_ms")) + "</td><td>" + html_escape(str(r, "engine")) + "</td><td class=\"mono\">" +
         (batch.empty() ? "<span class=\"muted\">" + html_escape(str(r, "source")) + "</span>"
                        : "<a href=\"" + batch_href(batch) + "\">" + html_escape(batch) + "</a>") +
         "</td><td class=\"mono\"><a href=\"/runs/" + html_escape(url_encode(run)) + "\">" + html_escape(run) + "</a></td><td>" +
         html_escape(short_text(str(r, "message"), 120)) + "</td></tr>\n";
  }
  b += "</tbody></table>\n" + pager(fixture_href(planet, fixture), {}, paging, "runs");
  return page(fixture + " on " + planet + " · planetbridge", b);
}

std::string dashboard_compare(const json& a, const json& b, const json& diff) {
  const std::string ida = str(a, "id"), idb = str(b, "id");
  std::string s = nav(str(b, "host_version")) + "<h1>Compare</h1>\n<p>before <a class=\"mono\" href=\"" + batch_href(ida) + "\">" +
                  html_escape(ida) + "</a> (" + html_escape(str(a, "suite")) + ", " + html_escape(str(a, "started")) +
                  ") → after <a class=\"mono\" href=\"" + batch_href(idb) + "\">" + html_escape(idb) + "</a> (" +
                  html_escape(str(b, "suite")) + ", " + html_escape(str(b, "started")) + ")</p>\n";
  const std::pair<const char*, const char*> sections[] = {{"regressions", "Regressions"}, {"fixed", "Fixed"},
                                                          {"new", "New"},                 {"removed", "Removed"},
                                                          {"new_skip", "Newly skipped"},  {"slower", "Slower"},
                                                          {"engine_changes", "Engine changes"}};
  std::string summary;
  for (const auto& [key, title] : sections)
    summary += (summary.empty() ? "" : " · ") + std::string("<a href=\"#") + key + "\">" + std::to_string(arr(diff, key).size()) + " " +
               title + "</a>";
  s += "<p id=\"summary\">" + summary + " · " + fmt("%.0f", num(diff, "unchanged")) + " unchanged</p>\n";
  for (const auto& [key, title] : sections) {
    const json& rows = arr(diff, key);
    s += "<h2 id=\"" + std::string(key) + "\">" + title + " (" + std::to_string(rows.size()) + ")</h2>\n";
    if (rows.empty()) {
      s += "<p class=\"muted\">none</p>\n";
      continue;
    }
    s += "<table class=\"diff\"><thead><tr><th>planet</th><th>fixture</th><th>before</th><th>after</th><th>why</th></tr></thead><tbody>\n";
    for (const json& r : rows)
      s += "<tr><td>" + html_escape(str(r, "planet")) + "</td><td class=\"mono\"><a href=\"" + fixture_href(str(r, "planet"), str(r, "fixture")) +
           "\">" + html_escape(str(r, "fixture")) + "</a></td>" + diff_side_cell(r.value("before", json())) +
           diff_side_cell(r.value("after", json())) + "<td>" + html_escape(str(r, "why")) + "</td></tr>\n";
    s += "</tbody></table>\n";
  }
  return page("compare " + ida + " → " + idb + " · planetbridge", s);
}

std::string dashboard_run(const json& r) {
  const std::string id = str(r, "id"), verdict = str(r, "verdict"), model = str(r, "fixture");
  std::string b = nav("") + "<h1><span class=\"mono\">" + html_escape(model) + "</span> " +
                  verdict_badge(verdict) + "</h1>\n<dl>";
  auto row = [&](const std::string& term, const std::string& html) {
    if (!html.empty()) b += "<dt>" + term + "</dt><dd>" + html + "</dd>";
  };
  const std::string suite = str(r, "suite");
  row("run", "<span class=\"mono\">" + html_escape(id) + "</span>");
  if (!str(r, "batch").empty())
    row("batch", "<a class=\"mono\" href=\"" + batch_href(str(r, "batch")) + "\">" + html_escape(str(r, "batch")) + "</a>");
  row("history", "<a href=\"" + fixture_href(str(r, "planet"), model) + "\">every run of " + html_escape(model) + " on " +
                     html_escape(str(r, "planet")) + "</a>");
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
