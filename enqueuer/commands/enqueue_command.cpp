// `blobferry enqueue`: pushes a migration's copy jobs to Redis.
#include "enqueuer/commands/enqueue_command.h"

#include <atomic>
#include <cstdio>

#include <spdlog/spdlog.h>

#include "common/db/pg_connection.h"
#include "common/queue/queue_connection.h"
#include "enqueuer/sources/blobs/blob_table.h"
#include "enqueuer/planning/enqueue_runner.h"
#include "common/cli/human_units.h"
#include "enqueuer/sources/paperclip/paperclip_enqueuer.h"
#include "common/storage/service_registry.h"
#include "common/base/signal_watcher.h"

namespace blobferry {
namespace {

// The database refuses some plans (unreachable, no blob table, a filter the
// table cannot apply, like --id-range on uuid ids). Ask it before the plan is
// stored: a stored plan fixes what the migration name means, so the corrected
// command would otherwise be refused as "another plan".
void check_blob_table(const std::string& database_url, const BlobFilter& filter) {
  PgConnection db(database_url);
  BlobTable table(db);
  table.page(filter, "", 1);
}

}  // namespace

void EnqueueCommand::define(CLI::App& sub) {
  sub.add_option("--migration", migration_, "name of this migration (letters, digits, - _ .)")->required();
  plan_options_.define(sub);
  sub.add_flag("--dry-run", dry_run_, "count objects and bytes, queue nothing");
}

int EnqueueCommand::run(const GlobalOptions& global) {
  std::atomic<bool> stop{false};
  SignalWatcher signals([&stop](int) { stop.store(true); });

  validate_migration_name(migration_);
  ServiceRegistry services(StorageConfig::load(global.storage_config));
  MigrationPlan plan = plan_options_.plan(migration_, services.config());
  Storage& source = services.checked(plan.from, Storage::Access::kRead);
  services.checked(plan.to, Storage::Access::kWrite);
  auto queue = open_redis_queue(global.redis_url, migration_);

  if (plan.source == SourceKind::kPaperclip) return run_paperclip(global, plan, *queue, stop);

  if (dry_run_) {
    EnqueueRunner runner(plan, *queue, source, global.database_url, plan_options_.enqueue_options());
    const PlanTotals totals = runner.dry_run(stop);
    std::printf("dry run: %llu objects, %s to copy from %s to %s; nothing queued\n",
                static_cast<unsigned long long>(totals.objects), human_bytes(totals.bytes).c_str(),
                plan.from.c_str(), plan.to.c_str());
    if (totals.problems) std::printf("%llu manifest lines did not parse (see the log)\n", static_cast<unsigned long long>(totals.problems));
    return totals.problems ? 1 : 0;
  }

  if (plan.source == SourceKind::kBlobs) check_blob_table(global.database_url, plan.filter);
  plan = save_or_check_plan(*queue, plan);
  EnqueueRunner runner(plan, *queue, source, global.database_url, plan_options_.enqueue_options());
  runner.delimiter_depth = plan_options_.delimiter_depth();
  const PlanTotals totals = runner.run(stop);
  if (totals.listing_jobs) {
    std::printf("queued %llu listing jobs for migration %s: workers list %s and queue copies as pages arrive\n",
                static_cast<unsigned long long>(totals.listing_jobs), migration_.c_str(), plan.from.c_str());
  } else {
    std::printf("queued %llu copy jobs (%s) for migration %s%s%s\n", static_cast<unsigned long long>(totals.objects),
                human_bytes(totals.bytes).c_str(), migration_.c_str(), totals.catch_up ? " (catch-up pass)" : "",
                stop.load() ? "; interrupted, run again to continue" : "");
  }
  if (totals.problems) {
    std::printf("%llu manifest lines did not parse (see the log); the rest were queued\n",
                static_cast<unsigned long long>(totals.problems));
    return 1;
  }
  return 0;
}

int EnqueueCommand::run_paperclip(const GlobalOptions& global, MigrationPlan plan, JobQueue& queue,
                                  const std::atomic<bool>& stop) {
  PgConnection db(global.database_url);
  // Opening the table checks its columns before the plan is stored.
  PaperclipEnqueuer enqueuer(db, queue, plan, plan_options_.enqueue_options());
  if (dry_run_) {
    const PaperclipCount count = enqueuer.count();
    std::printf("dry run: %lld %s records with a file in %s and no attachment of it yet, %s to copy from %s to %s; nothing queued\n",
                count.records, plan.paperclip.record_type.c_str(), plan.paperclip.attachment.c_str(),
                human_bytes(count.bytes).c_str(), plan.from.c_str(), plan.to.c_str());
    return 0;
  }
  plan = save_or_check_plan(queue, plan);
  const EnqueueStats stats = PaperclipEnqueuer(db, queue, plan, plan_options_.enqueue_options()).run(stop);
  std::printf("queued %llu copy jobs (%s) for migration %s: %s.%s -> ActiveStorage keys on %s%s%s\n",
              static_cast<unsigned long long>(stats.jobs), human_bytes(stats.bytes).c_str(), migration_.c_str(),
              plan.paperclip.table.c_str(), plan.paperclip.attachment.c_str(), plan.to.c_str(),
              stats.catch_up ? " (catch-up pass)" : "", stop.load() ? "; interrupted, run again to continue" : "");
  return 0;
}

}  // namespace blobferry
