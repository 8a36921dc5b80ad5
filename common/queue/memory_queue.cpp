// The in-process JobQueue of the embedded `migrate` mode: same semantics as
// the Redis queue (leases, retries, failure records, counters), no server.
#include "common/queue/memory_queue.h"

#include <algorithm>

#include "common/base/error.h"

namespace blobferry {
namespace {

std::string now_timestamp() { return utc_timestamp(std::chrono::system_clock::now()); }

std::optional<Job> try_decode(const std::string& payload) {
  try {
    return decode_job(payload);
  } catch (const Error&) {
    return std::nullopt;
  }
}

}  // namespace

MemoryQueue::MemoryQueue(std::string migration, MemoryQueueOptions options)
    : migration_(std::move(migration)), options_(options) {}

std::vector<std::string> MemoryQueue::encode_with_ids(const std::vector<Job>& jobs) const {
  std::vector<std::string> payloads;
  payloads.reserve(jobs.size());
  for (const auto& job : jobs) {
    if (job.id.empty()) {
      Job with_id = job;
      with_id.id = new_job_id();
      payloads.push_back(encode_job(with_id));
    } else {
      payloads.push_back(encode_job(job));
    }
  }
  return payloads;
}

void MemoryQueue::push(const std::vector<Job>& jobs) {
  std::vector<std::string> payloads = encode_with_ids(jobs);
  {
    std::lock_guard lock(mutex_);
    for (auto& payload : payloads) queue_.push_back(std::move(payload));
    totals_.queued_total += jobs.size();
  }
  changed_.notify_all();
}

void MemoryQueue::push_with_cursor(const std::vector<Job>& jobs, const std::string& cursor,
                                   const std::string& value) {
  std::vector<std::string> payloads = encode_with_ids(jobs);
  {
    std::lock_guard lock(mutex_);
    for (auto& payload : payloads) queue_.push_back(std::move(payload));
    totals_.queued_total += jobs.size();
    cursors_[cursor] = value;
  }
  changed_.notify_all();
}

std::optional<Lease> MemoryQueue::fetch(const std::string& worker_id, std::chrono::milliseconds wait) {
  std::vector<Lease> leases = fetch_batch(worker_id, 1, wait);
  if (leases.empty()) return std::nullopt;
  return std::move(leases.front());
}

std::vector<Lease> MemoryQueue::fetch_batch(const std::string& worker_id, std::size_t max,
                                            std::chrono::milliseconds wait) {
  std::vector<Lease> leases;
  if (max == 0) return leases;
  const auto deadline = Clock::now() + wait;
  std::unique_lock lock(mutex_);
  while (true) {
    auto now = Clock::now();
    promote_due_locked(now);
    if (!paused_ && !queue_.empty()) break;
    if (now >= deadline) return leases;
    // Wake for a push or release (notify), or when the earliest retry is due.
    auto wake = retry_.empty() ? deadline : std::min(deadline, retry_.begin()->first);
    changed_.wait_until(lock, wake);
  }
  const auto expires = Clock::now() + options_.lease_duration;
  while (leases.size() < max && !queue_.empty()) {
    Lease lease;
    lease.token = std::to_string(++next_token_);
    lease.payload = std::move(queue_.front());
    queue_.pop_front();
    in_flight_[lease.token] = {lease.payload, worker_id, expires};
    leases.push_back(std::move(lease));
  }
  lock.unlock();
  for (Lease& lease : leases) {
    if (auto job = try_decode(lease.payload)) lease.job_id = job->id;
  }
  return leases;
}

bool MemoryQueue::renew(const Lease& lease) {
  std::lock_guard lock(mutex_);
  return renew_locked(lease);
}

std::vector<bool> MemoryQueue::renew_all(const std::vector<Lease>& leases) {
  std::vector<bool> renewed;
  renewed.reserve(leases.size());
  std::lock_guard lock(mutex_);
  for (const Lease& lease : leases) renewed.push_back(renew_locked(lease));
  return renewed;
}

bool MemoryQueue::renew_locked(const Lease& lease) {
  auto it = in_flight_.find(lease.token);
  if (it == in_flight_.end()) return false;
  it->second.expires = Clock::now() + options_.lease_duration;
  return true;
}

bool MemoryQueue::complete(const Lease& lease, const Outcome& outcome) {
  return complete_batch({Completion{lease, outcome}}).front();
}

std::vector<bool> MemoryQueue::complete_batch(const std::vector<Completion>& completions) {
  // Decoded before the lock: the JSON work need not hold up other threads.
  std::vector<std::optional<Job>> jobs;
  jobs.reserve(completions.size());
  for (const Completion& completion : completions) jobs.push_back(try_decode(completion.lease.payload));
  std::vector<bool> recorded;
  recorded.reserve(completions.size());
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < completions.size(); ++i) {
    recorded.push_back(complete_locked(completions[i].lease, completions[i].outcome, jobs[i]));
  }
  return recorded;
}

bool MemoryQueue::complete_locked(const Lease& lease, const Outcome& outcome, const std::optional<Job>& job) {
  auto payload = end_lease_locked(lease.token);
  if (!payload) return false;
  for (const auto& object : outcome.objects) {
    switch (object.kind) {
      case OutcomeKind::kCopied:
        ++totals_.copied;
        totals_.bytes_copied += object.bytes;
        drop_failure_locked(object.key);
        break;
      case OutcomeKind::kSkipped:
        ++totals_.skipped;
        totals_.bytes_skipped += object.bytes;
        drop_failure_locked(object.key);
        break;
      case OutcomeKind::kFailed:
        record_outcome_failure_locked(job, *payload, object);
        break;
    }
  }
  return true;
}

bool MemoryQueue::retry_later(const Lease& lease, const Job& job, std::chrono::milliseconds delay) {
  std::string payload = encode_job(job);
  {
    std::lock_guard lock(mutex_);
    if (!end_lease_locked(lease.token)) return false;
    retry_.emplace(Clock::now() + delay, std::move(payload));
  }
  // Waiting fetchers recompute when to wake.
  changed_.notify_all();
  return true;
}

bool MemoryQueue::release(const Lease& lease) {
  {
    std::lock_guard lock(mutex_);
    auto payload = end_lease_locked(lease.token);
    if (!payload) return false;
    queue_.push_front(std::move(*payload));
  }
  changed_.notify_one();
  return true;
}

bool MemoryQueue::bury(const Lease& lease, const std::string& error) {
  std::lock_guard lock(mutex_);
  auto payload = end_lease_locked(lease.token);
  if (!payload) return false;
  dead_.push_back({std::string(to_string(FailureReason::kMalformed)), error, std::move(*payload), now_timestamp()});
  return true;
}

std::size_t MemoryQueue::recover_expired() {
  std::size_t ended = 0;
  {
    std::lock_guard lock(mutex_);
    auto now = Clock::now();
    std::vector<std::string> expired;
    for (const auto& [token, entry] : in_flight_) {
      if (entry.expires <= now) expired.push_back(token);
    }
    for (const auto& token : expired) {
      InFlight entry = std::move(in_flight_.at(token));
      in_flight_.erase(token);
      recover_locked(token, entry);
      ++ended;
    }
  }
  if (ended > 0) changed_.notify_all();
  return ended;
}

void MemoryQueue::recover_locked(const std::string&, const InFlight& entry) {
  std::optional<Job> job;
  std::string decode_error;
  try {
    job = decode_job(entry.payload);
  } catch (const Error& error) {
    decode_error = error.what();
  }
  if (!job) {
    dead_.push_back({std::string(to_string(FailureReason::kMalformed)), "lease expired on a payload that is not a job: " + decode_error, entry.payload,
                     now_timestamp()});
  } else if (job->recoveries >= options_.max_recoveries) {
    std::string message = "lease expired " + std::to_string(job->recoveries + 1) +
                          " times: each worker running it died or stalled";
    dead_.push_back({std::string(to_string(FailureReason::kPoison)), message, entry.payload, now_timestamp()});
    std::size_t objects = job->type == JobType::kCopy ? job->objects.size() : 1;
    for (std::size_t index = 0; index < objects; ++index) {
      ObjectOutcome poison{failure_key(*job, index), OutcomeKind::kFailed, 0, std::string(to_string(FailureReason::kPoison)), message, job->attempts};
      record_outcome_failure_locked(job, entry.payload, poison);
    }
  } else {
    ++job->recoveries;
    queue_.push_back(encode_job(*job));
    ++totals_.recovered;
  }
}

std::size_t MemoryQueue::promote_due() {
  std::size_t promoted = 0;
  {
    std::lock_guard lock(mutex_);
    promoted = promote_due_locked(Clock::now());
  }
  if (promoted > 0) changed_.notify_all();
  return promoted;
}

std::size_t MemoryQueue::promote_due_locked(Clock::time_point now) {
  std::size_t promoted = 0;
  while (!retry_.empty() && retry_.begin()->first <= now) {
    queue_.push_back(std::move(retry_.begin()->second));
    retry_.erase(retry_.begin());
    ++promoted;
  }
  return promoted;
}

void MemoryQueue::heartbeat(const std::string& worker_id, const std::string& info_json) {
  std::lock_guard lock(mutex_);
  workers_[worker_id] = {info_json, Clock::now()};
}

std::vector<WorkerInfo> MemoryQueue::live_workers(std::chrono::milliseconds max_age) {
  std::lock_guard lock(mutex_);
  auto now = Clock::now();
  std::vector<WorkerInfo> live;
  for (const auto& [id, beat] : workers_) {
    auto age = std::chrono::duration_cast<std::chrono::milliseconds>(now - beat.seen);
    if (age <= max_age) live.push_back({id, beat.info_json, age});
  }
  return live;
}

Counts MemoryQueue::counts() {
  std::lock_guard lock(mutex_);
  Counts counts = totals_;
  counts.queued = queue_.size();
  counts.scheduled = retry_.size();
  counts.in_flight = in_flight_.size();
  counts.dead = dead_.size();
  counts.failed = failed_.size();
  for (const auto& [key, record] : failed_) ++counts.failed_by_reason[record.reason];
  counts.paused = paused_;
  return counts;
}

bool MemoryQueue::paused() {
  std::lock_guard lock(mutex_);
  return paused_;
}

void MemoryQueue::set_paused(bool paused) {
  {
    std::lock_guard lock(mutex_);
    paused_ = paused;
  }
  changed_.notify_all();  // a resume wakes the fetches waiting on a full queue
}

bool MemoryQueue::idle() {
  std::lock_guard lock(mutex_);
  return queue_.empty() && retry_.empty() && in_flight_.empty();
}

std::uint64_t MemoryQueue::queue_length() {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

std::size_t MemoryQueue::requeue_failed(const std::optional<std::string>& reason) {
  std::size_t requeued = 0;
  {
    std::lock_guard lock(mutex_);
    for (auto it = failed_.begin(); it != failed_.end();) {
      const FailureRecord& record = it->second;
      if ((reason && record.reason != *reason) || record.job_payload.empty()) {
        ++it;
        continue;
      }
      queue_.push_back(record.job_payload);
      it = failed_.erase(it);
      ++requeued;
    }
  }
  if (requeued > 0) changed_.notify_all();
  return requeued;
}

void MemoryQueue::for_each_failure(const std::function<void(const FailureRecord&)>& visit) {
  // A copy, so visit() may call back into the queue.
  std::vector<FailureRecord> records;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, record] : failed_) records.push_back(record);
  }
  for (const auto& record : records) visit(record);
}

void MemoryQueue::for_each_dead(const std::function<void(const DeadEntry&)>& visit) {
  std::vector<DeadEntry> entries;
  {
    std::lock_guard lock(mutex_);
    entries = dead_;
  }
  for (const auto& entry : entries) visit(entry);
}

void MemoryQueue::purge() {
  std::lock_guard lock(mutex_);
  queue_.clear();
  in_flight_.clear();
  retry_.clear();
  dead_.clear();
  failed_.clear();
  cursors_.clear();
  workers_.clear();
  totals_ = {};
  paused_ = false;
}

void MemoryQueue::set_cursor(const std::string& name, const std::string& value) {
  std::lock_guard lock(mutex_);
  cursors_[name] = value;
}

std::optional<std::string> MemoryQueue::get_cursor(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto it = cursors_.find(name);
  if (it == cursors_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> MemoryQueue::end_lease_locked(const std::string& token) {
  auto it = in_flight_.find(token);
  if (it == in_flight_.end()) return std::nullopt;
  std::string payload = std::move(it->second.payload);
  in_flight_.erase(it);
  return payload;
}

void MemoryQueue::drop_failure_locked(const std::string& key) { failed_.erase(key); }

void MemoryQueue::record_failure_locked(FailureRecord record) {
  std::string key = record.key;
  failed_[key] = std::move(record);
}

void MemoryQueue::record_outcome_failure_locked(const std::optional<Job>& job, const std::string& payload,
                                                const ObjectOutcome& outcome) {
  FailureRecord record{outcome.key, std::nullopt, outcome.reason, outcome.message, outcome.attempts,
                       now_timestamp(), payload};
  if (auto index = job ? find_object_index(*job, outcome.key) : std::nullopt) {
    if (job->type == JobType::kCopy) record.blob_id = job->objects[*index].blob_id;
    record.job_payload = encode_job(retry_job_for(*job, *index));
  }
  record_failure_locked(std::move(record));
}

}  // namespace blobferry
