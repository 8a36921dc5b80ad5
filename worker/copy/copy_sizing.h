// Which requests a copy of a given size takes, within the engine's options and the target's size limits.
#pragma once

#include <cstdint>

#include "common/storage/size_limits.h"
#include "worker/copy/copy_engine.h"

namespace blobferry {

// Pure arithmetic (no I/O), so each decision is unit-tested with fixed limits:
// one PUT or multipart, the part size, CopyObject or UploadPartCopy, and the
// part size of a server-side multipart copy. `upload` is the target's
// ChunkedWriter's limits (SizeLimits::unlimited() for a target without one),
// `copy` its ServerSideCopier's.
class CopySizing {
 public:
  CopySizing(const CopyEngineOptions& options, const SizeLimits& upload, const SizeLimits& copy);

  // Objects up to this are read into memory and written with one PUT.
  std::uint64_t single_put_limit() const;
  // Whether one PUT (streamed) can carry the whole object.
  bool fits_single_put(std::uint64_t size) const;
  // Bytes per part of a streamed multipart copy: the configured size, raised
  // so the parts stay within max_parts, never above max_part_size. Throws
  // Error kPermanent "too_large" for an object no upload can hold.
  std::uint64_t part_size(std::uint64_t size) const;
  // Whether one CopyObject can copy it (the engine's threshold and the target's limit).
  bool fits_single_copy(std::uint64_t size) const;
  // Whether the target's CopyObject takes it at all (rewriting an object's
  // metadata in place, whatever the engine's threshold).
  bool copy_object_accepts(std::uint64_t size) const;
  // Bytes per UploadPartCopy range: the configured size, raised so the parts
  // stay within max_parts, never above the largest copy range or part. Throws
  // like part_size().
  std::uint64_t copy_part_size(std::uint64_t size) const;

 private:
  std::uint64_t parts_within_limits(std::uint64_t size, std::uint64_t wanted, std::uint64_t largest,
                                    const char* what) const;

  const CopyEngineOptions& options_;
  SizeLimits upload_;
  SizeLimits copy_;
};

}  // namespace blobferry
