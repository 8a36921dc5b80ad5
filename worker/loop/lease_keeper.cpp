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
  // One call per queue renews all of its leases: one round trip per
  // migration served, however many copies are in flight.
  std::map<JobQueue*, std::vector<Lease>> by_queue;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, entry] : in_flight_) {
      if (!entry.lost) by_queue[entry.queue].push_back(entry.lease);
    }
  }
  for (const auto& [queue, leases] : by_queue) {
    if (released_.load()) return;
    std::vector<bool> renewed;
    try {
      renewed = queue->renew_all(leases);
    } catch (const std::exception& e) {
      on_queue_error_("renew", e);
      return;
    }
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < leases.size() && i < renewed.size(); ++i) {
      if (renewed[i]) continue;
      // Mostly a job that completed since the snapshot above (its lease is
      // gone from Redis before it is untracked here). A lease really lost
      // is warned about when its result is refused.
      spdlog::debug("lease of job {} is no longer ours (completed or recovered); not renewing it", leases[i].job_id);
      auto found = in_flight_.find({queue, leases[i].token});
      if (found != in_flight_.end()) found->second.lost = true;
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
