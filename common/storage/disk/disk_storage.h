// Stores objects as files under a root folder, in ActiveStorage's layout or as plain relative paths.
#pragma once

#include <string>

#include "common/storage/service_config.h"
#include "common/storage/storage.h"

namespace blobferry {

// A Disk service of storage.yml. Safe to share between threads: it holds no
// mutable state, and every path is resolved afresh from the root.
//
// Layouts: kActiveStorage puts key "abcdef" at root/ab/cd/abcdef (Rails'
// DiskService#path_for, so keys may hold '/' after their first 4 characters,
// as variant keys do); kPlain puts it at root/<key>.
//
// Safety: no key reaches outside the root. Keys with "..", "." or empty
// segments, a leading '/', a NUL byte or the reserved ".blobferry-" prefix
// are refused (Error kPermanent, reason "invalid_key"), and every folder and
// file below the root is opened without following symbolic links (the root
// itself may be one).
//
// Writes go to a temporary file beside the target, are fsynced and renamed
// into place, so no partial file is ever visible under a key. The etag of
// what blobferry writes (its hex MD5) and
// the metadata passed to put() are kept in extended attributes
// (user.blobferry.md5, user.blobferry.metadata) where the filesystem
// supports them; files written by others are hashed by head() and never
// modified. Listings and ranged reads report an etag only when it is cached.
//
// No optional capability (StorageCapabilities): files have no parts to
// upload, and a copy between two roots is no cheaper than reading and
// writing, so an object of any size arrives as one streamed put().
class DiskStorage final : public Storage {
 public:
  explicit DiskStorage(const ServiceConfig& service);

  std::string describe() const override;
  void check(Access access = Access::kWrite) override;
  std::optional<ObjectInfo> head(const std::string& key) override;
  // ObjectInfo::size is the whole object's size, also for a range.
  std::optional<ObjectInfo> get(const std::string& key, const ByteSink& sink,
                                std::optional<ByteRange> range = std::nullopt) override;
  std::string put(const std::string& key, ByteSource& body, const PutOptions& options) override;
  ListPage list(const ListRequest& request) override;
  // Where key is stored (root/ab/cd/abcd… or root/<key>). Throws Error
  // (invalid_key) for a key the layout cannot hold safely.
  std::string path_for(const std::string& key) const;

 private:
  std::string root_;
  DiskLayout layout_;
};

}  // namespace blobferry
