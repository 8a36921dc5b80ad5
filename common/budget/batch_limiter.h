// This process's share of one shared bucket: tokens taken in small batches so the store is not asked per request.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

#include "common/budget/budget_store.h"

namespace blobferry {

struct BatchLimiterOptions {
  double batch_seconds = 0.05;  // a batch is this long's worth of the shared rate
  std::chrono::milliseconds token_life{1000};   // batch tokens unused this long are dropped
  std::chrono::milliseconds unlimited_sync{100};  // an unlimited bucket is asked again this often
  std::chrono::milliseconds store_outage{2000};  // with the store away, go on unlimited this long
};

// Thread-safe. While the bucket is unlimited (no ceiling, never throttled)
// requests go through without asking and are reported with the next sync,
// so a cut knows the fleet's rate.
class BatchLimiter {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  BatchLimiter(BudgetStore& store, BudgetKey key, BatchLimiterOptions options = {}, Clock clock = {});

  // Blocks until `amount` tokens were granted.
  void acquire(double amount);
  // Tells the store; drops what this process holds so the next acquire
  // learns the new rate. Returns whether the store cut the rate.
  bool report_throttled(std::chrono::milliseconds retry_after);

  const BudgetKey& key() const { return key_; }
  // The rate as last heard from the store (0: unlimited).
  double last_rate() const;

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  void ask_store(TimePoint now);

  BudgetStore& store_;
  BudgetKey key_;
  BatchLimiterOptions options_;
  Clock clock_;
  mutable std::mutex mutex_;
  double local_ = 0;       // tokens granted to this process, not yet used
  TimePoint local_expiry_{};
  TimePoint unlimited_until_{};
  TimePoint wait_until_{};
  double unreported_ = 0;  // used while unlimited, not yet told
  double rate_ = 0;
  bool store_warned_ = false;
};

}  // namespace blobferry
