// `blobferry validate`: proves presence, size and checksum of every object on the target.
#include "enqueuer/commands/validate_command.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <thread>

#include <CLI/CLI.hpp>

#include "common/base/error.h"
#include "common/cli/duration_option.h"
#include "common/queue/queue_connection.h"
#include "common/storage/storage_config.h"
#include "common/storage/storage_factory.h"
#include "enqueuer/commands/status_command.h"
#include "enqueuer/planning/migration_plan.h"
#include "enqueuer/sources/source_registry.h"
#include "enqueuer/verification/phase_recorder.h"
#include "enqueuer/verification/validation_run.h"
#include "common/base/signal_watcher.h"

namespace blobferry {
namespace {

// A worker's default --lease-seconds: silent longer than this, a worker is
// gone for good, not between heartbeats.
constexpr std::chrono::seconds kLeaseLength{30};

// What `status` and the operator page show of a round: its counts, and where
// the source records verifications, how many rows that makes and how many
// there are to verify (a round checks only those not verified yet).
std::map<std::string, std::uint64_t> progress_counts(const ValidationResult& result) {
  std::map<std::string, std::uint64_t> counts{{"checked", result.checked},
                                              {"verified", result.verified},
                                              {"missing", result.missing},
                                              {"mismatched", result.mismatched},
                                              {"unverifiable", result.unverifiable}};
  if (result.verified_total) {
    counts["verified_total"] = *result.verified_total;
    counts["to_verify"] = *result.verified_total + (result.checked - result.verified);
  }
  return counts;
}

}  // namespace

void ValidateCommand::define(CLI::App& sub) {
  sub.add_option("--migration", migration_, "the migration to validate")->required();
  sub.add_flag("--wait", wait_, "validate again every --interval until everything is verified (exit 0 only then)");
  sub.add_option("--timeout", timeout_, "with --wait: give up (exit 1) after this long, e.g. 90s, 15m, 2h");
  sub.add_option("--interval", interval_seconds_, "seconds between --wait rounds")->check(CLI::Range(1, 3600))->capture_default_str();
  sub.add_flag("--deep", deep_, "download and hash every object on the target");
  sub.add_flag("--recheck", recheck_, "forget earlier verifications and prove every blob again (before a switch long after validation)");
  sub.add_flag("--requeue", requeue_, "queue copy jobs for every object that is missing or differs");
  sub.add_option("--show", show_, "problems to print (all are counted)")->capture_default_str();
}

int ValidateCommand::run(const GlobalOptions& global) {
  std::atomic<bool> stop{false};
  SignalWatcher signals([&stop](int) { stop.store(true); });
  std::optional<std::chrono::seconds> timeout;
  if (!timeout_.empty()) {
    timeout = parse_duration(timeout_, "--timeout");
    if (!wait_) throw config_error("--timeout " + timeout_ + " limits --wait: add --wait, or drop --timeout");
  }
  const StorageConfig config = StorageConfig::load(global.storage_config);
  auto queue = open_redis_queue(global.redis_url, migration_);
  const auto plan = load_plan(*queue);
  if (!plan) {
    throw config_error("no migration " + migration_ + " in Redis: check the name (blobferry enqueue creates it)");
  }
  const std::unique_ptr<MigrationSource> migration_source = SourceRegistry::make(*plan);
  auto source = open_storage(config.service(plan->from));
  auto target = open_storage(config.service(plan->to));

  ValidationRunOptions options;
  options.deep = deep_;
  options.requeue = requeue_;
  options.recheck = recheck_;
  options.show = show_;
  options.database_url = global.database_url;
  using Clock = std::chrono::steady_clock;
  const auto started = Clock::now();
  std::optional<Clock::time_point> workerless_since;
  bool said_workerless = false;
  PhaseRecorder progress(*queue, PhaseRecord::kValidateCursor);
  for (;;) {
    const ValidationResult result = run_validation(*migration_source, *source, *target, *queue, options, stop);
    options.recheck = false;  // --wait rounds check only what is still unverified
    if (result.all_verified() || !wait_ || stop.load()) {
      progress.finish(progress_counts(result), stop.load());
      return result.all_verified() ? 0 : 1;
    }
    progress.update(progress_counts(result));
    const auto now = Clock::now();
    if (timeout && now - started >= *timeout) {
      progress.finish(progress_counts(result), false);
      std::printf("timed out after %s: %llu objects not verified yet\n", timeout_.c_str(),
                  static_cast<unsigned long long>(result.checked - result.verified));
      return 1;
    }
    // What the wait depends on: jobs still to run, and workers to run them.
    const Counts counts = queue->counts();
    const std::size_t workers = queue->live_workers(kLiveWorkerAge).size();
    const std::uint64_t waiting = counts.queued + counts.scheduled;
    if (workers == 0 && waiting + counts.in_flight > 0) {
      if (!workerless_since) workerless_since = now;
    } else {
      workerless_since.reset();
      said_workerless = false;
    }
    auto pause = std::chrono::seconds(interval_seconds_);
    if (timeout) pause = std::min(pause, std::chrono::duration_cast<std::chrono::seconds>(*timeout - (now - started)) + std::chrono::seconds(1));
    const std::string worker_text = workers ? std::to_string(workers) + " live workers" : "no live worker";
    std::printf("not all verified yet: waiting for %llu queued, %llu in flight, %s; validating again in %lld s (Ctrl-C to stop)\n",
                static_cast<unsigned long long>(waiting), static_cast<unsigned long long>(counts.in_flight),
                worker_text.c_str(), static_cast<long long>(pause.count()));
    if (workerless_since && !said_workerless && now - *workerless_since >= kLeaseLength) {
      std::printf("no live worker for %lld s while %llu jobs wait: nothing will change until `blobferry worker --migration %s` runs\n",
                  static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(now - *workerless_since).count()),
                  static_cast<unsigned long long>(waiting + counts.in_flight), migration_.c_str());
      said_workerless = true;
    }
    std::fflush(stdout);
    const auto wake = Clock::now() + pause;
    while (Clock::now() < wake && !stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (stop.load()) {
      progress.finish(progress_counts(result), true);
      return 1;
    }
  }
}

}  // namespace blobferry
