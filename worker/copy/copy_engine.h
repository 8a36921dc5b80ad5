// Copies one object from a source Storage to a target Storage and proves it
// arrived intact: skip when already there, stream and hash, multipart for
// large objects, server-side copy when the target can read the source.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>

#include "common/base/retry_policy.h"
#include "common/storage/storage.h"
#include "worker/copy/part_buffer_pool.h"

namespace blobferry {

class CancellationToken;
class MultipartUpload;

struct CopyTask {
  Storage& source;
  Storage& target;
  std::string source_key;
  std::string target_key;
  std::optional<std::uint64_t> expected_size;
  std::string expected_md5;  // base64, ActiveStorage's checksum; empty when unknown
  std::string content_type;  // from the blob table; empty = keep the source's
  bool target_absent = false;  // a fresh listing showed the key missing on the target: skip the HEAD
  // When set, made current on every thread of the copy (see Storage): once it
  // is cancelled the copy throws Error reason "cancelled" within about a
  // second, retries and backoff included. Null: the caller's current token.
  const CancellationToken* cancel = nullptr;
};

struct CopyResult {
  enum class Status { kCopied, kSkipped };
  Status status = Status::kCopied;
  std::uint64_t bytes = 0;
  std::string md5;        // base64 of what landed, when known
  int attempts = 1;       // tries of all steps: 1 when nothing had to be retried
  bool server_side = false;
};

struct CopyEngineOptions {
  static constexpr std::uint64_t kMiB = 1024 * 1024;

  // Bytes per part of a streamed multipart copy; S3's minimum is 5 MiB (except
  // the last part). Raised per object when it would need more than the
  // target's most parts, capped at its largest part (copy_sizing.h).
  std::uint64_t part_size = 8 * kMiB;
  // Objects larger than this (or than the target's largest single PUT) go
  // multipart; nullopt means part_size.
  std::optional<std::uint64_t> multipart_threshold;
  // copy_object/copy_part when the target has a ServerSideCopier that can
  // read the source itself.
  bool server_side_copy = true;
  // Bytes per copy_part range when a server-side copy exceeds the limit below.
  std::uint64_t server_side_part_size = 512 * kMiB;
  // Larger objects are copied server-side part by part (UploadPartCopy), and
  // so are those over the target's own CopyObject limit (R2: 5 GiB - 5 MiB).
  // Tests lower it rather than copy 5 GiB.
  std::uint64_t server_side_single_copy_limit = 5ULL * 1024 * kMiB;
  // Fresh starts of a copy whose source changed under it (reason
  // "source_changed"), before that failure goes to the job's own retries.
  int source_change_restarts = 2;
  // Objects above the threshold whose MD5 is known up front (blob table or
  // single-part ETag) stream GET -> PUT through a pipe of stream_buffer bytes
  // as one PUT with Content-MD5: no part round trips, memory per copy is the
  // pipe. Unknown MD5s, and objects over the target's largest single PUT
  // (ChunkedWriter::size_limits()), go multipart when the target
  // has a ChunkedWriter; a target without one (Disk) always streams, hashing
  // on the way when the MD5 is unknown, so memory stays the pipe.
  bool stream_large = true;
  std::size_t stream_buffer = 1024 * 1024;
  // In-place retries (its options().retries is the worker's --retries) and backoff.
  RetryPolicy retry_policy{};
};

// Thread-safe: one engine serves every worker thread, sharing the Storage
// instances of a task. Memory is one buffer per copy in flight, at most
// max(part_size, multipart_threshold) each, reused across copies.
//
// Only head() and get() are ever called on a task's source.
class CopyEngine {
 public:
  explicit CopyEngine(CopyEngineOptions options = {});

  // Throws blobferry::Error when it gives up: kPermanent "not_found" when the
  // source key is missing, kIntegrity when size or MD5 keep mismatching,
  // kConfig when source and target are the same object, and whatever a step's
  // last retry threw otherwise.
  CopyResult copy(const CopyTask& task) const;

  const CopyEngineOptions& options() const { return options_; }

  // What copy() throws first for a task no attempt can copy (the same object
  // as source and target, an expected MD5 that is no MD5), before any request.
  static void check_task(const CopyTask& task);

  // Targets whose PUT answered without proving the MD5 it was sent (no MD5
  // ETag: nginx, SSE-KMS, SSE-C): later copies to them store the MD5 in
  // blobferry's metadata at once. Learnt by every copier of the process.
  bool target_withholds_md5(const Storage& target) const;
  void note_target_withholds_md5(const Storage& target) const;

 private:
  struct Run;
  struct Fetched;

  template <typename Step>
  auto with_retries(Run& run, const char* what, Step&& step) const -> decltype(step());

  void head_source(Run& run) const;
  std::optional<CopyResult> skip_if_present(Run& run) const;
  std::optional<CopyResult> copy_unsized(Run& run) const;
  bool can_copy_server_side(const Run& run) const;
  bool server_side_applies(Run& run) const;
  CopyResult copy_small(Run& run) const;
  CopyResult copy_multipart(Run& run) const;
  bool streams(const Run& run) const;
  CopyResult copy_streamed(Run& run) const;
  void complete_streamed_upload(Run& run, MultipartUpload& upload, const std::string& md5) const;
  CopyResult copy_once(const CopyTask& task) const;
  CopyResult copy_server_side(Run& run) const;
  std::string learn_source_md5(Run& run) const;
  void copy_parts_server_side(Run& run, const std::string& md5) const;
  void confirm_source_unchanged(Run& run) const;
  void store_md5_metadata(Run& run, const ObjectInfo& landed, const std::string& md5) const;
  std::string put_proven(Run& run, const std::string& buffer, const Metadata& source_metadata,
                         const std::string& md5) const;
  Fetched fetch(Run& run, std::string& buffer, std::optional<ByteRange> range,
                std::uint64_t expected_bytes) const;

  struct Streamed {
    std::uint64_t received = 0;
    std::string etag;  // the PUT's answer
    std::string md5;   // base64 of what passed; empty when not hashed
  };
  Streamed stream_once(Run& run, const PutOptions& put_options, bool hash) const;

  CopyEngineOptions options_;
  mutable PartBufferPool buffers_;
  // Targets whose streamed PUT answered without proving the MD5 it was sent
  // (no MD5 ETag): streamed copies to them hash on the way.
  mutable std::mutex md5_mutex_;
  mutable std::unordered_set<const Storage*> md5_withholding_targets_;
};

}  // namespace blobferry
