// When and how long to wait before retrying a failed step in place, and when
// to hand a failed job back to the queue for a later attempt.
#include "common/base/retry_policy.h"

#include <algorithm>
#include <mutex>
#include <random>
#include <thread>

#include "common/base/cancellation.h"

namespace blobferry {

struct RetryPolicy::Random {
  explicit Random(std::uint64_t seed) : engine(seed) {}
  std::mutex mutex;
  std::mt19937_64 engine;
};

namespace {

std::uint64_t random_seed() {
  std::random_device device;
  return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

// A backoff pause ends early when the calling thread's work is cancelled
// (the caller checks the token after it), so a stopping worker never waits
// out a long Retry-After.
void real_sleep(std::chrono::milliseconds duration) {
  if (const CancellationToken* token = CancellationToken::current()) {
    token->sleep_for(duration);
  } else {
    std::this_thread::sleep_for(duration);
  }
}

// base * 2^attempt without overflow: past 2^40 every sane cap is exceeded anyway.
std::chrono::milliseconds exponential_ceiling(std::chrono::milliseconds base,
                                              std::chrono::milliseconds cap, int attempt) {
  const int exponent = std::clamp(attempt, 0, 40);
  const auto base_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(base.count(), 0));
  const auto cap_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(cap.count(), 0));
  if (base_ms != 0 && (cap_ms >> exponent) < base_ms) return std::chrono::milliseconds(cap_ms);
  return std::chrono::milliseconds(std::min(cap_ms, base_ms << exponent));
}

int in_place_limit(const RetryOptions& options, ErrorKind kind) {
  if (options.retry_every_kind && kind != ErrorKind::kIntegrity) return options.retries;
  switch (kind) {
    case ErrorKind::kTransient:
    case ErrorKind::kThrottled:
      return options.retries;
    case ErrorKind::kIntegrity:
      return std::min(options.retries, options.integrity_retries);
    case ErrorKind::kPermanent:
    case ErrorKind::kConfig:
      return 0;
  }
  return 0;
}

}  // namespace

RetryPolicy::RetryPolicy(RetryOptions options) : RetryPolicy(std::move(options), random_seed()) {}

RetryPolicy::RetryPolicy(RetryOptions options, std::uint64_t seed, Sleeper sleeper)
    : options_(std::move(options)),
      random_(std::make_shared<Random>(seed)),
      sleeper_(sleeper ? std::move(sleeper) : Sleeper(real_sleep)) {}

std::uint64_t RetryPolicy::uniform(std::uint64_t low, std::uint64_t high) const {
  std::uniform_int_distribution<std::uint64_t> distribution(low, high);
  std::lock_guard lock(random_->mutex);
  return distribution(random_->engine);
}

bool RetryPolicy::should_retry(const Error& error, int attempt) const {
  if (error.retry_after() > options_.max_retry_after) return false;
  return attempt < in_place_limit(options_, error.kind());
}

std::optional<std::chrono::milliseconds> RetryPolicy::next_pause(const Error& error, RetryState& state) const {
  const int counted = error.kind() == ErrorKind::kIntegrity ? state.integrity_failures : state.retries;
  if (!should_retry(error, counted)) return std::nullopt;
  const auto pause = delay(error, state.retries);
  ++state.retries;
  if (error.kind() == ErrorKind::kIntegrity) ++state.integrity_failures;
  return pause;
}

std::chrono::milliseconds RetryPolicy::backoff(int attempt) const {
  const auto ceiling = exponential_ceiling(options_.base, options_.cap, attempt);
  return std::chrono::milliseconds(uniform(0, static_cast<std::uint64_t>(ceiling.count())));
}

std::chrono::milliseconds RetryPolicy::delay(const Error& error, int attempt) const {
  return std::max(backoff(attempt), error.retry_after());
}

void RetryPolicy::sleep(std::chrono::milliseconds duration) const { sleeper_(duration); }

bool RetryPolicy::should_reschedule(const Error& error, int job_attempt) const {
  return error.retryable() && job_attempt < options_.max_job_attempts;
}

std::chrono::milliseconds RetryPolicy::reschedule_delay(int job_attempt) const {
  const auto& steps = options_.reschedule_steps;
  if (steps.empty()) return std::chrono::milliseconds{0};
  const auto index = static_cast<std::size_t>(std::max(job_attempt, 1) - 1);
  const auto step = static_cast<std::uint64_t>(std::max<std::int64_t>(
      steps[std::min(index, steps.size() - 1)].count(), 0));
  // Shortening, never lengthening, keeps the last step an honest cap while
  // spreading out jobs that failed together (a throttling burst).
  const double jitter = std::clamp(options_.reschedule_jitter, 0.0, 1.0);
  const auto shortest = static_cast<std::uint64_t>(static_cast<double>(step) * (1.0 - jitter));
  return std::chrono::milliseconds(uniform(shortest, step));
}

std::chrono::milliseconds RetryPolicy::reschedule_delay(const Error& error, int job_attempt) const {
  return std::max(reschedule_delay(job_attempt), error.retry_after());
}

}  // namespace blobferry
