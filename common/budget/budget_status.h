// What `status` shows of a migration's shared budgets: the rate now and how often it was cut.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/budget/budget_store.h"

namespace blobferry {

struct BudgetStatus {
  std::string service;
  std::string direction;                   // "read" (the source) or "write" (the target)
  BudgetSnapshot requests;                 // rate 0: unlimited (no ceiling, never throttled)
  std::optional<BudgetSnapshot> bytes;     // only with a bandwidth configured
};

// The buckets of a migration from `from` to `to` that workers have used; a
// service none has used yet is left out. Throws what the store throws.
std::vector<BudgetStatus> read_budget_status(BudgetStore& store, const std::string& from, const std::string& to);

}  // namespace blobferry
