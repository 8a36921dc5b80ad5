// What a worker tells the queue after one run of a job, decided from the job's
// results alone (no I/O, no threads), so every branch is unit-tested.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/base/error.h"
#include "common/queue/job.h"
#include "common/queue/job_queue.h"

namespace blobferry {

class RetryPolicy;
struct CopyResult;

// One object of a copy job: its result, the error it ended with, or neither
// when it was never tried (the run was cancelled first).
struct ObjectResult {
  enum class Status { kCopied, kSkipped, kError, kNotRun };
  Status status = Status::kNotRun;
  std::uint64_t bytes = 0;  // copied or skipped
  int attempts = 1;         // tries of all steps, 1 when nothing was retried
  std::optional<Error> error;

  static ObjectResult of(const CopyResult& result);
  static ObjectResult failed(const Error& error);
};

// The queue call to make, and what to count for the summary and metrics.
class JobOutcome {
 public:
  enum class Action {
    kComplete,         // complete(outcome)
    kRetryLater,       // retry_later(again, delay)
    kPushAndComplete,  // push(again) as a new job, then complete(outcome)
    kBury,             // bury(error): malformed, or queued under the wrong migration
    kRelease,          // release(): back unchanged, nothing counted
  };

  // A copy job whose objects ran (results[i] is job.objects[i]). Cancelled or
  // untried objects hand the whole job back: nothing is recorded, and a later
  // run skips what this one already copied. Otherwise objects that failed with
  // a reschedulable error go to a later retry (the whole job when none
  // finished, else a new job of just them), the rest are recorded.
  static JobOutcome of_copy_job(const Job& job, const std::vector<ObjectResult>& results, const RetryPolicy& policy);
  // A job whose run threw before its objects were settled (a listing job, a
  // service that cannot be opened). A configuration error hands the job back
  // and stops the worker, which cannot serve it.
  static JobOutcome of_job_error(const Job& job, const Error& error, const RetryPolicy& policy);
  // A listing job: the objects it found already on the target.
  static JobOutcome of_listing(Outcome skipped);
  static JobOutcome bury(std::string error);
  // A job that cannot run now through no fault of its own (a service whose
  // credentials expired): back after `delay`, its attempts unchanged, nothing counted.
  static JobOutcome waiting(const Job& job, std::chrono::milliseconds delay);

  Action action = Action::kComplete;
  Outcome outcome;                     // kComplete, kPushAndComplete
  Job again;                           // kRetryLater, kPushAndComplete (attempts already incremented)
  std::chrono::milliseconds delay{0};  // kRetryLater
  std::string error;                   // kBury: why; a stopping error: its message
  bool stop_worker = false;            // a configuration error: the worker cannot serve this migration

  std::uint64_t copied = 0;
  std::uint64_t skipped = 0;
  std::uint64_t failed = 0;
  std::uint64_t bytes_copied = 0;
  std::uint64_t bytes_skipped = 0;
  std::uint64_t retries = 0;                 // tries beyond the first, in place or rescheduled
  std::vector<std::string> failure_reasons;  // one per failed object
};

const char* to_string(JobOutcome::Action action);

}  // namespace blobferry
