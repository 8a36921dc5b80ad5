// Turns active_storage_blobs rows into copy jobs: keyset pages, a resumable
// cursor in Redis, backpressure on the queue, catch-up passes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "common/queue/job_queue.h"
#include "enqueuer/sources/blobs/blob_table.h"
#include "enqueuer/planning/migration_plan.h"

namespace blobferry {

struct EnqueueOptions {
  int page_size = 1000;
  std::uint64_t max_queued = 100000;  // wait while the queue is longer than this
  std::chrono::milliseconds backpressure_poll{std::chrono::milliseconds(500)};
  // A catch-up pass re-reads rows created this long before the previous pass
  // started: a row committed late with a lower id or an older timestamp is
  // then still seen. Re-queued rows already on the target are only skipped.
  std::chrono::seconds catch_up_margin{std::chrono::hours(1)};
};

// Blocks while the queue holds more than options.max_queued jobs (until
// *stop), so an enqueuer never runs far ahead of the workers.
void wait_for_queue_room(JobQueue& queue, const EnqueueOptions& options, const std::atomic<bool>& stop);

struct EnqueueStats {
  std::uint64_t jobs = 0;
  std::uint64_t bytes = 0;
  bool catch_up = false;  // this run was a catch-up pass after a finished one
};

class BlobEnqueuer {
 public:
  BlobEnqueuer(BlobTable& table, JobQueue& queue, MigrationPlan plan, EnqueueOptions options = {});

  // Enqueues from the stored cursor to the end of the table. Returns when the
  // pass is complete or *stop became true (the cursor keeps the place).
  // progress, when set, is told the running totals after every page.
  EnqueueStats run(const std::atomic<bool>& stop,
                   const std::function<void(const EnqueueStats&)>& progress = {});

 private:
  struct Cursor;
  Cursor load_cursor();
  void save_cursor(const Cursor& cursor);
  static std::string encode_cursor(const Cursor& cursor);
  std::string cursor_name() const;
  Job job_for(const BlobRow& row) const;
  Job variants_listing_for(const BlobRow& row) const;

  BlobTable& table_;
  JobQueue& queue_;
  MigrationPlan plan_;
  EnqueueOptions options_;
};

}  // namespace blobferry
