// The operator page's HTTP server: a few threads accept, read one request, answer it and close.
#include "enqueuer/web/web_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <exception>

#include <spdlog/spdlog.h>

namespace blobferry {
namespace {

void set_timeout(int fd, int option, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv);
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t sent = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return false;  // the client left or stalled past the write timeout
    data.remove_prefix(static_cast<std::size_t>(sent));
  }
  return true;
}

void send_response(int fd, const HttpResponse& response, bool head_only) {
  if (!send_all(fd, response.render_head()) || head_only) return;
  if (!response.stream) {
    send_all(fd, response.body);
    return;
  }
  bool open = true;
  response.stream([&](std::string_view chunk) {
    // A client that left stops the writes, not the stream: it ends on its own.
    if (open) open = send_all(fd, chunk);
  });
}

}  // namespace

WebServer::WebServer(const std::string& host_port, Handler handler, WebServerOptions options)
    : listener_(host_port, "--listen"), handler_(std::move(handler)), options_(options) {
  for (std::size_t i = 0; i < std::max<std::size_t>(1, options_.threads); ++i) {
    threads_.emplace_back([this] { serve_loop(); });
  }
}

WebServer::~WebServer() { stop(); }

void WebServer::stop() {
  if (stopping_.exchange(true)) return;
  listener_.wake();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  listener_.close();
}

void WebServer::serve_loop() {
  while (!stopping_.load()) {
    pollfd fds[2] = {{listener_.fd(), POLLIN, 0}, {listener_.wake_fd(), POLLIN, 0}};
    if (::poll(fds, 2, 1000) <= 0) continue;
    if (fds[1].revents != 0) return;  // stop(): the wake pipe stays readable, so every thread sees it
    // Every thread wakes for a connection; the ones that lose the race get none.
    UniqueFd client = listener_.accept_client(false);
    if (!client) continue;
    try {
      serve(client.get());
    } catch (const std::exception& e) {
      spdlog::warn("web: request failed: {}", e.what());
    }
  }
}

void WebServer::serve(int fd) {
  set_timeout(fd, SO_RCVTIMEO, options_.read_timeout);
  set_timeout(fd, SO_SNDTIMEO, options_.write_timeout);
  std::string data;
  std::size_t head_end = std::string::npos;
  char buffer[8192];
  auto read_more = [&]() -> int {
    const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
    if (got > 0) data.append(buffer, static_cast<std::size_t>(got));
    return got > 0 ? 1 : (got == 0 ? 0 : -1);
  };
  while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
    if (data.size() > options_.max_head) {
      send_response(fd, HttpResponse::text(413, "request head too large"), false);
      return;
    }
    const int got = read_more();
    if (got == 0) return;  // closed before a request
    if (got < 0) {
      if (!data.empty()) send_response(fd, HttpResponse::text(408, "request head too slow"), false);
      return;
    }
  }
  std::string error;
  auto request = HttpRequest::parse_head(std::string_view(data).substr(0, head_end), &error);
  if (!request) {
    send_response(fd, HttpResponse::text(400, error), false);
    return;
  }
  const auto length = request->content_length();
  if (!length) {
    send_response(fd, HttpResponse::text(400, "Content-Length must be a decimal number"), false);
    return;
  }
  if (*length > options_.max_body) {
    send_response(fd, HttpResponse::text(413, "request body over " + std::to_string(options_.max_body) + " bytes"),
                  false);
    return;
  }
  request->body = data.substr(head_end + 4);
  while (request->body.size() < *length) {
    data.clear();
    if (read_more() <= 0) {
      send_response(fd, HttpResponse::text(408, "request body incomplete"), false);
      return;
    }
    request->body += data;
  }
  request->body.resize(*length);
  const bool head_only = request->method == "HEAD";
  if (head_only) request->method = "GET";
  send_response(fd, handler_(*request), head_only);
}

}  // namespace blobferry
