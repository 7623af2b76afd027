#pragma once
// The run store: every case run by `serve`, `run` or `check` is kept as
// <data>/runs/<id>/{result.json, stream.pbstream, model.entity} and never overwritten
// (docs/http-api.md, "Run store").
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "catalog.h"
#include "ladder.h"

namespace pb::host {

struct RunInfo {
  std::string source;  // "serve", "run" or "check"
  std::string suite;   // the suite's name for `run`, else ""
  std::string batch;   // the suite run's batch id for `run`, else ""
};

class RunStore {
 public:
  // Creates <data_dir>/runs when missing and opens the catalog (catalog.h), which indexes any
  // run folder it lacks; throws pb::Error naming the directory or file if it cannot.
  explicit RunStore(std::string data_dir);

  // A run being recorded. Its id is reserved by creating the empty <runs>/<id>/ exclusively;
  // its files go to a private folder that commit() renames over the reserved one, so a run's
  // folder is either empty (in progress, or abandoned by a crash) or complete.
  class Pending {
   public:
    ~Pending();  // removes the private folder when commit() never happened
    Pending(const Pending&) = delete;
    Pending& operator=(const Pending&) = delete;
    const std::string& id() const { return id_; }
    const std::string& time() const { return time_; }
    // Where the ladder should write the checkpoint (inside the private folder).
    std::string entity_path() const { return temp_dir_ + "/model.entity"; }
    // The stream as received, written into the run now, before the ladder runs: its flush to
    // disk proceeds in the background and commit() only waits for what is left of it.
    void keep_stream(const uint8_t* data, size_t size);
    // A stream already written to a file of this store (RunStore::body_file()): moved into
    // the run, not copied.
    void adopt_stream(const std::string& file);

   private:
    friend class RunStore;
    Pending() = default;
    std::string stream_path() const { return temp_dir_ + "/stream.pbstream"; }
    std::string id_, time_, dir_, temp_dir_;
    bool committed_ = false, has_stream_ = false;
    uint64_t stream_bytes_ = 0;
  };

  // Reserves a new run id: "<UTC yyyymmddThhmmssZ>-<6-digit sequence>", increasing in the order
  // runs begin, across threads and processes sharing the store.
  std::unique_ptr<Pending> begin();

  // Writes result.json (case_json + id, time, source, suite, batch), flushes the kept stream, and
  // keeps the checkpoint as model.entity: the one the ladder wrote to run.entity_path(), or
  // r.entity_path when it was written elsewhere (check --entity): hard-linked when on the same
  // file system (a checkpoint is only ever replaced by rename, so the link keeps this run's
  // version), else copied. Sets r.run_id and, for a checkpoint in the store, r.entity_path.
  // Indexes the run in the catalog. Returns the document.
  nlohmann::json commit(Pending& run, CaseResult& r, const RunInfo& info);

  // Removes the runs older than `keep_days` days except the `keep_last` newest: each folder
  // (renamed out of the listing first, then deleted), then the catalog rows. Returns the ids
  // removed, or with dry_run those it would remove.
  std::vector<std::string> gc(double keep_days, size_t keep_last, bool dry_run);
  // A fresh temporary path in the store for a request body (removed by a later store if this
  // process dies); hand it to Pending::adopt_stream().
  std::string body_file();

  // Ids of the completed runs, newest first.
  std::vector<std::string> ids() const;
  // The run's result.json, or nullopt for an unknown (or malformed) id.
  std::optional<nlohmann::json> result(const std::string& id) const;
  // The run's summary (run_summary of its result.json); lists come from the catalog.
  std::optional<nlohmann::json> summary(const std::string& id) const;
  // Paths of the run's files, or "" when the run has none.
  std::string entity_file(const std::string& id) const;
  std::string stream_file(const std::string& id) const;

  const std::string& data_dir() const { return data_dir_; }
  Catalog& catalog() const { return *catalog_; }
  std::string run_dir(const std::string& id) const { return runs_dir_ + "/" + id; }
  static bool valid_id(const std::string& id);

 private:
  std::string existing_file(const std::string& id, const char* name) const;
  std::string data_dir_, runs_dir_;
  std::unique_ptr<Catalog> catalog_;
  std::mutex mu_;        // guards the id sequence
  std::atomic<uint64_t> bodies_{0};
  int64_t last_second_ = 0;
  int next_seq_ = 0;
};

}  // namespace pb::host
