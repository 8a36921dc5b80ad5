// A worker's job results recorded in batches: job threads hand completions
// over and go on; one thread records them, one complete_batch() per queue.
#include "worker/loop/settle_batcher.h"

#include <algorithm>
#include <limits>
#include <utility>

#include <spdlog/spdlog.h>

namespace blobferry {

SettleBatcher::SettleBatcher(SettleBatcherOptions options, Record record)
    : options_(options), record_(std::move(record)) {
  options_.max_batch = std::max<std::size_t>(options_.max_batch, 1);
  thread_ = std::thread([this] { run(); });
}

SettleBatcher::~SettleBatcher() { close(); }

void SettleBatcher::add(JobQueue& queue, Completion completion) {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return closing_ || pending_.size() < 2 * options_.max_batch; });
  pending_.push_back({&queue, std::move(completion), Clock::now()});
  if (pending_.size() == 1 || pending_.size() >= options_.max_batch) changed_.notify_all();
}

void SettleBatcher::close() {
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

RetryOptions SettleBatcher::retry_options() {
  RetryOptions options;
  options.retries = std::numeric_limits<int>::max();
  options.retry_every_kind = true;
  options.base = std::chrono::milliseconds(100);
  options.cap = std::chrono::milliseconds(5000);
  options.max_retry_after = std::chrono::milliseconds::max();
  return options;
}

void SettleBatcher::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return closing_ || !pending_.empty(); });
    if (pending_.empty()) return;  // closing, and nothing left to record
    const Clock::time_point due = pending_.front().added + options_.max_delay;
    changed_.wait_until(lock, due, [this] { return closing_ || pending_.size() >= options_.max_batch; });
    const std::size_t take = std::min(pending_.size(), options_.max_batch);
    std::vector<Pending> batch(std::make_move_iterator(pending_.begin()),
                               std::make_move_iterator(pending_.begin() + static_cast<std::ptrdiff_t>(take)));
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(take));
    changed_.notify_all();  // room for an add() that waited
    lock.unlock();
    record(batch);
    lock.lock();
  }
}

void SettleBatcher::record(std::vector<Pending>& batch) {
  // A worker serving several migrations mixes queues in one batch: each gets
  // its own call, its completions in the order they came.
  std::vector<std::pair<JobQueue*, std::vector<Completion>>> by_queue;
  for (Pending& pending : batch) {
    auto found = std::find_if(by_queue.begin(), by_queue.end(),
                              [&](const auto& entry) { return entry.first == pending.queue; });
    if (found == by_queue.end()) found = by_queue.insert(by_queue.end(), {pending.queue, {}});
    found->second.push_back(std::move(pending.completion));
  }
  for (auto& [queue, completions] : by_queue) {
    try {
      record_(*queue, completions);
    } catch (const std::exception& e) {
      // Not expected (Record retries queue errors itself); the leases expire
      // and their jobs are recovered, so nothing is lost but this log line.
      spdlog::error("recording {} job result(s) failed: {}", completions.size(), e.what());
    }
  }
}

}  // namespace blobferry
