// The data plane's job loop: many copies in flight, leases kept alive,
// outcomes recorded, a graceful drain on SIGTERM.
#include "worker/loop/worker_loop.h"

#include <spdlog/spdlog.h>

#include "common/base/error.h"

namespace blobferry {

using Clock = std::chrono::steady_clock;

// The series this worker updates, looked up once.
struct WorkerLoop::Metered {
  Metered(Metrics& m, const std::string& migration)
      : copied(m.counter("blobferry_objects_total", "Objects handled", {{"migration", migration}, {"result", "copied"}})),
        skipped(m.counter("blobferry_objects_total", "Objects handled", {{"migration", migration}, {"result", "skipped"}})),
        failed(m.counter("blobferry_objects_total", "Objects handled", {{"migration", migration}, {"result", "failed"}})),
        bytes_copied(m.counter("blobferry_bytes_total", "Bytes handled", {{"migration", migration}, {"result", "copied"}})),
        bytes_skipped(m.counter("blobferry_bytes_total", "Bytes handled", {{"migration", migration}, {"result", "skipped"}})),
        retries(m.counter("blobferry_retries_total", "Copy attempts beyond the first, in place or rescheduled", {{"migration", migration}})),
        in_flight(m.gauge("blobferry_in_flight", "Jobs this worker is running", {{"migration", migration}})),
        queue_depth(m.gauge("blobferry_queue_depth", "Jobs waiting in the queue", {{"migration", migration}})),
        pending(m.gauge("blobferry_pending", "Jobs queued, scheduled for retry or in flight anywhere (for autoscaling)", {{"migration", migration}})),
        workers_alive(m.gauge("blobferry_workers_alive", "Workers with a recent heartbeat", {{"migration", migration}})),
        duration(m.histogram("blobferry_copy_duration_seconds", "Time to copy or skip one object", {{"migration", migration}})),
        metrics(m),
        migration_(migration) {}

  Metrics::Counter& failures(const std::string& reason) {
    return metrics.counter("blobferry_failures_total", "Objects recorded as failed, by reason",
                           {{"migration", migration_}, {"reason", reason}});
  }

  Metrics::Counter& copied;
  Metrics::Counter& skipped;
  Metrics::Counter& failed;
  Metrics::Counter& bytes_copied;
  Metrics::Counter& bytes_skipped;
  Metrics::Counter& retries;
  Metrics::Gauge& in_flight;
  Metrics::Gauge& queue_depth;
  Metrics::Gauge& pending;
  Metrics::Gauge& workers_alive;
  Metrics::Histogram& duration;
  Metrics& metrics;
  std::string migration_;
};

WorkerLoop::WorkerLoop(JobQueue& queue, ServiceRegistry& services, const CopyEngine& engine, Metrics* metrics,
                       WorkerOptions options)
    : queue_(queue),
      services_(services),
      engine_(engine),
      metrics_(metrics),
      options_(std::move(options)),
      listing_(queue, services) {
  if (metrics_) metered_ = std::make_unique<Metered>(*metrics_, options_.migration);
}

WorkerLoop::~WorkerLoop() = default;

void WorkerLoop::request_stop() {
  stop_.store(true);
  wake_.notify_all();
}

WorkerSummary WorkerLoop::run() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    running_threads_ = options_.concurrency;
  }
  for (int i = 0; i < options_.concurrency; ++i) threads.emplace_back([this] { job_thread(); });
  std::thread housekeeper([this] { housekeeping_thread(); });

  std::unique_lock lock(mutex_);
  wake_.wait(lock, [this] { return stop_.load() || running_threads_ == 0; });
  const auto deadline = Clock::now() + options_.drain;
  if (!wake_.wait_until(lock, deadline, [this] { return running_threads_ == 0; })) {
    lock.unlock();
    release_unfinished();
    lock.lock();
  }
  const bool abandoned = abandoned_.load();
  lock.unlock();
  housekeeper.join();
  if (abandoned) {
    // Copies still running cannot be joined without waiting for them; their
    // leases are released, so whatever they report later is ignored as stale.
    for (auto& t : threads) t.detach();
  } else {
    for (auto& t : threads) t.join();
  }
  std::lock_guard guard(mutex_);
  summary_.drained_cleanly = !abandoned;
  return summary_;
}

void WorkerLoop::job_thread() {
  int idle_checks = 0;
  while (!stop_.load()) {
    std::optional<Lease> lease;
    try {
      lease = queue_.fetch(options_.worker_id, options_.poll_wait);
    } catch (const std::exception& e) {
      note_queue_error("fetch", e);
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_.load(); });
      continue;
    }
    if (!lease) {
      if (options_.exit_when_empty && ++idle_checks >= 2) {
        try {
          const bool planned = !options_.planning_done || options_.planning_done();
          if (planned && queue_.idle()) request_stop();
        } catch (const std::exception& e) {
          note_queue_error("idle", e);
        }
      }
      continue;
    }
    idle_checks = 0;
    track(*lease);
    process(*lease);
    untrack(*lease);
  }
  std::lock_guard lock(mutex_);
  if (--running_threads_ == 0) wake_.notify_all();
}

void WorkerLoop::process(const Lease& lease) {
  Job job;
  try {
    job = decode_job(lease.payload);
  } catch (const Error& e) {
    spdlog::warn("moving a malformed job aside: {}", e.what());
    settle("bury", [&] { return queue_.bury(lease, e.what()); });
    std::lock_guard lock(mutex_);
    ++summary_.buried;
    return;
  }
  if (job.migration != options_.migration) {
    settle("bury", [&] { return queue_.bury(lease, "job of migration '" + job.migration + "' in the queue of '" + options_.migration + "'"); });
    return;
  }
  try {
    if (job.type == JobType::kListing) {
      const Outcome skipped = listing_.run(job);
      settle("complete", [&] { return queue_.complete(lease, skipped); });
      if (metered_) {
        metered_->skipped.inc(skipped.objects.size());
        for (const auto& o : skipped.objects) metered_->bytes_skipped.inc(o.bytes);
      }
    } else {
      run_copy_job(lease, job);
    }
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kConfig) {
      // A worker that cannot open the job's services cannot help this
      // migration: hand the job back untouched and stop, so the operator sees it.
      // Concurrent jobs meet the same error: it is logged once.
      bool first = false;
      {
        std::lock_guard lock(mutex_);
        first = summary_.config_error.empty();
        if (first) summary_.config_error = e.what();
      }
      if (first) spdlog::error("{}", e.what());
      settle("release", [&] { return queue_.release(lease); });
      request_stop();
      return;
    }
    const int runs = job.attempts + 1;
    if (engine_.options().retry_policy.should_reschedule(e, runs)) {
      Job again = job;
      again.attempts = runs;
      settle("retry_later", [&] {
        return queue_.retry_later(lease, again, engine_.options().retry_policy.reschedule_delay(e, runs));
      });
    } else {
      settle("complete", [&] {
        return queue_.complete(lease, Outcome::failed(failure_key(job, 0), e.reason(), e.what(), runs));
      });
    }
  }
}

void WorkerLoop::run_copy_job(const Lease& lease, const Job& job) {
  // Checked on first use, so a target that cannot be written (a read-only
  // Disk root) stops the worker before any object is tried.
  Storage& source = services_.checked_once(job.source, Storage::Access::kRead);
  Storage& target = services_.checked_once(job.target, Storage::Access::kWrite);
  const RetryPolicy& policy = engine_.options().retry_policy;
  const int runs = job.attempts + 1;

  Outcome outcome;
  Job again = job;
  again.objects.clear();
  again.attempts = runs;
  std::chrono::milliseconds retry_delay{0};
  std::uint64_t copied = 0, skipped = 0, failed = 0, bytes = 0, retries = 0;

  for (std::size_t i = 0; i < job.objects.size(); ++i) {
    const JobObject& object = job.objects[i];
    if (stop_.load() && abandoned_.load()) return;  // lease released; nothing to record
    const auto started = Clock::now();
    try {
      CopyResult result = engine_.copy({source, target, object.key, object.destination_key(), object.size,
                                        object.checksum, object.content_type, object.target_absent});
      retries += static_cast<std::uint64_t>(result.attempts - 1);
      if (result.status == CopyResult::Status::kSkipped) {
        outcome.objects.push_back({failure_key(job, i), OutcomeKind::kSkipped, result.bytes, {}, {}, 0});
        ++skipped;
        if (metered_) metered_->bytes_skipped.inc(result.bytes);
      } else {
        outcome.objects.push_back({failure_key(job, i), OutcomeKind::kCopied, result.bytes, {}, {}, 0});
        ++copied;
        bytes += result.bytes;
        if (metered_) metered_->bytes_copied.inc(result.bytes);
      }
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::kConfig && e.reason() == "config") throw;
      if (policy.should_reschedule(e, runs)) {
        spdlog::info("{}: will retry later ({}): {}", object.key, e.reason(), e.what());
        again.objects.push_back(object);
        retry_delay = std::max(retry_delay, policy.reschedule_delay(e, runs));
        ++retries;
      } else {
        spdlog::warn("{}: failed ({}) after {} run(s): {}", object.key, e.reason(), runs, e.what());
        outcome.objects.push_back({failure_key(job, i), OutcomeKind::kFailed, 0, e.reason(), e.what(), runs});
        ++failed;
        if (metered_) metered_->failures(e.reason()).inc();
      }
    }
    if (metered_) {
      metered_->duration.observe(std::chrono::duration<double>(Clock::now() - started).count());
    }
  }

  if (again.objects.empty()) {
    settle("complete", [&] { return queue_.complete(lease, outcome); });
  } else if (outcome.objects.empty()) {
    settle("retry_later", [&] { return queue_.retry_later(lease, again, retry_delay); });
  } else {
    // Part of a batch needs a later retry: queue it first, then record the
    // rest. A crash in between re-runs the whole job, whose finished objects
    // are then skipped — counted once either way, never lost.
    again.id.clear();
    settle("push", [&] { queue_.push({again}); return true; });
    settle("complete", [&] { return queue_.complete(lease, outcome); });
  }

  std::lock_guard lock(mutex_);
  summary_.copied += copied;
  summary_.skipped += skipped;
  summary_.failed += failed;
  summary_.bytes += bytes;
  if (!again.objects.empty()) ++summary_.rescheduled;
  if (metered_) {
    metered_->copied.inc(copied);
    metered_->skipped.inc(skipped);
    metered_->failed.inc(failed);
    metered_->retries.inc(retries);
  }
}

template <typename Call>
bool WorkerLoop::settle(const char* what, Call&& call) {
  auto pause = std::chrono::milliseconds(100);
  for (;;) {
    if (abandoned_.load()) return false;  // the lease was released at the drain deadline
    try {
      const bool owned = call();
      if (!owned) spdlog::warn("{}: lease expired and the job went back to the queue; result not recorded", what);
      return owned;
    } catch (const std::exception& e) {
      note_queue_error(what, e);
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(5000));
    }
  }
}

void WorkerLoop::track(const Lease& lease) {
  std::lock_guard lock(mutex_);
  in_flight_[lease.token] = InFlight{lease, false};
  if (metered_) metered_->in_flight.set(static_cast<double>(in_flight_.size()));
}

void WorkerLoop::untrack(const Lease& lease) {
  std::lock_guard lock(mutex_);
  in_flight_.erase(lease.token);
  if (metered_) metered_->in_flight.set(static_cast<double>(in_flight_.size()));
}

void WorkerLoop::renew_all() {
  std::vector<Lease> leases;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [token, entry] : in_flight_) {
      if (!entry.lost) leases.push_back(entry.lease);
    }
  }
  for (const Lease& lease : leases) {
    try {
      if (!queue_.renew(lease)) {
        // Mostly a job that completed since the snapshot above (its lease is
        // gone from Redis before it is untracked here). A lease really lost
        // is warned about by settle(), when its result is refused.
        spdlog::debug("lease of job {} is no longer ours (completed or recovered); not renewing it", lease.job_id);
        std::lock_guard lock(mutex_);
        auto found = in_flight_.find(lease.token);
        if (found != in_flight_.end()) found->second.lost = true;
      }
    } catch (const std::exception& e) {
      note_queue_error("renew", e);
      return;
    }
  }
}

void WorkerLoop::release_unfinished() {
  std::vector<Lease> leases;
  {
    std::lock_guard lock(mutex_);
    abandoned_.store(true);
    for (const auto& [token, entry] : in_flight_) leases.push_back(entry.lease);
  }
  spdlog::warn("drain deadline passed: returning {} unfinished job(s) to the queue", leases.size());
  for (const Lease& lease : leases) {
    try {
      queue_.release(lease);
    } catch (const std::exception& e) {
      // The queue is unreachable: trying the other leases would only delay
      // the exit. They expire on their own and recovery returns the jobs;
      // nothing is lost.
      note_queue_error("release", e);
      return;
    }
  }
}

void WorkerLoop::housekeeping_thread() {
  const auto renew_every = std::max(options_.lease / 3, std::chrono::milliseconds(200));
  auto next_chores = Clock::now();
  const std::string info = std::string("{\"concurrency\":") + std::to_string(options_.concurrency) + "}";
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, std::min(renew_every, options_.housekeeping),
                         [this] { return running_threads_ == 0 || abandoned_.load(); })) {
        break;
      }
    }
    renew_all();
    if (Clock::now() < next_chores) continue;
    next_chores = Clock::now() + options_.housekeeping;
    try {
      queue_.heartbeat(options_.worker_id, info);
      queue_.recover_expired();
      queue_.promote_due();
      refresh_gauges();
    } catch (const std::exception& e) {
      note_queue_error("housekeeping", e);
    }
  }
}

void WorkerLoop::refresh_gauges() {
  if (!metered_) return;
  const Counts counts = queue_.counts();
  metered_->queue_depth.set(static_cast<double>(counts.queued));
  metered_->pending.set(static_cast<double>(counts.queued + counts.scheduled + counts.in_flight));
  metered_->workers_alive.set(static_cast<double>(queue_.live_workers(options_.housekeeping * 3).size()));
}

void WorkerLoop::note_queue_error(const char* what, const std::exception& e) {
  // Outages repeat every poll; one line per second is enough to tell.
  static std::atomic<std::int64_t> last_logged{0};
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
  if (last_logged.exchange(now) != now) spdlog::warn("queue {}: {} (retrying)", what, e.what());
}

}  // namespace blobferry
