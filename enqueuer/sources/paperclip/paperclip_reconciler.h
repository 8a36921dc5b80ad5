// Settles the planned Paperclip files whose record no longer names them
// (deleted, file cleared, another file), so they stop blocking validate and
// switch once the owner has fixed the data.
#pragma once

#include <atomic>

#include "common/db/pg_connection.h"
#include "enqueuer/planning/migration_plan.h"

namespace blobferry {

struct ReconcileOutcome {
  long long records_gone = 0;   // the record was deleted
  long long files_cleared = 0;  // <attachment>_file_name is NULL or empty now
  long long files_changed = 0;  // another _file_name or _updated_at: a new enqueue plans the new file
  long long total() const { return records_gone + files_cleared + files_changed; }
};

class PaperclipReconciler {
 public:
  PaperclipReconciler(PgConnection& db, MigrationPlan plan) : db_(db), plan_(std::move(plan)) {}

  // Compares every entry without rows with its record, in keyset pages (one
  // short read of the app's table each, never a write to it), and drops
  // those whose record no longer names the file their key was assigned for.
  ReconcileOutcome run(const std::atomic<bool>& stop);

 private:
  PgConnection& db_;
  MigrationPlan plan_;
};

}  // namespace blobferry
