// `blobferry enqueue`: pushes a migration's copy jobs to Redis.
#include "enqueuer/commands/enqueue_command.h"

#include <atomic>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "common/queue/queue_connection.h"
#include "common/cli/human_units.h"
#include "common/storage/service_registry.h"
#include "common/base/signal_watcher.h"

namespace blobferry {

void EnqueueCommand::define(CLI::App& sub) {
  sub.add_option("--migration", migration_, "name of this migration (letters, digits, - _ .)")->required();
  plan_options_.define(sub);
  sub.add_flag("--dry-run", dry_run_, "count objects and bytes, queue nothing");
  budget_options_.define(sub, "of this migration (stored with it; a later enqueue without them keeps them)");
}

int EnqueueCommand::run(const GlobalOptions& global) {
  std::atomic<bool> stop{false};
  SignalWatcher signals([&stop](int) { stop.store(true); });

  validate_migration_name(migration_);
  const BudgetLimits budget = budget_options_.limits();
  ServiceRegistry services(StorageConfig::load(global.storage_config));
  std::unique_ptr<MigrationSource> source = plan_options_.source(migration_, services.config());
  const MigrationPlan& plan = source->plan();
  Storage& from = services.checked(plan.from, Storage::Access::kRead);
  services.checked(plan.to, Storage::Access::kWrite);
  auto queue = open_redis_queue(global.redis_url, migration_);
  SourceContext context{*queue, from, global.database_url, plan_options_.enqueue_options(),
                        plan_options_.delimiter_depth()};

  if (dry_run_) {
    source->check_before_store(context);
    const PlanTotals totals = source->count(context, stop);
    std::printf("dry run: %s, %s to copy from %s to %s; nothing queued\n", source->describe_count(totals).c_str(),
                human_bytes(totals.bytes).c_str(), plan.from.c_str(), plan.to.c_str());
    if (totals.problems) std::printf("%llu manifest lines did not parse (see the log)\n", static_cast<unsigned long long>(totals.problems));
    return totals.problems ? 1 : 0;
  }

  source->check_before_store(context);
  source->store(*queue);
  if (budget_options_.any()) store_limits(*queue, budget);
  const PlanTotals totals = source->enqueue(context, stop);
  std::printf("%s\n", source->describe_enqueued(totals, stop.load()).c_str());
  if (totals.problems) {
    std::printf("%llu manifest lines did not parse (see the log); the rest were queued\n",
                static_cast<unsigned long long>(totals.problems));
    return 1;
  }
  return 0;
}

}  // namespace blobferry
