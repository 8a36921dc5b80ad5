// Plans a migration's work into a queue, from whichever source the plan
// names: the blob table, a listing of the source bucket, or a manifest.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/queue/job_queue.h"
#include "common/storage/storage.h"
#include "enqueuer/sources/blobs/blob_enqueuer.h"
#include "enqueuer/planning/migration_plan.h"

namespace blobferry {

struct PlanTotals {
  std::uint64_t objects = 0;   // copy jobs queued (or, dry run, objects found)
  std::uint64_t bytes = 0;     // bytes known to be behind them
  std::uint64_t listing_jobs = 0;
  std::uint64_t problems = 0;  // manifest lines that did not parse
  bool catch_up = false;
};

class EnqueueRunner {
 public:
  // database_url is needed for --source blobs only. source is the --from
  // service, opened (listing and dry runs read it; nothing is ever written).
  EnqueueRunner(MigrationPlan plan, JobQueue& queue, Storage& source, std::string database_url,
                EnqueueOptions options = {});

  // Queues the work; returns when done or when stop became true.
  PlanTotals run(const std::atomic<bool>& stop);
  // Counts objects and bytes, queues nothing.
  PlanTotals dry_run(const std::atomic<bool>& stop);

  // Listing jobs covering every key under prefix in 37 key ranges split at
  // prefix+[0-9a-z] (ActiveStorage keys are base36, so they split evenly);
  // keys with any other character still fall into one of the ranges.
  static std::vector<Job> split_listing(const MigrationPlan& plan, int delimiter_depth = 0);

  int delimiter_depth = 0;

 private:
  PlanTotals run_blobs(const std::atomic<bool>& stop, bool dry);
  PlanTotals run_listing(const std::atomic<bool>& stop, bool dry);
  PlanTotals run_manifest(const std::atomic<bool>& stop, bool dry);

  MigrationPlan plan_;
  JobQueue& queue_;
  Storage& source_;
  std::string database_url_;
  EnqueueOptions options_;
};

}  // namespace blobferry
