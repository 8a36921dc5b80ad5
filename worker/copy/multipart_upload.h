// One multipart upload on a target that is aborted unless completed, so no
// failure path (exception included) ever leaves orphaned parts behind.
#pragma once

#include <string>
#include <vector>

#include "common/base/retry_policy.h"
#include "common/storage/chunked_writer.h"

namespace blobferry {

// Move-only. Destroying it before complete() succeeded aborts the upload,
// retrying transient failures of the abort per the policy.
class MultipartUpload {
 public:
  // target_description names the storage in a failed abort's log line.
  MultipartUpload(ChunkedWriter& writer, std::string target_description, std::string key, std::string upload_id,
                  const RetryPolicy& policy);
  MultipartUpload(MultipartUpload&& other) noexcept;
  MultipartUpload& operator=(MultipartUpload&&) = delete;
  MultipartUpload(const MultipartUpload&) = delete;
  MultipartUpload& operator=(const MultipartUpload&) = delete;
  ~MultipartUpload();

  const std::string& key() const { return key_; }
  const std::string& upload_id() const { return upload_id_; }

  // Records a part's etag after its upload succeeded.
  void add_part(int number, std::string etag);
  // One try of complete_multipart with the recorded parts; after it returns
  // the upload is no longer aborted on destruction. Throws Error.
  std::string complete();
  // Aborts now; never throws (a failed abort is logged, the parts then await
  // the bucket's lifecycle rule).
  void abort() noexcept;

 private:
  void abort_with_retries();

  ChunkedWriter* writer_;
  std::string target_description_;
  std::string key_;
  std::string upload_id_;
  const RetryPolicy* policy_;
  std::vector<CompletedPart> parts_;
  bool open_ = true;
};

}  // namespace blobferry
