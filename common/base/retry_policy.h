// When and how long to wait before retrying a failed step in place, and when
// to hand a failed job back to the queue for a later attempt.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
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
  // Permanent and config errors get `retries` too: for a call that must land
  // sooner or later whatever Redis answers meanwhile (a worker recording a
  // result, which gives up only at its drain deadline).
  bool retry_every_kind = false;
};

// Where one run() is: tries made, and integrity failures among them.
struct RetryState {
  int retries = 0;
  // Integrity failures have their own, smaller budget: a mismatch after a
  // couple of network errors is not yet "a mismatch that repeats".
  int integrity_failures = 0;
};

// The one retry mechanism: every in-place retry (copy steps, multipart
// aborts, Redis reconnects) is a configuration of it.
// Thread-safe; copies share one random generator, so a policy can be handed
// by value to every copy engine and worker thread.
class RetryPolicy {
 public:
  using Sleeper = std::function<void(std::chrono::milliseconds)>;
  // Told before each pause: the error, the retry about to be made (1-based)
  // and the pause. For logs and counters; it may throw to give up early.
  using OnRetry = std::function<void(const Error&, int retry, std::chrono::milliseconds pause)>;

  // A fixed seed and a recording sleeper make the policy deterministic and
  // instant in tests; the defaults seed from std::random_device and sleep.
  explicit RetryPolicy(RetryOptions options = {});
  RetryPolicy(RetryOptions options, std::uint64_t seed, Sleeper sleeper = {});

  const RetryOptions& options() const { return options_; }

  // Calls fn until it returns, retrying in place each blobferry::Error that
  // next_pause() allows after sleeping its pause; rethrows the one it does
  // not. Anything but an Error passes straight through.
  template <typename Fn>
  std::invoke_result_t<Fn&> run(Fn&& fn, const OnRetry& on_retry = {}) const {
    RetryState state;
    for (;;) {
      try {
        return fn();
      } catch (const Error& error) {
        const std::optional<std::chrono::milliseconds> pause = next_pause(error, state);
        if (!pause) throw;
        if (on_retry) on_retry(error, state.retries, *pause);
        sleep(*pause);
      }
    }
  }

  // The decision run() makes after a failed try: nullopt to give up, else the
  // pause before the next one (state then counts that retry). Pure but for
  // the random source, so tests drive it with a fixed seed.
  std::optional<std::chrono::milliseconds> next_pause(const Error& error, RetryState& state) const;

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
