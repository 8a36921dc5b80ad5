// When and how long to wait before retrying a failed step in place, and when
// to hand a failed job back to the queue for a later attempt.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "common/base/error.h"

namespace blobferry {

struct RetryOptions {
  // In-place retries of a transient or throttled failure (the worker's --retries).
  int retries = 5;
  // A checksum or size mismatch that repeats is the data, not the wire.
  int integrity_retries = 2;
  // Full-jitter exponential backoff: random(0, min(cap, base * 2^attempt)).
  std::chrono::milliseconds base{200};
  std::chrono::milliseconds cap{20'000};
  // A server asking for a longer pause than this is not waited for in place:
  // the step gives up and the job goes back to the queue instead.
  std::chrono::milliseconds max_retry_after{60'000};
  // Later retries through the queue: step n after the n-th failed run of a
  // job, the last step repeating; each shortened by up to reschedule_jitter.
  std::vector<std::chrono::milliseconds> reschedule_steps{
      std::chrono::seconds{30}, std::chrono::minutes{2}, std::chrono::minutes{10},
      std::chrono::minutes{30}, std::chrono::minutes{60}};
  double reschedule_jitter = 0.2;
  // Runs of one job (first run included) before it is recorded as failed.
  int max_job_attempts = 5;
};

// Thread-safe; copies share one random generator, so a policy can be handed
// by value to every copy engine and worker thread.
class RetryPolicy {
 public:
  using Sleeper = std::function<void(std::chrono::milliseconds)>;

  // A fixed seed and a recording sleeper make the policy deterministic and
  // instant in tests; the defaults seed from std::random_device and sleep.
  explicit RetryPolicy(RetryOptions options = {});
  RetryPolicy(RetryOptions options, std::uint64_t seed, Sleeper sleeper = {});

  const RetryOptions& options() const { return options_; }

  // attempt is the 0-based index of the try that just failed with error.
  bool should_retry(const Error& error, int attempt) const;
  // The pause before the next try: full jitter, never below error.retry_after().
  std::chrono::milliseconds delay(const Error& error, int attempt) const;
  // The pause without a server hint.
  std::chrono::milliseconds backoff(int attempt) const;
  void sleep(std::chrono::milliseconds duration) const;

  // job_attempt is the 1-based number of the run of the job that just failed.
  bool should_reschedule(const Error& error, int job_attempt) const;
  std::chrono::milliseconds reschedule_delay(int job_attempt) const;
  // Same, never below the server's Retry-After.
  std::chrono::milliseconds reschedule_delay(const Error& error, int job_attempt) const;
  int max_job_attempts() const { return options_.max_job_attempts; }

 private:
  struct Random;
  std::uint64_t uniform(std::uint64_t low, std::uint64_t high) const;  // inclusive

  RetryOptions options_;
  std::shared_ptr<Random> random_;
  Sleeper sleeper_;
};

}  // namespace blobferry
