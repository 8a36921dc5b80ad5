// The data plane's job loop: many copies in flight, leases kept alive,
// outcomes recorded, a graceful drain on SIGTERM.
#include "worker/loop/worker_loop.h"

#include <algorithm>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/base/error.h"
#include "common/budget/budget_gates.h"
#include "worker/listing/listing_runner.h"
#include "worker/loop/job_outcome.h"

namespace blobferry {

using Clock = std::chrono::steady_clock;

// The series this worker updates for one migration, looked up once.
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
    : owned_migrations_(std::make_unique<MigrationSet>(queue, options.migration)),
      migrations_(*owned_migrations_),
      services_(services),
      engine_(engine),
      metrics_(metrics),
      options_(std::move(options)),
      parts_(options_.parts, engine.options().retry_policy),
      leases_(&WorkerLoop::note_queue_error) {
  metered(options_.migration);  // the series exist (at zero) before the first job
}

WorkerLoop::WorkerLoop(MigrationSet& migrations, ServiceRegistry& services, const CopyEngine& engine,
                       Metrics* metrics, WorkerOptions options)
    : migrations_(migrations),
      services_(services),
      engine_(engine),
      metrics_(metrics),
      options_(std::move(options)),
      parts_(options_.parts, engine.options().retry_policy),
      leases_(&WorkerLoop::note_queue_error) {}

WorkerLoop::~WorkerLoop() = default;

void WorkerLoop::request_stop() {
  {
    std::lock_guard lock(mutex_);
    stop_.store(true);
  }
  wake_.notify_all();
}

WorkerSummary WorkerLoop::run() {
  try {
    migrations_.refresh();
  } catch (const std::exception& e) {
    note_queue_error("list migrations", e);
  }
  bool cut_short = false;
  {
    std::lock_guard lock(mutex_);
    running_threads_ = options_.concurrency;
  }
  {
    // Declared in this block so that, whatever happens below, every thread is
    // joined (std::jthread) before the loop's members can go away.
    std::vector<std::jthread> copiers;
    copiers.reserve(static_cast<std::size_t>(options_.concurrency));
    for (int i = 0; i < options_.concurrency; ++i) copiers.emplace_back([this] { job_thread(); });
    std::jthread housekeeper([this](std::stop_token stop) { housekeeping_thread(stop); });

    std::unique_lock lock(mutex_);
    wake_.wait(lock, [this] { return stop_.load() || running_threads_ == 0; });
    const auto deadline = Clock::now() + options_.drain;
    if (!wake_.wait_until(lock, deadline, [this] { return running_threads_ == 0; })) {
      lock.unlock();
      // Hand the jobs back first, so nothing a cancelled copy says is recorded;
      // then cancel: each copy ends at its next chunk or progress callback.
      leases_.release_all();
      cancel_.cancel();
      cut_short = true;
    } else {
      lock.unlock();
    }
    {
      // Under the mutex, so the housekeeper cannot miss it between its check and its wait.
      std::lock_guard stopping(mutex_);
      housekeeper.request_stop();
    }
    wake_.notify_all();
    housekeeper.join();
    for (auto& t : copiers) t.join();
  }
  std::lock_guard guard(mutex_);
  summary_.drained_cleanly = !cut_short;
  return summary_;
}

void WorkerLoop::job_thread() {
  // Storage calls made by this thread (listing jobs too) see the loop's token.
  const CancellationToken::Scope cancellation(&cancel_);
  int idle_checks = 0;
  while (!stop_.load()) {
    std::optional<Fetched> fetched;
    try {
      fetched = fetch();
    } catch (const std::exception& e) {
      note_queue_error("fetch", e);
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_.load(); });
      continue;
    }
    if (!fetched) {
      if (options_.exit_when_empty && ++idle_checks >= 2) {
        try {
          const bool planned = !options_.planning_done || options_.planning_done();
          if (planned && all_idle()) request_stop();
        } catch (const std::exception& e) {
          note_queue_error("idle", e);
        }
      }
      continue;
    }
    idle_checks = 0;
    JobQueue& queue = *fetched->served.queue;
    leases_.track(queue, fetched->lease);
    note_in_flight(fetched->served.migration, +1);
    process(fetched->served, fetched->lease);
    note_in_flight(fetched->served.migration, -1);
    leases_.untrack(queue, fetched->lease);
  }
  std::lock_guard lock(mutex_);
  if (--running_threads_ == 0) wake_.notify_all();
}

std::optional<WorkerLoop::Fetched> WorkerLoop::fetch() {
  std::vector<ServedQueue> rotation = migrations_.rotation();
  if (migrations_.fixed() && rotation.size() == 1) {
    // One queue: let it wait for a job itself (no busy polling).
    if (auto lease = rotation.front().queue->fetch(options_.worker_id, options_.poll_wait)) {
      return Fetched{std::move(rotation.front()), std::move(*lease)};
    }
    return std::nullopt;
  }
  // Several: one try each, starting at a different migration every call, so
  // a migration with a deep queue cannot starve the others.
  for (ServedQueue& served : rotation) {
    if (stop_.load()) return std::nullopt;
    if (auto lease = served.queue->fetch(options_.worker_id, std::chrono::milliseconds(0))) {
      return Fetched{std::move(served), std::move(*lease)};
    }
  }
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, options_.poll_wait, [this] { return stop_.load(); });
  return std::nullopt;
}

bool WorkerLoop::all_idle() {
  for (const ServedQueue& served : migrations_.all()) {
    if (!served.queue->idle()) return false;
  }
  return true;
}

void WorkerLoop::process(const ServedQueue& served, const Lease& lease) {
  Job job;
  try {
    job = decode_job(lease.payload);
  } catch (const Error& e) {
    spdlog::warn("moving a malformed job aside: {}", e.what());
    apply(served, lease, JobOutcome::bury(e.what()));
    return;
  }
  if (job.migration != served.migration) {
    apply(served, lease,
          JobOutcome::bury("job of migration '" + job.migration + "' in the queue of '" + served.migration + "'"));
    return;
  }
  const RetryPolicy& policy = engine_.options().retry_policy;
  try {
    if (job.type == JobType::kListing) {
      ListingRunner listing(*served.queue, services_);
      apply(served, lease, JobOutcome::of_listing(listing.run(job)));
    } else {
      apply(served, lease, run_copy_job(served, job));
    }
  } catch (const Error& e) {
    apply(served, lease, JobOutcome::of_job_error(job, e, policy));
  }
}

JobOutcome WorkerLoop::run_copy_job(const ServedQueue& served, const Job& job) {
  // Checked on first use, so a target that cannot be written (a read-only
  // Disk root) stops the worker before any object is tried.
  Storage& source = BudgetGates::wrap_if(options_.budgets, *served.queue, served.migration, job.source, BudgetDirection::kRead,
                                         services_.checked_once(job.source, Storage::Access::kRead));
  Storage& target = BudgetGates::wrap_if(options_.budgets, *served.queue, served.migration, job.target, BudgetDirection::kWrite,
                                         services_.checked_once(job.target, Storage::Access::kWrite));
  if (job.type == JobType::kPart) return parts_.run_part(*served.queue, job, source, target);
  if (parts_.splits(*served.queue, job, source, target)) {
    if (auto split = parts_.split(*served.queue, job, source, target)) return *std::move(split);
  }
  const RetryPolicy& policy = engine_.options().retry_policy;
  const int runs = job.attempts + 1;
  Metered* meter = metered(served.migration);

  std::vector<ObjectResult> results;
  results.reserve(job.objects.size());
  for (std::size_t i = 0; i < job.objects.size(); ++i) {
    if (cancel_.cancelled()) break;  // lease released; the rest is not tried
    const JobObject& object = job.objects[i];
    const auto started = Clock::now();
    try {
      CopyTask task{source, target, object.key, object.destination_key(), object.size,
                    object.checksum, object.content_type, object.target_absent};
      task.cancel = &cancel_;
      results.push_back(ObjectResult::of(engine_.copy(task)));
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::kConfig && e.failure_reason() == FailureReason::kConfig) throw;
      if (!is_cancellation(e)) {
        if (policy.should_reschedule(e, runs)) {
          spdlog::info("{}: will retry later ({}): {}", object.key, e.reason(), e.what());
        } else {
          spdlog::warn("{}: failed ({}) after {} run(s): {}", object.key, e.reason(), runs, e.what());
        }
      }
      results.push_back(ObjectResult::failed(e));
    }
    if (meter) meter->duration.observe(std::chrono::duration<double>(Clock::now() - started).count());
  }
  return JobOutcome::of_copy_job(job, results, policy);
}

void WorkerLoop::apply(const ServedQueue& served, const Lease& lease, const JobOutcome& decided) {
  JobQueue& queue = *served.queue;
  switch (decided.action) {
    case JobOutcome::Action::kComplete:
      settle("complete", [&] { return queue.complete(lease, decided.outcome); });
      break;
    case JobOutcome::Action::kRetryLater:
      settle("retry_later", [&] { return queue.retry_later(lease, decided.again, decided.delay); });
      break;
    case JobOutcome::Action::kPushAndComplete:
      settle("push", [&] { queue.push({decided.again}); return true; });
      settle("complete", [&] { return queue.complete(lease, decided.outcome); });
      break;
    case JobOutcome::Action::kBury:
      settle("bury", [&] { return queue.bury(lease, decided.error); });
      break;
    case JobOutcome::Action::kRelease:
      settle("release", [&] { return queue.release(lease); });
      break;
  }
  if (decided.stop_worker) {
    // A worker that cannot open the job's services cannot help this
    // migration: the job went back untouched; stop, so the operator sees it.
    // Concurrent jobs meet the same error: it is logged once.
    bool first = false;
    {
      std::lock_guard lock(mutex_);
      first = summary_.config_error.empty();
      if (first) summary_.config_error = decided.error;
    }
    if (first) spdlog::error("{}", decided.error);
    request_stop();
    return;
  }
  {
    std::lock_guard lock(mutex_);
    summary_.copied += decided.copied;
    summary_.skipped += decided.skipped;
    summary_.failed += decided.failed;
    summary_.bytes += decided.bytes_copied;
    if (decided.action == JobOutcome::Action::kPushAndComplete) ++summary_.rescheduled;
    if (decided.action == JobOutcome::Action::kBury) ++summary_.buried;
  }
  if (Metered* meter = metered(served.migration)) {
    meter->copied.inc(decided.copied);
    meter->skipped.inc(decided.skipped);
    meter->failed.inc(decided.failed);
    meter->bytes_copied.inc(decided.bytes_copied);
    meter->bytes_skipped.inc(decided.bytes_skipped);
    meter->retries.inc(decided.retries);
    for (const std::string& reason : decided.failure_reasons) meter->failures(reason).inc();
  }
}

template <typename Call>
bool WorkerLoop::settle(const char* what, Call&& call) {
  auto pause = std::chrono::milliseconds(100);
  for (;;) {
    if (leases_.released()) return false;  // the lease was released at the drain deadline
    try {
      const bool owned = call();
      if (!owned) spdlog::warn("{}: lease expired and the job went back to the queue; result not recorded", what);
      return owned;
    } catch (const std::exception& e) {
      note_queue_error(what, e);
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, pause, [this] { return leases_.released(); });
      pause = std::min(pause * 2, std::chrono::milliseconds(5000));
    }
  }
}

void WorkerLoop::housekeeping_thread(const std::stop_token& stop) {
  const auto renew_every = std::max(options_.lease / 3, std::chrono::milliseconds(200));
  auto next_chores = Clock::now();
  auto next_rescan = Clock::now() + options_.rescan;
  const std::string info = std::string("{\"concurrency\":") + std::to_string(options_.concurrency) + "}";
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, std::min(renew_every, options_.housekeeping), [&] {
            return stop.stop_requested() || running_threads_ == 0 || leases_.released();
          })) {
        break;
      }
    }
    leases_.renew_all();
    if (!migrations_.fixed() && Clock::now() >= next_rescan) {
      next_rescan = Clock::now() + options_.rescan;
      try {
        migrations_.refresh();
      } catch (const std::exception& e) {
        note_queue_error("list migrations", e);
      }
    }
    if (Clock::now() < next_chores) continue;
    next_chores = Clock::now() + options_.housekeeping;
    housekeep(info);
  }
}

void WorkerLoop::housekeep(const std::string& info) {
  // Only migrations with work need chores: a lease to recover or a retry to
  // promote keeps a migration active. Finished ones cost no round trip; their
  // gauges read zero, so an autoscaler does not keep workers for them.
  const std::vector<ServedQueue> active = migrations_.rotation();
  for (const ServedQueue& served : migrations_.all()) {
    const bool serving = std::any_of(active.begin(), active.end(),
                                     [&](const ServedQueue& a) { return a.migration == served.migration; });
    if (serving) continue;
    std::lock_guard lock(metered_mutex_);
    auto found = metered_.find(served.migration);  // only series this worker already exports
    if (found != metered_.end()) {
      found->second->queue_depth.set(0);
      found->second->pending.set(0);
    }
  }
  for (const ServedQueue& served : active) {
    if (stop_.load() && leases_.released()) return;
    try {
      JobQueue& queue = *served.queue;
      queue.heartbeat(options_.worker_id, info);
      queue.recover_expired();
      queue.promote_due();
      refresh_gauges(served);
    } catch (const std::exception& e) {
      note_queue_error("housekeeping", e);
    }
  }
}

void WorkerLoop::refresh_gauges(const ServedQueue& served) {
  Metered* meter = metered(served.migration);
  if (!meter) return;
  const Counts counts = served.queue->counts();
  meter->queue_depth.set(static_cast<double>(counts.queued));
  meter->pending.set(static_cast<double>(counts.queued + counts.scheduled + counts.in_flight));
  meter->workers_alive.set(static_cast<double>(served.queue->live_workers(options_.housekeeping * 3).size()));
}

WorkerLoop::Metered* WorkerLoop::metered(const std::string& migration) {
  if (!metrics_) return nullptr;
  std::lock_guard lock(metered_mutex_);
  auto& slot = metered_[migration];
  if (!slot) slot = std::make_unique<Metered>(*metrics_, migration);
  return slot.get();
}

void WorkerLoop::note_in_flight(const std::string& migration, int change) {
  Metered* meter = metered(migration);
  if (!meter) return;
  std::lock_guard lock(metered_mutex_);
  const int now = in_flight_[migration] += change;
  meter->in_flight.set(static_cast<double>(now));
}

void WorkerLoop::note_queue_error(const char* what, const std::exception& e) {
  // Outages repeat every poll; one line per second is enough to tell.
  static std::atomic<std::int64_t> last_logged{0};
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
  if (last_logged.exchange(now) != now) spdlog::warn("queue {}: {} (retrying)", what, e.what());
}

}  // namespace blobferry
