// Reusable byte buffers, one per copy in flight, so memory stays at
// concurrency × part size and small copies do not allocate every time.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace blobferry {

// Thread-safe. A buffer grows to what its copy needs and keeps that capacity
// for the next lease, unless it grew past retain_limit (a rare oversized
// part), which is then freed rather than kept.
class PartBufferPool {
 public:
  // Move-only handle to one buffer; returns it to the pool, emptied, on destruction.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

    std::string& buffer() { return *buffer_; }

   private:
    friend class PartBufferPool;
    Lease(PartBufferPool* pool, std::unique_ptr<std::string> buffer);
    void release();

    PartBufferPool* pool_;
    std::unique_ptr<std::string> buffer_;
  };

  explicit PartBufferPool(std::size_t retain_limit) : retain_limit_(retain_limit) {}
  PartBufferPool(const PartBufferPool&) = delete;
  PartBufferPool& operator=(const PartBufferPool&) = delete;

  // The buffer is empty; its capacity is whatever an earlier lease left.
  Lease acquire();

 private:
  void give_back(std::unique_ptr<std::string> buffer);

  const std::size_t retain_limit_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<std::string>> idle_;
};

}  // namespace blobferry
