// Opens the backend a service of storage.yml describes.
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "common/storage/service_config.h"
#include "common/storage/storage.h"

namespace blobferry {

// Throws Error of kind kConfig for a Mirror (explaining to name its primary or
// a mirror instead) and for services blobferry does not support yet.
// reload, when given, reads the service's settings again (storage.yml and the
// environment) for an S3 service whose session token expired.
using ServiceReloader = std::function<std::optional<ServiceConfig>()>;
std::unique_ptr<Storage> open_storage(const ServiceConfig& service, ServiceReloader reload = {});

}  // namespace blobferry
