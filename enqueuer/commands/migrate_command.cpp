// `blobferry migrate`: the whole playbook in one process, no Redis — plan,
// copy, validate and, with --switch, switch.
#include <CLI/CLI.hpp>

#include "enqueuer/commands/migrate_command.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <exception>
#include <functional>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/budget/budget_gates.h"
#include "common/budget/local_budget_store.h"
#include "common/base/encoding.h"
#include "common/base/error.h"
#include "common/queue/memory_queue.h"
#include "common/storage/storage_config.h"
#include "common/cli/human_units.h"
#include "enqueuer/sources/migration_source.h"
#include "common/cli/progress_bar.h"
#include "enqueuer/verification/switcher.h"
#include "enqueuer/verification/validation_run.h"
#include "worker/copy/copy_engine.h"
#include "common/storage/service_registry.h"
#include "common/base/signal_watcher.h"
#include "worker/loop/worker_loop.h"

namespace blobferry {
namespace {

// One status line redrawn in place (ProgressBar) on a terminal; nothing when
// output is redirected, where the summary lines say it all.
class ProgressLine {
 public:
  ProgressLine(JobQueue& queue, bool enabled) : queue_(queue), bar_(stderr, true) {
    if (enabled && isatty(STDERR_FILENO)) thread_ = std::thread([this] { loop(); });
  }
  ~ProgressLine() { finish(); }
  void finish() {
    if (!thread_.joinable()) return;
    done_.store(true);
    thread_.join();
  }

 private:
  void loop() {
    const auto started = std::chrono::steady_clock::now();
    while (!done_.load()) {
      const Counts c = queue_.counts();
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      const std::uint64_t handled = c.copied + c.skipped + c.failed;
      const std::uint64_t to_go = c.queued + c.scheduled + c.in_flight;
      char line[256];
      std::snprintf(line, sizeof line, " %llu copied, %llu skipped, %llu failed, %llu to go  %s  %.0f objects/s",
                    static_cast<unsigned long long>(c.copied), static_cast<unsigned long long>(c.skipped),
                    static_cast<unsigned long long>(c.failed), static_cast<unsigned long long>(to_go),
                    human_bytes(c.bytes_copied).c_str(), seconds > 0 ? handled / seconds : 0.0);
      const double fraction = handled + to_go ? static_cast<double>(handled) / (handled + to_go) : 0.0;
      bar_.draw({ProgressBar::bar(fraction, 30) + line});
      for (int i = 0; i < 5 && !done_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  JobQueue& queue_;
  ProgressBar bar_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// The planner's thread, owned: its destructor sets stop and joins, so no
// exception between start and join leaves a joinable std::thread behind.
class PlannerThread {
 public:
  PlannerThread(std::atomic<bool>& stop, std::function<void()> plan) : stop_(stop), thread_(std::move(plan)) {}
  ~PlannerThread() { stop_and_join(); }
  PlannerThread(const PlannerThread&) = delete;
  PlannerThread& operator=(const PlannerThread&) = delete;
  void stop_and_join() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool>& stop_;
  std::thread thread_;
};

// " (User#42)" for a Paperclip record's failure: the retry job names it.
std::string record_of_failure(const FailureRecord& failure) {
  try {
    const Job job = decode_job(failure.job_payload);
    if (job.objects.size() == 1 && !job.objects.front().record.empty()) return " (" + job.objects.front().record + ")";
  } catch (const Error&) {
  }
  return "";
}

std::string default_migration_name(const std::string& from, const std::string& to) {
  std::string name = from + "-to-" + to;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  return name.substr(0, 64);
}

}  // namespace

void MigrateCommand::define(CLI::App& sub) {
  plan_options_.define(sub);
  sub.add_option("--migration", migration_, "a name for this migration (default FROM-to-TO); keys validate's records");
  sub.add_flag("--dry-run", dry_run_, "count objects and bytes, copy nothing");
  sub.add_flag("--switch", switch_, "after validation, point the verified blobs at the target service");
  sub.add_flag("--deep", deep_, "validate by downloading and hashing every object on the target");
  sub.add_option("--concurrency", concurrency_, "copies in flight on job threads (large objects, Disk, server-side copies)")->check(CLI::Range(1, 1024))->capture_default_str();
  sub.add_option("--transfers", transfers_, "small S3 copies in flight on the event loop, beyond --concurrency (0: none)")->check(CLI::Range(0, 4096))->capture_default_str();
  sub.add_option("--host-connections", host_connections_, "the event loop's connections to one endpoint at most")->check(CLI::Range(1, 4096))->capture_default_str();
  sub.add_option("--retries", retries_, "in-place retries of a transient failure")->check(CLI::Range(0, 100))->capture_default_str();
  sub.add_option("--part-size-mib", part_size_mib_, "multipart part size")->check(CLI::Range(5, 5120))->capture_default_str();
  sub.add_flag("!--no-progress", progress_, "no progress line on the terminal");
  sub.add_option("--drain-seconds", drain_seconds_, "on Ctrl-C, time for copies in flight to finish before they are cancelled")->check(CLI::Range(0, 86400))->capture_default_str();
  budget_options_.define(sub, "of this process");
}

int MigrateCommand::run(const GlobalOptions& global) {
  std::atomic<bool> stop{false};
  std::atomic<WorkerLoop*> running{nullptr};
  SignalWatcher signals([&](int) {
    stop.store(true);
    if (WorkerLoop* loop = running.load()) loop->request_stop();
  });

  const BudgetLimits budget = budget_options_.limits();
  ServiceRegistry services(StorageConfig::load(global.storage_config));
  const std::string migration = migration_.empty() ? default_migration_name(plan_options_.from(), plan_options_.to()) : migration_;
  validate_migration_name(migration);
  std::unique_ptr<MigrationSource> migration_source = plan_options_.source(migration, services.config());
  const MigrationPlan& plan = migration_source->plan();
  Storage& source = services.checked(plan.from, Storage::Access::kRead);
  Storage& target = services.checked(plan.to, Storage::Access::kWrite);

  MemoryQueue queue(migration);
  EnqueueOptions enqueue_options = plan_options_.enqueue_options();
  // In one process the queue is only a hand-off: keep it short so memory stays flat.
  enqueue_options.max_queued = std::min<std::uint64_t>(enqueue_options.max_queued, 4096);
  enqueue_options.backpressure_poll = std::chrono::milliseconds(20);
  // Before anything is counted or copied: a Paperclip plan's columns, a blob filter the table refuses.
  SourceContext checked{queue, source, global.database_url, enqueue_options, plan_options_.delimiter_depth()};
  migration_source->check_before_store(checked);

  // The planner's listing and the copies' reads share the source's budget
  // (one gate per service and direction), so a listing migration's pages
  // count against the provider's limit like every other request.
  store_limits(queue, budget);
  BudgetGates budgets([](const std::string&) { return std::make_unique<LocalBudgetStore>(); }, services.config());
  Storage& listed = budgets.wrap(queue, migration, plan.from, BudgetDirection::kRead, source);
  SourceContext context{queue, listed, global.database_url, enqueue_options, plan_options_.delimiter_depth()};
  if (dry_run_) {
    const PlanTotals totals = migration_source->count(context, stop);
    std::printf("dry run: %s, %s would be copied from %s to %s; nothing copied\n",
                migration_source->describe_count(totals).c_str(), human_bytes(totals.bytes).c_str(),
                plan.from.c_str(), plan.to.c_str());
    return 0;
  }
  migration_source->store(queue);

  std::atomic<bool> planned{false};
  std::exception_ptr planner_error;
  // Joined on every way out of this scope: an exception between its start
  // and the normal join stops it first instead of reaching std::terminate.
  PlannerThread planner(stop, [&] {
    try {
      migration_source->enqueue(context, stop);
    } catch (...) {
      planner_error = std::current_exception();
      stop.store(true);
      if (WorkerLoop* loop = running.load()) loop->request_stop();
    }
    planned.store(true);
  });

  CopyEngineOptions engine_options;
  engine_options.part_size = static_cast<std::uint64_t>(part_size_mib_) * CopyEngineOptions::kMiB;
  RetryOptions retry;
  retry.retries = retries_;
  // No queue outlives this process, so later retries come round within minutes, not hours.
  retry.reschedule_steps = {std::chrono::seconds(2), std::chrono::seconds(10), std::chrono::seconds(30)};
  engine_options.retry_policy = RetryPolicy(retry);
  const CopyEngine engine(engine_options);

  WorkerOptions options;
  options.migration = migration;
  options.worker_id = "migrate";
  options.concurrency = concurrency_;
  options.transfers = transfers_;
  options.host_connections = host_connections_;
  options.exit_when_empty = true;
  options.planning_done = [&planned] { return planned.load(); };
  options.poll_wait = std::chrono::milliseconds(100);
  options.housekeeping = std::chrono::seconds(1);
  options.drain = std::chrono::seconds(drain_seconds_);
  options.budgets = &budgets;
  options.wait_for_renewed_credentials = false;  // exit 2 naming the service; a rerun resumes
  // An in-process queue has no round trip to save: no waiting to fill a batch.
  options.fetch_linger = std::chrono::milliseconds(0);
  options.settle_delay = std::chrono::milliseconds(0);
  WorkerLoop loop(queue, services, engine, nullptr, options);
  running.store(&loop);
  if (stop.load()) loop.request_stop();

  WorkerSummary summary;
  {
    ProgressLine progress(queue, progress_);
    summary = loop.run();
  }
  running.store(nullptr);
  planner.stop_and_join();  // a planner still running (interrupted) stops too
  if (planner_error) std::rethrow_exception(planner_error);
  if (!summary.config_error.empty()) throw config_error(summary.config_error);

  const Counts counts = queue.counts();
  std::printf("copied %llu objects (%s), skipped %llu already on %s, %llu failed\n",
              static_cast<unsigned long long>(counts.copied), human_bytes(counts.bytes_copied).c_str(),
              static_cast<unsigned long long>(counts.skipped), plan.to.c_str(),
              static_cast<unsigned long long>(counts.failed + counts.dead));
  queue.for_each_failure([](const FailureRecord& f) {
    std::printf("  failed: %s%s (%s): %s\n", printable(f.key).c_str(), record_of_failure(f).c_str(),
                f.reason.c_str(), printable(f.message).c_str());
  });
  if (!summary.drained_cleanly || !counts.idle()) {
    std::printf("interrupted: run the same command again to finish (it skips what is already copied)\n");
    return 1;
  }

  std::atomic<bool> no_stop{false};
  ValidationRunOptions validation_options;
  validation_options.deep = deep_;
  validation_options.database_url = global.database_url;
  const ValidationResult validation = run_validation(*migration_source, source, target, queue, validation_options, no_stop);
  bool ok = counts.failed == 0 && counts.dead == 0 && validation.all_verified();

  if (switch_) {
    switch (migration_source->switch_policy()) {
      case MigrationSource::SwitchPolicy::kNone:
        std::printf("--switch applies to --source blobs only; nothing switched\n");
        break;
      case MigrationSource::SwitchPolicy::kWhenAllVerified:
        if (!ok) {
          std::printf("not switching: some objects are not verified on %s\n", plan.to.c_str());
          break;
        }
        [[fallthrough]];
      case MigrationSource::SwitchPolicy::kVerifiedRows: {
        // kVerifiedRows: rows only for verified files; a record whose file is
        // missing is reported above and waits, the rest are written.
        const SwitchResult switched = migration_source->switch_rows(global.database_url, 1000, false, no_stop, {});
        std::printf("%s\n", migration_source->describe_switch(switched, false, false).c_str());
        ok = ok && switched.unverified == 0;
        break;
      }
    }
  }
  return ok ? 0 : 1;
}

}  // namespace blobferry
