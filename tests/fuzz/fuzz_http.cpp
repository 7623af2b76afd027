// Fuzz target fuzz_http (docs/fuzzing.md): HTTP request handling of `planetbridge serve`. One
// pb::host::Server (with this build's planet plugins and a temporary run store) is started on
// 127.0.0.1, port 0, once. Each input is written as raw bytes to a fresh TCP connection, which
// is then half-closed (shutdown SHUT_WR); the reply is read until the server closes. Checked:
//   - the server answers, or closes, within 5 s of the half-close (no stall on a client that
//     has said all it will say);
//   - whatever comes back starts with "HTTP/1.1 ";
//   - and the sanitizers and libFuzzer's limits, on the server's threads as on any other.
// The run store is emptied every 256 inputs so that a long run does not fill the disk.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "fuzz_util.h"
#include "server.h"

namespace {

namespace fs = std::filesystem;

constexpr int kReplyTimeoutMs = 5000;
constexpr size_t kKeepReply = 64;  // bytes of a reply kept for the check and the message

std::string g_data_dir;
pb::host::Server* g_server = nullptr;
int g_port = 0;
uint64_t g_inputs = 0;

void shut_down() {
  if (g_server) g_server->stop();
  std::error_code ec;
  if (!g_data_dir.empty()) fs::remove_all(g_data_dir, ec);
}

void empty_run_store() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(g_data_dir) / "runs", ec)) fs::remove_all(e.path(), ec);
}

std::string printable(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    if (c >= 32 && c < 127) {
      o += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      o += buf;
    }
  }
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const auto& plugins = pbfuzz::plugins();
  std::string tmpl = (fs::temp_directory_path() / "pb_fuzz_http_XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) pbfuzz::fail(std::string("mkdtemp: ") + std::strerror(errno));
  g_data_dir = tmpl;
  pb::host::ServerOptions options;  // defaults, but for the run store
  options.data_dir = g_data_dir;
  g_server = new pb::host::Server(plugins, options);  // never deleted: shut_down() stops it
  g_port = g_server->start("127.0.0.1", 0);
  std::atexit(shut_down);
  std::fprintf(stderr, "fuzz: serving on 127.0.0.1:%d, run store %s\n", g_port, g_data_dir.c_str());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (++g_inputs % 256 == 0) empty_run_store();

  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) pbfuzz::fail(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(g_port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    // Interrupted (libFuzzer's timer signal): the connection goes on; wait for it.
    int err = errno;
    if (err == EINTR) {
      pollfd p{fd, POLLOUT, 0};
      while (::poll(&p, 1, kReplyTimeoutMs) < 0 && errno == EINTR) {
      }
      socklen_t len = sizeof err;
      if (!(p.revents & POLLOUT) || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = ETIMEDOUT;
    }
    if (err) pbfuzz::fail(std::string("cannot connect to the server: ") + std::strerror(err));
  }

  // The request. The server may answer and close before it has read everything (a refusal):
  // then sending stops and the reply is read.
  for (size_t done = 0; done < size;) {
    const ssize_t n = ::send(fd, data + done, size - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);

  std::string reply;
  size_t total = 0;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, kReplyTimeoutMs);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0)
      pbfuzz::fail("no reply and no close within 5 s of the request (" + std::to_string(size) + " bytes, then half-closed); got " +
                   std::to_string(total) + " bytes: \"" + printable(reply) + "\"");
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // closed, or reset (a server that closes with unread request bytes)
    if (reply.size() < kKeepReply) reply.append(buf, std::min(static_cast<size_t>(n), kKeepReply - reply.size()));
    total += static_cast<size_t>(n);
  }
  // Closed with a reset, not kept in TIME_WAIT: a long run opens hundreds of thousands of connections.
  linger no_linger{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &no_linger, sizeof no_linger);
  ::close(fd);

  static const std::string kStatusLine = "HTTP/1.1 ";
  if (!reply.empty() && reply.compare(0, kStatusLine.size(), kStatusLine, 0, std::min(reply.size(), kStatusLine.size())) != 0)
    pbfuzz::fail("the reply does not start with \"HTTP/1.1 \": \"" + printable(reply) + "\"");
  return 0;
}
