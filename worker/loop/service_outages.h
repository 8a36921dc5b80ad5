// Services whose credentials expired for good: their jobs wait in the queue while other services' go on.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace blobferry {

class Error;

// A worker serves many services; one whose session token expired and whose
// storage.yml and environment hold no newer one cannot copy, but the others
// can. So that service goes "out": its jobs are handed back without counting
// an attempt, one log line says so, and every `recheck` one job of it is let
// through as a probe, which makes the S3 client read the credentials again
// (S3Storage reloads them on ExpiredToken): when it runs, the service is back
// (one more log line). Thread-safe; no I/O but the two log lines.
class ServiceOutages {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // clock defaults to std::chrono::steady_clock::now (tests pass a fixed one).
  explicit ServiceOutages(std::chrono::milliseconds recheck, Clock clock = {});

  // Whether a job of these services may run now: not while either is out,
  // except for the one probe a service gets when its recheck is due.
  bool admits(const std::string& source, const std::string& target);
  // True when `error` is expired credentials of a service: it is out from now
  // (logged when it just went out) and the job must wait. False for any other error.
  bool took_out(const Error& error);
  // A job of these services ran without meeting expired credentials: a
  // service that was out and probing is back.
  void ran(const std::string& source, const std::string& target);

  bool out(const std::string& service) const;
  // How long a waiting job stays away before it is fetched again.
  std::chrono::milliseconds recheck() const { return recheck_; }

 private:
  struct Outage {
    std::chrono::steady_clock::time_point next_probe;
    bool probing = false;  // a probe job was let through and has not come back
  };

  bool admits_locked(const std::string& service, std::chrono::steady_clock::time_point now);
  void back_locked(const std::string& service);

  std::chrono::milliseconds recheck_;
  Clock clock_;
  mutable std::mutex mutex_;
  std::map<std::string, Outage> out_;
};

}  // namespace blobferry
