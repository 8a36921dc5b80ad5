// A sized, rewindable stream of bytes: the body of a PUT or an uploaded part.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace blobferry {

class ByteSource {
 public:
  virtual ~ByteSource() = default;

  // Total bytes the source yields; sent as Content-Length.
  virtual std::uint64_t size() const = 0;

  // Copies up to n bytes into buf; returns 0 only at the end. Throws Error
  // when the underlying read fails.
  virtual std::size_t read(char* buf, std::size_t n) = 0;

  // Starts again at the first byte (libcurl asks for this when it must resend
  // a body). Returns false when the source cannot.
  virtual bool rewind() = 0;
};

// A source over bytes someone else owns and keeps alive during the transfer.
class MemoryByteSource : public ByteSource {
 public:
  explicit MemoryByteSource(std::string_view bytes) : bytes_(bytes) {}
  std::uint64_t size() const override { return bytes_.size(); }
  std::size_t read(char* buf, std::size_t n) override;
  bool rewind() override {
    offset_ = 0;
    return true;
  }

 private:
  std::string_view bytes_;
  std::size_t offset_ = 0;
};

}  // namespace blobferry
