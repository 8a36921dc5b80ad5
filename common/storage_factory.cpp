// Opens the backend a service of storage.yml describes.
#include "common/storage_factory.h"

#include "common/disk_storage.h"
#include "common/error.h"
#if __has_include("common/s3_storage.h")
#include "common/s3_storage.h"
#define BLOBFERRY_HAVE_S3_STORAGE 1
#endif

namespace blobferry {
namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out.empty() ? "none" : out;
}

}  // namespace

std::unique_ptr<Storage> open_storage(const ServiceConfig& service) {
  switch (service.kind) {
    case ServiceKind::kDisk:
      return std::make_unique<DiskStorage>(service);
    case ServiceKind::kS3:
#ifdef BLOBFERRY_HAVE_S3_STORAGE
      return std::make_unique<S3Storage>(service);
#else
      throw config_error("service " + service.name + " uses S3, which this build cannot open yet");
#endif
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
