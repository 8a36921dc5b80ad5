// A Storage that asks a RequestGate before every request and every chunk of body bytes of the storage it wraps.
#pragma once

#include <string>
#include <vector>

#include "common/budget/request_gate.h"
#include "common/storage/chunked_writer.h"
#include "common/storage/server_side_copier.h"
#include "common/storage/storage.h"

namespace blobferry {

class Error;

// A decorator, so the budget needs no change in any backend: every method of
// Storage and of the optional capabilities the inner storage has goes through
// the gate, and a throttling answer (503 SlowDown, 429, 503
// ServiceUnavailable) is reported to it before the error goes on to the
// caller's retry policy. check() is not gated (it runs once per process).
class GatedStorage final : public Storage, public ChunkedWriter, public ServerSideCopier {
 public:
  GatedStorage(Storage& inner, RequestGate& gate) : inner_(inner), gate_(gate) {}

  std::string describe() const override { return inner_.describe(); }
  void check(Access access = Access::kWrite) override { inner_.check(access); }
  std::optional<ObjectInfo> head(const std::string& key) override;
  std::optional<ObjectInfo> get(const std::string& key, const ByteSink& sink,
                                std::optional<ByteRange> range = std::nullopt) override;
  std::string put(const std::string& key, ByteSource& body, const PutOptions& options) override;
  ListPage list(const ListRequest& request) override;
  StorageCapabilities capabilities() override;

  std::string create_multipart(const std::string& key, const PutOptions& options) override;
  std::string upload_part(const std::string& key, const std::string& upload_id, int part_number,
                          ByteSource& body, const std::string& content_md5) override;
  std::string complete_multipart(const std::string& key, const std::string& upload_id,
                                 const std::vector<CompletedPart>& parts) override;
  void abort_multipart(const std::string& key, const std::string& upload_id) override;
  SizeLimits size_limits() const override;
  std::vector<CompletedPart> list_parts(const std::string& key, const std::string& upload_id) override;

  bool can_copy_from(const Storage& source) const override;
  std::string copy_object(const Storage& source, const std::string& source_key, const std::string& key,
                          const CopyOptions& options = {}) override;
  std::string copy_part(const Storage& source, const std::string& source_key, const std::string& key,
                        const std::string& upload_id, int part_number, ByteRange range,
                        const CopyOptions& options = {}) override;

  Storage& inner() { return inner_; }
  // The storage under any number of GatedStorage layers.
  static const Storage& unwrap(const Storage& storage);
  static Storage& unwrap(Storage& storage);

  // For requests sent around the layers to the storage under them (the
  // event loop's copies, worker/copy/event_copier.h): takes `requests`
  // requests and `bytes` body bytes from the gate of every layer of
  // `storage`, waiting as a call through them would, before they are sent.
  static void admit(Storage& storage, int requests, std::uint64_t bytes);
  // Reports an error of such a request to those gates when it is throttling.
  static void report(Storage& storage, const Error& error);

 private:
  template <typename Call>
  auto gated(Call&& call);

  Storage& inner_;
  RequestGate& gate_;
};

}  // namespace blobferry
