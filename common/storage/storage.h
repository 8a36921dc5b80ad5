// The storage interface every backend (S3-compatible, Disk) implements.
//
// Deliberately minimal, after rclone's backend interface: each method states
// what it throws. Expected outcomes (an object that is not there) are values,
// everything else is a blobferry::Error whose kind says whether a retry helps.
// There is no delete: blobferry never removes anything, and a source cannot be
// harmed through an interface that has no way to do it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/storage/byte_source.h"

namespace blobferry {

// Headers preserved on copy, names lowercase, in the order received:
// content-type, content-disposition, content-encoding, cache-control,
// content-language and every x-amz-meta-*.
using Metadata = std::vector<std::pair<std::string, std::string>>;

// Whether a header (its name lowercase) is one Metadata keeps: the one list
// both what a storage reports and what a copy writes are filtered by.
bool is_preserved_header(std::string_view lowercase_name);

struct ObjectInfo {
  std::string key;
  std::uint64_t size = 0;
  std::string etag;           // unquoted; a single-part object's is its hex MD5, a multipart one's has a '-'
  std::string last_modified;  // as the service reported it; may be empty
  Metadata metadata;          // filled by head() and get(); empty in listings
};

// Inclusive byte range, as in HTTP's Range header.
struct ByteRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
};

struct ListRequest {
  std::string prefix;
  std::string delimiter;
  std::string start_after;
  std::string continuation_token;
  int max_keys = 1000;
};

struct ListPage {
  std::vector<ObjectInfo> objects;            // in key order (UTF-8 byte order)
  std::vector<std::string> common_prefixes;   // only with a delimiter
  std::string next_continuation_token;        // empty on the last page
};

struct PutOptions {
  std::string content_md5;  // base64 MD5 of the body; when set, sent as Content-MD5 so the server verifies it
  Metadata metadata;        // headers to store with the object (see Metadata)
};

struct CompletedPart {
  int number = 0;
  std::string etag;
};

// Receives a streamed body chunk by chunk. Throwing aborts the transfer and
// the exception reaches the caller of get().
using ByteSink = std::function<void(std::string_view chunk)>;

class Storage {
 public:
  virtual ~Storage() = default;

  // One line for logs and errors (kind, bucket or root, endpoint); never a credential.
  virtual std::string describe() const = 0;

  // Proves the bucket or root is usable with these settings: readable for a
  // source (kRead never writes anything), writable too for a target. Throws
  // Error of kind kConfig for a missing bucket, bad credentials or an
  // unusable root, kTransient when the endpoint cannot be reached.
  enum class Access { kRead, kWrite };
  virtual void check(Access access = Access::kWrite) = 0;

  // nullopt when the key does not exist. Throws Error otherwise.
  virtual std::optional<ObjectInfo> head(const std::string& key) = 0;

  // Streams the object, or `range` of it, into sink. nullopt when the key does
  // not exist. Throws Error on any other failure, including a sink's throw.
  virtual std::optional<ObjectInfo> get(const std::string& key, const ByteSink& sink,
                                        std::optional<ByteRange> range = std::nullopt) = 0;

  // Stores body under key, replacing nothing visible until complete. Returns
  // the new object's etag. Throws Error (kIntegrity when the server rejects
  // content_md5).
  virtual std::string put(const std::string& key, ByteSource& body, const PutOptions& options) = 0;

  // One page of keys. Throws Error.
  virtual ListPage list(const ListRequest& request) = 0;

  // Multipart upload: create, upload parts (1-based numbers), then complete or
  // abort. complete returns the final etag. Each throws Error; the caller aborts
  // on failure so no parts are left behind.
  virtual std::string create_multipart(const std::string& key, const PutOptions& options) = 0;
  virtual std::string upload_part(const std::string& key, const std::string& upload_id,
                                  int part_number, ByteSource& body,
                                  const std::string& content_md5) = 0;
  virtual std::string complete_multipart(const std::string& key, const std::string& upload_id,
                                         const std::vector<CompletedPart>& parts) = 0;
  virtual void abort_multipart(const std::string& key, const std::string& upload_id) = 0;

  // Server-side copy, when this storage can read `source` itself (same
  // endpoint and credentials). copy_object keeps the source's metadata;
  // copy_part fills one part of a multipart upload from a source range.
  // Both return the new etag and throw Error.
  virtual bool can_copy_from(const Storage& source) const { return false; }
  virtual std::string copy_object(const Storage& source, const std::string& source_key,
                                  const std::string& key);
  virtual std::string copy_part(const Storage& source, const std::string& source_key,
                                const std::string& key, const std::string& upload_id,
                                int part_number, ByteRange range);
};

}  // namespace blobferry
