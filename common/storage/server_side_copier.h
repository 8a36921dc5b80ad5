// An optional Storage capability: copying an object the service itself can read, bytes never leaving it.
#pragma once

#include <string>

#include "common/storage/storage.h"

namespace blobferry {

// Implemented by backends whose protocol can copy inside the service (S3's
// CopyObject and UploadPartCopy); callers ask Storage::capabilities(), then
// can_copy_from(), and stream the bytes when either says no.
class ServerSideCopier {
 public:
  virtual ~ServerSideCopier() = default;

  // Whether one request here can read `source` (for S3: same endpoint,
  // region and credentials).
  virtual bool can_copy_from(const Storage& source) const = 0;
  // Keeps the source's metadata; returns the new etag. Throws Error (reason
  // "unsupported" when can_copy_from(source) is false).
  virtual std::string copy_object(const Storage& source, const std::string& source_key,
                                  const std::string& key) = 0;
  // Fills one part of a multipart upload begun with this storage's
  // ChunkedWriter from a source range; returns the part's etag. Throws Error.
  virtual std::string copy_part(const Storage& source, const std::string& source_key, const std::string& key,
                                const std::string& upload_id, int part_number, ByteRange range) = 0;
};

}  // namespace blobferry
