// Idle libcurl easy handles kept for reuse, so a request does not pay for a fresh handle's buffers.
#include "common/storage/s3/curl_handle_pool.h"

#include <utility>

namespace blobferry {

CurlEasyPtr CurlHandlePool::take() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      CurlEasyPtr handle = std::move(idle_.back());
      idle_.pop_back();
      return handle;
    }
  }
  return make_curl_easy();
}

void CurlHandlePool::give_back(CurlEasyPtr handle) {
  curl_easy_reset(handle.get());
  std::lock_guard lock(mutex_);
  if (idle_.size() < max_idle_) idle_.push_back(std::move(handle));
}

}  // namespace blobferry
