// What a worker tells the queue after one run of a job, decided from the job's
// results alone (no I/O, no threads), so every branch is unit-tested.
#include "worker/loop/job_outcome.h"

#include <algorithm>

#include "common/base/cancellation.h"
#include "common/base/retry_policy.h"
#include "worker/copy/copy_engine.h"

namespace blobferry {

ObjectResult ObjectResult::of(const CopyResult& result) {
  ObjectResult r;
  r.status = result.status == CopyResult::Status::kSkipped ? Status::kSkipped : Status::kCopied;
  r.bytes = result.bytes;
  r.attempts = result.attempts;
  return r;
}

ObjectResult ObjectResult::failed(const Error& error) {
  ObjectResult r;
  r.status = Status::kError;
  r.error = error;
  return r;
}

JobOutcome JobOutcome::of_copy_job(const Job& job, const std::vector<ObjectResult>& results, const RetryPolicy& policy) {
  JobOutcome decided;
  const int runs = job.attempts + 1;
  const bool interrupted =
      results.size() < job.objects.size() ||
      std::any_of(results.begin(), results.end(), [](const ObjectResult& r) {
        return r.status == ObjectResult::Status::kNotRun || (r.error && is_cancellation(*r.error));
      });
  if (interrupted) {
    decided.action = Action::kRelease;
    return decided;
  }

  decided.again = job;
  decided.again.objects.clear();
  decided.again.attempts = runs;
  for (std::size_t i = 0; i < job.objects.size(); ++i) {
    const ObjectResult& result = results[i];
    if (result.attempts > 1) decided.retries += static_cast<std::uint64_t>(result.attempts - 1);
    switch (result.status) {
      case ObjectResult::Status::kSkipped:
        decided.outcome.objects.push_back({failure_key(job, i), OutcomeKind::kSkipped, result.bytes, {}, {}, 0});
        ++decided.skipped;
        decided.bytes_skipped += result.bytes;
        break;
      case ObjectResult::Status::kCopied:
        decided.outcome.objects.push_back({failure_key(job, i), OutcomeKind::kCopied, result.bytes, {}, {}, 0});
        ++decided.copied;
        decided.bytes_copied += result.bytes;
        break;
      case ObjectResult::Status::kError:
      case ObjectResult::Status::kNotRun: {
        const Error& e = *result.error;
        if (policy.should_reschedule(e, runs)) {
          decided.again.objects.push_back(job.objects[i]);
          decided.delay = std::max(decided.delay, policy.reschedule_delay(e, runs));
          ++decided.retries;
        } else {
          decided.outcome.objects.push_back({failure_key(job, i), OutcomeKind::kFailed, 0, e.reason(), e.what(), runs});
          ++decided.failed;
          decided.failure_reasons.push_back(e.reason());
        }
        break;
      }
    }
  }

  if (decided.again.objects.empty()) {
    decided.action = Action::kComplete;
  } else if (decided.outcome.objects.empty()) {
    decided.action = Action::kRetryLater;
  } else {
    // Queue the retry first, then record the rest: a crash in between re-runs
    // the whole job, whose finished objects are then skipped — counted once
    // either way, never lost.
    decided.action = Action::kPushAndComplete;
    decided.again.id.clear();
  }
  return decided;
}

JobOutcome JobOutcome::of_job_error(const Job& job, const Error& error, const RetryPolicy& policy) {
  JobOutcome decided;
  if (is_cancellation(error)) {
    decided.action = Action::kRelease;
    return decided;
  }
  if (error.kind() == ErrorKind::kConfig) {
    decided.action = Action::kRelease;
    decided.stop_worker = true;
    decided.error = error.what();
    return decided;
  }
  const int runs = job.attempts + 1;
  if (policy.should_reschedule(error, runs)) {
    decided.action = Action::kRetryLater;
    decided.again = job;
    decided.again.attempts = runs;
    decided.delay = policy.reschedule_delay(error, runs);
    ++decided.retries;
  } else {
    decided.action = Action::kComplete;
    decided.outcome = Outcome::failed(failure_key(job, 0), error.reason(), error.what(), runs);
    ++decided.failed;
    decided.failure_reasons.push_back(error.reason());
  }
  return decided;
}

JobOutcome JobOutcome::of_listing(Outcome skipped) {
  JobOutcome decided;
  decided.action = Action::kComplete;
  for (const ObjectOutcome& o : skipped.objects) {
    ++decided.skipped;
    decided.bytes_skipped += o.bytes;
  }
  decided.outcome = std::move(skipped);
  return decided;
}

JobOutcome JobOutcome::bury(std::string error) {
  JobOutcome decided;
  decided.action = Action::kBury;
  decided.error = std::move(error);
  return decided;
}

JobOutcome JobOutcome::waiting(const Job& job, std::chrono::milliseconds delay) {
  // retry_later rather than release: a released job is fetched again at
  // once, and every worker would spin on the jobs of a service that is out.
  JobOutcome decided;
  decided.action = Action::kRetryLater;
  decided.again = job;
  decided.delay = delay;
  return decided;
}

const char* to_string(JobOutcome::Action action) {
  switch (action) {
    case JobOutcome::Action::kComplete: return "complete";
    case JobOutcome::Action::kRetryLater: return "retry_later";
    case JobOutcome::Action::kPushAndComplete: return "push";
    case JobOutcome::Action::kBury: return "bury";
    case JobOutcome::Action::kRelease: return "release";
  }
  return "?";
}

}  // namespace blobferry
