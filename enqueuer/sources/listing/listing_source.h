// --source listing: every object under --prefix in the source bucket, listed
// by workers in parallel key ranges.
#pragma once

#include <vector>

#include "enqueuer/sources/migration_source.h"

namespace blobferry {

class ListingSource : public MigrationSource {
 public:
  using MigrationSource::MigrationSource;

  // Listing jobs covering every key under plan.prefix in 37 key ranges split
  // at prefix+[0-9a-z] (ActiveStorage keys are base36, so they split evenly);
  // keys with any other character still fall into one of the ranges.
  static std::vector<Job> split_listing(const MigrationPlan& plan, int delimiter_depth = 0);

  void check_options(unsigned given) override;
  PlanTotals enqueue(SourceContext& context, const std::atomic<bool>& stop) override;
  PlanTotals count(SourceContext& context, const std::atomic<bool>& stop) override;
  std::string describe_enqueued(const PlanTotals& totals, bool interrupted) const override;
  ValidationResult validate(const SourceValidation& validation, const std::atomic<bool>& stop) override;
};

}  // namespace blobferry
