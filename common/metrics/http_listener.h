// A TCP listening socket bound from "HOST:PORT", with a wake-up pipe to stop a poll() loop.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/base/unique_fd.h"

namespace blobferry {

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
  // An accepted client, or an invalid UniqueFd when none is pending.
  UniqueFd accept_client(bool non_blocking) const;

  // Readable after wake(); a poll() loop watches it beside fd() so another
  // thread can interrupt it at once. Safe to call from any thread.
  int wake_fd() const { return wake_read_.get(); }
  void wake() const;

  // Stops listening (new clients are refused); port() and address() remain.
  // Call it only once no thread polls fd() any more.
  void close() { socket_.reset(); }

 private:
  UniqueFd socket_;
  UniqueFd wake_read_;
  UniqueFd wake_write_;
  int port_ = 0;
  std::string address_;
};

}  // namespace blobferry
