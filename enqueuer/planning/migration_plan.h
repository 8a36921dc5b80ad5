// What a migration moves, stored with its queue so every later command
// (validate, switch, status, a resumed enqueue) agrees on it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/queue/job_queue.h"
#include "enqueuer/sources/blobs/blob_table.h"

namespace blobferry {

// --source paperclip: which column set of which table, and where Paperclip put the files.
struct PaperclipSpec {
  std::string table;        // "users"
  std::string attachment;   // "avatar": the <attachment>_file_name columns
  std::string record_type;  // "User", written to active_storage_attachments.record_type
  std::string path;         // Paperclip's :path template
  std::string style = "original";
  std::string hash_secret;  // :hash only; never stored with the plan (it is a secret)

  bool operator==(const PaperclipSpec&) const = default;
};

struct MigrationPlan {
  std::string migration;
  std::string source = "blobs";  // the --source name (SourceRegistry)
  std::string from;  // service names of storage.yml
  std::string to;
  BlobFilter filter;     // --source blobs
  // --source blobs: also list variants/<key>/ under each blob, the variant
  // files pre-6.1 Rails wrote without blob rows of their own.
  bool include_untracked_variants = false;
  std::string prefix;    // --source listing
  std::string manifest;  // --source manifest: the file's path, for the record
  PaperclipSpec paperclip;  // --source paperclip
  std::int64_t started_at = 0;  // epoch seconds of the first enqueue

  // An empty job of this migration (its name and services filled in).
  Job new_job(JobType type = JobType::kCopy) const;

  std::string to_json() const;
  static MigrationPlan from_json(const std::string& json);  // throws Error kConfig when unreadable
};

// The plan of an existing migration, if any.
std::optional<MigrationPlan> load_plan(JobQueue& queue);
// Stores `plan` for a new migration, or checks it matches the stored one
// (same source, services and filters); a mismatch is a kConfig error that
// tells the user to pick another --migration name.
MigrationPlan save_or_check_plan(JobQueue& queue, const MigrationPlan& plan);

}  // namespace blobferry
