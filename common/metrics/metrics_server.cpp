// A tiny HTTP server for Prometheus scrapes and Kubernetes probes: /metrics, /healthz, /ready.
#include "common/metrics/metrics_server.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace blobferry {
namespace {

using Clock = std::chrono::steady_clock;

// After our answer, a client's unread bytes would turn our close into a reset
// that can destroy the answer in flight; this long we wait for its EOF.
constexpr auto kDrainTimeout = std::chrono::milliseconds(1000);

struct Reply {
  int status;
  const char* reason;
  std::string content_type;
  std::string body;
  std::string extra_headers;
};

std::string serialize(const Reply& reply, bool with_body) {
  std::string out = "HTTP/1.1 " + std::to_string(reply.status) + ' ' + reply.reason + "\r\n";
  out += "Content-Type: " + reply.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n";
  out += "Cache-Control: no-store\r\n";
  out += reply.extra_headers;
  out += "Connection: close\r\n\r\n";
  if (with_body) out += reply.body;
  return out;
}

Reply text(int status, const char* reason, std::string body) {
  return Reply{status, reason, "text/plain; charset=utf-8", std::move(body), {}};
}

// Where the head ends (index of its blank line), tolerating bare LF clients.
std::size_t head_end(const std::string& buffer) {
  auto crlf = buffer.find("\r\n\r\n");
  auto lf = buffer.find("\n\n");
  return std::min(crlf, lf);
}

}  // namespace

struct MetricsServer::Connection {
  enum class Phase { kReading, kWriting, kDraining, kDone };

  UniqueFd fd;
  Phase phase = Phase::kReading;
  std::string input;
  std::string output;
  std::size_t sent = 0;
  Clock::time_point deadline;

  short wanted_events() const { return phase == Phase::kWriting ? POLLOUT : POLLIN; }
};

std::string MetricsServer::respond(std::string_view request_head, const Metrics& metrics,
                                   bool ready) {
  std::string_view line = request_head.substr(0, request_head.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  auto first_space = line.find(' ');
  auto last_space = line.rfind(' ');
  if (first_space == std::string_view::npos || first_space == last_space ||
      line.substr(last_space + 1).rfind("HTTP/", 0) != 0) {
    return serialize(text(400, "Bad Request", "bad request\n"), true);
  }
  std::string_view method = line.substr(0, first_space);
  std::string_view target = line.substr(first_space + 1, last_space - first_space - 1);
  std::string_view path = target.substr(0, target.find('?'));

  bool head = method == "HEAD";
  if (method != "GET" && !head) {
    Reply reply = text(405, "Method Not Allowed", "method not allowed\n");
    reply.extra_headers = "Allow: GET, HEAD\r\n";
    return serialize(reply, true);
  }
  if (path == "/metrics") {
    Reply reply{200, "OK", "text/plain; version=0.0.4; charset=utf-8", metrics.render(), {}};
    return serialize(reply, !head);
  }
  if (path == "/healthz") return serialize(text(200, "OK", "ok"), !head);
  if (path == "/ready") {
    return serialize(
        ready ? text(200, "OK", "ready") : text(503, "Service Unavailable", "not ready"), !head);
  }
  return serialize(text(404, "Not Found", "not found\n"), !head);
}

MetricsServer::MetricsServer(const Metrics& metrics, const std::string& host_port,
                             std::chrono::milliseconds read_timeout)
    : metrics_(metrics),
      listener_(host_port, "--metrics-addr"),
      read_timeout_(read_timeout),
      thread_([this] { run(); }) {}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::stop() {
  std::lock_guard lock(stop_mutex_);
  stopping_.store(true);
  listener_.wake();
  if (thread_.joinable()) thread_.join();
  listener_.close();
}

void MetricsServer::run() {
  std::vector<std::unique_ptr<Connection>> connections;
  std::vector<pollfd> polled;
  while (!stopping_.load()) {
    polled.clear();
    polled.push_back({listener_.wake_fd(), POLLIN, 0});
    // At capacity the listener is left unpolled: clients wait in the backlog, not lost.
    bool accepting = connections.size() < kMaxConnections;
    polled.push_back({listener_.fd(), static_cast<short>(accepting ? POLLIN : 0), 0});
    auto now = Clock::now();
    auto wait = std::chrono::milliseconds(-1);
    for (const auto& connection : connections) {
      polled.push_back({connection->fd.get(), connection->wanted_events(), 0});
      auto left = std::chrono::ceil<std::chrono::milliseconds>(connection->deadline - now);
      left = std::max(left, std::chrono::milliseconds(0));
      wait = wait.count() < 0 ? left : std::min(wait, left);
    }

    int ready_count = ::poll(polled.data(), polled.size(), static_cast<int>(wait.count()));
    if (ready_count < 0 && errno != EINTR) break;
    if (polled[0].revents != 0) break;  // woken by stop()

    now = Clock::now();
    std::size_t polled_connections = polled.size() - 2;
    for (std::size_t i = 0; i < polled_connections; ++i) {
      Connection& connection = *connections[i];
      if (polled[i + 2].revents != 0) serve(connection);
      if (connection.phase != Connection::Phase::kDone && now >= connection.deadline) {
        connection.phase = Connection::Phase::kDone;
      }
    }
    std::erase_if(connections, [](const auto& connection) {
      return connection->phase == Connection::Phase::kDone;
    });
    if (accepting && (polled[1].revents & POLLIN) != 0) accept_clients(connections);
  }
}

void MetricsServer::accept_clients(std::vector<std::unique_ptr<Connection>>& connections) {
  while (connections.size() < kMaxConnections) {
    UniqueFd client = listener_.accept_client(true);
    if (!client) return;
    auto connection = std::make_unique<Connection>();
    connection->fd = std::move(client);
    connection->deadline = Clock::now() + read_timeout_;
    connections.push_back(std::move(connection));
  }
}

void MetricsServer::serve(Connection& connection) {
  using Phase = Connection::Phase;
  char buffer[4096];
  if (connection.phase == Phase::kReading || connection.phase == Phase::kDraining) {
    ssize_t got = ::recv(connection.fd.get(), buffer, sizeof buffer, 0);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (got <= 0) {
      connection.phase = Phase::kDone;  // EOF or reset: nothing more to say to this client
      return;
    }
    if (connection.phase == Phase::kDraining) return;
    connection.input.append(buffer, static_cast<std::size_t>(got));
    auto end = head_end(connection.input);
    if (end != std::string::npos && end <= kMaxRequestHead) {
      connection.output =
          respond(std::string_view(connection.input).substr(0, end), metrics_, ready());
    } else if (connection.input.size() > kMaxRequestHead) {
      connection.output = serialize(
          text(431, "Request Header Fields Too Large", "request head over 8 KiB\n"), true);
    } else {
      return;
    }
    connection.phase = Phase::kWriting;
    connection.deadline = Clock::now() + read_timeout_;
  }
  if (connection.phase == Phase::kWriting) {
    ssize_t put = ::send(connection.fd.get(), connection.output.data() + connection.sent,
                         connection.output.size() - connection.sent, MSG_NOSIGNAL);
    if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (put < 0) {
      connection.phase = Phase::kDone;
      return;
    }
    connection.sent += static_cast<std::size_t>(put);
    if (connection.sent < connection.output.size()) return;
    ::shutdown(connection.fd.get(), SHUT_WR);
    connection.phase = Phase::kDraining;
    connection.deadline =
        Clock::now() + std::min<std::chrono::milliseconds>(read_timeout_, kDrainTimeout);
  }
}

}  // namespace blobferry
