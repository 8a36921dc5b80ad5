// Giant objects as part jobs: the coordinator that opens the upload and queues one job per part, the part
// jobs any worker runs, and the completion the last recorded part triggers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/base/retry_policy.h"
#include "common/queue/job.h"
#include "worker/loop/job_outcome.h"

namespace blobferry {

class JobQueue;
class Storage;
class UploadRecords;
struct UploadRecord;
class PartPlan;

struct PartJobOptions {
  static constexpr std::uint64_t kMiB = 1024 * 1024;
  // Objects larger than this (bytes) become part jobs; 0: never.
  std::uint64_t threshold = 1024 * kMiB;
  // Bytes per part (PartPlan raises it to S3's limits). One part is buffered
  // per job in flight, so memory is concurrency × part_size at most.
  std::uint64_t part_size = 64 * kMiB;
  // The engine's choice: a target that can read the source copies it
  // server-side (no bytes through the worker), so those never split.
  bool server_side_copy = true;
};

// Stateless between calls: everything an upload needs to survive a killed
// worker is in UploadRecords (Redis). Only queues backed by Redis split; the
// embedded migrate (MemoryQueue) keeps the engine's single-job multipart path.
//
// A copy job of one object above the threshold (size known, target with
// multipart, no server-side copy, MD5 known from the blob table or the
// source's ETag) is the coordinator: it creates the upload with the MD5 in its
// metadata, records it, queues one part job per part and completes without
// counting the object. A coordinator that finds its upload recorded but its
// jobs not queued lists the upload's parts and queues only what is missing.
// A part job GETs its range pinned to the source ETag, uploads it with
// Content-MD5 and records ETag and MD5; the job whose record completes the
// set confirms the parts (ListParts), hashes the source in order (whole MD5
// against the job's checksum, each part against its recorded MD5), completes
// the upload, checks the target's size and MD5 metadata, and only then counts
// the object copied, once. A vanished upload or a changed source starts the
// object over with a new upload (the old one aborted, its records dropped).
class PartJobRunner {
 public:
  PartJobRunner(PartJobOptions options, const RetryPolicy& policy);

  const PartJobOptions& options() const { return options_; }

  // Whether the copy job `job` is to be split (no I/O beyond capabilities).
  bool splits(JobQueue& queue, const Job& job, Storage& source, Storage& target) const;
  // The coordinator's run; nullopt when the object turns out not to be
  // splittable after all (no MD5 to prove it by): the engine copies it whole.
  // Throws Error like a copy.
  std::optional<JobOutcome> split(JobQueue& queue, const Job& job, Storage& source, Storage& target) const;
  // A part job's run. Throws Error like a copy.
  JobOutcome run_part(JobQueue& queue, const Job& job, Storage& source, Storage& target) const;

 private:
  template <typename Step>
  auto retrying(const char* what, const std::string& key, Step&& step) const -> decltype(step());

  JobOutcome resume(UploadRecords& records, const UploadRecord& record, const Job& job, JobQueue& queue,
                    Storage& source, Storage& target) const;
  JobOutcome finish(UploadRecords& records, const UploadRecord& record, const Job& job, JobQueue& queue,
                    Storage& source, Storage& target) const;
  void prove_source(UploadRecords& records, const UploadRecord& record, Storage& source) const;
  JobOutcome start_over(UploadRecords& records, const UploadRecord& record, const Job& job, Storage& target,
                        const std::string& why) const;
  void abort_quietly(Storage& target, const UploadRecord& record) const;

  PartJobOptions options_;
  const RetryPolicy& policy_;
};

}  // namespace blobferry
