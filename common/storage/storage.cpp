// The storage interface every backend (S3-compatible, Disk) implements: the one preserved-header list.
#include "common/storage/storage.h"

namespace blobferry {

bool is_preserved_header(std::string_view name) {
  return name == "content-type" || name == "content-disposition" || name == "content-encoding" ||
         name == "cache-control" || name == "content-language" || name == "expires" ||
         name.starts_with("x-amz-meta-");
}

}  // namespace blobferry
