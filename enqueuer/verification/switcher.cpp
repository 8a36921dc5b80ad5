// The batched service_name update of verified blobs, shared by switch and migrate.
#include "enqueuer/verification/switcher.h"

#include <spdlog/spdlog.h>

#include "common/base/error.h"
#include "enqueuer/sources/blobs/blob_table.h"
#include "enqueuer/verification/verification_store.h"

namespace blobferry {

SwitchResult switch_verified_blobs(PgConnection& db, const MigrationPlan& plan, int batch_size, bool dry_run,
                                   const std::atomic<bool>& stop, const SwitchProgress& progress) {
  BlobTable table(db);
  if (!table.has_service_name()) {
    throw config_error("active_storage_blobs has no service_name column (Rails 5.2/6.0): switch does not apply; "
                       "point the service's entry in config/storage.yml at the new bucket instead");
  }
  VerificationStore store(db);  // ensures the table exists even before any validate
  SwitchResult result;
  std::string after;
  for (;;) {
    if (stop.load()) break;
    const auto rows = table.page(plan.filter, after, batch_size);
    if (rows.empty()) break;
    std::vector<std::string> ids;
    ids.reserve(rows.size());
    for (const auto& row : rows) ids.push_back(row.id);
    const long long done = dry_run ? table.count_verified(ids, plan.migration)
                                   : table.switch_verified(ids, plan.from, plan.to, plan.migration);
    result.switched += static_cast<std::uint64_t>(done);
    result.unverified += ids.size() - static_cast<std::uint64_t>(done);
    ++result.batches;
    after = rows.back().id;
    if (progress) progress(result);
    if (result.batches % 100 == 0) {
      spdlog::info("switch: {} batches, {} rows {}", result.batches, result.switched, dry_run ? "would switch" : "switched");
    }
  }
  return result;
}

}  // namespace blobferry
