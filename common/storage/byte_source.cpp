// A sized, rewindable stream of bytes: the body of a PUT or an uploaded part.
#include "common/storage/byte_source.h"

#include <algorithm>
#include <cstring>

namespace blobferry {

std::size_t MemoryByteSource::read(char* buf, std::size_t n) {
  const std::size_t count = std::min(n, bytes_.size() - offset_);
  std::memcpy(buf, bytes_.data() + offset_, count);
  offset_ += count;
  return count;
}

}  // namespace blobferry
