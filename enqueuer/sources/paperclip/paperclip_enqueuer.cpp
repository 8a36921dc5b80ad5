// Turns a table's Paperclip columns into copy jobs: each file gets an
// ActiveStorage key, recorded in blobferry's bookkeeping before its job is
// queued, so a re-run after a crash reuses it.
#include "enqueuer/sources/paperclip/paperclip_enqueuer.h"

#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/base/encoding.h"
#include "enqueuer/sources/paperclip/paperclip_blob_key.h"

namespace blobferry {

PaperclipPathOptions paperclip_path_options(const PaperclipSpec& spec) {
  PaperclipPathOptions options;
  options.path_template = spec.path.empty() ? PaperclipPath::kDefaultTemplate : spec.path;
  options.class_name = spec.record_type;
  options.attachment = spec.attachment;
  options.style = spec.style;
  options.hash_secret = spec.hash_secret;
  return options;
}

std::string fingerprint_to_checksum(const std::string& fingerprint) {
  if (fingerprint.size() != 32) return "";
  return hex_md5_to_base64(lowercase(fingerprint)).value_or("");
}

PaperclipEnqueuer::PaperclipEnqueuer(PgConnection& db, JobQueue& queue, MigrationPlan plan, EnqueueOptions options)
    : db_(db),
      queue_(queue),
      plan_(std::move(plan)),
      options_(options),
      path_(paperclip_path_options(plan_.paperclip)),
      table_(db_, plan_.paperclip.table, plan_.paperclip.attachment, plan_.paperclip.record_type),
      store_(db_) {
  if (plan_.paperclip.style != "original" && table_.has_fingerprint()) {
    spdlog::info("style {}: Paperclip's fingerprint and file size describe the original, so they are not checked",
                 plan_.paperclip.style);
  }
}

std::string PaperclipEnqueuer::cursor_name() const {
  return "paperclip:" + plan_.paperclip.table + ":" + plan_.paperclip.attachment;
}

Job PaperclipEnqueuer::job_for(const MigrationPlan& plan, const PaperclipEntry& entry) {
  Job job = plan.new_job();
  JobObject object;
  object.key = entry.source_key;
  object.target_key = entry.key;
  object.size = entry.expected_size;
  object.checksum = entry.expected_md5;
  object.content_type = entry.content_type;
  object.record = entry.record_type + "#" + entry.record_id;
  job.objects.push_back(std::move(object));
  return job;
}

PaperclipEntry PaperclipEnqueuer::entry_for(const PaperclipRow& row) const {
  PaperclipEntry entry;
  entry.record_type = plan_.paperclip.record_type;
  entry.record_id = row.record.id;
  entry.name = plan_.paperclip.attachment;
  entry.key = PaperclipBlobKey::generate();  // kept only when the record has none yet
  entry.source_key = path_.key_for(row.record);
  entry.filename = row.record.file_name;
  entry.source_updated_at = row.record.updated_at;
  entry.content_type = row.content_type;
  // Size and fingerprint describe the original upload; other styles are
  // Paperclip's own renditions of it.
  if (plan_.paperclip.style == "original") {
    entry.expected_size = row.file_size;
    entry.expected_md5 = fingerprint_to_checksum(row.record.fingerprint);
  }
  return entry;
}

EnqueueStats PaperclipEnqueuer::run(const std::atomic<bool>& stop,
                                    const std::function<void(const EnqueueStats&)>& progress) {
  EnqueueStats stats;
  std::string after;
  if (auto stored = queue_.get_cursor(cursor_name())) {
    const auto j = nlohmann::json::parse(*stored, nullptr, false);
    if (j.is_object() && !j.value("complete", false)) {
      after = j.value("after", "");
    } else {
      stats.catch_up = true;  // records without attachments are found again; their keys are reused
    }
  }
  while (!stop.load()) {
    wait_for_queue_room(queue_, options_, stop);
    if (stop.load()) break;
    const std::vector<PaperclipRow> rows = table_.page(after, options_.page_size);
    if (rows.empty()) {
      queue_.set_cursor(cursor_name(), nlohmann::json{{"after", after}, {"complete", true}}.dump());
      break;
    }
    std::vector<PaperclipEntry> entries;
    entries.reserve(rows.size());
    for (const PaperclipRow& row : rows) entries.push_back(entry_for(row));
    // Keys are stored before their jobs exist: a crash in between leaves
    // keys that the next run reuses, never a job whose key is forgotten.
    entries = store_.reserve(plan_.migration, plan_.from, plan_.to, std::move(entries));
    std::vector<Job> jobs;
    jobs.reserve(entries.size());
    for (const PaperclipEntry& entry : entries) {
      jobs.push_back(job_for(plan_, entry));
      stats.bytes += entry.expected_size.value_or(0);
    }
    after = rows.back().record.id;
    queue_.push_with_cursor(jobs, cursor_name(), nlohmann::json{{"after", after}, {"complete", false}}.dump());
    stats.jobs += jobs.size();
    if (progress) progress(stats);
  }
  return stats;
}

}  // namespace blobferry
