// Opens each storage.yml service once, on first use, and shares it across threads.
#include "common/storage/service_registry.h"

#include "common/base/error.h"
#include "common/storage/storage_factory.h"

namespace blobferry {

Storage& ServiceRegistry::get(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto found = open_.find(name);
  if (found != open_.end()) return *found->second;
  // An expired session token is renewed by reading storage.yml (and the
  // environment) again, as a restarted worker would.
  ServiceReloader reload = [origin = config_.origin(), name]() -> std::optional<ServiceConfig> {
    try {
      return StorageConfig::load(origin).service(name);
    } catch (const Error&) {
      return std::nullopt;
    }
  };
  auto storage = open_storage(config_.service(name), std::move(reload));
  Storage& ref = *storage;
  open_.emplace(name, std::move(storage));
  return ref;
}

Storage& ServiceRegistry::checked(const std::string& name, Storage::Access access) {
  Storage& storage = get(name);
  try {
    storage.check(access);
  } catch (const Error& e) {
    throw unusable(name, storage, e);
  }
  return storage;
}

Storage& ServiceRegistry::checked_once(const std::string& name, Storage::Access access) {
  Storage& storage = get(name);
  {
    std::lock_guard lock(mutex_);
    if (passed_.count({name, access})) return storage;
  }
  // One check at a time: the threads of a starting worker wait for the first
  // one's answer instead of each listing the bucket.
  std::lock_guard checking(check_mutex_);
  {
    std::lock_guard lock(mutex_);
    if (passed_.count({name, access})) return storage;
  }
  try {
    storage.check(access);
  } catch (const Error& e) {
    if (e.retryable()) return storage;  // the copies meet it and retry; checked again next time
    throw unusable(name, storage, e);
  }
  std::lock_guard lock(mutex_);
  passed_.insert({name, access});
  return storage;
}

// Named in every case (a Disk root's own message names the path, not the
// service), and once (an S3 service's configuration errors name it already).
Error ServiceRegistry::unusable(const std::string& name, const Storage& storage, const Error& e) {
  const std::string what = e.what();
  if (e.kind() == ErrorKind::kConfig && what.find("service " + name) != std::string::npos) return e;
  return config_error("service " + name + " (" + storage.describe() + ") is not usable: " + what);
}

}  // namespace blobferry
