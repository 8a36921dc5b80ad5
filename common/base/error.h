// The few error kinds every library failure is translated into at its boundary.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

namespace blobferry {

// Each kind answers one question for the caller: can a retry help, and how?
enum class ErrorKind {
  kTransient,  // 5xx, timeout, connection reset, Redis gone: retry with backoff
  kThrottled,  // 429, 503 SlowDown: retry, honouring retry_after()
  kIntegrity,  // size or checksum mismatch after a transfer: retry a few times
  kPermanent,  // 400, 403, 404 and the like: a retry cannot help
  kConfig,     // bad input or configuration: stop, tell the user (exit 2)
};

const char* to_string(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  // reason is a short stable class recorded with failures and used by
  // `requeue --reason` (e.g. "not_found", "access_denied", "throttled",
  // "server_error", "network", "integrity", "config"); message is one line for
  // humans and must never contain a credential.
  Error(ErrorKind kind, std::string reason, const std::string& message, int http_status = 0,
        std::chrono::milliseconds retry_after = std::chrono::milliseconds{0});

  ErrorKind kind() const { return kind_; }
  const std::string& reason() const { return reason_; }
  int http_status() const { return http_status_; }
  std::chrono::milliseconds retry_after() const { return retry_after_; }
  bool retryable() const {
    return kind_ == ErrorKind::kTransient || kind_ == ErrorKind::kThrottled ||
           kind_ == ErrorKind::kIntegrity;
  }

 private:
  ErrorKind kind_;
  std::string reason_;
  int http_status_;
  std::chrono::milliseconds retry_after_;
};

// Shorthand for the configuration errors that end a command with exit code 2.
Error config_error(const std::string& message);

}  // namespace blobferry
