// What a storage call asks before it sends a request or moves body bytes: the budget of its service and direction.
#pragma once

#include <chrono>
#include <cstdint>

namespace blobferry {

// Called by GatedStorage before each request and per chunk of body bytes;
// implementations block until the budget allows (throwing cancelled_error
// when the calling thread's CancellationToken is cancelled meanwhile).
class RequestGate {
 public:
  virtual ~RequestGate() = default;
  virtual void acquire_request() = 0;
  virtual void acquire_bytes(std::uint64_t bytes) = 0;
  // The service answered 503 SlowDown, 429 or 503 ServiceUnavailable.
  virtual void report_throttled(std::chrono::milliseconds retry_after) = 0;
};

}  // namespace blobferry
