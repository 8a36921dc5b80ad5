// An optional Storage capability: writing one object in numbered parts (S3's multipart upload).
#pragma once

#include <string>
#include <vector>

#include "common/storage/size_limits.h"
#include "common/storage/storage.h"

namespace blobferry {

// Only a backend whose protocol has it implements this (S3-compatible ones);
// callers ask Storage::capabilities() and stream one put() when it is absent,
// so no backend has to emulate parts it does not have.
//
// create, upload parts (1-based numbers), then complete or abort. complete
// returns the final etag. Each throws Error; the caller aborts on failure so no
// parts are left behind. Implementations are thread-safe like their Storage.
class ChunkedWriter {
 public:
  virtual ~ChunkedWriter() = default;

  virtual std::string create_multipart(const std::string& key, const PutOptions& options) = 0;
  virtual std::string upload_part(const std::string& key, const std::string& upload_id, int part_number,
                                  ByteSource& body, const std::string& content_md5) = 0;
  virtual std::string complete_multipart(const std::string& key, const std::string& upload_id,
                                         const std::vector<CompletedPart>& parts) = 0;
  virtual void abort_multipart(const std::string& key, const std::string& upload_id) = 0;
  // The largest single PUT and part, and the most parts, this service takes:
  // callers choose between one PUT and multipart, and size parts, by these.
  // S3's figures unless overridden (S3Storage answers its provider's).
  virtual SizeLimits size_limits() const { return {}; }
  // The parts the server holds for an open upload, by ascending number (S3's
  // ListParts, every page): what a resumed upload need not send again. Throws
  // Error of reason "not_found" or "no_such_upload" when the upload is gone
  // (aborted, expired by a lifecycle rule).
  virtual std::vector<CompletedPart> list_parts(const std::string& key, const std::string& upload_id) = 0;
};

}  // namespace blobferry
