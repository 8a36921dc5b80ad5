// --source blobs: the rows of active_storage_blobs on the --from service.
#pragma once

#include "enqueuer/sources/migration_source.h"

namespace blobferry {

class BlobsSource : public MigrationSource {
 public:
  using MigrationSource::MigrationSource;

  void check_options(unsigned given) override;
  void check_before_store(SourceContext& context) override;
  PlanTotals enqueue(SourceContext& context, const std::atomic<bool>& stop) override;
  PlanTotals count(SourceContext& context, const std::atomic<bool>& stop) override;
  ValidationResult validate(const SourceValidation& validation, const std::atomic<bool>& stop) override;
  SwitchPolicy switch_policy() const override { return SwitchPolicy::kWhenAllVerified; }
  SwitchResult switch_rows(const std::string& database_url, int batch_size, bool dry_run,
                           const std::atomic<bool>& stop, const SwitchProgress& progress) override;
  std::string describe_switch(const SwitchResult& result, bool dry_run, bool with_hint) const override;
};

}  // namespace blobferry
