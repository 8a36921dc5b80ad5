// The closed set of failure reason classes, with the one table that names them
// for reports, metrics labels and `requeue --reason`.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace blobferry {

// Stored in Redis and reports by name (failure_reasons()), so a name, once
// written, never changes; new reasons are added at the end of the table.
enum class FailureReason {
  kNotFound,
  kAccessDenied,
  kThrottled,
  kServerError,
  kNetwork,
  kIntegrity,
  kConfig,
  kBadRequest,
  kClientError,
  kUnsupported,
  kBadResponse,
  kBadMetadata,
  kNoSuchUpload,
  kInvalidKey,
  kInvalidRange,
  kInvalidPart,
  kInvalidDigest,
  kInvalidChecksum,
  kMetadataTooLarge,
  kTooLarge,
  kKeyConflict,
  kDiskFull,
  kIo,
  kDatabase,
  kRedis,
  kRedisReply,
  kMalformedJob,
  kMalformed,
  kPoison,
  kBookkeepingLost,
  kHmacFailed,
  kRandomFailed,
  kInternal,
  kCancelled,
  kSourceChanged,
  kCopyRefused,
  kCredentialsExpired,
  kUnknown,
};

struct FailureReasonInfo {
  FailureReason reason;
  std::string_view name;         // the stable string: Redis, reports, metrics, --reason
  std::string_view description;  // for humans: what it means, what fixes it
  bool retry_can_help;           // whether a later retry, unchanged, may succeed
};

// Every reason, in the table's order.
std::span<const FailureReasonInfo> failure_reasons();
const FailureReasonInfo& info(FailureReason reason);
std::string_view to_string(FailureReason reason);
std::optional<FailureReason> parse_failure_reason(std::string_view name);
// For `requeue --reason`: the reason named, or a config Error (exit 2) that
// lists the known names.
FailureReason failure_reason_option(std::string_view name, std::string_view option);
// "not_found, access_denied, …": every name, for help texts and errors.
std::string failure_reason_names();

}  // namespace blobferry
