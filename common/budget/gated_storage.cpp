// A Storage that asks a RequestGate before every request and every chunk of body bytes of the storage it wraps.
#include "common/budget/gated_storage.h"

#include "common/base/error.h"

namespace blobferry {
namespace {

bool is_throttling(const Error& error) {
  return error.kind() == ErrorKind::kThrottled || error.http_status() == 429 || error.http_status() == 503;
}

// Counts body bytes against the gate as libcurl (or a Disk write) pulls them.
class GatedByteSource final : public ByteSource {
 public:
  GatedByteSource(ByteSource& inner, RequestGate& gate) : inner_(inner), gate_(gate) {}
  std::uint64_t size() const override { return inner_.size(); }
  std::size_t read(char* buf, std::size_t n) override {
    const std::size_t got = inner_.read(buf, n);
    gate_.acquire_bytes(got);
    return got;
  }
  bool rewind() override { return inner_.rewind(); }

 private:
  ByteSource& inner_;
  RequestGate& gate_;
};

}  // namespace

template <typename Call>
auto GatedStorage::gated(Call&& call) {
  gate_.acquire_request();
  try {
    return call();
  } catch (const Error& error) {
    if (is_throttling(error)) gate_.report_throttled(error.retry_after());
    throw;
  }
}

const Storage& GatedStorage::unwrap(const Storage& storage) {
  const Storage* current = &storage;
  while (const auto* gated = dynamic_cast<const GatedStorage*>(current)) current = &gated->inner_;
  return *current;
}

Storage& GatedStorage::unwrap(Storage& storage) {
  Storage* current = &storage;
  while (auto* gated = dynamic_cast<GatedStorage*>(current)) current = &gated->inner_;
  return *current;
}

void GatedStorage::admit(Storage& storage, int requests, std::uint64_t bytes) {
  for (auto* gated = dynamic_cast<GatedStorage*>(&storage); gated; gated = dynamic_cast<GatedStorage*>(&gated->inner_)) {
    for (int i = 0; i < requests; ++i) gated->gate_.acquire_request();
    gated->gate_.acquire_bytes(bytes);
  }
}

void GatedStorage::report(Storage& storage, const Error& error) {
  if (!is_throttling(error)) return;
  for (auto* gated = dynamic_cast<GatedStorage*>(&storage); gated; gated = dynamic_cast<GatedStorage*>(&gated->inner_)) {
    gated->gate_.report_throttled(error.retry_after());
  }
}

std::optional<ObjectInfo> GatedStorage::head(const std::string& key) {
  return gated([&] { return inner_.head(key); });
}

std::optional<ObjectInfo> GatedStorage::get(const std::string& key, const ByteSink& sink,
                                            std::optional<ByteRange> range) {
  const ByteSink counted = [&](std::string_view chunk) {
    gate_.acquire_bytes(chunk.size());
    sink(chunk);
  };
  return gated([&] { return inner_.get(key, counted, range); });
}

std::string GatedStorage::put(const std::string& key, ByteSource& body, const PutOptions& options) {
  GatedByteSource counted(body, gate_);
  return gated([&] { return inner_.put(key, counted, options); });
}

ListPage GatedStorage::list(const ListRequest& request) {
  return gated([&] { return inner_.list(request); });
}

StorageCapabilities GatedStorage::capabilities() {
  const StorageCapabilities inner = inner_.capabilities();
  return {inner.chunked_writer ? this : nullptr, inner.server_side_copier ? this : nullptr};
}

std::string GatedStorage::create_multipart(const std::string& key, const PutOptions& options) {
  return gated([&] { return inner_.capabilities().chunked_writer->create_multipart(key, options); });
}

std::string GatedStorage::upload_part(const std::string& key, const std::string& upload_id, int part_number,
                                      ByteSource& body, const std::string& content_md5) {
  GatedByteSource counted(body, gate_);
  return gated([&] {
    return inner_.capabilities().chunked_writer->upload_part(key, upload_id, part_number, counted, content_md5);
  });
}

std::string GatedStorage::complete_multipart(const std::string& key, const std::string& upload_id,
                                             const std::vector<CompletedPart>& parts) {
  return gated([&] { return inner_.capabilities().chunked_writer->complete_multipart(key, upload_id, parts); });
}

void GatedStorage::abort_multipart(const std::string& key, const std::string& upload_id) {
  gated([&] { inner_.capabilities().chunked_writer->abort_multipart(key, upload_id); });
}

// Asks no gate (no request is made): the wrapped service's limits are its own.
SizeLimits GatedStorage::size_limits() const {
  const StorageCapabilities inner = const_cast<Storage&>(inner_).capabilities();
  if (inner.chunked_writer != nullptr) return inner.chunked_writer->size_limits();
  if (inner.server_side_copier != nullptr) return inner.server_side_copier->size_limits();
  return SizeLimits::unlimited();
}

std::vector<CompletedPart> GatedStorage::list_parts(const std::string& key, const std::string& upload_id) {
  return gated([&] { return inner_.capabilities().chunked_writer->list_parts(key, upload_id); });
}

bool GatedStorage::can_copy_from(const Storage& source) const {
  auto* copier = const_cast<Storage&>(inner_).capabilities().server_side_copier;
  return copier != nullptr && copier->can_copy_from(unwrap(source));
}

std::string GatedStorage::copy_object(const Storage& source, const std::string& source_key, const std::string& key,
                                      const CopyOptions& options) {
  return gated([&] {
    return inner_.capabilities().server_side_copier->copy_object(unwrap(source), source_key, key, options);
  });
}

std::string GatedStorage::copy_part(const Storage& source, const std::string& source_key, const std::string& key,
                                    const std::string& upload_id, int part_number, ByteRange range,
                                    const CopyOptions& options) {
  return gated([&] {
    return inner_.capabilities().server_side_copier->copy_part(unwrap(source), source_key, key, upload_id, part_number,
                                                              range, options);
  });
}

}  // namespace blobferry
