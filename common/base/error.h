// The few error kinds every library failure is translated into at its boundary.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>

#include "common/base/failure_reason.h"

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
  // reason is the class recorded with failures and matched by `requeue
  // --reason` (its names: failure_reason.cpp); message is one line for humans
  // and must never contain a credential.
  Error(ErrorKind kind, FailureReason reason, const std::string& message, int http_status = 0,
        std::chrono::milliseconds retry_after = std::chrono::milliseconds{0});

  ErrorKind kind() const { return kind_; }
  FailureReason failure_reason() const { return reason_; }
  // The reason's stable name, as Redis, reports and metrics labels hold it.
  std::string reason() const { return std::string(to_string(reason_)); }
  int http_status() const { return http_status_; }
  std::chrono::milliseconds retry_after() const { return retry_after_; }
  // The storage.yml service the error is about, where that decides what a
  // caller does (expired credentials stop only that service's jobs); empty otherwise.
  const std::string& service() const { return service_; }
  Error& about_service(std::string name) {
    service_ = std::move(name);
    return *this;
  }
  bool retryable() const {
    return kind_ == ErrorKind::kTransient || kind_ == ErrorKind::kThrottled ||
           kind_ == ErrorKind::kIntegrity;
  }

 private:
  ErrorKind kind_;
  FailureReason reason_;
  int http_status_;
  std::chrono::milliseconds retry_after_;
  std::string service_;
};

// Shorthand for the configuration errors that end a command with exit code 2.
Error config_error(const std::string& message);

}  // namespace blobferry
