#include "server.h"

#include <fcntl.h>
#include <unistd.h>

#include <sys/socket.h>

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <thread>

#include "dashboard.h"
#include "diff.h"
#include "ladder.h"
#include "planetbridge/entity.h"
#include "planetbridge/stream.h"
#include "run_store.h"

namespace pb::host {

using nlohmann::json;

namespace {

constexpr char kJsonType[] = "application/json";
constexpr char kStreamType[] = "application/x-planetbridge-stream";
constexpr size_t kDefaultListLimit = 100;

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  // Messages may quote bytes of a malformed body: never let invalid UTF-8 abort the reply.
  res.set_content(j.dump(2, ' ', false, json::error_handler_t::replace) + "\n", kJsonType);
}

void send_error(httplib::Response& res, int status, const std::string& path, const std::string& message) {
  send_json(res, status, {{"error", {{"path", path}, {"message", message}}}});
}

// For answers given without reading the whole body: asks the client to close the connection,
// so that the unread rest is never taken for its next request.
void refuse(httplib::Response& res, int status, const std::string& path, const std::string& message) {
  send_error(res, status, path, message);
  res.set_header("Connection", "close");
}

// "application/json; charset=utf-8" -> "application/json"
std::string media_type(const std::string& header) {
  std::string t;
  for (char c : header.substr(0, header.find(';')))
    if (!std::isspace(static_cast<unsigned char>(c))) t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return t;
}

std::string shortest(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// A query parameter as a number in [lo, hi] (an integer when asked); `fallback` when absent.
double number_param(const httplib::Request& req, const char* key, double fallback, double lo, double hi, bool integer) {
  if (!req.has_param(key)) return fallback;
  const std::string text = req.get_param_value(key);
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(v >= lo && v <= hi) || (integer && v != std::floor(v)))
    throw Error(key, std::string("expected ") + (integer ? "an integer" : "a number") + " from " + shortest(lo) + " to " +
                         shortest(hi) + ", got \"" + text + "\"");
  return v;
}

// For httplib's own errors, which come without a message.
std::string reason_phrase(int status) {
  switch (status) {
    case 400: return "bad request";
    case 408: return "request timeout";
    case 413: return "request body too large";
    case 414: return "request URI too long";
    case 415: return "unsupported media type";
    case 431: return "request header fields too large";
    default: return "HTTP status " + std::to_string(status);
  }
}

json graph_json(const ir::Graph& g) {
  json nodes = json::array();
  for (const ir::Node& n : g.nodes) {
    json attrs = json::object();
    for (const auto& [k, v] : n.attrs.all()) attrs[k] = ir::attr_str(v);
    nodes.push_back({{"name", n.name}, {"op", n.op}, {"inputs", n.inputs}, {"outputs", n.outputs}, {"origin", n.origin}, {"attrs", attrs}});
  }
  return nodes;
}

// Only [A-Za-z0-9._-] in a Content-Disposition file name.
std::string file_name(const std::string& s) {
  std::string o;
  for (char c : s) o += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
  return o;
}

// Streams a file in 64 KiB pieces instead of loading it whole; false if it cannot be read.
bool send_file(httplib::Response& res, const std::string& path, const std::string& type, const std::string& download_name) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  auto f = std::make_shared<std::ifstream>(path, std::ios::binary);
  if (path.empty() || ec || !*f) return false;
  res.set_header("Content-Disposition", "attachment; filename=\"" + download_name + "\"");
  res.set_content_provider(size, type, [f](size_t offset, size_t length, httplib::DataSink& sink) {
    std::vector<char> buf(std::min<size_t>(length, 1 << 16));
    f->seekg(static_cast<std::streamoff>(offset));
    f->read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize n = f->gcount();
    return n > 0 && sink.write(buf.data(), static_cast<size_t>(n));
  });
  return true;
}

// The body size a request declares, or nullopt without a usable Content-Length.
std::optional<uint64_t> declared_length(const httplib::Request& req) {
  if (!req.has_header("Content-Length")) return std::nullopt;
  const std::string len = req.get_header_value("Content-Length");
  if (len.empty() || len.size() > 19 || len.find_first_not_of("0123456789") != std::string::npos) return UINT64_MAX;
  return std::stoull(len);
}

std::string too_big(uint64_t max_body) {
  return "the body exceeds the server's limit of " + std::to_string(max_body) + " bytes (--max-body)";
}

constexpr size_t kBatchesPerPage = 20, kBatchRowsPerPage = 500, kHistoryPerPage = 100, kMaxPageRows = 10000, kCountAhead = 1000;

// A query parameter's text; "" when absent (an empty field of a submitted form is absent too).
std::string text_param(const httplib::Request& req, const char* key) { return req.has_param(key) ? req.get_param_value(key) : ""; }

// ?page= (from 1) and ?limit= (rows a page shows) of a listing.
Paging paging_params(const httplib::Request& req, size_t default_limit) {
  Paging p;
  p.page = static_cast<size_t>(number_param(req, "page", 1, 1, 1e9, true));
  p.limit = static_cast<size_t>(number_param(req, "limit", static_cast<double>(default_limit), 1, kMaxPageRows, true));
  return p;
}

// The run filters of a page's query: verdict, planet, layer, fixture (a glob), and for the run
// list batch and since.
RunFilter filter_params(const httplib::Request& req, bool whole_store) {
  RunFilter f;
  f.verdict = text_param(req, "verdict");
  if (!f.verdict.empty() && f.verdict != "EXACT" && f.verdict != "PASS" && f.verdict != "FAIL" && f.verdict != "ERROR" && f.verdict != "SKIP")
    throw Error("verdict", "expected EXACT, PASS, FAIL, ERROR or SKIP, got \"" + f.verdict + "\"");
  f.planet = text_param(req, "planet");
  f.layer = text_param(req, "layer");
  f.fixture_glob = text_param(req, "fixture");
  if (!whole_store) return f;
  f.batch = text_param(req, "batch");
  f.since = text_param(req, "since");
  static const std::regex utc(R"(\d{4}-\d{2}-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?Z?)?)");
  if (!f.since.empty() && !std::regex_match(f.since, utc))
    throw Error("since", "expected a UTC date or time such as 2026-12-01 or 2026-12-01T18:00, got \"" + f.since + "\"");
  return f;
}

// Runs `parse` on a request's query; false, with a 400 naming the parameter sent, when it throws.
template <class Parse>
bool parsed(httplib::Response& res, Parse&& parse) {
  try {
    parse();
    return true;
  } catch (const Error& e) {
    send_error(res, 400, e.where(), e.message());
    return false;
  }
}

void send_html(httplib::Response& res, const std::string& html) { res.set_content(html, "text/html; charset=utf-8"); }

// A batch still running has no counts yet (they are written when it ends): its runs so far,
// from Catalog::batch_groups.
void count_so_far(json& batch, const std::vector<json>& groups) {
  for (const char* v : {"total", "exact", "pass", "fail", "error", "skip"}) batch["counts"][v] = 0;
  for (const json& g : groups) {
    std::string v = g["verdict"];
    std::transform(v.begin(), v.end(), v.begin(), [](char c) { return static_cast<char>(std::tolower(c)); });
    for (const std::string& key : {v, std::string("total")})
      if (batch["counts"].contains(key)) batch["counts"][key] = batch["counts"][key].get<int64_t>() + g["runs"].get<int64_t>();
  }
}

}  // namespace

// Bounds the checks running at once: they take CPU and memory; every other request (health,
// listings, downloads, bodies still arriving) goes on without waiting for them.
class JobSlots {
 public:
  explicit JobSlots(int n) : free_(n > 0 ? unsigned(n) : std::max(1u, std::thread::hardware_concurrency())) {}
  struct Held {
    JobSlots* slots;
    ~Held() {
      std::lock_guard<std::mutex> lock(slots->mutex_);
      ++slots->free_;
      slots->changed_.notify_one();
    }
  };
  Held take() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return free_ > 0; });
    --free_;
    return Held{this};
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  unsigned free_;
};

struct Server::Impl {
  Impl(const PluginRegistry& p, ServerOptions o) : plugins(p), opt(std::move(o)), store(opt.data_dir), http(opt.limits), jobs(opt.jobs) {
    routes();
  }

  const PluginRegistry& plugins;
  const ServerOptions opt;
  RunStore store;
  GuardedServer http;
  JobSlots jobs;
  std::thread thread;
  std::atomic<bool> thread_done{false};
  int listen_fd = -1;

  struct Body {
    std::string file;  // where the kept body was written (a temporary of the store), or ""
    uint64_t size = 0;      // bytes received, kept or not
    bool complete = false;  // the whole body arrived (and was not cut at the drain limit)
  };
  uint64_t drain_limit() const { return opt.max_body > UINT64_MAX / 2 ? UINT64_MAX : 2 * opt.max_body; }
  Body read_body(const httplib::ContentReader& read, bool keep);

  void routes();
  void post_stream(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& read);
  std::optional<json> run_document(const std::string& id) const;
  std::string planet_list() const {
    std::string s;
    for (const auto& p : plugins.plugins()) s += (s.empty() ? "" : ", ") + p.dialect->planet();
    return s.empty() ? "none" : s;
  }
  json links(const std::string& id, const json& result) const {
    json l = {{"self", "/api/v1/runs/" + id}, {"page", "/runs/" + id}};
    if (result.value("stored_entity", false)) l["entity"] = "/api/v1/entities/" + id;
    if (result.value("stream_bytes", 0) > 0) l["stream"] = "/api/v1/streams/" + id;
    return l;
  }
  // The newest runs, from the catalog's index (no folder walk, however many runs there are).
  std::vector<json> summaries(size_t limit, size_t* total) const {
    *total = store.catalog().count_runs();
    RunFilter f;
    f.limit = limit;
    return store.catalog().runs(f);
  }
  // Every run of a batch, loaded once per request (`loaded` caches them by batch id).
  using BatchRuns = std::map<std::string, std::vector<json>>;
  const std::vector<json>& batch_runs(const std::string& id, BatchRuns* loaded) const {
    auto it = loaded->find(id);
    if (it != loaded->end()) return it->second;
    RunFilter f;
    f.batch = id;
    f.limit = SIZE_MAX >> 1;
    return loaded->emplace(id, store.catalog().runs(f)).first->second;
  }
  json batch_with_previous(json batch) const;
  json batch_with_changes(json batch, BatchRuns* loaded) const;
  // The changes of finished batches, which stay as they are: by both ids and both run counts
  // (gc may remove runs of either).
  mutable std::mutex changes_mutex;
  mutable std::map<std::string, json> finished_changes;
  // A page of batches, newest first, each with its changes since the previous one.
  json batches_page(const Paging& paging) const;
  void batch_page(const httplib::Request& req, httplib::Response& res, bool as_json) const;
  void compare(const httplib::Request& req, httplib::Response& res, bool as_json) const;
};

// `batch` with "previous": the newest finished batch of its suite begun before it, or null.
json Server::Impl::batch_with_previous(json batch) const {
  const auto previous = store.catalog().previous_batch(batch["suite"], batch["id"]);
  batch["previous"] = previous ? json(*previous) : json(nullptr);
  return batch;
}

// ... and "changes" against it: how many rows each kind of diff_runs has. Computed when a page
// shows the batch rather than stored when it ends: no schema change, right for batches recorded
// before this existed, and always against the previous batch still in the store (gc may remove
// one). A finished pair's changes are kept in memory, so only a page's first view reads the two
// batches' runs.
json Server::Impl::batch_with_changes(json batch, BatchRuns* loaded) const {
  batch = batch_with_previous(std::move(batch));
  const std::string id = batch["id"];
  const bool finished = batch["ended"] != "";
  if (!finished) count_so_far(batch, store.catalog().batch_groups(id));
  if (batch["previous"].is_null()) return batch;
  const std::string previous = batch["previous"];
  auto runs_in = [&](const std::string& b) {
    RunFilter f;
    f.batch = b;
    return std::to_string(store.catalog().count_runs(f));
  };
  const std::string key = finished ? id + " " + runs_in(id) + " " + previous + " " + runs_in(previous) : "";
  if (finished) {
    std::lock_guard<std::mutex> lock(changes_mutex);
    if (auto it = finished_changes.find(key); it != finished_changes.end()) {
      batch["changes"] = it->second;
      return batch;
    }
  }
  const json diff = diff_runs(batch_runs(previous, loaded), batch_runs(id, loaded));
  json changes = json::object();
  for (const auto& [kind, rows] : diff.items())
    if (rows.is_array()) changes[kind] = rows.size();
  changes["unchanged"] = diff["unchanged"];
  batch["changes"] = changes;
  if (finished) {
    std::lock_guard<std::mutex> lock(changes_mutex);
    if (finished_changes.size() >= 100000) finished_changes.clear();  // a bound far above any store's batches
    finished_changes.emplace(key, changes);
  }
  return batch;
}

json Server::Impl::batches_page(const Paging& paging) const {
  BatchRuns loaded;
  json list = json::array();
  for (json& b : store.catalog().batches(paging.limit, paging.offset())) list.push_back(batch_with_changes(std::move(b), &loaded));
  return {{"batches", list}, {"total", store.catalog().count_batches()}, {"page", paging.page}, {"limit", paging.limit}};
}

void Server::Impl::batch_page(const httplib::Request& req, httplib::Response& res, bool as_json) const {
  const std::string id = req.matches[1];
  Paging paging;
  RunFilter filter;
  if (!parsed(res, [&] {
        paging = paging_params(req, kBatchRowsPerPage);
        filter = filter_params(req, false);
      }))
    return;
  std::optional<json> batch = store.catalog().batch(id);
  if (!batch) return send_error(res, 404, "id", "no batch \"" + id + "\"");
  filter.batch = id;
  filter.by_case = true;
  filter.limit = paging.limit;
  filter.offset = paging.offset();
  paging.total = store.catalog().count_runs(filter);
  const std::vector<json> groups = store.catalog().batch_groups(id), runs = store.catalog().runs(filter);
  json b = batch_with_previous(std::move(*batch));
  if (b["ended"] == "") count_so_far(b, groups);
  if (as_json)
    return send_json(res, 200, {{"batch", b}, {"groups", groups}, {"runs", runs}, {"total", paging.total}, {"page", paging.page},
                                {"limit", paging.limit}});
  send_html(res, dashboard_batch(b, groups, runs, filter, paging));
}

void Server::Impl::compare(const httplib::Request& req, httplib::Response& res, bool as_json) const {
  std::optional<json> sides[2];
  const char* keys[] = {"a", "b"};
  for (int i = 0; i < 2; ++i) {
    const std::string id = text_param(req, keys[i]);
    if (id.empty()) return send_error(res, 400, keys[i], "expected a batch id (compare?a=BEFORE&b=AFTER)");
    if (!(sides[i] = store.catalog().batch(id))) return send_error(res, 404, keys[i], "no batch \"" + id + "\"");
  }
  BatchRuns loaded;
  json diff = diff_runs(batch_runs((*sides[0])["id"], &loaded), batch_runs((*sides[1])["id"], &loaded));
  if (!as_json) return send_html(res, dashboard_compare(*sides[0], *sides[1], diff));
  diff["a"] = (*sides[0])["id"];
  diff["b"] = (*sides[1])["id"];
  send_json(res, 200, diff);
}

std::optional<json> Server::Impl::run_document(const std::string& id) const {
  std::optional<json> r = store.result(id);
  if (!r) return std::nullopt;
  (*r)["links"] = links(id, *r);
  // The node list comes from the checkpoint itself: what was actually saved and reloaded. A
  // damaged or missing checkpoint is reported beside the result, which is still served.
  try {
    const std::string entity = store.entity_file(id);
    if (!entity.empty()) (*r)["graph"] = graph_json(entity::load(entity).graph);
  } catch (const std::exception& e) {
    (*r)["graph_error"] = e.what();
  }
  return r;
}

// Reads the request body, keeping it (keep) up to max_body bytes. Beyond that, and for
// bodies not kept, bytes are read and dropped up to twice the limit: a client still sending
// would otherwise get a connection reset instead of the answer. Past that it stops.
Server::Impl::Body Server::Impl::read_body(const httplib::ContentReader& read, bool keep) {
  Body b;
  // A kept body goes straight to a file in the store as it arrives (buffered, never whole in
  // memory); the stream is then mapped from it and the run takes the file over, no copy.
  int fd = -1;
  if (keep) {
    b.file = store.body_file();
    fd = ::open(b.file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw Error(b.file, std::string("cannot store the request body: ") + std::strerror(errno));
  }
  std::vector<char> buffer;
  buffer.reserve(size_t(4) << 20);
  bool write_failed = false;
  auto flush = [&] {
    for (size_t done = 0; done < buffer.size() && !write_failed;) {
      const ssize_t n = ::write(fd, buffer.data() + done, buffer.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) write_failed = true;
      else done += size_t(n);
    }
    buffer.clear();
  };
  b.complete = read([&](const char* data, size_t n) {
    b.size += n;
    if (b.size > drain_limit()) return false;
    if (keep && b.size <= opt.max_body) {
      if (buffer.size() + n > buffer.capacity()) flush();
      buffer.insert(buffer.end(), data, data + n);
    }
    return true;
  });
  if (keep) {
    flush();
    // Its writeback starts now; the run's commit waits for what is left of it.
    if (!write_failed) ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    if (::close(fd) != 0) write_failed = true;
    if (write_failed) {
      ::unlink(b.file.c_str());
      throw Error(b.file, "cannot store the request body: " + std::string(std::strerror(errno)));
    }
  }
  return b;
}

void Server::Impl::post_stream(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& read) {
  const std::optional<uint64_t> declared = declared_length(req);
  if (declared.value_or(0) > drain_limit())  // too big even to read and drop: answer and close
    return refuse(res, 413, "(body)", too_big(opt.max_body) + " (Content-Length " + req.get_header_value("Content-Length") + ")");
  auto drain_and_refuse = [&](int status, const std::string& path, const std::string& message) {
    if (read_body(read, false).complete) return send_error(res, status, path, message);
    refuse(res, status, path, message);
  };
  if (declared.value_or(0) > opt.max_body)
    return drain_and_refuse(413, "(body)", too_big(opt.max_body) + " (Content-Length " + req.get_header_value("Content-Length") + ")");
  const std::string planet = req.matches[1];
  const Dialect* dialect = plugins.find(planet);
  if (!dialect) return drain_and_refuse(404, "planet", "no plugin for planet \"" + planet + "\" (this server has: " + planet_list() + ")");
  Tolerance tol = opt.tolerance;
  try {
    tol.atol = number_param(req, "atol", tol.atol, 0, 1e9, false);
    tol.rtol = number_param(req, "rtol", tol.rtol, 0, 1e9, false);
  } catch (const Error& e) {
    return drain_and_refuse(400, e.where(), e.message());
  }
  const std::string type = media_type(req.get_header_value("Content-Type"));
  const bool framed = type == kStreamType;
  if (!framed && type != kJsonType)
    return drain_and_refuse(415, "Content-Type", "unsupported content type \"" + type + "\"; send application/json or " + kStreamType);

  // Read by hand rather than into req.body: the limit then holds for chunked bodies too.
  Body b;
  try {
    b = read_body(read, true);
  } catch (const Error& e) {
    return send_error(res, 500, e.where(), e.message());
  }
  // The body file is the run's stream once committed; until then it is removed on any refusal.
  struct Remove {
    std::string path;
    ~Remove() {
      if (!path.empty()) ::unlink(path.c_str());
    }
  } remove{b.file};
  if (b.size > opt.max_body) {
    if (b.complete) return send_error(res, 413, "(body)", too_big(opt.max_body));
    return refuse(res, 413, "(body)", too_big(opt.max_body));
  }
  if (!b.complete) {
    if (GuardedServer::current_request_timed_out())
      return refuse(res, 408, "(body)", "the request body arrived slower than " + std::to_string(int64_t(opt.limits.min_rate)) +
                                            " bytes/s after a " + shortest(opt.limits.grace_s) + " s grace (--min-rate)");
    return refuse(res, 400, "(body)", "the request body ended early");
  }
  Bytes body;
  try {
    body = Bytes::read_file(b.file, "received body");  // mapped: the stream's tensors alias it
  } catch (const Error& e) {
    return send_error(res, 500, e.where(), e.message());
  }
  if (body.empty()) return send_error(res, 400, "(body)", "empty body, expected a stream");
  const bool magic = body.size() >= 6 && std::memcmp(body.data(), kStreamMagic, 6) == 0;
  if (framed && !magic)
    return send_error(res, 400, "(framing)",
                      std::string(kStreamType) + " needs the binary framing (magic \"PBSTRM\\0\\1\"); send a JSON document as application/json");
  if (!framed && magic)
    return send_error(res, 400, "(document)", std::string("a binary frame sent as application/json; send it as ") + kStreamType);

  const auto t0 = std::chrono::steady_clock::now();
  Stream stream;
  try {
    stream = read_stream(body);
  } catch (const Error& e) {
    return send_error(res, 400, e.where(), e.message());
  }
  const double parse_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (stream.planet != planet)
    return send_error(res, 400, "planet", "the stream is for planet \"" + stream.planet + "\", posted to /api/v1/loom/stream/" + planet);

  const JobSlots::Held slot = jobs.take();
  std::unique_ptr<RunStore::Pending> run = store.begin();
  run->adopt_stream(b.file);
  remove.path.clear();  // now the run's
  LadderOptions lo;
  lo.tolerance = tol;
  lo.entity_path = run->entity_path();
  CaseResult r = run_ladder(stream, *dialect, lo);
  r.stage_ms.insert(r.stage_ms.begin(), {"parse", parse_ms});
  json j = store.commit(*run, r, {"serve", "", ""});
  j["links"] = links(run->id(), j);
  send_json(res, 200, j);
}

void Server::Impl::routes() {
  http.set_payload_max_length(drain_limit());  // post_stream applies max_body itself
  // Like httplib's default but without SO_REUSEPORT, which would let a second server share
  // (and silently split) a port in use.
  http.set_socket_options([this](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd = sock;  // the last one offered is the one bound
  });
  http.set_tcp_nodelay(true);  // small JSON replies go out at once

  http.Post(R"(/api/v1/loom/stream/([^/]+))",
            [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& read) { post_stream(req, res, read); });

  // curl and others ask before sending a large body: refuse an oversized one right there.
  http.set_expect_100_continue_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (declared_length(req).value_or(0) <= opt.max_body) return 100;
    refuse(res, 413, "(body)", too_big(opt.max_body) + " (Content-Length " + req.get_header_value("Content-Length") + ")");
    res.set_header("Content-Length", std::to_string(res.body.size()));  // this path writes the reply as is
    return 413;
  });

  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    json planets = json::array();
    for (const auto& p : plugins.plugins()) planets.push_back(p.dialect->planet());
    send_json(res, 200, {{"status", "ok"}, {"version", opt.version}, {"data", opt.data_dir}, {"planets", planets}});
  });

  http.Get("/api/v1/plugins", [this](const httplib::Request&, httplib::Response& res) {
    json list = json::array(), refused = json::array();
    for (const auto& p : plugins.plugins())
      list.push_back({{"planet", p.dialect->planet()}, {"version", p.dialect->version()}, {"file", p.file},
                      {"source_types", p.dialect->source_types()}});
    for (const auto& r : plugins.refused()) refused.push_back({{"file", r.file}, {"reason", r.reason}});
    send_json(res, 200, {{"plugins", list}, {"refused", refused}, {"searched", plugins.searched()}});
  });

  http.Get("/api/v1/runs", [this](const httplib::Request& req, httplib::Response& res) {
    size_t limit = 0, total = 0;
    try {
      limit = static_cast<size_t>(number_param(req, "limit", kDefaultListLimit, 1, 1e9, true));
    } catch (const Error& e) {
      return send_error(res, 400, e.where(), e.message());
    }
    json runs = summaries(limit, &total);
    send_json(res, 200, {{"runs", runs}, {"total", total}});
  });

  http.Get(R"(/api/v1/runs/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    if (auto doc = run_document(id)) return send_json(res, 200, *doc);
    send_error(res, 404, "id", "no run \"" + id + "\"");
  });

  http.Get(R"(/api/v1/(entities|streams)/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const bool entity = req.matches[1] == "entities";
    const std::string id = req.matches[2];
    const std::string path = entity ? store.entity_file(id) : store.stream_file(id);
    const auto summary = store.summary(id);
    const std::string model = summary ? summary->value("fixture", "model") : "model";
    if (!send_file(res, path, entity ? "application/octet-stream" : kStreamType,
                   file_name(model + "-" + id + (entity ? ".entity" : ".pbstream"))))
      send_error(res, 404, "id", "no " + std::string(entity ? "checkpoint" : "stream") + " for run \"" + id + "\"");
  });

  http.Get("/api/v1/batches", [this](const httplib::Request& req, httplib::Response& res) {
    Paging paging;
    if (parsed(res, [&] { paging = paging_params(req, kBatchesPerPage); })) send_json(res, 200, batches_page(paging));
  });
  http.Get(R"(/api/v1/batches/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) { batch_page(req, res, true); });
  http.Get("/api/v1/compare", [this](const httplib::Request& req, httplib::Response& res) { compare(req, res, true); });

  // The dashboard (docs/http-api.md): batches, a batch, a fixture's history, two batches
  // compared, the runs, a run.
  http.Get("/", [this](const httplib::Request& req, httplib::Response& res) {
    Paging paging;
    if (!parsed(res, [&] { paging = paging_params(req, kBatchesPerPage); })) return;
    const json page = batches_page(paging);
    paging.total = page["total"];
    send_html(res, dashboard_batches(page["batches"], paging, opt.version));
  });

  http.Get(R"(/batches/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) { batch_page(req, res, false); });

  http.Get(R"(/fixtures/([^/]+)/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string planet = req.matches[1], fixture = req.matches[2];
    Paging paging;
    if (!parsed(res, [&] { paging = paging_params(req, kHistoryPerPage); })) return;
    RunFilter f;
    f.planet = planet;
    f.fixture = fixture;
    paging.total = store.catalog().count_runs(f);
    if (paging.total == 0) return send_error(res, 404, "fixture", "no run of fixture \"" + fixture + "\" on planet \"" + planet + "\"");
    f.limit = paging.limit;
    f.offset = paging.offset();
    send_html(res, dashboard_fixture(planet, fixture, store.catalog().runs(f), paging));
  });

  http.Get("/compare", [this](const httplib::Request& req, httplib::Response& res) { compare(req, res, false); });

  http.Get("/runs", [this](const httplib::Request& req, httplib::Response& res) {
    Paging paging;
    RunFilter f;
    if (!parsed(res, [&] {
          paging = paging_params(req, 200);
          f = filter_params(req, true);
        }))
      return;
    // Counted only some pages ahead: a filter matching most of a large store would otherwise
    // cost more than the page itself.
    const size_t count_to = paging.offset() + paging.limit + kCountAhead;
    paging.total = store.catalog().count_runs(f, count_to + 1);
    if ((paging.more = paging.total > count_to)) paging.total = count_to;
    f.limit = paging.limit;
    f.offset = paging.offset();
    send_html(res, dashboard_runs(store.catalog().runs(f), f, paging, opt.version));
  });

  http.Get(R"(/runs/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    if (auto doc = run_document(id)) return send_html(res, dashboard_run(*doc));
    send_error(res, 404, "id", "no run \"" + id + "\"");
  });

  // Errors without a body (no route, httplib's own 400/413) get the same JSON shape.
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.content_length_ > 0) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 404) send_error(res, 404, "(url)", "no route for " + req.method + " " + req.path);
    else send_error(res, res.status, "", reason_phrase(res.status));
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const Error& e) {
      send_error(res, 500, e.where(), e.message());
    } catch (const std::exception& e) {
      send_error(res, 500, "", e.what());
    } catch (...) {
      send_error(res, 500, "", "unknown error");
    }
  });
}

Server::Server(const PluginRegistry& plugins, ServerOptions options) : impl_(std::make_unique<Impl>(plugins, std::move(options))) {}

Server::~Server() { stop(); }

int Server::start(const std::string& host, int port) {
  if (impl_->thread.joinable()) throw Error("serve", "the server is already running");
  ::signal(SIGPIPE, SIG_IGN);  // a client that hangs up mid-reply must not kill the process
  const int bound = port == 0 ? impl_->http.bind_to_any_port(host) : (impl_->http.bind_to_port(host, port) ? port : -1);
  if (bound <= 0)
    throw Error(host + ":" + std::to_string(port), "cannot listen there (port in use, or not an address of this machine)");
  // httplib listens with a backlog of 5: a burst of clients would see dropped connects (and 1 s
  // retries). Listening again on the bound socket only raises the backlog.
  ::listen(impl_->listen_fd, SOMAXCONN);
  // Bound and listening already: connections queue in the backlog until the loop accepts them.
  impl_->thread = std::thread([this] {
    impl_->http.listen_after_bind();
    impl_->thread_done = true;
  });
  // httplib's stop() does nothing until the loop runs: wait for it, so stop() always works.
  while (!impl_->http.is_running() && !impl_->thread_done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return bound;
}

void Server::stop() {
  if (!impl_->thread.joinable()) return;
  impl_->http.stop();
  impl_->thread.join();
}

}  // namespace pb::host
