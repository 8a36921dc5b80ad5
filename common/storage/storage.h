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
  // Whether an MD5-shaped etag (32 hex digits) is the MD5 of the bytes. S3
  // clears it for encrypted objects (SSE-KMS, DSSE-KMS, SSE-C, MinIO's SSE-S3:
  // from x-amz-server-side-encryption[-customer-algorithm] on HEAD and GET),
  // for providers whose ETags are not MD5s (provider_profile.h), and for
  // etags of any other shape. From a listing, which shows no encryption, it
  // only says the provider's plain ETags are MD5s. Other backends leave it
  // true: their single-part etags are MD5s, so callers still check the shape
  // (a multipart "…-N" etag is never an MD5).
  bool etag_is_md5 = true;
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

class ChunkedWriter;
class ServerSideCopier;

// What a backend can do beyond the methods of Storage, as rclone's optional
// interfaces: a null pointer means the backend has no such thing and the
// caller takes the path every backend has (one streamed put()). The pointers
// live as long as the Storage they came from.
struct StorageCapabilities {
  ChunkedWriter* chunked_writer = nullptr;        // multipart upload (common/storage/chunked_writer.h)
  ServerSideCopier* server_side_copier = nullptr;  // copy inside the service (common/storage/server_side_copier.h)
};

// Receives a streamed body chunk by chunk. Throwing aborts the transfer and
// the exception reaches the caller of get().
using ByteSink = std::function<void(std::string_view chunk)>;

// Cancellation: no method takes a token. A call made on a thread whose
// CancellationToken::current() is cancelled throws Error reason "cancelled"
// (cancelled_error) soon — before a request, between Disk chunks, or from
// libcurl's progress callback while an S3 transfer waits — so a stopping
// worker can join its copy threads instead of abandoning them.
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

  // The optional capabilities this backend has (see StorageCapabilities);
  // none by default. A wrapper forwards its inner storage's, or its own.
  virtual StorageCapabilities capabilities() { return {}; }
};

}  // namespace blobferry
