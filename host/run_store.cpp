#include "run_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <tuple>

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

// The SHA-256 of a file's bytes, as lowercase hex, and its size.
std::pair<std::string, uint64_t> sha256_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_errno(path, "cannot open to hash");
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    ::close(fd);
    throw Error(path, "cannot hash: OpenSSL has no SHA-256");
  }
  std::vector<char> buf(1 << 20);
  uint64_t size = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      fail_errno(path, "cannot read to hash");
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
    size += static_cast<uint64_t>(n);
  }
  ::close(fd);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) out += {hex[digest[i] >> 4], hex[digest[i] & 15]};
  return {out, size};
}

using Inode = std::pair<dev_t, ino_t>;

// The files in the doomed runs' folders: how many links to each inode they hold (a blob's inode
// is linked from every run sharing it), and the bytes of the inodes they hold every link to.
struct RunFiles {
  std::map<Inode, nlink_t> links;
  uint64_t unshared_bytes = 0;
};

RunFiles run_files(const std::vector<std::string>& dirs) {
  RunFiles out;
  std::map<Inode, struct stat> seen;
  for (const std::string& dir : dirs) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      struct stat st{};
      if (::lstat(e.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      ++out.links[{st.st_dev, st.st_ino}];
      seen[{st.st_dev, st.st_ino}] = st;
    }
  }
  for (const auto& [inode, st] : seen)
    if (out.links[inode] == st.st_nlink) out.unshared_bytes += static_cast<uint64_t>(st.st_size);
  return out;
}

// Removes (with dry_run, only counts) the blobs whose every link but their own is in `doomed`:
// once the runs are gone, the blobs no run links. A commit may link a blob between its stat and
// its unlink here: that run keeps the bytes through its own link, and only later runs lose the
// sharing (they make the blob again). So gc needs no lock and no grace period.
void sweep_blobs(const std::string& blobs_dir, const std::map<Inode, nlink_t>& doomed, bool dry_run, RunStore::GcReport& g) {
  std::error_code ec;
  for (const auto& shard : fs::directory_iterator(blobs_dir, ec))
    for (const auto& e : fs::directory_iterator(shard.path(), ec)) {
      struct stat st{};
      if (e.path().filename().string().size() != 64 || ::lstat(e.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      const auto d = doomed.find({st.st_dev, st.st_ino});
      if (st.st_nlink - (d == doomed.end() ? 0 : d->second) != 1) continue;
      if (!dry_run && ::unlink(e.path().c_str()) != 0 && errno != ENOENT) fail_errno(e.path().string(), "cannot remove the blob");
      ++g.blobs;
      g.bytes += static_cast<uint64_t>(st.st_size);
    }
}

}  // namespace

RunStore::RunStore(std::string data_dir)
    : data_dir_(std::move(data_dir)), runs_dir_(data_dir_ + "/runs"), blobs_dir_(data_dir_ + "/blobs") {
  for (const std::string& dir : {runs_dir_, blobs_dir_}) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec || !fs::is_directory(dir)) throw Error(dir, "cannot create the run store: " + ec.message());
  }
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
    // Written where the user asked (check --entity): copied, not linked, so that the user
    // rewriting their file in place can never change a blob.
    fs::copy_file(r.entity_path, run.entity_path(), ec);
    if (ec) throw Error(run.entity_path(), "cannot copy the checkpoint " + r.entity_path + ": " + ec.message());
    fsync_path(run.entity_path(), O_RDONLY);
    stored_entity = true;
  }
  if (run.has_stream_) fsync_path(run.stream_path(), O_RDONLY);
  // Flushed first: a blob's bytes are on disk before any run can link it.
  Blob stream, entity;
  if (run.has_stream_) stream = share_blob(run.stream_path());
  if (stored_entity) entity = share_blob(run.entity_path());

  r.run_id = run.id_;
  nlohmann::json j = case_json(r);
  j["id"] = run.id_;
  j["time"] = run.time_;
  j["source"] = info.source;
  j["suite"] = info.suite;
  if (!info.batch.empty()) j["batch"] = info.batch;
  j["stream_bytes"] = run.stream_bytes_;
  if (run.has_stream_) j["stream_sha256"] = stream.sha256;
  j["stored_entity"] = stored_entity;
  if (stored_entity) {
    j["entity_sha256"] = entity.sha256;
    j["entity_bytes"] = entity.bytes;  // the ladder's count is 0 when the reload failed; this is the file's
  }
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

RunStore::Blob RunStore::share_blob(const std::string& file) {
  Blob b;
  std::tie(b.sha256, b.bytes) = sha256_file(file);
  const std::string dir = blobs_dir_ + "/" + b.sha256.substr(0, 2);
  std::error_code ec;
  fs::create_directories(dir, ec);  // blobs/ too, should someone have removed it
  if (ec) throw Error(dir, "cannot create the blob folder: " + ec.message());
  const std::string blob = dir + "/" + b.sha256;
  // The blob's folder entry is not flushed: a crash that loses it costs later runs the sharing,
  // never a run its bytes (each holds its own link). Two tries: a gc may remove the blob between
  // seeing it and linking it.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (::link(file.c_str(), blob.c_str()) == 0) return b;  // the first run with these bytes: its file is the blob
    if (errno == EPERM || errno == ENOTSUP || errno == EXDEV) return b;  // no hard links here: the run keeps its own copy
    if (errno != EEXIST) fail_errno(blob, "cannot store the blob");
    struct stat st{};
    if (::stat(blob.c_str(), &st) != 0) continue;
    if (static_cast<uint64_t>(st.st_size) != b.bytes) {
      // Damaged from outside (blobs are never written in place): later runs share this run's copy.
      if (::unlink(blob.c_str()) != 0 && errno != ENOENT) fail_errno(blob, "cannot replace the damaged blob");
      continue;
    }
    // These bytes are stored already: the run's file becomes another link to them.
    const std::string shared = temporary_name(file);
    if (::link(blob.c_str(), shared.c_str()) != 0) {
      if (errno == ENOENT) continue;
      return b;  // too many links (EMLINK): the run keeps its own copy
    }
    if (::rename(shared.c_str(), file.c_str()) != 0) fail_errno(file, "cannot link the run's file to its blob " + blob);
    return b;
  }
  return b;
}

RunStore::GcReport RunStore::gc(double keep_days, size_t keep_last, bool dry_run) {
  const std::string before = utc_time(now_ms() - static_cast<int64_t>(keep_days * 86400e3));
  GcReport g;
  g.runs = catalog_->collectable(before, keep_last);
  std::vector<std::string> dirs;
  for (const std::string& id : g.runs) dirs.push_back(run_dir(id));
  const RunFiles files = run_files(dirs);
  g.bytes = files.unshared_bytes;
  if (dry_run) {
    sweep_blobs(blobs_dir_, files.links, true, g);
    return g;
  }
  // Out of the listing first, each in one step; then the rows, in one transaction; then the
  // files; then the blobs left unlinked. A crash in between leaves abandoned temporaries the
  // next store removes, rows the next catalog open forgets, and blobs the next gc removes.
  const std::vector<std::string> ids = std::move(g.runs);
  g.runs.clear();
  std::vector<std::string> doomed;
  for (const std::string& id : ids) {
    doomed.push_back(temporary_name(runs_dir_ + "/." + id + ".gc"));
    if (::rename(run_dir(id).c_str(), doomed.back().c_str()) == 0) g.runs.push_back(id);
    else if (errno != ENOENT) fail_errno(run_dir(id), "cannot remove the run");  // gone: a row left by an interrupted gc
  }
  catalog_->forget(ids);
  for (const std::string& d : doomed) {
    std::error_code ec;
    fs::remove_all(d, ec);
    if (ec) throw Error(d, "cannot remove the run: " + ec.message());
  }
  sweep_blobs(blobs_dir_, {}, false, g);
  return g;
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

std::string RunStore::entity_file(const std::string& id) const {
  const std::optional<nlohmann::json> r = result(id);
  if (!r || !r->value("stored_entity", false)) return "";
  // Runs from before blobs recorded the reloaded size only: 0 when the reload failed.
  return checked_file(id, "model.entity", "checkpoint", r->value("entity_bytes", uint64_t(0)), r->value("entity_sha256", ""));
}

std::string RunStore::stream_file(const std::string& id) const {
  const std::optional<nlohmann::json> r = result(id);
  if (!r) return "";
  const uint64_t bytes = r->value("stream_bytes", uint64_t(0));
  const std::string sha256 = r->value("stream_sha256", "");
  if (bytes == 0 && sha256.empty()) return "";
  return checked_file(id, "stream.pbstream", "stream", bytes, sha256);
}

// A run's file as its result.json records it; runs from before blobs have no hash, and are read
// in place (they are never rewritten, and leave with gc).
std::string RunStore::checked_file(const std::string& id, const char* name, const std::string& what, uint64_t bytes,
                                   const std::string& sha256) const {
  const std::string path = run_dir(id) + "/" + name;
  const std::string recorded =
      "its result.json records a " + what + " of " + std::to_string(bytes) + " bytes" + (sha256.empty() ? "" : ", sha256 " + sha256);
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0)
    throw Error(path, std::string("cannot read the run's ") + what + " (" + std::strerror(errno) + "); " + recorded);
  if (!S_ISREG(st.st_mode)) throw Error(path, "not a file; " + recorded);
  if (bytes != 0 && static_cast<uint64_t>(st.st_size) != bytes)
    throw Error(path, "damaged: " + std::to_string(st.st_size) + " bytes, but " + recorded);
  return path;
}

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
