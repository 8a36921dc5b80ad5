// SettleBatcher (batches per queue, order, flush on a full batch, on delay and on close) and the retry policy of every settle.
#include "worker/loop/settle_batcher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/queue/memory_queue.h"
#include "tests/support/queue_jobs.h"

namespace blobferry {
namespace {

using namespace std::chrono_literals;

// What the batcher handed over, as the queue it records into saw it.
struct Recorded {
  std::mutex mutex;
  std::vector<std::pair<JobQueue*, std::vector<std::string>>> calls;  // queue, keys in order

  SettleBatcher::Record recorder() {
    return [this](JobQueue& queue, const std::vector<Completion>& completions) {
      queue.complete_batch(completions);
      std::vector<std::string> keys;
      for (const Completion& completion : completions) keys.push_back(completion.outcome.objects.at(0).key);
      std::lock_guard lock(mutex);
      calls.emplace_back(&queue, std::move(keys));
    };
  }
  std::size_t completions() {
    std::lock_guard lock(mutex);
    std::size_t n = 0;
    for (const auto& call : calls) n += call.second.size();
    return n;
  }
  // Waits (up to 10 s, so a lost completion fails instead of hanging) for n completions.
  bool wait_for(std::size_t n) {
    for (int i = 0; i < 1000 && completions() < n; ++i) std::this_thread::sleep_for(10ms);
    return completions() >= n;
  }
};

// Leases of `count` fresh jobs keyed prefix0, prefix1, …
std::vector<Lease> leases_of(JobQueue& queue, const std::string& prefix, int count) {
  std::vector<Job> jobs;
  for (int i = 0; i < count; ++i) jobs.push_back(testing::copy_job(prefix + std::to_string(i)));
  queue.push(jobs);
  return queue.fetch_batch("w", static_cast<std::size_t>(count), 0ms);
}

TEST(SettleBatcher, AFullBatchIsRecordedAtOnceWithoutWaitingForTheDelay) {
  MemoryQueue queue("m");
  Recorded recorded;
  // A delay no test waits for: only a full batch can trigger these records.
  SettleBatcher batcher({.max_batch = 4, .max_delay = std::chrono::hours(1)}, recorded.recorder());
  const std::vector<Lease> leases = leases_of(queue, "k", 10);
  for (int i = 0; i < 8; ++i) batcher.add(queue, {leases[i], Outcome::copied("k" + std::to_string(i), 1)});
  ASSERT_TRUE(recorded.wait_for(8));
  EXPECT_EQ(queue.counts().copied, 8u);
  batcher.add(queue, {leases[8], Outcome::copied("k8", 1)});
  batcher.add(queue, {leases[9], Outcome::copied("k9", 1)});
  batcher.close();  // records what is pending
  ASSERT_EQ(recorded.calls.size(), 3u);
  EXPECT_EQ(recorded.calls[0].second, (std::vector<std::string>{"k0", "k1", "k2", "k3"}));
  EXPECT_EQ(recorded.calls[1].second, (std::vector<std::string>{"k4", "k5", "k6", "k7"}));
  EXPECT_EQ(recorded.calls[2].second, (std::vector<std::string>{"k8", "k9"}));
  Counts counts = queue.counts();
  EXPECT_EQ(counts.copied, 10u);
  EXPECT_EQ(counts.in_flight, 0u);
  batcher.close();  // idempotent
}

TEST(SettleBatcher, ALoneCompletionIsRecordedAfterTheDelay) {
  MemoryQueue queue("m");
  Recorded recorded;
  SettleBatcher batcher({.max_batch = 100, .max_delay = 20ms}, recorded.recorder());
  const std::vector<Lease> leases = leases_of(queue, "alone", 1);
  batcher.add(queue, {leases[0], Outcome::copied("alone0", 1)});
  EXPECT_TRUE(recorded.wait_for(1)) << "never recorded while the batcher runs";
  EXPECT_EQ(queue.counts().copied, 1u);
}

TEST(SettleBatcher, EachQueueGetsItsOwnCallInTheOrderOfItsCompletions) {
  MemoryQueue first("one");
  MemoryQueue second("two");
  Recorded recorded;
  SettleBatcher batcher({.max_batch = 6, .max_delay = std::chrono::hours(1)}, recorded.recorder());
  const std::vector<Lease> a = leases_of(first, "a", 3);
  const std::vector<Lease> b = leases_of(second, "b", 3);
  for (int i = 0; i < 3; ++i) {
    batcher.add(first, {a[i], Outcome::copied("a" + std::to_string(i), 1)});
    batcher.add(second, {b[i], Outcome::skipped("b" + std::to_string(i), 1)});
  }
  ASSERT_TRUE(recorded.wait_for(6));
  batcher.close();
  ASSERT_EQ(recorded.calls.size(), 2u);
  EXPECT_EQ(recorded.calls[0].first, &first);
  EXPECT_EQ(recorded.calls[0].second, (std::vector<std::string>{"a0", "a1", "a2"}));
  EXPECT_EQ(recorded.calls[1].first, &second);
  EXPECT_EQ(recorded.calls[1].second, (std::vector<std::string>{"b0", "b1", "b2"}));
  EXPECT_EQ(first.counts().copied, 3u);
  EXPECT_EQ(second.counts().skipped, 3u);
}

TEST(SettleBatcher, ManyThreadsAddingLoseNothingAndCountNothingTwice) {
  MemoryQueue queue("m");
  Recorded recorded;
  SettleBatcher batcher({.max_batch = 16, .max_delay = 1ms}, recorded.recorder());
  const std::vector<Lease> leases = leases_of(queue, "t", 800);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < 800; i += 8) batcher.add(queue, {leases[i], Outcome::copied("t" + std::to_string(i), 1)});
    });
  }
  for (auto& thread : threads) thread.join();
  batcher.close();
  EXPECT_EQ(recorded.completions(), 800u);
  for (const auto& call : recorded.calls) EXPECT_LE(call.second.size(), 16u);
  Counts counts = queue.counts();
  EXPECT_EQ(counts.copied, 800u);
  EXPECT_TRUE(counts.idle());
}

// The policy WorkerLoop::settle runs every queue call with: no error kind
// ends it (what the worker's own doubling loop did before), pauses within the
// 100 ms .. 5 s doubling ceiling.
TEST(SettleBatcher, RetryPolicyRetriesEveryKindOfQueueErrorWithCappedPauses) {
  std::vector<std::chrono::milliseconds> pauses;
  const RetryPolicy policy(SettleBatcher::retry_options(), 7, [&](std::chrono::milliseconds pause) { pauses.push_back(pause); });
  const std::vector<Error> errors{
      Error(ErrorKind::kPermanent, FailureReason::kRedis, "redis EVALSHA: OOM command not allowed"),
      Error(ErrorKind::kConfig, FailureReason::kConfig, "redis AUTH: WRONGPASS"),
      Error(ErrorKind::kTransient, FailureReason::kNetwork, "redis EVALSHA: connection refused"),
  };
  int calls = 0;
  const int answer = policy.run([&] {
    if (calls < 60) throw errors[static_cast<std::size_t>(calls++) % errors.size()];
    return 42;
  });
  EXPECT_EQ(answer, 42);
  ASSERT_EQ(pauses.size(), 60u) << "every error was retried";
  EXPECT_LE(pauses.front(), 100ms);
  for (std::size_t i = 0; i < pauses.size(); ++i) {
    EXPECT_LE(pauses[i].count(), std::min<std::int64_t>(5000, 100LL << std::min<std::size_t>(i, 20))) << "pause " << i;
  }
  // The default policy (copies) still gives up on a permanent error at once.
  const RetryPolicy copies(RetryOptions{}, 7, [](std::chrono::milliseconds) {});
  EXPECT_THROW(copies.run([&]() -> int { throw errors[0]; }), Error);
}

}  // namespace
}  // namespace blobferry
