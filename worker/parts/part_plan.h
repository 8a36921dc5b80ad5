// How a giant object is cut into part jobs: part size and count, each part's range, the jobs themselves.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/queue/job.h"
#include "common/storage/storage.h"

namespace blobferry {

// Pure arithmetic (no I/O), so every edge is unit-tested: S3 wants parts of at
// least 5 MiB (except the last) and at most 10,000 of them.
class PartPlan {
 public:
  static constexpr std::uint64_t kMinPartSize = 5ULL * 1024 * 1024;

  // The plan for `size` bytes in parts of about `wanted_part_size`: raised to
  // S3's minimum, and as far as needed to stay within kMaxUploadParts.
  // Throws Error(kConfig) when size is 0.
  PartPlan(std::uint64_t size, std::uint64_t wanted_part_size);
  // A plan a part job carries (already validated by decode_job).
  static PartPlan of(const Job& part_job);

  std::uint64_t size() const { return size_; }
  std::uint64_t part_size() const { return part_size_; }
  int count() const { return count_; }
  // The inclusive byte range of part `number` (1-based).
  ByteRange range(int number) const;

  // One part job per number of `numbers`, for the one object of `copy_job`,
  // its size set to the plan's; ids are left empty (push assigns them).
  std::vector<Job> jobs(const Job& copy_job, const std::string& upload_id, const std::string& source_etag,
                        const std::vector<int>& numbers) const;
  // The copy job that starts the object over: what a part job turns back into
  // when its upload is gone or its source changed.
  static Job copy_job_of(const Job& part_job);

 private:
  PartPlan(std::uint64_t size, std::uint64_t part_size, int count) : size_(size), part_size_(part_size), count_(count) {}

  std::uint64_t size_;
  std::uint64_t part_size_;
  int count_;
};

}  // namespace blobferry
