// Hands a worker's idle job threads their leases, fetched in batches: one
// idle thread fetches for all of them, never more than are idle.
#include "worker/loop/lease_feed.h"

#include <algorithm>
#include <utility>

namespace blobferry {

LeaseFeed::LeaseFeed(std::size_t max_batch, std::chrono::milliseconds linger, Fetch fetch)
    : max_batch_(std::max<std::size_t>(max_batch, 1)), linger_(linger), fetch_(std::move(fetch)) {}

std::optional<FedLease> LeaseFeed::next() {
  std::unique_lock lock(mutex_);
  ++waiting_;
  if (fetching_) changed_.notify_all();  // a lingering fetcher may have its batch now
  for (;;) {
    if (!ready_.empty()) {
      FedLease fed = std::move(ready_.front());
      ready_.pop_front();
      --waiting_;
      return fed;
    }
    if (stopped_) {
      --waiting_;
      return std::nullopt;
    }
    if (!fetching_) break;
    changed_.wait(lock);
  }
  // Threads that arrive while this fetch runs wait for the next one: the
  // longer a round trip, the larger the batch that follows it.
  fetching_ = true;
  if (waiting_ < max_batch_ && linger_.count() > 0) {
    changed_.wait_for(lock, linger_, [this] { return stopped_ || waiting_ >= max_batch_; });
  }
  if (stopped_) {
    fetching_ = false;
    --waiting_;
    changed_.notify_all();
    return std::nullopt;
  }
  const std::size_t max = std::min(max_batch_, waiting_);
  lock.unlock();
  std::vector<FedLease> fetched;
  try {
    fetched = fetch_(max);
  } catch (...) {
    lock.lock();
    fetching_ = false;
    --waiting_;
    changed_.notify_all();
    throw;
  }
  lock.lock();
  fetching_ = false;
  --waiting_;
  std::optional<FedLease> mine;
  for (FedLease& fed : fetched) {
    if (!mine) {
      mine = std::move(fed);
    } else {
      ready_.push_back(std::move(fed));
    }
  }
  changed_.notify_all();
  return mine;
}

void LeaseFeed::stop() {
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
  }
  changed_.notify_all();
}

}  // namespace blobferry
