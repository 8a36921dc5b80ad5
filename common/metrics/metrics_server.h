// A tiny HTTP server for Prometheus scrapes and Kubernetes probes: /metrics, /healthz, /ready.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/metrics/http_listener.h"
#include "common/metrics/metrics.h"

namespace blobferry {

// One background thread multiplexes every connection with poll(), so a slow
// or silent client costs a slot, never the scrape of another. Connections are
// short-lived (Connection: close); a request head is at most 8 KiB and must
// arrive within read_timeout.
//
//   GET /metrics  200 text/plain; version=0.0.4 (Metrics::render())
//   GET /healthz  200 "ok" while the process runs
//   GET /ready    200 once set_ready(true), 503 before and after set_ready(false)
//   HEAD works like GET; other paths 404; other methods 405.
class MetricsServer {
 public:
  static constexpr std::size_t kMaxRequestHead = 8 * 1024;
  static constexpr std::size_t kMaxConnections = 64;

  // Starts serving at once. host_port is --metrics-addr ("127.0.0.1:9464",
  // "0.0.0.0:9464", "[::1]:9464"; port 0 picks a free port). Throws Error of
  // kind kConfig naming the address and the fix when it is unparseable or
  // cannot be bound (port in use). metrics must outlive the server.
  MetricsServer(const Metrics& metrics, const std::string& host_port,
                std::chrono::milliseconds read_timeout = std::chrono::seconds(5));
  ~MetricsServer();  // stop()
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return listener_.port(); }
  const std::string& address() const { return listener_.address(); }

  // The worker says when it can take jobs (storage checked, queue reached).
  void set_ready(bool ready) { ready_.store(ready, std::memory_order_relaxed); }
  bool ready() const { return ready_.load(std::memory_order_relaxed); }

  // Closes the socket and every connection and joins the thread, promptly
  // whatever clients are doing. Idempotent.
  void stop();

  // The complete response (head and body) to one request head. Pure, so the
  // routing is unit-tested without sockets.
  static std::string respond(std::string_view request_head, const Metrics& metrics, bool ready);

 private:
  struct Connection;
  void run();
  void accept_clients(std::vector<std::unique_ptr<Connection>>& connections);
  void serve(Connection& connection);

  const Metrics& metrics_;
  HttpListener listener_;
  std::chrono::milliseconds read_timeout_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> stopping_{false};
  std::mutex stop_mutex_;
  std::thread thread_;
};

}  // namespace blobferry
