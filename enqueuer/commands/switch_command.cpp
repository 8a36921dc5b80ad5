// `blobferry switch`: moves verified blobs' service_name to the target, in small batches.
#include "enqueuer/commands/switch_command.h"

#include <atomic>
#include <cstdio>

#include "common/base/error.h"
#include "common/db/pg_connection.h"
#include "common/queue/queue_connection.h"
#include "common/storage/storage_config.h"
#include "enqueuer/planning/migration_plan.h"
#include "enqueuer/verification/switcher.h"
#include "common/base/signal_watcher.h"

namespace blobferry {

void SwitchCommand::define(CLI::App& sub) {
  sub.add_option("--migration", migration_, "the migration whose verified blobs to switch")->required();
  sub.add_flag("--dry-run", dry_run_, "count what would switch, change nothing");
  sub.add_option("--batch-size", batch_size_, "rows per UPDATE, each its own short transaction")
      ->check(CLI::Range(1, 100000))->capture_default_str();
}

int SwitchCommand::run(const GlobalOptions& global) {
  std::atomic<bool> stop{false};
  SignalWatcher signals([&stop](int) { stop.store(true); });
  const StorageConfig config = StorageConfig::load(global.storage_config);
  auto queue = open_redis_queue(global.redis_url, migration_);
  const auto plan = load_plan(*queue);
  if (!plan) throw config_error("no migration " + migration_ + " in Redis: check the name (blobferry enqueue creates it)");
  config.service(plan->to);  // the app must know the target service, or switched blobs would be unreadable
  PgConnection db(global.database_url);
  const SwitchResult result = switch_verified_blobs(db, *plan, batch_size_, dry_run_, stop);
  if (plan->source == SourceKind::kPaperclip) {
    std::printf("%s %llu ActiveStorage blob and attachment rows for %s on %s in %llu batches; %llu files not verified yet%s\n",
                dry_run_ ? "would write" : "wrote", static_cast<unsigned long long>(result.switched),
                plan->paperclip.record_type.c_str(), plan->to.c_str(), static_cast<unsigned long long>(result.batches),
                static_cast<unsigned long long>(result.unverified),
                result.unverified ? " (see blobferry report and validate; run switch again once they are)" : "");
    return stop.load() || result.unverified ? 1 : 0;
  }
  std::printf("%s %llu blobs from %s to %s in %llu batches; %llu not verified yet%s\n",
              dry_run_ ? "would switch" : "switched", static_cast<unsigned long long>(result.switched),
              plan->from.c_str(), plan->to.c_str(), static_cast<unsigned long long>(result.batches),
              static_cast<unsigned long long>(result.unverified),
              result.unverified ? " (run blobferry validate, then switch again)" : "");
  if (stop.load()) return 1;
  return result.unverified ? 1 : 0;
}

}  // namespace blobferry
