// A migration's budget as `enqueue`/`migrate` stored it, and how it combines with storage.yml's.
#include "common/budget/budget_limits.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/queue/job_queue.h"
#include "common/storage/s3/provider_profile.h"
#include "common/storage/service_config.h"

namespace blobferry {
namespace {

double tighter(double a, double b) {
  if (a <= 0) return std::max(0.0, b);
  if (b <= 0) return a;
  return std::min(a, b);
}

double positive_number(const nlohmann::json& json, const char* name) {
  auto it = json.find(name);
  return it != json.end() && it->is_number() && it->get<double>() > 0 ? it->get<double>() : 0;
}

}  // namespace

const char* to_string(BudgetDirection direction) { return direction == BudgetDirection::kRead ? "read" : "write"; }

BudgetLimits BudgetLimits::tightest(const BudgetLimits& other) const {
  return {tighter(requests_per_second, other.requests_per_second), tighter(bytes_per_second, other.bytes_per_second)};
}

BudgetLimits BudgetLimits::for_service(const ServiceConfig& service) const {
  BudgetLimits limits = tightest({service.max_requests_per_second, service.max_bandwidth});
  // Nobody set a request rate: respect the provider's published ceiling
  // (Spaces 1,500/s, B2 500/s). A rate that was set wins, higher or lower,
  // because the operator may hold a raised limit the table cannot know.
  if (limits.requests_per_second <= 0 && service.kind == ServiceKind::kS3) {
    limits.requests_per_second = profile_for(service.name, service.provider, service.endpoint).requests_per_second;
  }
  return limits;
}

std::string BudgetLimits::to_json() const {
  return nlohmann::json{{"max_requests_per_second", requests_per_second}, {"max_bandwidth", bytes_per_second}}.dump();
}

BudgetLimits BudgetLimits::from_json(const std::string& json) {
  const nlohmann::json parsed = nlohmann::json::parse(json, nullptr, false);
  if (!parsed.is_object()) return {};
  return {positive_number(parsed, "max_requests_per_second"), positive_number(parsed, "max_bandwidth")};
}

void store_limits(JobQueue& queue, const BudgetLimits& limits) { queue.set_cursor(kBudgetCursor, limits.to_json()); }

BudgetLimits load_limits(JobQueue& queue) {
  const auto stored = queue.get_cursor(kBudgetCursor);
  return stored ? BudgetLimits::from_json(*stored) : BudgetLimits{};
}

std::string request_bucket_name(const std::string& service, BudgetDirection direction) {
  return "requests:" + service + ":" + to_string(direction);
}

std::string byte_bucket_name(const std::string& service, BudgetDirection direction) {
  return "bytes:" + service + ":" + to_string(direction);
}

}  // namespace blobferry
