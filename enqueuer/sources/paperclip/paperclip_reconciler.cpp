// Settles the planned Paperclip files whose record no longer names them
// (deleted, file cleared, another file), so they stop blocking validate and
// switch once the owner has fixed the data.
#include "enqueuer/sources/paperclip/paperclip_reconciler.h"

#include <spdlog/spdlog.h>

#include "enqueuer/sources/paperclip/paperclip_store.h"
#include "enqueuer/sources/paperclip/paperclip_table.h"

namespace blobferry {

ReconcileOutcome PaperclipReconciler::run(const std::atomic<bool>& stop) {
  const PaperclipSpec& spec = plan_.paperclip;
  PaperclipTable table(db_, spec.table, spec.attachment, spec.record_type);
  PaperclipStore store(db_);
  ReconcileOutcome outcome;
  std::string after;
  while (!stop.load()) {
    const std::vector<PaperclipEntry> entries = store.pending(plan_.migration, after, 1000);
    if (entries.empty()) break;
    std::vector<std::string> ids;
    ids.reserve(entries.size());
    for (const PaperclipEntry& e : entries) ids.push_back(e.record_id);
    const auto files = table.files_of(ids);
    std::vector<std::string> gone, cleared, changed;
    for (const PaperclipEntry& e : entries) {
      auto it = files.find(e.record_id);
      if (it == files.end() || !it->second.record_exists) {
        gone.push_back(e.key);
      } else if (it->second.file_name.empty()) {
        cleared.push_back(e.key);
      } else if (it->second.file_name != e.filename ||
                 (e.source_updated_at && it->second.updated_at && *e.source_updated_at != *it->second.updated_at)) {
        // A NULL stored updated_at was written by an earlier version: only the name decides then.
        changed.push_back(e.key);
      }
    }
    store.drop(plan_.migration, gone, "record_gone");
    store.drop(plan_.migration, cleared, "file_gone");
    store.drop(plan_.migration, changed, "file_changed");
    outcome.records_gone += static_cast<long long>(gone.size());
    outcome.files_cleared += static_cast<long long>(cleared.size());
    outcome.files_changed += static_cast<long long>(changed.size());
    after = entries.back().key;
  }
  if (outcome.total()) {
    spdlog::info("{} planned files are no longer named by their record ({} records deleted, {} file names cleared, "
                 "{} files changed): dropped without rows; enqueue again to plan changed files",
                 outcome.total(), outcome.records_gone, outcome.files_cleared, outcome.files_changed);
  }
  return outcome;
}

}  // namespace blobferry
