// Budgets kept in this process, for the embedded `migrate` that has no Redis.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "common/budget/budget_store.h"

namespace blobferry {

class LocalBudgetStore final : public BudgetStore {
 public:
  using Clock = std::function<std::int64_t()>;  // milliseconds, for tests; default: steady clock

  explicit LocalBudgetStore(Clock clock = {}, AimdTuning tuning = {});

  AimdTake take(const BudgetKey& key, double want, double used) override;
  bool cut(const BudgetKey& key, std::int64_t retry_after_ms) override;
  std::optional<BudgetSnapshot> snapshot(const BudgetKey& key) override;

 private:
  Clock clock_;
  AimdTuning tuning_;
  std::mutex mutex_;
  std::map<std::string, AimdState> states_;
};

}  // namespace blobferry
