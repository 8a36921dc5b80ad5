// The storage interface every backend (S3-compatible, Disk) implements.
#include "common/storage/storage.h"

#include "common/base/error.h"

namespace blobferry {

bool is_preserved_header(std::string_view name) {
  return name == "content-type" || name == "content-disposition" || name == "content-encoding" ||
         name == "cache-control" || name == "content-language" || name.starts_with("x-amz-meta-");
}

// Backends without server-side copy never get here: callers ask
// can_copy_from() first, so reaching these is a programming error.
std::string Storage::copy_object(const Storage& source, const std::string&, const std::string&) {
  throw Error(ErrorKind::kPermanent, FailureReason::kUnsupported,
              "server-side copy from " + source.describe() + " to " + describe() + " is not supported");
}

std::string Storage::copy_part(const Storage& source, const std::string&, const std::string&,
                               const std::string&, int, ByteRange) {
  throw Error(ErrorKind::kPermanent, FailureReason::kUnsupported,
              "server-side part copy from " + source.describe() + " to " + describe() + " is not supported");
}

}  // namespace blobferry
