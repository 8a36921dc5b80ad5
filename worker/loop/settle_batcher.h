// A worker's job results recorded in batches: job threads hand completions
// over and go on; one thread records them, one complete_batch() per queue.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/base/retry_policy.h"
#include "common/queue/job_queue.h"

namespace blobferry {

struct SettleBatcherOptions {
  std::size_t max_batch = 64;                // recorded at once when this many are pending…
  std::chrono::milliseconds max_delay{20};  // …or when the oldest has waited this long
};

// Thread-safe. The thread starts with the object and ends in close().
class SettleBatcher {
 public:
  // Called on the batcher's thread with one queue's completions, in the order
  // they were added; it owns their leases from then on. It must not throw.
  using Record = std::function<void(JobQueue& queue, const std::vector<Completion>& completions)>;

  SettleBatcher(SettleBatcherOptions options, Record record);
  ~SettleBatcher();
  SettleBatcher(const SettleBatcher&) = delete;
  SettleBatcher& operator=(const SettleBatcher&) = delete;

  // Queues one completion. Blocks while twice max_batch are pending: a Redis
  // that cannot keep up slows the job threads rather than piling up results
  // (and leases a killed worker would take with it).
  void add(JobQueue& queue, Completion completion);

  // Records everything pending, then ends the thread. Idempotent; add() must
  // not be called after it.
  void close();

  // How every call that settles a job retries (complete, retry_later,
  // release, bury): each error, whatever its kind, is retried until the
  // call lands or the caller gives up (a worker's drain deadline), after a
  // full-jitter pause doubling from 100 ms up to 5 s. Redis refusing a write
  // (out of memory, a script error) is an outage to wait out, not a reason
  // to drop a result that was copied.
  static RetryOptions retry_options();

 private:
  using Clock = std::chrono::steady_clock;
  struct Pending {
    JobQueue* queue;
    Completion completion;
    Clock::time_point added;
  };

  void run();
  void record(std::vector<Pending>& batch);

  SettleBatcherOptions options_;
  Record record_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Pending> pending_;
  bool closing_ = false;
  std::thread thread_;
};

}  // namespace blobferry
