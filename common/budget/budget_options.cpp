// --max-requests-per-second and --max-bandwidth, for the commands that take a budget.
#include "common/budget/budget_options.h"

#include "common/budget/rate_parser.h"

namespace blobferry {

void BudgetOptions::define(CLI::App& sub, const std::string& scope) {
  sub.add_option("--max-requests-per-second", requests_,
                 "requests per second to each service and direction (source reads, target writes) shared by every "
                 "worker " + scope + "; lowered on throttling");
  sub.add_option("--max-bandwidth", bandwidth_,
                 "bytes per second to each service and direction shared by every worker " + scope +
                     " (10MB/s, 500KiB/s, 80Mbit, or bytes)");
}

BudgetLimits BudgetOptions::limits() const {
  BudgetLimits limits;
  if (!requests_.empty()) limits.requests_per_second = parse_request_rate(requests_, "--max-requests-per-second");
  if (!bandwidth_.empty()) limits.bytes_per_second = parse_bandwidth(bandwidth_, "--max-bandwidth");
  return limits;
}

}  // namespace blobferry
