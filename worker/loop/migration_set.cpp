// The migrations a worker takes jobs from: one named queue, or every active
// migration of its Redis, rescanned so migrations created later are served too.
#include "worker/loop/migration_set.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "common/base/encoding.h"
#include "common/base/error.h"

namespace blobferry {

bool is_active(JobQueue& queue) {
  // A paused migration (blobferry pause) is skipped: its fetches would return nothing anyway.
  return !queue.paused() && !queue.idle();
}

MigrationSet::MigrationSet(JobQueue& queue, std::string migration) {
  // Not owned: the caller's queue outlives the set.
  std::shared_ptr<JobQueue> borrowed(&queue, [](JobQueue*) {});
  known_[migration] = borrowed;
  active_.push_back({std::move(migration), std::move(borrowed)});
}

MigrationSet::MigrationSet(Lister list, Opener open) : list_(std::move(list)), open_(std::move(open)) {}

void MigrationSet::refresh() {
  if (fixed()) return;
  const std::vector<std::string> names = list_();
  std::map<std::string, std::shared_ptr<JobQueue>> known;
  {
    std::lock_guard lock(mutex_);
    known = known_;
  }
  for (const std::string& name : names) {
    if (known.count(name)) continue;
    try {
      validate_migration_name(name);
    } catch (const Error& e) {
      spdlog::warn("ignoring migration {}: {}", printable(name), e.what());
      continue;
    }
    known[name] = open_(name);
    spdlog::info("serving migration {} too", name);
  }
  std::vector<ServedQueue> active;
  for (const auto& [name, queue] : known) {
    if (is_active(*queue)) active.push_back({name, queue});
  }
  std::lock_guard lock(mutex_);
  known_ = std::move(known);
  active_ = std::move(active);
}

std::vector<ServedQueue> MigrationSet::rotation() {
  std::vector<ServedQueue> active;
  {
    std::lock_guard lock(mutex_);
    active = active_;
  }
  if (active.size() > 1) {
    const std::size_t first = turn_.fetch_add(1) % active.size();
    std::rotate(active.begin(), active.begin() + static_cast<std::ptrdiff_t>(first), active.end());
  }
  return active;
}

std::vector<ServedQueue> MigrationSet::all() const {
  std::lock_guard lock(mutex_);
  std::vector<ServedQueue> all;
  for (const auto& [name, queue] : known_) all.push_back({name, queue});
  return all;
}

}  // namespace blobferry
