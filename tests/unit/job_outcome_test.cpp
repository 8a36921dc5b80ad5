// JobOutcome: what a worker tells the queue for every mix of results, retry budgets and cancellation.
#include "worker/loop/job_outcome.h"

#include <gtest/gtest.h>

#include <chrono>

#include "common/base/cancellation.h"
#include "common/base/retry_policy.h"
#include "worker/copy/copy_engine.h"

namespace blobferry {
namespace {

using Action = JobOutcome::Action;
using std::chrono::milliseconds;

RetryPolicy policy() {
  RetryOptions options;
  options.max_job_attempts = 3;
  options.reschedule_steps = {milliseconds(1000), milliseconds(5000)};
  options.reschedule_jitter = 0.0;
  return RetryPolicy(options, 1);
}

Job batch(int objects, int attempts = 0) {
  Job job;
  job.id = "job1";
  job.migration = "m";
  job.source = "a";
  job.target = "b";
  job.attempts = attempts;
  for (int i = 0; i < objects; ++i) {
    JobObject object;
    object.key = "k" + std::to_string(i);
    object.size = 10;
    job.objects.push_back(object);
  }
  return job;
}

ObjectResult copied(std::uint64_t bytes, int attempts = 1) {
  return ObjectResult::of(CopyResult{CopyResult::Status::kCopied, bytes, "", attempts, false});
}
ObjectResult skipped(std::uint64_t bytes) {
  return ObjectResult::of(CopyResult{CopyResult::Status::kSkipped, bytes, "", 1, false});
}
Error network() { return Error(ErrorKind::kTransient, FailureReason::kNetwork, "GET k: reset"); }
Error not_found() { return Error(ErrorKind::kPermanent, FailureReason::kNotFound, "GET k: 404", 404); }

TEST(JobOutcome, AllCopiedOrSkippedCompletesWithOneEntryPerObject) {
  const JobOutcome o = JobOutcome::of_copy_job(batch(3), {copied(10, 3), skipped(20), copied(30)}, policy());
  EXPECT_EQ(o.action, Action::kComplete);
  ASSERT_EQ(o.outcome.objects.size(), 3u);
  EXPECT_EQ(o.outcome.objects[1].kind, OutcomeKind::kSkipped);
  EXPECT_EQ(o.copied, 2u);
  EXPECT_EQ(o.skipped, 1u);
  EXPECT_EQ(o.bytes_copied, 40u);
  EXPECT_EQ(o.bytes_skipped, 20u);
  EXPECT_EQ(o.retries, 2u);  // the first object took three tries
}

TEST(JobOutcome, TransientFailureOfEveryObjectRetriesTheJobLaterWithAttemptsPlusOne) {
  const JobOutcome o = JobOutcome::of_copy_job(batch(2, 0), {ObjectResult::failed(network()),
                                                            ObjectResult::failed(network())}, policy());
  EXPECT_EQ(o.action, Action::kRetryLater);
  EXPECT_EQ(o.again.attempts, 1);
  EXPECT_EQ(o.again.objects.size(), 2u);
  EXPECT_EQ(o.again.id, "job1");  // the same job, rescheduled
  EXPECT_EQ(o.delay, milliseconds(1000));
  EXPECT_EQ(o.failed, 0u);
}

TEST(JobOutcome, PartlyTransientBatchPushesANewJobOfTheRestAndRecordsTheOthers) {
  const JobOutcome o = JobOutcome::of_copy_job(batch(3), {copied(10), ObjectResult::failed(network()),
                                                         ObjectResult::failed(not_found())}, policy());
  EXPECT_EQ(o.action, Action::kPushAndComplete);
  ASSERT_EQ(o.again.objects.size(), 1u);
  EXPECT_EQ(o.again.objects[0].key, "k1");
  EXPECT_TRUE(o.again.id.empty());  // a new job: the old id completes
  ASSERT_EQ(o.outcome.objects.size(), 2u);
  EXPECT_EQ(o.outcome.objects[1].kind, OutcomeKind::kFailed);
  EXPECT_EQ(o.outcome.objects[1].reason, "not_found");
  EXPECT_EQ(o.failure_reasons, std::vector<std::string>{"not_found"});
}

TEST(JobOutcome, TransientFailureOnTheLastAllowedRunIsRecordedAsFailed) {
  const JobOutcome o = JobOutcome::of_copy_job(batch(1, 2), {ObjectResult::failed(network())}, policy());
  EXPECT_EQ(o.action, Action::kComplete);
  ASSERT_EQ(o.outcome.objects.size(), 1u);
  EXPECT_EQ(o.outcome.objects[0].kind, OutcomeKind::kFailed);
  EXPECT_EQ(o.outcome.objects[0].attempts, 3);
  EXPECT_EQ(o.failed, 1u);
}

TEST(JobOutcome, CancelledCopyReleasesTheJobAndCountsNothing) {
  const JobOutcome o = JobOutcome::of_copy_job(
      batch(2), {copied(10), ObjectResult::failed(cancelled_error("PUT k1"))}, policy());
  EXPECT_EQ(o.action, Action::kRelease);
  EXPECT_EQ(o.copied, 0u);
  EXPECT_TRUE(o.outcome.objects.empty());
}

TEST(JobOutcome, ObjectsNeverTriedReleaseTheJob) {
  EXPECT_EQ(JobOutcome::of_copy_job(batch(3), {copied(10)}, policy()).action, Action::kRelease);
  EXPECT_EQ(JobOutcome::of_copy_job(batch(1), {ObjectResult{}}, policy()).action, Action::kRelease);
}

TEST(JobOutcome, ConfigErrorReleasesAndStopsTheWorker) {
  const JobOutcome o = JobOutcome::of_job_error(batch(1), config_error("no service 'b'"), policy());
  EXPECT_EQ(o.action, Action::kRelease);
  EXPECT_TRUE(o.stop_worker);
  EXPECT_EQ(o.error, "no service 'b'");
}

TEST(JobOutcome, JobErrorReschedulesOrFailsByThePolicy) {
  const JobOutcome later = JobOutcome::of_job_error(batch(1, 1), network(), policy());
  EXPECT_EQ(later.action, Action::kRetryLater);
  EXPECT_EQ(later.again.attempts, 2);
  EXPECT_EQ(later.delay, milliseconds(5000));
  const JobOutcome failed = JobOutcome::of_job_error(batch(1), not_found(), policy());
  EXPECT_EQ(failed.action, Action::kComplete);
  ASSERT_EQ(failed.outcome.objects.size(), 1u);
  EXPECT_EQ(failed.outcome.objects[0].reason, "not_found");
  EXPECT_FALSE(failed.stop_worker);
  EXPECT_EQ(JobOutcome::of_job_error(batch(1), cancelled_error("LIST"), policy()).action, Action::kRelease);
}

TEST(JobOutcome, AJobWaitingForAServiceComesBackLaterWithItsAttemptsAndNothingCounted) {
  const JobOutcome o = JobOutcome::waiting(batch(2, 1), milliseconds(30000));
  EXPECT_EQ(o.action, Action::kRetryLater) << "not a release: that would spin every worker on it";
  EXPECT_EQ(o.again.attempts, 1);
  EXPECT_EQ(o.again.objects.size(), 2u);
  EXPECT_EQ(o.delay, milliseconds(30000));
  EXPECT_EQ(o.retries + o.failed + o.copied, 0u);
  EXPECT_FALSE(o.stop_worker);
}

TEST(JobOutcome, ListingCompletesWithWhatItSkipped) {
  const JobOutcome o = JobOutcome::of_listing({{{"a", OutcomeKind::kSkipped, 5, {}, {}, 0},
                                                {"b", OutcomeKind::kSkipped, 7, {}, {}, 0}}});
  EXPECT_EQ(o.action, Action::kComplete);
  EXPECT_EQ(o.skipped, 2u);
  EXPECT_EQ(o.bytes_skipped, 12u);
}

TEST(JobOutcome, BuryCarriesItsReason) {
  const JobOutcome o = JobOutcome::bury("not JSON");
  EXPECT_EQ(o.action, Action::kBury);
  EXPECT_EQ(o.error, "not JSON");
}

}  // namespace
}  // namespace blobferry
