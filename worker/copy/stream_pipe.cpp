// A bounded byte pipe between a GET's write callback and a PUT's read callback,
// so one object streams source -> target with a fixed amount of memory.
#include "worker/copy/stream_pipe.h"

#include <algorithm>
#include <cstring>

#include "common/base/error.h"

namespace blobferry {

StreamPipe::StreamPipe(std::size_t capacity) : ring_(capacity, '\0') {}

void StreamPipe::write(std::string_view bytes) {
  std::unique_lock lock(mutex_);
  while (!bytes.empty()) {
    writable_.wait(lock, [this] { return aborted_ || used_ < ring_.size(); });
    if (aborted_) throw Error(ErrorKind::kTransient, FailureReason::kNetwork, "the upload stopped reading the stream");
    const std::size_t tail = (head_ + used_) % ring_.size();
    const std::size_t room = std::min(ring_.size() - used_, ring_.size() - tail);
    const std::size_t count = std::min(room, bytes.size());
    std::memcpy(ring_.data() + tail, bytes.data(), count);
    used_ += count;
    bytes.remove_prefix(count);
    readable_.notify_one();
  }
}

void StreamPipe::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  readable_.notify_all();
}

void StreamPipe::fail() {
  std::lock_guard lock(mutex_);
  failed_ = true;
  readable_.notify_all();
}

std::size_t StreamPipe::read(char* buf, std::size_t n) {
  std::unique_lock lock(mutex_);
  readable_.wait(lock, [this] { return failed_ || used_ > 0 || closed_; });
  if (failed_) throw Error(ErrorKind::kTransient, FailureReason::kNetwork, "the download feeding the stream failed");
  if (used_ == 0) return 0;  // closed and drained
  const std::size_t contiguous = std::min(used_, ring_.size() - head_);
  const std::size_t count = std::min(contiguous, n);
  std::memcpy(buf, ring_.data() + head_, count);
  head_ = (head_ + count) % ring_.size();
  used_ -= count;
  writable_.notify_one();
  return count;
}

void StreamPipe::abort() {
  std::lock_guard lock(mutex_);
  aborted_ = true;
  writable_.notify_all();
}

}  // namespace blobferry
