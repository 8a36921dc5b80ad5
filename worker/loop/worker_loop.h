// The data plane's job loop: many copies in flight, leases kept alive,
// outcomes recorded, a graceful drain on SIGTERM.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>

#include "common/base/cancellation.h"
#include "common/metrics/metrics.h"
#include "common/queue/job_queue.h"
#include "common/storage/service_registry.h"
#include "worker/copy/copy_engine.h"
#include "worker/loop/lease_keeper.h"
#include "worker/loop/migration_set.h"
#include "worker/parts/part_job_runner.h"

namespace blobferry {

class BudgetGates;
class JobOutcome;

struct WorkerOptions {
  std::string migration;  // for logs; empty when the worker serves every migration
  std::string worker_id;  // unique per process: host:pid:random
  int concurrency = 16;
  bool exit_when_empty = false;
  // With exit_when_empty: also wait until this says planning is over (the
  // embedded migrate plans while it copies). Empty means no planner to wait for.
  std::function<bool()> planning_done;
  std::chrono::milliseconds drain{std::chrono::seconds(30)};
  std::chrono::milliseconds lease{std::chrono::seconds(30)};  // the queue's lease; renewed every third of it
  std::chrono::milliseconds poll_wait{std::chrono::milliseconds(500)};
  std::chrono::milliseconds housekeeping{std::chrono::seconds(2)};  // recover, promote, heartbeat, gauges
  std::chrono::milliseconds rescan{std::chrono::seconds(3)};  // a worker of every migration lists them this often
  BudgetGates* budgets = nullptr;  // the shared request and bandwidth budgets (common/budget/); null: none
  PartJobOptions parts{};  // giant objects as part jobs (worker/parts/); only with a Redis queue
};

struct WorkerSummary {
  std::uint64_t copied = 0;
  std::uint64_t skipped = 0;
  std::uint64_t failed = 0;
  std::uint64_t bytes = 0;
  std::uint64_t rescheduled = 0;
  std::uint64_t buried = 0;
  bool drained_cleanly = true;  // false when the drain deadline cut copies short (they were cancelled)
  std::string config_error;     // set when a job named a service this worker cannot open
};

class WorkerLoop {
 public:
  // One queue (worker --migration, migrate). metrics may be null. Everything
  // passed must outlive the loop; no thread of the loop outlives run().
  WorkerLoop(JobQueue& queue, ServiceRegistry& services, const CopyEngine& engine, Metrics* metrics,
             WorkerOptions options);
  // The migrations of `migrations`, served round robin.
  WorkerLoop(MigrationSet& migrations, ServiceRegistry& services, const CopyEngine& engine, Metrics* metrics,
             WorkerOptions options);
  ~WorkerLoop();

  // Runs until request_stop() or, with exit_when_empty, until nothing of the
  // migrations is queued, scheduled or in flight anywhere. On stop: no new
  // jobs, in-flight copies get `drain` to finish; then their leases go back
  // to the queue and they are cancelled. Every thread it started is joined
  // before it returns.
  WorkerSummary run();

  // Safe from any thread (the signal watcher calls it).
  void request_stop();
  bool stopping() const { return stop_.load(); }

 private:
  struct Metered;
  struct Fetched {
    ServedQueue served;
    Lease lease;
  };

  void job_thread();
  void housekeeping_thread(const std::stop_token& stop);
  std::optional<Fetched> fetch();
  bool all_idle();
  void process(const ServedQueue& served, const Lease& lease);
  JobOutcome run_copy_job(const ServedQueue& served, const Job& job);
  void apply(const ServedQueue& served, const Lease& lease, const JobOutcome& decided);
  // Retries a queue call through Redis outages until it answers or the drain deadline passes.
  template <typename Call>
  bool settle(const char* what, Call&& call);
  void housekeep(const std::string& info);
  void refresh_gauges(const ServedQueue& served);
  Metered* metered(const std::string& migration);
  void note_in_flight(const std::string& migration, int change);
  static void note_queue_error(const char* what, const std::exception& e);

  std::unique_ptr<MigrationSet> owned_migrations_;
  MigrationSet& migrations_;
  ServiceRegistry& services_;
  const CopyEngine& engine_;
  Metrics* metrics_;
  WorkerOptions options_;
  PartJobRunner parts_;

  std::atomic<bool> stop_{false};
  CancellationToken cancel_;  // cancelled at the drain deadline: every copy in flight ends
  LeaseKeeper leases_;
  std::mutex mutex_;
  std::condition_variable wake_;
  int running_threads_ = 0;
  WorkerSummary summary_;
  std::mutex metered_mutex_;
  std::map<std::string, std::unique_ptr<Metered>> metered_;
  std::map<std::string, int> in_flight_;  // by migration, for the gauge; guarded by metered_mutex_
};

}  // namespace blobferry
