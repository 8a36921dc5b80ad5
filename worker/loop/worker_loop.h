// The data plane's job loop: many copies in flight, leases kept alive,
// outcomes recorded, a graceful drain on SIGTERM.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/queue/job_queue.h"
#include "common/metrics/metrics.h"
#include "worker/copy/copy_engine.h"
#include "worker/listing/listing_runner.h"
#include "common/storage/service_registry.h"

namespace blobferry {

struct WorkerOptions {
  std::string migration;
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
};

struct WorkerSummary {
  std::uint64_t copied = 0;
  std::uint64_t skipped = 0;
  std::uint64_t failed = 0;
  std::uint64_t bytes = 0;
  std::uint64_t rescheduled = 0;
  std::uint64_t buried = 0;
  bool drained_cleanly = true;  // false when the drain deadline cut copies short
  std::string config_error;     // set when a job named a service this worker cannot open
};

class WorkerLoop {
 public:
  // metrics may be null. Everything passed must outlive the loop.
  WorkerLoop(JobQueue& queue, ServiceRegistry& services, const CopyEngine& engine, Metrics* metrics,
             WorkerOptions options);
  ~WorkerLoop();

  // Runs until request_stop() or, with exit_when_empty, until nothing of the
  // migration is queued, scheduled or in flight anywhere. On stop: no new
  // jobs, in-flight copies get `drain` to finish, the rest go back to the queue.
  WorkerSummary run();

  // Safe from any thread (the signal watcher calls it).
  void request_stop();
  bool stopping() const { return stop_.load(); }

 private:
  struct InFlight {
    Lease lease;
    bool lost = false;  // renew said another worker owns it now
  };
  struct Metered;

  void job_thread();
  void housekeeping_thread();
  void process(const Lease& lease);
  void run_copy_job(const Lease& lease, const Job& job);
  // Retries a queue call through Redis outages until it answers or the drain deadline passes.
  template <typename Call>
  bool settle(const char* what, Call&& call);
  void track(const Lease& lease);
  void untrack(const Lease& lease);
  void renew_all();
  void release_unfinished();
  void refresh_gauges();
  void note_queue_error(const char* what, const std::exception& e);

  JobQueue& queue_;
  ServiceRegistry& services_;
  const CopyEngine& engine_;
  Metrics* metrics_;
  WorkerOptions options_;
  ListingRunner listing_;

  std::atomic<bool> stop_{false};
  std::atomic<bool> abandoned_{false};  // the drain deadline passed: leases released
  std::mutex mutex_;
  std::condition_variable wake_;
  std::map<std::string, InFlight> in_flight_;  // by lease token
  int running_threads_ = 0;
  WorkerSummary summary_;
  std::unique_ptr<Metered> metered_;
};

}  // namespace blobferry
