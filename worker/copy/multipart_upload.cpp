// One multipart upload on a target that is aborted unless completed, so no
// failure path (exception included) ever leaves orphaned parts behind.
#include "worker/copy/multipart_upload.h"

#include <utility>

#include <spdlog/spdlog.h>

#include "common/base/cancellation.h"

namespace blobferry {

MultipartUpload::MultipartUpload(ChunkedWriter& writer, std::string target_description, std::string key,
                                 std::string upload_id, const RetryPolicy& policy)
    : writer_(&writer),
      target_description_(std::move(target_description)),
      key_(std::move(key)),
      upload_id_(std::move(upload_id)),
      policy_(&policy) {}

MultipartUpload::MultipartUpload(MultipartUpload&& other) noexcept
    : writer_(other.writer_),
      target_description_(std::move(other.target_description_)),
      key_(std::move(other.key_)),
      upload_id_(std::move(other.upload_id_)),
      policy_(other.policy_),
      parts_(std::move(other.parts_)),
      open_(std::exchange(other.open_, false)) {}

MultipartUpload::~MultipartUpload() { abort(); }

void MultipartUpload::add_part(int number, std::string etag) {
  parts_.push_back(CompletedPart{number, std::move(etag)});
}

std::string MultipartUpload::complete() {
  std::string etag = writer_->complete_multipart(key_, upload_id_, parts_);
  open_ = false;
  return etag;
}

void MultipartUpload::abort() noexcept {
  if (!open_) return;
  open_ = false;
  // Logging and sleeping can throw too; none of it may escape a destructor.
  try {
    abort_with_retries();
  } catch (...) {
  }
}

void MultipartUpload::abort_with_retries() {
  // A cancelled copy still sends its abort (or the parts would stay behind),
  // but only once: the worker is waiting to join this thread.
  const bool stopping = CancellationToken::current_cancelled();
  const CancellationToken::Scope uncancelled(nullptr);
  try {
    if (stopping) {
      writer_->abort_multipart(key_, upload_id_);
    } else {
      policy_->run([&] { writer_->abort_multipart(key_, upload_id_); });
    }
  } catch (const Error& error) {
    spdlog::warn("abort_multipart {} on {} failed, its parts are left to the bucket's lifecycle rule: {}", key_,
                 target_description_, error.what());
  }
}

}  // namespace blobferry
