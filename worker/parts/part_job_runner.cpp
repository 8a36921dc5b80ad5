// Giant objects as part jobs: the coordinator that opens the upload and queues one job per part, the part
// jobs any worker runs, and the completion the last recorded part triggers.
#include "worker/parts/part_job_runner.h"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/base/error.h"
#include "common/queue/job_queue.h"
#include "common/queue/upload_records.h"
#include "common/storage/chunked_writer.h"
#include "common/storage/server_side_copier.h"
#include "common/storage/storage.h"
#include "worker/copy/object_proof.h"
#include "worker/parts/part_plan.h"

namespace blobferry {
namespace {

Error integrity_error(const std::string& message) { return Error(ErrorKind::kIntegrity, FailureReason::kIntegrity, message); }

Error source_changed(const std::string& key, const std::string& now, const std::string& was) {
  return Error(ErrorKind::kTransient, FailureReason::kSourceChanged,
               "source object '" + key + "' changed during its part jobs (ETag " + now + ", was " + was + ")");
}

// An ETag the source answers must be the one the parts are pinned to; a
// source that reports none (Disk without a cached hash) is proven by the MD5s.
void check_pin(const ObjectInfo& info, const UploadRecord& record) {
  if (!info.etag.empty() && !record.source_etag.empty() && info.etag != record.source_etag) {
    throw source_changed(record.source_key, info.etag, record.source_etag);
  }
}

JobOutcome nothing() { return JobOutcome{}; }  // kComplete with no object: counts nothing

JobOutcome copied(const UploadRecord& record) {
  JobOutcome decided;
  decided.outcome = Outcome::copied(record.source_key, record.size);
  decided.copied = 1;
  decided.bytes_copied = record.size;
  return decided;
}

}  // namespace

PartJobRunner::PartJobRunner(PartJobOptions options, const RetryPolicy& policy)
    : options_(options), policy_(policy) {}

template <typename Step>
auto PartJobRunner::retrying(const char* what, const std::string& key, Step&& step) const -> decltype(step()) {
  return policy_.run(step, [&](const Error& error, int retry, std::chrono::milliseconds pause) {
    // Both mean the upload must start over, which no retry of this step does.
    if (error.failure_reason() == FailureReason::kSourceChanged || upload_gone(error)) throw error;
    spdlog::debug("{} '{}' failed ({}), retry {} in {} ms", what, key, error.what(), retry, pause.count());
  });
}

bool PartJobRunner::splits(JobQueue& queue, const Job& job, Storage& source, Storage& target) const {
  if (options_.threshold == 0 || job.type != JobType::kCopy || job.objects.size() != 1) return false;
  const JobObject& object = job.objects[0];
  if (!object.size || *object.size <= options_.threshold) return false;
  const StorageCapabilities can = target.capabilities();
  if (can.chunked_writer == nullptr) return false;
  if (options_.server_side_copy && can.server_side_copier != nullptr && can.server_side_copier->can_copy_from(source)) {
    return false;
  }
  return UploadRecords::of(queue) != nullptr;
}

std::optional<JobOutcome> PartJobRunner::split(JobQueue& queue, const Job& job, Storage& source,
                                               Storage& target) const {
  const JobObject& object = job.objects.at(0);
  const std::string& key = object.destination_key();
  std::unique_ptr<UploadRecords> records = UploadRecords::of(queue);
  ChunkedWriter& writer = *target.capabilities().chunked_writer;

  const ObjectInfo head = retrying("HEAD source", object.key, [&] {
    std::optional<ObjectInfo> found = source.head(object.key);
    if (!found) {
      throw Error(ErrorKind::kPermanent, FailureReason::kNotFound,
                  "source object '" + object.key + "' not found on " + source.describe(), 404);
    }
    return *std::move(found);
  });
  if (head.size != *object.size) {
    throw integrity_error("HEAD '" + object.key + "' on " + source.describe() + ": " + std::to_string(head.size) +
                          " bytes, expected " + std::to_string(*object.size));
  }
  const std::string md5 = object.checksum.empty() ? proven_etag_md5(head) : object.checksum;
  if (md5.empty()) return std::nullopt;  // nothing to prove the whole object by: the engine hashes as it copies

  std::optional<UploadRecord> existing = records->find(key);
  const std::optional<ObjectInfo> there = retrying("HEAD target", key, [&] { return target.head(key); });
  if (there && there->size == head.size && proves_md5(*there, md5)) {
    if (existing && records->close(*existing)) abort_quietly(target, *existing);
    JobOutcome decided;
    decided.outcome = Outcome::skipped(object.key, head.size);
    decided.skipped = 1;
    decided.bytes_skipped = head.size;
    return decided;
  }
  if (existing) {
    const bool same = existing->source_etag == head.etag && existing->size == head.size && existing->md5 == md5 &&
                      existing->source == job.source && existing->target == job.target;
    if (same) return resume(*records, *existing, job, queue, source, target);
    spdlog::info("'{}': recorded upload {} is of another source version; starting over", key, existing->upload_id);
    if (records->close(*existing)) abort_quietly(target, *existing);
  }

  const PartPlan plan(head.size, options_.part_size);
  const PutOptions create_options{"", target_metadata(head.metadata, object.content_type, md5)};
  UploadRecord record;
  record.target_key = key;
  record.upload_id = retrying("create_multipart target", key, [&] { return writer.create_multipart(key, create_options); });
  record.source = job.source;
  record.target = job.target;
  record.source_key = object.key;
  record.size = head.size;
  record.part_size = plan.part_size();
  record.part_count = plan.count();
  record.source_etag = head.etag;
  record.md5 = md5;
  if (!records->open(record)) {
    // Another coordinator of the same object got there first: its upload stands.
    abort_quietly(target, record);
    return nothing();
  }
  std::vector<int> numbers(static_cast<std::size_t>(plan.count()));
  for (int n = 1; n <= plan.count(); ++n) numbers[static_cast<std::size_t>(n - 1)] = n;
  queue.push(plan.jobs(job, record.upload_id, record.source_etag, numbers));
  records->mark_pushed(record);
  spdlog::info("'{}': {} bytes as {} part jobs of {} bytes (upload {})", key, record.size, record.part_count,
               record.part_size, record.upload_id);
  return nothing();
}

// A coordinator run again (its worker was killed, or the job was requeued):
// the server's list of parts says which need no upload.
JobOutcome PartJobRunner::resume(UploadRecords& records, const UploadRecord& record, const Job& job, JobQueue& queue,
                                 Storage& source, Storage& target) const {
  if (records.pushed(record)) return nothing();  // its part jobs are queued, running, or done
  ChunkedWriter& writer = *target.capabilities().chunked_writer;
  std::vector<CompletedPart> listed;
  try {
    listed = retrying("ListParts target", record.target_key, [&] { return writer.list_parts(record.target_key, record.upload_id); });
  } catch (const Error& error) {
    if (!upload_gone(error)) throw;
    return start_over(records, record, job, target, "upload gone");
  }
  std::set<int> on_server;
  for (const CompletedPart& part : listed) {
    // Uploaded with Content-MD5 before its worker died: the server checked it.
    // Its ETag is the part's MD5 where the target says so (not under SSE).
    if (part.number < 1 || part.number > record.part_count) continue;
    on_server.insert(part.number);
    if (!records.has_part(record, part.number)) {
      records.record_part(record, part.number, RecordedPart{part.etag, etag_md5(part.etag)});
    }
  }
  const PartPlan plan(record.size, record.part_size);
  std::vector<int> missing;
  for (int n = 1; n <= record.part_count; ++n) {
    if (!on_server.contains(n) && !records.has_part(record, n)) missing.push_back(n);
  }
  spdlog::info("'{}': upload {} resumed, {} of {} parts to upload", record.target_key, record.upload_id,
               missing.size(), record.part_count);
  if (missing.empty()) return finish(records, record, plan.jobs(job, record.upload_id, record.source_etag, {1})[0],
                                     queue, source, target);
  queue.push(plan.jobs(job, record.upload_id, record.source_etag, missing));
  records.mark_pushed(record);
  return nothing();
}

JobOutcome PartJobRunner::run_part(JobQueue& queue, const Job& job, Storage& source, Storage& target) const {
  std::unique_ptr<UploadRecords> records = UploadRecords::of(queue);
  if (!records) throw config_error("part jobs need the Redis queue; this queue cannot run them");
  ChunkedWriter* writer = target.capabilities().chunked_writer;
  if (writer == nullptr) throw config_error("part job for " + target.describe() + ", which has no multipart upload");
  const JobObject& object = job.objects.at(0);
  const std::optional<UploadRecord> found = records->find(object.destination_key());
  if (!found || found->upload_id != job.part.upload_id) return nothing();  // its upload was completed or started over
  const UploadRecord& record = *found;
  const int number = job.part.number;

  RecordedPart part;
  if (!records->has_part(record, number)) {
    const PartPlan plan = PartPlan::of(job);
    const ByteRange range = plan.range(number);
    const std::uint64_t length = range.last - range.first + 1;
    std::string buffer;
    buffer.reserve(length);
    try {
      const std::string md5 = retrying("GET source part", object.key, [&] {
        buffer.clear();
        Digest digest = Digest::md5();
        const std::optional<ObjectInfo> info = source.get(object.key, [&](std::string_view chunk) {
          if (buffer.size() + chunk.size() > length) {
            throw integrity_error("GET '" + object.key + "' part " + std::to_string(number) + ": more than " +
                                  std::to_string(length) + " bytes");
          }
          buffer.append(chunk);
          digest.update(chunk);
        }, range);
        if (!info) {
          throw Error(ErrorKind::kPermanent, FailureReason::kNotFound,
                      "source object '" + object.key + "' not found on " + source.describe(), 404);
        }
        check_pin(*info, record);
        if (buffer.size() != length) {
          throw integrity_error("GET '" + object.key + "' part " + std::to_string(number) + ": " +
                                std::to_string(buffer.size()) + " bytes, expected " + std::to_string(length));
        }
        return base64_encode(digest.finish());
      });
      part.md5 = md5;
      part.etag = retrying("upload_part target", record.target_key, [&] {
        records->note_upload(record, number);
        MemoryByteSource body(buffer);
        return writer->upload_part(record.target_key, record.upload_id, number, body, md5);
      });
    } catch (const Error& error) {
      if (error.failure_reason() == FailureReason::kSourceChanged) return start_over(*records, record, job, target, error.what());
      if (upload_gone(error)) return start_over(*records, record, job, target, "upload gone: " + std::string(error.what()));
      // An upload aborted or completed meanwhile may fail its parts in other
      // ways (a reset, a 5xx): a job whose upload is no longer recorded is
      // over, not worth a retry.
      const std::optional<UploadRecord> now = records->find(record.target_key);
      if (!now || now->upload_id != record.upload_id) return nothing();
      throw;
    }
  }
  // Recording an already recorded part changes nothing and reads the count.
  const std::optional<UploadRecords::Recorded> recorded = records->record_part(record, number, part);
  if (!recorded) return nothing();
  if (recorded->done < record.part_count) return nothing();
  return finish(*records, record, job, queue, source, target);
}

// Every part is recorded: confirm, prove, complete, count once.
JobOutcome PartJobRunner::finish(UploadRecords& records, const UploadRecord& record, const Job& job, JobQueue& queue,
                                 Storage& source, Storage& target) const {
  ChunkedWriter& writer = *target.capabilities().chunked_writer;
  const auto landed_proven = [&] {
    const std::optional<ObjectInfo> there = retrying("HEAD target", record.target_key, [&] { return target.head(record.target_key); });
    return there && there->size == record.size && proves_md5(*there, record.md5);
  };
  std::vector<CompletedPart> listed;
  try {
    listed = retrying("ListParts target", record.target_key, [&] { return writer.list_parts(record.target_key, record.upload_id); });
  } catch (const Error& error) {
    if (!upload_gone(error)) throw;
    // Completed by a run whose worker died before closing the record?
    if (landed_proven()) return records.close(record) ? copied(record) : nothing();
    return start_over(records, record, job, target, "upload gone before completion");
  }
  std::set<int> on_server;
  for (const CompletedPart& part : listed) on_server.insert(part.number);
  const std::map<int, RecordedPart> recorded = records.parts(record);
  std::vector<int> missing;
  for (int n = 1; n <= record.part_count; ++n) {
    if (!on_server.contains(n) || !recorded.contains(n)) missing.push_back(n);
  }
  if (!missing.empty()) {
    // Recorded but not on the server: upload those again; their jobs finish.
    for (const int n : missing) records.forget_part(record, n);
    queue.push(PartPlan::of(job).jobs(PartPlan::copy_job_of(job), record.upload_id, record.source_etag, missing));
    spdlog::warn("'{}': {} recorded parts missing from upload {}; uploading them again", record.target_key,
                 missing.size(), record.upload_id);
    return nothing();
  }
  try {
    prove_source(records, record, source);
  } catch (const Error& error) {
    if (error.failure_reason() == FailureReason::kSourceChanged) return start_over(records, record, job, target, error.what());
    if (error.kind() == ErrorKind::kIntegrity && records.close(record)) abort_quietly(target, record);
    throw;
  }
  std::vector<CompletedPart> parts;
  parts.reserve(recorded.size());
  for (const auto& [number, part] : recorded) parts.push_back(CompletedPart{number, part.etag});
  try {
    retrying("complete_multipart target", record.target_key,
             [&] { return writer.complete_multipart(record.target_key, record.upload_id, parts); });
  } catch (const Error& error) {
    if (!upload_gone(error) || !landed_proven()) {
      if (upload_gone(error)) return start_over(records, record, job, target, "upload gone while completing");
      throw;
    }
  }
  if (!landed_proven()) {
    throw integrity_error("'" + record.target_key + "' on " + target.describe() + ": after completing upload " +
                          record.upload_id + " the object does not show " + std::to_string(record.size) +
                          " bytes with MD5 " + record.md5);
  }
  if (!records.close(record)) return nothing();  // another run closed it and counted it
  spdlog::info("'{}': {} parts completed, MD5 {} proven", record.target_key, record.part_count, record.md5);
  return copied(record);
}

// The bytes the parts were read from, hashed in order on this worker: the
// whole MD5 must be the job's checksum and each part's the one recorded with
// its Content-MD5, so the object about to be assembled is that checksum's.
void PartJobRunner::prove_source(UploadRecords& records, const UploadRecord& record, Storage& source) const {
  const std::map<int, RecordedPart> recorded = records.parts(record);
  const PartPlan plan(record.size, record.part_size);
  retrying("GET source (prove)", record.source_key, [&] {
    Digest whole = Digest::md5();
    Digest part = Digest::md5();
    std::uint64_t received = 0;
    int number = 1;
    std::uint64_t part_end = plan.range(1).last + 1;
    const auto close_part = [&] {
      const std::string md5 = base64_encode(part.finish());
      const auto found = recorded.find(number);
      if (found != recorded.end() && !found->second.md5.empty() && found->second.md5 != md5) {
        throw integrity_error("part " + std::to_string(number) + " of '" + record.source_key + "' has MD5 " + md5 +
                              " on the source, " + found->second.md5 + " as uploaded");
      }
      part = Digest::md5();
      ++number;
      if (number <= plan.count()) part_end = plan.range(number).last + 1;
    };
    const std::optional<ObjectInfo> info = source.get(record.source_key, [&](std::string_view chunk) {
      while (!chunk.empty()) {
        if (received >= record.size) throw integrity_error("GET '" + record.source_key + "': more than " + std::to_string(record.size) + " bytes");
        const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), part_end - received));
        whole.update(chunk.substr(0, take));
        part.update(chunk.substr(0, take));
        received += take;
        chunk.remove_prefix(take);
        if (received == part_end) close_part();
      }
    });
    if (!info) {
      throw Error(ErrorKind::kPermanent, FailureReason::kNotFound, "source object '" + record.source_key + "' not found", 404);
    }
    check_pin(*info, record);
    if (received != record.size) {
      throw integrity_error("GET '" + record.source_key + "': " + std::to_string(received) + " bytes, expected " +
                            std::to_string(record.size));
    }
    const std::string md5 = base64_encode(whole.finish());
    if (md5 != record.md5) {
      throw integrity_error("'" + record.source_key + "' has MD5 " + md5 + ", expected " + record.md5);
    }
    return 0;
  });
}

// Drops the upload and queues the object's copy job afresh; only the run
// whose close() wins does, so one vanished upload restarts the object once.
JobOutcome PartJobRunner::start_over(UploadRecords& records, const UploadRecord& record, const Job& job,
                                     Storage& target, const std::string& why) const {
  if (!records.close(record)) return nothing();
  spdlog::warn("'{}': upload {} starts over: {}", record.target_key, record.upload_id, why);
  abort_quietly(target, record);
  JobOutcome decided;
  decided.action = JobOutcome::Action::kPushAndComplete;
  decided.again = PartPlan::copy_job_of(job);
  decided.again.id.clear();
  return decided;
}

void PartJobRunner::abort_quietly(Storage& target, const UploadRecord& record) const {
  try {
    policy_.run([&] { target.capabilities().chunked_writer->abort_multipart(record.target_key, record.upload_id); });
  } catch (const Error& error) {
    spdlog::warn("abort of upload {} of '{}' on {} failed, its parts are left to the bucket's lifecycle rule: {}",
                 record.upload_id, record.target_key, target.describe(), error.what());
  }
}

}  // namespace blobferry
