// Which requests a copy of a given size takes, within the engine's options and the target's size limits.
#include "worker/copy/copy_sizing.h"

#include <algorithm>
#include <string>

#include "common/base/error.h"

namespace blobferry {
namespace {

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return a / b + (a % b != 0); }

}  // namespace

CopySizing::CopySizing(const CopyEngineOptions& options, const SizeLimits& upload, const SizeLimits& copy)
    : options_(options), upload_(upload), copy_(copy) {}

std::uint64_t CopySizing::single_put_limit() const {
  return std::min(options_.multipart_threshold.value_or(options_.part_size), upload_.max_single_put);
}

bool CopySizing::fits_single_put(std::uint64_t size) const { return size <= upload_.max_single_put; }

std::uint64_t CopySizing::part_size(std::uint64_t size) const {
  return parts_within_limits(size, options_.part_size, upload_.max_part_size, "parts");
}

bool CopySizing::fits_single_copy(std::uint64_t size) const {
  return size <= std::min(options_.server_side_single_copy_limit, copy_.max_single_copy);
}

bool CopySizing::copy_object_accepts(std::uint64_t size) const { return size <= copy_.max_single_copy; }

std::uint64_t CopySizing::copy_part_size(std::uint64_t size) const {
  // Never below the streamed part size: a test's tiny range size must not
  // turn into thousands of requests on a real object.
  const std::uint64_t wanted = std::max(options_.server_side_part_size, options_.part_size);
  return parts_within_limits(size, wanted, std::min(copy_.max_single_copy, upload_.max_part_size), "copied parts");
}

// `wanted` raised to fit the object in max_parts, capped at `largest`.
std::uint64_t CopySizing::parts_within_limits(std::uint64_t size, std::uint64_t wanted, std::uint64_t largest,
                                              const char* what) const {
  const std::uint64_t max_parts = std::max<std::uint64_t>(upload_.max_parts, 1);
  const std::uint64_t part = std::min(std::max(wanted, ceil_div(size, max_parts)), largest);
  if (part == 0 || ceil_div(size, part) > max_parts) {
    throw Error(ErrorKind::kPermanent, FailureReason::kTooLarge,
                "object of " + std::to_string(size) + " bytes needs more than " + std::to_string(max_parts) + " " +
                    what + " of at most " + std::to_string(largest) + " bytes, the target's limits");
  }
  return part;
}

}  // namespace blobferry
