#pragma once
// `planetbridge serve`: the HTTP stream API, run history and dashboard (docs/http-api.md) on
// cpp-httplib, a thread per connection guarded by deadlines and caps (http_guard.h).
#include <cstdint>
#include <memory>
#include <string>

#include "http_guard.h"
#include "plugin_loader.h"
#include "suite.h"

namespace pb::host {

struct ServerOptions {
  std::string data_dir = ".planetbridge";  // the run store, shared with `run` and `check`
  uint64_t max_body = uint64_t(1) << 30;   // larger request bodies get 413
  Tolerance tolerance;                     // default for posted streams (?atol=&rtol= override)
  int jobs = 0;                            // checks run at once (others wait); 0: one per CPU
  ConnectionLimits limits;                 // connection caps, deadlines, head size
  std::string version;                     // reported by /health
};

class Server {
 public:
  // The registry must outlive the server.
  Server(const PluginRegistry& plugins, ServerOptions options);
  ~Server();  // stops
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port (port 0: any free port), then serves on a background thread; returns the
  // bound port. Clients may connect as soon as it returns. Throws pb::Error when it cannot bind.
  int start(const std::string& host, int port);
  // Stops accepting, finishes the requests in flight and joins the serving thread.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pb::host
