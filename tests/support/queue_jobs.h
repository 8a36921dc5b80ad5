// Jobs, leases and end-of-run checks shared by the JobQueue tests (the conformance suite and each queue's own).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/queue/job_queue.h"

namespace blobferry::testing {

// One 1,000-byte object `key` from "source" to "target"; blob_id 0 leaves it
// unset. The queues never read the job's migration, so it is always "m".
Job copy_job(const std::string& key, std::int64_t blob_id = 0);
// One job of every key, their blob ids 1, 2, 3… in order.
Job batch_job(const std::vector<std::string>& keys);
// The next lease within 2 s; throws when none comes, so a test stops there.
Lease must_fetch(JobQueue& queue, const std::string& worker = "w1");
// The key of the lease's first object.
std::string key_of(const Lease& lease);
// After a concurrent run of `jobs` jobs: each key seen exactly once, every job
// counted copied, and nothing left queued, scheduled or in flight.
void expect_each_job_copied_once(const std::multiset<std::string>& seen, const Counts& counts, int jobs);
// `producers` threads push `jobs_each` jobs each (a multiple of 25, in
// batches of 25) while `consumers` threads complete them, every third job
// detouring through a release or a 1 ms retry; then expects each job copied
// exactly once. Gives up after 60 s, so a lost job fails rather than hangs.
void expect_concurrent_jobs_copied_once(JobQueue& queue, int producers, int jobs_each, int consumers);

}  // namespace blobferry::testing
