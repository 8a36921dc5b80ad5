// The largest requests a storage service accepts: one PUT, one part, the part count, one server-side copy.
#pragma once

#include <cstdint>
#include <limits>

namespace blobferry {

// Bytes (max_parts: parts). The defaults are AWS S3's documented figures, the
// API every S3-compatible service copies, so a ChunkedWriter or
// ServerSideCopier that says nothing keeps the engine within S3's limits; an
// S3 service answers its provider's row (provider_profile.h), and a storage
// without multipart (Disk) is never asked.
struct SizeLimits {
  static constexpr std::uint64_t kUnlimited = std::numeric_limits<std::uint64_t>::max();
  static constexpr std::uint64_t kGiB = 1024ULL * 1024 * 1024;

  std::uint64_t max_single_put = 5 * kGiB;   // largest PutObject body
  std::uint64_t max_part_size = 5 * kGiB;    // largest UploadPart (and UploadPartCopy range)
  std::uint64_t max_parts = 10'000;          // parts of one multipart upload
  std::uint64_t max_single_copy = 5 * kGiB;  // largest CopyObject source (and UploadPartCopy range)

  // What a storage that takes any size in one write (Disk) is held to.
  static constexpr SizeLimits unlimited() { return {kUnlimited, kUnlimited, kUnlimited, kUnlimited}; }
};

}  // namespace blobferry
