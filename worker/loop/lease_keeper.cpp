// The leases of a worker's jobs in flight: renewed while they run, handed back
// at the drain deadline.
#include "worker/loop/lease_keeper.h"

#include <vector>

#include <spdlog/spdlog.h>

namespace blobferry {

void LeaseKeeper::track(JobQueue& queue, const Lease& lease) {
  std::lock_guard lock(mutex_);
  in_flight_[{&queue, lease.token}] = Entry{&queue, lease, false};
}

void LeaseKeeper::untrack(JobQueue& queue, const Lease& lease) {
  std::lock_guard lock(mutex_);
  in_flight_.erase({&queue, lease.token});
}

std::size_t LeaseKeeper::size() const {
  std::lock_guard lock(mutex_);
  return in_flight_.size();
}

void LeaseKeeper::renew_all() {
  std::vector<Entry> entries;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, entry] : in_flight_) {
      if (!entry.lost) entries.push_back(entry);
    }
  }
  for (const Entry& entry : entries) {
    if (released_.load()) return;
    try {
      if (!entry.queue->renew(entry.lease)) {
        // Mostly a job that completed since the snapshot above (its lease is
        // gone from Redis before it is untracked here). A lease really lost
        // is warned about when its result is refused.
        spdlog::debug("lease of job {} is no longer ours (completed or recovered); not renewing it", entry.lease.job_id);
        std::lock_guard lock(mutex_);
        auto found = in_flight_.find({entry.queue, entry.lease.token});
        if (found != in_flight_.end()) found->second.lost = true;
      }
    } catch (const std::exception& e) {
      on_queue_error_("renew", e);
      return;
    }
  }
}

std::size_t LeaseKeeper::release_all() {
  std::vector<Entry> entries;
  {
    std::lock_guard lock(mutex_);
    released_.store(true);
    for (const auto& [id, entry] : in_flight_) entries.push_back(entry);
  }
  spdlog::warn("drain deadline passed: returning {} unfinished job(s) to the queue and cancelling their copies",
               entries.size());
  std::size_t released = 0;
  for (const Entry& entry : entries) {
    try {
      if (entry.queue->release(entry.lease)) ++released;
    } catch (const std::exception& e) {
      on_queue_error_("release", e);
      break;
    }
  }
  return released;
}

}  // namespace blobferry
