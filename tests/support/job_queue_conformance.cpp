// The JobQueue contract as one parameterised GoogleTest suite, run against every queue (Redis, in-memory).
#include "tests/support/job_queue_conformance.h"

#include <optional>
#include <ostream>
#include <set>
#include <thread>
#include <vector>

#include "common/queue/memory_queue.h"
#include "common/queue/redis_client.h"
#include "common/queue/redis_queue.h"
#include "common/queue/redis_url.h"
#include "tests/support/queue_jobs.h"
#include "tests/support/test_stack.h"

namespace blobferry::testing {

JobQueueBackend memory_queue_backend() {
  return {"memory", [](const std::string& migration, const QueueSettings& settings) -> std::unique_ptr<JobQueue> {
            return std::make_unique<MemoryQueue>(migration, MemoryQueueOptions{settings.lease_duration,
                                                                               settings.max_recoveries});
          }};
}

JobQueueBackend redis_queue_backend() {
  return {"redis", [](const std::string& migration, const QueueSettings& settings) -> std::unique_ptr<JobQueue> {
            static TestStack stack({.redis = true});
            RedisQueueOptions options;
            options.lease_duration = settings.lease_duration;
            options.max_recoveries = settings.max_recoveries;
            // The contract's recover_expired() is called by the tests; fetch()'s
            // own periodic recovery (RedisQueue's extra) stays out of the way.
            options.recover_every = std::chrono::hours(1);
            auto queue = std::make_unique<RedisQueue>(
                std::make_shared<RedisClient>(RedisUrl::parse(stack.redis_url())), migration, options);
            queue->purge();
            return queue;
          }};
}

void PrintTo(const JobQueueBackend& backend, std::ostream* out) { *out << backend.name; }

std::string JobQueueConformance::migration(const std::string& suffix) const {
  return std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + suffix;
}

std::unique_ptr<JobQueue> JobQueueConformance::open(const QueueSettings& settings, const std::string& suffix) {
  return GetParam().open(migration(suffix), settings);
}

namespace {

using namespace std::chrono_literals;

std::vector<FailureRecord> failures_of(JobQueue& queue) {
  std::vector<FailureRecord> records;
  queue.for_each_failure([&](const FailureRecord& record) { records.push_back(record); });
  return records;
}

std::vector<DeadEntry> dead_of(JobQueue& queue) {
  std::vector<DeadEntry> entries;
  queue.for_each_dead([&](const DeadEntry& entry) { entries.push_back(entry); });
  return entries;
}

using Clock = std::chrono::steady_clock;

// --- push and fetch ------------------------------------------------------------

TEST_P(JobQueueConformance, PushAssignsIdsKeepsOrderAndCountsQueuedTotal) {
  auto q = open();
  Job given = copy_job("b");
  given.id = "given";
  q->push({copy_job("a"), given, copy_job("c")});
  EXPECT_EQ(q->queue_length(), 3u);
  EXPECT_EQ(q->counts().queued_total, 3u);
  Lease a = must_fetch(*q);
  Lease b = must_fetch(*q);
  EXPECT_EQ(key_of(a), "a");
  EXPECT_EQ(a.job_id.size(), 11u) << "push assigns an id";
  EXPECT_EQ(a.job_id, decode_job(a.payload).id);
  EXPECT_EQ(b.job_id, "given");
  EXPECT_NE(a.token, b.token);
  EXPECT_EQ(key_of(must_fetch(*q)), "c");
  q->push({});
  EXPECT_EQ(q->counts().queued_total, 3u) << "an empty push counts nothing";
}

TEST_P(JobQueueConformance, EmptyFetchWaitsThenGivesUp) {
  auto q = open();
  const auto started = Clock::now();
  EXPECT_FALSE(q->fetch("w1", 300ms).has_value());
  const auto elapsed = Clock::now() - started;
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 1500ms);
  EXPECT_FALSE(q->fetch("w1", 0ms).has_value());
}

TEST_P(JobQueueConformance, WaitingFetchWakesOnPush) {
  auto q = open();
  std::thread producer([&] {
    std::this_thread::sleep_for(200ms);
    q->push({copy_job("late")});
  });
  const auto started = Clock::now();
  auto lease = q->fetch("w1", 5s);
  producer.join();
  ASSERT_TRUE(lease.has_value());
  EXPECT_LT(Clock::now() - started, 2s) << "picked up before the wait ended";
  EXPECT_EQ(key_of(*lease), "late");
}

// --- complete: counters and failure records --------------------------------------

TEST_P(JobQueueConformance, CompleteCountsEveryObjectExactly) {
  auto q = open();
  EXPECT_TRUE(q->idle());
  q->push({copy_job("a"), copy_job("b"), copy_job("c", 7), batch_job({"d1", "d2", "d3"})});
  EXPECT_FALSE(q->idle());
  Lease a = must_fetch(*q);
  Counts during = q->counts();
  EXPECT_EQ(during.queued, 3u);
  EXPECT_EQ(during.in_flight, 1u);
  EXPECT_TRUE(q->complete(a, Outcome::copied("a", 1000)));
  EXPECT_TRUE(q->complete(must_fetch(*q), Outcome::skipped("b", 700)));
  EXPECT_TRUE(q->complete(must_fetch(*q), Outcome::failed("c", "not_found", "GET c: 404", 1)));
  Outcome batch;
  batch.objects = {{"d1", OutcomeKind::kCopied, 10, {}, {}, 0},
                   {"d2", OutcomeKind::kCopied, 20, {}, {}, 0},
                   {"d3", OutcomeKind::kSkipped, 30, {}, {}, 0}};
  Lease d = must_fetch(*q);
  EXPECT_TRUE(q->complete(d, batch));
  EXPECT_FALSE(q->complete(d, batch)) << "a second completion of one lease is stale";
  Counts counts = q->counts();
  EXPECT_EQ(counts.copied, 3u);
  EXPECT_EQ(counts.skipped, 2u);
  EXPECT_EQ(counts.failed, 1u);
  EXPECT_EQ(counts.failed_by_reason["not_found"], 1u);
  EXPECT_EQ(counts.bytes_copied, 1030u);
  EXPECT_EQ(counts.bytes_skipped, 730u);
  EXPECT_EQ(counts.queued, 0u);
  EXPECT_EQ(counts.in_flight, 0u);
  EXPECT_EQ(counts.queued_total, 4u);
  EXPECT_EQ(counts.recovered, 0u);
  EXPECT_EQ(counts.dead, 0u);
  EXPECT_TRUE(q->idle());
}

TEST_P(JobQueueConformance, FailuresAreRecordedByKeyReplacedAndRemovedOnLaterSuccess) {
  auto q = open();
  q->push({batch_job({"x1", "x2", "x3"})});
  Outcome outcome;
  outcome.objects = {{"x1", OutcomeKind::kCopied, 5, {}, {}, 0},
                     {"x2", OutcomeKind::kFailed, 0, "not_found", "GET x2: 404 Not Found", 1},
                     {"x3", OutcomeKind::kFailed, 0, "network", "GET x3: connection reset", 5}};
  ASSERT_TRUE(q->complete(must_fetch(*q), outcome));
  const std::vector<FailureRecord> records = failures_of(*q);
  ASSERT_EQ(records.size(), 2u);
  for (const auto& record : records) {
    Job retry = decode_job(record.job_payload);
    ASSERT_EQ(retry.objects.size(), 1u) << "the job that retries exactly this key";
    EXPECT_EQ(retry.objects[0].key, record.key);
    EXPECT_EQ(retry.attempts, 0);
    EXPECT_EQ(record.time.size(), 20u) << record.time;
    if (record.key == "x2") {
      EXPECT_EQ(record.reason, "not_found");
      EXPECT_EQ(record.message, "GET x2: 404 Not Found");
      EXPECT_EQ(record.attempts, 1);
      EXPECT_EQ(record.blob_id, std::optional<std::int64_t>(2));
    } else {
      EXPECT_EQ(record.key, "x3");
      EXPECT_EQ(record.reason, "network");
      EXPECT_EQ(record.attempts, 5);
      EXPECT_EQ(record.blob_id, std::optional<std::int64_t>(3));
    }
  }
  // The same key failing again replaces its record rather than counting twice.
  q->push({copy_job("x3")});
  ASSERT_TRUE(q->complete(must_fetch(*q), Outcome::failed("x3", "throttled", "SlowDown", 6)));
  Counts counts = q->counts();
  EXPECT_EQ(counts.failed, 2u);
  EXPECT_EQ(counts.failed_by_reason.count("network"), 0u);
  EXPECT_EQ(counts.failed_by_reason["throttled"], 1u);
  // A later success (copied or skipped) removes the record and its counters.
  q->push({copy_job("x2"), copy_job("x3")});
  ASSERT_TRUE(q->complete(must_fetch(*q), Outcome::copied("x2", 9)));
  ASSERT_TRUE(q->complete(must_fetch(*q), Outcome::skipped("x3", 9)));
  counts = q->counts();
  EXPECT_EQ(counts.failed, 0u);
  EXPECT_TRUE(counts.failed_by_reason.empty());
  EXPECT_EQ(counts.copied, 2u);
  EXPECT_EQ(counts.skipped, 1u);
  EXPECT_TRUE(failures_of(*q).empty());
}

TEST_P(JobQueueConformance, RequeueFailedByReasonThenAll) {
  auto q = open();
  q->push({copy_job("n1"), copy_job("n2"), copy_job("t1")});
  ASSERT_TRUE(q->complete(must_fetch(*q), Outcome::failed("n1", "network", "reset", 5)));
  ASSERT_TRUE(q->complete(must_fetch(*q), Outcome::failed("n2", "network", "reset", 5)));
  ASSERT_TRUE(q->complete(must_fetch(*q), Outcome::failed("t1", "access_denied", "403", 1)));
  EXPECT_EQ(q->requeue_failed(std::string("network")), 2u);
  Counts counts = q->counts();
  EXPECT_EQ(counts.queued, 2u);
  EXPECT_EQ(counts.failed, 1u);
  EXPECT_EQ(counts.failed_by_reason.count("network"), 0u);
  EXPECT_EQ(counts.failed_by_reason["access_denied"], 1u);
  EXPECT_EQ(counts.queued_total, 3u) << "a requeue is no new job";
  std::set<std::string> keys;
  for (int i = 0; i < 2; ++i) {
    Job job = decode_job(must_fetch(*q).payload);
    keys.insert(job.objects.at(0).key);
    EXPECT_EQ(job.attempts, 0);
  }
  EXPECT_EQ(keys, (std::set<std::string>{"n1", "n2"}));
  EXPECT_EQ(q->requeue_failed(std::string("no_such_reason")), 0u);
  EXPECT_EQ(q->requeue_failed(std::nullopt), 1u);
  EXPECT_EQ(q->counts().failed, 0u);
  EXPECT_EQ(key_of(must_fetch(*q)), "t1");
}

// --- retry, release, bury ------------------------------------------------------

TEST_P(JobQueueConformance, RetryLaterWaitsInTheScheduleThenPromoteDueQueuesIt) {
  auto q = open();
  q->push({copy_job("flaky")});
  Lease lease = must_fetch(*q);
  Job job = decode_job(lease.payload);
  ++job.attempts;
  EXPECT_TRUE(q->retry_later(lease, job, 400ms));
  EXPECT_FALSE(q->retry_later(lease, job, 400ms)) << "the lease ended";
  Counts counts = q->counts();
  EXPECT_EQ(counts.scheduled, 1u);
  EXPECT_EQ(counts.queued, 0u);
  EXPECT_EQ(counts.in_flight, 0u);
  EXPECT_FALSE(q->idle()) << "a scheduled retry is pending work";
  EXPECT_EQ(q->promote_due(), 0u) << "not due yet";
  EXPECT_FALSE(q->fetch("w1", 0ms).has_value()) << "not due yet";
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(q->promote_due(), 1u);
  EXPECT_EQ(q->queue_length(), 1u);
  EXPECT_EQ(q->counts().scheduled, 0u);
  Lease again = must_fetch(*q);
  EXPECT_EQ(decode_job(again.payload).attempts, 1) << "the job as the caller scheduled it";
}

TEST_P(JobQueueConformance, WaitingFetchPromotesARetryWhenItIsDue) {
  auto q = open();
  q->push({copy_job("flaky")});
  Lease lease = must_fetch(*q);
  Job job = decode_job(lease.payload);
  ++job.attempts;
  const auto started = Clock::now();
  EXPECT_TRUE(q->retry_later(lease, job, 200ms));
  auto again = q->fetch("w1", 3s);
  ASSERT_TRUE(again.has_value());
  EXPECT_GE(Clock::now() - started, 200ms);
  EXPECT_LT(Clock::now() - started, 1500ms) << "the waiting fetch took it when it was due";
  EXPECT_EQ(decode_job(again->payload).attempts, 1);
}

TEST_P(JobQueueConformance, PromoteDueMovesEveryDueRetry) {
  auto q = open();
  std::vector<Job> jobs;
  for (int i = 0; i < 250; ++i) jobs.push_back(copy_job("r" + std::to_string(i)));
  q->push(jobs);
  // All fetched first: a fetch promotes due retries itself.
  std::vector<Lease> leases;
  for (int i = 0; i < 250; ++i) leases.push_back(must_fetch(*q));
  for (const Lease& lease : leases) ASSERT_TRUE(q->retry_later(lease, decode_job(lease.payload), 200ms));
  EXPECT_EQ(q->counts().scheduled, 250u);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(q->promote_due(), 250u);
  EXPECT_EQ(q->queue_length(), 250u);
  EXPECT_EQ(q->counts().scheduled, 0u);
}

TEST_P(JobQueueConformance, ReleasePutsTheJobBackAtTheHeadWithoutCounting) {
  auto q = open();
  q->push({copy_job("first"), copy_job("second")});
  Lease first = must_fetch(*q);
  EXPECT_TRUE(q->release(first));
  EXPECT_FALSE(q->release(first)) << "the lease ended";
  Job next = decode_job(must_fetch(*q).payload);
  EXPECT_EQ(next.objects.at(0).key, "first");
  EXPECT_EQ(next.attempts, 0);
  EXPECT_EQ(next.recoveries, 0);
  Counts counts = q->counts();
  EXPECT_EQ(counts.failed, 0u);
  EXPECT_EQ(counts.copied, 0u);
  EXPECT_EQ(counts.recovered, 0u);
  EXPECT_EQ(counts.queued_total, 2u);
}

TEST_P(JobQueueConformance, BuryMovesThePayloadToTheDeadList) {
  auto q = open();
  q->push({copy_job("x"), copy_job("good")});
  Lease lease = must_fetch(*q);
  EXPECT_TRUE(q->bury(lease, "bad payload: not a job"));
  EXPECT_FALSE(q->bury(lease, "again")) << "the lease ended";
  EXPECT_TRUE(q->complete(must_fetch(*q), Outcome::copied("good", 1)));
  const std::vector<DeadEntry> dead = dead_of(*q);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].reason, "malformed");
  EXPECT_EQ(dead[0].error, "bad payload: not a job");
  EXPECT_EQ(dead[0].payload, lease.payload);
  EXPECT_EQ(dead[0].time.size(), 20u) << dead[0].time;
  Counts counts = q->counts();
  EXPECT_EQ(counts.dead, 1u);
  EXPECT_EQ(counts.failed, 0u) << "a buried payload has no key to record";
  EXPECT_TRUE(counts.idle());
}

// --- leases: renew, expiry, recovery, poison ------------------------------------

TEST_P(JobQueueConformance, ExpiredLeaseReturnsToTheQueueWithItsRecoveryCounted) {
  auto q = open({.lease_duration = 300ms});
  q->push({copy_job("slow"), copy_job("other")});
  Lease lease = must_fetch(*q);
  EXPECT_EQ(q->recover_expired(), 0u) << "a fresh lease is not expired";
  std::this_thread::sleep_for(450ms);
  EXPECT_EQ(q->counts().in_flight, 1u) << "expired but not yet recovered still counts as in flight";
  EXPECT_FALSE(q->idle());
  EXPECT_EQ(q->recover_expired(), 1u);
  EXPECT_EQ(q->recover_expired(), 0u) << "ended once";
  Counts counts = q->counts();
  EXPECT_EQ(counts.in_flight, 0u);
  EXPECT_EQ(counts.queued, 2u);
  EXPECT_EQ(counts.recovered, 1u);
  EXPECT_EQ(key_of(must_fetch(*q)), "other") << "a recovered job goes to the back";
  Job again = decode_job(must_fetch(*q).payload);
  EXPECT_EQ(again.objects.at(0).key, "slow");
  EXPECT_EQ(again.recoveries, 1);
  EXPECT_EQ(again.id, decode_job(lease.payload).id);
}

TEST_P(JobQueueConformance, RecoverExpiredEndsEveryExpiredLeaseOfADeadFleet) {
  auto q = open({.lease_duration = 300ms});
  std::vector<Job> jobs;
  for (int i = 0; i < 250; ++i) jobs.push_back(copy_job("k" + std::to_string(i)));
  q->push(jobs);
  for (int i = 0; i < 250; ++i) must_fetch(*q, "fleet-" + std::to_string(i % 5));
  EXPECT_EQ(q->counts().in_flight, 250u);
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(q->recover_expired(), 250u);
  Counts counts = q->counts();
  EXPECT_EQ(counts.queued, 250u);
  EXPECT_EQ(counts.in_flight, 0u);
  EXPECT_EQ(counts.recovered, 250u);
}

TEST_P(JobQueueConformance, RenewedLeaseIsNotRecovered) {
  auto q = open({.lease_duration = 400ms});
  q->push({copy_job("big")});
  Lease lease = must_fetch(*q);
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(200ms);
    EXPECT_TRUE(q->renew(lease)) << "renewal " << i;
    EXPECT_EQ(q->recover_expired(), 0u) << "renewal " << i;
  }
  EXPECT_EQ(q->counts().recovered, 0u);
  EXPECT_TRUE(q->complete(lease, Outcome::copied("big", 5)));
  EXPECT_FALSE(q->renew(lease)) << "a completed lease cannot be renewed";
}

TEST_P(JobQueueConformance, StaleOwnerCannotOverwriteTheNewOwnersResult) {
  auto q = open({.lease_duration = 300ms});
  q->push({copy_job("contested")});
  Lease stale = must_fetch(*q, "slow-worker");
  std::this_thread::sleep_for(450ms);
  ASSERT_EQ(q->recover_expired(), 1u);
  Lease fresh = must_fetch(*q, "fast-worker");
  EXPECT_NE(fresh.token, stale.token);
  EXPECT_FALSE(q->renew(stale));
  EXPECT_FALSE(q->complete(stale, Outcome::failed("contested", "network", "timeout", 3)));
  EXPECT_FALSE(q->retry_later(stale, decode_job(stale.payload), 10ms));
  EXPECT_FALSE(q->release(stale));
  EXPECT_FALSE(q->bury(stale, "nope"));
  Counts before = q->counts();
  EXPECT_EQ(before.failed, 0u) << "the stale failure was ignored";
  EXPECT_EQ(before.in_flight, 1u);
  EXPECT_EQ(before.queued, 0u);
  EXPECT_EQ(before.scheduled, 0u);
  EXPECT_EQ(before.dead, 0u);
  EXPECT_TRUE(q->complete(fresh, Outcome::copied("contested", 1000)));
  Counts after = q->counts();
  EXPECT_EQ(after.copied, 1u);
  EXPECT_EQ(after.failed, 0u);
  EXPECT_TRUE(after.idle());
}

TEST_P(JobQueueConformance, PoisonJobGoesDeadAfterMaxRecoveriesWithAFailurePerObject) {
  auto q = open({.lease_duration = 200ms, .max_recoveries = 2});
  q->push({batch_job({"p1", "p2"}), copy_job("innocent")});
  int runs = 0;
  while (runs < 10) {
    auto lease = q->fetch("w", 100ms);
    if (!lease) break;
    if (key_of(*lease) == "innocent") {
      EXPECT_TRUE(q->complete(*lease, Outcome::copied("innocent", 1)));
      continue;
    }
    ++runs;  // the worker "dies": the lease is never completed
    std::this_thread::sleep_for(300ms);
    q->recover_expired();
  }
  EXPECT_EQ(runs, 3) << "ran once, then recovered twice, then went dead";
  Counts counts = q->counts();
  EXPECT_EQ(counts.dead, 1u);
  EXPECT_EQ(counts.failed, 2u) << "one failure record per object of the batch";
  EXPECT_EQ(counts.failed_by_reason["poison"], 2u);
  EXPECT_EQ(counts.copied, 1u);
  EXPECT_EQ(counts.recovered, 2u);
  EXPECT_TRUE(counts.idle());
  const std::vector<DeadEntry> dead = dead_of(*q);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].reason, "poison");
  EXPECT_NE(dead[0].error.find("3 times"), std::string::npos) << dead[0].error;
  EXPECT_EQ(decode_job(dead[0].payload).recoveries, 2);
  std::set<std::string> keys;
  for (const FailureRecord& record : failures_of(*q)) {
    keys.insert(record.key);
    EXPECT_EQ(record.reason, "poison");
    Job retry = decode_job(record.job_payload);
    ASSERT_EQ(retry.objects.size(), 1u);
    EXPECT_EQ(retry.objects[0].key, record.key);
    EXPECT_EQ(retry.recoveries, 0) << "a requeued poison key starts afresh";
  }
  EXPECT_EQ(keys, (std::set<std::string>{"p1", "p2"}));
}

// --- batches: fetch_batch, renew_all, complete_batch ---------------------------------

std::vector<std::string> keys_of(const std::vector<Lease>& leases) {
  std::vector<std::string> keys;
  for (const Lease& lease : leases) keys.push_back(key_of(lease));
  return keys;
}

TEST_P(JobQueueConformance, FetchBatchLeasesUpToMaxInQueueOrder) {
  auto q = open();
  q->push({copy_job("a"), copy_job("b"), copy_job("c"), copy_job("d"), copy_job("e")});
  EXPECT_TRUE(q->fetch_batch("w1", 0, 0ms).empty()) << "max 0 takes nothing";
  std::vector<Lease> first = q->fetch_batch("w1", 3, 0ms);
  EXPECT_EQ(keys_of(first), (std::vector<std::string>{"a", "b", "c"}));
  std::set<std::string> tokens;
  for (const Lease& lease : first) {
    tokens.insert(lease.token);
    EXPECT_EQ(lease.job_id, decode_job(lease.payload).id);
  }
  EXPECT_EQ(tokens.size(), 3u) << "a lease per job";
  Counts counts = q->counts();
  EXPECT_EQ(counts.in_flight, 3u);
  EXPECT_EQ(counts.queued, 2u);
  std::vector<Lease> rest = q->fetch_batch("w2", 10, 0ms);
  EXPECT_EQ(keys_of(rest), (std::vector<std::string>{"d", "e"})) << "what is there, without waiting to fill the batch";
  EXPECT_TRUE(q->fetch_batch("w1", 10, 0ms).empty());
  // Each lease of a batch is a lease of its own.
  EXPECT_TRUE(q->complete(first[1], Outcome::copied("b", 1)));
  EXPECT_TRUE(q->release(rest[0]));
  EXPECT_EQ(q->counts().in_flight, 3u);
  EXPECT_EQ(key_of(must_fetch(*q)), "d");
}

TEST_P(JobQueueConformance, FetchBatchWaitsForTheFirstJobAndHandsOutNoneWhilePaused) {
  auto q = open();
  std::thread producer([&] {
    std::this_thread::sleep_for(200ms);
    q->push({copy_job("late1"), copy_job("late2")});
  });
  std::vector<Lease> leases = q->fetch_batch("w1", 5, 5s);
  producer.join();
  ASSERT_FALSE(leases.empty());
  EXPECT_EQ(key_of(leases.front()), "late1");
  q->push({copy_job("held")});
  q->set_paused(true);
  EXPECT_TRUE(q->fetch_batch("w1", 5, 100ms).empty()) << "a paused migration hands out no job";
  q->set_paused(false);
  const std::size_t left = 3 - leases.size();
  EXPECT_EQ(q->fetch_batch("w1", 5, 1s).size(), left);
}

TEST_P(JobQueueConformance, RenewAllKeepsEveryOwnedLeaseAndNamesTheStaleOnes) {
  auto q = open({.lease_duration = 400ms});
  q->push({copy_job("r1"), copy_job("r2"), copy_job("r3")});
  std::vector<Lease> leases = q->fetch_batch("w1", 3, 0ms);
  ASSERT_EQ(leases.size(), 3u);
  EXPECT_TRUE(q->complete(leases[1], Outcome::copied("r2", 1)));
  EXPECT_TRUE(q->renew_all({}).empty());
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(q->renew_all(leases), (std::vector<bool>{true, false, true})) << "renewal " << i;
    EXPECT_EQ(q->recover_expired(), 0u) << "renewal " << i;
  }
  // Without renewals they expire and go back; their renewals are then stale.
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(q->recover_expired(), 2u);
  EXPECT_EQ(q->renew_all(leases), (std::vector<bool>{false, false, false}));
  EXPECT_EQ(q->counts().recovered, 2u);
}

TEST_P(JobQueueConformance, CompleteBatchRecordsEachAsCompleteWouldAndRefusesStaleOnes) {
  auto q = open();
  q->push({copy_job("was-failing"), copy_job("f")});
  ASSERT_TRUE(q->complete(must_fetch(*q), Outcome::failed("was-failing", "network", "reset", 5)));
  Lease done = must_fetch(*q);
  ASSERT_TRUE(q->complete(done, Outcome::copied("f", 1)));
  q->push({copy_job("a"), copy_job("b"), copy_job("c", 7), batch_job({"d1", "d2", "d3"}), copy_job("was-failing"),
           copy_job("x"), copy_job("x")});
  std::vector<Lease> leases = q->fetch_batch("w1", 10, 0ms);
  ASSERT_EQ(leases.size(), 7u);
  Outcome batch;
  batch.objects = {{"d1", OutcomeKind::kCopied, 10, {}, {}, 0},
                   {"d2", OutcomeKind::kFailed, 0, "not_found", "GET d2: 404", 1},
                   {"d3", OutcomeKind::kSkipped, 30, {}, {}, 0}};
  const std::vector<Completion> completions{
      {leases[0], Outcome::copied("a", 1000)},
      {done, Outcome::copied("f", 1)},  // stale: completed before
      {leases[1], Outcome::skipped("b", 700)},
      {leases[2], Outcome::failed("c", "access_denied", "PUT c: 403", 1)},
      {leases[3], batch},
      {leases[0], Outcome::copied("a", 1000)},  // stale: the same lease again, earlier in this batch
      {leases[4], Outcome::skipped("was-failing", 5)},
      {leases[5], Outcome::failed("x", "network", "reset", 5)},
      {leases[6], Outcome::copied("x", 2)},  // a later success of a key failed earlier in this batch
  };
  EXPECT_EQ(q->complete_batch(completions),
            (std::vector<bool>{true, false, true, true, true, false, true, true, true}));
  EXPECT_TRUE(q->complete_batch({}).empty());
  Counts counts = q->counts();
  EXPECT_EQ(counts.copied, 4u) << "f before, then a, d1, x";
  EXPECT_EQ(counts.skipped, 3u) << "b, d3, was-failing";
  EXPECT_EQ(counts.bytes_copied, 1u + 1000u + 10u + 2u);
  EXPECT_EQ(counts.bytes_skipped, 700u + 30u + 5u);
  EXPECT_EQ(counts.failed, 2u) << "c and d2; was-failing and x succeeded since";
  EXPECT_EQ(counts.failed_by_reason["access_denied"], 1u);
  EXPECT_EQ(counts.failed_by_reason["not_found"], 1u);
  EXPECT_EQ(counts.failed_by_reason.count("network"), 0u);
  EXPECT_EQ(counts.in_flight, 0u);
  EXPECT_TRUE(counts.idle());
  std::set<std::string> failed;
  for (const FailureRecord& record : failures_of(*q)) {
    failed.insert(record.key);
    EXPECT_EQ(decode_job(record.job_payload).objects.at(0).key, record.key) << "the job that retries exactly this key";
  }
  EXPECT_EQ(failed, (std::set<std::string>{"c", "d2"}));
}

TEST_P(JobQueueConformance, CompleteBatchOfARecoveredLeaseLeavesTheNewOwnersResult) {
  auto q = open({.lease_duration = 300ms});
  q->push({copy_job("contested"), copy_job("mine")});
  std::vector<Lease> stale = q->fetch_batch("slow-worker", 1, 0ms);
  ASSERT_EQ(stale.size(), 1u);
  std::this_thread::sleep_for(450ms);
  ASSERT_EQ(q->recover_expired(), 1u);
  std::vector<Lease> fresh = q->fetch_batch("fast-worker", 2, 0ms);
  ASSERT_EQ(keys_of(fresh), (std::vector<std::string>{"mine", "contested"}));
  EXPECT_EQ(q->complete_batch({{stale[0], Outcome::failed("contested", "network", "timeout", 3)},
                               {fresh[0], Outcome::copied("mine", 1)}}),
            (std::vector<bool>{false, true}));
  Counts counts = q->counts();
  EXPECT_EQ(counts.failed, 0u) << "the stale failure was ignored";
  EXPECT_EQ(counts.in_flight, 1u) << "the new owner's lease is untouched";
  EXPECT_TRUE(q->complete_batch({{fresh[1], Outcome::copied("contested", 1000)}}).front());
  counts = q->counts();
  EXPECT_EQ(counts.copied, 2u);
  EXPECT_TRUE(counts.idle());
}

// --- idle, workers, cursors, purge ----------------------------------------------

TEST_P(JobQueueConformance, IdleMeansNothingQueuedScheduledOrInFlight) {
  auto q = open();
  EXPECT_TRUE(q->idle());
  EXPECT_TRUE(q->counts().idle());
  q->push({copy_job("k")});
  EXPECT_FALSE(q->idle()) << "queued";
  Lease lease = must_fetch(*q);
  EXPECT_FALSE(q->idle()) << "in flight";
  EXPECT_TRUE(q->retry_later(lease, decode_job(lease.payload), 60s));
  EXPECT_FALSE(q->idle()) << "scheduled";
  EXPECT_FALSE(q->counts().idle());
  q->purge();
  EXPECT_TRUE(q->idle());
}

TEST_P(JobQueueConformance, HeartbeatsListLiveWorkers) {
  auto q = open();
  EXPECT_TRUE(q->live_workers(3s).empty());
  q->heartbeat("host-a:101", R"({"concurrency":8})");
  q->heartbeat("host-b:202", R"({"concurrency":4})");
  auto workers = q->live_workers(3s);
  ASSERT_EQ(workers.size(), 2u);
  std::set<std::string> ids;
  for (const auto& worker : workers) {
    ids.insert(worker.worker_id);
    EXPECT_LT(worker.age, 1s);
    if (worker.worker_id == "host-a:101") {
      EXPECT_EQ(worker.info_json, R"({"concurrency":8})");
    }
  }
  EXPECT_EQ(ids, (std::set<std::string>{"host-a:101", "host-b:202"}));
  std::this_thread::sleep_for(300ms);
  q->heartbeat("host-b:202", "{}");
  workers = q->live_workers(200ms);
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].worker_id, "host-b:202");
  EXPECT_EQ(workers[0].info_json, "{}") << "the latest heartbeat's info";
}

TEST_P(JobQueueConformance, CursorsAndPushWithCursor) {
  auto q = open();
  EXPECT_EQ(q->get_cursor("blobs"), std::nullopt);
  q->set_cursor("blobs", "12345");
  q->set_cursor("blobs", "67890");
  EXPECT_EQ(q->get_cursor("blobs"), std::optional<std::string>("67890"));
  EXPECT_EQ(q->get_cursor("other"), std::nullopt);
  std::vector<Job> jobs;
  for (int i = 0; i < 1500; ++i) jobs.push_back(copy_job("c" + std::to_string(i)));
  q->push_with_cursor(jobs, "manifest", R"({"after":1500})");
  EXPECT_EQ(q->queue_length(), 1500u);
  EXPECT_EQ(q->counts().queued_total, 1500u);
  EXPECT_EQ(q->get_cursor("manifest"), std::optional<std::string>(R"({"after":1500})"));
  EXPECT_EQ(key_of(must_fetch(*q)), "c0");
  q->push_with_cursor({}, "manifest", "done");
  EXPECT_EQ(q->get_cursor("manifest"), std::optional<std::string>("done"));
  EXPECT_EQ(q->counts().queued_total, 1500u);
}

TEST_P(JobQueueConformance, PurgeForgetsEverythingOfTheMigrationAndNoOther) {
  auto q = open();
  auto neighbour = open({}, "-neighbour");
  for (JobQueue* each : {q.get(), neighbour.get()}) {
    each->push({copy_job("f"), copy_job("r"), copy_job("i"), copy_job("d"), copy_job("q")});
    ASSERT_TRUE(each->complete(must_fetch(*each), Outcome::failed("f", "network", "x", 1)));
    Lease retry = must_fetch(*each);
    ASSERT_TRUE(each->retry_later(retry, decode_job(retry.payload), 60s));
    must_fetch(*each);  // stays in flight
    ASSERT_TRUE(each->bury(must_fetch(*each), "buried"));
    each->heartbeat("w", "{}");
    each->set_cursor("c", "1");
  }
  q->purge();
  Counts counts = q->counts();
  EXPECT_TRUE(counts.idle());
  EXPECT_EQ(counts.queued_total, 0u);
  EXPECT_EQ(counts.failed, 0u);
  EXPECT_EQ(counts.dead, 0u);
  EXPECT_TRUE(counts.failed_by_reason.empty());
  EXPECT_EQ(q->get_cursor("c"), std::nullopt);
  EXPECT_TRUE(q->live_workers(1h).empty());
  EXPECT_TRUE(failures_of(*q).empty());
  EXPECT_TRUE(dead_of(*q).empty());
  Counts kept = neighbour->counts();
  EXPECT_EQ(kept.queued, 1u);
  EXPECT_EQ(kept.scheduled, 1u);
  EXPECT_EQ(kept.in_flight, 1u);
  EXPECT_EQ(kept.failed, 1u);
  EXPECT_EQ(kept.dead, 1u);
  EXPECT_EQ(neighbour->get_cursor("c"), std::optional<std::string>("1"));
  neighbour->purge();
}

// --- threads ----------------------------------------------------------------------

TEST_P(JobQueueConformance, ConcurrentProducersAndConsumersLoseNothing) {
  auto q = open();
  expect_concurrent_jobs_copied_once(*q, 3, 300, 4);
}

}  // namespace
}  // namespace blobferry::testing
