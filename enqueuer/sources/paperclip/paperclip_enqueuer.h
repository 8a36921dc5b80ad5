// Turns a table's Paperclip columns into copy jobs: each file gets an
// ActiveStorage key, recorded in blobferry's bookkeeping before its job is
// queued, so a re-run after a crash reuses it.
#pragma once

#include <atomic>
#include <functional>

#include "common/queue/job_queue.h"
#include "common/db/pg_connection.h"
#include "enqueuer/sources/blobs/blob_enqueuer.h"
#include "enqueuer/planning/migration_plan.h"
#include "enqueuer/sources/paperclip/paperclip_path.h"
#include "enqueuer/sources/paperclip/paperclip_store.h"
#include "enqueuer/sources/paperclip/paperclip_table.h"

namespace blobferry {

PaperclipPathOptions paperclip_path_options(const PaperclipSpec& spec);

// Paperclip's fingerprint is the MD5 hex digest by default: its base64, or
// empty when the fingerprint is missing or another digest (SHA-256 apps).
std::string fingerprint_to_checksum(const std::string& fingerprint);

class PaperclipEnqueuer {
 public:
  // Opens the table (throws Error kConfig when its columns are not Paperclip's)
  // and the bookkeeping table.
  PaperclipEnqueuer(PgConnection& db, JobQueue& queue, MigrationPlan plan, EnqueueOptions options = {});

  // Enqueues from the stored cursor to the end of the table; a run after a
  // finished pass starts a new one, which finds only records still without
  // an attachment. Returns when done or when *stop became true.
  EnqueueStats run(const std::atomic<bool>& stop, const std::function<void(const EnqueueStats&)>& progress = {});
  // Records with a file and no attachment yet, and their stated bytes.
  PaperclipCount count() { return table_.count(); }

  // The job that copies one record's file to its ActiveStorage key.
  static Job job_for(const MigrationPlan& plan, const PaperclipEntry& entry);

 private:
  std::string cursor_name() const;
  PaperclipEntry entry_for(const PaperclipRow& row) const;

  PgConnection& db_;
  JobQueue& queue_;
  MigrationPlan plan_;
  EnqueueOptions options_;
  PaperclipPath path_;
  PaperclipTable table_;
  PaperclipStore store_;
};

}  // namespace blobferry
