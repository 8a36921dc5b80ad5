// Runs a listing job: one page of the source bucket becomes copy jobs, and the
// rest of the listing becomes further listing jobs.
#pragma once

#include "common/queue/job.h"
#include "common/queue/job_queue.h"
#include "common/storage/storage.h"

namespace blobferry {

// One page per job keeps every listing checkpointed in the queue itself: a
// worker killed mid-listing loses at most one page, which its successor lists
// again (the copies it queued twice are then skipped as already present).
//
// The same range of the target is listed beside it, so objects already there
// with the same size and MD5 are counted as skipped without a job, and the
// copies it queues for missing keys need no HEAD: one request per 1,000 keys
// instead of one per key.
class ListingRunner {
 public:
  // source and target as the worker sees them: through the migration's
  // request budget, so listing pages count against the provider's limit
  // like every other request.
  ListingRunner(JobQueue& queue, Storage& source, Storage& target) : queue_(queue), source_(source), target_(target) {}

  // Lists one page of job.listing on job.source and pushes a copy job per
  // object not already on the target, a child listing job per common prefix
  // (while delimiter_depth > 0) and a listing job for the next page. Returns
  // the objects it found already on the target, as skipped outcomes for the
  // listing job's completion. Throws Error.
  Outcome run(const Job& job);

  static constexpr int kPageSize = 1000;

 private:
  JobQueue& queue_;
  Storage& source_;
  Storage& target_;
};

}  // namespace blobferry
