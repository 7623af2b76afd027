// `planetbridge serve` in-process on a free loopback port: live streams from every installed
// planet, every error status, concurrency, a client that hangs up mid-body, the dashboard, and
// the run store it shares with `run` and `check`. Planets whose engine is missing are skipped
// with a WARN (Catch2 v2 has no SKIP).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "planetbridge/entity.h"
#include "planetbridge/stream.h"
#include "plugin_loader.h"
#include "run_store.h"
#include "runner.h"
#include "server.h"
#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kSource = PB_SOURCE_DIR;
const std::string kSuite = kSource + "/config/suites/bedrock.yaml";
constexpr char kStreamType[] = "application/x-planetbridge-stream";

using pbtest::quote;
using pbtest::shell;

// Every planet plugin in this build.
pb::host::PluginRegistry all_planets() {
  pb::host::PluginRegistry r;
  REQUIRE(r.load(PB_PYTORCH_PLUGIN));
#ifdef PB_SKLEARN_PLUGIN
  r.load(PB_SKLEARN_PLUGIN);
#endif
#ifdef PB_JAX_PLUGIN
  r.load(PB_JAX_PLUGIN);
#endif
#ifdef PB_TENSORFLOW_PLUGIN
  r.load(PB_TENSORFLOW_PLUGIN);
#endif
  return r;
}

// A planet's standalone capture CLI, and the check that its engine is installed.
struct Planet {
  std::string name, capture, engine_check;
};
std::vector<Planet> capture_planets() {
  const std::string py = std::string(PB_PYTHON) + " ";
  return {
      {"pytorch", py + quote(kSource + "/plugins/pytorch/capture/capture.py"), py + "-c 'import torch'"},
      {"sklearn", py + quote(kSource + "/plugins/sklearn/capture/capture.py"), py + "-c 'import sklearn'"},
      {"jax", "node " + quote(kSource + "/plugins/jax/capture/capture.js"),
       "cd " + quote(kSource) + " && node -e 'require(\"@jax-js/jax\")'"},
      {"tensorflow", "node " + quote(kSource + "/plugins/tensorflow/capture/capture.js"),
       "cd " + quote(kSource) + " && node -e 'require(\"@tensorflow/tfjs\")'"},
  };
}
const Planet& planet_named(const std::string& name) {
  static const std::vector<Planet> all = capture_planets();
  for (const Planet& p : all)
    if (p.name == name) return p;
  throw std::runtime_error("no planet " + name);
}

// Empty when the planet's engine (and its plugin) are here, else why not. Checked once.
std::string missing(const pb::host::PluginRegistry& plugins, const Planet& p) {
  static std::map<std::string, bool> engine_ok;
  if (!plugins.find(p.name)) return "no " + p.name + " plugin in this build";
  if (!engine_ok.count(p.name)) engine_ok[p.name] = shell(p.engine_check + " >/dev/null 2>&1") == 0;
  return engine_ok[p.name] ? "" : p.name + "'s engine is not installed (" + p.engine_check + ")";
}

// Why no planet can run live here ("" when at least one can).
std::string no_live_planet(const pb::host::PluginRegistry& plugins) {
  std::string why;
  for (const char* name : {"pytorch", "sklearn", "jax", "tensorflow"}) {
    const std::string m = missing(plugins, planet_named(name));
    if (m.empty()) return "";
    why += (why.empty() ? "" : "; ") + m;
  }
  return why;
}

// One bedrock fixture captured live, as the frame bytes its capture CLI writes with --stdout.
std::vector<uint8_t> capture(const pbtest::TempDir& tmp, const Planet& p, const std::string& fixture) {
  const std::string out = tmp.file(p.name + "-" + fixture + ".pbstream"), log = tmp.file(p.name + "-capture.log");
  const int rc = shell(p.capture + " --suite " + quote(kSuite) + " --fixture " + quote(fixture) + " --stdout >" + quote(out) +
                       " 2>" + quote(log));
  INFO(p.name << " capture stderr: " << pbtest::read_text(log));
  REQUIRE(rc == 0);
  return pbtest::read_bytes(out);
}

// The same stream as one plain JSON document with base64 tensors (the application/json form).
std::string as_plain_json(const std::vector<uint8_t>& frame) {
  pb::Stream s = pb::read_stream_bytes(frame.data(), frame.size());
  json doc = s.doc;
  for (const auto& [name, t] : s.tensors)
    doc["tensors"][name] = {{"dtype", pb::dtype_name(t.dtype())}, {"shape", t.shape()}, {"b64", pb::base64_encode(t.raw(), t.nbytes())}};
  return doc.dump();
}

const std::string kLinear = kSource + "/plugins/pytorch/tests/streams/linear_square.json";

// An in-process server on a free loopback port, with its own run store.
struct Live {
  explicit Live(pb::host::ServerOptions o = {}) : plugins(all_planets()), opt(with_data(std::move(o))), server(plugins, opt) {
    port = server.start("127.0.0.1", 0);
    REQUIRE(port > 0);
  }
  pb::host::ServerOptions with_data(pb::host::ServerOptions o) {
    o.data_dir = tmp.file("data");
    o.version = "test";
    return o;
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(120, 0);
    return c;
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
  // POSTs and returns {status, parsed JSON body}.
  std::pair<int, json> post(const std::string& planet, const std::string& body, const std::string& type = kStreamType,
                            const std::string& query = "") const {
    auto res = client().Post(("/api/v1/loom/stream/" + planet + query).c_str(), body, type.c_str());
    REQUIRE(res);
    INFO(res->body);
    return {res->status, json::parse(res->body)};
  }
  std::pair<int, json> get_json(const std::string& path) const {
    auto res = client().Get(path.c_str());
    REQUIRE(res);
    INFO(res->body);
    CHECK(res->get_header_value("Content-Type") == "application/json");
    return {res->status, json::parse(res->body)};
  }
  std::string get_text(const std::string& path, int want_status = 200) const {
    auto res = client().Get(path.c_str());
    REQUIRE(res);
    CHECK(res->status == want_status);
    return res->body;
  }

  pbtest::TempDir tmp;
  pb::host::PluginRegistry plugins;
  pb::host::ServerOptions opt;
  pb::host::Server server;
  int port = 0;
};

std::string bytes_str(const std::vector<uint8_t>& b) { return std::string(b.begin(), b.end()); }

void check_error(const std::pair<int, json>& r, int status, const std::string& path, const std::string& part) {
  INFO(r.second.dump());
  CHECK(r.first == status);
  REQUIRE(r.second.contains("error"));
  CHECK(r.second["error"]["path"] == path);
  CHECK_THAT(r.second["error"]["message"].get<std::string>(), Catch::Contains(part));
}

bool passed(const json& r) { return r["verdict"] == "EXACT" || r["verdict"] == "PASS"; }

// A raw TCP connection, for what httplib::Client never sends.
class RawSocket {
 public:
  // `from`: the loopback address to connect from (all of 127/8 is this machine's).
  explicit RawSocket(int port, const char* from = nullptr) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    REQUIRE(fd_ >= 0);
    if (from) {
      sockaddr_in self{};
      self.sin_family = AF_INET;
      REQUIRE(::inet_pton(AF_INET, from, &self.sin_addr) == 1);
      REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&self), sizeof self) == 0);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval tv{10, 0};  // a reply (or the close) must come well before this
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawSocket() { close(); }
  void send(const std::string& s) { REQUIRE(::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size())); }
  // Sends `s` one byte every `gap` until done or the server closes; false once it closed.
  bool trickle(const std::string& s, std::chrono::milliseconds gap) {
    for (char c : s) {
      if (::send(fd_, &c, 1, MSG_NOSIGNAL) != 1) return false;
      std::this_thread::sleep_for(gap);
    }
    return true;
  }
  void shut_write() { ::shutdown(fd_, SHUT_WR); }
  // Everything until the server closes; `closed` is false when the wait timed out instead.
  std::string read_all(bool* closed) {
    std::string out;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
        continue;
      }
      *closed = n == 0;
      return out;
    }
  }
  // One reply: the headers, then Content-Length bytes of body.
  std::string read_reply() {
    std::string out;
    char c;
    size_t want = std::string::npos;
    while (::recv(fd_, &c, 1, 0) == 1) {
      out += c;
      if (want == std::string::npos && out.size() >= 4 && out.compare(out.size() - 4, 4, "\r\n\r\n") == 0) {
        const size_t at = out.find("Content-Length: ");
        want = out.size() + (at == std::string::npos ? 0 : std::stoul(out.substr(at + 16)));
      }
      if (out.size() == want) break;
    }
    return out;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

}  // namespace

// ------------------------------------------------------------------ live planets

TEST_CASE("serve: a live stream from each installed planet is bridged, recorded, browsable and downloadable", "[serve][live]") {
  Live live;
  PBTEST_SKIP_IF(no_live_planet(live.plugins), "live serve tests need a planet engine");
  for (const char* name : {"pytorch", "sklearn", "jax", "tensorflow"}) {
    const Planet& p = planet_named(name);
    if (const std::string why = missing(live.plugins, p); !why.empty()) {
      WARN("SKIP " << name << ": " << why);
      continue;
    }
    SECTION(name) {
      const std::vector<uint8_t> frame = capture(live.tmp, p, "mlp_32_16_4_relu");
      auto [status, r] = live.post(name, bytes_str(frame));
      INFO(r.dump(2));
      REQUIRE(status == 200);
      CHECK(passed(r));
      CHECK(r["planet"] == name);
      CHECK(r["fixture"] == "mlp_32_16_4_relu");
      CHECK(r["source"] == "serve");
      CHECK(r["reload_identical"] == true);
      CHECK(r["stream_bytes"] == frame.size());
      CHECK(r["outputs"].size() == 1);
      CHECK(r["taps"].size() >= 1);  // sklearn taps the hidden layer; the others every node
      for (const char* stage : {"parse", "decode", "compile", "run", "taps", "save", "reload"}) CHECK(r["ms"].contains(stage));
      const std::string id = r["id"];
      CHECK(pb::host::RunStore::valid_id(id));
      CHECK(r["links"]["entity"] == "/api/v1/entities/" + id);

      // The same stream as plain JSON gives the same verdict and errors.
      auto [jstatus, j] = live.post(name, as_plain_json(frame), "application/json; charset=utf-8");
      CHECK(jstatus == 200);
      CHECK(j["verdict"] == r["verdict"]);
      CHECK(j["max_abs"] == r["max_abs"]);
      CHECK(j["id"] != r["id"]);

      // History: the run document with the graph read back from the checkpoint.
      auto [dstatus, doc] = live.get_json("/api/v1/runs/" + id);
      CHECK(dstatus == 200);
      CHECK(doc["verdict"] == r["verdict"]);
      REQUIRE(doc["graph"].is_array());
      CHECK(doc["graph"].size() >= 2);  // two dense layers (Keras fuses the relu into the first)
      CHECK(doc["graph"][0].contains("op"));

      // Downloads: the checkpoint deserializes, the stream is byte for byte what was posted.
      auto ent = live.client().Get(("/api/v1/entities/" + id).c_str());
      REQUIRE(ent);
      CHECK(ent->status == 200);
      CHECK(ent->get_header_value("Content-Type") == "application/octet-stream");
      CHECK_THAT(ent->get_header_value("Content-Disposition"), Catch::Contains("mlp_32_16_4_relu-" + id + ".entity"));
      CHECK(ent->body.size() == r["entity_bytes"].get<size_t>());
      const pb::entity::Loaded loaded =
          pb::entity::deserialize(reinterpret_cast<const uint8_t*>(ent->body.data()), ent->body.size(), "download");
      CHECK(loaded.graph.nodes.size() == doc["graph"].size());
      CHECK(live.get_text("/api/v1/streams/" + id) == bytes_str(frame));

      // The dashboard: the list names the run and the model; the run page has graph and chart.
      const std::string index = live.get_text("/runs");
      CHECK_THAT(index, Catch::Contains(id) && Catch::Contains("mlp_32_16_4_relu") && Catch::Contains(name));
      const std::string page = live.get_text("/runs/" + id);
      CHECK_THAT(page, Catch::Contains(id) && Catch::Contains("mlp_32_16_4_relu") && Catch::Contains("<svg id=\"divergence\"") &&
                           Catch::Contains(doc["graph"][0]["name"].get<std::string>()) && Catch::Contains("/api/v1/entities/" + id));
    }
  }
}

TEST_CASE("serve: the capture CLIs' --post stream each fixture and print the verdict", "[serve][live]") {
  Live live;
  PBTEST_SKIP_IF(no_live_planet(live.plugins), "live --post tests need a planet engine");
  for (const char* name : {"pytorch", "sklearn", "jax", "tensorflow"}) {
    const Planet& p = planet_named(name);
    if (const std::string why = missing(live.plugins, p); !why.empty()) {
      WARN("SKIP " << name << ": " << why);
      continue;
    }
    SECTION(name) {
      const std::string out = live.tmp.file(std::string(name) + "-post.txt");
      const int rc = shell(p.capture + " --suite " + quote(kSuite) + " --fixture 'mlp_32_16_4_*' --post " + live.url() + " >" +
                           quote(out) + " 2>&1");
      const std::string text = pbtest::read_text(out);
      INFO(text);
      CHECK(rc == 0);
      for (const char* fx : {"mlp_32_16_4_relu", "mlp_32_16_4_tanh", "mlp_32_16_4_sigmoid"})
        CHECK_THAT(text, Catch::Contains(std::string(fx) + ": EXACT") || Catch::Contains(std::string(fx) + ": PASS"));
      auto [status, runs] = live.get_json("/api/v1/runs");
      CHECK(status == 200);
      CHECK(runs["total"] == 3);
      for (const json& r : runs["runs"]) CHECK_THAT(text, Catch::Contains("run " + r["id"].get<std::string>()));

      // A server that refuses (413 here, from a tiny limit) is reported per fixture, exit 1.
      pb::host::ServerOptions small;
      small.max_body = 100;
      Live tiny(small);
      const int rc2 = shell(p.capture + " --suite " + quote(kSuite) + " --fixture mlp_32_16_4_relu --post " + tiny.url() + " >" +
                            quote(out) + " 2>&1");
      CHECK(rc2 == 1);
      CHECK_THAT(pbtest::read_text(out), Catch::Contains("mlp_32_16_4_relu: REFUSED") && Catch::Contains("413"));

      // No server at all: exit 2 naming the URL.
      const std::string dead = "http://127.0.0.1:" + std::to_string(tiny.port);
      tiny.server.stop();
      const int rc3 = shell(p.capture + " --suite " + quote(kSuite) + " --fixture mlp_32_16_4_relu --post " + dead + " >" +
                            quote(out) + " 2>&1");
      CHECK(rc3 == 2);
      CHECK_THAT(pbtest::read_text(out), Catch::Contains("cannot reach " + dead));
    }
  }
}

// ------------------------------------------------------------------ errors

TEST_CASE("serve: a malformed stream is 400 naming the JSON path, and nothing is recorded", "[serve]") {
  Live live;
  const std::string good = pbtest::read_text(kLinear);
  json bad_b64 = json::parse(good);
  bad_b64["tensors"]["x"] = {{"dtype", "f32"}, {"shape", {2, 3}}, {"b64", "AAAA"}};
  json no_version = json::parse(good);
  no_version.erase("version");
  json bad_input = json::parse(good);
  bad_input["inputs"] = {"nope"};
  const std::vector<uint8_t> frame = pb::write_framed(json::parse(good), pb::read_stream_file(kLinear).tensors);

  check_error(live.post("pytorch", "{\"format\": ", "application/json"), 400, "(document)", "invalid JSON");
  check_error(live.post("pytorch", bad_b64.dump(), "application/json"), 400, "tensors.x.b64", "decodes to 3 bytes");
  check_error(live.post("pytorch", no_version.dump(), "application/json"), 400, "version", "missing");
  check_error(live.post("pytorch", bad_input.dump(), "application/json"), 400, "inputs[0]", "names tensor \"nope\"");
  check_error(live.post("pytorch", "", "application/json"), 400, "(body)", "empty body");
  check_error(live.post("pytorch", good, kStreamType), 400, "(framing)", "needs the binary framing");
  check_error(live.post("pytorch", bytes_str(frame), "application/json"), 400, "(document)", "binary frame sent as application/json");
  check_error(live.post("pytorch", bytes_str(frame).substr(0, frame.size() - 10), kStreamType), 400, "(framing)", "data section");
  // The URL's planet must be the stream's.
  check_error(live.post("sklearn", good, "application/json"), 400, "planet",
              "the stream is for planet \"pytorch\", posted to /api/v1/loom/stream/sklearn");
  // Query parameters.
  check_error(live.post("pytorch", good, "application/json", "?atol=-1"), 400, "atol", "expected a number from 0");
  check_error(live.post("pytorch", good, "application/json", "?rtol=abc"), 400, "rtol", "got \"abc\"");
  check_error(live.get_json("/api/v1/runs?limit=0"), 400, "limit", "expected an integer from 1");
  check_error(live.get_json("/api/v1/runs?limit=2.5"), 400, "limit", "got \"2.5\"");
  auto page = live.client().Get("/?limit=x");
  REQUIRE(page);
  CHECK(page->status == 400);

  auto [status, runs] = live.get_json("/api/v1/runs");
  CHECK(status == 200);
  CHECK(runs["total"] == 0);
  CHECK_THAT(live.get_text("/runs"), Catch::Contains("No runs yet"));
  CHECK_THAT(live.get_text("/"), Catch::Contains("No batches yet"));
}

TEST_CASE("serve: unknown planet 404, wrong content type 415, unknown routes and ids 404, all as JSON errors", "[serve]") {
  Live live;
  const std::string good = pbtest::read_text(kLinear);
  check_error(live.post("keras", good, "application/json"), 404, "planet", "no plugin for planet \"keras\" (this server has: ");
  check_error(live.post("pytorch", good, "text/plain"), 415, "Content-Type", "unsupported content type \"text/plain\"");
  check_error(live.post("pytorch", good, "application/xml"), 415, "Content-Type", "unsupported content type \"application/xml\"");
  check_error(live.get_json("/api/v1/nothing"), 404, "(url)", "no route for GET /api/v1/nothing");
  check_error(live.get_json("/api/v1/runs/20260101T000000Z-000000"), 404, "id", "no run");
  check_error(live.get_json("/api/v1/runs/..%2f..%2fetc"), 404, "(url)", "no route");  // decoded: never reaches the store
  check_error(live.get_json("/api/v1/runs/.."), 404, "id", "no run");
  check_error(live.get_json("/api/v1/entities/20260101T000000Z-000000"), 404, "id", "no checkpoint");
  check_error(live.get_json("/api/v1/streams/nope"), 404, "id", "no stream");
  auto run_page = live.client().Get("/runs/nope");
  REQUIRE(run_page);
  CHECK(run_page->status == 404);

  // A stream the plugin cannot decode still runs the ladder: 200, verdict ERROR, recorded.
  json bad_model = json::parse(good);
  bad_model["model"]["modules"]["0"]["type"] = "Conv9d";
  auto [status, r] = live.post("pytorch", bad_model.dump(), "application/json");
  CHECK(status == 200);
  CHECK(r["verdict"] == "ERROR");
  CHECK_THAT(r["message"].get<std::string>(), Catch::Contains("Conv9d"));
  CHECK(r["stored_entity"] == false);
  CHECK_FALSE(r["links"].contains("entity"));
  check_error(live.get_json("/api/v1/entities/" + r["id"].get<std::string>()), 404, "id", "no checkpoint");
  CHECK_THAT(live.get_text("/runs/" + r["id"].get<std::string>()), Catch::Contains("Conv9d") && Catch::Contains("v-ERROR"));
}

TEST_CASE("serve: a body over --max-body is 413, with or without Content-Length", "[serve]") {
  pb::host::ServerOptions opt;
  opt.max_body = 1024;
  Live live(opt);
  const std::string big = std::string(2048, ' ') + pbtest::read_text(kLinear);
  check_error(live.post("pytorch", big, "application/json"), 413, "(body)", "limit of 1024 bytes");
  // Chunked: no Content-Length, the limit holds while reading. (The server reads and drops up
  // to twice the limit, so that the client, done sending, gets to read the answer.)
  const std::string chunked = std::string(500, ' ') + pbtest::read_text(kLinear);
  REQUIRE(chunked.size() > 1024);
  REQUIRE(chunked.size() < 2048);
  auto res = live.client().Post(
      "/api/v1/loom/stream/pytorch",
      [&](size_t offset, httplib::DataSink& sink) {
        if (offset < chunked.size()) sink.write(chunked.data() + offset, std::min<size_t>(256, chunked.size() - offset));
        else sink.done();
        return true;
      },
      "application/json");
  REQUIRE(res);
  CHECK(res->status == 413);
  CHECK_THAT(res->body, Catch::Contains("limit of 1024 bytes"));
  {  // Chunked past twice the limit: the server stops reading there and answers 413 at once.
    RawSocket s(live.port);
    std::string chunks;
    for (int i = 0; i < 6; ++i) chunks += "200\r\n" + std::string(512, ' ') + "\r\n";
    s.send("POST /api/v1/loom/stream/pytorch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Transfer-Encoding: chunked\r\n\r\n" + chunks);
    CHECK_THAT(s.read_reply(), Catch::StartsWith("HTTP/1.1 413") && Catch::Contains("Connection: close") &&
                                   Catch::Contains("limit of 1024 bytes"));
  }
  // Under the limit is fine.
  auto [status, r] = live.post("pytorch", pbtest::read_text(kLinear).substr(0, 1024), "application/json");
  CHECK(status == 400);  // cut at 1024 bytes: invalid JSON, but read and parsed
  CHECK(r["error"]["path"] == "(document)");
}

TEST_CASE("serve: a client cut off mid-body, or refused on its headers, never stalls the server", "[serve]") {
  Live live;
  const auto t0 = std::chrono::steady_clock::now();
  {  // Headers promise 100 kB, 1 kB arrives, the client hangs up.
    RawSocket s(live.port);
    s.send("POST /api/v1/loom/stream/pytorch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n" +
           std::string(1000, '{'));
  }
  {  // Far over the limit on its headers: 413 at once, without waiting for a body that never
     // comes, and the connection is to be closed.
    RawSocket s(live.port);
    s.send("POST /api/v1/loom/stream/pytorch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n");
    CHECK_THAT(s.read_reply(), Catch::StartsWith("HTTP/1.1 413") && Catch::Contains("Connection: close") &&
                                   Catch::Contains("Content-Length 99999999999"));
  }
  {  // The same asked with Expect: 100-continue: 413 instead of "100 Continue".
    RawSocket s(live.port);
    s.send("POST /api/v1/loom/stream/pytorch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n"
           "Expect: 100-continue\r\n\r\n");
    CHECK_THAT(s.read_reply(), Catch::StartsWith("HTTP/1.1 413") && Catch::Contains("Connection: close") && Catch::Contains("limit of"));
  }
  {  // Refused after its headers (unknown planet), the body is still read: the client sees
     // the answer, and the connection stays usable for the next request.
    RawSocket s(live.port);
    const std::string body = pbtest::read_text(kLinear);
    s.send("POST /api/v1/loom/stream/keras HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body);
    const std::string reply = s.read_reply();
    CHECK_THAT(reply, Catch::StartsWith("HTTP/1.1 404") && Catch::Contains("no plugin for planet \\\"keras\\\"") &&
                          !Catch::Contains("Connection: close"));
    s.send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    bool closed = false;
    CHECK_THAT(s.read_all(&closed), Catch::StartsWith("HTTP/1.1 200") && Catch::Contains("\"status\": \"ok\""));
    CHECK(closed);
  }
  {  // Not HTTP at all: httplib's own 400, in the same JSON shape.
    RawSocket s(live.port);
    s.send("HELLO\r\n\r\n");
    CHECK_THAT(s.read_reply(), Catch::StartsWith("HTTP/1.1 400") && Catch::Contains("\"message\": \"bad request\""));
  }
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(4));  // nobody waited for a timeout
  auto [status, health] = live.get_json("/health");
  CHECK(status == 200);
  CHECK(health["status"] == "ok");
  CHECK(health["version"] == "test");
  auto [pstatus, r] = live.post("pytorch", pbtest::read_text(kLinear), "application/json");
  CHECK(pstatus == 200);
  CHECK(r["verdict"] == "EXACT");
}

TEST_CASE("serve: a client that half-closes mid-body gets 400, not silence", "[serve]") {
  Live live;
  RawSocket s(live.port);
  s.send("POST /api/v1/loom/stream/pytorch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"a\":");
  s.shut_write();  // no more bytes will come, but the client still listens
  bool closed = false;
  CHECK_THAT(s.read_all(&closed), Catch::StartsWith("HTTP/1.1 400") && Catch::Contains("the request body ended early"));
  CHECK(closed);
}

TEST_CASE("serve: 200 slow connections hold no worker: /health and a post are answered meanwhile", "[serve]") {
  Live live;
  std::vector<std::unique_ptr<RawSocket>> slow;
  const std::string head = "POST /api/v1/loom/stream/pytorch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n";
  for (int i = 0; i < 200; ++i) {  // half a head, a whole head, or a head and some body: then nothing
    slow.push_back(std::make_unique<RawSocket>(live.port));
    slow.back()->send(i % 3 == 0 ? head.substr(0, 30) : i % 3 == 1 ? head : head + "\r\n{\"version\": 1");
  }
  // Before connections got their own threads, these waited for the pool's 8 workers, each held
  // by a slow client until its per-byte timeout: minutes.
  httplib::Client c("127.0.0.1", live.port);
  c.set_read_timeout(5, 0);
  const auto t0 = std::chrono::steady_clock::now();
  auto health = c.Get("/health");
  const double health_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(health);
  CHECK(health->status == 200);
  auto post = c.Post("/api/v1/loom/stream/pytorch", pbtest::read_text(kLinear), "application/json");
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(post);
  INFO(post->body);
  CHECK(post->status == 200);
  CHECK(json::parse(post->body)["verdict"] == "EXACT");
  WARN("with 200 slow connections open: /health in " << health_s << " s, health and a post in " << total_s << " s");
}

TEST_CASE("serve: a request or body trickled below the minimum rate is cut at its deadline (408 for a body)", "[serve]") {
  pb::host::ServerOptions o;
  o.limits.grace_s = 0.5;
  o.limits.min_rate = 1000;  // bytes/s after the grace; the clients below send 50 bytes/s
  Live live(o);
  {  // An endless head, a byte at a time: each byte used to restart the read timeout.
    RawSocket s(live.port);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(s.trickle("GET /health HTTP/1.1\r\nX-Pad: " + std::string(500, 'a'), std::chrono::milliseconds(20)));
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  }
  {  // A body trickled: 408 naming the option, and the connection is closed.
    RawSocket s(live.port);
    s.send("POST /api/v1/loom/stream/pytorch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n");
    std::thread slow([&] { s.trickle(std::string(250, ' '), std::chrono::milliseconds(20)); });
    bool closed = false;
    const std::string reply = s.read_all(&closed);
    slow.join();
    CHECK_THAT(reply, Catch::StartsWith("HTTP/1.1 408") && Catch::Contains("--min-rate") && Catch::Contains("Connection: close"));
    CHECK(closed);
  }
  // A head over the size limit is refused however fast it comes.
  RawSocket s(live.port);
  s.send("GET /health HTTP/1.1\r\n" + std::string(70000, 'X'));
  bool closed = false;
  CHECK_THAT(s.read_all(&closed), !Catch::Contains("200 OK"));
  CHECK(closed);
  CHECK(live.get_json("/health").first == 200);
}

TEST_CASE("serve: connections beyond the per-address and total caps get 503 with Retry-After", "[serve]") {
  pb::host::ServerOptions o;
  o.limits.max_per_client = 2;
  o.limits.max_connections = 3;
  Live live(o);
  auto held = std::make_unique<RawSocket>(live.port, "127.0.0.1");
  RawSocket other(live.port, "127.0.0.1");
  // Both answered before the next connects: admitted (and counted) for sure, kept alive.
  for (RawSocket* s : {held.get(), &other}) {
    s->send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_THAT(s->read_reply(), Catch::StartsWith("HTTP/1.1 200"));
  }
  {
    RawSocket third(live.port, "127.0.0.1");
    bool closed = false;
    CHECK_THAT(third.read_all(&closed), Catch::StartsWith("HTTP/1.1 503") && Catch::Contains("Retry-After: 1") &&
                                            Catch::Contains("--max-client-connections"));
    CHECK(closed);
  }
  RawSocket elsewhere(live.port, "127.0.0.2");  // another address is still let in
  elsewhere.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_THAT(elsewhere.read_reply(), Catch::StartsWith("HTTP/1.1 200"));
  {
    RawSocket fourth(live.port, "127.0.0.3");
    bool closed = false;
    CHECK_THAT(fourth.read_all(&closed), Catch::StartsWith("HTTP/1.1 503") && Catch::Contains("--max-connections"));
  }
  held.reset();  // a closed connection frees its place at once
  std::string reply;
  for (int tries = 0; tries < 50 && !Catch::StartsWith("HTTP/1.1 200").match(reply); ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    RawSocket again(live.port, "127.0.0.1");
    again.send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    bool closed = false;
    reply = again.read_all(&closed);
  }
  CHECK_THAT(reply, Catch::StartsWith("HTTP/1.1 200"));
}

TEST_CASE("serve: 16 concurrent posts are all answered, with 16 distinct recorded runs", "[serve]") {
  Live live;
  // A live capture when torch is here (the dense MLP the latency is quoted for), else the
  // recorded stream.
  std::string body = pbtest::read_text(kLinear), type = "application/json";
  const Planet& torch = planet_named("pytorch");
  if (missing(live.plugins, torch).empty()) {
    body = bytes_str(capture(live.tmp, torch, "mlp_32_64_32_16_8_relu"));
    type = kStreamType;
  }
  constexpr int kClients = 16;
  std::vector<int> status(kClients, 0);
  std::vector<std::string> ids(kClients);
  std::vector<std::thread> threads;
  std::mutex errors_mu;
  std::vector<std::string> errors;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kClients; ++i)
    threads.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", live.port);
      c.set_read_timeout(120, 0);
      auto res = c.Post("/api/v1/loom/stream/pytorch", body, type.c_str());
      if (!res) {
        std::lock_guard<std::mutex> lock(errors_mu);
        errors.push_back(httplib::to_string(res.error()));
        return;
      }
      status[i] = res->status;
      const json j = json::parse(res->body, nullptr, false);
      if (j.is_object() && j.contains("id") && passed(j)) ids[i] = j["id"];
    });
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("serve: %d concurrent posts of %zu bytes in %.3f s (%.1f posts/s)\n", kClients, body.size(), secs, kClients / secs);
  std::string all_errors;
  for (const std::string& e : errors) all_errors += e + "; ";
  INFO("client errors: " << all_errors);
  CHECK(errors.empty());
  for (int i = 0; i < kClients; ++i) CHECK(status[i] == 200);
  const std::set<std::string> distinct(ids.begin(), ids.end());
  CHECK(distinct.size() == kClients);
  CHECK_FALSE(distinct.count(""));

  auto [st, runs] = live.get_json("/api/v1/runs?limit=100");
  CHECK(st == 200);
  CHECK(runs["total"] == kClients);
  std::vector<std::string> listed;
  for (const json& r : runs["runs"]) listed.push_back(r["id"]);
  CHECK(std::is_sorted(listed.rbegin(), listed.rend()));  // newest first
  CHECK(std::set<std::string>(listed.begin(), listed.end()) == distinct);
  auto [st2, two] = live.get_json("/api/v1/runs?limit=2");
  CHECK(two["runs"].size() == 2);
  CHECK(two["runs"][0]["id"] == listed[0]);
}

TEST_CASE("serve: plugins, health and the run page of a FAIL with its divergence chart", "[serve]") {
  Live live;
  auto [status, plugins] = live.get_json("/api/v1/plugins");
  CHECK(status == 200);
  bool torch = false;
  for (const json& p : plugins["plugins"]) {
    if (p["planet"] != "pytorch") continue;
    torch = true;
    CHECK(p["file"] == PB_PYTORCH_PLUGIN);
    CHECK_FALSE(p["version"].get<std::string>().empty());
    CHECK(std::find(p["source_types"].begin(), p["source_types"].end(), "Linear") != p["source_types"].end());
  }
  CHECK(torch);
  CHECK(plugins["refused"].is_array());

  // Expected outputs off by 0.5: FAIL, the tapped Linear named as the first divergence.
  json off = json::parse(pbtest::read_text(kLinear));
  off["tensors"]["y"]["data"][4] = 29.5;
  auto [pstatus, r] = live.post("pytorch", off.dump(), "application/json", "?atol=1e-3&rtol=0");
  INFO(r.dump(2));
  CHECK(pstatus == 200);
  CHECK(r["verdict"] == "FAIL");
  CHECK(r["tolerance"]["atol"] == 1e-3);
  CHECK_THAT(r["first_divergence"].get<std::string>(), Catch::Contains("node \"_0\""));
  REQUIRE(r["taps"].size() == 1);
  CHECK(r["taps"][0]["within"] == false);
  CHECK(r["taps"][0]["max_abs"] == 0.5);
  const std::string page = live.get_text("/runs/" + r["id"].get<std::string>());
  CHECK_THAT(page, Catch::Contains("v-FAIL") && Catch::Contains("fill=\"#c62828\"") && Catch::Contains("5.00e-01") &&
                       Catch::Contains("first diverging node"));
  // Model ids are text, never markup.
  off["model_id"] = "<script>alert(1)</script>";
  auto [xs, x] = live.post("pytorch", off.dump(), "application/json");
  CHECK(xs == 200);
  CHECK_THAT(live.get_text("/runs"), Catch::Contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !Catch::Contains("<script>alert"));
}

TEST_CASE("serve: a run store that cannot be written is a 500 naming it, and the server goes on", "[serve]") {
  Live live;
  fs::remove_all(live.opt.data_dir);  // runs/ gone: no run can be reserved
  auto [status, r] = live.post("pytorch", pbtest::read_text(kLinear), "application/json");
  INFO(r.dump());
  CHECK(status == 500);
  CHECK_THAT(r["error"]["path"].get<std::string>(), Catch::StartsWith(live.opt.data_dir + "/runs/"));
  // The body is received straight into the store, so that is where it first fails.
  CHECK_THAT(r["error"]["message"].get<std::string>(), Catch::Contains("cannot store the request body"));
  fs::create_directories(live.opt.data_dir + "/runs");
  auto [status2, r2] = live.post("pytorch", pbtest::read_text(kLinear), "application/json");
  CHECK(status2 == 200);
  CHECK(r2["verdict"] == "EXACT");
}

TEST_CASE("serve: start fails on a port in use, and stop is idempotent", "[serve]") {
  Live live;
  pb::host::Server other(live.plugins, live.opt);
  CHECK_THROWS_MATCHES(other.start("127.0.0.1", live.port), pb::Error,
                       pbtest::ErrorAt("127.0.0.1:" + std::to_string(live.port), "cannot listen"));
  live.server.stop();
  live.server.stop();
  httplib::Client c("127.0.0.1", live.port);
  c.set_connection_timeout(1, 0);
  CHECK_FALSE(c.Get("/health"));
}

TEST_CASE("serve: the planetbridge serve command answers, and stops cleanly on SIGTERM", "[serve][cli]") {
  pbtest::TempDir tmp;
  int out[2];
  REQUIRE(::pipe(out) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(::open("/dev/null", O_WRONLY), 2);  // nothing of ours stays open in the server
    ::close(out[0]);
    ::execl(PB_CLI, PB_CLI, "--plugin-dir", fs::path(PB_PYTORCH_PLUGIN).parent_path().c_str(), "serve", "--port", "0", "--data",
            tmp.file("data").c_str(), "--max-body", "1M", "--jobs", "4", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  struct Reaper {  // a failed REQUIRE must not leave the server running
    pid_t pid;
    ~Reaper() {
      if (pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
  } reaper{pid};
  std::string banner;
  char c;
  while (banner.find('\n') == std::string::npos && ::read(out[0], &c, 1) == 1) banner += c;
  INFO(banner);
  const auto colon = banner.find("127.0.0.1:");
  REQUIRE(colon != std::string::npos);
  const int port = std::stoi(banner.substr(colon + 10));
  CHECK_THAT(banner, Catch::Contains("pytorch"));
  httplib::Client client("127.0.0.1", port);
  auto health = client.Get("/health");
  REQUIRE(health);
  CHECK(health->status == 200);
  // --max-body 1M
  auto big = client.Post("/api/v1/loom/stream/pytorch", std::string((1 << 20) + 1, ' '), "application/json");
  REQUIRE(big);
  CHECK(big->status == 413);
  ::kill(pid, SIGTERM);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  reaper.pid = 0;
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  ::close(out[0]);

  // Usage errors exit 2.
  CHECK(shell(std::string(PB_CLI) + " serve --port 70000 2>/dev/null") == 2);
  CHECK(shell(std::string(PB_CLI) + " serve --max-body lots 2>/dev/null") == 2);
  CHECK(shell(std::string(PB_CLI) + " serve --min-rate 0 2>/dev/null") == 2);
  CHECK(shell(std::string(PB_CLI) + " serve --max-connections 0 2>/dev/null") == 2);
}

// ------------------------------------------------------------------ the run store

TEST_CASE("run store: ids are unique and ordered across threads and stores on one folder, and runs are never overwritten", "[serve][store]") {
  pbtest::TempDir tmp;
  pb::host::RunStore a(tmp.file("data")), b(tmp.file("data"));  // like two processes
  std::vector<std::string> ids;
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        pb::host::RunStore& s = (t + i) % 2 ? a : b;
        auto run = s.begin();
        pb::host::CaseResult r;
        r.fixture = "m" + std::to_string(t);
        r.verdict = pb::host::Verdict::SKIP;
        s.commit(*run, r, {"run", "unit", ""});
        std::lock_guard<std::mutex> lock(mu);
        ids.push_back(run->id());
      }
    });
  for (auto& t : threads) t.join();
  const std::set<std::string> distinct(ids.begin(), ids.end());
  CHECK(distinct.size() == 200);
  const std::vector<std::string> listed = a.ids();
  CHECK(listed.size() == 200);
  CHECK(std::is_sorted(listed.rbegin(), listed.rend()));
  for (const std::string& id : listed) CHECK(pb::host::RunStore::valid_id(id));

  // Committing twice, or into a finished run's folder, is refused; the first result stays.
  auto run = a.begin();
  pb::host::CaseResult r;
  r.fixture = "first";
  run->keep_stream(reinterpret_cast<const uint8_t*>("abc"), 3);
  CHECK_THROWS_MATCHES(run->keep_stream(reinterpret_cast<const uint8_t*>("x"), 1), pb::Error,
                       pbtest::ErrorAt(run->id(), "already has a stream"));
  const json first = a.commit(*run, r, {"check", "", ""});
  CHECK(first["source"] == "check");
  CHECK(first["stream_bytes"] == 3);
  CHECK(r.run_id == run->id());
  r.fixture = "second";
  CHECK_THROWS_AS(a.commit(*run, r, {"check", "", ""}), pb::Error);
  CHECK(a.result(run->id()).value()["fixture"] == "first");
  CHECK(pbtest::read_text(a.stream_file(run->id())) == "abc");

  // Any bytes in a message (a capture's stderr tail) are recorded, never a reason to fail.
  auto odd = a.begin();
  pb::host::CaseResult e;
  e.verdict = pb::host::Verdict::ERROR;
  e.message = "capture died: \xff\xfe";
  a.commit(*odd, e, {"run", "unit", ""});
  CHECK_THAT(a.result(odd->id()).value()["message"].get<std::string>(), Catch::StartsWith("capture died: "));

  // An abandoned run leaves no result and no listing entry; its id is not reused.
  std::string abandoned;
  {
    auto gone = a.begin();
    abandoned = gone->id();
  }
  CHECK_FALSE(a.result(abandoned));
  CHECK(a.ids().size() == 202);
  CHECK(a.begin()->id() > abandoned);

  // Bad ids never reach the file system.
  for (const char* id : {"", "..", "../../etc/passwd", "20260101T000000Z-00000/", "20260101T000000Z-0000001"}) {
    CHECK_FALSE(pb::host::RunStore::valid_id(id));
    CHECK(a.entity_file(id).empty());
  }
}

TEST_CASE("run store: a folder that cannot hold runs is an error naming it", "[serve][store]") {
  pbtest::TempDir tmp;
  pbtest::write_text(tmp.file("file"), "x");
  CHECK_THROWS_MATCHES(pb::host::RunStore(tmp.file("file")), pb::Error, pbtest::ErrorAt(tmp.file("file") + "/runs", "cannot create the run store"));
  pb::host::RunStore s(tmp.file("data"));
  fs::remove_all(tmp.file("data"));
  CHECK_THROWS_WITH(s.begin(), Catch::Contains("cannot create the run directory"));
  // A suite run into such a folder stops with the error, and the CLI exits 2.
  const pb::host::Suite suite = pb::host::parse_suite(R"(
suite: tiny
defaults: {tolerance: {atol: 1.0e-5, rtol: 1.0e-5}, samples: 4, seed: 1}
fixtures:
  - {id: mlp_4_2, layer: dense, spec: {input: 4, units: [2]}, planets: [pytorch]}
)", "tiny.yaml");
  pb::host::RunOptions opt;
  opt.out_dir = tmp.file("file");
  CHECK_THROWS_AS(pb::host::run_suite(suite, all_planets(), opt), pb::Error);
  CHECK(shell(std::string(PB_CLI) + " run " + quote(kSuite) + " --planet pytorch --fixture mlp_32_16_4_relu --data " +
              quote(tmp.file("file")) + " >/dev/null 2>&1") == 2);
}

TEST_CASE("run store: two consecutive suite runs keep every case as its own run", "[serve][store][live]") {
  const pb::host::PluginRegistry plugins = all_planets();
  PBTEST_SKIP_IF(missing(plugins, planet_named("pytorch")), "suite runs in the run store need torch");
  pbtest::TempDir tmp;
  const pb::host::Suite suite = pb::host::parse_suite(R"(
suite: twice
defaults: {tolerance: {atol: 1.0e-5, rtol: 1.0e-5}, samples: 8, seed: 7}
fixtures:
  - {id: mlp_8_4_relu, layer: dense, spec: {input: 8, units: [4, 2]}, planets: [pytorch]}
  - {id: mlp_8_3_tanh, layer: dense, spec: {input: 8, units: [3], activation: tanh}, planets: [pytorch],
     not_applicable: {pytorch: "recorded as a SKIP run"}}
)", "twice.yaml");
  pb::host::RunOptions opt;
  opt.out_dir = tmp.file("data");
  opt.capture_timeout_s = 120;
  // Results come in capture order, then the not-applicable SKIP (reported after the hello).
  auto first = pb::host::run_suite(suite, plugins, opt);
  REQUIRE(first.size() == 2);
  const pb::host::RunStore store(opt.out_dir);
  const std::string first_result = pbtest::read_text(store.run_dir(first[0].run_id) + "/result.json");
  auto second = pb::host::run_suite(suite, plugins, opt);
  REQUIRE(second.size() == 2);

  std::set<std::string> ids;
  for (const auto* results : {&first, &second})
    for (const auto& r : *results) {
      INFO(r.name() << ": " << pb::host::verdict_name(r.verdict) << " " << r.message);
      ids.insert(r.run_id);
      const auto doc = store.result(r.run_id);
      REQUIRE(doc);
      CHECK((*doc)["source"] == "run");
      CHECK((*doc)["suite"] == "twice");
      CHECK((*doc)["verdict"] == pb::host::verdict_name(r.verdict));
    }
  CHECK(ids.size() == 4);
  CHECK(store.ids().size() == 4);
  CHECK(pbtest::read_text(store.run_dir(first[0].run_id) + "/result.json") == first_result);
  for (const auto& r : {first[0], second[0]}) {
    INFO(r.name() << ": " << pb::host::verdict_name(r.verdict) << " " << r.message);
    CHECK((r.verdict == pb::host::Verdict::EXACT || r.verdict == pb::host::Verdict::PASS));
    CHECK(r.entity_path == store.run_dir(r.run_id) + "/model.entity");
    CHECK(store.entity_file(r.run_id) == r.entity_path);
    CHECK(fs::file_size(r.entity_path) == r.entity_bytes);
    // The stream is kept re-encoded, and still checks out.
    const pb::Stream s = pb::read_stream_file(store.stream_file(r.run_id));
    CHECK(s.model_id == "mlp_8_4_relu");
    CHECK(s.taps.size() >= 3);
  }
  CHECK(first[1].verdict == pb::host::Verdict::SKIP);
  CHECK(first[1].engine == first[0].engine);  // the SKIP row names the engine too
  CHECK(store.entity_file(first[1].run_id).empty());
  CHECK(store.stream_file(first[1].run_id).empty());
  CHECK(first[0].entity_path != second[0].entity_path);
}

TEST_CASE("run store: planetbridge check records its run and keeps its own --entity", "[serve][store][cli]") {
  pbtest::TempDir tmp;
  const std::string cmd = std::string(PB_CLI) + " check " + quote(kLinear) + " --data " + quote(tmp.file("data")) + " --entity " +
                          quote(tmp.file("mine.entity")) + " >" + quote(tmp.file("out.txt")) + " 2>&1";
  CHECK(shell(cmd) == 0);
  const std::string out = pbtest::read_text(tmp.file("out.txt"));
  INFO(out);
  const pb::host::RunStore store(tmp.file("data"));
  REQUIRE(store.ids().size() == 1);
  const std::string id = store.ids()[0];
  CHECK_THAT(out, Catch::Contains("run       " + id));
  const json doc = store.result(id).value();
  CHECK(doc["source"] == "check");
  CHECK(doc["entity"] == tmp.file("mine.entity"));
  CHECK(pbtest::read_bytes(store.entity_file(id)) == pbtest::read_bytes(tmp.file("mine.entity")));
  CHECK(pbtest::read_text(store.stream_file(id)) == pbtest::read_text(kLinear));
  // The store's checkpoint may be a hard link to the user's; a later check saving another
  // model to the same path replaces the user's file, never the run's.
  const auto kept = pbtest::read_bytes(store.entity_file(id));
  CHECK(shell(std::string(PB_CLI) + " check " + quote(kSource + "/plugins/pytorch/tests/streams/batchnorms.json") + " --data " +
              quote(tmp.file("data2")) + " --entity " + quote(tmp.file("mine.entity")) + " >/dev/null 2>&1") == 0);
  CHECK(pbtest::read_bytes(tmp.file("mine.entity")) != kept);
  CHECK(pbtest::read_bytes(store.entity_file(id)) == kept);
  // Without --entity the checkpoint lives in the store only; a second check is a second run.
  CHECK(shell(std::string(PB_CLI) + " check " + quote(kLinear) + " --data " + quote(tmp.file("data")) + " >/dev/null 2>&1") == 0);
  REQUIRE(store.ids().size() == 2);
  CHECK(store.result(store.ids()[0]).value()["entity"] == store.run_dir(store.ids()[0]) + "/model.entity");
}
