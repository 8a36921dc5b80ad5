// --source paperclip: a table's Paperclip columns become ActiveStorage blobs
// and attachments on the target.
#pragma once

#include "enqueuer/sources/migration_source.h"

namespace blobferry {

class PaperclipSource : public MigrationSource {
 public:
  using MigrationSource::MigrationSource;

  void check_options(unsigned given) override;
  // Opens the table: its columns are checked before anything is stored or copied.
  void check_before_store(SourceContext& context) override;
  PlanTotals enqueue(SourceContext& context, const std::atomic<bool>& stop) override;
  PlanTotals count(SourceContext& context, const std::atomic<bool>& stop) override;
  std::string describe_count(const PlanTotals& totals) const override;
  std::string describe_enqueued(const PlanTotals& totals, bool interrupted) const override;
  // Drops what the owner has since removed or replaced, then proves the rest.
  ValidationResult validate(const SourceValidation& validation, const std::atomic<bool>& stop) override;
  SwitchPolicy switch_policy() const override { return SwitchPolicy::kVerifiedRows; }
  SwitchResult switch_rows(const std::string& database_url, int batch_size, bool dry_run,
                           const std::atomic<bool>& stop, const SwitchProgress& progress) override;
  std::string describe_switch(const SwitchResult& result, bool dry_run, bool with_hint) const override;
};

}  // namespace blobferry
