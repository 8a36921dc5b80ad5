// A TCP listening socket bound from "HOST:PORT", with a wake-up pipe to stop a poll() loop.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace blobferry {

// Owns one POSIX file descriptor and closes it exactly once; move-only. It
// plays the part a unique_ptr deleter plays for C handles (an int is not a
// pointer), so it lives beside the one class that hands descriptors out.
class OwnedFd {
 public:
  OwnedFd() = default;
  explicit OwnedFd(int fd) : fd_(fd) {}
  ~OwnedFd() { reset(); }
  OwnedFd(OwnedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  OwnedFd& operator=(OwnedFd&& other) noexcept;
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  void reset(int fd = -1);
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

// "127.0.0.1:9464" -> {"127.0.0.1", "9464"}; "[::1]:0" -> {"::1", "0"};
// ":9464" -> {"", "9464"} (every interface). nullopt unless the port is a
// decimal number from 0 to 65535 and the host has no stray ':' or brackets.
struct ListenAddress {
  std::string host;
  std::string port;
};
std::optional<ListenAddress> parse_listen_address(std::string_view host_port);

class HttpListener {
 public:
  // Binds and listens on host_port (port 0 picks a free one). option_name
  // ("--metrics-addr") is what the user typed, so errors can name it. Throws
  // Error of kind kConfig naming the address and the fix when it cannot be
  // parsed, resolved or bound (port in use, address not on this machine).
  HttpListener(const std::string& host_port, const std::string& option_name);

  HttpListener(HttpListener&&) = default;
  HttpListener& operator=(HttpListener&&) = default;

  int port() const { return port_; }
  // The address actually bound, e.g. "127.0.0.1:41234" or "[::1]:41234".
  const std::string& address() const { return address_; }

  // The listening socket (non-blocking) for poll().
  int fd() const { return socket_.get(); }
  // An accepted client, or an invalid OwnedFd when none is pending.
  OwnedFd accept_client(bool non_blocking) const;

  // Readable after wake(); a poll() loop watches it beside fd() so another
  // thread can interrupt it at once. Safe to call from any thread.
  int wake_fd() const { return wake_read_.get(); }
  void wake() const;

  // Stops listening (new clients are refused); port() and address() remain.
  // Call it only once no thread polls fd() any more.
  void close() { socket_.reset(); }

 private:
  OwnedFd socket_;
  OwnedFd wake_read_;
  OwnedFd wake_write_;
  int port_ = 0;
  std::string address_;
};

}  // namespace blobferry
