// A bounded byte pipe between a GET's write callback and a PUT's read callback,
// so one object streams source -> target with a fixed amount of memory.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "common/storage/byte_source.h"

namespace blobferry {

// One writer thread, one reader thread. The writer blocks while the pipe is
// full, the reader while it is empty; either side can end it early so the
// other never waits forever.
class StreamPipe {
 public:
  explicit StreamPipe(std::size_t capacity);

  // Copies all of bytes in, waiting for room. Throws Error kTransient when the
  // reader gave up (abort()).
  void write(std::string_view bytes);
  // The writer is done: the reader sees the end once the pipe is drained.
  void close();
  // The writer failed: the reader's next read throws.
  void fail();

  // Up to n bytes, waiting for some; 0 only at the end. Throws Error
  // kTransient when the writer failed.
  std::size_t read(char* buf, std::size_t n);
  // The reader gave up: a blocked or later write throws.
  void abort();

 private:
  std::mutex mutex_;
  std::condition_variable readable_;
  std::condition_variable writable_;
  std::string ring_;
  std::size_t head_ = 0;  // next byte to read
  std::size_t used_ = 0;
  bool closed_ = false;
  bool failed_ = false;
  bool aborted_ = false;
};

// The reading end as the body of a PUT of a known size. It cannot rewind: a
// resend means the whole copy starts again, which the engine's retry does.
class PipeByteSource : public ByteSource {
 public:
  PipeByteSource(StreamPipe& pipe, std::uint64_t size) : pipe_(pipe), size_(size) {}
  std::uint64_t size() const override { return size_; }
  std::size_t read(char* buf, std::size_t n) override { return pipe_.read(buf, n); }
  bool rewind() override { return false; }

 private:
  StreamPipe& pipe_;
  std::uint64_t size_;
};

}  // namespace blobferry
