// Opens each storage.yml service once, on first use, and shares it across threads.
#include "worker/service_registry.h"

#include "common/error.h"
#include "common/storage_factory.h"

namespace blobferry {

Storage& ServiceRegistry::get(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto found = open_.find(name);
  if (found != open_.end()) return *found->second;
  auto storage = open_storage(config_.service(name));
  Storage& ref = *storage;
  open_.emplace(name, std::move(storage));
  return ref;
}

Storage& ServiceRegistry::checked(const std::string& name, Storage::Access access) {
  Storage& storage = get(name);
  try {
    storage.check(access);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kConfig) throw;
    throw config_error("service " + name + " (" + storage.describe() + ") is not usable: " + e.what());
  }
  return storage;
}

}  // namespace blobferry
