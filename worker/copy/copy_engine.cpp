// Copies one object from a source Storage to a target Storage and proves it
// arrived intact: skip when already there, stream and hash, multipart for
// large objects, server-side copy when the target can read the source.
#include "worker/copy/copy_engine.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "worker/copy/multipart_upload.h"
#include "worker/copy/stream_pipe.h"

namespace blobferry {
namespace {

constexpr std::uint64_t kMaxSingleCopy = 5ULL * 1024 * 1024 * 1024;  // S3's CopyObject limit
constexpr std::uint64_t kMaxParts = 10'000;
constexpr std::uint64_t kMaxSinglePut = 5ULL * 1024 * 1024 * 1024;  // S3's PutObject limit
constexpr std::string_view kMd5Metadata = "x-amz-meta-blobferry-md5";

bool preserved_header(const std::string& name) {
  if (name == kMd5Metadata) return false;  // ours, rewritten for what lands
  return is_preserved_header(name);
}

// What the target stores: the source's preserved headers, the blob table's
// content type over the source's, and the whole-object MD5 when known, which
// is what proves a multipart (or non-MD5 ETag) object equal on a later run.
Metadata target_metadata(const Metadata& source, const std::string& content_type,
                         const std::string& md5) {
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

// The base64 MD5 an ETag proves, or empty: only a single-part upload's ETag is
// the hex MD5 of the bytes (a multipart one has a '-' and fails to decode).
std::string etag_md5(const std::string& etag) {
  return hex_md5_to_base64(etag).value_or(std::string{});
}

// Whether what the target reports proves it holds bytes of this base64 MD5.
bool proves_md5(const ObjectInfo& info, const std::string& md5) {
  return !md5.empty() && (etag_md5(info.etag) == md5 || metadata_value(info.metadata, kMd5Metadata) == md5);
}

// How backends say an upload id is unknown (S3's NoSuchUpload, Disk's).
bool upload_gone(const Error& error) {
  return error.failure_reason() == FailureReason::kNotFound || error.failure_reason() == FailureReason::kNoSuchUpload;
}

Error integrity_error(const std::string& message) {
  return Error(ErrorKind::kIntegrity, FailureReason::kIntegrity, message);
}

Error source_missing(const Storage& source, const std::string& key) {
  return Error(ErrorKind::kPermanent, FailureReason::kNotFound,
               "source object '" + key + "' not found on " + source.describe(), 404);
}

void refuse_same_object(const CopyTask& task) {
  const bool same_storage =
      &task.source == &task.target || task.source.describe() == task.target.describe();
  if (same_storage && task.source_key == task.target_key) {
    throw config_error("source and target are the same object: '" + task.source_key + "' on " +
                       task.source.describe());
  }
}

void check_expected_md5(const CopyTask& task) {
  if (!task.expected_md5.empty() && !base64_md5_to_hex(task.expected_md5)) {
    throw Error(ErrorKind::kPermanent, FailureReason::kInvalidChecksum,
                "checksum '" + task.expected_md5 + "' of '" + task.source_key +
                    "' is not a base64 MD5");
  }
}

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return a / b + (a % b != 0); }

}  // namespace

// What one copy has learnt so far; lives on the calling thread's stack.
struct CopyEngine::Run {
  const CopyTask& task;
  std::optional<std::uint64_t> size;    // expected bytes
  std::string md5;                      // expected base64 MD5; empty while unknown
  std::optional<ObjectInfo> source;     // the source's HEAD, once made
  bool target_seen_absent = false;      // a HEAD of the target already found nothing
  int retries = 0;

  int attempts() const { return retries + 1; }
};

struct CopyEngine::Fetched {
  ObjectInfo info;
  std::string md5;  // base64 of the bytes now in the buffer
};

CopyEngine::CopyEngine(CopyEngineOptions options)
    : options_(std::move(options)),
      buffers_(std::max(options_.part_size, options_.multipart_threshold.value_or(options_.part_size))) {
  if (options_.part_size == 0) throw config_error("copy engine part size must be positive");
}

std::uint64_t CopyEngine::threshold() const {
  return options_.multipart_threshold.value_or(options_.part_size);
}

template <typename Step>
auto CopyEngine::with_retries(Run& run, const char* what, Step&& step) const -> decltype(step()) {
  return options_.retry_policy.run(step, [&](const Error& error, int retry, std::chrono::milliseconds pause) {
    spdlog::debug("{} '{}' failed ({}), retry {} in {} ms: {}", what, run.task.source_key,
                  to_string(error.kind()), retry, pause.count(), error.what());
    ++run.retries;
  });
}

CopyResult CopyEngine::copy(const CopyTask& task) const {
  refuse_same_object(task);
  check_expected_md5(task);
  Run run{task, task.expected_size, task.expected_md5, std::nullopt};
  if (!run.size) {
    if (auto copied = copy_unsized(run)) return *copied;
  }
  // Without a size neither the skip test nor the choice of path can be made.
  if (!run.size) head_source(run);
  if (auto skipped = skip_if_present(run)) return *skipped;
  if (server_side_applies(run)) return copy_server_side(run);
  if (*run.size <= threshold()) return copy_small(run);
  if (streams(run)) return copy_streamed(run);
  return copy_multipart(run);
}

void CopyEngine::head_source(Run& run) const {
  const CopyTask& task = run.task;
  ObjectInfo info = with_retries(run, "HEAD source", [&] {
    std::optional<ObjectInfo> found = task.source.head(task.source_key);
    if (!found) throw source_missing(task.source, task.source_key);
    if (run.size && found->size != *run.size) {
      throw integrity_error("HEAD '" + task.source_key + "' on " + task.source.describe() + ": " +
                            std::to_string(found->size) + " bytes, expected " +
                            std::to_string(*run.size));
    }
    return *std::move(found);
  });
  if (!run.size) run.size = info.size;
  if (run.md5.empty()) run.md5 = etag_md5(info.etag);
  run.source = std::move(info);
}

std::optional<CopyResult> CopyEngine::skip_if_present(Run& run) const {
  const CopyTask& task = run.task;
  if (task.target_absent || run.target_seen_absent) return std::nullopt;  // already asked
  const std::optional<ObjectInfo> existing =
      with_retries(run, "HEAD target", [&] { return task.target.head(task.target_key); });
  if (!existing || existing->size != *run.size) return std::nullopt;
  if (run.md5.empty() && !run.source) head_source(run);
  if (run.md5.empty()) return std::nullopt;  // nothing to compare with: copy again
  if (!proves_md5(*existing, run.md5)) return std::nullopt;
  return CopyResult{CopyResult::Status::kSkipped, *run.size, run.md5, run.attempts(), false};
}

// No size known (a Paperclip row without _file_size): a HEAD of the source
// only to learn it would cost a request per object, so a new key's small
// object is read whole by the GET that copies it. An object over the
// threshold aborts that GET and takes the HEAD and the usual path; so does
// one already on the target whose MD5 is not known to compare.
std::optional<CopyResult> CopyEngine::copy_unsized(Run& run) const {
  const CopyTask& task = run.task;
  if (options_.server_side_copy && task.target.can_copy_from(task.source)) return std::nullopt;
  if (!task.target_absent) {
    const std::optional<ObjectInfo> existing =
        with_retries(run, "HEAD target", [&] { return task.target.head(task.target_key); });
    if (existing && proves_md5(*existing, run.md5)) {
      return CopyResult{CopyResult::Status::kSkipped, existing->size, run.md5, run.attempts(), false};
    }
    if (existing) return std::nullopt;
    run.target_seen_absent = true;
  }
  PartBufferPool::Lease lease = buffers_.acquire();
  std::string& buffer = lease.buffer();
  const std::uint64_t limit = threshold();
  const std::optional<Fetched> fetched = with_retries(run, "GET source", [&]() -> std::optional<Fetched> {
    buffer.clear();
    Digest md5 = Digest::md5();
    bool too_large = false;
    const ByteSink sink = [&](std::string_view chunk) {
      if (buffer.size() + chunk.size() > limit) {
        too_large = true;
        throw Error(ErrorKind::kPermanent, FailureReason::kTooLarge, "GET '" + task.source_key + "': over the single-PUT threshold");
      }
      buffer.append(chunk);
      md5.update(chunk);
    };
    std::optional<ObjectInfo> info;
    try {
      info = task.source.get(task.source_key, sink);
    } catch (const Error&) {
      if (too_large) return std::nullopt;
      throw;
    }
    if (!info) throw source_missing(task.source, task.source_key);
    Fetched got{*std::move(info), base64_encode(md5.finish())};
    const std::string expected = run.md5.empty() ? etag_md5(got.info.etag) : run.md5;
    if (!expected.empty() && got.md5 != expected) {
      throw integrity_error("GET '" + task.source_key + "' on " + task.source.describe() + ": MD5 " + got.md5 +
                            ", expected " + expected);
    }
    return got;
  });
  if (!fetched) return std::nullopt;
  run.size = buffer.size();
  const PutOptions put_options{fetched->md5, target_metadata(fetched->info.metadata, task.content_type, fetched->md5)};
  with_retries(run, "PUT target", [&] {
    MemoryByteSource body(buffer);
    return task.target.put(task.target_key, body, put_options);
  });
  return CopyResult{CopyResult::Status::kCopied, buffer.size(), fetched->md5, run.attempts(), false};
}

bool CopyEngine::server_side_applies(Run& run) const {
  const CopyTask& task = run.task;
  if (!options_.server_side_copy || !task.target.can_copy_from(task.source)) return false;
  if (!run.source) head_source(run);
  // copy_object keeps the source's headers; a different content type from the
  // blob table can only be written by streaming.
  if (task.content_type.empty()) return true;
  return metadata_value(run.source->metadata, "content-type") == task.content_type;
}

CopyEngine::Fetched CopyEngine::fetch(Run& run, std::string& buffer, std::optional<ByteRange> range,
                                      std::uint64_t expected_bytes) const {
  const CopyTask& task = run.task;
  buffer.clear();
  Digest md5 = Digest::md5();
  // The limit keeps memory bounded when the source is bigger than announced
  // (or ignores Range) instead of buffering whatever arrives.
  const ByteSink sink = [&](std::string_view chunk) {
    if (buffer.size() + chunk.size() > expected_bytes) {
      throw integrity_error("GET '" + task.source_key + "' on " + task.source.describe() +
                            ": more than the expected " + std::to_string(expected_bytes) + " bytes");
    }
    buffer.append(chunk);
    md5.update(chunk);
  };
  std::optional<ObjectInfo> info = task.source.get(task.source_key, sink, range);
  if (!info) throw source_missing(task.source, task.source_key);
  if (buffer.size() != expected_bytes) {
    throw integrity_error("GET '" + task.source_key + "' on " + task.source.describe() + ": " +
                          std::to_string(buffer.size()) + " bytes, expected " +
                          std::to_string(expected_bytes));
  }
  return Fetched{*std::move(info), base64_encode(md5.finish())};
}

CopyResult CopyEngine::copy_small(Run& run) const {
  const CopyTask& task = run.task;
  PartBufferPool::Lease lease = buffers_.acquire();
  std::string& buffer = lease.buffer();
  buffer.reserve(*run.size);

  const Fetched fetched = with_retries(run, "GET source", [&] {
    Fetched got = fetch(run, buffer, std::nullopt, *run.size);
    const std::string expected = run.md5.empty() ? etag_md5(got.info.etag) : run.md5;
    if (!expected.empty() && got.md5 != expected) {
      throw integrity_error("GET '" + task.source_key + "' on " + task.source.describe() + ": MD5 " +
                            got.md5 + ", expected " + expected);
    }
    return got;
  });

  // The GET's headers describe exactly the bytes in hand; the HEAD's stand in
  // for a backend that only reports them there.
  const Metadata& source_metadata =
      fetched.info.metadata.empty() && run.source ? run.source->metadata : fetched.info.metadata;
  const PutOptions put_options{fetched.md5,
                               target_metadata(source_metadata, task.content_type, fetched.md5)};
  with_retries(run, "PUT target", [&] {
    MemoryByteSource body(buffer);
    return task.target.put(task.target_key, body, put_options);
  });
  return CopyResult{CopyResult::Status::kCopied, buffer.size(), fetched.md5, run.attempts(), false};
}

bool CopyEngine::streams(const Run& run) const {
  return options_.stream_large && !run.md5.empty() && *run.size <= kMaxSinglePut;
}

bool CopyEngine::target_withholds_md5(const Storage& target) const {
  std::lock_guard lock(md5_mutex_);
  return md5_withholding_targets_.count(&target) != 0;
}

void CopyEngine::note_target_withholds_md5(const Storage& target) const {
  std::lock_guard lock(md5_mutex_);
  md5_withholding_targets_.insert(&target);
}

// One GET -> PUT through a bounded pipe; the MD5 of what passed is hashed
// on the way only when asked.
CopyEngine::Streamed CopyEngine::stream_once(Run& run, const PutOptions& put_options, bool hash) const {
  const CopyTask& task = run.task;
  const std::uint64_t size = *run.size;
  StreamPipe pipe(options_.stream_buffer);
  Digest md5 = Digest::md5();
  Streamed result;
  std::exception_ptr get_failure;
  std::thread producer([&] {
    try {
      const auto info = task.source.get(task.source_key, [&](std::string_view chunk) {
        if (result.received + chunk.size() > size) {
          throw integrity_error("GET '" + task.source_key + "' on " + task.source.describe() +
                                ": more than the expected " + std::to_string(size) + " bytes");
        }
        if (hash) md5.update(chunk);
        result.received += chunk.size();
        pipe.write(chunk);
      });
      if (!info) throw source_missing(task.source, task.source_key);
      pipe.close();
    } catch (...) {
      get_failure = std::current_exception();
      pipe.fail();
    }
  });
  PipeByteSource body(pipe, size);
  try {
    result.etag = task.target.put(task.target_key, body, put_options);
  } catch (...) {
    pipe.abort();
    producer.join();
    if (get_failure) std::rethrow_exception(get_failure);  // the download's error is the cause
    throw;
  }
  producer.join();
  if (get_failure) std::rethrow_exception(get_failure);
  if (hash) result.md5 = base64_encode(md5.finish());
  return result;
}

// One PUT fed by the GET through a bounded pipe. The PUT carries the expected
// MD5 as Content-MD5, so a server rejects bytes that do not match it, and an
// answer with an MD5 ETag (put() checks it against Content-MD5) proves what
// was stored: S3-compatible targets do one or both. Hashing on the way costs
// more CPU than moving the bytes, so it is done only for a target whose
// answer once proved nothing; that first copy is then made again, hashed.
CopyResult CopyEngine::copy_streamed(Run& run) const {
  const CopyTask& task = run.task;
  if (!run.source) head_source(run);  // the PUT's headers go out before the first byte arrives
  const PutOptions put_options{run.md5, target_metadata(run.source->metadata, task.content_type, run.md5)};
  const std::uint64_t size = *run.size;

  const std::uint64_t copied = with_retries(run, "streamed copy", [&] {
    bool hashed = target_withholds_md5(task.target);
    Streamed streamed = stream_once(run, put_options, hashed);
    std::string landed;  // the MD5 proven for what the target stored; empty while nothing proves it
    if (hashed) {
      landed = streamed.md5;
    } else if (etag_md5(streamed.etag) == run.md5) {
      landed = run.md5;
    }
    if (landed.empty()) {
      note_target_withholds_md5(task.target);
      hashed = true;
      streamed = stream_once(run, put_options, hashed);
      landed = streamed.md5;
    }
    if (streamed.received != size || landed != run.md5) {
      throw integrity_error("streamed copy of '" + task.source_key + "': " + std::to_string(streamed.received) +
                            " bytes with MD5 " + landed + ", expected " + std::to_string(size) + " with " + run.md5);
    }
    return streamed.received;
  });
  return CopyResult{CopyResult::Status::kCopied, copied, run.md5, run.attempts(), false};
}

CopyResult CopyEngine::copy_multipart(Run& run) const {
  const CopyTask& task = run.task;
  if (!run.source) head_source(run);
  const std::uint64_t size = *run.size;
  const std::uint64_t part_size = std::max(options_.part_size, ceil_div(size, kMaxParts));

  // The whole-object MD5 goes into the metadata up front (S3 cannot add it
  // after completion), so it is only written when known and then enforced.
  const PutOptions create_options{"", target_metadata(run.source->metadata, task.content_type, run.md5)};
  std::string upload_id = with_retries(run, "create_multipart target", [&] {
    return task.target.create_multipart(task.target_key, create_options);
  });
  MultipartUpload upload(task.target, task.target_key, std::move(upload_id), options_.retry_policy);

  PartBufferPool::Lease lease = buffers_.acquire();
  std::string& buffer = lease.buffer();
  buffer.reserve(std::min(part_size, size));
  Digest whole = Digest::md5();
  std::uint64_t total = 0;
  int number = 1;
  for (std::uint64_t offset = 0; offset < size; offset += part_size, ++number) {
    const std::uint64_t length = std::min(part_size, size - offset);
    const Fetched part = with_retries(run, "GET source part", [&] {
      Fetched got = fetch(run, buffer, ByteRange{offset, offset + length - 1}, length);
      if (!got.info.etag.empty() && !run.source->etag.empty() && got.info.etag != run.source->etag) {
        throw integrity_error("GET '" + task.source_key + "' on " + task.source.describe() +
                              ": object changed during the copy (ETag " + got.info.etag +
                              ", was " + run.source->etag + ")");
      }
      return got;
    });
    whole.update(buffer);
    total += buffer.size();
    std::string etag = with_retries(run, "upload_part target", [&] {
      MemoryByteSource body(buffer);
      return task.target.upload_part(task.target_key, upload.upload_id(), number, body, part.md5);
    });
    upload.add_part(number, std::move(etag));
  }

  const std::string md5 = base64_encode(whole.finish());
  // Checked before completing: a mismatch must leave no object behind.
  if (total != size) {
    throw integrity_error("multipart copy of '" + task.source_key + "': " + std::to_string(total) +
                          " bytes, expected " + std::to_string(size));
  }
  if (!run.md5.empty() && md5 != run.md5) {
    throw integrity_error("multipart copy of '" + task.source_key + "' from " +
                          task.source.describe() + ": MD5 " + md5 + ", expected " + run.md5);
  }
  complete_streamed_upload(run, upload, md5);
  return CopyResult{CopyResult::Status::kCopied, total, md5, run.attempts(), false};
}

void CopyEngine::complete_streamed_upload(Run& run, MultipartUpload& upload, const std::string& md5) const {
  const CopyTask& task = run.task;
  const int retries_before = run.retries;
  try {
    with_retries(run, "complete_multipart target", [&] { return upload.complete(); });
  } catch (const Error& error) {
    // A completion whose answer was lost (a timeout on a big object) makes the
    // retry find no upload: accept only what the target proves it holds.
    if (run.retries == retries_before || !upload_gone(error)) throw;
    const std::optional<ObjectInfo> landed = task.target.head(task.target_key);
    if (!landed || landed->size != *run.size || !proves_md5(*landed, md5)) throw;
    spdlog::debug("complete_multipart '{}': answer lost, object verified on {}", task.target_key,
                  task.target.describe());
  }
}

CopyResult CopyEngine::copy_server_side(Run& run) const {
  const CopyTask& task = run.task;
  const std::uint64_t size = *run.size;
  if (size <= kMaxSingleCopy) {
    with_retries(run, "copy_object target", [&] {
      return task.target.copy_object(task.source, task.source_key, task.target_key);
    });
  } else {
    copy_parts_server_side(run);
  }

  // No byte passed through here, so the proof is what the target reports.
  const ObjectInfo landed = with_retries(run, "HEAD target", [&] {
    std::optional<ObjectInfo> found = task.target.head(task.target_key);
    if (!found) {
      throw integrity_error("server-side copy of '" + task.source_key + "' to " +
                            task.target.describe() + ": target object missing afterwards");
    }
    return *std::move(found);
  });
  const std::string landed_md5 = etag_md5(landed.etag);
  if (landed.size != size) {
    throw integrity_error("server-side copy of '" + task.source_key + "' to " +
                          task.target.describe() + ": " + std::to_string(landed.size) +
                          " bytes, expected " + std::to_string(size));
  }
  if (!landed_md5.empty() && !run.md5.empty() && landed_md5 != run.md5) {
    throw integrity_error("server-side copy of '" + task.source_key + "' to " +
                          task.target.describe() + ": MD5 " + landed_md5 + ", expected " + run.md5);
  }
  return CopyResult{CopyResult::Status::kCopied, size, landed_md5, run.attempts(), true};
}

void CopyEngine::copy_parts_server_side(Run& run) const {
  const CopyTask& task = run.task;
  const std::uint64_t size = *run.size;
  const std::uint64_t part_size =
      std::clamp(std::max(options_.server_side_part_size, ceil_div(size, kMaxParts)),
                 options_.part_size, kMaxSingleCopy);
  // No MD5 metadata: nothing here can prove the bytes match it.
  const PutOptions create_options{"", target_metadata(run.source->metadata, task.content_type, "")};
  std::string upload_id = with_retries(run, "create_multipart target", [&] {
    return task.target.create_multipart(task.target_key, create_options);
  });
  MultipartUpload upload(task.target, task.target_key, std::move(upload_id), options_.retry_policy);
  int number = 1;
  for (std::uint64_t offset = 0; offset < size; offset += part_size, ++number) {
    const ByteRange range{offset, std::min(offset + part_size, size) - 1};
    std::string etag = with_retries(run, "copy_part target", [&] {
      return task.target.copy_part(task.source, task.source_key, task.target_key, upload.upload_id(),
                                   number, range);
    });
    upload.add_part(number, std::move(etag));
  }
  with_retries(run, "complete_multipart target", [&] { return upload.complete(); });
}

}  // namespace blobferry
