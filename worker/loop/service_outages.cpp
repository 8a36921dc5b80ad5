// Services whose credentials expired for good: their jobs wait in the queue while other services' go on.
#include "worker/loop/service_outages.h"

#include <utility>

#include <spdlog/spdlog.h>

#include "common/base/error.h"

namespace blobferry {

ServiceOutages::ServiceOutages(std::chrono::milliseconds recheck, Clock clock)
    : recheck_(recheck), clock_(clock ? std::move(clock) : Clock(&std::chrono::steady_clock::now)) {}

bool ServiceOutages::admits(const std::string& source, const std::string& target) {
  std::lock_guard lock(mutex_);
  if (out_.empty()) return true;  // the common case: one map lookup saved per job
  const auto now = clock_();
  // Both asked in turn, so a job of two services that are out probes one at a time.
  return admits_locked(source, now) && (target == source || admits_locked(target, now));
}

bool ServiceOutages::admits_locked(const std::string& service, std::chrono::steady_clock::time_point now) {
  auto found = out_.find(service);
  if (found == out_.end()) return true;
  Outage& outage = found->second;
  if (now < outage.next_probe) return false;
  // One probe per period: the other jobs keep waiting until it answers.
  outage.next_probe = now + recheck_;
  outage.probing = true;
  return true;
}

bool ServiceOutages::took_out(const Error& error) {
  if (error.failure_reason() != FailureReason::kCredentialsExpired || error.service().empty()) return false;
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    auto [outage, inserted] = out_.try_emplace(error.service());
    outage->second.next_probe = clock_() + recheck_;
    outage->second.probing = false;
    first = inserted;
  }
  // Concurrent jobs of the service meet the same expiry: one line for all of them.
  if (first) {
    spdlog::error("service {} stopped taking jobs: {}; its jobs wait in the queue, credentials are read again every {:g} s",
                  error.service(), error.what(), std::chrono::duration<double>(recheck_).count());
  }
  return true;
}

void ServiceOutages::ran(const std::string& source, const std::string& target) {
  std::lock_guard lock(mutex_);
  if (out_.empty()) return;
  back_locked(source);
  if (target != source) back_locked(target);
}

// Only a probe brings a service back: a job let through before the outage
// and finishing after it proves nothing about the credentials now.
void ServiceOutages::back_locked(const std::string& service) {
  auto found = out_.find(service);
  if (found == out_.end() || !found->second.probing) return;
  out_.erase(found);
  spdlog::info("service {}: its credentials work again; taking its jobs again", service);
}

bool ServiceOutages::out(const std::string& service) const {
  std::lock_guard lock(mutex_);
  return out_.count(service) != 0;
}

}  // namespace blobferry
