// Service settings and checksums the integration tests share.
#include "tests/support/test_services.h"

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/storage/storage_config.h"
#include "common/storage/storage_factory.h"

namespace blobferry::testing {

ServiceConfig s3rver_service(const std::string& bucket, const std::string& endpoint) {
  ServiceConfig service;
  service.name = bucket;
  service.kind = ServiceKind::kS3;
  service.service_type = "S3";
  service.bucket = bucket;
  service.endpoint = endpoint;
  service.access_key_id = "S3RVER";
  service.secret_access_key = "S3RVER";
  service.force_path_style = true;
  return service;
}

ServiceConfig disk_service(const std::string& name, const std::string& root, DiskLayout layout) {
  ServiceConfig service;
  service.name = name;
  service.kind = ServiceKind::kDisk;
  service.service_type = "Disk";
  service.root = root;
  service.layout = layout;
  return service;
}

std::unique_ptr<Storage> open_service(const TestStack& stack, const std::string& name) {
  return open_storage(StorageConfig::load(stack.storage_config()).service(name));
}

std::string md5_base64(std::string_view bytes) { return base64_encode(md5_of(bytes)); }
std::string md5_hex(std::string_view bytes) { return hex_encode(md5_of(bytes)); }

}  // namespace blobferry::testing
