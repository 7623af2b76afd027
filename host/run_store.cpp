#include "run_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "planetbridge/files.h"
#include "report.h"

namespace pb::host {

namespace fs = std::filesystem;

namespace {

std::string utc(int64_t seconds, const char* format) {
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

[[noreturn]] void fail_errno(const std::string& path, const std::string& what) {
  throw Error(path, what + ": " + std::strerror(errno));
}

void fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) fail_errno(path, "cannot open for fsync");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) fail_errno(path, "fsync failed");
}

// Writes a new file; `sync` flushes it to disk now, else its writeback is only started (the
// caller fsyncs it before the run folder is renamed into place).
void write_new(const std::string& path, const void* data, size_t size, bool sync) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail_errno(path, "cannot create");
  const char* p = static_cast<const char*>(data);
  for (size_t done = 0; done < size;) {
    const ssize_t n = ::write(fd, p + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      fail_errno(path, "cannot write");
    }
    done += static_cast<size_t>(n);
  }
  if (!sync) ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);  // a hint: failure only delays
  if ((sync && ::fsync(fd) != 0) || ::close(fd) != 0) fail_errno(path, "cannot write");
}

}  // namespace

RunStore::RunStore(std::string data_dir) : data_dir_(std::move(data_dir)), runs_dir_(data_dir_ + "/runs") {
  std::error_code ec;
  fs::create_directories(runs_dir_, ec);
  if (ec || !fs::is_directory(runs_dir_)) throw Error(runs_dir_, "cannot create the run store: " + ec.message());
  // Private folders of runs whose process died (killed mid-run) are removed; a living
  // process's are left alone.
  remove_abandoned_temporaries(runs_dir_, ".");
  catalog_ = std::make_unique<Catalog>(data_dir_);
}

RunStore::Pending::~Pending() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(temp_dir_, ec);  // the empty reserved folder stays: its id is never reused
}

bool RunStore::valid_id(const std::string& id) {
  // yyyymmddThhmmssZ-nnnnnn
  if (id.size() != 23) return false;
  for (size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    const bool ok = i == 8 ? c == 'T' : i == 15 ? c == 'Z' : i == 16 ? c == '-' : (c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::unique_ptr<RunStore::Pending> RunStore::begin() {
  std::unique_ptr<Pending> p(new Pending());
  {
    // The sequence restarts each second; mkdir's exclusivity makes another process (or another
    // RunStore on the same folder) skip the numbers already taken, so ids keep their order.
    std::lock_guard<std::mutex> lock(mu_);
    for (;;) {
      const int64_t ms = now_ms();
      if (ms / 1000 > last_second_) {  // a clock stepped back keeps the last second: ids never decrease
        last_second_ = ms / 1000;
        next_seq_ = 0;
      }
      if (next_seq_ > 999999) {  // six digits keep ids sortable as text: wait for the next second
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      char seq[16];
      std::snprintf(seq, sizeof seq, "%06d", next_seq_++);
      const std::string id = utc(last_second_, "%Y%m%dT%H%M%SZ") + "-" + seq;
      const std::string dir = runs_dir_ + "/" + id;
      if (::mkdir(dir.c_str(), 0755) == 0) {
        p->id_ = id;
        p->dir_ = dir;
        p->time_ = utc_time(ms);
        break;
      }
      if (errno != EEXIST) fail_errno(dir, "cannot create the run directory");
    }
  }
  // Hidden (leading '.') and not a valid id, so listings never see it; the pid lets a later
  // store remove it if this process dies before commit().
  p->temp_dir_ = temporary_name(runs_dir_ + "/." + p->id_);
  std::error_code ec;
  fs::remove_all(p->temp_dir_, ec);
  if (::mkdir(p->temp_dir_.c_str(), 0755) != 0) fail_errno(p->temp_dir_, "cannot create the run directory");
  return p;
}

std::string RunStore::body_file() { return temporary_name(runs_dir_ + "/.body-" + std::to_string(bodies_++)); }

void RunStore::Pending::keep_stream(const uint8_t* data, size_t size) {
  if (has_stream_) throw Error(id_, "the run already has a stream");
  write_new(stream_path(), data, size, false);
  has_stream_ = true;
  stream_bytes_ = size;
}

void RunStore::Pending::adopt_stream(const std::string& file) {
  if (has_stream_) throw Error(id_, "the run already has a stream");
  std::error_code ec;
  const uint64_t size = fs::file_size(file, ec);
  if (ec) throw Error(file, "the received stream is gone: " + ec.message());
  if (::rename(file.c_str(), stream_path().c_str()) != 0) fail_errno(file, "cannot move the stream into the run");
  has_stream_ = true;
  stream_bytes_ = size;
}

nlohmann::json RunStore::commit(Pending& run, CaseResult& r, const RunInfo& info) {
  if (run.committed_) throw Error(run.id_, "run already recorded");
  bool stored_entity = false;
  std::error_code ec;
  if (r.entity_path == run.entity_path()) {
    stored_entity = fs::exists(r.entity_path, ec);  // absent when the ladder stopped before saving
    r.entity_path = stored_entity ? run.dir_ + "/model.entity" : "";
  } else if (!r.entity_path.empty() && fs::is_regular_file(r.entity_path, ec)) {
    // Written where the user asked (check --entity), already flushed by entity::save.
    if (::link(r.entity_path.c_str(), run.entity_path().c_str()) != 0) {
      fs::copy_file(r.entity_path, run.entity_path(), ec);  // another file system
      if (ec) throw Error(run.entity_path(), "cannot copy the checkpoint " + r.entity_path + ": " + ec.message());
      fsync_path(run.entity_path(), O_RDONLY);
    }
    stored_entity = true;
  }
  if (run.has_stream_) fsync_path(run.stream_path(), O_RDONLY);

  r.run_id = run.id_;
  nlohmann::json j = case_json(r);
  j["id"] = run.id_;
  j["time"] = run.time_;
  j["source"] = info.source;
  j["suite"] = info.suite;
  if (!info.batch.empty()) j["batch"] = info.batch;
  j["stream_bytes"] = run.stream_bytes_;
  j["stored_entity"] = stored_entity;
  // A capture's stderr tail in a message may hold any bytes: never fail the run on bad UTF-8.
  const std::string text = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  write_new(run.temp_dir_ + "/result.json", text.data(), text.size(), true);
  // rename(2) replaces the reserved folder only while it is empty: a completed run can never
  // be overwritten. The files and their folder entries are on disk first, so a crash never
  // leaves a half-written run under its id; the rename itself is flushed after, so a run
  // reported is a run kept.
  sync_directory(run.temp_dir_);
  if (::rename(run.temp_dir_.c_str(), run.dir_.c_str()) != 0) fail_errno(run.dir_, "cannot move the run into place");
  sync_directory(runs_dir_);
  run.committed_ = true;
  // After the folder: a run whose row is lost (a crash right here) is indexed at the next open.
  catalog_->add_run(j);
  return j;
}

std::vector<std::string> RunStore::gc(double keep_days, size_t keep_last, bool dry_run) {
  const std::string before = utc_time(now_ms() - static_cast<int64_t>(keep_days * 86400e3));
  const std::vector<std::string> ids = catalog_->collectable(before, keep_last);
  if (dry_run) return ids;
  // Out of the listing first, each in one step; then the rows, in one transaction; then the
  // files. A crash in between leaves abandoned temporaries the next store removes, and rows
  // the next catalog open forgets.
  std::vector<std::string> doomed;
  for (const std::string& id : ids) {
    doomed.push_back(temporary_name(runs_dir_ + "/." + id + ".gc"));
    if (::rename(run_dir(id).c_str(), doomed.back().c_str()) != 0 && errno != ENOENT) fail_errno(run_dir(id), "cannot remove the run");
  }
  catalog_->forget(ids);
  for (const std::string& d : doomed) {
    std::error_code ec;
    fs::remove_all(d, ec);
    if (ec) throw Error(d, "cannot remove the run: " + ec.message());
  }
  return ids;
}

std::vector<std::string> RunStore::ids() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(runs_dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (valid_id(name) && fs::exists(e.path() / "result.json", ec)) out.push_back(name);
  }
  std::sort(out.rbegin(), out.rend());
  return out;
}

std::string RunStore::existing_file(const std::string& id, const char* name) const {
  if (!valid_id(id)) return "";  // also keeps ".." and '/' out of paths
  const std::string path = run_dir(id) + "/" + name;
  std::error_code ec;
  return fs::is_regular_file(path, ec) ? path : "";
}

std::string RunStore::entity_file(const std::string& id) const { return existing_file(id, "model.entity"); }
std::string RunStore::stream_file(const std::string& id) const { return existing_file(id, "stream.pbstream"); }

std::optional<nlohmann::json> RunStore::result(const std::string& id) const {
  const std::string path = existing_file(id, "result.json");
  if (path.empty()) return std::nullopt;
  std::ifstream f(path, std::ios::binary);
  nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::optional<nlohmann::json> RunStore::summary(const std::string& id) const {
  std::optional<nlohmann::json> r = result(id);
  if (!r) return std::nullopt;
  return run_summary(*r);
}

}  // namespace pb::host
