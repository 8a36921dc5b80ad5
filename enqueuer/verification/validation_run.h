// One validation pass with its printed summary, shared by validate and migrate.
#pragma once

#include <atomic>
#include <string>

#include "common/queue/job_queue.h"
#include "common/storage/storage.h"
#include "enqueuer/verification/validator.h"

namespace blobferry {

class MigrationSource;

struct ValidationRunOptions {
  bool deep = false;
  bool requeue = false;  // push copy jobs for what is missing or differs
  int show = 20;         // problems printed
  std::string database_url;
  bool quiet = false;
  bool recheck = false;  // forget earlier verifications and prove every object again
};

// The source (MigrationSource) decides what is checked and how; this prints
// its problems and the summary line, and queues copies for --requeue.
ValidationResult run_validation(MigrationSource& migration_source, Storage& source, Storage& target, JobQueue& queue,
                                const ValidationRunOptions& options, const std::atomic<bool>& stop);

}  // namespace blobferry
