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

#include "common/base/cancellation.h"
#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/storage/chunked_writer.h"
#include "common/storage/server_side_copier.h"
#include "worker/copy/copy_sizing.h"
#include "worker/copy/multipart_upload.h"
#include "worker/copy/object_proof.h"
#include "worker/copy/stream_pipe.h"

namespace blobferry {
namespace {

Error source_changed(const Storage& source, const std::string& key, const std::string& now,
                     const std::string& was) {
  return Error(ErrorKind::kTransient, FailureReason::kSourceChanged,
               "source object '" + key + "' on " + source.describe() + " changed during the copy (ETag " + now +
                   ", was " + was + ")");
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

// The target's limits as its capabilities state them; a target without
// multipart takes any size in one put().
SizeLimits upload_limits(const StorageCapabilities& can) {
  return can.chunked_writer != nullptr ? can.chunked_writer->size_limits() : SizeLimits::unlimited();
}

SizeLimits copy_limits(const StorageCapabilities& can) {
  return can.server_side_copier != nullptr ? can.server_side_copier->size_limits() : SizeLimits{};
}

}  // namespace

// What one copy has learnt so far; lives on the calling thread's stack.
struct CopyEngine::Run {
  Run(const CopyTask& copy_task, StorageCapabilities can, const CopyEngineOptions& options)
      : task(copy_task), target_can(can), sizing(options, upload_limits(can), copy_limits(can)),
        size(copy_task.expected_size), md5(copy_task.expected_md5) {}

  const CopyTask& task;
  StorageCapabilities target_can;       // the target's optional capabilities, asked once
  CopySizing sizing;                    // single request or parts, within the target's limits
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

template <typename Step>
auto CopyEngine::with_retries(Run& run, const char* what, Step&& step) const -> decltype(step()) {
  // A retry after a pause first checks the worker is not stopping: the pause
  // may have been cut short by the cancellation itself.
  bool retrying = false;
  const auto attempt = [&] {
    if (retrying) CancellationToken::throw_if_current_cancelled(std::string(what) + " '" + run.task.source_key + "'");
    return step();
  };
  return options_.retry_policy.run(attempt, [&](const Error& error, int retry, std::chrono::milliseconds pause) {
    // A changed source restarts the whole copy (copy()), not this step.
    if (error.failure_reason() == FailureReason::kSourceChanged) throw error;
    spdlog::debug("{} '{}' failed ({}), retry {} in {} ms: {}", what, run.task.source_key,
                  to_string(error.kind()), retry, pause.count(), error.what());
    ++run.retries;
    retrying = true;
  });
}

void CopyEngine::check_task(const CopyTask& task) {
  refuse_same_object(task);
  check_expected_md5(task);
}

CopyResult CopyEngine::copy(const CopyTask& task) const {
  const CancellationToken::Scope cancellation(task.cancel ? task.cancel : CancellationToken::current());
  check_task(task);
  // A source that changed under a copy leaves nothing learnt about it valid:
  // start again from its HEAD; what was half-written is aborted or replaced.
  for (int restart = 0;; ++restart) {
    try {
      return copy_once(task);
    } catch (const Error& error) {
      if (error.failure_reason() != FailureReason::kSourceChanged || restart >= options_.source_change_restarts) throw;
      spdlog::info("copy of '{}' starts again: {}", task.source_key, error.what());
    }
  }
}

CopyResult CopyEngine::copy_once(const CopyTask& task) const {
  Run run(task, task.target.capabilities(), options_);
  if (!run.size) {
    if (auto copied = copy_unsized(run)) return *copied;
  }
  // Without a size neither the skip test nor the choice of path can be made.
  if (!run.size) head_source(run);
  if (auto skipped = skip_if_present(run)) return *skipped;
  if (server_side_applies(run)) {
    try {
      return copy_server_side(run);
    } catch (const Error& error) {
      // The service refused the copy itself (Spaces between clusters, a
      // server without CopyObject): the bytes can still be streamed.
      if (error.failure_reason() != FailureReason::kCopyRefused) throw;
      spdlog::info("'{}': {}; streaming instead", task.source_key, error.what());
    }
  }
  if (*run.size <= run.sizing.single_put_limit()) return copy_small(run);
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
  if (run.md5.empty()) run.md5 = proven_etag_md5(info);
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
  if (can_copy_server_side(run)) return std::nullopt;
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
  const std::uint64_t limit = run.sizing.single_put_limit();
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
    const std::string expected = run.md5.empty() ? proven_etag_md5(got.info) : run.md5;
    if (!expected.empty() && got.md5 != expected) {
      throw integrity_error("GET '" + task.source_key + "' on " + task.source.describe() + ": MD5 " + got.md5 +
                            ", expected " + expected);
    }
    return got;
  });
  if (!fetched) return std::nullopt;
  run.size = buffer.size();
  put_proven(run, buffer, fetched->info.metadata, fetched->md5);
  return CopyResult{CopyResult::Status::kCopied, buffer.size(), fetched->md5, run.attempts(), false};
}

bool CopyEngine::can_copy_server_side(const Run& run) const {
  const ServerSideCopier* copier = run.target_can.server_side_copier;
  return options_.server_side_copy && copier != nullptr && copier->can_copy_from(run.task.source);
}

bool CopyEngine::server_side_applies(Run& run) const {
  const CopyTask& task = run.task;
  if (!can_copy_server_side(run)) return false;
  // Over CopyObject's limit the copy goes in parts, which need multipart too.
  if (!run.sizing.fits_single_copy(*run.size) && run.target_can.chunked_writer == nullptr) return false;
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
    const std::string expected = run.md5.empty() ? proven_etag_md5(got.info) : run.md5;
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
  put_proven(run, buffer, source_metadata, fetched.md5);
  return CopyResult{CopyResult::Status::kCopied, buffer.size(), fetched.md5, run.attempts(), false};
}

// One PUT with Content-MD5 and the source's headers only; the MD5 goes into
// blobferry's metadata only for a target whose answer does not prove it
// (SSE-KMS, SSE-C, its own ETags), learnt from the first such answer, which
// is then written again with it.
std::string CopyEngine::put_proven(Run& run, const std::string& buffer, const Metadata& source_metadata,
                                   const std::string& md5) const {
  const CopyTask& task = run.task;
  bool with_md5 = target_withholds_md5(task.target);
  for (;;) {
    const PutOptions put_options{md5, target_metadata(source_metadata, task.content_type, with_md5 ? md5 : "")};
    std::string etag = with_retries(run, "PUT target", [&] {
      MemoryByteSource body(buffer);
      return task.target.put(task.target_key, body, put_options);
    });
    if (with_md5 || etag_md5(etag) == md5) return etag;
    note_target_withholds_md5(task.target);
    with_md5 = true;
  }
}

// A target without multipart (Disk) takes any object as one streamed put();
// one with it streams what a single PUT can carry and prove.
bool CopyEngine::streams(const Run& run) const {
  if (run.target_can.chunked_writer == nullptr) return true;
  return options_.stream_large && !run.md5.empty() && run.sizing.fits_single_put(*run.size);
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
  const CancellationToken* cancel = CancellationToken::current();
  bool stopped_by_put = false;  // the GET failed only because the PUT stopped reading
  std::thread producer([&, cancel] {
    const CancellationToken::Scope cancellation(cancel);
    try {
      const auto info = task.source.get(task.source_key, [&](std::string_view chunk) {
        if (result.received + chunk.size() > size) {
          throw integrity_error("GET '" + task.source_key + "' on " + task.source.describe() +
                                ": more than the expected " + std::to_string(size) + " bytes");
        }
        if (hash) md5.update(chunk);
        result.received += chunk.size();
        try {
          pipe.write(chunk);
        } catch (const Error&) {
          stopped_by_put = true;
          throw;
        }
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
    // The download's own error is the cause; one the abort caused is not
    // (a full Disk must fail as disk_full, not as a retryable network error).
    if (get_failure && !stopped_by_put) std::rethrow_exception(get_failure);
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
// Without an expected MD5 (only for a target that has no multipart) nothing
// can be sent up front: the bytes are hashed on the way and that MD5, with
// the size, is what the copy proves.
CopyResult CopyEngine::copy_streamed(Run& run) const {
  const CopyTask& task = run.task;
  if (!run.source) head_source(run);  // the PUT's headers go out before the first byte arrives
  // blobferry's MD5 metadata only where the target's answer cannot prove it.
  const PutOptions plain_options{run.md5, target_metadata(run.source->metadata, task.content_type, "")};
  const PutOptions md5_options{run.md5, target_metadata(run.source->metadata, task.content_type, run.md5)};
  const std::uint64_t size = *run.size;

  const std::uint64_t copied = with_retries(run, "streamed copy", [&] {
    if (run.md5.empty()) {
      const Streamed streamed = stream_once(run, plain_options, true);
      if (streamed.received != size) {
        throw integrity_error("streamed copy of '" + task.source_key + "': " + std::to_string(streamed.received) +
                              " bytes, expected " + std::to_string(size));
      }
      // A target whose etag is an MD5 must agree with what passed.
      const std::string stored = etag_md5(streamed.etag);
      if (!stored.empty() && stored != streamed.md5) {
        throw integrity_error("streamed copy of '" + task.source_key + "': " + task.target.describe() +
                              " stored MD5 " + stored + ", sent " + streamed.md5);
      }
      run.md5 = streamed.md5;
      return streamed.received;
    }
    bool hashed = target_withholds_md5(task.target);
    Streamed streamed = stream_once(run, hashed ? md5_options : plain_options, hashed);
    std::string landed;  // the MD5 proven for what the target stored; empty while nothing proves it
    if (hashed) {
      landed = streamed.md5;
    } else if (etag_md5(streamed.etag) == run.md5) {
      landed = run.md5;
    }
    if (landed.empty()) {
      note_target_withholds_md5(task.target);
      hashed = true;
      streamed = stream_once(run, md5_options, hashed);
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
  ChunkedWriter& writer = *run.target_can.chunked_writer;  // streams() sent every other target elsewhere
  if (!run.source) head_source(run);
  const std::uint64_t size = *run.size;
  const std::uint64_t part_size = run.sizing.part_size(size);

  // The whole-object MD5 goes into the metadata up front (S3 cannot add it
  // after completion), so it is only written when known and then enforced.
  const PutOptions create_options{"", target_metadata(run.source->metadata, task.content_type, run.md5)};
  std::string upload_id = with_retries(run, "create_multipart target", [&] {
    return writer.create_multipart(task.target_key, create_options);
  });
  MultipartUpload upload(writer, task.target.describe(), task.target_key, std::move(upload_id),
                         options_.retry_policy);

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
        throw source_changed(task.source, task.source_key, got.info.etag, run.source->etag);
      }
      return got;
    });
    whole.update(buffer);
    total += buffer.size();
    std::string etag = with_retries(run, "upload_part target", [&] {
      MemoryByteSource body(buffer);
      return writer.upload_part(task.target_key, upload.upload_id(), number, body, part.md5);
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
  if (run.md5.empty()) {
    // The MD5 was learnt only now, after the metadata went out with the
    // upload's creation: store it, so the "…-N" object stays provable.
    const std::optional<ObjectInfo> landed =
        with_retries(run, "HEAD target", [&] { return task.target.head(task.target_key); });
    if (landed && !proves_md5(*landed, md5)) store_md5_metadata(run, *landed, md5);
  }
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

// No byte passes through here, so what proves the copy is the source's MD5
// (its single-part ETag, or learnt by hashing it once) and a copy pinned to
// the source's ETag; a target ETag that cannot show it (a multipart source's
// "-N", which RGW keeps, or SSE) gets the MD5 stored as blobferry's metadata.
CopyResult CopyEngine::copy_server_side(Run& run) const {
  const CopyTask& task = run.task;
  const std::uint64_t size = *run.size;
  const std::string proven = proven_etag_md5(*run.source);
  const std::string md5 = proven.empty() ? learn_source_md5(run) : proven;
  if (!run.md5.empty() && md5 != run.md5) {
    throw integrity_error("server-side copy of '" + task.source_key + "' from " + task.source.describe() +
                          ": source MD5 " + md5 + ", expected " + run.md5);
  }
  if (run.sizing.fits_single_copy(size)) {
    CopyOptions copy_options{run.source->etag, std::nullopt};
    // A single-part source keeps its headers exactly; only what cannot be
    // proven from an ETag carries the MD5 along.
    if (proven.empty()) copy_options.metadata = target_metadata(run.source->metadata, task.content_type, md5);
    with_retries(run, "copy_object target", [&] {
      return run.target_can.server_side_copier->copy_object(task.source, task.source_key, task.target_key,
                                                            copy_options);
    });
  } else {
    copy_parts_server_side(run, md5);
  }

  const ObjectInfo landed = with_retries(run, "HEAD target", [&] {
    std::optional<ObjectInfo> found = task.target.head(task.target_key);
    if (!found) {
      throw integrity_error("server-side copy of '" + task.source_key + "' to " +
                            task.target.describe() + ": target object missing afterwards");
    }
    return *std::move(found);
  });
  if (landed.size != size) {
    throw integrity_error("server-side copy of '" + task.source_key + "' to " +
                          task.target.describe() + ": " + std::to_string(landed.size) +
                          " bytes, expected " + std::to_string(size));
  }
  if (!proves_md5(landed, md5)) {
    const std::string landed_md5 = proven_etag_md5(landed);
    if (!landed_md5.empty()) {
      throw integrity_error("server-side copy of '" + task.source_key + "' to " +
                            task.target.describe() + ": MD5 " + landed_md5 + ", expected " + md5);
    }
    store_md5_metadata(run, landed, md5);
  }
  return CopyResult{CopyResult::Status::kCopied, size, md5, run.attempts(), true};
}

// One GET of the whole source, hashed and dropped, pinned to the ETag its
// HEAD gave: the price of proving a copy whose bytes never pass here.
std::string CopyEngine::learn_source_md5(Run& run) const {
  const CopyTask& task = run.task;
  return with_retries(run, "GET source (hash)", [&] {
    Digest md5 = Digest::md5();
    std::uint64_t received = 0;
    const std::optional<ObjectInfo> info = task.source.get(task.source_key, [&](std::string_view chunk) {
      received += chunk.size();
      md5.update(chunk);
    });
    if (!info) throw source_missing(task.source, task.source_key);
    if (info->etag != run.source->etag) {
      throw source_changed(task.source, task.source_key, info->etag, run.source->etag);
    }
    if (received != *run.size) {
      throw integrity_error("GET '" + task.source_key + "' on " + task.source.describe() + ": " +
                            std::to_string(received) + " bytes, expected " + std::to_string(*run.size));
    }
    return base64_encode(md5.finish());
  });
}

void CopyEngine::copy_parts_server_side(Run& run, const std::string& md5) const {
  const CopyTask& task = run.task;
  ChunkedWriter& writer = *run.target_can.chunked_writer;  // server_side_applies() asked for it
  ServerSideCopier& copier = *run.target_can.server_side_copier;
  const std::uint64_t size = *run.size;
  const std::uint64_t part_size = run.sizing.copy_part_size(size);
  // The result is a "…-N" object: only the metadata can prove its MD5.
  const PutOptions create_options{"", target_metadata(run.source->metadata, task.content_type, md5)};
  std::string upload_id = with_retries(run, "create_multipart target", [&] {
    return writer.create_multipart(task.target_key, create_options);
  });
  MultipartUpload upload(writer, task.target.describe(), task.target_key, std::move(upload_id),
                         options_.retry_policy);
  const CopyOptions pinned{run.source->etag, std::nullopt};
  int number = 1;
  for (std::uint64_t offset = 0; offset < size; offset += part_size, ++number) {
    const ByteRange range{offset, std::min(offset + part_size, size) - 1};
    std::string etag = with_retries(run, "copy_part target", [&] {
      return copier.copy_part(task.source, task.source_key, task.target_key, upload.upload_id(), number, range,
                              pinned);
    });
    upload.add_part(number, std::move(etag));
  }
  confirm_source_unchanged(run);
  with_retries(run, "complete_multipart target", [&] { return upload.complete(); });
}

// Servers that ignore x-amz-copy-source-if-match on UploadPartCopy (RGW 16)
// would mix parts of two versions: the ETag after the last part, unchanged,
// shows that every part came from the version the copy started with.
void CopyEngine::confirm_source_unchanged(Run& run) const {
  const CopyTask& task = run.task;
  const std::optional<ObjectInfo> now =
      with_retries(run, "HEAD source", [&] { return task.source.head(task.source_key); });
  if (!now) throw source_missing(task.source, task.source_key);
  if (now->etag != run.source->etag) throw source_changed(task.source, task.source_key, now->etag, run.source->etag);
}

// Adds the MD5 to an object already on the target by copying it onto itself
// with its headers replaced, pinned to its ETag so nothing written meanwhile
// (the app's mirror) is overwritten. Beyond a single copy's size, it stays
// proven by this copy only.
void CopyEngine::store_md5_metadata(Run& run, const ObjectInfo& landed, const std::string& md5) const {
  const CopyTask& task = run.task;
  ServerSideCopier* copier = run.target_can.server_side_copier;
  if (!run.sizing.copy_object_accepts(landed.size) || copier == nullptr || !copier->can_copy_from(task.target)) {
    spdlog::warn("'{}' on {} was copied and verified, but its MD5 cannot be stored with it: validate needs --deep",
                 task.target_key, task.target.describe());
    return;
  }
  const CopyOptions replace{landed.etag, target_metadata(landed.metadata, "", md5)};
  with_retries(run, "copy_object target (MD5 metadata)", [&] {
    return copier->copy_object(task.target, task.target_key, task.target_key, replace);
  });
}

}  // namespace blobferry
