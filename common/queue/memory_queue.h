// The in-process JobQueue of the embedded `migrate` mode: same semantics as
// the Redis queue (leases, retries, failure records, counters), no server.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/queue/job_queue.h"

namespace blobferry {

struct MemoryQueueOptions {
  std::chrono::milliseconds lease_duration{30'000};
  int max_recoveries = 3;
};

// Thread-safe (one mutex, one condition variable): fetch() sleeps until a job
// is pushed, released or due, or its wait ends. Nothing outlives the object.
class MemoryQueue : public JobQueue {
 public:
  explicit MemoryQueue(std::string migration, MemoryQueueOptions options = {});

  void push(const std::vector<Job>& jobs) override;
  // Atomic: the jobs and the cursor change under one lock.
  void push_with_cursor(const std::vector<Job>& jobs, const std::string& cursor,
                        const std::string& value) override;
  std::optional<Lease> fetch(const std::string& worker_id, std::chrono::milliseconds wait) override;
  std::vector<Lease> fetch_batch(const std::string& worker_id, std::size_t max,
                                 std::chrono::milliseconds wait) override;
  bool renew(const Lease& lease) override;
  std::vector<bool> renew_all(const std::vector<Lease>& leases) override;
  bool complete(const Lease& lease, const Outcome& outcome) override;
  std::vector<bool> complete_batch(const std::vector<Completion>& completions) override;
  bool retry_later(const Lease& lease, const Job& job, std::chrono::milliseconds delay) override;
  bool release(const Lease& lease) override;
  bool bury(const Lease& lease, const std::string& error) override;
  std::size_t recover_expired() override;
  std::size_t promote_due() override;
  void heartbeat(const std::string& worker_id, const std::string& info_json) override;
  std::vector<WorkerInfo> live_workers(std::chrono::milliseconds max_age) override;
  Counts counts() override;
  bool idle() override;
  std::uint64_t queue_length() override;
  std::size_t requeue_failed(const std::optional<std::string>& reason) override;
  void for_each_failure(const std::function<void(const FailureRecord&)>& visit) override;
  void for_each_dead(const std::function<void(const DeadEntry&)>& visit) override;
  bool paused() override;
  void set_paused(bool paused) override;
  void purge() override;
  void set_cursor(const std::string& name, const std::string& value) override;
  std::optional<std::string> get_cursor(const std::string& name) override;

  const std::string& migration() const { return migration_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct InFlight {
    std::string payload;
    std::string worker_id;
    Clock::time_point expires;
  };
  struct Heartbeat {
    std::string info_json;
    Clock::time_point seen;
  };

  std::vector<std::string> encode_with_ids(const std::vector<Job>& jobs) const;
  // Each *_locked helper expects mutex_ held.
  std::size_t promote_due_locked(Clock::time_point now);
  std::optional<std::string> end_lease_locked(const std::string& token);
  bool renew_locked(const Lease& lease);
  bool complete_locked(const Lease& lease, const Outcome& outcome, const std::optional<Job>& job);
  void drop_failure_locked(const std::string& key);
  void record_failure_locked(FailureRecord record);
  void record_outcome_failure_locked(const std::optional<Job>& job, const std::string& payload,
                                     const ObjectOutcome& outcome);
  void recover_locked(const std::string& token, const InFlight& entry);

  std::string migration_;
  MemoryQueueOptions options_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::string> queue_;
  std::unordered_map<std::string, InFlight> in_flight_;
  std::multimap<Clock::time_point, std::string> retry_;
  std::vector<DeadEntry> dead_;
  std::map<std::string, FailureRecord> failed_;
  std::map<std::string, std::string> cursors_;
  std::map<std::string, Heartbeat> workers_;
  Counts totals_;  // the counters only: copied, skipped, bytes, queued_total, recovered
  std::uint64_t next_token_ = 0;
  bool paused_ = false;
};

}  // namespace blobferry
