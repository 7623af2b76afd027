#include "catalog.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include <oneapi/dnnl/dnnl.hpp>

#include "planetbridge/error.h"

namespace pb::host {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Schema migrations, in order: migration i takes the schema from version i to i + 1.
const char* const kMigrations[] = {
    R"(CREATE TABLE batches(
         id TEXT PRIMARY KEY, suite TEXT, suite_file TEXT, suite_hash TEXT, filters TEXT, host_version TEXT,
         machine TEXT, started TEXT NOT NULL, ended TEXT,
         total INTEGER, exact INTEGER, pass INTEGER, fail INTEGER, error INTEGER, skip INTEGER);
       CREATE TABLE runs(
         id TEXT PRIMARY KEY, batch TEXT, time TEXT NOT NULL, source TEXT, suite TEXT, planet TEXT, engine TEXT,
         fixture TEXT, layer TEXT, verdict TEXT, max_abs REAL, max_rel REAL, total_ms REAL, stream_bytes INTEGER,
         stored_entity INTEGER, summary TEXT NOT NULL);
       CREATE INDEX runs_by_time ON runs(time);
       CREATE INDEX runs_by_batch ON runs(batch, time);
       CREATE INDEX runs_by_fixture ON runs(fixture, time);
       CREATE INDEX runs_by_verdict ON runs(verdict, time);)",
    // The blobs a run links (run_store.h): SHA-256 hex of its stream and checkpoint, NULL for
    // none or for a run from before blobs. gc counts references by hard links, not by these.
    R"(ALTER TABLE runs ADD COLUMN stream_hash TEXT;
       ALTER TABLE runs ADD COLUMN entity_hash TEXT;
       ALTER TABLE runs ADD COLUMN entity_bytes INTEGER;)",
};
static_assert(std::size(kMigrations) == Catalog::kSchemaVersion, "Catalog::kSchemaVersion is the number of migrations");

// A prepared statement, finalised on scope exit; errors name the catalog file.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& path, const char* sql) : db_(db), path_(path) {
    if (sqlite3_prepare_v2(db, sql, -1, &st_, nullptr) != SQLITE_OK) fail("cannot prepare a query");
  }
  ~Statement() { sqlite3_finalize(st_); }
  Statement& bind(int i, const std::string& v) {
    sqlite3_bind_text(st_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int i, double v) {
    sqlite3_bind_double(st_, i, v);
    return *this;
  }
  Statement& bind(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  Statement& bind_null(int i) {
    sqlite3_bind_null(st_, i);
    return *this;
  }
  // One step: true while a row is available.
  bool step() {
    const int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) fail("query failed");
    return false;
  }
  std::string text(int col) const {
    const unsigned char* t = sqlite3_column_text(st_, col);
    return t ? reinterpret_cast<const char*>(t) : "";
  }
  int64_t integer(int col) const { return sqlite3_column_int64(st_, col); }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error(path_, what + ": " + sqlite3_errmsg(db_)); }
  sqlite3* db_;
  const std::string& path_;
  sqlite3_stmt* st_ = nullptr;
};

double number_or_nan(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : std::nan("");
}

// The columns batch() and batches() read, and the document made of them.
constexpr char kBatchColumns[] =
    "id, suite, suite_file, suite_hash, filters, host_version, machine, started, ended, total, exact, pass, fail, error, skip";
json batch_document(const Statement& q) {
  json b = {{"id", q.text(0)}, {"suite", q.text(1)}, {"suite_file", q.text(2)}, {"suite_hash", q.text(3)},
            {"filters", json::parse(q.text(4), nullptr, false)}, {"host_version", q.text(5)},
            {"machine", json::parse(q.text(6), nullptr, false)}, {"started", q.text(7)}, {"ended", q.text(8)}};
  const char* counts[] = {"total", "exact", "pass", "fail", "error", "skip"};
  for (int i = 0; i < 6; ++i) b["counts"][counts[i]] = q.integer(9 + i);
  return b;
}

// " WHERE ..." with only the filters `f` gives, so SQLite can pick the index that fits
// (batch, fixture, verdict or time); their values go to `values`, in order. Without statistics
// SQLite takes any equality's index alike, the newest first: a unary + keeps it off the less
// selective ones when a narrower filter is given (a batch is a few thousand runs at most, a
// fixture's history one per batch; a verdict may be most of the store).
std::string where_clause(const RunFilter& f, std::vector<std::string>* values) {
  const bool by_batch = !f.batch.empty();
  const bool by_fixture = !by_batch && (!f.fixture.empty() || (!f.fixture_glob.empty() && !std::strchr("*?[", f.fixture_glob[0])));
  std::string sql = " WHERE 1";
  for (const auto& [value, clause] : {std::pair<const std::string&, const char*>{f.batch, " AND batch = ?"},
                                      {f.fixture, by_batch ? " AND +fixture = ?" : " AND fixture = ?"},
                                      {f.fixture_glob, by_batch ? " AND +fixture GLOB ?" : " AND fixture GLOB ?"},
                                      {f.verdict, by_batch || by_fixture ? " AND +verdict = ?" : " AND verdict = ?"},
                                      {f.planet, " AND planet = ?"},
                                      {f.layer, " AND layer = ?"},
                                      {f.since, " AND time >= ?"}})
    if (!value.empty()) sql += clause, values->push_back(value);
  return sql;
}

}  // namespace

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string utc_time(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char millis[8];
  std::snprintf(millis, sizeof millis, ".%03dZ", static_cast<int>(ms % 1000));
  return std::string(buf) + millis;
}

json run_summary(const json& r) {
  double total_ms = 0;
  if (r.contains("ms") && r["ms"].is_object())
    for (const auto& [stage, t] : r["ms"].items())
      if (t.is_number()) total_ms += t.get<double>();
  json s = json::object();
  for (const char* key : {"id", "time", "source", "suite", "batch", "planet", "engine", "fixture", "native", "layer", "verdict",
                          "message", "tolerance", "max_abs", "max_rel", "reload_identical", "first_divergence", "stored_entity"})
    if (r.contains(key)) s[key] = r[key];
  s["total_ms"] = total_ms;
  // Timings a nightly compares (slower) and balances shards by (wall); absent in older runs.
  if (r.contains("timing") && r["timing"].is_object())
    for (const char* key : {"wall_ms", "run_median_ms"})
      if (r["timing"].contains(key) && r["timing"][key].is_number()) s[key] = r["timing"][key];
  return s;
}

namespace {

std::string str(const json& j, const char* key) { return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : ""; }

}  // namespace

Catalog::Catalog(const std::string& data_dir) : path_(data_dir + "/catalog.sqlite"), runs_dir_(data_dir + "/runs") {
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK) {
    const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(path_, "cannot open the run catalog: " + why);
  }
  try {
    sqlite3_busy_timeout(db_, 30000);  // another process writing: wait for it, do not fail
    exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
    migrate();
    index_folders(runs_dir_);
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

Catalog::~Catalog() { sqlite3_close(db_); }

void Catalog::exec(const std::string& sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string why = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw Error(path_, "the run catalog: " + why);
  }
}

void Catalog::migrate() {
  // BEGIN IMMEDIATE: two processes opening a new catalog at once migrate it once.
  exec("BEGIN IMMEDIATE");
  try {
    Statement v(db_, path_, "PRAGMA user_version");
    v.step();
    const int64_t version = v.integer(0);
    if (version > kSchemaVersion)
      throw Error(path_, "the run catalog has schema version " + std::to_string(version) + "; this planetbridge reads up to " +
                             std::to_string(kSchemaVersion) + " (a newer planetbridge wrote it)");
    for (int64_t i = version; i < kSchemaVersion; ++i) exec(kMigrations[i]);
    exec("PRAGMA user_version = " + std::to_string(kSchemaVersion));
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void Catalog::index_folders(const std::string& runs_dir) {
  // One write transaction from reading the rows to the last insert: a gc that removes a run
  // meanwhile cannot have its row put back here from a folder read before the removal (a gc
  // only takes runs with rows, and waits for this), nor a commit's row be read as missing.
  exec("BEGIN IMMEDIATE");
  try {
    // Every open does this, so it is two sorted lists merged (the ids come in primary-key order),
    // not sets: 100,000 runs take a few tens of milliseconds.
    std::vector<std::string> indexed, on_disk;
    {
      Statement q(db_, path_, "SELECT id FROM runs ORDER BY id");
      while (q.step()) indexed.push_back(q.text(0));
    }
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(runs_dir, ec)) on_disk.push_back(e.path().filename().string());
    std::sort(on_disk.begin(), on_disk.end());
    std::vector<std::string> unindexed, gone;
    std::set_difference(on_disk.begin(), on_disk.end(), indexed.begin(), indexed.end(), std::back_inserter(unindexed));
    std::set_difference(indexed.begin(), indexed.end(), on_disk.begin(), on_disk.end(), std::back_inserter(gone));
    forget_rows(gone);
    for (const std::string& id : unindexed) {
      if (id.empty() || id[0] == '.') continue;
      std::ifstream in(fs::path(runs_dir) / id / "result.json");
      if (!in) continue;  // reserved and still running, or abandoned
      json r;
      try {
        r = json::parse(in);
      } catch (const json::exception&) {
        continue;  // a damaged result.json is left to `runs`/the dashboard to report; it is not indexed
      }
      if (r.is_object() && str(r, "id") == id) insert_run(r);
    }
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void Catalog::add_run(const json& r) {
  std::lock_guard<std::mutex> lock(mu_);
  // The folder is checked in the transaction that adds the row: a gc renames a run's folder away
  // before it forgets the run's row, so a row added here is either forgotten by that gc or never
  // added (no row outlives its folder when a run is indexed by another process and collected
  // before its own commit gets here).
  exec("BEGIN IMMEDIATE");
  try {
    std::error_code ec;
    if (fs::exists(fs::path(runs_dir_) / str(r, "id") / "result.json", ec)) insert_run(r);
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void Catalog::insert_run(const json& r) {
  Statement st(db_, path_,
               "INSERT OR IGNORE INTO runs(id, batch, time, source, suite, planet, engine, fixture, layer, verdict, max_abs, max_rel, "
               "total_ms, stream_bytes, stored_entity, summary, stream_hash, entity_hash, entity_bytes) "
               "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)");
  const json s = run_summary(r);
  st.bind(1, str(r, "id"));
  if (str(r, "batch").empty()) st.bind_null(2);
  else st.bind(2, str(r, "batch"));
  st.bind(3, str(r, "time")).bind(4, str(r, "source")).bind(5, str(r, "suite")).bind(6, str(r, "planet")).bind(7, str(r, "engine"));
  st.bind(8, str(r, "fixture")).bind(9, str(r, "layer")).bind(10, str(r, "verdict"));
  for (int i : {11, 12}) {
    const double v = number_or_nan(r, i == 11 ? "max_abs" : "max_rel");
    if (std::isnan(v)) st.bind_null(i);
    else st.bind(i, v);
  }
  st.bind(13, s["total_ms"].get<double>());
  st.bind(14, static_cast<int64_t>(r.value("stream_bytes", uint64_t(0))));
  st.bind(15, static_cast<int64_t>(r.value("stored_entity", false)));
  st.bind(16, s.dump(-1, ' ', false, json::error_handler_t::replace));
  for (const auto& [i, key] : {std::pair<int, const char*>{17, "stream_sha256"}, {18, "entity_sha256"}}) {
    if (str(r, key).empty()) st.bind_null(i);
    else st.bind(i, str(r, key));
  }
  if (r.value("stored_entity", false)) st.bind(19, static_cast<int64_t>(r.value("entity_bytes", uint64_t(0))));
  else st.bind_null(19);
  st.step();
}

std::string Catalog::begin_batch(const BatchInfo& info) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string started = utc_time(now_ms());
  // yyyymmddThhmmss.mmmZ-b<pid>: unique unless one process begins two batches within a millisecond.
  std::string id = started.substr(0, 4) + started.substr(5, 2) + started.substr(8, 2) + "T" + started.substr(11, 2) +
                   started.substr(14, 2) + started.substr(17, 6) + "Z-b" + std::to_string(::getpid());
  Statement st(db_, path_,
               "INSERT INTO batches(id, suite, suite_file, suite_hash, filters, host_version, machine, started) "
               "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  st.bind(1, id).bind(2, info.suite).bind(3, info.suite_file).bind(4, info.suite_hash).bind(5, info.filters.dump());
  st.bind(6, info.host_version).bind(7, info.machine.dump()).bind(8, started);
  st.step();
  return id;
}

json Catalog::end_batch(const std::string& batch) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Statement st(db_, path_,
                 "UPDATE batches SET ended = ?2, "
                 "total = (SELECT COUNT(*) FROM runs WHERE batch = ?1), "
                 // +verdict: counted through the batch's index, not by walking every run of a verdict
                 "exact = (SELECT COUNT(*) FROM runs WHERE batch = ?1 AND +verdict = 'EXACT'), "
                 "pass = (SELECT COUNT(*) FROM runs WHERE batch = ?1 AND +verdict = 'PASS'), "
                 "fail = (SELECT COUNT(*) FROM runs WHERE batch = ?1 AND +verdict = 'FAIL'), "
                 "error = (SELECT COUNT(*) FROM runs WHERE batch = ?1 AND +verdict = 'ERROR'), "
                 "skip = (SELECT COUNT(*) FROM runs WHERE batch = ?1 AND +verdict = 'SKIP') WHERE id = ?1");
    st.bind(1, batch).bind(2, utc_time(now_ms()));
    st.step();
  }
  return this->batch(batch).value_or(json::object());
}

std::optional<json> Catalog::batch(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  Statement q(db_, path_, (std::string("SELECT ") + kBatchColumns + " FROM batches WHERE id = ?1").c_str());
  q.bind(1, id);
  if (!q.step()) return std::nullopt;
  return batch_document(q);
}

std::vector<json> Catalog::batches(size_t limit, size_t offset) const {
  std::lock_guard<std::mutex> lock(mu_);
  // Ids begin with the start time, so the primary key's index gives the order.
  Statement q(db_, path_, (std::string("SELECT ") + kBatchColumns + " FROM batches ORDER BY id DESC LIMIT ?1 OFFSET ?2").c_str());
  q.bind(1, static_cast<int64_t>(limit)).bind(2, static_cast<int64_t>(offset));
  std::vector<json> out;
  while (q.step()) out.push_back(batch_document(q));
  return out;
}

size_t Catalog::count_batches() const {
  std::lock_guard<std::mutex> lock(mu_);
  Statement q(db_, path_, "SELECT COUNT(*) FROM batches");
  q.step();
  return static_cast<size_t>(q.integer(0));
}

namespace {

// Orders the batches `b` so that those selecting the same cases as batch ?2 (`me`: planets,
// layers, fixture glob and shard) come first: tonight's shard 2 is compared with last night's
// shard 2, not with whichever shard finished last.
const char* const kSameSelectionFirst =
    "(json_extract(b.filters, '$.planets') IS json_extract(me.filters, '$.planets') AND "
    "json_extract(b.filters, '$.layers') IS json_extract(me.filters, '$.layers') AND "
    "json_extract(b.filters, '$.fixture') IS json_extract(me.filters, '$.fixture') AND "
    "IFNULL(json_extract(b.filters, '$.shard'), '1/1') IS IFNULL(json_extract(me.filters, '$.shard'), '1/1')) DESC";

}  // namespace

std::optional<std::string> Catalog::previous_batch(const std::string& suite, const std::string& id) const {
  return newest_batch_like(suite, id, "b.id < ?2");
}

std::optional<std::string> Catalog::latest_batch(const std::string& suite, const std::string& excluding) const {
  return newest_batch_like(suite, excluding, "b.id != ?2");
}

// The newest finished batch `b` of `suite` meeting `which` (about batch ?2), those that selected
// the same cases as batch ?2 first. Ids begin with the start time: the newest has the largest.
std::optional<std::string> Catalog::newest_batch_like(const std::string& suite, const std::string& id, const char* which) const {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string sql = std::string("SELECT b.id FROM batches b LEFT JOIN batches me ON me.id = ?2 WHERE b.suite = ?1 AND ") +
                          which + " AND b.ended IS NOT NULL ORDER BY " + kSameSelectionFirst + ", b.id DESC LIMIT 1";
  Statement q(db_, path_, sql.c_str());
  q.bind(1, suite).bind(2, id);
  if (!q.step()) return std::nullopt;
  return q.text(0);
}

std::vector<json> Catalog::batch_groups(const std::string& batch) const {
  std::lock_guard<std::mutex> lock(mu_);
  Statement q(db_, path_,
              "SELECT planet, layer, verdict, COUNT(*) FROM runs WHERE batch = ?1 GROUP BY planet, layer, verdict "
              "ORDER BY planet, layer, verdict");
  q.bind(1, batch);
  std::vector<json> out;
  while (q.step()) out.push_back({{"planet", q.text(0)}, {"layer", q.text(1)}, {"verdict", q.text(2)}, {"runs", q.integer(3)}});
  return out;
}

std::vector<json> Catalog::runs(const RunFilter& f) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> values;
  std::string sql = "SELECT summary FROM runs" + where_clause(f, &values);
  sql += f.by_case ? " ORDER BY planet, layer, fixture, time DESC, id DESC" : " ORDER BY time DESC, id DESC";
  sql += " LIMIT ? OFFSET ?";
  Statement q(db_, path_, sql.c_str());
  for (size_t i = 0; i < values.size(); ++i) q.bind(static_cast<int>(i + 1), values[i]);
  q.bind(static_cast<int>(values.size() + 1), static_cast<int64_t>(f.limit));
  q.bind(static_cast<int>(values.size() + 2), static_cast<int64_t>(f.offset));
  std::vector<json> out;
  while (q.step()) out.push_back(json::parse(q.text(0), nullptr, false));
  return out;
}

std::vector<std::string> Catalog::recent_unsharded_batches(const std::string& suite, size_t limit) const {
  std::lock_guard<std::mutex> lock(mu_);
  Statement q(db_, path_,
              "SELECT id FROM batches WHERE suite = ?1 AND ended IS NOT NULL AND IFNULL(json_extract(filters, '$.shard'), '1/1') = '1/1' "
              "ORDER BY started DESC LIMIT ?2");
  q.bind(1, suite).bind(2, static_cast<int64_t>(limit));
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.text(0));
  return out;
}

std::vector<std::string> Catalog::collectable(const std::string& before, size_t keep_last) const {
  std::lock_guard<std::mutex> lock(mu_);
  Statement q(db_, path_,
              "SELECT id FROM runs WHERE time < ?1 AND id NOT IN (SELECT id FROM runs ORDER BY time DESC, id DESC LIMIT ?2) "
              "ORDER BY time, id");
  q.bind(1, before).bind(2, static_cast<int64_t>(keep_last));
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.text(0));
  return out;
}

void Catalog::forget(const std::vector<std::string>& run_ids) {
  std::lock_guard<std::mutex> lock(mu_);
  exec("BEGIN IMMEDIATE");
  try {
    forget_rows(run_ids);
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void Catalog::forget_rows(const std::vector<std::string>& run_ids) {
  if (run_ids.empty()) return;
  for (const std::string& id : run_ids) {
    Statement d(db_, path_, "DELETE FROM runs WHERE id = ?1");
    d.bind(1, id);
    d.step();
  }
  exec("DELETE FROM batches WHERE ended IS NOT NULL AND id NOT IN (SELECT batch FROM runs WHERE batch IS NOT NULL)");
}

size_t Catalog::count_runs(const RunFilter& f, size_t at_most) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> values;
  const std::string where = where_clause(f, &values);
  // The plain form lets SQLite count a whole table or index range without visiting its rows.
  const bool capped = at_most < static_cast<size_t>(INT64_MAX);
  Statement q(db_, path_, (capped ? "SELECT COUNT(*) FROM (SELECT 1 FROM runs" + where + " LIMIT ?)" : "SELECT COUNT(*) FROM runs" + where).c_str());
  for (size_t i = 0; i < values.size(); ++i) q.bind(static_cast<int>(i + 1), values[i]);
  if (capped) q.bind(static_cast<int>(values.size() + 1), static_cast<int64_t>(at_most));
  q.step();
  return static_cast<size_t>(q.integer(0));
}

json machine_info() {
  std::string cpu;
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; cpu.empty() && std::getline(in, line);)
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) cpu = line.substr(line.find(':') + 2);
  std::string isa;
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_amx: isa = "avx512_core_amx"; break;
    case dnnl::cpu_isa::avx512_core_bf16: isa = "avx512_core_bf16"; break;
    case dnnl::cpu_isa::avx512_core_vnni: isa = "avx512_core_vnni"; break;
    case dnnl::cpu_isa::avx512_core: isa = "avx512_core"; break;
    case dnnl::cpu_isa::avx2_vnni: isa = "avx2_vnni"; break;
    case dnnl::cpu_isa::avx2: isa = "avx2"; break;
    default: isa = "other"; break;
  }
  return {{"cpu", cpu}, {"isa", isa}, {"threads", std::thread::hardware_concurrency()}};
}

}  // namespace pb::host
