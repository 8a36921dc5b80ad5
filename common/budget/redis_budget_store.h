// Budgets shared by every worker of a migration: one Redis hash per bucket, changed by one Lua script.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/budget/budget_store.h"

namespace blobferry {

class RedisClient;

// Each call is one EVALSHA that refills, climbs, takes or cuts atomically,
// dated by Redis's clock so worker clocks do not matter. The script is
// AimdBucket's arithmetic in Lua. Buckets expire a day after their last use
// (they are bf:{migration}:budget:<name>, beside the migration's queue keys).
class RedisBudgetStore final : public BudgetStore {
 public:
  RedisBudgetStore(std::shared_ptr<RedisClient> client, const std::string& migration, AimdTuning tuning = {});

  AimdTake take(const BudgetKey& key, double want, double used) override;
  bool cut(const BudgetKey& key, std::int64_t retry_after_ms) override;
  std::optional<BudgetSnapshot> snapshot(const BudgetKey& key) override;

  // For tests: dates the following calls at now_ms instead of Redis's clock (0: Redis's again).
  void set_fixed_now(std::int64_t now_ms) { fixed_now_ms_ = now_ms; }

 private:
  std::vector<std::string> args(const char* op, const BudgetKey& key, double a, double b) const;

  std::shared_ptr<RedisClient> client_;
  std::string prefix_;
  AimdTuning tuning_;
  std::int64_t fixed_now_ms_ = 0;
};

}  // namespace blobferry
