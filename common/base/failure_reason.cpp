// The closed set of failure reason classes, with the one table that names them
// for reports, metrics labels and `requeue --reason`.
#include "common/base/failure_reason.h"

#include <array>

#include "common/base/encoding.h"
#include "common/base/error.h"

namespace blobferry {
namespace {

using R = FailureReason;

// The one table. retry_can_help says whether requeuing without a fix may
// succeed; whether a retry happens in place is the Error's kind's call.
constexpr std::array kTable{
    FailureReasonInfo{R::kNotFound, "not_found", "the object is not on the source (or the upload is gone)", false},
    FailureReasonInfo{R::kAccessDenied, "access_denied", "the credentials may not read or write it: fix the policy", false},
    FailureReasonInfo{R::kThrottled, "throttled", "the service asked to slow down (429, 503 SlowDown)", true},
    FailureReasonInfo{R::kServerError, "server_error", "the service answered 5xx", true},
    FailureReasonInfo{R::kNetwork, "network", "connection failed, reset or timed out", true},
    FailureReasonInfo{R::kIntegrity, "integrity", "size or checksum differed after the transfer", true},
    FailureReasonInfo{R::kConfig, "config", "bad input or configuration: fix it, then retry", false},
    FailureReasonInfo{R::kBadRequest, "bad_request", "the service refused the request (400)", false},
    FailureReasonInfo{R::kClientError, "client_error", "the service refused the request (other 4xx)", false},
    FailureReasonInfo{R::kUnsupported, "unsupported", "the storage does not support the operation", false},
    FailureReasonInfo{R::kBadResponse, "bad_response", "the service sent a reply that does not parse", true},
    FailureReasonInfo{R::kBadMetadata, "bad_metadata", "metadata the target cannot store", false},
    FailureReasonInfo{R::kNoSuchUpload, "no_such_upload", "the multipart upload is gone", true},
    FailureReasonInfo{R::kInvalidKey, "invalid_key", "a key the storage cannot hold (escapes a Disk root, too long)", false},
    FailureReasonInfo{R::kInvalidRange, "invalid_range", "a byte range outside the object", false},
    FailureReasonInfo{R::kInvalidPart, "invalid_part", "a multipart part list the storage refused", false},
    FailureReasonInfo{R::kInvalidDigest, "invalid_digest", "a Content-MD5 that is not a base64 MD5", false},
    FailureReasonInfo{R::kInvalidChecksum, "invalid_checksum", "the blob table's checksum is not a base64 MD5", false},
    FailureReasonInfo{R::kMetadataTooLarge, "metadata_too_large", "more metadata than the storage keeps", false},
    FailureReasonInfo{R::kTooLarge, "too_large", "larger than one request may carry", false},
    FailureReasonInfo{R::kKeyConflict, "key_conflict", "a key whose folder is a file on a Disk target, or the reverse", false},
    FailureReasonInfo{R::kDiskFull, "disk_full", "the target filesystem is full: free space, then requeue", false},
    FailureReasonInfo{R::kIo, "io", "a filesystem call failed", true},
    FailureReasonInfo{R::kDatabase, "database", "a PostgreSQL call failed", true},
    FailureReasonInfo{R::kRedis, "redis", "Redis refused a command", true},
    FailureReasonInfo{R::kRedisReply, "redis_reply", "Redis sent a reply of an unexpected type", false},
    FailureReasonInfo{R::kMalformedJob, "malformed_job", "a queued job that does not parse", false},
    FailureReasonInfo{R::kMalformed, "malformed", "a dead-listed payload that is not a job", false},
    FailureReasonInfo{R::kPoison, "poison", "the job's worker died too many times while running it", true},
    FailureReasonInfo{R::kBookkeepingLost, "bookkeeping_lost", "blobferry's own row for the file is gone", false},
    FailureReasonInfo{R::kHmacFailed, "hmac_failed", "OpenSSL could not compute Paperclip's :hash", false},
    FailureReasonInfo{R::kRandomFailed, "random_failed", "no cryptographic random source for blob keys", false},
    FailureReasonInfo{R::kInternal, "internal", "a library call failed (out of memory or a bug)", false},
    FailureReasonInfo{R::kCancelled, "cancelled", "the worker stopped while the copy ran; its job went back to the queue", true},
    FailureReasonInfo{R::kSourceChanged, "source_changed", "the source object changed during a server-side copy", true},
    FailureReasonInfo{R::kCopyRefused, "copy_refused", "the service refused a server-side copy; the bytes are streamed instead", false},
    FailureReasonInfo{R::kCredentialsExpired, "credentials_expired", "the service's session token expired and no newer one could be read: renew it in storage.yml or the environment", true},
    FailureReasonInfo{R::kUnknown, "unknown", "a failure record without a reason", false},
};

// The table is indexed by the enum: a row out of order is a compile error.
constexpr bool table_in_enum_order() {
  for (std::size_t i = 0; i < kTable.size(); ++i) {
    if (static_cast<std::size_t>(kTable[i].reason) != i) return false;
  }
  return static_cast<std::size_t>(R::kUnknown) + 1 == kTable.size();
}
static_assert(table_in_enum_order(), "kTable rows must follow the FailureReason enum");

}  // namespace

std::span<const FailureReasonInfo> failure_reasons() { return kTable; }

const FailureReasonInfo& info(FailureReason reason) { return kTable.at(static_cast<std::size_t>(reason)); }

std::string_view to_string(FailureReason reason) { return info(reason).name; }

std::optional<FailureReason> parse_failure_reason(std::string_view name) {
  for (const auto& row : kTable) {
    if (row.name == name) return row.reason;
  }
  return std::nullopt;
}

std::string failure_reason_names() {
  std::string out;
  for (const auto& row : kTable) {
    if (!out.empty()) out += ", ";
    out += row.name;
  }
  return out;
}

FailureReason failure_reason_option(std::string_view name, std::string_view option) {
  if (auto reason = parse_failure_reason(name)) return *reason;
  throw config_error(std::string(option) + " '" + printable(name) + "' is not a failure reason: use one of " +
                     failure_reason_names());
}

}  // namespace blobferry
