// Proves every object of a migration is on the target with the right size and
// checksum, by listing the target (one request per 1,000 keys) rather than
// asking for each key.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/queue/job.h"
#include "common/db/pg_connection.h"
#include "common/storage/storage.h"
#include "enqueuer/planning/migration_plan.h"

namespace blobferry {

enum class Verdict { kVerified, kMissing, kSizeMismatch, kChecksumMismatch, kNeedsHead };

// Judges a listed (or HEAD) target object against what the source says.
// found is null when the key is not on the target. expected_md5 is base64
// and may be empty (then size alone is compared). An ETag equal to the MD5
// proves it; otherwise (multipart, encrypted, or a server with its own ETag
// scheme) the MD5 blobferry stored in metadata decides, which a listing does
// not carry: with headed false that answer is kNeedsHead.
Verdict judge(std::uint64_t expected_size, const std::string& expected_md5, const ObjectInfo* found,
              bool headed = false);

// Hands each object of target under prefix to each, page by page (until
// *stop); adds the requests made to list_requests.
void list_partition(Storage& target, const std::string& prefix, const std::atomic<bool>& stop,
                    std::uint64_t& list_requests, const std::function<void(ObjectInfo&&)>& each);

struct ValidateOptions {
  bool deep = false;  // download and hash every object
  int page_size = 1000;
};

struct ValidationProblem {
  std::string key;
  std::string blob_id;
  std::string what;  // "missing", "size 10 on target, 12 expected", …
};

struct ValidationResult {
  std::uint64_t checked = 0;
  std::uint64_t verified = 0;
  std::uint64_t missing = 0;
  std::uint64_t mismatched = 0;
  std::uint64_t unverifiable = 0;  // multipart ETag, no stored MD5, no --deep
  std::uint64_t list_requests = 0;
  std::uint64_t head_requests = 0;
  std::uint64_t get_requests = 0;
  // Rows recorded as verified after the pass, this one's and earlier ones',
  // where the source records them (blobs); a pass checks only the rest.
  std::optional<std::uint64_t> verified_total;
  bool all_verified() const { return checked == verified; }
};

class Validator {
 public:
  // on_problem sees every object that is not verified and the job that would
  // copy it again (for --requeue); it may be empty.
  using ProblemSink = std::function<void(const ValidationProblem&, const JobObject&)>;

  Validator(MigrationPlan plan, Storage& source, Storage& target, ValidateOptions options, ProblemSink on_problem);

  // Blob table migrations: partitions the key space by the first character
  // after the key prefix, lists the target once per partition, compares with
  // the rows, and records verified ids (VerificationStore). Only rows not yet
  // verified are checked, so --wait re-runs get cheaper.
  ValidationResult validate_blobs(PgConnection& db, const std::atomic<bool>& stop);
  // Listing migrations: walks source and target listings side by side.
  ValidationResult validate_listing(const std::atomic<bool>& stop);
  // Manifest migrations: one HEAD per entry.
  ValidationResult validate_manifest(const std::atomic<bool>& stop);

 private:
  struct Expected {
    std::string key;
    std::string blob_id;
    std::uint64_t size = 0;
    std::string md5;
    bool size_known = true;
  };
  // Settles one object; returns true when verified. found may be null.
  bool settle(const Expected& expected, const ObjectInfo* found, ValidationResult& result);
  std::string hash_of_target(const std::string& key, ValidationResult& result);
  void report(const Expected& expected, const std::string& what, ValidationResult& result);

  MigrationPlan plan_;
  Storage& source_;
  Storage& target_;
  ValidateOptions options_;
  ProblemSink on_problem_;
};

}  // namespace blobferry
