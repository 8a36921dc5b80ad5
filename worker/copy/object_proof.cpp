// What proves an object on a target holds given bytes: its single-part ETag or blobferry's MD5 metadata.
#include "worker/copy/object_proof.h"

#include <utility>

#include "common/base/encoding.h"

namespace blobferry {
namespace {

bool preserved_header(const std::string& name) {
  if (name == kMd5Metadata) return false;  // ours, rewritten for what lands
  return is_preserved_header(name);
}

}  // namespace

Metadata target_metadata(const Metadata& source, const std::string& content_type, const std::string& md5) {
  Metadata out;
  for (const auto& [name, value] : source) {
    std::string lower = lowercase(name);
    if (!preserved_header(lower)) continue;
    if (lower == "content-type" && !content_type.empty()) continue;
    out.emplace_back(std::move(lower), value);
  }
  if (!content_type.empty()) out.emplace(out.begin(), "content-type", content_type);
  if (!md5.empty()) out.emplace_back(std::string(kMd5Metadata), md5);
  return out;
}

std::string metadata_value(const Metadata& metadata, std::string_view name) {
  for (const auto& [key, value] : metadata) {
    if (lowercase(key) == name) return value;
  }
  return {};
}

std::string etag_md5(const std::string& etag) { return hex_md5_to_base64(etag).value_or(std::string{}); }

std::string proven_etag_md5(const ObjectInfo& info) { return info.etag_is_md5 ? etag_md5(info.etag) : std::string{}; }

bool proves_md5(const ObjectInfo& info, const std::string& md5) {
  return !md5.empty() && (proven_etag_md5(info) == md5 || metadata_value(info.metadata, kMd5Metadata) == md5);
}

bool upload_gone(const Error& error) {
  return error.failure_reason() == FailureReason::kNotFound || error.failure_reason() == FailureReason::kNoSuchUpload;
}

}  // namespace blobferry
