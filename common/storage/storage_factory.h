// Opens the backend a service of storage.yml describes.
#pragma once

#include <memory>

#include "common/storage/service_config.h"
#include "common/storage/storage.h"

namespace blobferry {

// Throws Error of kind kConfig for a Mirror (explaining to name its primary or
// a mirror instead) and for services blobferry does not support yet.
std::unique_ptr<Storage> open_storage(const ServiceConfig& service);

}  // namespace blobferry
