// The data plane's job loop: many copies in flight, leases kept alive,
// outcomes recorded, a graceful drain on SIGTERM.
#include "worker/loop/worker_loop.h"

#include <algorithm>
#include <random>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/base/error.h"
#include "common/budget/budget_gates.h"
#include "common/storage/s3/transfer_loop.h"
#include "worker/listing/listing_runner.h"
#include "worker/loop/job_outcome.h"

namespace blobferry {

using Clock = std::chrono::steady_clock;

// Leases the event feeder asks for at most per queue round trip.
constexpr std::size_t kEventFetchBatch = 64;

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

// A copy job whose objects are in flight on the event loop.
struct WorkerLoop::EventJob {
  EventJob(const ServedQueue& job_served, const Lease& job_lease, Job decoded)
      : served(job_served), lease(job_lease), job(std::move(decoded)) {}

  ServedQueue served;
  Lease lease;
  Job job;
  std::vector<CopyTask> tasks;
  std::vector<Clock::time_point> started;
  std::mutex mutex;  // guards what follows: answers arrive on the loop's thread
  std::vector<ObjectResult> results;
  std::vector<std::optional<std::exception_ptr>> to_engine;  // set: handed on, and why (may be null)
  std::vector<bool> target_written;  // handed on after a PUT went out
  std::size_t remaining = 0;
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

RetryPolicy WorkerLoop::make_settle_policy() {
  // Its pauses end early at the drain deadline, when the result will not be recorded anyway.
  return RetryPolicy(SettleBatcher::retry_options(), std::random_device()(), [this](std::chrono::milliseconds pause) {
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, pause, [this] { return leases_.released(); });
  });
}

std::unique_ptr<LeaseFeed> WorkerLoop::make_feed() {
  const auto batch = std::min(options_.fetch_batch, static_cast<std::size_t>(std::max(options_.concurrency, 1)));
  return std::make_unique<LeaseFeed>(batch, options_.fetch_linger, [this](std::size_t max) { return fetch(max); });
}

void WorkerLoop::request_stop() {
  {
    std::lock_guard lock(mutex_);
    stop_.store(true);
  }
  feed_->stop();
  wake_.notify_all();
  feeder_wake_.notify_all();
  thread_wake_.notify_all();
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
  if (options_.transfers > 0) {
    const auto transfers = static_cast<std::size_t>(options_.transfers);
    feeder_low_water_ = transfers - std::max<std::size_t>(1, transfers / 4);
    TransferLoopOptions loop_options;
    loop_options.max_host_connections = options_.host_connections;
    transfer_loop_ = std::make_unique<TransferLoop>(loop_options);
    event_copier_ = std::make_unique<EventCopier>(*transfer_loop_, engine_, EventCopierOptions{options_.event_max_bytes});
  }
  settles_ = std::make_unique<SettleBatcher>(
      SettleBatcherOptions{options_.settle_batch, options_.settle_delay},
      [this](JobQueue& queue, const std::vector<Completion>& completions) { record_completions(queue, completions); });
  {
    // Declared in this block so that, whatever happens below, every thread is
    // joined (std::jthread) before the loop's members can go away.
    std::vector<std::jthread> copiers;
    copiers.reserve(static_cast<std::size_t>(options_.concurrency));
    for (int i = 0; i < options_.concurrency; ++i) {
      copiers.emplace_back([this] { event_copier_ ? evented_job_thread() : job_thread(); });
    }
    // Joined before the copiers (declared after them): they wait for it to end.
    std::jthread feeder;
    if (event_copier_) feeder = std::jthread([this] { event_feeder(); });
    std::jthread housekeeper([this](std::stop_token stop) { housekeeping_thread(stop); });

    std::unique_lock lock(mutex_);
    wake_.wait(lock, [this] { return stop_.load() || running_threads_ == 0; });
    const auto deadline = Clock::now() + options_.drain;
    if (!wake_.wait_until(lock, deadline, [this] { return !busy(); })) {
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
    if (feeder.joinable()) feeder.join();
    for (auto& t : copiers) t.join();
    settles_->close();
  }
  settles_.reset();
  // Every event job ended before the last job thread did.
  event_copier_.reset();
  transfer_loop_.reset();
  std::lock_guard guard(mutex_);
  summary_.drained_cleanly = !cut_short;
  return summary_;
}

void WorkerLoop::job_thread() {
  // Storage calls made by this thread (listing jobs too) see the loop's token.
  const CancellationToken::Scope cancellation(&cancel_);
  for (;;) {
    std::optional<FedLease> fed;
    try {
      fed = feed_->next();
    } catch (const std::exception& e) {
      pause_after_fetch_error(e);
      continue;
    }
    if (!fed) {
      if (stop_.load()) break;
      note_empty_fetch();
      continue;
    }
    empty_fetches_ = 0;
    // A lease fetched for this thread is run even when a stop came meanwhile,
    // as a fetch that returned one always was: the drain covers it.
    run_fed(*fed);
  }
  std::lock_guard lock(mutex_);
  if (--running_threads_ == 0) wake_.notify_all();
}

void WorkerLoop::run_fed(const FedLease& fed) {
  note_in_flight(fed.served.migration, +1);
  const bool handed_over = process(fed.served, fed.lease);
  note_in_flight(fed.served.migration, -1);
  if (!handed_over) leases_.untrack(*fed.served.queue, fed.lease);
}

void WorkerLoop::pause_after_fetch_error(const std::exception& error) {
  note_queue_error("fetch", error);
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_.load(); });
}

void WorkerLoop::note_empty_fetch() {
  // Counted for the whole loop: one thread fetches at a time, so a count per
  // thread would take a round of every thread's fetch.
  if (!options_.exit_when_empty || ++empty_fetches_ < 2) return;
  try {
    const bool planned = !options_.planning_done || options_.planning_done();
    if (planned && all_idle()) request_stop();
  } catch (const std::exception& e) {
    note_queue_error("idle", e);
  }
}

// With the event loop: one thread fetches for it and starts each small copy
// there itself, so a job costs no wake-up of a thread of its own. Any other
// job goes to the job threads. What a job is shows only once fetched, so the
// last batch decides the next one's size: mostly small copies, as many as
// the loop has room for (up to 64); otherwise one per idle job thread, as
// the job threads' own feed would lease, so a worker busy with large objects
// does not hoard jobs other workers could run. A SIGKILL loses at most
// transfers + concurrency + one batch of leases, which recovery returns.
void WorkerLoop::event_feeder() {
  const CancellationToken::Scope cancellation(&cancel_);
  const auto threads = static_cast<std::size_t>(std::max(options_.concurrency, 1));
  const auto transfers = static_cast<std::size_t>(options_.transfers);
  bool wide = false;  // the last batch was mostly small copies
  for (;;) {
    std::size_t room = 0;
    {
      std::unique_lock lock(mutex_);
      const auto taken = [&] { return thread_work_.size() + (wide ? 0 : threads_busy_); };
      feeder_wake_.wait(lock, [&] { return stop_.load() || (event_copies_ <= feeder_low_water_ && taken() < threads); });
      if (stop_.load()) break;
      room = std::min(transfers - event_copies_, wide ? kEventFetchBatch : threads - taken());
    }
    std::vector<FedLease> fetched;
    try {
      fetched = fetch(room);
    } catch (const std::exception& e) {
      pause_after_fetch_error(e);
      continue;
    }
    if (fetched.empty()) {
      note_empty_fetch();
      continue;
    }
    empty_fetches_ = 0;
    std::size_t evented = 0;
    for (FedLease& fed : fetched) {
      if (start_evented(fed)) {
        ++evented;
        continue;
      }
      {
        std::lock_guard lock(mutex_);
        thread_work_.push_back(ThreadWork{std::move(fed), nullptr});
      }
      thread_wake_.notify_one();
    }
    wide = evented * 2 >= fetched.size();
  }
  {
    std::lock_guard lock(mutex_);
    feeder_done_ = true;
  }
  thread_wake_.notify_all();
}

// With the event loop, job threads take their work from thread_work_: jobs
// the loop cannot copy, and what the loop handed on of its own.
void WorkerLoop::evented_job_thread() {
  const CancellationToken::Scope cancellation(&cancel_);
  for (;;) {
    ThreadWork work;
    {
      std::unique_lock lock(mutex_);
      thread_wake_.wait(lock, [this] { return !thread_work_.empty() || (feeder_done_ && event_jobs_ == 0); });
      if (thread_work_.empty()) break;
      work = std::move(thread_work_.front());
      thread_work_.pop_front();
      ++threads_busy_;
    }
    if (work.leftover) {
      run_leftover(*work.leftover);
    } else {
      run_fed(*work.fed);
    }
    {
      std::lock_guard lock(mutex_);
      --threads_busy_;
    }
    feeder_wake_.notify_one();  // a thread is free: it may fetch again
  }
  std::lock_guard lock(mutex_);
  if (--running_threads_ == 0) wake_.notify_all();
}

std::vector<FedLease> WorkerLoop::fetch(std::size_t max) {
  std::vector<ServedQueue> rotation = migrations_.rotation();
  const auto leased = [&](ServedQueue& served, std::vector<Lease> leases) {
    std::vector<FedLease> fed;
    fed.reserve(leases.size());
    for (Lease& lease : leases) {
      leases_.track(*served.queue, lease);  // renewed from now, while it waits for its thread too
      fed.push_back({served, std::move(lease)});
    }
    return fed;
  };
  if (migrations_.fixed() && rotation.size() == 1) {
    // One queue: let it wait for a job itself (no busy polling).
    ServedQueue& served = rotation.front();
    return leased(served, served.queue->fetch_batch(options_.worker_id, max, options_.poll_wait));
  }
  // Several: one try each, starting at a different migration every call, so
  // a migration with a deep queue cannot starve the others.
  for (ServedQueue& served : rotation) {
    if (stop_.load()) return {};
    std::vector<Lease> leases = served.queue->fetch_batch(options_.worker_id, max, std::chrono::milliseconds(0));
    if (!leases.empty()) return leased(served, std::move(leases));
  }
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, options_.poll_wait, [this] { return stop_.load(); });
  return {};
}

bool WorkerLoop::all_idle() {
  for (const ServedQueue& served : migrations_.all()) {
    if (!served.queue->idle()) return false;
  }
  return true;
}

bool WorkerLoop::process(const ServedQueue& served, const Lease& lease) {
  Job job;
  try {
    job = decode_job(lease.payload);
  } catch (const Error& e) {
    spdlog::warn("moving a malformed job aside: {}", e.what());
    return apply(served, lease, JobOutcome::bury(e.what()));
  }
  if (job.migration != served.migration) {
    return apply(served, lease,
                 JobOutcome::bury("job of migration '" + job.migration + "' in the queue of '" + served.migration + "'"));
  }
  if (!outages_.admits(job.source, job.target)) {
    return apply(served, lease, JobOutcome::waiting(job, outages_.recheck()));
  }
  try {
    bool handed_over = false;
    if (job.type == JobType::kListing) {
      ListingRunner listing(*served.queue, budgeted(served, job.source, BudgetDirection::kRead),
                            budgeted(served, job.target, BudgetDirection::kWrite));
      handed_over = apply(served, lease, JobOutcome::of_listing(listing.run(job)));
    } else {
      handed_over = apply(served, lease, run_copy_job(served, job));
    }
    outages_.ran(job.source, job.target);
    return handed_over;
  } catch (const Error& e) {
    return apply(served, lease, outcome_of_error(job, e));
  }
}

JobOutcome WorkerLoop::outcome_of_error(const Job& job, const Error& error) {
  // Expired credentials stop only their service: the job waits, the worker goes on.
  const bool waits = options_.wait_for_renewed_credentials && outages_.took_out(error);
  return waits ? JobOutcome::waiting(job, outages_.recheck())
               : JobOutcome::of_job_error(job, error, engine_.options().retry_policy);
}

JobOutcome WorkerLoop::run_copy_job(const ServedQueue& served, const Job& job) {
  Storage& source = budgeted(served, job.source, BudgetDirection::kRead);
  Storage& target = budgeted(served, job.target, BudgetDirection::kWrite);
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
    CopyTask task{source, target, object.key, object.destination_key(), object.size,
                  object.checksum, object.content_type, object.target_absent};
    task.cancel = &cancel_;
    results.push_back(copy_object(task, runs));
    if (meter) meter->duration.observe(std::chrono::duration<double>(Clock::now() - started).count());
  }
  return JobOutcome::of_copy_job(job, results, policy);
}

// Throws the errors that are the whole job's (a service that cannot be
// opened, expired credentials); any other is this object's result.
ObjectResult WorkerLoop::copy_object(const CopyTask& task, int runs) {
  try {
    return ObjectResult::of(engine_.copy(task));
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kConfig && (e.failure_reason() == FailureReason::kConfig ||
                                           e.failure_reason() == FailureReason::kCredentialsExpired)) {
      throw;
    }
    if (!is_cancellation(e)) {
      if (engine_.options().retry_policy.should_reschedule(e, runs)) {
        spdlog::info("{}: will retry later ({}): {}", task.source_key, e.reason(), e.what());
      } else {
        spdlog::warn("{}: failed ({}) after {} run(s): {}", task.source_key, e.reason(), runs, e.what());
      }
    }
    return ObjectResult::failed(e);
  }
}

namespace {

bool cancelled_by(const std::exception_ptr& error) {
  if (!error) return false;
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    return is_cancellation(e);
  } catch (...) {
    return false;
  }
}

}  // namespace

// Anything unusual about the job (malformed, another migration's, a service
// out or failing its check) is left to a job thread, which says so as before.
bool WorkerLoop::start_evented(const FedLease& fed) {
  const ServedQueue& served = fed.served;
  Job job;
  try {
    job = decode_job(fed.lease.payload);
  } catch (const Error&) {
    return false;
  }
  if (job.type != JobType::kCopy || job.objects.empty() || job.migration != served.migration) return false;
  // A service that is out waits, or probes, through process(): admits() may
  // grant the probe, which must go to the job that runs.
  if (outages_.out(job.source) || outages_.out(job.target)) return false;
  Storage* source = nullptr;
  Storage* target = nullptr;
  try {
    source = &budgeted(served, job.source, BudgetDirection::kRead);
    target = &budgeted(served, job.target, BudgetDirection::kWrite);
    if (parts_.splits(*served.queue, job, *source, *target)) return false;
  } catch (const Error&) {
    return false;
  }
  auto evented = std::make_shared<EventJob>(served, fed.lease, std::move(job));
  for (const JobObject& object : evented->job.objects) {
    CopyTask task{*source, *target, object.key, object.destination_key(), object.size,
                  object.checksum, object.content_type, object.target_absent};
    task.cancel = &cancel_;
    if (!event_copier_->accepts(task)) return false;
    evented->tasks.push_back(std::move(task));
  }
  const std::size_t count = evented->tasks.size();
  evented->results.resize(count);
  evented->to_engine.resize(count);
  evented->target_written.assign(count, false);
  evented->started.assign(count, Clock::now());
  evented->remaining = count;
  {
    std::lock_guard lock(mutex_);
    ++event_jobs_;
    event_copies_ += count;
  }
  note_in_flight(served.migration, +1);
  for (std::size_t i = 0; i < count; ++i) {
    event_copier_->start(evented->tasks[i], [this, evented, i](EventCopier::Outcome outcome) {
      on_evented(evented, i, std::move(outcome));
    });
  }
  return true;
}

// On the loop's thread: it must not block. A job whose objects were all
// copied or skipped completes here (a hand-over to the settle batcher);
// anything else goes to a job thread.
void WorkerLoop::on_evented(const std::shared_ptr<EventJob>& job, std::size_t index, EventCopier::Outcome outcome) {
  bool last = false;
  bool all_done = true;
  bool wake_feeder = false;
  bool handed_on = false;
  {
    std::lock_guard lock(job->mutex);
    if (outcome.result) {
      job->results[index] = ObjectResult::of(*outcome.result);
    } else if (cancelled_by(outcome.error)) {
      job->results[index] = ObjectResult::failed(cancelled_error(job->tasks[index].source_key));
    } else {
      job->to_engine[index] = outcome.error;
      job->target_written[index] = outcome.target_written;
    }
    last = --job->remaining == 0;
    for (const ObjectResult& result : job->results) {
      all_done = all_done && (result.status == ObjectResult::Status::kCopied ||
                              result.status == ObjectResult::Status::kSkipped);
    }
  }
  if (outcome.result) {
    if (Metered* meter = metered(job->served.migration)) {
      meter->duration.observe(std::chrono::duration<double>(Clock::now() - job->started[index]).count());
    }
  }
  {
    std::lock_guard lock(mutex_);
    wake_feeder = --event_copies_ == feeder_low_water_;
    handed_on = last && !all_done;
    if (handed_on) thread_work_.push_back(ThreadWork{std::nullopt, job});
  }
  // Each waiter is told only what it waits for; the loop's other waiters
  // (run(), the housekeeper) have nothing to do with it.
  if (wake_feeder) feeder_wake_.notify_one();
  if (handed_on) thread_wake_.notify_one();
  if (last && all_done) {
    finish_evented(*job, JobOutcome::of_copy_job(job->job, job->results, engine_.options().retry_policy));
    outages_.ran(job->job.source, job->job.target);
  }
}

void WorkerLoop::run_leftover(EventJob& leftover) {
  EventJob* job = &leftover;
  const int runs = job->job.attempts + 1;
  try {
    for (std::size_t i = 0; i < job->tasks.size(); ++i) {
      if (!job->to_engine[i]) continue;
      if (cancel_.cancelled()) break;  // lease released; the rest is not tried
      ObjectResult result = copy_object(job->tasks[i], runs);
      // The event loop's try counts as one, and a PUT of it that the engine
      // then found on the target is this worker's copy, not a skip.
      if (*job->to_engine[i]) ++result.attempts;
      if (job->target_written[i] && result.status == ObjectResult::Status::kSkipped) {
        result.status = ObjectResult::Status::kCopied;
      }
      job->results[i] = std::move(result);
      if (Metered* meter = metered(job->served.migration)) {
        meter->duration.observe(std::chrono::duration<double>(Clock::now() - job->started[i]).count());
      }
    }
  } catch (const Error& e) {
    finish_evented(*job, outcome_of_error(job->job, e));
    return;
  }
  finish_evented(*job, JobOutcome::of_copy_job(job->job, job->results, engine_.options().retry_policy));
  outages_.ran(job->job.source, job->job.target);
}

void WorkerLoop::finish_evented(EventJob& job, const JobOutcome& decided) {
  if (!apply(job.served, job.lease, decided)) leases_.untrack(*job.served.queue, job.lease);
  note_in_flight(job.served.migration, -1);
  bool none_left = false;
  {
    std::lock_guard lock(mutex_);
    none_left = --event_jobs_ == 0;
  }
  if (none_left) thread_wake_.notify_all();  // job threads stopping wait for this
}


Storage& WorkerLoop::budgeted(const ServedQueue& served, const std::string& service, BudgetDirection direction) {
  // Checked on first use, so a target that cannot be written (a read-only
  // Disk root) stops the worker before any object is tried.
  const auto access = direction == BudgetDirection::kRead ? Storage::Access::kRead : Storage::Access::kWrite;
  return BudgetGates::wrap_if(options_.budgets, *served.queue, served.migration, service, direction,
                              services_.checked_once(service, access));
}

bool WorkerLoop::apply(const ServedQueue& served, const Lease& lease, const JobOutcome& decided) {
  JobQueue& queue = *served.queue;
  bool handed_over = false;
  switch (decided.action) {
    case JobOutcome::Action::kComplete:
      hand_over(queue, lease, decided.outcome);
      handed_over = true;
      break;
    case JobOutcome::Action::kRetryLater:
      settle("retry_later", [&] { return queue.retry_later(lease, decided.again, decided.delay); });
      break;
    case JobOutcome::Action::kPushAndComplete:
      settle("push", [&] { queue.push({decided.again}); return true; });
      hand_over(queue, lease, decided.outcome);
      handed_over = true;
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
    return handed_over;
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
  return handed_over;
}

void WorkerLoop::hand_over(JobQueue& queue, const Lease& lease, const Outcome& outcome) {
  {
    std::lock_guard lock(mutex_);
    ++unsettled_;
  }
  settles_->add(queue, Completion{lease, outcome});
}

void WorkerLoop::record_completions(JobQueue& queue, const std::vector<Completion>& completions) {
  std::vector<bool> recorded;
  settle("complete", [&] {
    recorded = queue.complete_batch(completions);
    return true;
  });
  for (std::size_t i = 0; i < completions.size(); ++i) {
    if (i < recorded.size() && !recorded[i]) {
      spdlog::warn("complete: lease of job {} expired and the job went back to the queue; result not recorded",
                   completions[i].lease.job_id);
    }
    leases_.untrack(queue, completions[i].lease);
  }
  {
    std::lock_guard lock(mutex_);
    unsettled_ -= completions.size();
  }
  wake_.notify_all();
}

template <typename Call>
bool WorkerLoop::settle(const char* what, Call&& call) {
  return settle_policy_.run(
      [&] {
        if (leases_.released()) return false;  // the lease was released at the drain deadline
        bool owned = false;
        try {
          owned = call();
        } catch (const Error&) {
          throw;
        } catch (const std::exception& e) {
          // Retried as any queue error was before: the policy retries Errors only.
          throw Error(ErrorKind::kTransient, FailureReason::kRedis, e.what());
        }
        if (!owned) spdlog::warn("{}: lease expired and the job went back to the queue; result not recorded", what);
        return owned;
      },
      [&](const Error& e, int, std::chrono::milliseconds) { note_queue_error(what, e); });
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
            return stop.stop_requested() || !busy() || leases_.released();
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
