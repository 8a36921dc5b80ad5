// Writes the ActiveStorage rows of a Paperclip migration's verified files:
// blob and attachment rows in batches, each batch one short statement.
#include "enqueuer/sources/paperclip/paperclip_attacher.h"

#include <spdlog/spdlog.h>

#include "enqueuer/sources/paperclip/paperclip_store.h"

namespace blobferry {

SwitchResult PaperclipAttacher::run(int batch_size, bool dry_run, const std::atomic<bool>& stop,
                                    const SwitchProgress& progress) {
  PaperclipStore store(db_);
  SwitchResult result;
  result.unverified = static_cast<std::uint64_t>(store.count_unverified(plan_.migration));
  if (dry_run) {
    result.switched = static_cast<std::uint64_t>(store.count_ready(plan_.migration));
    return result;
  }
  std::string after;
  while (!stop.load()) {
    const std::vector<std::string> keys = store.ready_to_attach(plan_.migration, after, batch_size);
    if (keys.empty()) break;
    const AttachOutcome outcome = store.attach(plan_.migration, keys, plan_.paperclip.table);
    result.switched += static_cast<std::uint64_t>(outcome.attached);
    already_attached_ += outcome.already_attached;
    records_gone_ += outcome.records_gone;
    ++result.batches;
    after = keys.back();
    if (progress) progress(result);
    if (result.batches % 100 == 0) spdlog::info("paperclip rows: {} batches, {} attachments written", result.batches, result.switched);
  }
  if (already_attached_) {
    spdlog::info("{} records had an attachment of that name already: left as they were", already_attached_);
  }
  if (records_gone_) spdlog::info("{} records were deleted since enqueue: no rows written for them", records_gone_);
  return result;
}

}  // namespace blobferry
