// The batched service_name update of verified blobs, shared by switch and migrate.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "common/db/pg_connection.h"
#include "enqueuer/planning/migration_plan.h"

namespace blobferry {

struct SwitchResult {
  std::uint64_t switched = 0;    // rows now on the target service (or, dry run, that would be)
  std::uint64_t unverified = 0;  // rows still on the source because validate has not verified them
  std::uint64_t batches = 0;
};

// Told the totals so far after each batch, so `status` and the operator page
// can show a long switch moving; may be empty.
using SwitchProgress = std::function<void(const SwitchResult&)>;

// Walks the migration's rows still on plan.from in keyset pages of
// batch_size; each page is one short transaction that switches only the
// verified rows. Safe to interrupt and run again: switched rows no longer
// match, so nothing is switched twice and nothing is left behind.
// For --source blobs (BlobsSource); Paperclip migrations write their blob
// and attachment rows instead (PaperclipAttacher), with the same result.
SwitchResult switch_verified_blobs(PgConnection& db, const MigrationPlan& plan, int batch_size, bool dry_run,
                                   const std::atomic<bool>& stop, const SwitchProgress& progress = {});

}  // namespace blobferry
