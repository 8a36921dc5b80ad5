// RetryPolicy: backoff bounds and spread, Retry-After, which errors retry, run(), the reschedule schedule.
#include "common/base/retry_policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

namespace blobferry {
namespace {

using std::chrono::milliseconds;

constexpr std::uint64_t kSeed = 20240601;

RetryPolicy seeded(RetryOptions options = {}) { return RetryPolicy(std::move(options), kSeed); }

Error transient() { return Error(ErrorKind::kTransient, FailureReason::kNetwork, "GET x: connection reset"); }
Error throttled(milliseconds retry_after) {
  return Error(ErrorKind::kThrottled, FailureReason::kThrottled, "PUT x: 503 SlowDown", 503, retry_after);
}
Error integrity() { return Error(ErrorKind::kIntegrity, FailureReason::kIntegrity, "GET x: md5 mismatch"); }
Error permanent() { return Error(ErrorKind::kPermanent, FailureReason::kNotFound, "GET x: 404", 404); }

TEST(RetryPolicy, BackoffStaysWithinExponentialCeilingForAttemptsZeroToTen) {
  const RetryPolicy policy = seeded();
  for (int attempt = 0; attempt <= 10; ++attempt) {
    const auto ceiling = std::min<std::int64_t>(20'000, 200LL << attempt);
    for (int sample = 0; sample < 200; ++sample) {
      const auto delay = policy.backoff(attempt);
      EXPECT_GE(delay.count(), 0) << "attempt " << attempt;
      EXPECT_LE(delay.count(), ceiling) << "attempt " << attempt;
    }
  }
}

TEST(RetryPolicy, CeilingReachesCapAndHugeAttemptsDoNotOverflow) {
  const RetryPolicy policy = seeded();
  milliseconds largest{0};
  for (int sample = 0; sample < 2000; ++sample) largest = std::max(largest, policy.backoff(1000));
  EXPECT_LE(largest.count(), 20'000);
  EXPECT_GT(largest.count(), 19'000);  // the cap itself is reachable, not a tiny wrapped value
  EXPECT_LE(policy.backoff(-3).count(), 200);
}

TEST(RetryPolicy, FullJitterSpreadsOverTheWholeInterval) {
  const RetryPolicy policy = seeded();
  constexpr int kSamples = 4000;
  const std::int64_t ceiling = 200LL << 4;  // 3.2 s
  std::vector<std::int64_t> delays;
  for (int i = 0; i < kSamples; ++i) delays.push_back(policy.backoff(4).count());
  const auto [low, high] = std::minmax_element(delays.begin(), delays.end());
  EXPECT_LT(*low, ceiling / 20);
  EXPECT_GT(*high, ceiling - ceiling / 20);
  double sum = 0;
  int below_half = 0;
  for (auto delay : delays) {
    sum += static_cast<double>(delay);
    if (delay < ceiling / 2) ++below_half;
  }
  EXPECT_NEAR(sum / kSamples, ceiling / 2.0, ceiling * 0.05);
  EXPECT_NEAR(below_half, kSamples / 2, kSamples / 20);
}

TEST(RetryPolicy, SameSeedGivesSameDelays) {
  const RetryPolicy first = seeded();
  const RetryPolicy second = seeded();
  for (int attempt = 0; attempt < 8; ++attempt) EXPECT_EQ(first.backoff(attempt), second.backoff(attempt));
}

TEST(RetryPolicy, RetryAfterIsAFloor) {
  const RetryPolicy policy = seeded();
  for (int sample = 0; sample < 100; ++sample) {
    EXPECT_GE(policy.delay(throttled(milliseconds{5'000}), 0).count(), 5'000);
  }
  // Above the jittered ceiling the hint wins outright.
  EXPECT_EQ(policy.delay(throttled(milliseconds{45'000}), 3), milliseconds{45'000});
  // Without a hint, the plain backoff applies.
  EXPECT_LE(policy.delay(transient(), 0).count(), 200);
}

TEST(RetryPolicy, TransientAndThrottledRetryUpToRetries) {
  const RetryPolicy policy = seeded(RetryOptions{.retries = 3});
  for (int attempt = 0; attempt < 3; ++attempt) {
    EXPECT_TRUE(policy.should_retry(transient(), attempt)) << attempt;
    EXPECT_TRUE(policy.should_retry(throttled(milliseconds{100}), attempt)) << attempt;
  }
  EXPECT_FALSE(policy.should_retry(transient(), 3));
  EXPECT_FALSE(policy.should_retry(throttled(milliseconds{100}), 3));
}

TEST(RetryPolicy, DefaultRetriesIsFive) {
  const RetryPolicy policy = seeded();
  EXPECT_TRUE(policy.should_retry(transient(), 4));
  EXPECT_FALSE(policy.should_retry(transient(), 5));
}

TEST(RetryPolicy, IntegrityRetriesAtMostTwice) {
  const RetryPolicy policy = seeded(RetryOptions{.retries = 10});
  EXPECT_TRUE(policy.should_retry(integrity(), 0));
  EXPECT_TRUE(policy.should_retry(integrity(), 1));
  EXPECT_FALSE(policy.should_retry(integrity(), 2));
  // Never more than the general limit either.
  const RetryPolicy strict = seeded(RetryOptions{.retries = 1});
  EXPECT_TRUE(strict.should_retry(integrity(), 0));
  EXPECT_FALSE(strict.should_retry(integrity(), 1));
}

TEST(RetryPolicy, PermanentAndConfigNeverRetry) {
  const RetryPolicy policy = seeded();
  EXPECT_FALSE(policy.should_retry(permanent(), 0));
  EXPECT_FALSE(policy.should_retry(config_error("unknown service"), 0));
  EXPECT_FALSE(policy.should_reschedule(permanent(), 1));
  EXPECT_FALSE(policy.should_reschedule(config_error("unknown service"), 1));
}

TEST(RetryPolicy, RetryAfterBeyondLimitIsLeftToTheQueue) {
  const RetryPolicy policy = seeded(RetryOptions{.max_retry_after = milliseconds{60'000}});
  EXPECT_TRUE(policy.should_retry(throttled(milliseconds{60'000}), 0));
  EXPECT_FALSE(policy.should_retry(throttled(milliseconds{60'001}), 0));
  EXPECT_TRUE(policy.should_reschedule(throttled(milliseconds{3'600'000}), 1));
  EXPECT_GE(policy.reschedule_delay(throttled(milliseconds{3'600'000}), 1).count(), 3'600'000);
}

TEST(RetryPolicy, RescheduleFollowsTheScheduleShortenedByJitter) {
  const RetryPolicy policy = seeded();
  const std::vector<std::int64_t> steps{30'000, 120'000, 600'000, 1'800'000, 3'600'000};
  for (int job_attempt = 1; job_attempt <= 8; ++job_attempt) {
    const auto step = steps[std::min<std::size_t>(job_attempt - 1, steps.size() - 1)];
    for (int sample = 0; sample < 100; ++sample) {
      const auto delay = policy.reschedule_delay(job_attempt).count();
      EXPECT_LE(delay, step) << "job attempt " << job_attempt;
      EXPECT_GE(delay, step * 8 / 10) << "job attempt " << job_attempt;
    }
  }
}

TEST(RetryPolicy, RescheduleDelaysActuallyVary) {
  const RetryPolicy policy = seeded();
  std::vector<std::int64_t> delays;
  for (int sample = 0; sample < 50; ++sample) delays.push_back(policy.reschedule_delay(2).count());
  std::sort(delays.begin(), delays.end());
  EXPECT_GT(std::unique(delays.begin(), delays.end()) - delays.begin(), 40);
}

TEST(RetryPolicy, RescheduleStopsAtMaxJobAttempts) {
  const RetryPolicy policy = seeded(RetryOptions{.max_job_attempts = 3});
  EXPECT_EQ(policy.max_job_attempts(), 3);
  EXPECT_TRUE(policy.should_reschedule(transient(), 1));
  EXPECT_TRUE(policy.should_reschedule(integrity(), 2));
  EXPECT_FALSE(policy.should_reschedule(transient(), 3));
  EXPECT_EQ(seeded().max_job_attempts(), 5);
}

TEST(RetryPolicy, SleepGoesThroughTheInjectedSleeper) {
  std::vector<milliseconds> slept;
  const RetryPolicy policy({}, kSeed, [&](milliseconds duration) { slept.push_back(duration); });
  const auto before = std::chrono::steady_clock::now();
  policy.sleep(milliseconds{20'000});
  policy.sleep(policy.delay(throttled(milliseconds{7'000}), 0));
  EXPECT_LT(std::chrono::steady_clock::now() - before, milliseconds{1'000});
  ASSERT_EQ(slept.size(), 2u);
  EXPECT_EQ(slept[0], milliseconds{20'000});
  EXPECT_GE(slept[1], milliseconds{7'000});
}

// A policy whose clock is the sleeps it records: run() costs no time.
struct RecordingPolicy {
  explicit RecordingPolicy(RetryOptions options = {})
      : policy(std::move(options), kSeed, [this](milliseconds d) { slept.push_back(d); }) {}
  std::vector<milliseconds> slept;
  RetryPolicy policy;
};

TEST(RetryPolicyRun, ReturnsTheValueOfTheFirstTryThatSucceeds) {
  RecordingPolicy recording;
  int calls = 0;
  std::vector<int> announced;
  const int value = recording.policy.run(
      [&] {
        if (++calls < 3) throw transient();
        return 42;
      },
      [&](const Error& error, int retry, milliseconds pause) {
        EXPECT_EQ(error.failure_reason(), FailureReason::kNetwork);
        EXPECT_LE(pause.count(), 200LL << (retry - 1)) << "full jitter under the exponential ceiling";
        announced.push_back(retry);
      });
  EXPECT_EQ(value, 42);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(announced, (std::vector<int>{1, 2}));
  EXPECT_EQ(recording.slept.size(), 2u) << "one pause per retry, none after the success";
}

TEST(RetryPolicyRun, GivesUpAfterTheRetryBudgetAndRethrowsTheLastError) {
  RetryOptions options;
  options.retries = 3;
  RecordingPolicy recording(options);
  int calls = 0;
  try {
    recording.policy.run([&] {
      ++calls;
      throw transient();
    });
    FAIL() << "a failure that never ends was swallowed";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kTransient);
  }
  EXPECT_EQ(calls, 4) << "the first try and three retries";
  EXPECT_EQ(recording.slept.size(), 3u);
}

TEST(RetryPolicyRun, StopsAtOnceOnANonTransientError) {
  RecordingPolicy recording;
  int calls = 0;
  EXPECT_THROW(recording.policy.run([&] {
    ++calls;
    throw permanent();
  }),
               Error);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(recording.slept.empty());

  calls = 0;
  EXPECT_THROW(recording.policy.run([&] {
    ++calls;
    throw config_error("unknown service");
  }),
               Error);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(recording.slept.empty());
}

TEST(RetryPolicyRun, OtherExceptionsPassStraightThrough) {
  RecordingPolicy recording;
  int calls = 0;
  EXPECT_THROW(recording.policy.run([&] {
    ++calls;
    throw std::logic_error("a bug, not a failure");
  }),
               std::logic_error);
  EXPECT_EQ(calls, 1);
}

TEST(RetryPolicyRun, HonoursRetryAfterAndGivesUpOnOneTooLong) {
  RecordingPolicy recording;
  int calls = 0;
  recording.policy.run([&] {
    if (++calls == 1) throw throttled(milliseconds{7'000});
  });
  ASSERT_EQ(recording.slept.size(), 1u);
  EXPECT_GE(recording.slept[0], milliseconds{7'000}) << "never sooner than the server asked";

  calls = 0;
  EXPECT_THROW(recording.policy.run([&] {
    ++calls;
    throw throttled(milliseconds{61'000});
  }),
               Error);
  EXPECT_EQ(calls, 1) << "a pause over max_retry_after goes back to the queue instead";
  EXPECT_EQ(recording.slept.size(), 1u);
}

TEST(RetryPolicyRun, IntegrityFailuresHaveTheirOwnSmallerBudget) {
  RecordingPolicy recording;  // retries 5, integrity_retries 2
  int calls = 0;
  EXPECT_THROW(recording.policy.run([&] {
    ++calls;
    // Network errors first do not use up the integrity budget.
    if (calls <= 3) throw transient();
    throw integrity();
  }),
               Error);
  EXPECT_EQ(calls, 6) << "three network errors, then the first integrity failure and its two retries";
}

TEST(RetryPolicyRun, OnRetryThrowingGivesUpWithoutSleeping) {
  RecordingPolicy recording;
  int calls = 0;
  EXPECT_THROW(recording.policy.run([&] {
    ++calls;
    throw transient();
  },
                                    [](const Error&, int, milliseconds) { throw std::runtime_error("stopping"); }),
               std::runtime_error);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(recording.slept.empty());
}

TEST(RetryPolicyRun, NextPauseCountsRetriesAndIsReproducibleWithAFixedSeed) {
  RetryPolicy first = seeded();
  RetryPolicy second = seeded();
  RetryState a;
  RetryState b;
  for (int i = 0; i < 5; ++i) {
    const auto pa = first.next_pause(transient(), a);
    const auto pb = second.next_pause(transient(), b);
    ASSERT_TRUE(pa && pb);
    EXPECT_EQ(*pa, *pb);
  }
  EXPECT_EQ(a.retries, 5);
  EXPECT_FALSE(first.next_pause(transient(), a)) << "retries defaults to 5";
  EXPECT_EQ(a.retries, 5) << "a refusal counts nothing";
}

TEST(RetryPolicy, CopiesShareOneGeneratorSafelyAcrossThreads) {
  const RetryPolicy policy = seeded();
  std::vector<std::thread> threads;
  std::vector<std::int64_t> maxima(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([copy = policy, &maxima, t] {
      for (int i = 0; i < 1000; ++i) maxima[t] = std::max<std::int64_t>(maxima[t], copy.backoff(2).count());
    });
  }
  for (auto& thread : threads) thread.join();
  for (auto maximum : maxima) EXPECT_LE(maximum, 800);
}

}  // namespace
}  // namespace blobferry
