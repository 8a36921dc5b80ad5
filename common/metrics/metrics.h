// A thread-safe registry of Prometheus counters, gauges and histograms (text format 0.0.4).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace blobferry {

// Registration (counter(), gauge(), histogram()) takes a lock and returns a
// reference that stays valid as long as the registry; callers cache it, so
// the hot path is one relaxed atomic operation per object copied, no lock.
//
// Each metric name has a fixed set of label names, fixed by its first
// registration. Label values are data (migration names, reason classes) and
// are escaped when rendered; never put a credential in one.
class Metrics {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  class Counter {
   public:
    void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

   private:
    std::atomic<std::uint64_t> value_{0};
  };

  class Gauge {
   public:
    void set(double value) noexcept { value_.store(value, std::memory_order_relaxed); }
    void add(double delta) noexcept { value_.fetch_add(delta, std::memory_order_relaxed); }
    void inc() noexcept { add(1.0); }
    void dec() noexcept { add(-1.0); }
    double value() const noexcept { return value_.load(std::memory_order_relaxed); }

   private:
    std::atomic<double> value_{0.0};
  };

  class Histogram {
   public:
    // bounds: finite, strictly increasing upper bounds; +Inf is implicit.
    explicit Histogram(std::vector<double> bounds);
    // A NaN is dropped: it would poison _sum for the life of the process.
    void observe(double value) noexcept;
    const std::vector<double>& bounds() const { return bounds_; }
    // One count per bound plus the +Inf bucket, each including the ones below it.
    std::vector<std::uint64_t> cumulative_counts() const;
    double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

   private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket, not cumulative
    std::atomic<double> sum_{0.0};
  };

  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Returns the series of `name` with these label values, creating it (at 0)
  // on first use. The same name and labels always give the same object.
  // Throws std::invalid_argument for a malformed metric or label name, for
  // label names that differ from the name's first registration, for a name
  // already registered as another type, and (histograms) for other buckets.
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, const Labels& labels,
                       const std::vector<double>& buckets = default_duration_buckets());

  // 0.005 s … 60 s, for copy durations from a tiny file to a large multipart one.
  static std::vector<double> default_duration_buckets();

  // The Prometheus text exposition format 0.0.4: families in registration
  // order, each with # HELP and # TYPE, series in creation order.
  std::string render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family;
  Family& family(const std::string& name, const std::string& help, Type type, const Labels& labels,
                 const std::vector<double>& buckets);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family>> families_;
  std::map<std::string, Family*> by_name_;
};

}  // namespace blobferry
