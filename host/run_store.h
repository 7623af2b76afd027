#pragma once
// The run store: every case run by `serve`, `run` or `check` is kept as
// <data>/runs/<id>/{result.json, stream.pbstream, model.entity} and never overwritten
// (docs/http-api.md, "The run store"). Streams and checkpoints are content-addressed: each
// distinct content is one file, <data>/blobs/<first 2 hex>/<sha256 hex>, and every run holding
// that content holds a hard link to it. The file system's link count is then the blob's
// reference count: gc removes a blob when its only link left is its own (docs/nightly.md).
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

  // Writes result.json (case_json + id, time, source, suite, batch, and the SHA-256 of the
  // stream and checkpoint kept), flushes the kept stream, and keeps the checkpoint as
  // model.entity: the one the ladder wrote to run.entity_path(), or a copy of r.entity_path when
  // it was written elsewhere (check --entity; a copy, since a blob must never change and the
  // user's file may be rewritten in place). Both become links to their blobs. Sets r.run_id and,
  // for a checkpoint in the store, r.entity_path. Indexes the run in the catalog. Returns the
  // document.
  nlohmann::json commit(Pending& run, CaseResult& r, const RunInfo& info);

  struct GcReport {
    std::vector<std::string> runs;  // ids removed (or that would be), oldest first
    size_t blobs = 0;               // blobs no run links any more
    uint64_t bytes = 0;             // freed on disk: those blobs and the runs' unshared files
  };
  // Removes the runs older than `keep_days` days except the `keep_last` newest: each folder
  // (renamed out of the listing first, then deleted), then the catalog rows, then the blobs no
  // run links any more. With dry_run, says what it would remove.
  GcReport gc(double keep_days, size_t keep_last, bool dry_run);
  // A fresh temporary path in the store for a request body (removed by a later store if this
  // process dies); hand it to Pending::adopt_stream().
  std::string body_file();

  // Ids of the completed runs, newest first.
  std::vector<std::string> ids() const;
  // The run's result.json, or nullopt for an unknown (or malformed) id.
  std::optional<nlohmann::json> result(const std::string& id) const;
  // The run's summary (run_summary of its result.json); lists come from the catalog.
  std::optional<nlohmann::json> summary(const std::string& id) const;
  // Paths of the run's files, or "" when the run has none. Throws pb::Error naming the file when
  // the run's result.json records one that is missing or whose size differs (a damaged store).
  std::string entity_file(const std::string& id) const;
  std::string stream_file(const std::string& id) const;

  const std::string& data_dir() const { return data_dir_; }
  Catalog& catalog() const { return *catalog_; }
  std::string run_dir(const std::string& id) const { return runs_dir_ + "/" + id; }
  static bool valid_id(const std::string& id);

 private:
  struct Blob {
    std::string sha256;
    uint64_t bytes = 0;
  };
  std::string existing_file(const std::string& id, const char* name) const;
  std::string checked_file(const std::string& id, const char* name, const std::string& what, uint64_t bytes,
                           const std::string& sha256) const;
  Blob share_blob(const std::string& file);
  std::string data_dir_, runs_dir_, blobs_dir_;
  std::unique_ptr<Catalog> catalog_;
  std::mutex mu_;        // guards the id sequence
  std::atomic<uint64_t> bodies_{0};
  int64_t last_second_ = 0;
  int next_seq_ = 0;
};

}  // namespace pb::host
