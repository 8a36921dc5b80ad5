// Where the shared budgets live: Redis for a fleet of workers, memory for the embedded migrate.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/budget/aimd_bucket.h"

namespace blobferry {

// One bucket: its name (migration, service, direction, what it counts) and
// its configured numbers, sent with every call so every worker applies the
// same ones.
struct BudgetKey {
  std::string name;       // e.g. "requests:target:write"; data, never a credential
  double ceiling = 0;     // configured tokens per second, 0 for none
  bool adaptive = false;  // cut on throttling (requests), or not (bytes)
};

// What status and the metrics show of a bucket.
struct BudgetSnapshot {
  double rate = 0;      // tokens per second allowed now, 0 for unlimited
  double ceiling = 0;   // configured, 0 for none
  double learned = 0;   // the rate throttled last, 0 before any cut
  std::uint64_t cuts = 0;
};

// Implementations are thread-safe; calls may throw Error (kTransient when
// Redis is away: the caller goes on without the budget meanwhile).
class BudgetStore {
 public:
  virtual ~BudgetStore() = default;
  virtual AimdTake take(const BudgetKey& key, double want, double used) = 0;
  virtual bool cut(const BudgetKey& key, std::int64_t retry_after_ms) = 0;
  // nullopt when the bucket was never used. Changes nothing; the ceiling
  // is the one the workers last sent (Redis) or key's (in-process).
  virtual std::optional<BudgetSnapshot> snapshot(const BudgetKey& key) = 0;
};

}  // namespace blobferry
