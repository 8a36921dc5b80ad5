// --source manifest: the keys of a CSV or JSONL file (--manifest).
#pragma once

#include "enqueuer/sources/migration_source.h"

namespace blobferry {

class ManifestSource : public MigrationSource {
 public:
  using MigrationSource::MigrationSource;

  void check_options(unsigned given) override;
  PlanTotals enqueue(SourceContext& context, const std::atomic<bool>& stop) override { return read(context, stop, false); }
  PlanTotals count(SourceContext& context, const std::atomic<bool>& stop) override { return read(context, stop, true); }
  ValidationResult validate(const SourceValidation& validation, const std::atomic<bool>& stop) override;

 private:
  PlanTotals read(SourceContext& context, const std::atomic<bool>& stop, bool dry);
};

}  // namespace blobferry
