#include "runner.h"

#include <fnmatch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <set>

#include "capture_process.h"
#include "run_store.h"

#include <zlib.h>

#include <fstream>

namespace pb::host {

namespace {

bool selected(const std::vector<std::string>& filter, const std::string& v) {
  return filter.empty() || std::find(filter.begin(), filter.end(), v) != filter.end();
}

// A case that produced no comparison; `engine` names the planet's engine when its capture said.
CaseResult blank(const PlannedCase& c, Verdict v, const std::string& message, const std::string& engine = "") {
  CaseResult r;
  r.planet = c.planet;
  r.engine = engine;
  r.fixture = c.fixture->id;
  r.layer = c.fixture->layer;
  r.tolerance = c.fixture->tolerance_for(c.planet);
  r.verdict = v;
  r.message = message;
  r.plan_index = c.index;
  return r;
}

nlohmann::json capture_request(const std::vector<const PlannedCase*>& cases) {
  nlohmann::json fixtures = nlohmann::json::array();
  for (const PlannedCase* c : cases)
    fixtures.push_back({{"id", c->fixture->id},
                        {"layer", c->fixture->layer},
                        {"spec", c->fixture->spec},
                        {"samples", c->fixture->samples},
                        {"seed", c->fixture->seed}});
  return {{"format", "planetbridge.capture-request"}, {"version", 1}, {"fixtures", fixtures}};
}

std::string crc32_label(uLong crc) {
  char hex[16];
  std::snprintf(hex, sizeof hex, "%08lx", crc);
  return std::string("crc32:") + hex;
}

// "crc32:<hex>" of a file's bytes ("" when it cannot be read): which suite a batch ran.
std::string file_crc32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  uLong crc = ::crc32(0L, Z_NULL, 0);
  std::vector<char> buf(1 << 16);
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0)
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), static_cast<uInt>(in.gcount()));
  return crc32_label(crc);
}

std::string event_field(const nlohmann::json& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : "";
}

class PlanetRun {
 public:
  PlanetRun(const PluginRegistry& plugins, const RunOptions& opt, RunStore& store, RunInfo info, std::vector<CaseResult>& results,
            size_t total)
      : plugins_(plugins), opt_(opt), store_(store), info_(std::move(info)), results_(results), total_(total) {}

  void run(const std::string& planet, const std::vector<const PlannedCase*>& cases) {
    std::vector<const PlannedCase*> asked, not_applicable;
    for (const PlannedCase* c : cases)
      (c->fixture->not_applicable.count(planet) ? not_applicable : asked).push_back(c);
    engine_.clear();
    case_started_ = std::chrono::steady_clock::now();
    if (!asked.empty()) capture_and_check(planet, asked);
    // Reported after the capture's hello, so these rows name the engine too.
    for (const PlannedCase* c : not_applicable) {
      case_started_ = std::chrono::steady_clock::now();
      emit(blank(*c, Verdict::SKIP, "not applicable: " + c->fixture->not_applicable.at(planet), engine_));
    }
  }

 private:
  void capture_and_check(const std::string& planet, const std::vector<const PlannedCase*>& asked) {
    const Dialect* dialect = plugins_.find(planet);
    if (!dialect) {
      std::string dirs;
      for (const auto& d : plugins_.searched()) dirs += "\n  " + d;
      return all(asked, Verdict::ERROR, "no plugin for planet \"" + planet + "\" (searched:" + dirs + ")");
    }

    std::unique_ptr<CaptureProcess> proc;
    try {
      proc = std::make_unique<CaptureProcess>(dialect->capture(), capture_request(asked).dump(), opt_.capture_timeout_s);
    } catch (const Error& e) {
      return all(asked, Verdict::SKIP, std::string("engine not available: ") + e.what());
    }

    std::optional<Frame> hello;
    try {
      hello = proc->next();
    } catch (const Error& e) {
      return all(asked, Verdict::ERROR, e.what());
    }
    if (!hello) {
      std::string status = proc->finish();
      return all(asked, Verdict::ERROR, "capture process " + proc->command_line() + " ended without a reply (" + status + ")" + proc->stderr_tail());
    }
    const std::string event = event_field(hello->doc, "event");
    if (event == "unavailable") {
      proc->finish();
      return all(asked, Verdict::SKIP, "engine not installed: " + event_field(hello->doc, "reason"));
    }
    if (event != "hello") return all(asked, Verdict::ERROR, "capture process did not start with a hello event: " + hello->doc.dump().substr(0, 200));
    engine_ = event_field(hello->doc, "engine") + " " + event_field(hello->doc, "engine_version");
    // Starting the planet is paid once per shard that runs it, whichever cases it gets: not a
    // case's duration.
    case_started_ = std::chrono::steady_clock::now();

    for (size_t i = 0; i < asked.size(); ++i) {
      const PlannedCase& c = *asked[i];
      if (opt_.on_start) opt_.on_start(planet, c.fixture->id, results_.size(), total_);
      std::optional<Frame> frame;
      try {
        frame = proc->next();
      } catch (const Error& e) {
        return all({asked.begin() + i, asked.end()}, Verdict::ERROR, e.what());
      }
      if (!frame) {
        std::string status = proc->finish();
        return all({asked.begin() + i, asked.end()}, Verdict::ERROR,
                   "capture process ended before answering (" + status + ")" + proc->stderr_tail());
      }
      emit(one_case(c, *dialect, std::move(*frame), *proc));
      case_started_ = std::chrono::steady_clock::now();
    }
    proc->finish();
  }

  CaseResult one_case(const PlannedCase& c, const Dialect& dialect, Frame frame, CaptureProcess& proc) {
    const std::string format = event_field(frame.doc, "format");
    if (format == "planetbridge.capture") {
      const std::string event = event_field(frame.doc, "event"), id = event_field(frame.doc, "model_id");
      if (id != c.fixture->id)
        return blank(c, Verdict::ERROR, "capture answered for \"" + id + "\" while \"" + c.fixture->id + "\" was due", engine_);
      if (event == "not_applicable") return blank(c, Verdict::SKIP, "not applicable: " + event_field(frame.doc, "reason"), engine_);
      return blank(c, Verdict::ERROR, "capture failed: " + event_field(frame.doc, "message"), engine_);
    }
    Stream stream;
    try {
      stream = decode_stream(std::move(frame));
    } catch (const Error& e) {
      return blank(c, Verdict::ERROR, std::string("malformed stream from the capture: ") + e.what(), engine_);
    }
    if (stream.model_id != c.fixture->id)
      return blank(c, Verdict::ERROR, "capture answered for \"" + stream.model_id + "\" while \"" + c.fixture->id + "\" was due");
    if (stream.planet != c.planet)
      return blank(c, Verdict::ERROR, "capture sent a \"" + stream.planet + "\" stream for planet \"" + c.planet + "\"");
    std::unique_ptr<RunStore::Pending> run = store_.begin();
    run->keep_stream(stream.raw.data(), stream.raw.size());  // the frame exactly as the capture sent it
    LadderOptions lo;
    lo.tolerance = c.fixture->tolerance_for(c.planet);
    lo.entity_path = run->entity_path();
    lo.repeats = opt_.repeats;
    lo.quiet = [&proc](bool stopped) { proc.pause(stopped); };
    CaseResult r = run_ladder(stream, dialect, lo);
    r.layer = c.fixture->layer;
    r.plan_index = c.index;
    r.wall_ms = since_case_started();
    store_.commit(*run, r, info_);
    return r;
  }

  void all(const std::vector<const PlannedCase*>& cases, Verdict v, const std::string& message) {
    for (const PlannedCase* c : cases) emit(blank(*c, v, message, engine_));
  }

  // Every case is a run, whatever its verdict: one without a stream is recorded here. A store
  // that cannot be written stops the suite (pb::Error): results nobody can find help no one.
  void emit(CaseResult r) {
    if (r.run_id.empty()) {
      r.wall_ms = since_case_started();
      store_.commit(*store_.begin(), r, info_);
    }
    results_.push_back(std::move(r));
    if (opt_.on_result) opt_.on_result(results_.back());
  }

  double since_case_started() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - case_started_).count();
  }

  const PluginRegistry& plugins_;
  const RunOptions& opt_;
  RunStore& store_;
  const RunInfo info_;
  std::vector<CaseResult>& results_;
  size_t total_;
  std::string engine_;  // "torch 1.13.0a0", from the current planet's hello
  std::chrono::steady_clock::time_point case_started_;  // since the previous case was recorded
};

std::string case_key(const std::string& planet, const std::string& fixture) { return planet + "/" + fixture; }

// Longest processing time first: each case, longest first (ties in plan order), goes to the
// shard with the least time so far (ties to the lowest shard). Within 4/3 of the best split.
std::vector<size_t> balanced_shards(const std::vector<PlannedCase>& cases, const std::map<std::string, double>& durations,
                                    size_t shards) {
  std::vector<double> known;
  for (const auto& kv : durations) known.push_back(kv.second);
  std::sort(known.begin(), known.end());
  const double typical = known.empty() ? 1.0 : known[known.size() / 2];
  std::vector<double> cost(cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    auto it = durations.find(case_key(cases[i].planet, cases[i].fixture->id));
    cost[i] = it != durations.end() ? it->second : typical;
  }
  std::vector<size_t> order(cases.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return cost[a] > cost[b]; });
  std::vector<double> load(shards, 0.0);
  std::vector<size_t> shard_of(cases.size());
  for (size_t i : order) {
    const size_t s = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    shard_of[i] = s;
    load[s] += cost[i];
  }
  return shard_of;
}

}  // namespace

std::vector<PlannedCase> plan_cases(const Suite& suite, const RunOptions& opt, size_t* planned) {
  std::vector<std::string> planet_order;
  std::set<std::string> all_planets, all_layers;
  for (const Fixture& f : suite.fixtures) {
    all_layers.insert(f.layer);
    for (const std::string& p : f.planets)
      if (all_planets.insert(p).second) planet_order.push_back(p);
  }
  auto check_filter = [](const std::vector<std::string>& filter, const std::set<std::string>& known, const char* what) {
    for (const std::string& v : filter)
      if (!known.count(v)) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        throw Error(std::string("--") + what, std::string("no fixture has ") + what + " \"" + v + "\" (this suite has: " + list + ")");
      }
  };
  check_filter(opt.planets, all_planets, "planet");
  check_filter(opt.layers, all_layers, "layer");

  std::vector<PlannedCase> cases;
  for (const std::string& planet : planet_order) {
    if (!selected(opt.planets, planet)) continue;
    for (const Fixture& f : suite.fixtures) {
      if (std::find(f.planets.begin(), f.planets.end(), planet) == f.planets.end()) continue;
      if (!selected(opt.layers, f.layer)) continue;
      if (!opt.fixture_glob.empty() && fnmatch(opt.fixture_glob.c_str(), f.id.c_str(), 0) != 0) continue;
      cases.push_back({&f, planet, cases.size()});
    }
  }
  if (planned) *planned = cases.size();
  if (opt.shards <= 1) return cases;
  if (opt.shard < 1 || opt.shard > opt.shards)
    throw Error("--shard", "shard " + std::to_string(opt.shard) + " of " + std::to_string(opt.shards) + " does not exist (1 to " +
                               std::to_string(opt.shards) + ")");
  const std::vector<size_t> shard_of = opt.durations.empty() ? std::vector<size_t>() : balanced_shards(cases, opt.durations, opt.shards);
  std::vector<PlannedCase> mine;
  for (const PlannedCase& c : cases)
    if ((shard_of.empty() ? c.index % opt.shards : shard_of[c.index]) == opt.shard - 1) mine.push_back(c);
  return mine;
}

std::map<std::string, double> shard_durations(const std::vector<nlohmann::json>& rows) {
  std::map<std::string, double> d;
  for (const nlohmann::json& r : rows) {
    const auto wall = r.find("wall_ms");
    if (wall == r.end() || !wall->is_number() || !r.contains("planet") || !r.contains("fixture")) continue;
    d.emplace(case_key(r["planet"].get<std::string>(), r["fixture"].get<std::string>()), wall->get<double>());  // newest first: first kept
  }
  return d;
}

std::string durations_basis(const std::map<std::string, double>& durations) {
  if (durations.empty()) return "count";
  std::string text;
  char ms[32];
  for (const auto& [key, t] : durations) {
    std::snprintf(ms, sizeof ms, "%.3f", t);
    text += key + "=" + ms + "\n";
  }
  return crc32_label(::crc32(::crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(text.data()), static_cast<uInt>(text.size())));
}

std::vector<CaseResult> run_suite(const Suite& suite, const PluginRegistry& plugins, const RunOptions& opt, std::string* batch_id_out) {
  const std::vector<PlannedCase> cases = plan_cases(suite, opt);
  std::vector<CaseResult> results;
  RunStore store(opt.out_dir);
  BatchInfo batch;
  batch.suite = suite.name;
  batch.suite_file = suite.file;
  batch.suite_hash = file_crc32(suite.file);
  batch.filters = {{"planets", opt.planets}, {"layers", opt.layers}, {"fixture", opt.fixture_glob},
                   {"shard", std::to_string(opt.shard) + "/" + std::to_string(opt.shards)},
                   {"balanced_by", durations_basis(opt.durations)}};
  batch.host_version = opt.host_version;
  batch.machine = machine_info();
  const std::string batch_id = store.catalog().begin_batch(batch);
  PlanetRun run(plugins, opt, store, RunInfo{"run", suite.name, batch_id}, results, cases.size());
  for (size_t i = 0; i < cases.size();) {
    size_t j = i;
    std::vector<const PlannedCase*> group;
    while (j < cases.size() && cases[j].planet == cases[i].planet) group.push_back(&cases[j++]);
    run.run(cases[i].planet, group);
    i = j;
  }
  store.catalog().end_batch(batch_id);
  if (batch_id_out) *batch_id_out = batch_id;
  // Rows were shown as they came (a planet's not-applicable cases after its captured ones);
  // the report is in plan order, which merged shards reproduce.
  std::stable_sort(results.begin(), results.end(), [](const CaseResult& a, const CaseResult& b) { return a.plan_index < b.plan_index; });
  return results;
}

}  // namespace pb::host
