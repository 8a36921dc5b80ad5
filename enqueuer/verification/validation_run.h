// One validation pass with its printed summary, shared by validate and migrate.
#pragma once

#include <atomic>
#include <string>

#include "common/queue/job_queue.h"
#include "common/storage/storage.h"
#include "enqueuer/planning/migration_plan.h"
#include "enqueuer/verification/validator.h"

namespace blobferry {

struct ValidationRunOptions {
  bool deep = false;
  bool requeue = false;  // push copy jobs for what is missing or differs
  int show = 20;         // problems printed
  std::string database_url;
  bool quiet = false;
  bool recheck = false;  // forget earlier verifications and prove every object again
};

ValidationResult run_validation(const MigrationPlan& plan, Storage& source, Storage& target, JobQueue& queue,
                                const ValidationRunOptions& options, const std::atomic<bool>& stop);

}  // namespace blobferry
