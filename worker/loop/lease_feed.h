// Hands a worker's idle job threads their leases, fetched in batches: one
// idle thread fetches for all of them, never more than are idle.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "common/queue/job_queue.h"
#include "worker/loop/migration_set.h"

namespace blobferry {

struct FedLease {
  ServedQueue served;
  Lease lease;
};

// Thread-safe. Every lease fetched goes to a thread already waiting for one,
// so a worker never holds a lease no thread is running: SIGKILLed, it loses
// at most its concurrency's worth, which recovery returns.
class LeaseFeed {
 public:
  // Up to `max` leases (one queue's, in its order); empty when none came. May throw.
  using Fetch = std::function<std::vector<FedLease>(std::size_t max)>;

  // A thread about to fetch first waits up to `linger` for max_batch threads
  // to be free: under load threads free up one at a time, and a few
  // milliseconds turn a round trip per job into one per batch.
  LeaseFeed(std::size_t max_batch, std::chrono::milliseconds linger, Fetch fetch);

  // The calling thread's next lease. nullopt when stopped with none left to
  // hand out, or when this thread fetched and none came (its caller decides
  // whether the worker is done). A fetch's error reaches the thread that
  // fetched; the others go on waiting, and one of them fetches next.
  std::optional<FedLease> next();

  // Wakes every waiting thread; leases already fetched are still handed out.
  void stop();

 private:
  std::size_t max_batch_;
  std::chrono::milliseconds linger_;
  Fetch fetch_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<FedLease> ready_;  // never more than waiting_
  std::size_t waiting_ = 0;     // threads inside next(): the worker's free slots
  bool fetching_ = false;
  bool stopped_ = false;
};

}  // namespace blobferry
