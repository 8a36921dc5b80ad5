// MemoryQueue: the JobQueue semantics the embedded mode relies on, threads included.
#include "common/queue/memory_queue.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace blobferry {
namespace {

using namespace std::chrono_literals;

Job copy_job(const std::string& key, std::int64_t blob_id = 0) {
  Job job;
  job.migration = "m";
  job.source = "source";
  job.target = "target";
  JobObject object;
  object.key = key;
  if (blob_id) object.blob_id = blob_id;
  job.objects.push_back(object);
  return job;
}

Lease must_fetch(JobQueue& queue) {
  auto lease = queue.fetch("w", 1s);
  if (!lease) throw std::runtime_error("no job within 1 s");
  return *lease;
}

std::string key_of(const Lease& lease) { return decode_job(lease.payload).objects.at(0).key; }

TEST(MemoryQueue, EmptyFetchWaitsThenGivesUp) {
  MemoryQueue queue("m");
  auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(queue.fetch("w", 80ms).has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - started, 80ms);
  EXPECT_FALSE(queue.fetch("w", 0ms).has_value());
}

TEST(MemoryQueue, WaitingFetchWakesOnPush) {
  MemoryQueue queue("m");
  std::thread producer([&] {
    std::this_thread::sleep_for(50ms);
    queue.push({copy_job("late")});
  });
  auto started = std::chrono::steady_clock::now();
  auto lease = queue.fetch("w", 5s);
  producer.join();
  ASSERT_TRUE(lease.has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
  EXPECT_EQ(key_of(*lease), "late");
}

TEST(MemoryQueue, PushAssignsIdsAndKeepsOrder) {
  MemoryQueue queue("m");
  Job with_id = copy_job("b");
  with_id.id = "given";
  queue.push({copy_job("a"), with_id});
  Lease a = must_fetch(queue);
  Lease b = must_fetch(queue);
  EXPECT_EQ(key_of(a), "a");
  EXPECT_EQ(a.job_id.size(), 11u);
  EXPECT_EQ(b.job_id, "given");
  EXPECT_NE(a.token, b.token);
  EXPECT_EQ(queue.counts().queued_total, 2u);
}

TEST(MemoryQueue, CompleteCountsAndIdle) {
  MemoryQueue queue("m");
  EXPECT_TRUE(queue.idle());
  queue.push({copy_job("a"), copy_job("b"), copy_job("c", 7)});
  EXPECT_FALSE(queue.idle());
  EXPECT_EQ(queue.queue_length(), 3u);
  Lease a = must_fetch(queue);
  Counts during = queue.counts();
  EXPECT_EQ(during.queued, 2u);
  EXPECT_EQ(during.in_flight, 1u);
  EXPECT_TRUE(queue.complete(a, Outcome::copied("a", 100)));
  EXPECT_FALSE(queue.complete(a, Outcome::copied("a", 100))) << "second completion is stale";
  EXPECT_TRUE(queue.complete(must_fetch(queue), Outcome::skipped("b", 50)));
  EXPECT_TRUE(queue.complete(must_fetch(queue), Outcome::failed("c", "not_found", "404", 1)));
  Counts counts = queue.counts();
  EXPECT_EQ(counts.copied, 1u);
  EXPECT_EQ(counts.skipped, 1u);
  EXPECT_EQ(counts.failed, 1u);
  EXPECT_EQ(counts.failed_by_reason["not_found"], 1u);
  EXPECT_EQ(counts.bytes_copied, 100u);
  EXPECT_EQ(counts.bytes_skipped, 50u);
  EXPECT_TRUE(queue.idle());
  std::vector<FailureRecord> records;
  queue.for_each_failure([&](const FailureRecord& record) { records.push_back(record); });
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].key, "c");
  EXPECT_EQ(records[0].blob_id, std::optional<std::int64_t>(7));
  EXPECT_EQ(records[0].message, "404");
  EXPECT_EQ(records[0].attempts, 1);
  EXPECT_EQ(decode_job(records[0].job_payload).objects.at(0).key, "c");
}

TEST(MemoryQueue, RetryLaterComesBackAfterTheDelay) {
  MemoryQueue queue("m");
  queue.push({copy_job("flaky")});
  Lease lease = must_fetch(queue);
  Job job = decode_job(lease.payload);
  ++job.attempts;
  auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(queue.retry_later(lease, job, 150ms));
  EXPECT_EQ(queue.counts().scheduled, 1u);
  EXPECT_FALSE(queue.idle());
  EXPECT_FALSE(queue.fetch("w", 0ms).has_value()) << "not due yet";
  EXPECT_EQ(queue.promote_due(), 0u);
  auto again = queue.fetch("w", 2s);
  ASSERT_TRUE(again.has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - started, 150ms);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1500ms) << "the waiting fetch woke when it was due";
  EXPECT_EQ(decode_job(again->payload).attempts, 1);
  EXPECT_EQ(queue.counts().scheduled, 0u);
}

TEST(MemoryQueue, PromoteDueMovesDueRetriesToTheQueue) {
  MemoryQueue queue("m");
  queue.push({copy_job("x")});
  Lease lease = must_fetch(queue);
  EXPECT_TRUE(queue.retry_later(lease, decode_job(lease.payload), 30ms));
  std::this_thread::sleep_for(60ms);
  EXPECT_EQ(queue.promote_due(), 1u);
  EXPECT_EQ(queue.queue_length(), 1u);
}

TEST(MemoryQueue, ReleasePutsTheJobAtTheHead) {
  MemoryQueue queue("m");
  queue.push({copy_job("first"), copy_job("second")});
  Lease first = must_fetch(queue);
  EXPECT_TRUE(queue.release(first));
  EXPECT_FALSE(queue.release(first));
  EXPECT_EQ(key_of(must_fetch(queue)), "first");
  EXPECT_EQ(queue.counts().failed, 0u);
}

TEST(MemoryQueue, ExpiredLeasesAreRecoveredThenPoisoned) {
  MemoryQueue queue("m", {.lease_duration = 20ms, .max_recoveries = 1});
  queue.push({copy_job("killer", 3)});
  Lease first = must_fetch(queue);
  EXPECT_TRUE(queue.renew(first));
  std::this_thread::sleep_for(40ms);
  EXPECT_EQ(queue.recover_expired(), 1u);
  EXPECT_FALSE(queue.complete(first, Outcome::copied("killer", 1))) << "the stale owner is ignored";
  Lease second = must_fetch(queue);
  EXPECT_EQ(decode_job(second.payload).recoveries, 1);
  std::this_thread::sleep_for(40ms);
  EXPECT_EQ(queue.recover_expired(), 1u);
  Counts counts = queue.counts();
  EXPECT_EQ(counts.dead, 1u);
  EXPECT_EQ(counts.recovered, 1u);
  EXPECT_EQ(counts.failed_by_reason["poison"], 1u);
  EXPECT_EQ(counts.copied, 0u);
  EXPECT_TRUE(counts.idle());
  std::vector<DeadEntry> dead;
  queue.for_each_dead([&](const DeadEntry& entry) { dead.push_back(entry); });
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].reason, "poison");
}

TEST(MemoryQueue, RenewKeepsALeaseAlive) {
  MemoryQueue queue("m", {.lease_duration = 60ms, .max_recoveries = 3});
  queue.push({copy_job("big")});
  Lease lease = must_fetch(queue);
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(25ms);
    EXPECT_TRUE(queue.renew(lease));
    EXPECT_EQ(queue.recover_expired(), 0u);
  }
  EXPECT_TRUE(queue.complete(lease, Outcome::copied("big", 1)));
}

TEST(MemoryQueue, SuccessRemovesFailureAndRequeueByReason) {
  MemoryQueue queue("m");
  queue.push({copy_job("n1"), copy_job("n2"), copy_job("d1")});
  EXPECT_TRUE(queue.complete(must_fetch(queue), Outcome::failed("n1", "network", "reset", 5)));
  EXPECT_TRUE(queue.complete(must_fetch(queue), Outcome::failed("n2", "network", "reset", 5)));
  EXPECT_TRUE(queue.complete(must_fetch(queue), Outcome::failed("d1", "access_denied", "403", 1)));
  EXPECT_EQ(queue.requeue_failed(std::string("network")), 2u);
  Counts counts = queue.counts();
  EXPECT_EQ(counts.failed, 1u);
  EXPECT_EQ(counts.queued, 2u);
  EXPECT_EQ(counts.failed_by_reason.count("network"), 0u);
  std::set<std::string> keys{key_of(must_fetch(queue)), key_of(must_fetch(queue))};
  EXPECT_EQ(keys, (std::set<std::string>{"n1", "n2"}));
  queue.push({copy_job("d1")});
  EXPECT_TRUE(queue.complete(must_fetch(queue), Outcome::copied("d1", 1)));
  EXPECT_EQ(queue.counts().failed, 0u) << "a later success removes the failure record";
}

TEST(MemoryQueue, BuryMovesThePayloadAside) {
  MemoryQueue queue("m");
  queue.push({copy_job("x")});
  Lease lease = must_fetch(queue);
  EXPECT_TRUE(queue.bury(lease, "bad payload"));
  EXPECT_FALSE(queue.bury(lease, "again"));
  std::vector<DeadEntry> dead;
  queue.for_each_dead([&](const DeadEntry& entry) { dead.push_back(entry); });
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].error, "bad payload");
  EXPECT_EQ(dead[0].payload, lease.payload);
  EXPECT_TRUE(queue.idle());
}

TEST(MemoryQueue, HeartbeatsCursorsAndPurge) {
  MemoryQueue queue("m");
  queue.heartbeat("w1", "{}");
  ASSERT_EQ(queue.live_workers(1s).size(), 1u);
  std::this_thread::sleep_for(30ms);
  EXPECT_TRUE(queue.live_workers(10ms).empty());
  queue.set_cursor("blobs", "42");
  EXPECT_EQ(queue.get_cursor("blobs"), std::optional<std::string>("42"));
  EXPECT_EQ(queue.get_cursor("other"), std::nullopt);
  queue.push({copy_job("a")});
  queue.purge();
  EXPECT_TRUE(queue.idle());
  EXPECT_EQ(queue.get_cursor("blobs"), std::nullopt);
  EXPECT_EQ(queue.counts().queued_total, 0u);
}

TEST(MemoryQueue, PushWithCursorStoresBoth) {
  MemoryQueue queue("m");
  queue.push_with_cursor({copy_job("a"), copy_job("b")}, "manifest", "2");
  EXPECT_EQ(queue.queue_length(), 2u);
  EXPECT_EQ(queue.get_cursor("manifest"), std::optional<std::string>("2"));
  EXPECT_EQ(queue.counts().queued_total, 2u);
}

TEST(MemoryQueue, ConcurrentProducersAndConsumersLoseNothing) {
  MemoryQueue queue("m");
  constexpr int kProducers = 4, kJobsEach = 1000, kConsumers = 4;
  std::mutex mutex;
  std::multiset<std::string> seen;
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kJobsEach; i += 10) {
        std::vector<Job> jobs;
        for (int j = i; j < i + 10; ++j) jobs.push_back(copy_job(std::to_string(p) + "/" + std::to_string(j)));
        queue.push(jobs);
      }
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      int handled = 0;
      while (done.load() < kProducers * kJobsEach) {
        auto lease = queue.fetch("c" + std::to_string(c), 50ms);
        if (!lease) continue;
        // Every third job takes a detour through release or a short retry.
        if (++handled % 3 == 0 && decode_job(lease->payload).attempts == 0) {
          Job job = decode_job(lease->payload);
          ++job.attempts;
          ASSERT_TRUE(handled % 2 ? queue.retry_later(*lease, job, 1ms) : queue.release(*lease));
          continue;
        }
        ASSERT_TRUE(queue.complete(*lease, Outcome::copied(key_of(*lease), 1)));
        std::lock_guard lock(mutex);
        seen.insert(key_of(*lease));
        ++done;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kProducers * kJobsEach));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), seen.size()) << "no job ran twice";
  Counts counts = queue.counts();
  EXPECT_EQ(counts.copied, static_cast<std::uint64_t>(kProducers * kJobsEach));
  EXPECT_TRUE(counts.idle());
}

}  // namespace
}  // namespace blobferry
