// A TCP listening socket bound from "HOST:PORT", with a wake-up pipe to stop a poll() loop.
#include "common/metrics/http_listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <memory>
#include <system_error>

#include "common/base/error.h"

namespace blobferry {
namespace {

struct AddrInfoDeleter {
  void operator()(addrinfo* info) const { freeaddrinfo(info); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

std::string errno_text(int error) {
  return std::error_code(error, std::generic_category()).message();
}

bool valid_port(std::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  return ec == std::errc{} && end == port.data() + port.size() && value <= 65535;
}

std::string format_address(const sockaddr_storage& address, int* port) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
    *port = ntohs(v6.sin6_port);
    return "[" + std::string(text) + "]:" + std::to_string(*port);
  }
  const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
  inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
  *port = ntohs(v4.sin_port);
  return std::string(text) + ":" + std::to_string(*port);
}

// The advice depends on why bind() refused, so the user learns the fix, not just the errno.
Error bind_error(const std::string& option_name, const std::string& host_port,
                 const ListenAddress& parsed, const char* call, int error) {
  std::string prefix = option_name + " " + host_port + ": ";
  std::string cause = std::string("(") + call + ": " + errno_text(error) + ")";
  if (error == EADDRINUSE) {
    return config_error(prefix + "port " + parsed.port + " is already in use " + cause +
                        "; choose a free port, or port 0 to pick one");
  }
  if (error == EADDRNOTAVAIL) {
    return config_error(prefix + "that address is not on this machine " + cause +
                        "; use 127.0.0.1, 0.0.0.0 or one of this host's addresses");
  }
  if (error == EACCES) {
    return config_error(prefix + "permission denied " + cause +
                        "; ports below 1024 need privileges, choose a higher port");
  }
  return config_error(prefix + "cannot listen " + cause);
}

}  // namespace

std::optional<ListenAddress> parse_listen_address(std::string_view host_port) {
  ListenAddress result;
  std::string_view port;
  if (!host_port.empty() && host_port.front() == '[') {
    auto close = host_port.find(']');
    if (close == std::string_view::npos || close + 1 >= host_port.size() ||
        host_port[close + 1] != ':') {
      return std::nullopt;
    }
    result.host = std::string(host_port.substr(1, close - 1));
    if (result.host.empty()) return std::nullopt;
    port = host_port.substr(close + 2);
  } else {
    auto colon = host_port.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    result.host = std::string(host_port.substr(0, colon));
    port = host_port.substr(colon + 1);
  }
  // Outside brackets a ':' would make "::1:80" ambiguous, so IPv6 must be bracketed.
  bool bracketed = !host_port.empty() && host_port.front() == '[';
  if (result.host.find_first_of(bracketed ? "[] \t" : ":[] \t") != std::string::npos) {
    return std::nullopt;
  }
  if (!valid_port(port)) return std::nullopt;
  result.port = std::string(port);
  return result;
}

HttpListener::HttpListener(const std::string& host_port, const std::string& option_name) {
  auto parsed = parse_listen_address(host_port);
  if (!parsed) {
    throw config_error(option_name + " '" + host_port +
                       "' is not HOST:PORT; use e.g. 127.0.0.1:9464, [::1]:9464, or port 0 "
                       "for any free port");
  }

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* raw = nullptr;
  int status = getaddrinfo(parsed->host.empty() ? nullptr : parsed->host.c_str(),
                           parsed->port.c_str(), &hints, &raw);
  if (status != 0) {
    throw config_error(option_name + " " + host_port + ": cannot resolve host '" + parsed->host +
                       "' (getaddrinfo: " + gai_strerror(status) +
                       "); use an IP address of this machine such as 127.0.0.1");
  }
  AddrInfoPtr candidates(raw);

  const char* failed_call = "socket";
  int failed_errno = EADDRNOTAVAIL;
  for (addrinfo* candidate = candidates.get(); candidate != nullptr;
       candidate = candidate->ai_next) {
    UniqueFd fd(::socket(candidate->ai_family, candidate->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                        candidate->ai_protocol));
    if (!fd) {
      failed_call = "socket";
      failed_errno = errno;
      continue;
    }
    // A restarted worker must be able to rebind while old connections sit in TIME_WAIT.
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), candidate->ai_addr, candidate->ai_addrlen) != 0) {
      failed_call = "bind";
      failed_errno = errno;
      continue;
    }
    if (::listen(fd.get(), 128) != 0) {
      failed_call = "listen";
      failed_errno = errno;
      continue;
    }
    socket_ = std::move(fd);
    break;
  }
  if (!socket_) throw bind_error(option_name, host_port, *parsed, failed_call, failed_errno);

  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  if (getsockname(socket_.get(), reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
    throw bind_error(option_name, host_port, *parsed, "getsockname", errno);
  }
  address_ = format_address(bound, &port_);

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw bind_error(option_name, host_port, *parsed, "pipe2", errno);
  }
  wake_read_.reset(pipe_fds[0]);
  wake_write_.reset(pipe_fds[1]);
}

UniqueFd HttpListener::accept_client(bool non_blocking) const {
  int flags = SOCK_CLOEXEC | (non_blocking ? SOCK_NONBLOCK : 0);
  return UniqueFd(::accept4(socket_.get(), nullptr, nullptr, flags));
}

void HttpListener::wake() const {
  char byte = 1;
  // A full pipe already means "wake up", so a failed write loses nothing.
  [[maybe_unused]] auto written = ::write(wake_write_.get(), &byte, 1);
}

}  // namespace blobferry
