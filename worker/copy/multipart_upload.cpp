// One multipart upload on a target that is aborted unless completed, so no
// failure path (exception included) ever leaves orphaned parts behind.
#include "worker/copy/multipart_upload.h"

#include <utility>

#include <spdlog/spdlog.h>

namespace blobferry {

MultipartUpload::MultipartUpload(Storage& target, std::string key, std::string upload_id,
                                 const RetryPolicy& policy)
    : target_(&target), key_(std::move(key)), upload_id_(std::move(upload_id)), policy_(&policy) {}

MultipartUpload::MultipartUpload(MultipartUpload&& other) noexcept
    : target_(other.target_),
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
  std::string etag = target_->complete_multipart(key_, upload_id_, parts_);
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
  try {
    policy_->run([&] { target_->abort_multipart(key_, upload_id_); });
  } catch (const Error& error) {
    spdlog::warn("abort_multipart {} on {} failed, its parts are left to the bucket's lifecycle rule: {}", key_,
                 target_->describe(), error.what());
  }
}

}  // namespace blobferry
