// Reusable byte buffers, one per copy in flight, so memory stays at
// concurrency × part size and small copies do not allocate every time.
#include "worker/copy/part_buffer_pool.h"

#include <utility>

namespace blobferry {

PartBufferPool::Lease::Lease(PartBufferPool* pool, std::unique_ptr<std::string> buffer)
    : pool_(pool), buffer_(std::move(buffer)) {}

PartBufferPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)), buffer_(std::move(other.buffer_)) {}

PartBufferPool::Lease& PartBufferPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    pool_ = std::exchange(other.pool_, nullptr);
    buffer_ = std::move(other.buffer_);
  }
  return *this;
}

PartBufferPool::Lease::~Lease() { release(); }

void PartBufferPool::Lease::release() {
  if (pool_ && buffer_) pool_->give_back(std::move(buffer_));
  pool_ = nullptr;
}

PartBufferPool::Lease PartBufferPool::acquire() {
  std::unique_ptr<std::string> buffer;
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      buffer = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!buffer) buffer = std::make_unique<std::string>();
  return Lease(this, std::move(buffer));
}

void PartBufferPool::give_back(std::unique_ptr<std::string> buffer) {
  if (buffer->capacity() > retain_limit_) return;  // freed here, outside the lock
  buffer->clear();
  try {
    std::lock_guard lock(mutex_);
    idle_.push_back(std::move(buffer));
  } catch (...) {
    // Only push_back's allocation can throw; losing a buffer just costs a reallocation later.
  }
}

}  // namespace blobferry
