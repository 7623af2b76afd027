#pragma once
// What keeps `serve` answering under slow and many clients (docs/security.md). cpp-httplib ties a
// pooled thread to a connection for as long as the client takes, with timeouts that restart on
// every byte: 200 clients sending a byte at a time stalled every worker. Here
//   - each connection gets its own thread, so a slow client holds a sleeping thread, never a
//     worker another request waits for (the checks themselves are limited by the server);
//   - connections are capped per client address and in total; beyond a cap the client gets
//     503 with Retry-After at once;
//   - every read and write has a deadline: a request (head and body) must arrive, and a reply be
//     taken, at a minimum mean rate after a grace period; a request head is bounded in size.
#include <httplib.h>

#include <atomic>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>

namespace pb::host {

struct ConnectionLimits {
  size_t max_connections = 512;  // open connections in total
  size_t max_per_client = 256;   // open connections from one address (a proxy counts as one)
  double grace_s = 10;           // time every request and reply gets before the rate applies
  double min_rate = 256 * 1024;  // bytes/s, the mean rate a request or reply must keep after the grace
  double idle_s = 5;             // how long a kept-alive connection waits for its next request
  size_t max_head = 64 * 1024;   // request line and headers, bytes
};

class GuardedServer : public httplib::Server {
 public:
  explicit GuardedServer(ConnectionLimits limits);

  // Whether the connection the calling thread serves has run past its deadline (a request
  // handler uses it to tell a client that stalled from one that hung up).
  static bool current_request_timed_out();
  const ConnectionLimits& limits() const { return limits_; }

 private:
  bool process_and_close_socket(socket_t sock) override;
  // Counts a new connection from `address`; false, with the reason, beyond a cap.
  bool admit(const std::string& address, std::string* refusal);
  void release(const std::string& address);

  const ConnectionLimits limits_;
  std::mutex mutex_;
  size_t open_ = 0;
  std::map<std::string, size_t> per_client_;
};

}  // namespace pb::host
