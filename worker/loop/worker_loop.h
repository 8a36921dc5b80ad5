// The data plane's job loop: many copies in flight, leases kept alive,
// outcomes recorded, a graceful drain on SIGTERM.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "common/base/cancellation.h"
#include "common/budget/budget_limits.h"
#include "common/base/retry_policy.h"
#include "common/metrics/metrics.h"
#include "common/queue/job_queue.h"
#include "common/storage/service_registry.h"
#include "worker/copy/copy_engine.h"
#include "worker/copy/event_copier.h"
#include "worker/loop/job_outcome.h"
#include "worker/loop/lease_feed.h"
#include "worker/loop/lease_keeper.h"
#include "worker/loop/migration_set.h"
#include "worker/loop/service_outages.h"
#include "worker/loop/settle_batcher.h"
#include "worker/parts/part_job_runner.h"

namespace blobferry {

class BudgetGates;
class EventCopier;
class JobOutcome;
class TransferLoop;

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
  // A service whose credentials expired for good is probed this often (service_outages.h).
  std::chrono::milliseconds credentials_recheck{std::chrono::seconds(30)};
  // false (the embedded migrate, whose queue dies with it): expired
  // credentials stop the run with summary.config_error instead, so a person
  // at the terminal learns it at once rather than from a waiting process.
  bool wait_for_renewed_credentials = true;
  // Jobs leased per queue round trip, never more than threads are free; a
  // thread about to fetch waits up to fetch_linger for more to be free.
  std::size_t fetch_batch = 16;
  std::chrono::milliseconds fetch_linger{2};
  // Results recorded per queue round trip, and the longest one waits for others.
  std::size_t settle_batch = 64;
  std::chrono::milliseconds settle_delay{20};
  PartJobOptions parts{};  // giant objects as part jobs (worker/parts/); only with a Redis queue
  // Small copies between S3 services in flight at once on one event loop
  // (worker/copy/event_copier.h), on top of the `concurrency` job threads,
  // which copy everything else; 0 copies everything on the job threads.
  int transfers = 64;
  std::uint64_t event_max_bytes = 128 * 1024;  // the largest object copied on the event loop
  int host_connections = 64;  // the event loop's connections to one endpoint at most
};

struct WorkerSummary {
  std::uint64_t copied = 0;
  std::uint64_t skipped = 0;
  std::uint64_t failed = 0;
  std::uint64_t bytes = 0;
  std::uint64_t rescheduled = 0;
  std::uint64_t buried = 0;
  bool drained_cleanly = true;  // false when the drain deadline cut copies short (they were cancelled)
  std::string config_error;     // set when a job named a service this worker cannot open (expired credentials: only
                                // without wait_for_renewed_credentials)
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
  struct EventJob;

  void job_thread();
  void housekeeping_thread(const std::stop_token& stop);
  // Up to max leases of one migration, each tracked for renewal.
  std::vector<FedLease> fetch(std::size_t max);
  bool all_idle();
  // process() and apply() return true when the lease went to the settle
  // batcher, which untracks it once its result is recorded.
  bool process(const ServedQueue& served, const Lease& lease);
  JobOutcome run_copy_job(const ServedQueue& served, const Job& job);
  ObjectResult copy_object(const CopyTask& task, int runs);
  JobOutcome outcome_of_error(const Job& job, const Error& error);
  // A copy job whose every object the event copier accepts: started there,
  // true; its lease is settled when the last object's answer came.
  bool start_evented(const FedLease& fed);
  void on_evented(const std::shared_ptr<EventJob>& job, std::size_t index, EventCopier::Outcome outcome);
  // On a job thread: the objects the event copier handed on, through the engine.
  void run_leftover(EventJob& job);
  void finish_evented(EventJob& job, const JobOutcome& decided);
  void event_feeder();
  void evented_job_thread();
  void run_fed(const FedLease& fed);
  void pause_after_fetch_error(const std::exception& error);
  void note_empty_fetch();
  // `service` opened (checked once per process) and seen through the
  // migration's request budget for `direction`.
  Storage& budgeted(const ServedQueue& served, const std::string& service, BudgetDirection direction);
  bool apply(const ServedQueue& served, const Lease& lease, const JobOutcome& decided);
  void hand_over(JobQueue& queue, const Lease& lease, const Outcome& outcome);
  void record_completions(JobQueue& queue, const std::vector<Completion>& completions);
  // Retries a queue call (SettleBatcher::retry_options) through Redis outages
  // until it answers or the drain deadline passes.
  template <typename Call>
  bool settle(const char* what, Call&& call);
  RetryPolicy make_settle_policy();
  std::unique_ptr<LeaseFeed> make_feed();
  // Job threads running, or results not yet recorded (mutex_ held). Job
  // threads outlive the event loop's jobs, whose leftovers they run.
  bool busy() const { return running_threads_ > 0 || unsettled_ > 0; }
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
  ServiceOutages outages_{options_.credentials_recheck};
  RetryPolicy settle_policy_ = make_settle_policy();
  std::unique_ptr<LeaseFeed> feed_ = make_feed();
  std::unique_ptr<SettleBatcher> settles_;  // exists while run() runs
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable feeder_wake_;   // the event feeder's: room on the loop or for the threads (mutex_)
  std::condition_variable thread_wake_;   // the job threads', with the event loop: work, or the end (mutex_)
  int running_threads_ = 0;
  std::size_t unsettled_ = 0;  // results handed to settles_, not yet recorded
  std::atomic<int> empty_fetches_{0};  // in a row, by any thread (exit_when_empty)
  std::unique_ptr<TransferLoop> transfer_loop_;  // exist while run() runs, with transfers > 0
  std::unique_ptr<EventCopier> event_copier_;
  std::size_t event_jobs_ = 0;    // started on the event loop, not yet settled (mutex_)
  std::size_t event_copies_ = 0;  // their objects in flight there (mutex_)
  // With the event loop, the job threads' work (mutex_): a lease the loop
  // cannot copy, or a job of the loop's with objects it handed on.
  struct ThreadWork {
    std::optional<FedLease> fed;
    std::shared_ptr<EventJob> leftover;
  };
  std::deque<ThreadWork> thread_work_;
  bool feeder_done_ = false;  // (mutex_)
  std::size_t threads_busy_ = 0;  // job threads running thread_work_ (mutex_)
  // The feeder fetches once the loop's copies are down to this: a batch at a
  // time, not a wake-up per copy that ends.
  std::size_t feeder_low_water_ = 0;
  WorkerSummary summary_;
  std::mutex metered_mutex_;
  std::map<std::string, std::unique_ptr<Metered>> metered_;
  std::map<std::string, int> in_flight_;  // by migration, for the gauge; guarded by metered_mutex_
};

}  // namespace blobferry
