// What `status` shows of a migration's shared budgets: the rate now and how often it was cut.
#include "common/budget/budget_status.h"

#include "common/budget/budget_limits.h"

namespace blobferry {

std::vector<BudgetStatus> read_budget_status(BudgetStore& store, const std::string& from, const std::string& to) {
  std::vector<BudgetStatus> found;
  for (const auto& [service, direction] : {std::pair{from, BudgetDirection::kRead}, std::pair{to, BudgetDirection::kWrite}}) {
    // The ceiling in a key only matters to the in-process store; Redis's
    // snapshot reports the one the workers sent.
    const auto requests = store.snapshot({request_bucket_name(service, direction), 0, true});
    if (!requests) continue;
    found.push_back({service, to_string(direction), *requests,
                     store.snapshot({byte_bucket_name(service, direction), 0, false})});
  }
  return found;
}

}  // namespace blobferry
