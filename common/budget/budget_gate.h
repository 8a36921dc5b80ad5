// The gate of one service in one direction: a shared request budget and, when configured, a shared bandwidth.
#pragma once

#include <memory>

#include "common/budget/batch_limiter.h"
#include "common/budget/request_gate.h"
#include "common/metrics/metrics.h"

namespace blobferry {

class BudgetGate final : public RequestGate {
 public:
  // bytes may be null (no bandwidth configured); so may the metrics.
  BudgetGate(std::unique_ptr<BatchLimiter> requests, std::unique_ptr<BatchLimiter> bytes,
             Metrics::Gauge* rate = nullptr, Metrics::Counter* cuts = nullptr)
      : requests_(std::move(requests)), bytes_(std::move(bytes)), rate_(rate), cuts_(cuts) {}

  void acquire_request() override {
    requests_->acquire(1);
    if (rate_) rate_->set(requests_->last_rate());
  }
  void acquire_bytes(std::uint64_t bytes) override {
    if (bytes_ && bytes > 0) bytes_->acquire(static_cast<double>(bytes));
  }
  // Only the request rate adapts: providers throttle request rates, and a
  // bandwidth ceiling is the operator's own choice.
  void report_throttled(std::chrono::milliseconds retry_after) override {
    if (requests_->report_throttled(retry_after) && cuts_) cuts_->inc();
  }

 private:
  std::unique_ptr<BatchLimiter> requests_;
  std::unique_ptr<BatchLimiter> bytes_;
  Metrics::Gauge* rate_;
  Metrics::Counter* cuts_;
};

}  // namespace blobferry
