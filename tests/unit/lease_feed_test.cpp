// LeaseFeed: batches no larger than the threads waiting, every lease to a waiting thread, stop, and fetch errors.
#include "worker/loop/lease_feed.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/base/error.h"
#include "common/queue/memory_queue.h"
#include "tests/support/queue_jobs.h"

namespace blobferry {
namespace {

using namespace std::chrono_literals;

struct Fixture {
  std::shared_ptr<MemoryQueue> queue = std::make_shared<MemoryQueue>("m");
  std::mutex mutex;
  std::vector<std::size_t> asked;  // max of each fetch

  LeaseFeed::Fetch fetch(std::chrono::milliseconds wait) {
    return [this, wait](std::size_t max) {
      {
        std::lock_guard lock(mutex);
        asked.push_back(max);
      }
      std::vector<FedLease> fed;
      for (Lease& lease : queue->fetch_batch("w", max, wait)) fed.push_back({{"m", queue}, std::move(lease)});
      return fed;
    };
  }
};

TEST(LeaseFeed, LeasesGoOnlyToWaitingThreadsAndNoBatchExceedsThem) {
  Fixture f;
  std::vector<Job> jobs;
  for (int i = 0; i < 20; ++i) jobs.push_back(testing::copy_job("k" + std::to_string(i)));
  f.queue->push(jobs);
  LeaseFeed feed(8, 0ms, f.fetch(100ms));
  // Five threads each take one lease and hold it (a copy in flight).
  std::vector<std::optional<FedLease>> held(5);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < held.size(); ++i) {
    threads.emplace_back([&, i] {
      while (!held[i]) held[i] = feed.next();
    });
  }
  for (auto& thread : threads) thread.join();
  Counts counts = f.queue->counts();
  EXPECT_EQ(counts.in_flight, 5u) << "no lease fetched beyond the threads that asked";
  EXPECT_EQ(counts.queued, 15u);
  std::size_t fetched = 0;
  for (std::size_t max : f.asked) {
    EXPECT_GE(max, 1u);
    EXPECT_LE(max, 5u) << "a batch never exceeds the threads waiting";
    fetched += max;
  }
  EXPECT_EQ(fetched, 5u) << "the queue had jobs for every fetch, so each took what it asked";
}

TEST(LeaseFeed, ABatchIsCappedAtMaxBatch) {
  Fixture f;
  std::vector<Job> jobs;
  for (int i = 0; i < 10; ++i) jobs.push_back(testing::copy_job("k" + std::to_string(i)));
  // The first fetch blocks until all six threads wait, so the next one could take six.
  std::atomic<int> entered{0};
  std::atomic<bool> go{false};
  LeaseFeed::Fetch inner = f.fetch(0ms);
  LeaseFeed feed(4, 0ms, [&](std::size_t max) {
    if (entered++ == 0) {
      while (!go.load()) std::this_thread::sleep_for(1ms);
      return std::vector<FedLease>{};
    }
    return inner(max);
  });
  f.queue->push(jobs);
  std::vector<std::thread> threads;
  std::atomic<int> got{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      for (;;) {
        if (feed.next()) {
          ++got;
          return;
        }
      }
    });
  }
  while (entered.load() == 0) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(50ms);  // the other five queue up behind the fetch (not asserted on)
  go = true;
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(got.load(), 6);
  for (std::size_t max : f.asked) EXPECT_LE(max, 4u);
  EXPECT_EQ(f.queue->counts().in_flight, 6u);
}

TEST(LeaseFeed, AFetcherLingersUntilABatchOfThreadsIsFree) {
  Fixture f;
  std::vector<Job> jobs;
  for (int i = 0; i < 10; ++i) jobs.push_back(testing::copy_job("k" + std::to_string(i)));
  f.queue->push(jobs);
  // The linger ends as soon as four threads wait; an hour would fail the suite's timeout, not pass.
  LeaseFeed feed(4, std::chrono::hours(1), f.fetch(0ms));
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      while (!feed.next()) {
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(f.asked, (std::vector<std::size_t>{4})) << "one round trip for the four";
  EXPECT_EQ(f.queue->counts().in_flight, 4u);
}

TEST(LeaseFeed, StopWakesWaitingThreadsAndErrorsReachOnlyTheFetcher) {
  std::atomic<int> fetches{0};
  LeaseFeed feed(8, 0ms, [&](std::size_t) -> std::vector<FedLease> {
    if (fetches++ == 0) throw Error(ErrorKind::kTransient, FailureReason::kNetwork, "redis EVALSHA: connection refused");
    std::this_thread::sleep_for(5ms);
    return {};
  });
  EXPECT_THROW(feed.next(), Error);
  EXPECT_FALSE(feed.next().has_value()) << "an empty fetch returns to its thread";
  std::atomic<int> ended{0};
  std::atomic<bool> stopping{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&] {
      // Empty fetches come back to their thread, which asks again until stopped.
      while (feed.next().has_value() || !stopping.load()) {
      }
      ++ended;
    });
  }
  std::this_thread::sleep_for(20ms);
  stopping = true;
  feed.stop();
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ended.load(), 3);
  EXPECT_FALSE(feed.next().has_value()) << "stopped";
}

}  // namespace
}  // namespace blobferry
