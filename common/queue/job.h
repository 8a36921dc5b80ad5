// The unit of work a queue carries: copy one object or a batch, list a prefix, or copy one part of a giant object.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace blobferry {

enum class JobType {
  kCopy,     // copy `objects` from source to target
  kListing,  // list `listing` on the source and enqueue copy jobs for what it finds
  kPart,     // copy one part range of `objects[0]` into the open multipart upload `part`
};

// One object of a copy job and what the planner already knows about it; every
// unknown field stays empty so the payload stays small.
struct JobObject {
  std::string key;
  std::string target_key;                 // empty: same as key (Paperclip migrations set a new key)
  std::optional<std::uint64_t> size;      // bytes
  std::string checksum;                   // base64 MD5, ActiveStorage's format; empty when unknown
  std::string content_type;
  std::optional<std::int64_t> blob_id;    // active_storage_blobs.id
  std::string record;                     // Paperclip migrations: the record, "User#42", for reports
  bool target_absent = false;  // a listing of the target just showed the key missing: no HEAD needed

  const std::string& destination_key() const { return target_key.empty() ? key : target_key; }
  bool operator==(const JobObject&) const = default;
};

// A slice of the source bucket to list: the control plane splits big buckets
// into many of these and workers run them.
struct ListingSpec {
  std::string prefix;
  std::string start_after;
  std::string continuation_token;
  int delimiter_depth = 0;  // how many more "/" levels to split into child listing jobs before listing flat
  std::string end_at;       // inclusive upper bound of the range; empty: to the end of the prefix

  bool operator==(const ListingSpec&) const = default;
};

// One part of a giant object's multipart upload: any worker may run it. The
// range follows from the number and part_size; the source ETag pins every
// part to one version of the source.
struct PartSpec {
  std::string upload_id;
  int number = 0;               // 1-based
  int count = 0;                // parts of the upload
  std::uint64_t part_size = 0;  // bytes of every part but the last
  std::string source_etag;      // empty when the source reports none

  bool operator==(const PartSpec&) const = default;
};

// Jobs name services only: credentials never travel through the queue.
struct Job {
  std::string id;  // unique; assigned at enqueue when empty (see new_job_id)
  JobType type = JobType::kCopy;
  std::string migration;
  std::string source;  // service names of storage.yml
  std::string target;
  std::vector<JobObject> objects;  // copy jobs: one object or a batch of small ones
  ListingSpec listing;             // listing jobs
  PartSpec part;                   // part jobs (objects then holds the one object, its size known)
  int attempts = 0;    // failed tries so far (retry_later increments it)
  int recoveries = 0;  // times a dead worker's lease expired on it (the queue increments it)

  bool operator==(const Job&) const = default;
};

// A copy job holds at most this many objects; decode_job rejects bigger batches.
inline constexpr std::size_t kMaxBatchObjects = 1000;
// S3's limit on the parts of one multipart upload.
inline constexpr int kMaxUploadParts = 10'000;
// Deepest delimiter split a listing job may ask for.
inline constexpr int kMaxDelimiterDepth = 16;

// Compact JSON with short field names; empty and unknown fields are omitted.
std::string encode_job(const Job& job);

// Throws Error(kPermanent, "malformed_job", …) naming what is wrong: not JSON,
// wrong types, missing fields, an empty key, an unknown type, a batch over
// kMaxBatchObjects, a part job whose number, count, part size and object
// size do not fit together. Unknown fields are ignored so newer enqueuers can add some.
Job decode_job(std::string_view payload);

// 16 lowercase hex digits from a random 64-bit number.
std::string new_job_id();

// The key a failure of object `index` of `job` is recorded under: the object's
// key for a copy job, "listing:<prefix>[ after <start_after>]" for a listing
// job (index ignored).
std::string failure_key(const Job& job, std::size_t index);

// Which object of `job` a failure_key() names; nullopt when none does.
std::optional<std::size_t> find_object_index(const Job& job, std::string_view key);

// The job that retries only object `index` of `job`, with attempts and
// recoveries reset: what a failure record keeps so `requeue` retries exactly
// the failed keys. A listing job is returned whole (reset likewise).
Job retry_job_for(const Job& job, std::size_t index);

// "2024-05-01T12:00:00Z": the time failure and dead records carry.
std::string utc_timestamp(std::chrono::system_clock::time_point time);

// CLI boundary check: letters, digits, '-', '_', '.', 1 to 64 characters.
// Throws Error of kind kConfig naming the name and the rule.
void validate_migration_name(std::string_view name);

}  // namespace blobferry
