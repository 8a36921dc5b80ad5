// The operator page's HTTP server: a few threads accept, read one request, answer it and close.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics/http_listener.h"
#include "enqueuer/web/http_request.h"
#include "enqueuer/web/http_response.h"

namespace blobferry {

struct WebServerOptions {
  std::size_t threads = 4;  // requests served at once; a slow one never holds up the others
  std::chrono::milliseconds read_timeout{5000};
  std::chrono::milliseconds write_timeout{30000};
  std::size_t max_head = 16 * 1024;
  std::size_t max_body = 64 * 1024;  // forms only: nothing the page posts comes near it
};

// Connections are short-lived (Connection: close). Malformed requests get a
// 400, oversized ones a 413, slow ones a 408, before the handler sees them.
// The handler runs on the server's threads, so it must be thread-safe.
class WebServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // Binds now (kConfig error naming --listen and the fix when it cannot) and
  // starts serving.
  WebServer(const std::string& host_port, Handler handler, WebServerOptions options = {});
  ~WebServer();  // stop()
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  int port() const { return listener_.port(); }
  const std::string& address() const { return listener_.address(); }

  // Stops accepting, lets requests being answered finish, joins. Idempotent.
  void stop();

 private:
  void serve_loop();
  void serve(int fd);

  HttpListener listener_;
  Handler handler_;
  WebServerOptions options_;
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
};

}  // namespace blobferry
