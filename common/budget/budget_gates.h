// The gates of a worker process: one per migration, service and direction, made on first use.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "common/budget/budget_limits.h"
#include "common/budget/budget_store.h"

namespace blobferry {

class BudgetGate;
class GatedStorage;
class JobQueue;
class Metrics;
class Storage;
class StorageConfig;

class BudgetGates {
 public:
  // Opens the store of a migration's buckets (Redis, or in-process).
  using StoreFactory = std::function<std::unique_ptr<BudgetStore>(const std::string& migration)>;

  // own: the limits this process was started with (worker options), applied
  // on top of each migration's; metrics may be null.
  BudgetGates(StoreFactory stores, const StorageConfig& config, BudgetLimits own = {}, Metrics* metrics = nullptr);
  ~BudgetGates();

  // `inner` seen through the budget of `service` in `direction` for
  // `migration` (the same object on every call); the migration's limits are
  // read from its queue once. Thread-safe.
  Storage& wrap(JobQueue& queue, const std::string& migration, const std::string& service, BudgetDirection direction,
                Storage& inner);
  // wrap(), or `inner` itself when there are no gates.
  static Storage& wrap_if(BudgetGates* gates, JobQueue& queue, const std::string& migration,
                          const std::string& service, BudgetDirection direction, Storage& inner) {
    return gates ? gates->wrap(queue, migration, service, direction, inner) : inner;
  }

 private:
  struct Gated;
  using GateKey = std::tuple<std::string, std::string, BudgetDirection>;

  StoreFactory stores_;
  const StorageConfig& config_;
  BudgetLimits own_;
  Metrics* metrics_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<BudgetStore>> store_of_;  // by migration
  std::map<GateKey, std::unique_ptr<Gated>> gates_;
};

}  // namespace blobferry
