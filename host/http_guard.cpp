#include "http_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <thread>

namespace pb::host {

namespace {

using Clock = std::chrono::steady_clock;

std::chrono::nanoseconds seconds(double s) { return std::chrono::nanoseconds(static_cast<int64_t>(s * 1e9)); }

// A thread per connection. enqueue blocks (and so does httplib's accept loop, leaving new
// connections in the kernel's backlog) only when `max` threads are alive.
class ThreadPerConnection : public httplib::TaskQueue {
 public:
  explicit ThreadPerConnection(size_t max) : max_(max) {}
  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return alive_ < max_; });
    ++alive_;
    std::thread([this, fn = std::move(fn)] {
      fn();
      std::lock_guard<std::mutex> l(mutex_);
      --alive_;
      changed_.notify_all();
    }).detach();
  }
  // Waits for every connection to finish (httplib destroys the queue right after).
  void shutdown() override {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return alive_ == 0; });
  }

 private:
  const size_t max_;
  std::mutex mutex_;
  std::condition_variable changed_;
  size_t alive_ = 0;
};

// A socket with deadlines. Reads are buffered (httplib reads bodies 4 KiB at a time). The buffer
// lives in the object, on the connection thread's stack: no allocation per connection (and none
// for LeakSanitizer to misjudge while the thread sits in poll()).
class DeadlineStream : public httplib::Stream {
 public:
  DeadlineStream(socket_t sock, const ConnectionLimits& limits) : sock_(sock), limits_(limits) {}

  // Waits up to idle_s for the next request's first byte (or the server's stop); true when
  // there is something to read (bytes, or the client's close, which the request reader finds).
  bool wait_for_request(const std::atomic<socket_t>& listening) {
    const Clock::time_point end = Clock::now() + seconds(limits_.idle_s);
    while (begin_ == end_) {
      if (listening == INVALID_SOCKET || Clock::now() >= end) return false;
      if (wait(POLLIN, std::min(end, Clock::now() + std::chrono::milliseconds(100)))) break;
    }
    return true;
  }
  void begin_request() {
    read_start_ = Clock::now();
    received_ = 0;
    written_ = 0;
    writing_ = false;
    in_head_ = true;
  }
  void head_read() { in_head_ = false; }
  bool timed_out() const { return timed_out_; }

  bool is_readable() const override { return begin_ != end_ || wait(POLLIN, read_deadline()); }
  bool is_writable() const override { return wait(POLLOUT, write_deadline()); }

  ssize_t read(char* ptr, size_t size) override {
    if (begin_ == end_) {
      if (in_head_ && received_ >= limits_.max_head) return -1;
      if (!wait(POLLIN, read_deadline())) return -1;
      const ssize_t n = ::recv(sock_, buffer_, sizeof buffer_, 0);
      if (n <= 0) return n < 0 && errno == EINTR ? read(ptr, size) : n;
      begin_ = 0;
      end_ = static_cast<size_t>(n);
      received_ += static_cast<size_t>(n);
    }
    const size_t n = std::min(size, end_ - begin_);
    std::memcpy(ptr, buffer_ + begin_, n);
    begin_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!writing_) {
      writing_ = true;
      write_start_ = Clock::now();
    }
    size_t done = 0;
    while (done < size) {
      if (!wait(POLLOUT, write_deadline())) return -1;
      const ssize_t n = ::send(sock_, ptr + done, size - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return -1;
      done += static_cast<size_t>(n);
      written_ += static_cast<size_t>(n);
    }
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { address(::getpeername, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address(::getsockname, ip, port); }
  socket_t socket() const override { return sock_; }

 private:
  Clock::time_point read_deadline() const {
    return read_start_ + seconds(limits_.grace_s + static_cast<double>(received_) / limits_.min_rate);
  }
  Clock::time_point write_deadline() const {
    return (writing_ ? write_start_ : Clock::now()) + seconds(limits_.grace_s + static_cast<double>(written_) / limits_.min_rate);
  }
  // poll() until `events` or the deadline; a deadline passed marks the connection timed out.
  bool wait(short events, Clock::time_point deadline) const {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left < 0) {
        timed_out_ = true;
        return false;
      }
      pollfd p{sock_, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
      if (r > 0) return true;  // ready, or an error/hang-up the next call reports
      if (r < 0 && errno != EINTR) return false;
    }
  }
  static void address(int (*get)(int, sockaddr*, socklen_t*), const socket_t sock, std::string& ip, int& port);
  void address(int (*get)(int, sockaddr*, socklen_t*), std::string& ip, int& port) const { address(get, sock_, ip, port); }

  const socket_t sock_;
  const ConnectionLimits& limits_;
  char buffer_[128 * 1024];
  size_t begin_ = 0, end_ = 0;
  Clock::time_point read_start_ = Clock::now(), write_start_;
  size_t received_ = 0, written_ = 0;
  bool writing_ = false, in_head_ = true;
  mutable bool timed_out_ = false;
};

void DeadlineStream::address(int (*get)(int, sockaddr*, socklen_t*), const socket_t sock, std::string& ip, int& port) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  ip.clear();
  port = 0;
  if (get(sock, reinterpret_cast<sockaddr*>(&a), &len) != 0) return;
  char text[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
    ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    port = ntohs(v4->sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    port = ntohs(v6->sin6_port);
  }
  ip = text;
}

thread_local DeadlineStream* current_stream = nullptr;

// Answers a connection beyond a cap without reading its request, then lets it go: the client
// gets the reply rather than a reset (unread input would turn the close into one).
void refuse_connection(socket_t sock, const std::string& why) {
  const std::string body = "{\"error\": {\"path\": \"(connection)\", \"message\": \"" + why + "; retry later\"}}\n";
  const std::string reply = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                            "Connection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  ::send(sock, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(sock, SHUT_WR);
  char sink[4096];
  const Clock::time_point end = Clock::now() + std::chrono::milliseconds(200);
  for (pollfd p{sock, POLLIN, 0}; Clock::now() < end && ::poll(&p, 1, 50) >= 0;)
    if ((p.revents & POLLIN) && ::recv(sock, sink, sizeof sink, MSG_DONTWAIT) <= 0) break;
  ::close(sock);
}

}  // namespace

GuardedServer::GuardedServer(ConnectionLimits limits) : limits_(limits) {
  // Refusals are answered on their own short-lived threads, so allow some beyond the cap.
  new_task_queue = [max = limits_.max_connections + 64] { return new ThreadPerConnection(max); };
  // Routing starts once the head is read: from here on the head limit no longer applies.
  set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    if (current_stream) current_stream->head_read();
    return HandlerResponse::Unhandled;
  });
}

bool GuardedServer::current_request_timed_out() { return current_stream && current_stream->timed_out(); }

bool GuardedServer::admit(const std::string& address, std::string* refusal) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto mine = per_client_.find(address);
  if (open_ >= limits_.max_connections)
    *refusal = "the server has " + std::to_string(open_) + " connections open (--max-connections)";
  else if (mine != per_client_.end() && mine->second >= limits_.max_per_client)
    *refusal = "this address has " + std::to_string(mine->second) + " connections open (--max-client-connections)";
  else {
    ++open_;
    ++per_client_[address];
    return true;
  }
  return false;
}

void GuardedServer::release(const std::string& address) {
  std::lock_guard<std::mutex> lock(mutex_);
  --open_;
  if (--per_client_[address] == 0) per_client_.erase(address);
}

bool GuardedServer::process_and_close_socket(socket_t sock) {
  DeadlineStream stream(sock, limits_);
  std::string address;
  int port = 0;
  stream.get_remote_ip_and_port(address, port);
  std::string refusal;
  if (!admit(address, &refusal)) {
    refuse_connection(sock, refusal);
    return false;
  }
  current_stream = &stream;
  bool ok = false;
  for (size_t left = keep_alive_max_count_; left > 0 && stream.wait_for_request(svr_sock_); --left) {
    stream.begin_request();
    bool closed = false;
    ok = process_request(stream, left == 1, closed, nullptr);
    if (!ok || closed) break;
  }
  current_stream = nullptr;
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  release(address);
  return ok;
}

}  // namespace pb::host
