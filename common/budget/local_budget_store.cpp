// Budgets kept in this process, for the embedded `migrate` that has no Redis.
#include "common/budget/local_budget_store.h"

namespace blobferry {

LocalBudgetStore::LocalBudgetStore(Clock clock, AimdTuning tuning) : clock_(std::move(clock)), tuning_(tuning) {
  if (!clock_) {
    clock_ = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count();
    };
  }
}

AimdTake LocalBudgetStore::take(const BudgetKey& key, double want, double used) {
  std::lock_guard lock(mutex_);
  return AimdBucket(key.ceiling, key.adaptive, tuning_).take(states_[key.name], clock_(), want, used);
}

bool LocalBudgetStore::cut(const BudgetKey& key, std::int64_t retry_after_ms) {
  std::lock_guard lock(mutex_);
  return AimdBucket(key.ceiling, key.adaptive, tuning_).cut(states_[key.name], clock_(), retry_after_ms);
}

std::optional<BudgetSnapshot> LocalBudgetStore::snapshot(const BudgetKey& key) {
  std::lock_guard lock(mutex_);
  auto it = states_.find(key.name);
  if (it == states_.end()) return std::nullopt;
  AimdBucket(key.ceiling, key.adaptive, tuning_).advance(it->second, clock_());
  return BudgetSnapshot{it->second.rate, key.ceiling, it->second.learned, it->second.cuts};
}

}  // namespace blobferry
