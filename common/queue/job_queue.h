// The queue interface the worker loop and the control plane drive: a reliable
// Redis queue (RedisQueue) for many workers, an in-process one (MemoryQueue)
// for the embedded `migrate` mode.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/queue/job.h"

namespace blobferry {

// A fetched job the caller now owns until it completes, retries, releases or
// buries it, or until the lease expires (RedisQueue: renew() it well before).
// The payload is handed back raw: the caller decodes it (decode_job) and
// buries it when that throws, so one malformed job cannot stop a worker.
struct Lease {
  std::string token;    // unique per fetch; every later call checks it atomically
  std::string payload;  // the job as queued (encode_job), possibly malformed
  std::string job_id;   // the payload's id when it decodes, else empty
};

enum class OutcomeKind { kCopied, kSkipped, kFailed };

// What happened to one object of a copy job (or to a listing job as a whole).
struct ObjectOutcome {
  std::string key;  // failure_key(job, index): the object's key, or the listing job's
  OutcomeKind kind = OutcomeKind::kCopied;
  std::uint64_t bytes = 0;  // copied or skipped bytes
  std::string reason;       // failed: Error::reason() class ("not_found", "network", …)
  std::string message;      // failed: one line, never a credential
  int attempts = 0;         // failed: tries made in all
};

// A single complete() carries one entry per object of a batch job; objects of
// the job without an entry count as nothing (neither copied nor failed).
struct Outcome {
  std::vector<ObjectOutcome> objects;

  static Outcome copied(std::string key, std::uint64_t bytes) {
    return {{{std::move(key), OutcomeKind::kCopied, bytes, {}, {}, 0}}};
  }
  static Outcome skipped(std::string key, std::uint64_t bytes) {
    return {{{std::move(key), OutcomeKind::kSkipped, bytes, {}, {}, 0}}};
  }
  static Outcome failed(std::string key, std::string reason, std::string message, int attempts) {
    return {{{std::move(key), OutcomeKind::kFailed, 0, std::move(reason), std::move(message), attempts}}};
  }
};

// One complete() of a batch: the lease it ends and what the job did.
struct Completion {
  Lease lease;
  Outcome outcome;
};

// One failed key as recorded for reports and `requeue`.
struct FailureRecord {
  std::string key;
  std::optional<std::int64_t> blob_id;
  std::string reason;
  std::string message;
  int attempts = 0;
  std::string time;         // UTC, ISO 8601 (2024-05-01T12:00:00Z)
  std::string job_payload;  // the single-object job that retries exactly this key
};

// A payload moved aside: malformed (bury) or poison (killed N workers).
struct DeadEntry {
  std::string reason;  // "malformed" or "poison"
  std::string error;
  std::string payload;
  std::string time;
};

struct WorkerInfo {
  std::string worker_id;
  std::string info_json;  // whatever the worker reported (host, pid, concurrency, version…)
  std::chrono::milliseconds age{0};  // since its last heartbeat
};

// Counters for `status` and `--exit-when-empty`.
struct Counts {
  std::uint64_t queued = 0;     // waiting in the queue
  std::uint64_t scheduled = 0;  // waiting in the retry schedule
  std::uint64_t in_flight = 0;  // leased, including expired leases of dead workers not yet recovered
  std::uint64_t dead = 0;       // payloads moved aside (malformed, poison)
  std::uint64_t queued_total = 0;  // jobs ever pushed
  std::uint64_t copied = 0;        // objects
  std::uint64_t skipped = 0;       // objects already on the target
  std::uint64_t failed = 0;        // keys with a failure record now
  std::uint64_t bytes_copied = 0;
  std::uint64_t bytes_skipped = 0;
  std::uint64_t recovered = 0;     // expired leases returned to the queue
  std::map<std::string, std::uint64_t> failed_by_reason;
  bool paused = false;             // `blobferry pause`: fetch hands out none of its jobs

  // Paused or not: a paused migration with work queued is not idle, so
  // --exit-when-empty workers wait for `resume` instead of exiting.
  bool idle() const { return queued == 0 && scheduled == 0 && in_flight == 0; }
};

// Every method may throw Error (kTransient when the queue's server is away: the
// caller retries later and nothing is lost). Methods taking a Lease return
// false when it is stale — the lease expired and its job went back to the
// queue (and maybe to another worker): nothing was recorded, and the caller
// must not report the outcome elsewhere. Implementations are thread-safe.
class JobQueue {
 public:
  virtual ~JobQueue() = default;

  // Appends jobs in order, in as few round trips as possible; jobs without an
  // id get new_job_id(). Counts them in queued_total.
  virtual void push(const std::vector<Job>& jobs) = 0;

  // push() and set_cursor() as one step, so a planner killed in between can
  // resume from its cursor without queuing anything twice or leaving a gap.
  // The default is two steps; queues that can, make it atomic.
  virtual void push_with_cursor(const std::vector<Job>& jobs, const std::string& cursor,
                                const std::string& value) {
    push(jobs);
    set_cursor(cursor, value);
  }

  // The next job, waiting up to `wait` for one (without busy-looping the
  // server); nullopt when none came. Due retries are promoted first.
  virtual std::optional<Lease> fetch(const std::string& worker_id,
                                     std::chrono::milliseconds wait) = 0;

  // Up to `max` jobs in queue order, each with its own lease, in one step:
  // waits up to `wait` for the first, then takes what is there (never waits
  // to fill the batch). Empty when none came or max is 0. A worker asks for no
  // more than it has free slots for: every lease runs at once, so a worker
  // that dies holds at most that many, and recovery returns them all.
  virtual std::vector<Lease> fetch_batch(const std::string& worker_id, std::size_t max,
                                         std::chrono::milliseconds wait) = 0;

  // Extends the lease by the queue's lease duration from now.
  virtual bool renew(const Lease& lease) = 0;
  // renew() of every lease in one step; one flag per lease, in order, false
  // where it is stale.
  virtual std::vector<bool> renew_all(const std::vector<Lease>& leases) = 0;

  // Ends the lease and records the outcome: copied/skipped counters and bytes;
  // a failure record per failed key (replacing an older one); a success of a
  // key that had a failure record removes it and its counters.
  virtual bool complete(const Lease& lease, const Outcome& outcome) = 0;
  // complete() of each, in order, in one step, each exactly as complete()
  // would record it (atomic per completion: a stale lease among them records
  // nothing of its own and changes nothing of the others). One flag per
  // completion, false where its lease was stale.
  virtual std::vector<bool> complete_batch(const std::vector<Completion>& completions) = 0;

  // Ends the lease and schedules `job` (the caller incremented its attempts)
  // to come back after `delay`.
  virtual bool retry_later(const Lease& lease, const Job& job,
                           std::chrono::milliseconds delay) = 0;

  // Ends the lease and puts the job back at the head of the queue, unchanged
  // and without counting anything (a draining worker).
  virtual bool release(const Lease& lease) = 0;

  // Ends the lease and moves its payload to the dead list with `error`
  // (a payload decode_job rejects).
  virtual bool bury(const Lease& lease, const std::string& error) = 0;

  // Returns jobs of expired leases to the queue with recoveries + 1, or to the
  // dead list with a "poison" failure record once recoveries would exceed the
  // queue's limit. Any worker may call it periodically. Returns how many
  // leases it ended.
  virtual std::size_t recover_expired() = 0;

  // Moves retries that are due back to the queue; returns how many.
  virtual std::size_t promote_due() = 0;

  virtual void heartbeat(const std::string& worker_id, const std::string& info_json) = 0;
  // Workers whose last heartbeat is younger than `max_age`.
  virtual std::vector<WorkerInfo> live_workers(std::chrono::milliseconds max_age) = 0;

  // One consistent snapshot.
  virtual Counts counts() = 0;
  // Nothing queued, scheduled or in flight (atomically).
  virtual bool idle() = 0;
  // Jobs waiting in the queue (for enqueue backpressure).
  virtual std::uint64_t queue_length() = 0;

  // Failure records (all, or those of `reason`) back to the queue as their
  // single-key jobs; the records and their counters are removed. Returns how
  // many were requeued.
  virtual std::size_t requeue_failed(const std::optional<std::string>& reason) = 0;
  // Visits every failure record (in no particular order; memory stays flat).
  virtual void for_each_failure(const std::function<void(const FailureRecord&)>& visit) = 0;
  // Visits the dead list, oldest first.
  virtual void for_each_dead(const std::function<void(const DeadEntry&)>& visit) = 0;

  // A paused migration's fetch() returns nothing (leases already held run to
  // their end), so every worker idles on it until set_paused(false). The flag
  // is read by the fetch itself, atomically: no worker change, no race.
  virtual bool paused() = 0;
  virtual void set_paused(bool paused) = 0;

  // Deletes everything this migration stored, touching no other migration.
  virtual void purge() = 0;

  // A small key/value store for the control plane (enqueue cursors, plans).
  virtual void set_cursor(const std::string& name, const std::string& value) = 0;
  virtual std::optional<std::string> get_cursor(const std::string& name) = 0;
};

}  // namespace blobferry
