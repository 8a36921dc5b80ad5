// The gates of a worker process: one per migration, service and direction, made on first use.
#include "common/budget/budget_gates.h"

#include <spdlog/spdlog.h>

#include "common/budget/budget_gate.h"
#include "common/budget/gated_storage.h"
#include "common/metrics/metrics.h"
#include "common/queue/job_queue.h"
#include "common/storage/storage_config.h"

namespace blobferry {

struct BudgetGates::Gated {
  std::unique_ptr<BudgetGate> gate;
  std::unique_ptr<GatedStorage> storage;
};

BudgetGates::BudgetGates(StoreFactory stores, const StorageConfig& config, BudgetLimits own, Metrics* metrics)
    : stores_(std::move(stores)), config_(config), own_(own), metrics_(metrics) {}

BudgetGates::~BudgetGates() = default;

Storage& BudgetGates::wrap(JobQueue& queue, const std::string& migration, const std::string& service,
                           BudgetDirection direction, Storage& inner) {
  std::lock_guard lock(mutex_);
  const GateKey key{migration, service, direction};
  if (auto it = gates_.find(key); it != gates_.end()) return *it->second->storage;

  auto& store = store_of_[migration];
  if (!store) store = stores_(migration);
  const BudgetLimits limits = load_limits(queue).tightest(own_).for_service(config_.service(service));
  auto requests = std::make_unique<BatchLimiter>(
      *store, BudgetKey{request_bucket_name(service, direction), limits.requests_per_second, true});
  std::unique_ptr<BatchLimiter> bytes;
  if (limits.bytes_per_second > 0) {
    bytes = std::make_unique<BatchLimiter>(
        *store, BudgetKey{byte_bucket_name(service, direction), limits.bytes_per_second, false});
  }
  Metrics::Gauge* rate = nullptr;
  Metrics::Counter* cuts = nullptr;
  if (metrics_) {
    const Metrics::Labels labels{{"migration", migration}, {"service", service}, {"direction", to_string(direction)}};
    rate = &metrics_->gauge("blobferry_budget_requests_per_second",
                            "the fleet's shared request rate for a service and direction as this worker last heard "
                            "it (0: unlimited)",
                            labels);
    cuts = &metrics_->counter("blobferry_budget_cuts_total",
                              "cuts of the shared request rate this worker made on a throttling answer", labels);
    metrics_->gauge("blobferry_budget_ceiling_requests_per_second",
                    "the configured request ceiling for a service and direction (0: none)", labels)
        .set(limits.requests_per_second);
  }
  spdlog::info("budget of {} ({} for migration {}): {} requests/s, {} bytes/s (0: none; requests adapt to throttling)",
               service, to_string(direction), migration, limits.requests_per_second, limits.bytes_per_second);
  auto gated = std::make_unique<Gated>();
  gated->gate = std::make_unique<BudgetGate>(std::move(requests), std::move(bytes), rate, cuts);
  gated->storage = std::make_unique<GatedStorage>(inner, *gated->gate);
  Storage& result = *gated->storage;
  gates_.emplace(key, std::move(gated));
  return result;
}

}  // namespace blobferry
