// The few error kinds every library failure is translated into at its boundary.
#include "common/base/error.h"

namespace blobferry {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kTransient: return "transient";
    case ErrorKind::kThrottled: return "throttled";
    case ErrorKind::kIntegrity: return "integrity";
    case ErrorKind::kPermanent: return "permanent";
    case ErrorKind::kConfig: return "config";
  }
  return "unknown";
}

Error::Error(ErrorKind kind, FailureReason reason, const std::string& message, int http_status,
             std::chrono::milliseconds retry_after)
    : std::runtime_error(message),
      kind_(kind),
      reason_(reason),
      http_status_(http_status),
      retry_after_(retry_after) {}

Error config_error(const std::string& message) {
  return Error(ErrorKind::kConfig, FailureReason::kConfig, message);
}

}  // namespace blobferry
