// --source blobs: the rows of active_storage_blobs on the --from service.
#include "enqueuer/sources/blobs/blobs_source.h"

#include <spdlog/spdlog.h>

#include "common/db/pg_connection.h"
#include "enqueuer/sources/blobs/blob_table.h"
#include "enqueuer/verification/verification_store.h"

namespace blobferry {

void BlobsSource::check_options(unsigned given) { accept_only(given, kUntrackedVariants | kBlobFilters); }

void BlobsSource::check_before_store(SourceContext& context) {
  // The database refuses some plans (unreachable, no blob table, a filter the
  // table cannot apply, like --id-range on uuid ids): one page asks it.
  PgConnection db(context.database_url);
  BlobTable table(db);
  table.page(plan().filter, "", 1);
}

PlanTotals BlobsSource::enqueue(SourceContext& context, const std::atomic<bool>& stop) {
  PgConnection db(context.database_url);
  BlobTable table(db);
  BlobEnqueuer enqueuer(table, context.queue, plan(), context.options);
  std::uint64_t reported = 0;
  const EnqueueStats stats = enqueuer.run(stop, [&reported](const EnqueueStats& s) {
    if (s.jobs / 100000 == reported / 100000) return;
    reported = s.jobs;
    spdlog::info("enqueued {} jobs so far", s.jobs);
  });
  PlanTotals totals;
  totals.objects = stats.jobs;
  totals.bytes = stats.bytes;
  totals.catch_up = stats.catch_up;
  return totals;
}

PlanTotals BlobsSource::count(SourceContext& context, const std::atomic<bool>&) {
  PgConnection db(context.database_url);
  BlobTable table(db);
  const ServiceCount count = table.count(plan().filter);
  PlanTotals totals;
  totals.objects = static_cast<std::uint64_t>(count.blobs);
  totals.bytes = count.bytes;
  return totals;
}

ValidationResult BlobsSource::validate(const SourceValidation& v, const std::atomic<bool>& stop) {
  PgConnection db(v.database_url);
  if (v.recheck) VerificationStore(db).forget(plan().migration);
  Validator validator(plan(), v.source, v.target, v.options, v.on_problem);
  ValidationResult result = validator.validate_blobs(db, stop);
  result.verified_total = static_cast<std::uint64_t>(VerificationStore(db).count(plan().migration));
  return result;
}

SwitchResult BlobsSource::switch_rows(const std::string& database_url, int batch_size, bool dry_run,
                                      const std::atomic<bool>& stop, const SwitchProgress& progress) {
  PgConnection db(database_url);
  return switch_verified_blobs(db, plan(), batch_size, dry_run, stop, progress);
}

std::string BlobsSource::describe_switch(const SwitchResult& result, bool dry_run, bool with_hint) const {
  return std::string(dry_run ? "would switch" : "switched") + " " + std::to_string(result.switched) + " blobs from " +
         plan().from + " to " + plan().to + " in " + std::to_string(result.batches) + " batches; " +
         std::to_string(result.unverified) + " not verified yet" +
         (with_hint && result.unverified ? " (run blobferry validate, then switch again)" : "");
}

}  // namespace blobferry
