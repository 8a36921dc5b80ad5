// Opens the backend a service of storage.yml describes.
#include "common/storage/storage_factory.h"

#include <mutex>
#include <set>

#include <spdlog/spdlog.h>

#include "common/storage/disk/disk_storage.h"
#include "common/base/error.h"
#include "common/storage/s3/s3_storage.h"

namespace blobferry {
namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out.empty() ? "none" : out;
}

// Verification off is the user's explicit choice, but never a silent one: it
// is said once per service and process, whatever the log format.
void warn_if_unverified(const ServiceConfig& service) {
  if (service.verify_tls) return;
  static std::mutex mutex;
  static std::set<std::string> warned;
  std::lock_guard lock(mutex);
  if (!warned.insert(service.name).second) return;
  spdlog::warn("service {}: TLS certificates are NOT verified (ssl_verify_peer: false in storage.yml), so "
               "anyone between here and {} can read or change the objects; set ssl_ca_bundle: instead",
               service.name, service.endpoint.empty() ? std::string("AWS") : service.endpoint);
}

// Settings read but ignored (an unknown `upload:` key) are said once per
// service and process, so a typo does not pass unseen.
void warn_ignored_settings(const ServiceConfig& service) {
  if (service.warnings.empty()) return;
  static std::mutex mutex;
  static std::set<std::string> warned;
  std::lock_guard lock(mutex);
  if (!warned.insert(service.name).second) return;
  for (const std::string& warning : service.warnings) spdlog::warn("{}", warning);
}

std::unique_ptr<Storage> open_s3(const ServiceConfig& service, ServiceReloader reload) {
  auto storage = std::make_unique<S3Storage>(service);
  if (reload) {
    storage->set_credential_reloader([reload = std::move(reload)]() -> std::optional<AwsCredentials> {
      const std::optional<ServiceConfig> fresh = reload();
      if (!fresh) return std::nullopt;
      return AwsCredentials{fresh->access_key_id, fresh->secret_access_key, fresh->session_token};
    });
  }
  return storage;
}

}  // namespace

std::unique_ptr<Storage> open_storage(const ServiceConfig& service, ServiceReloader reload) {
  switch (service.kind) {
    case ServiceKind::kDisk:
      return std::make_unique<DiskStorage>(service);
    case ServiceKind::kS3:
      warn_if_unverified(service);
      warn_ignored_settings(service);
      return open_s3(service, std::move(reload));
    case ServiceKind::kMirror:
      // A Mirror is the app's dual write; blobferry copies between its members.
      throw config_error("service " + service.name + " is a Mirror (primary " +
                         (service.primary.empty() ? std::string("none") : service.primary) + ", mirrors " +
                         joined(service.mirrors) + "): name its primary or one of its mirrors as --from/--to");
    case ServiceKind::kUnsupported:
      break;
  }
  throw config_error("service " + service.name + " uses " + service.service_type +
                     ", which blobferry does not support yet");
}

}  // namespace blobferry
