// The migrations a worker takes jobs from: one named queue, or every active
// migration of its Redis, rescanned so migrations created later are served too.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/queue/job_queue.h"

namespace blobferry {

// The hook that decides whether a known migration is served now: not
// finished (something queued, scheduled or in flight). Paused migrations are
// to be skipped here too, once the queue can say so (`blobferry pause`).
bool is_active(JobQueue& queue);

struct ServedQueue {
  std::string migration;
  std::shared_ptr<JobQueue> queue;
};

// Thread-safe.
class MigrationSet {
 public:
  using Lister = std::function<std::vector<std::string>()>;
  using Opener = std::function<std::shared_ptr<JobQueue>(const std::string& migration)>;

  // Exactly this queue, always served (worker --migration, migrate); it must
  // outlive the set.
  MigrationSet(JobQueue& queue, std::string migration);
  // Every migration `list` names, each opened once with `open`, served while
  // is_active() said so at the last refresh().
  MigrationSet(Lister list, Opener open);

  bool fixed() const { return !list_; }

  // Lists again (opening new migrations) and re-evaluates which are active.
  // Throws what the lister or the queue throws; the previous state stays.
  // Nothing to do for a fixed set.
  void refresh();

  // The queues to fetch from now, rotated by one on every call so that
  // concurrent fetchers take turns across migrations with work (round robin).
  std::vector<ServedQueue> rotation();
  // Every migration known (active or not): for housekeeping and idleness.
  std::vector<ServedQueue> all() const;

 private:
  Lister list_;
  Opener open_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<JobQueue>> known_;
  std::vector<ServedQueue> active_;
  std::atomic<std::size_t> turn_{0};
};

}  // namespace blobferry
