// planetbridge: bridge live models from PyTorch, TensorFlow, JAX and scikit-learn into one IR,
// run them on oneDNN, prove they match, and checkpoint them as .entity files.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "ladder.h"
#include "planetbridge/entity.h"
#include "planetbridge/network.h"
#include "planetbridge/ops.h"
#include "plugin_loader.h"
#include "report.h"
#include "diff.h"
#include "run_store.h"
#include "runner.h"
#include "server.h"

namespace {

using namespace pb;
using namespace pb::host;

constexpr int kExitFailures = 1;  // a FAIL or ERROR verdict
constexpr int kExitUsage = 2;     // bad arguments, unreadable suite, ...

void write_file(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw Error(path, "cannot write report file");
  f << content;
  if (!f.flush()) throw Error(path, "cannot write report file");
}

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path, "cannot read the file");
  return std::string(std::istreambuf_iterator<char>(f), {});
}

struct Common {
  std::string plugin_dir;
  bool no_color = false;
  int threads = 0;  // 0: OMP_NUM_THREADS, else every core
  bool color() const { return !no_color && ::isatty(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr; }
  PluginRegistry plugins() const { return PluginRegistry::discover(plugin_search_path(plugin_dir)); }
};

// ---------------------------------------------------------------- plugins

int cmd_plugins(const Common& common) {
  PluginRegistry reg = common.plugins();
  std::cout << "this host: " << host_abi_description() << "\n\nsearch path:\n";
  for (const auto& d : reg.searched()) std::cout << "  " << d << "\n";
  std::cout << "\nplugins (" << reg.plugins().size() << "):\n";
  for (const auto& p : reg.plugins()) {
    std::cout << "  " << p.dialect->planet() << " " << p.dialect->version() << "  " << p.file << "\n";
    std::cout << "    built with planetbridge " << p.sdk_version << ", " << p.toolchain << "\n";
    std::string line = "    translates:";
    for (const auto& t : p.dialect->source_types()) {
      if (line.size() + t.size() > 100) {
        std::cout << line << "\n";
        line = "               ";
      }
      line += " " + t;
    }
    std::cout << line << "\n";
  }
  if (!reg.refused().empty()) {
    std::cout << "\nrefused (" << reg.refused().size() << "):\n";
    for (const auto& r : reg.refused()) std::cout << "  " << r.file << ": " << r.reason << "\n";
  }
  return 0;
}

// ---------------------------------------------------------------- ops

// The IR's op table and activation functions, as docs/ir.md holds them.
int cmd_ops() {
  std::cout << ir::ops_markdown() << "\n" << ir::activations_markdown();
  return 0;
}

// ---------------------------------------------------------------- run

// When `diff` (and `run --baseline`) call a case slower, and whether that fails the job.
struct SlowerArgs {
  double factor = DiffOptions().slower_factor;
  double min_ms = DiffOptions().slower_min_ms;
  bool fail = false;
  DiffOptions options() const {
    DiffOptions o;
    o.slower_factor = factor;
    o.slower_min_ms = min_ms;
    o.fail_on_slower = fail;
    return o;
  }
  void add_to(CLI::App* cmd) {
    cmd->add_option("--slower-factor", factor, "A case is slower when its steady run's median grew by this factor (default 1.5) ...")
        ->check(CLI::Range(1.0, 1e9));
    cmd->add_option("--slower-min-ms", min_ms, "... and by at least this many ms (default 0.1)")->check(CLI::Range(0.0, 1e9));
    cmd->add_flag("--fail-on-slower", fail, "Count slower cases as regressions (exit 1); by default they are only reported");
  }
};

struct RunArgs {
  std::string suite;
  std::vector<std::string> planets, layers;
  std::string fixture, junit, json, out = ".planetbridge";
  double capture_timeout = 900;
  std::string baseline, diff_json, diff_markdown;
  std::string shard;  // "I/N"
  std::string durations = "store";  // what shards are balanced by (durations_for)
  int repeats = 5;
  SlowerArgs slower;
};

// "I/N" -> {I, N}, 1 <= I <= N.
std::pair<size_t, size_t> parse_shard(const std::string& s) {
  size_t i = 0, n = 0;
  char extra = 0;
  if (std::sscanf(s.c_str(), "%zu/%zu%c", &i, &n, &extra) != 2 || n < 1 || i < 1 || i > n || n > 100000)
    throw Error("--shard", "expected I/N with 1 <= I <= N (e.g. 2/4), got \"" + s + "\"");
  return {i, n};
}

// The measured case durations shards are balanced by: "store" (the newest run of each case in
// the suite's recent unsharded batches in this store; none yet: by count), "count", or a batch
// id or file (a run or merge --json report, a runs --json listing) that must hold durations.
std::map<std::string, double> durations_for(const std::string& source, const Suite& suite, const std::string& store_dir) {
  if (source == "count") return {};
  RunStore store(store_dir);
  std::vector<nlohmann::json> rows;
  if (source == "store") {
    for (const std::string& batch : store.catalog().recent_unsharded_batches(suite.name, 8)) {
      std::string label;
      for (auto& r : diff_side(store.catalog(), batch, suite.name, "", &label)) rows.push_back(std::move(r));
    }
    return shard_durations(rows);
  }
  std::string label;
  try {
    rows = diff_side(store.catalog(), source, suite.name, "", &label);
  } catch (const Error& e) {
    throw Error("--durations", e.where() + ": " + e.message());
  }
  auto d = shard_durations(rows);
  if (d.empty()) throw Error("--durations", label + " holds no case durations (wall_ms): expected runs recorded by this planetbridge");
  return d;
}

// Prints (and writes where asked) the comparison; true when it found a regression.
bool report_diff(const nlohmann::json& d, const std::string& before, const std::string& after, const std::string& json_file,
                 const std::string& markdown_file) {
  std::cout << "\n" << diff_text(d, before, after);
  if (!json_file.empty()) write_file(json_file, d.dump(2) + "\n");
  if (!markdown_file.empty()) write_file(markdown_file, diff_markdown(d, before, after));
  return d["regressed"].get<bool>();
}

int cmd_run(const Common& common, const RunArgs& a) {
  Suite suite = load_suite(a.suite);
  RunOptions opt;
  opt.planets = a.planets;
  opt.layers = a.layers;
  opt.fixture_glob = a.fixture;
  opt.out_dir = a.out;
  opt.capture_timeout_s = a.capture_timeout;
  opt.host_version = PB_VERSION;
  opt.repeats = a.repeats;
  if (!a.shard.empty()) std::tie(opt.shard, opt.shards) = parse_shard(a.shard);
  if (opt.shards > 1) opt.durations = durations_for(a.durations, suite, a.out);
  size_t planned = 0;
  const std::vector<PlannedCase> plan = plan_cases(suite, opt, &planned);
  if (planned == 0) throw Error("--fixture", "no fixture matches \"" + a.fixture + "\"");

  PluginRegistry plugins = common.plugins();
  size_t width = 0;
  for (const auto& c : plan) width = std::max(width, c.fixture->id.size());
  const bool tty = ::isatty(STDERR_FILENO);
  ConsoleReport console(std::cout, width, common.color());
  std::cout << "planetbridge " << PB_VERSION << " · suite " << suite.name << " (" << suite.file << ") · " << plan.size() << " cases"
            << (opt.shards > 1 ? " (shard " + a.shard + " of " + std::to_string(planned) + ", balanced by " +
                                     (opt.durations.empty() ? std::string("count") : "measured durations") + ")"
                               : std::string())
            << "\n\n";
  console.header();
  opt.on_start = [&](const std::string& planet, const std::string& fixture, size_t done, size_t total) {
    if (tty) std::cerr << "\r\033[K[" << done + 1 << "/" << total << "] " << planet << " " << fixture << std::flush;
  };
  opt.on_result = [&](const CaseResult& r) {
    if (tty) std::cerr << "\r\033[K" << std::flush;
    console.row(r);
  };
  auto t0 = std::chrono::steady_clock::now();
  std::string batch;
  std::vector<CaseResult> results = run_suite(suite, plugins, opt, &batch);
  const Summary s = summarize(results, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  console.summary(s);
  if (!results.empty())
    std::cout << "batch " << batch << " · runs " << results.front().run_id << " to " << results.back().run_id << " in " << a.out
              << "/runs/\n";
  if (!a.junit.empty()) write_file(a.junit, junit_xml(suite.name, results, s));
  if (!a.json.empty()) {
    nlohmann::json report = results_json(suite.name, results, s);
    report["planned"] = planned;  // the whole plan: `merge` checks the shards cover it
    if (opt.shards > 1) report["shard"] = a.shard, report["balanced_by"] = durations_basis(opt.durations);
    write_file(a.json, report.dump(2) + "\n");
  }
  if (a.baseline.empty()) return s.ok() ? 0 : kExitFailures;
  // Against a baseline the question is "is it worse?": the exit status says regressions only.
  RunStore store(a.out);
  std::string label, ignored;
  // A nightly's first night: nothing to compare with, so every case is new (and a failing one a
  // regression), rather than an error on the night the job is set up.
  const bool first_night = a.baseline == "latest" && !store.catalog().latest_batch(suite.name, batch);
  if (first_night) label = "no earlier batch of suite " + suite.name + " in " + a.out + " (the first night)";
  const std::vector<nlohmann::json> before = first_night ? std::vector<nlohmann::json>()
                                                         : diff_side(store.catalog(), a.baseline, suite.name, batch, &label);
  const std::vector<nlohmann::json> after = diff_side(store.catalog(), batch, suite.name, "", &ignored);
  return report_diff(diff_runs(before, after, a.slower.options()), label, "batch " + batch, a.diff_json, a.diff_markdown) ? kExitFailures
                                                                                                                        : 0;
}

// ---------------------------------------------------------------- gc

struct GcArgs {
  std::string data = ".planetbridge";
  double keep_days = 30;
  size_t keep_last = 1000;
  bool dry_run = false;
};

int cmd_gc(const GcArgs& a) {
  RunStore store(a.data);
  const auto t0 = std::chrono::steady_clock::now();
  const RunStore::GcReport g = store.gc(a.keep_days, a.keep_last, a.dry_run);
  const std::vector<std::string>& ids = g.runs;
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::ostringstream freed;
  freed << std::fixed << std::setprecision(2) << static_cast<double>(g.bytes) / (1 << 20) << " MiB";
  std::cout << (a.dry_run ? "would remove " : "removed ") << ids.size() << " runs"
            << (ids.empty() ? std::string() : " (" + ids.front() + " to " + ids.back() + ")") << " and " << g.blobs
            << " blobs no run links, " << (a.dry_run ? "freeing " : "freed ") << freed.str() << ", in " << s << " s; "
            << store.catalog().count_runs() - (a.dry_run ? ids.size() : 0) << " runs kept in " << a.data << "\n";
  return 0;
}

// ---------------------------------------------------------------- merge

struct MergeArgs {
  std::vector<std::string> reports;
  std::string json, junit;
};

// The shards' --json reports as one report, as a single run would have written it.
int cmd_merge(const MergeArgs& a) {
  std::string suite;
  size_t planned = 0;
  double seconds = 0;
  std::vector<CaseResult> results;
  std::map<size_t, std::string> seen;  // plan index -> the report holding it
  std::string first_basis;
  for (const std::string& file : a.reports) {
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(read_text_file(file));
    } catch (const nlohmann::json::exception& e) {
      throw Error(file, std::string("not JSON: ") + e.what());
    }
    if (!doc.is_object() || !doc.contains("cases") || !doc["cases"].is_array() || !doc.contains("planned"))
      throw Error(file, "not a run --json report (expected \"cases\" and \"planned\")");
    const std::string s = doc.value("suite", "");
    if (suite.empty()) suite = s, planned = doc["planned"].get<size_t>();
    if (s != suite || doc["planned"].get<size_t>() != planned)
      throw Error(file, "is a report of suite \"" + s + "\" with " + doc["planned"].dump() + " planned cases; " + a.reports[0] +
                            " has \"" + suite + "\" with " + std::to_string(planned));
    // Shards split on different durations may overlap or leave cases out: name the cause.
    const std::string basis = doc.value("balanced_by", "");
    if (file == a.reports[0]) first_basis = basis;
    auto named = [](const std::string& b) { return b.empty() ? std::string("(nothing recorded)") : b; };
    if (basis != first_basis)
      throw Error(file, "was split by " + named(basis) + ", " + a.reports[0] + " by " + named(first_basis) +
                            ": shards must be planned from the same durations (give each the same --durations)");
    seconds = std::max(seconds, doc["summary"].value("seconds", 0.0));
    for (size_t i = 0; i < doc["cases"].size(); ++i) {
      CaseResult r = case_from_json(doc["cases"][i], file + ": cases[" + std::to_string(i) + "]");
      if (!seen.emplace(r.plan_index, file).second)
        throw Error(file + ": cases[" + std::to_string(i) + "]", "case " + std::to_string(r.plan_index) + " (" + r.name() + ") is also in " +
                                                                     seen[r.plan_index]);
      results.push_back(std::move(r));
    }
  }
  std::string missing;
  for (size_t i = 0; i < planned; ++i)
    if (!seen.count(i)) missing += (missing.empty() ? "" : ", ") + std::to_string(i);
  if (!missing.empty()) throw Error("merge", "the reports do not cover planned cases " + missing + " (a shard is missing)");
  std::sort(results.begin(), results.end(), [](const CaseResult& x, const CaseResult& y) { return x.plan_index < y.plan_index; });
  const Summary s = summarize(results, seconds);
  ConsoleReport(std::cout, 0, false).summary(s);
  if (!a.json.empty()) {
    nlohmann::json report = results_json(suite, results, s);
    report["planned"] = planned;
    write_file(a.json, report.dump(2) + "\n");
  }
  if (!a.junit.empty()) write_file(a.junit, junit_xml(suite, results, s));
  return s.ok() ? 0 : kExitFailures;
}

// ---------------------------------------------------------------- diff

struct DiffArgs {
  std::string before, after, data = ".planetbridge", json, markdown;
  SlowerArgs slower;
};

int cmd_diff(const DiffArgs& a) {
  RunStore store(a.data);
  std::string before_label, after_label;
  const std::vector<nlohmann::json> before = diff_side(store.catalog(), a.before, "", "", &before_label);
  const std::vector<nlohmann::json> after = diff_side(store.catalog(), a.after, "", "", &after_label);
  return report_diff(diff_runs(before, after, a.slower.options()), before_label, after_label, a.json, a.markdown) ? kExitFailures : 0;
}

// ---------------------------------------------------------------- check

struct CheckArgs {
  std::string stream, entity, json, data = ".planetbridge";
  double atol = 1e-5, rtol = 1e-5;
};

int cmd_check(const Common& common, const CheckArgs& a) {
  // The whole input, kept as bytes: the run store records the stream as received.
  const Bytes bytes = pb::read_stream_input(a.stream);  // a file is mapped: its tensors are used in place
  Stream stream;
  try {
    stream = read_stream(bytes);
  } catch (const Error& e) {
    throw Error(a.stream == "-" ? "(stdin)" : a.stream, e.what());
  }
  PluginRegistry plugins = common.plugins();
  const Dialect* dialect = plugins.find(stream.planet);
  if (!dialect) throw Error("planet", "no plugin for planet \"" + stream.planet + "\" (see `planetbridge plugins`)");
  RunStore store(a.data);
  auto run = store.begin();
  run->keep_stream(bytes.data(), bytes.size());  // as received; flushed while the ladder runs
  LadderOptions opt;
  opt.tolerance = {a.atol, a.rtol};
  opt.entity_path = a.entity.empty() ? run->entity_path() : a.entity;  // with --entity the store keeps a copy
  CaseResult r = run_ladder(stream, *dialect, opt);
  store.commit(*run, r, {"check", "", ""});
  print_case_detail(std::cout, r, common.color());
  std::cout << "run       " << r.run_id << " (" << store.run_dir(r.run_id) << ")\n";
  if (!a.json.empty()) write_file(a.json, case_json(r).dump(2) + "\n");
  return r.ok() ? 0 : kExitFailures;
}

// ---------------------------------------------------------------- serve

struct ServeArgs {
  std::string host = "127.0.0.1", data = ".planetbridge";
  int port = 9876, jobs = 0;
  uint64_t max_body = uint64_t(1) << 30;
  ConnectionLimits limits;
};

int cmd_serve(const Common& common, const ServeArgs& a) {
  // SIGINT/SIGTERM are blocked in every thread (the server's inherit the mask) and taken here,
  // so the server stops cleanly: requests in flight finish, runs are completely written.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  PluginRegistry plugins = common.plugins();
  ServerOptions opt;
  opt.data_dir = a.data;
  opt.max_body = a.max_body;
  opt.jobs = a.jobs;
  opt.limits = a.limits;
  opt.version = PB_VERSION;
  Server server(plugins, opt);
  const int port = server.start(a.host, a.port);
  std::string planets;
  for (const auto& p : plugins.plugins()) planets += (planets.empty() ? "" : ", ") + p.dialect->planet();
  std::cout << "planetbridge " << PB_VERSION << " serving http://" << a.host << ":" << port << "/ · runs in " << a.data
            << "/runs · planets: " << (planets.empty() ? "none" : planets) << std::endl;
  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::cout << "stopping (" << strsignal(sig) << ")" << std::endl;
  server.stop();
  return 0;
}

// ---------------------------------------------------------------- runs

struct RunsArgs {
  std::string data = ".planetbridge";
  RunFilter filter;
  bool json = false;
};

std::string cell(const nlohmann::json& s, const char* key) {
  if (!s.contains(key) || s[key].is_null()) return "-";
  if (s[key].is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2e", s[key].get<double>());
    return buf;
  }
  return s[key].is_string() ? s[key].get<std::string>() : s[key].dump();
}

int cmd_runs(const RunsArgs& a) {
  RunStore store(a.data);
  const std::vector<nlohmann::json> runs = store.catalog().runs(a.filter);
  std::optional<nlohmann::json> batch;
  if (!a.filter.batch.empty() && !(batch = store.catalog().batch(a.filter.batch)))
    throw Error("--batch", "no batch \"" + a.filter.batch + "\" in " + store.catalog().path());
  if (a.json) {
    nlohmann::json out = {{"runs", runs}, {"catalog", store.catalog().path()}};
    if (batch) out["batch"] = *batch;
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  if (batch)
    std::cout << "batch " << (*batch)["id"].get<std::string>() << " · suite " << (*batch)["suite"].get<std::string>() << " · "
              << (*batch)["started"].get<std::string>() << " · " << (*batch)["counts"].dump() << "\n\n";
  std::printf("%-23s %-7s %-10s %-36s %-9s %s\n", "run", "verdict", "planet", "fixture", "max|diff|", "batch");
  for (const auto& s : runs)
    std::printf("%-23s %-7s %-10s %-36s %-9s %s\n", cell(s, "id").c_str(), cell(s, "verdict").c_str(), cell(s, "planet").c_str(),
                cell(s, "fixture").c_str(), cell(s, "max_abs").c_str(), cell(s, "batch").c_str());
  std::cout << runs.size() << (runs.size() == a.filter.limit ? " runs (--limit reached)" : " runs") << " of "
            << store.catalog().count_runs() << " in " << store.catalog().path() << "\n";
  return 0;
}

// ---------------------------------------------------------------- inspect

std::string hex32(uint32_t v) {
  std::ostringstream o;
  o << "0x" << std::hex << std::setw(8) << std::setfill('0') << v;
  return o.str();
}

// The checkpoint's graph compiled as `run` and `check` compile it: what each pass did, the
// kernels oneDNN dispatched and the activation memory plan. Dims the graph leaves open (-1,
// usually the batch) are set to `batch`.
void print_compiled(const ir::Graph& graph, int64_t batch) {
  std::map<std::string, Shape> shapes;
  std::cout << "\ncompiled for";
  for (const ir::ValueInfo& in : graph.inputs) {
    Shape s = in.shape;
    for (int64_t& d : s) d = d < 0 ? batch : d;
    shapes[in.name] = s;
    std::cout << " " << in.name << " " << shape_str(s);
  }
  std::cout << (shapes.empty() ? " no inputs" : "") << " (open dims set to --batch " << batch << ")\n\npasses\n";
  const Network net(graph, shapes);
  for (const PassRecord& p : net.passes()) std::cout << "  " << std::left << std::setw(22) << p.name << p.effect << "\n";
  std::cout << "\nkernels (" << net.executed_graph().nodes.size() << " nodes)\n";
  std::istringstream lines(net.describe());
  for (std::string line; std::getline(lines, line);) std::cout << "  " << line << "\n";
  const MemoryStats m = net.memory_stats();
  const auto mib = [](size_t b) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(2) << static_cast<double>(b) / (1 << 20) << " MiB";
    return o.str();
  };
  std::cout << "\nactivation memory\n  arena " << mib(m.arena_bytes) << " for " << m.buffers << " buffers (without reuse "
            << mib(m.unshared_bytes) << "; most live at once " << mib(m.live_peak_bytes) << ")\n  inputs and other own buffers "
            << mib(m.private_bytes) << "\n";
}

int cmd_inspect(const std::string& path, bool verify, bool passes, int64_t batch) {
  entity::Loaded e = entity::load(path, verify);
  std::cout << path << ": .entity format " << e.version << ", " << e.file_bytes << " bytes, "
            << (verify ? "every tensor's checksum verified" : "checksums not verified (--no-verify)") << "\n\nmetadata\n";
  for (const auto& [k, v] : e.graph.metadata) std::cout << "  " << k << " = " << v << "\n";
  std::cout << "\ngraph\n";
  std::istringstream lines(e.graph.summary());
  for (std::string line; std::getline(lines, line);) std::cout << "  " << line << "\n";
  std::cout << "\ntensors (" << e.tensors.size() << ")\n";
  for (const auto& t : e.tensors)
    std::cout << "  " << std::left << std::setw(32) << t.name << " " << dtype_name(t.dtype) << std::setw(16)
              << shape_str(t.shape) << " offset " << std::setw(10) << t.offset << " bytes " << std::setw(10) << t.length
              << " crc32 " << hex32(t.crc32) << "\n";
  if (passes) print_compiled(e.graph, batch);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"planetbridge: live models from PyTorch, TensorFlow, JAX and scikit-learn, bridged to oneDNN and checked"};
  app.set_version_flag("--version", std::string("planetbridge ") + PB_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // the global options may also follow the subcommand
  Common common;
  app.add_option("--plugin-dir", common.plugin_dir, "Directory searched first for libplanet_*.so plugins");
  app.add_flag("--no-color", common.no_color, "Plain output even on a terminal");
  app.add_option("--threads", common.threads,
                 "Threads for the kernels and the planets' capture processes (default: OMP_NUM_THREADS, else every core)")
      ->check(CLI::Range(1, 1024));

  RunArgs run;
  CLI::App* run_cmd = app.add_subcommand("run", "Run a YAML suite live on every selected planet");
  run_cmd->add_option("suite", run.suite, "Suite file, e.g. config/suites/bedrock.yaml")->required();
  run_cmd->add_option("--planet", run.planets, "Only these planets (comma-separated)")->delimiter(',');
  run_cmd->add_option("--layer", run.layers, "Only these layer keys (comma-separated)")->delimiter(',');
  run_cmd->add_option("--fixture", run.fixture, "Only fixtures whose id matches this glob");
  run_cmd->add_option("--junit", run.junit, "Write JUnit XML here");
  run_cmd->add_option("--json", run.json, "Write the results as JSON here");
  run_cmd->add_option("--out,--data", run.out, "Run store directory: every case goes to DIR/runs/<id>/ (default .planetbridge)");
  run_cmd->add_option("--capture-timeout", run.capture_timeout, "Seconds to wait for each reply of a capture process");
  run_cmd->add_option("--shard", run.shard, "Run shard I of N (e.g. 2/4); merge the --json reports with merge");
  run_cmd->add_option("--durations", run.durations,
                      "What --shard balances by: store (the cases' last times in this store's unsharded runs, else count), count, "
                      "a batch id, or a run/merge --json report (default store)");
  run_cmd->add_option("--repeats", run.repeats, "Timed steady-state runs per case after the checked one (default 5; 0: none)")
      ->check(CLI::Range(0, 1000));
  run_cmd->add_option("--baseline", run.baseline,
                      "Compare with a baseline: latest (the suite's previous batch), a batch id, or a --json report; "
                      "exit 1 on regressions only (docs/nightly.md)");
  run_cmd->add_option("--diff-json", run.diff_json, "With --baseline: write the comparison as JSON here");
  run_cmd->add_option("--diff-markdown", run.diff_markdown, "With --baseline: write the comparison as Markdown here (a CI job summary)");
  run.slower.add_to(run_cmd);

  // A tolerance is a finite number >= 0 (NaN would let everything pass).
  const CLI::Validator tolerance(
      [](std::string& v) -> std::string {
        char* end = nullptr;
        const double d = std::strtod(v.c_str(), &end);
        return end != v.c_str() && *end == '\0' && std::isfinite(d) && d >= 0 ? "" : "must be a finite number >= 0, got " + v;
      },
      "TOL >= 0");

  CheckArgs check;
  CLI::App* check_cmd = app.add_subcommand("check", "Decode, run, compare, checkpoint and reload one stream");
  check_cmd->add_option("stream", check.stream, "Stream file, or - for stdin")->required();
  check_cmd->add_option("--entity", check.entity, "Where to write the .entity checkpoint");
  check_cmd->add_option("--atol", check.atol, "Absolute tolerance (default 1e-5)")->check(tolerance);
  check_cmd->add_option("--rtol", check.rtol, "Relative tolerance (default 1e-5)")->check(tolerance);
  check_cmd->add_option("--json", check.json, "Write the result as JSON here");
  check_cmd->add_option("--data", check.data, "Run store directory (default .planetbridge)");

  ServeArgs serve;
  CLI::App* serve_cmd = app.add_subcommand("serve", "HTTP stream API, run history and dashboard (docs/http-api.md)");
  serve_cmd->add_option("--host", serve.host, "Address to listen on (default 127.0.0.1)");
  serve_cmd->add_option("--port", serve.port, "Port (default 9876; 0 picks a free one)")->check(CLI::Range(0, 65535));
  serve_cmd->add_option("--data", serve.data, "Run store directory, shared with run and check (default .planetbridge)");
  serve_cmd->add_option("--max-body", serve.max_body, "Largest request body in bytes, e.g. 1G or 512M (default 1 GiB)")
      ->transform(CLI::AsSizeValue(false));
  serve_cmd->add_option("--jobs", serve.jobs, "Checks run at once; more wait, other requests never do (default: one per CPU)")
      ->check(CLI::Range(1, 1024));
  serve_cmd->add_option("--max-connections", serve.limits.max_connections, "Open connections in all; beyond, 503 (default 512)")
      ->check(CLI::Range(1, 65536));
  serve_cmd->add_option("--max-client-connections", serve.limits.max_per_client,
                        "Open connections from one address; beyond, 503 (default 256)")
      ->check(CLI::Range(1, 65536));
  serve_cmd->add_option("--min-rate", serve.limits.min_rate,
                        "Bytes/s a request or reply must keep after the grace, e.g. 256K (default 256 KiB/s)")
      ->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(1.0, 1e12));
  serve_cmd->add_option("--grace", serve.limits.grace_s, "Seconds a request or reply gets before --min-rate applies (default 10)")
      ->check(CLI::Range(0.1, 3600.0));

  std::string inspect_path;
  bool no_verify = false, inspect_passes = false;
  int64_t inspect_batch = 1;
  CLI::App* inspect_cmd = app.add_subcommand("inspect", "Print a .entity checkpoint: graph, tensors, checksums");
  inspect_cmd->add_option("file", inspect_path, ".entity file")->required();
  inspect_cmd->add_flag("--no-verify", no_verify, "Read the header and tensor table only, not the data (no checksums checked)");
  inspect_cmd->add_flag("--passes", inspect_passes,
                        "Also compile the graph: what each optimizer pass did, the kernels, the activation memory plan");
  inspect_cmd->add_option("--batch", inspect_batch, "With --passes: the size of the graph's open (-1) dims (default 1)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));

  RunsArgs runs;
  CLI::App* runs_cmd = app.add_subcommand("runs", "List recorded runs from the run catalog, newest first (docs/nightly.md)");
  runs_cmd->add_option("--data", runs.data, "Run store directory (default .planetbridge)");
  runs_cmd->add_option("--batch", runs.filter.batch, "Only this suite run's cases (its id, printed by run)");
  runs_cmd->add_option("--fixture", runs.filter.fixture_glob, "Only fixtures matching this glob");
  runs_cmd->add_option("--verdict", runs.filter.verdict, "Only this verdict")->check(CLI::IsMember({"EXACT", "PASS", "FAIL", "ERROR", "SKIP"}));
  runs_cmd->add_option("--planet", runs.filter.planet, "Only this planet");
  runs_cmd->add_option("--since", runs.filter.since, "Only runs at or after this UTC time, e.g. 2026-12-01 or 2026-12-01T18:00");
  runs_cmd->add_option("--limit", runs.filter.limit, "At most this many (default 100)")->check(CLI::Range(1, 100000000));
  runs_cmd->add_flag("--json", runs.json, "Print JSON");

  GcArgs gc;
  CLI::App* gc_cmd = app.add_subcommand("gc", "Remove old runs from the run store and its catalog (docs/nightly.md)");
  gc_cmd->add_option("--data", gc.data, "Run store directory (default .planetbridge)");
  gc_cmd->add_option("--keep-days", gc.keep_days, "Keep runs newer than this many days (default 30)")->check(CLI::Range(0.0, 1e6));
  gc_cmd->add_option("--keep-last", gc.keep_last, "Always keep this many newest runs (default 1000)")->check(CLI::Range(0, 1000000000));
  gc_cmd->add_flag("--dry-run", gc.dry_run, "Only say what would be removed");

  MergeArgs merge;
  CLI::App* merge_cmd = app.add_subcommand("merge", "Merge the --json reports of a sharded run into one (and JUnit), as one run would write it");
  merge_cmd->add_option("reports", merge.reports, "The shards' run --json reports")->required();
  merge_cmd->add_option("--json", merge.json, "Write the merged report here");
  merge_cmd->add_option("--junit", merge.junit, "Write the merged JUnit XML here");

  DiffArgs diff;
  CLI::App* diff_cmd = app.add_subcommand("diff", "Compare two suite runs case by case: regressions, fixes, new, removed (docs/nightly.md)");
  diff_cmd->add_option("before", diff.before, "Batch id, or a run --json report, or a runs --json listing")->required();
  diff_cmd->add_option("after", diff.after, "The same kinds")->required();
  diff_cmd->add_option("--data", diff.data, "Run store directory holding the batches (default .planetbridge)");
  diff_cmd->add_option("--json", diff.json, "Write the comparison as JSON here");
  diff_cmd->add_option("--markdown", diff.markdown, "Write the comparison as Markdown here (a CI job summary)");
  diff.slower.add_to(diff_cmd);

  CLI::App* plugins_cmd = app.add_subcommand("plugins", "List the plugins found and any refused, with the reason");

  CLI::App* ops_cmd = app.add_subcommand("ops", "Print the IR's op table (inputs, attributes, defaults) and activation functions");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  if (common.threads > 0) {  // the kernels here, and every capture process started from now on
    set_threads(common.threads);
    ::setenv("OMP_NUM_THREADS", std::to_string(common.threads).c_str(), 1);
  }
  try {
    if (*run_cmd) return cmd_run(common, run);
    if (*check_cmd) return cmd_check(common, check);
    if (*serve_cmd) return cmd_serve(common, serve);
    if (*inspect_cmd) return cmd_inspect(inspect_path, !no_verify, inspect_passes, inspect_batch);
    if (*runs_cmd) return cmd_runs(runs);
    if (*diff_cmd) return cmd_diff(diff);
    if (*merge_cmd) return cmd_merge(merge);
    if (*gc_cmd) return cmd_gc(gc);
    if (*plugins_cmd) return cmd_plugins(common);
    if (*ops_cmd) return cmd_ops();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return kExitUsage;
  }
  return 0;
}
