// The leases of a worker's jobs in flight: renewed while they run, handed back
// at the drain deadline.
#pragma once

#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "common/queue/job_queue.h"

namespace blobferry {

// Thread-safe. A worker serving several migrations holds leases of several
// queues; a lease is known by its queue and token (tokens are per queue).
class LeaseKeeper {
 public:
  using QueueErrorSink = std::function<void(const char* what, const std::exception& e)>;
  explicit LeaseKeeper(QueueErrorSink on_queue_error) : on_queue_error_(std::move(on_queue_error)) {}

  void track(JobQueue& queue, const Lease& lease);
  void untrack(JobQueue& queue, const Lease& lease);
  std::size_t size() const;

  // One renewal of every lease not known to be lost, one renew_all() per
  // queue. A queue error ends the
  // pass (the next one retries); a refused renewal marks the lease lost.
  void renew_all();

  // The drain deadline passed: from now on released() is true (results are
  // no longer recorded), and every lease goes back to its queue. Stops at the
  // first queue error: the remaining leases expire and are recovered, so
  // nothing is lost and a worker whose Redis is gone does not wait for it.
  // Returns how many it handed back.
  std::size_t release_all();
  bool released() const { return released_.load(); }

 private:
  struct Entry {
    JobQueue* queue;
    Lease lease;
    bool lost = false;  // renew said another worker owns it now
  };
  using Id = std::pair<const JobQueue*, std::string>;

  QueueErrorSink on_queue_error_;
  mutable std::mutex mutex_;
  std::map<Id, Entry> in_flight_;
  std::atomic<bool> released_{false};
};

}  // namespace blobferry
