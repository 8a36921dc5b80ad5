// This process's share of one shared bucket: tokens taken in small batches so the store is not asked per request.
#include "common/budget/batch_limiter.h"

#include <algorithm>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/base/cancellation.h"
#include "common/base/error.h"

namespace blobferry {
namespace {

// Sleeps are short so a cancelled copy stops waiting promptly.
constexpr std::chrono::milliseconds kMaxNap{50};

}  // namespace

BatchLimiter::BatchLimiter(BudgetStore& store, BudgetKey key, BatchLimiterOptions options, Clock clock)
    : store_(store), key_(std::move(key)), options_(options), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return std::chrono::steady_clock::now(); };
}

double BatchLimiter::last_rate() const {
  std::lock_guard lock(mutex_);
  return rate_;
}

void BatchLimiter::ask_store(TimePoint now) {
  const double want = std::max(1.0, rate_ * options_.batch_seconds);
  AimdTake took;
  try {
    took = store_.take(key_, want, unreported_);
  } catch (const Error& e) {
    // The budget protects the service; a Redis outage must not stop the copies
    // (the queue's own calls already wait for Redis). Go on unbudgeted a while.
    if (!store_warned_) spdlog::warn("budget {}: store unavailable, not limiting meanwhile: {}", key_.name, e.what());
    store_warned_ = true;
    unlimited_until_ = now + options_.store_outage;
    return;
  }
  store_warned_ = false;
  unreported_ = 0;
  rate_ = took.rate;
  if (took.rate <= 0) {
    unlimited_until_ = now + options_.unlimited_sync;
  } else if (took.granted > 0) {
    local_ += took.granted;
    local_expiry_ = now + options_.token_life;
  } else {
    wait_until_ = now + std::chrono::milliseconds(std::clamp<std::int64_t>(took.wait_ms, 1, 1000));
  }
}

void BatchLimiter::acquire(double amount) {
  while (amount > 0) {
    CancellationToken::throw_if_current_cancelled("waiting for budget " + key_.name);
    std::unique_lock lock(mutex_);
    const TimePoint now = clock_();
    if (local_ > 0 && now >= local_expiry_) local_ = 0;
    if (local_ > 0) {
      const double used = std::min(amount, local_);
      local_ -= used;
      amount -= used;
      continue;
    }
    if (now < unlimited_until_) {
      unreported_ += amount;
      return;
    }
    if (now < wait_until_) {
      const auto nap = std::min<std::chrono::steady_clock::duration>(wait_until_ - now, kMaxNap);
      lock.unlock();
      std::this_thread::sleep_for(nap);
      continue;
    }
    // Under the lock: one store call per process at a time, the others wait for its batch.
    ask_store(now);
  }
}

bool BatchLimiter::report_throttled(std::chrono::milliseconds retry_after) {
  bool cut = false;
  try {
    cut = store_.cut(key_, retry_after.count());
  } catch (const Error& e) {
    spdlog::debug("budget {}: could not report throttling: {}", key_.name, e.what());
  }
  // No wait of its own for Retry-After: the store decides whether the fleet
  // holds (the next take says so), and the copy that met it waits in its retry.
  std::lock_guard lock(mutex_);
  local_ = 0;
  unlimited_until_ = {};
  return cut;
}

}  // namespace blobferry
