// `blobferry enqueue`: pushes a migration's copy jobs to Redis.
#include "enqueuer/commands/enqueue_command.h"

#include <atomic>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "common/budget/budget_gates.h"
#include "common/budget/redis_budget_store.h"
#include "common/queue/queue_connection.h"
#include "common/queue/redis_client.h"
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
  // Listing the source counts against its request budget like the workers'
  // reads: the stored limits of the migration, else the provider's ceiling.
  std::shared_ptr<RedisClient> budget_client = connect_redis(global.redis_url);
  BudgetGates budgets([budget_client](const std::string& name) {
    return std::make_unique<RedisBudgetStore>(budget_client, name);
  }, services.config());
  auto context_over = [&](Storage& storage) {
    return SourceContext{*queue, storage, global.database_url, plan_options_.enqueue_options(),
                         plan_options_.delimiter_depth()};
  };

  if (dry_run_) {
    SourceContext checked = context_over(from);
    source->check_before_store(checked);
    SourceContext listed = context_over(budgets.wrap(*queue, migration_, plan.from, BudgetDirection::kRead, from));
    const PlanTotals totals = source->count(listed, stop);
    std::printf("dry run: %s, %s to copy from %s to %s; nothing queued\n", source->describe_count(totals).c_str(),
                human_bytes(totals.bytes).c_str(), plan.from.c_str(), plan.to.c_str());
    if (totals.problems) std::printf("%llu manifest lines did not parse (see the log)\n", static_cast<unsigned long long>(totals.problems));
    return totals.problems ? 1 : 0;
  }

  SourceContext checked = context_over(from);
  source->check_before_store(checked);
  source->store(*queue);
  if (budget_options_.any()) store_limits(*queue, budget);
  // Wrapped only now: the gate reads the limits just stored.
  SourceContext context = context_over(budgets.wrap(*queue, migration_, plan.from, BudgetDirection::kRead, from));
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
