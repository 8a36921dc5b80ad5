// Idle libcurl easy handles kept for reuse, so a request does not pay for a fresh handle's buffers.
#pragma once

#include <cstddef>
#include <mutex>
#include <vector>

#include "common/storage/s3/curl_handles.h"

namespace blobferry {

// Thread-safe. A handle comes back reset (its options dropped); one used
// with curl_easy_perform keeps its live connection and TLS session too.
class CurlHandlePool {
 public:
  explicit CurlHandlePool(std::size_t max_idle) : max_idle_(max_idle) {}

  // An idle handle, or a fresh one; throws Error when libcurl cannot make one.
  CurlEasyPtr take();
  // Keeps it for the next take() unless max_idle are kept already.
  void give_back(CurlEasyPtr handle);

 private:
  std::size_t max_idle_;
  std::mutex mutex_;
  std::vector<CurlEasyPtr> idle_;
};

}  // namespace blobferry
