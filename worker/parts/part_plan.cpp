// How a giant object is cut into part jobs: part size and count, each part's range, the jobs themselves.
#include "worker/parts/part_plan.h"

#include <algorithm>

#include "common/base/error.h"

namespace blobferry {
namespace {

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return a / b + (a % b != 0); }

}  // namespace

PartPlan::PartPlan(std::uint64_t size, std::uint64_t wanted_part_size) : size_(size) {
  if (size == 0) throw config_error("an empty object cannot be cut into parts");
  part_size_ = std::max({wanted_part_size, kMinPartSize, ceil_div(size, kMaxUploadParts)});
  part_size_ = std::min(part_size_, size);
  count_ = static_cast<int>(ceil_div(size, part_size_));
}

PartPlan PartPlan::of(const Job& part_job) {
  return PartPlan(part_job.objects.at(0).size.value_or(0), part_job.part.part_size, part_job.part.count);
}

ByteRange PartPlan::range(int number) const {
  const std::uint64_t first = static_cast<std::uint64_t>(number - 1) * part_size_;
  return ByteRange{first, std::min(first + part_size_, size_) - 1};
}

std::vector<Job> PartPlan::jobs(const Job& copy_job, const std::string& upload_id, const std::string& source_etag,
                                const std::vector<int>& numbers) const {
  std::vector<Job> out;
  out.reserve(numbers.size());
  for (const int number : numbers) {
    Job part;
    part.type = JobType::kPart;
    part.migration = copy_job.migration;
    part.source = copy_job.source;
    part.target = copy_job.target;
    part.objects = {copy_job.objects.at(0)};
    part.objects[0].size = size_;
    part.objects[0].target_absent = false;
    part.part = PartSpec{upload_id, number, count_, part_size_, source_etag};
    out.push_back(std::move(part));
  }
  return out;
}

Job PartPlan::copy_job_of(const Job& part_job) {
  Job copy;
  copy.type = JobType::kCopy;
  copy.migration = part_job.migration;
  copy.source = part_job.source;
  copy.target = part_job.target;
  copy.objects = part_job.objects;
  copy.attempts = part_job.attempts;
  return copy;
}

}  // namespace blobferry
