// A migration's budget as `enqueue`/`migrate` stored it, and how it combines with storage.yml's.
#pragma once

#include <optional>
#include <string>

namespace blobferry {

class JobQueue;
struct ServiceConfig;

enum class BudgetDirection { kRead, kWrite };
const char* to_string(BudgetDirection direction);  // "read", "write"

// Per service and direction, each 0 when not set.
struct BudgetLimits {
  double requests_per_second = 0;
  double bytes_per_second = 0;

  bool operator==(const BudgetLimits&) const = default;

  // The lower of two set values, or the one that is set.
  BudgetLimits tightest(const BudgetLimits& other) const;
  // This migration's numbers with the service's own (storage.yml); with no
  // request rate set anywhere, the provider profile's published ceiling.
  BudgetLimits for_service(const ServiceConfig& service) const;

  std::string to_json() const;
  static BudgetLimits from_json(const std::string& json);  // unreadable: no limits
};

// The queue cursor that holds a migration's limits, so every worker reads
// the same numbers.
inline constexpr const char* kBudgetCursor = "budget";
void store_limits(JobQueue& queue, const BudgetLimits& limits);
BudgetLimits load_limits(JobQueue& queue);

// The bucket names of a service in a direction ("requests:target:write").
std::string request_bucket_name(const std::string& service, BudgetDirection direction);
std::string byte_bucket_name(const std::string& service, BudgetDirection direction);

}  // namespace blobferry
