// What every kind of --source does for the commands (check, enqueue, dry run,
// validate, switch), so a command never asks which kind it has.
#include "enqueuer/sources/migration_source.h"

#include "common/base/error.h"
#include "common/cli/human_units.h"

namespace blobferry {

void MigrationSource::store(JobQueue& queue) { plan_ = save_or_check_plan(queue, plan_); }

void MigrationSource::accept_only(unsigned given, unsigned accepted) {
  const unsigned refused = given & ~accepted;
  // One message per group, in the order plan_options always checked them.
  if (refused & kListingOptions) {
    throw config_error("--prefix and --delimiter-depth apply to --source listing; for blobs use --key-prefix");
  }
  if (refused & kUntrackedVariants) throw config_error("--include-untracked-variants applies to --source blobs");
  if (refused & kPaperclipOptions) {
    throw config_error("--table, --attachment, --record-type and --path apply to --source paperclip");
  }
  if (refused & kBlobFilters) {
    throw config_error("--key-prefix, --created-*, --id-range and --shard apply to --source blobs");
  }
}

std::string MigrationSource::describe_count(const PlanTotals& totals) const {
  return std::to_string(totals.objects) + " objects";
}

std::string MigrationSource::describe_enqueued(const PlanTotals& totals, bool interrupted) const {
  return "queued " + std::to_string(totals.objects) + " copy jobs (" + human_bytes(totals.bytes) + ") for migration " +
         plan_.migration + (totals.catch_up ? " (catch-up pass)" : "") +
         (interrupted ? "; interrupted, run again to continue" : "");
}

SwitchResult MigrationSource::switch_rows(const std::string&, int, bool, const std::atomic<bool>&,
                                          const SwitchProgress&) {
  throw config_error("switch applies to --source blobs migrations; " + plan_.source +
                     " migrations have no blob rows to point at the new service");
}

std::string MigrationSource::describe_switch(const SwitchResult&, bool, bool) const { return ""; }

}  // namespace blobferry
