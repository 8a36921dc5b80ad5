// What proves an object on a target holds given bytes: its single-part ETag or blobferry's MD5 metadata.
#pragma once

#include <string>
#include <string_view>

#include "common/base/error.h"
#include "common/storage/storage.h"

namespace blobferry {

// The metadata that carries the whole-object MD5 where the ETag cannot (multipart, SSE).
inline constexpr std::string_view kMd5Metadata = "x-amz-meta-blobferry-md5";

// What the target stores: the source's preserved headers, the blob table's
// content type over the source's, and the whole-object MD5 when known, which
// is what proves a multipart (or non-MD5 ETag) object equal on a later run.
Metadata target_metadata(const Metadata& source, const std::string& content_type, const std::string& md5);

// The value of header `name` (lowercase), empty when absent.
std::string metadata_value(const Metadata& metadata, std::string_view name);

// The base64 MD5 an ETag proves, or empty: only a single-part upload's ETag is
// the hex MD5 of the bytes (a multipart one has a '-' and fails to decode).
std::string etag_md5(const std::string& etag);

// The MD5 an object's ETag proves: none under SSE-KMS or SSE-C, whose
// 32-hex ETags are not MD5s, nor for a multipart "…-N".
std::string proven_etag_md5(const ObjectInfo& info);

// Whether what the target reports proves it holds bytes of this base64 MD5.
bool proves_md5(const ObjectInfo& info, const std::string& md5);

// How backends say an upload id is unknown (S3's NoSuchUpload, Disk's).
bool upload_gone(const Error& error);

}  // namespace blobferry
