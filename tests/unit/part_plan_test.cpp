// Part planning for giant objects: S3's part limits, every byte in exactly one range, the jobs it makes.
#include "worker/parts/part_plan.h"

#include <gtest/gtest.h>

#include "common/base/error.h"

namespace blobferry {
namespace {

constexpr std::uint64_t kPlanMiB = 1024 * 1024;

TEST(PartPlan, TwoGibibytesInThirtyTwoMebibyteParts) {
  const PartPlan plan(2048 * kPlanMiB, 32 * kPlanMiB);
  EXPECT_EQ(plan.count(), 64);
  EXPECT_EQ(plan.part_size(), 32 * kPlanMiB);
  EXPECT_EQ(plan.range(1).first, 0u);
  EXPECT_EQ(plan.range(1).last, 32 * kPlanMiB - 1);
  EXPECT_EQ(plan.range(64).last, 2048 * kPlanMiB - 1);
}

TEST(PartPlan, RangesCoverEveryByteOnceWithAShortLastPart) {
  const std::uint64_t size = 50 * kPlanMiB + 7;
  const PartPlan plan(size, 8 * kPlanMiB);
  ASSERT_EQ(plan.count(), 7);
  std::uint64_t next = 0;
  for (int n = 1; n <= plan.count(); ++n) {
    EXPECT_EQ(plan.range(n).first, next) << n;
    next = plan.range(n).last + 1;
  }
  EXPECT_EQ(next, size);
  EXPECT_EQ(plan.range(7).last - plan.range(7).first + 1, 2 * kPlanMiB + 7);
}

TEST(PartPlan, RaisesPartsToSThreesMinimumAndMaximumCount) {
  EXPECT_EQ(PartPlan(100 * kPlanMiB, 1 * kPlanMiB).part_size(), PartPlan::kMinPartSize);
  // 1 TiB in 8 MiB parts would be 131,072 parts: raised to stay within 10,000.
  const PartPlan huge(1024 * 1024 * kPlanMiB, 8 * kPlanMiB);
  EXPECT_LE(huge.count(), kMaxUploadParts);
  EXPECT_GE(huge.part_size() * static_cast<std::uint64_t>(huge.count()), 1024 * 1024 * kPlanMiB);
  // An object smaller than one part is one part of its own size.
  const PartPlan small(3, 8 * kPlanMiB);
  EXPECT_EQ(small.count(), 1);
  EXPECT_EQ(small.range(1).last, 2u);
}

TEST(PartPlan, JobsCarryThePlanAndDecodeBack) {
  Job copy;
  copy.migration = "m";
  copy.source = "src";
  copy.target = "dst";
  copy.attempts = 2;
  JobObject object;
  object.key = "big";
  object.size = 40 * kPlanMiB;
  object.checksum = "nhB9nTcrtoJr2B01QqQZ1g==";
  object.target_absent = true;
  copy.objects = {object};
  const PartPlan plan(40 * kPlanMiB, 16 * kPlanMiB);
  const std::vector<Job> jobs = plan.jobs(copy, "up-1", "etag", {1, 3});
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[1].type, JobType::kPart);
  EXPECT_EQ(jobs[1].part, (PartSpec{"up-1", 3, 3, 16 * kPlanMiB, "etag"}));
  EXPECT_FALSE(jobs[1].objects[0].target_absent);  // a part job learns nothing from an old listing
  EXPECT_EQ(jobs[1].attempts, 0);
  Job queued = jobs[1];
  queued.id = "id";  // push assigns one
  Job decoded = decode_job(encode_job(queued));
  EXPECT_EQ(PartPlan::of(decoded).range(3).first, 32 * kPlanMiB);
  EXPECT_EQ(PartPlan::of(decoded).range(3).last, 40 * kPlanMiB - 1);

  const Job again = PartPlan::copy_job_of(decoded);
  EXPECT_EQ(again.type, JobType::kCopy);
  EXPECT_EQ(again.objects[0].key, "big");
  Job queued_again = again;
  queued_again.id = "id2";
  EXPECT_EQ(decode_job(encode_job(queued_again)).objects, again.objects);
}

TEST(PartPlan, RefusesAnEmptyObject) { EXPECT_THROW(PartPlan(0, 8 * kPlanMiB), Error); }

}  // namespace
}  // namespace blobferry
