// --source paperclip: a table's Paperclip columns become ActiveStorage blobs
// and attachments on the target.
#include "enqueuer/sources/paperclip/paperclip_source.h"

#include "common/base/error.h"
#include "common/cli/human_units.h"
#include "common/db/pg_connection.h"
#include "enqueuer/sources/paperclip/paperclip_attacher.h"
#include "enqueuer/sources/paperclip/paperclip_enqueuer.h"
#include "enqueuer/sources/paperclip/paperclip_reconciler.h"
#include "enqueuer/sources/paperclip/paperclip_validator.h"

namespace blobferry {

void PaperclipSource::check_options(unsigned given) {
  accept_only(given, kPaperclipOptions);
  PaperclipSpec& p = mutable_plan().paperclip;
  if (p.table.empty() || p.attachment.empty() || p.record_type.empty()) {
    throw config_error("--source paperclip needs --table (e.g. users), --attachment (e.g. avatar) and "
                       "--record-type (the model, e.g. User)");
  }
  if (p.path.empty()) p.path = PaperclipPath::kDefaultTemplate;
  PaperclipPath{paperclip_path_options(p)};  // an unknown interpolation fails here, before anything is stored
}

void PaperclipSource::check_before_store(SourceContext& context) {
  PgConnection db(context.database_url);
  PaperclipEnqueuer(db, context.queue, plan(), context.options);
}

PlanTotals PaperclipSource::enqueue(SourceContext& context, const std::atomic<bool>& stop) {
  PgConnection db(context.database_url);
  const EnqueueStats stats = PaperclipEnqueuer(db, context.queue, plan(), context.options).run(stop);
  PlanTotals totals;
  totals.objects = stats.jobs;
  totals.bytes = stats.bytes;
  totals.catch_up = stats.catch_up;
  return totals;
}

PlanTotals PaperclipSource::count(SourceContext& context, const std::atomic<bool>&) {
  PgConnection db(context.database_url);
  const PaperclipCount count = PaperclipEnqueuer(db, context.queue, plan(), context.options).count();
  PlanTotals totals;
  totals.objects = static_cast<std::uint64_t>(count.records);
  totals.bytes = count.bytes;
  return totals;
}

std::string PaperclipSource::describe_count(const PlanTotals& totals) const {
  return std::to_string(totals.objects) + " " + plan().paperclip.record_type + " records with a file in " +
         plan().paperclip.attachment + " and no attachment of it yet";
}

std::string PaperclipSource::describe_enqueued(const PlanTotals& totals, bool interrupted) const {
  const MigrationPlan& p = plan();
  return "queued " + std::to_string(totals.objects) + " copy jobs (" + human_bytes(totals.bytes) + ") for migration " +
         p.migration + ": " + p.paperclip.table + "." + p.paperclip.attachment + " -> ActiveStorage keys on " + p.to +
         (totals.catch_up ? " (catch-up pass)" : "") + (interrupted ? "; interrupted, run again to continue" : "");
}

ValidationResult PaperclipSource::validate(const SourceValidation& v, const std::atomic<bool>& stop) {
  PgConnection db(v.database_url);
  PaperclipReconciler(db, plan()).run(stop);
  return PaperclipValidator(plan(), v.target, v.options, v.on_problem).validate(db, v.recheck, stop);
}

SwitchResult PaperclipSource::switch_rows(const std::string& database_url, int batch_size, bool dry_run,
                                          const std::atomic<bool>& stop, const SwitchProgress& progress) {
  PgConnection db(database_url);
  // Rows only for files their record still names: what changed since validate is dropped first.
  if (!dry_run) PaperclipReconciler(db, plan()).run(stop);
  return PaperclipAttacher(db, plan()).run(batch_size, dry_run, stop, progress);
}

std::string PaperclipSource::describe_switch(const SwitchResult& result, bool dry_run, bool with_hint) const {
  return std::string(dry_run ? "would write" : "wrote") + " " + std::to_string(result.switched) +
         " ActiveStorage blob and attachment rows for " + plan().paperclip.record_type + " on " + plan().to + " in " +
         std::to_string(result.batches) + " batches; " + std::to_string(result.unverified) + " files not verified yet" +
         (with_hint && result.unverified ? " (see blobferry report and validate; run switch again once they are)" : "");
}

}  // namespace blobferry
