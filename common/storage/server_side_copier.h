// An optional Storage capability: copying an object the service itself can read, bytes never leaving it.
#pragma once

#include <optional>
#include <string>

#include "common/storage/size_limits.h"
#include "common/storage/storage.h"

namespace blobferry {

// What a server-side copy may add to the plain request.
struct CopyOptions {
  // Unquoted; when set, the copy happens only while the source still has this
  // ETag, and a changed source throws Error reason "source_changed".
  std::string source_etag;
  // copy_object only: replaces the source's headers with these; nullopt keeps them.
  std::optional<Metadata> metadata;
};

// Implemented by backends whose protocol can copy inside the service (S3's
// CopyObject and UploadPartCopy); callers ask Storage::capabilities(), then
// can_copy_from(), and stream the bytes when either says no.
class ServerSideCopier {
 public:
  virtual ~ServerSideCopier() = default;

  // Whether one request here can read `source` (for S3: same endpoint,
  // region and credentials).
  virtual bool can_copy_from(const Storage& source) const = 0;
  // Keeps the source's metadata unless options.metadata; returns the new etag. Throws Error (reason
  // "unsupported" when can_copy_from(source) is false).
  virtual std::string copy_object(const Storage& source, const std::string& source_key,
                                  const std::string& key, const CopyOptions& options = {}) = 0;
  // Fills one part of a multipart upload begun with this storage's
  // ChunkedWriter from a source range; returns the part's etag. Throws Error.
  // Both throw FailureReason::kCopyRefused when the service refuses the copy
  // itself (across buckets, clusters or regions, not implemented): the caller
  // streams the object instead of failing it.
  virtual std::string copy_part(const Storage& source, const std::string& source_key, const std::string& key,
                                const std::string& upload_id, int part_number, ByteRange range,
                                const CopyOptions& options = {}) = 0;
  // max_single_copy is the largest copy_object source and copy_part range;
  // S3's figures unless overridden (S3Storage answers its provider's).
  virtual SizeLimits size_limits() const { return {}; }
};

}  // namespace blobferry
