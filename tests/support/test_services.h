// Service settings and checksums the integration tests share.
#pragma once

#include <string>
#include <string_view>

#include <memory>

#include "common/storage/service_config.h"
#include "common/storage/storage.h"
#include "tests/support/test_stack.h"

namespace blobferry::testing {

// An S3 service on a test stack's s3rver: path style, key and secret S3RVER.
ServiceConfig s3rver_service(const std::string& bucket, const std::string& endpoint);
// A Disk service rooted at root.
ServiceConfig disk_service(const std::string& name, const std::string& root,
                           DiskLayout layout = DiskLayout::kActiveStorage);

// A service of the stack's storage.yml, opened.
std::unique_ptr<Storage> open_service(const TestStack& stack, const std::string& name);

std::string md5_base64(std::string_view bytes);  // ActiveStorage's checksum format
std::string md5_hex(std::string_view bytes);     // a single-part ETag

}  // namespace blobferry::testing
