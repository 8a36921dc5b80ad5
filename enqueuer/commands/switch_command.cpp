// `blobferry switch`: moves verified blobs' service_name to the target, in small batches.
#include "enqueuer/commands/switch_command.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "common/base/error.h"
#include "common/queue/queue_connection.h"
#include "common/storage/storage_config.h"
#include "enqueuer/planning/migration_plan.h"
#include "enqueuer/sources/source_registry.h"
#include "enqueuer/verification/phase_recorder.h"
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
  const std::unique_ptr<MigrationSource> source = SourceRegistry::make(*plan);
  // A dry run changes nothing, so it leaves no record for status and the page.
  std::optional<PhaseRecorder> progress;
  if (!dry_run_) progress.emplace(*queue, PhaseRecord::kSwitchCursor);
  const auto counts_of = [](const SwitchResult& r) -> std::map<std::string, std::uint64_t> {
    return {{"switched", r.switched}, {"unverified", r.unverified}, {"batches", r.batches}};
  };
  const SwitchProgress moved = [&](const SwitchResult& so_far) {
    if (progress) progress->update(counts_of(so_far));
  };
  const SwitchResult result = source->switch_rows(global.database_url, batch_size_, dry_run_, stop, moved);
  if (progress) {
    progress->finish(counts_of(result), stop.load());
  }
  std::printf("%s\n", source->describe_switch(result, dry_run_, true).c_str());
  if (stop.load()) return 1;
  return result.unverified ? 1 : 0;
}

}  // namespace blobferry
