#pragma once
// The run catalog: an SQLite index of the run store (<data>/catalog.sqlite; docs/nightly.md).
// The run folders stay the record (result.json, stream, checkpoint); the catalog indexes them
// (one row per case run, one per suite run, "batch") so lists and histories are queries, not
// folder walks. Opening it reconciles the two: it indexes any run folder it lacks (a store made
// before the catalog, or a run whose process died between writing its folder and its row) and
// forgets rows whose folder is gone (a gc interrupted between the two).
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

struct sqlite3;

namespace pb::host {

// What a suite run records about itself.
struct BatchInfo {
  std::string suite, suite_file, suite_hash;  // name, path, "crc32:<hex>" of the file's bytes
  nlohmann::json filters = nlohmann::json::object();  // planets, layers, fixture glob
  std::string host_version;
  nlohmann::json machine = nlohmann::json::object();  // cpu, isa, threads
};

struct RunFilter {
  std::string batch;         // "" any
  std::string fixture_glob;  // "" any; SQLite GLOB (*, ?, [...])
  std::string fixture;       // "" any; exactly this fixture (a fixture's history)
  std::string verdict;       // "" any
  std::string planet;        // "" any
  std::string layer;         // "" any
  std::string since;         // "" any; runs at or after this UTC time ("2026-12-01" or a run id's time)
  size_t limit = 100;
  size_t offset = 0;         // rows skipped first (paging)
  bool by_case = false;      // ordered by planet, layer, fixture (a batch's page) instead of newest first
};

class Catalog {
 public:
  // Opens (creating or migrating) <data_dir>/catalog.sqlite and indexes the run folders of
  // <data_dir>/runs it lacks. Throws pb::Error naming the file.
  explicit Catalog(const std::string& data_dir);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  static constexpr int kSchemaVersion = 2;  // the number of migrations in catalog.cpp
  const std::string& path() const { return path_; }

  // A run's row from its result document (as RunStore::commit writes it, after its folder is in
  // place); an id already indexed, or whose folder is gone (collected meanwhile), is left alone.
  void add_run(const nlohmann::json& result);
  std::string begin_batch(const BatchInfo& info);
  // Closes the batch with its verdict counts (counted from its rows).
  nlohmann::json end_batch(const std::string& batch);

  // Summaries (RunStore::summary's shape) of the runs matching `f`, newest first (or by case).
  std::vector<nlohmann::json> runs(const RunFilter& f) const;
  // The runs matching `f` (its limit and offset aside), counted up to `at_most`.
  size_t count_runs(const RunFilter& f = {}, size_t at_most = SIZE_MAX) const;
  // Ids of the runs older than `before` (a UTC time) except the `keep_last` newest, oldest first.
  std::vector<std::string> collectable(const std::string& before, size_t keep_last) const;
  // Drops the rows of runs whose folders are gone, and batches left with no runs.
  void forget(const std::vector<std::string>& run_ids);
  std::optional<nlohmann::json> batch(const std::string& id) const;
  // The newest finished batch of `suite` other than `excluding`; of those, first the ones that
  // selected the same cases as batch `excluding` (planets, layers, fixture glob, shard).
  std::optional<std::string> latest_batch(const std::string& suite, const std::string& excluding) const;
  // Ids of the newest finished batches of `suite` that were not one shard of a run, newest
  // first: what shards read durations from, so shards run meanwhile cannot change their split.
  std::vector<std::string> recent_unsharded_batches(const std::string& suite, size_t limit) const;
  // Batches (batch()'s shape), newest first: `limit` of them after skipping `offset`.
  std::vector<nlohmann::json> batches(size_t limit, size_t offset) const;
  size_t count_batches() const;
  // The newest finished batch of `suite` begun before batch `id` (the one a nightly compares
  // with); of those, first the ones that selected the same cases (as latest_batch).
  std::optional<std::string> previous_batch(const std::string& suite, const std::string& id) const;
  // A batch's runs counted by planet, layer and verdict: [{planet, layer, verdict, runs}], sorted.
  std::vector<nlohmann::json> batch_groups(const std::string& batch) const;

 private:
  void exec(const std::string& sql) const;
  void migrate();
  void index_folders(const std::string& runs_dir);
  // Inside the caller's transaction:
  void forget_rows(const std::vector<std::string>& run_ids);
  void insert_run(const nlohmann::json& result);
  std::optional<std::string> newest_batch_like(const std::string& suite, const std::string& id, const char* which) const;

  std::string path_, runs_dir_;
  sqlite3* db_ = nullptr;
  mutable std::mutex mu_;  // one connection per process; SQLite's WAL orders the processes
};

// Milliseconds since the epoch, and as the store writes times: "2026-12-03T04:28:18.692Z" (UTC;
// sorts as text in time order, so catalog queries compare times as strings).
int64_t now_ms();
std::string utc_time(int64_t ms);

// A run's summary, the row lists show: its result document's id, time, source, suite, batch,
// planet, engine, fixture, native, layer, verdict, message, tolerance, errors, reload,
// first divergence, whether a checkpoint was kept, and total_ms (every stage summed).
nlohmann::json run_summary(const nlohmann::json& result);

// The machine a batch ran on: CPU model, the ISA oneDNN dispatches, hardware threads.
nlohmann::json machine_info();

}  // namespace pb::host
