#include "diff.h"

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "planetbridge/error.h"

namespace pb::host {

using nlohmann::json;

namespace {

std::string str(const json& j, const char* key) { return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : ""; }
double num(const json& j, const char* key) { return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0.0; }
bool passed(const std::string& verdict) { return verdict == "EXACT" || verdict == "PASS"; }
bool failed(const std::string& verdict) { return verdict == "FAIL" || verdict == "ERROR"; }

json side(const json& r) {
  return {{"verdict", str(r, "verdict")}, {"max_abs", num(r, "max_abs")}, {"engine", str(r, "engine")}, {"ms", num(r, "total_ms")},
          {"run_ms", num(r, "run_median_ms")},
          {"run", str(r, "id")}};
}

std::string short_num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

}  // namespace

json diff_runs(const std::vector<json>& before, const std::vector<json>& after, const DiffOptions& o) {
  using Key = std::pair<std::string, std::string>;
  auto keyed = [](const std::vector<json>& rows) {
    std::map<Key, json> m;
    for (const json& r : rows) m.emplace(Key{str(r, "planet"), str(r, "fixture")}, r);  // newest first: the first is kept
    return m;
  };
  const std::map<Key, json> b = keyed(before), a = keyed(after);
  json d = {{"regressions", json::array()}, {"fixed", json::array()},  {"new", json::array()},
            {"removed", json::array()},     {"new_skip", json::array()}, {"slower", json::array()},
            {"engine_changes", json::array()}, {"unchanged", 0}};
  auto row = [](const Key& k, const json* was, const json* now, const std::string& why) {
    json r = {{"planet", k.first}, {"fixture", k.second}, {"why", why}};
    r["before"] = was ? side(*was) : json(nullptr);
    r["after"] = now ? side(*now) : json(nullptr);
    return r;
  };
  for (const auto& [k, now] : a) {
    auto it = b.find(k);
    const std::string v = str(now, "verdict");
    if (it == b.end()) {
      d["new"].push_back(row(k, nullptr, &now, "new case: " + v));
      if (failed(v)) d["regressions"].push_back(row(k, nullptr, &now, "new case, " + v + ": " + str(now, "message")));
      continue;
    }
    const json& was = it->second;
    const std::string w = str(was, "verdict");
    bool changed = false;
    if (passed(w) && failed(v)) {
      d["regressions"].push_back(row(k, &was, &now, w + " -> " + v + ": " + str(now, "message")));
      changed = true;
    } else if (failed(w) && passed(v)) {
      d["fixed"].push_back(row(k, &was, &now, w + " -> " + v));
      changed = true;
    } else if (v == "SKIP" && w != "SKIP") {
      d["new_skip"].push_back(row(k, &was, &now, w + " -> SKIP: " + str(now, "message")));
      changed = true;
    }
    if (passed(w) && passed(v)) {
      const double e0 = num(was, "max_abs"), e1 = num(now, "max_abs");
      const double atol = now.contains("tolerance") ? num(now["tolerance"], "atol") : 0.0;
      if (e1 > o.error_factor * e0 && e1 > o.bound_share * atol && e1 > 0) {
        d["regressions"].push_back(row(k, &was, &now, "max |diff| " + short_num(e0) + " -> " + short_num(e1) + " (over " +
                                                          short_num(o.error_factor) + "x and " + short_num(100 * o.bound_share) +
                                                          "% of atol " + short_num(atol) + ")"));
        changed = true;
      }
    }
    const double t0 = num(was, "run_median_ms"), t1 = num(now, "run_median_ms");
    if (t0 > 0 && t1 > 0 && t1 > o.slower_factor * t0 && t1 - t0 >= o.slower_min_ms) {
      const std::string why = "steady run " + short_num(t0) + " ms -> " + short_num(t1) + " ms (median of repeats)";
      d["slower"].push_back(row(k, &was, &now, why));
      if (o.fail_on_slower) d["regressions"].push_back(row(k, &was, &now, "slower: " + why));
      changed = true;
    }
    if (str(was, "engine") != str(now, "engine") && !str(was, "engine").empty()) {
      d["engine_changes"].push_back(row(k, &was, &now, str(was, "engine") + " -> " + str(now, "engine")));
      changed = true;
    }
    if (!changed) d["unchanged"] = d["unchanged"].get<int>() + 1;
  }
  for (const auto& [k, was] : b)
    if (!a.count(k)) d["removed"].push_back(row(k, &was, nullptr, "removed: was " + str(was, "verdict")));
  d["regressed"] = !d["regressions"].empty();
  return d;
}

std::vector<json> diff_side(const Catalog& catalog, const std::string& which, const std::string& suite, const std::string& excluding,
                            std::string* label) {
  std::string batch = which;
  if (which == "latest") {
    auto latest = catalog.latest_batch(suite, excluding);
    if (!latest) throw Error("--baseline", "no earlier finished batch of suite \"" + suite + "\" in " + catalog.path());
    batch = *latest;
  }
  if (catalog.batch(batch)) {
    *label = "batch " + batch;
    RunFilter f;
    f.batch = batch;
    f.limit = SIZE_MAX >> 1;
    return catalog.runs(f);
  }
  std::ifstream in(which);
  if (!in) throw Error(which, "neither a batch in " + catalog.path() + " nor a readable file (expected a run --json report or a runs --json listing)");
  json doc;
  try {
    doc = json::parse(in);
  } catch (const json::exception& e) {
    throw Error(which, std::string("not JSON: ") + e.what());
  }
  const char* list = doc.is_object() && doc.contains("cases") ? "cases" : doc.is_object() && doc.contains("runs") ? "runs" : nullptr;
  if (!list || !doc[list].is_array()) throw Error(which, "expected a run --json report (\"cases\") or a runs --json listing (\"runs\")");
  std::vector<json> rows;
  for (const json& c : doc[list]) {
    if (!c.is_object() || !c.contains("planet") || !c.contains("fixture") || !c.contains("verdict"))
      throw Error(which + ": " + list + "[" + std::to_string(rows.size()) + "]", "expected an object with planet, fixture and verdict");
    json r = list == std::string("cases") ? run_summary(c) : c;
    if (c.contains("run_id")) r["id"] = c["run_id"];
    rows.push_back(std::move(r));
  }
  *label = which;
  return rows;
}

std::string diff_text(const json& d, const std::string& before, const std::string& after) {
  std::ostringstream o;
  o << "compared " << after << " with " << before << ": " << d["regressions"].size() << " regressions, " << d["fixed"].size()
    << " fixed, " << d["new"].size() << " new, " << d["removed"].size() << " removed, " << d["new_skip"].size() << " newly skipped, "
    << d["slower"].size() << " slower, " << d["engine_changes"].size() << " engine changes, " << d["unchanged"].get<int>()
    << " unchanged\n";
  const std::pair<const char*, const char*> sections[] = {{"regressions", "REGRESSION"}, {"fixed", "fixed"}, {"new_skip", "new SKIP"},
                                                          {"removed", "removed"},        {"new", "new"},     {"slower", "slower"},
                                                          {"engine_changes", "engine"}};
  for (const auto& [key, title] : sections)
    for (const json& r : d[key])
      o << "  " << title << "  " << str(r, "planet") << " " << str(r, "fixture") << ": " << str(r, "why") << "\n";
  return o.str();
}

std::string diff_markdown(const json& d, const std::string& before, const std::string& after) {
  std::ostringstream o;
  o << "### planetbridge: " << after << " vs " << before << "\n\n";
  o << (d["regressed"].get<bool>() ? "**" + std::to_string(d["regressions"].size()) + " regressions**" : std::string("No regressions"))
    << " · " << d["fixed"].size() << " fixed · " << d["new"].size() << " new · " << d["removed"].size() << " removed · "
    << d["new_skip"].size() << " newly skipped · " << d["slower"].size() << " slower · " << d["unchanged"].get<int>() << " unchanged\n\n";
  const std::pair<const char*, const char*> sections[] = {{"regressions", "Regressions"}, {"fixed", "Fixed"}, {"new_skip", "Newly skipped"},
                                                          {"removed", "Removed"},         {"new", "New"},     {"slower", "Slower"},
                                                          {"engine_changes", "Engine changes"}};
  for (const auto& [key, title] : sections) {
    if (d[key].empty()) continue;
    o << "| " << title << " | planet | fixture | change |\n|---|---|---|---|\n";
    for (const json& r : d[key]) {
      std::string why = str(r, "why");
      for (char& c : why)
        if (c == '|' || c == '\n') c = ' ';
      o << "| | " << str(r, "planet") << " | " << str(r, "fixture") << " | " << why << " |\n";
    }
    o << "\n";
  }
  return o.str();
}

}  // namespace pb::host
