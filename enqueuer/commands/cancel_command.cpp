// `blobferry cancel`: shows, then with --purge --yes deletes, every Redis key of one migration (aborting its open uploads first).
#include "enqueuer/commands/cancel_command.h"

#include <cstdio>

#include <CLI/CLI.hpp>

#include "common/base/error.h"
#include "common/queue/queue_connection.h"
#include "common/queue/upload_records.h"
#include "common/storage/chunked_writer.h"
#include "common/storage/service_registry.h"
#include "common/storage/storage_config.h"
#include "enqueuer/commands/status_command.h"

namespace blobferry {
namespace {

void print_contents(const std::string& migration, const Counts& c, std::size_t live_workers) {
  std::printf("migration %s holds in Redis:\n", migration.c_str());
  std::printf("  %llu queued, %llu scheduled for retry, %llu in flight jobs\n",
              static_cast<unsigned long long>(c.queued), static_cast<unsigned long long>(c.scheduled),
              static_cast<unsigned long long>(c.in_flight));
  std::printf("  %llu failure records, %llu dead payloads\n", static_cast<unsigned long long>(c.failed),
              static_cast<unsigned long long>(c.dead));
  std::printf("  counters of %llu jobs pushed, %llu copied and %llu skipped objects; cursors; worker heartbeats\n",
              static_cast<unsigned long long>(c.queued_total), static_cast<unsigned long long>(c.copied),
              static_cast<unsigned long long>(c.skipped));
  if (live_workers > 0) {
    std::printf("warning: %zu workers are still running on it: stop them first, or they keep running the jobs "
                "they hold\n",
                live_workers);
  }
}

void print_uploads(const std::vector<UploadProgress>& uploads) {
  for (const UploadProgress& upload : uploads) {
    std::printf("  open multipart upload of %s on %s: %d of %d parts done\n", upload.record.target_key.c_str(),
                upload.record.target.c_str(), upload.parts_done, upload.record.part_count);
  }
}

// The target's parts of an abandoned giant object would otherwise stay
// billed until a lifecycle rule expires them. Returns how many failed.
int abort_uploads(const std::vector<UploadProgress>& uploads, const std::string& storage_config) {
  if (uploads.empty()) return 0;
  ServiceRegistry services(StorageConfig::load(storage_config));
  int failed = 0;
  for (const UploadProgress& upload : uploads) {
    const UploadRecord& record = upload.record;
    try {
      ChunkedWriter* writer = services.get(record.target).capabilities().chunked_writer;
      if (writer == nullptr) throw config_error("service " + record.target + " has no multipart upload");
      writer->abort_multipart(record.target_key, record.upload_id);
      std::printf("aborted the multipart upload of %s on %s\n", record.target_key.c_str(), record.target.c_str());
    } catch (const Error& error) {
      ++failed;
      std::fprintf(stderr, "could not abort the multipart upload of %s on %s: %s\n", record.target_key.c_str(),
                   record.target.c_str(), error.what());
    }
  }
  return failed;
}

}  // namespace

void CancelCommand::define(CLI::App& sub) {
  sub.add_option("--migration", migration_, "migration name (as given to enqueue)")->required();
  sub.add_flag("--purge", purge_, "delete every Redis key of the migration (other migrations are untouched)");
  sub.add_flag("--yes", yes_, "confirm --purge");
  sub.footer(
      "Without --purge only shows what would be deleted. With it, the migration's open multipart uploads (giant "
      "objects copied as part jobs) are aborted on the target first; nothing else on storage is touched (copied "
      "objects stay on the target, the source is never written), nor the database. Failure records go too: run `blobferry report` first to keep "
      "them.");
}

int CancelCommand::run(const GlobalOptions& global) {
  auto queue = open_redis_queue(global.redis_url, migration_);
  const Counts counts = queue->counts();
  UploadRecords records(queue->client(), migration_);
  const std::vector<UploadProgress> uploads = records.all();
  if (uploads.empty() && counts.queued_total == 0 && !queue->get_cursor("plan") && counts.dead == 0 && counts.failed == 0) {
    // Nothing to cancel is not an error: a second `cancel --purge` finds this.
    std::printf("nothing stored for migration %s: nothing to delete\n", migration_.c_str());
    return 0;
  }
  print_contents(migration_, counts, queue->live_workers(kLiveWorkerAge).size());
  print_uploads(uploads);
  if (!purge_) {
    std::printf("nothing deleted: run again with --purge --yes to delete these keys\n");
    return 0;
  }
  if (!yes_) {
    throw config_error("cancel --purge deletes every Redis key of migration " + migration_ +
                       " (its failure records too): add --yes to confirm");
  }
  if (abort_uploads(uploads, global.storage_config) > 0) {
    // Their records are kept so a second cancel can try again.
    std::printf("nothing deleted: run cancel again once the uploads above can be aborted\n");
    return 1;
  }
  records.purge();
  queue->purge();
  std::printf("deleted every Redis key of migration %s; storage and database untouched\n", migration_.c_str());
  return 0;
}

}  // namespace blobferry
