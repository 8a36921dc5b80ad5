// Opens each storage.yml service once, on first use, and shares it across threads.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "common/base/error.h"
#include "common/storage/storage.h"
#include "common/storage/storage_config.h"

namespace blobferry {

// Jobs name services; each worker resolves them from its own storage.yml and
// environment, which is why credentials never travel through the queue.
class ServiceRegistry {
 public:
  explicit ServiceRegistry(StorageConfig config) : config_(std::move(config)) {}

  // Throws Error kConfig for an unknown or unusable service.
  Storage& get(const std::string& name);
  // get() and Storage::check(): any failure, an unreachable endpoint too, is
  // a configuration error naming the service, so a command stops at once
  // (exit 2) instead of failing every object later.
  Storage& checked(const std::string& name, Storage::Access access);
  // For workers, per job: check() until it passes once for this access. A
  // failure no retry can help (a read-only Disk root, a missing bucket) is
  // the configuration error checked() throws; one a retry can help (the
  // server restarting) is left to the copies, which retry it.
  Storage& checked_once(const std::string& name, Storage::Access access);
  const StorageConfig& config() const { return config_; }

 private:
  static Error unusable(const std::string& name, const Storage& storage, const Error& e);

  StorageConfig config_;
  std::mutex mutex_;
  std::mutex check_mutex_;  // serialises checked_once's checks
  std::map<std::string, std::unique_ptr<Storage>> open_;
  std::set<std::pair<std::string, Storage::Access>> passed_;
};

}  // namespace blobferry
