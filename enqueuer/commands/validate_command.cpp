// `blobferry validate`: proves presence, size and checksum of every object on the target.
#include "enqueuer/commands/validate_command.h"

#include <atomic>
#include <cstdio>
#include <thread>

#include "common/base/error.h"
#include "common/queue/queue_connection.h"
#include "common/storage/storage_config.h"
#include "common/storage/storage_factory.h"
#include "enqueuer/planning/migration_plan.h"
#include "enqueuer/verification/validation_run.h"
#include "common/base/signal_watcher.h"

namespace blobferry {

void ValidateCommand::define(CLI::App& sub) {
  sub.add_option("--migration", migration_, "the migration to validate")->required();
  sub.add_flag("--wait", wait_, "validate again every --interval until everything is verified (exit 0 only then)");
  sub.add_option("--interval", interval_seconds_, "seconds between --wait rounds")->check(CLI::Range(1, 3600))->capture_default_str();
  sub.add_flag("--deep", deep_, "download and hash every object on the target");
  sub.add_flag("--recheck", recheck_, "forget earlier verifications and prove every blob again (before a switch long after validation)");
  sub.add_flag("--requeue", requeue_, "queue copy jobs for every object that is missing or differs");
  sub.add_option("--show", show_, "problems to print (all are counted)")->capture_default_str();
}

int ValidateCommand::run(const GlobalOptions& global) {
  std::atomic<bool> stop{false};
  SignalWatcher signals([&stop](int) { stop.store(true); });
  const StorageConfig config = StorageConfig::load(global.storage_config);
  auto queue = open_redis_queue(global.redis_url, migration_);
  const auto plan = load_plan(*queue);
  if (!plan) {
    throw config_error("no migration " + migration_ + " in Redis: check the name (blobferry enqueue creates it)");
  }
  auto source = open_storage(config.service(plan->from));
  auto target = open_storage(config.service(plan->to));

  ValidationRunOptions options;
  options.deep = deep_;
  options.requeue = requeue_;
  options.recheck = recheck_;
  options.show = show_;
  options.database_url = global.database_url;
  for (;;) {
    const ValidationResult result = run_validation(*plan, *source, *target, *queue, options, stop);
    options.recheck = false;  // --wait rounds check only what is still unverified
    if (result.all_verified()) return 0;
    if (!wait_ || stop.load()) return 1;
    std::printf("not all verified yet; validating again in %d s (Ctrl-C to stop)\n", interval_seconds_);
    std::fflush(stdout);
    for (int i = 0; i < interval_seconds_ * 10 && !stop.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (stop.load()) return 1;
  }
}

}  // namespace blobferry
