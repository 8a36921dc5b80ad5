// Writes the ActiveStorage rows of a Paperclip migration's verified files:
// blob and attachment rows in batches, each batch one short statement.
#pragma once

#include <atomic>

#include "common/db/pg_connection.h"
#include "enqueuer/planning/migration_plan.h"
#include "enqueuer/verification/switcher.h"

namespace blobferry {

class PaperclipAttacher {
 public:
  PaperclipAttacher(PgConnection& db, MigrationPlan plan) : db_(db), plan_(std::move(plan)) {}

  // Walks the verified entries without rows in keyset pages of batch_size;
  // each page is one statement that inserts the blobs and their attachments
  // together, skipping records that gained an attachment of that name
  // meanwhile. Safe to interrupt and run again: done entries are marked in
  // the same statement. switched counts rows pairs written (or, dry run, that
  // would be), unverified the entries validate has not proved yet.
  SwitchResult run(int batch_size, bool dry_run, const std::atomic<bool>& stop, const SwitchProgress& progress = {});

  long long already_attached() const { return already_attached_; }
  long long records_gone() const { return records_gone_; }

 private:
  PgConnection& db_;
  MigrationPlan plan_;
  long long already_attached_ = 0;
  long long records_gone_ = 0;
};

}  // namespace blobferry
