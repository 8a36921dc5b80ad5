// Turns active_storage_blobs rows into copy jobs: keyset pages, a resumable
// cursor in Redis, backpressure on the queue, catch-up passes.
#include "enqueuer/sources/blobs/blob_enqueuer.h"

#include <chrono>
#include <ctime>
#include <future>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/base/utc_time.h"

namespace blobferry {
namespace {

std::int64_t now_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// "2024-05-01 12:00:00": ActiveStorage stores created_at in UTC without a zone.
std::string utc_timestamp_text(std::int64_t epoch) {
  return format_utc(std::chrono::system_clock::from_time_t(static_cast<std::time_t>(epoch)), "%Y-%m-%d %H:%M:%S");
}

}  // namespace

// Where the current pass stands. A finished pass leaves `complete` set; the
// next run starts a catch-up pass over rows created since it began.
struct BlobEnqueuer::Cursor {
  std::string after_id;
  std::int64_t pass_started_at = 0;
  std::string created_floor;  // catch-up passes only read rows created at or after this
  bool complete = false;
};

BlobEnqueuer::BlobEnqueuer(BlobTable& table, JobQueue& queue, MigrationPlan plan, EnqueueOptions options)
    : table_(table), queue_(queue), plan_(std::move(plan)), options_(options) {}

std::string BlobEnqueuer::cursor_name() const {
  return "blobs:" + std::to_string(plan_.filter.shard_index) + "/" + std::to_string(plan_.filter.shard_count);
}

BlobEnqueuer::Cursor BlobEnqueuer::load_cursor() {
  Cursor cursor;
  if (auto stored = queue_.get_cursor(cursor_name())) {
    const auto j = nlohmann::json::parse(*stored, nullptr, false);
    if (j.is_object()) {
      cursor.after_id = j.value("after", "");
      cursor.pass_started_at = j.value("pass_started_at", std::int64_t{0});
      cursor.created_floor = j.value("floor", "");
      cursor.complete = j.value("complete", false);
    }
  }
  return cursor;
}

std::string BlobEnqueuer::encode_cursor(const Cursor& cursor) {
  return nlohmann::json{{"after", cursor.after_id},
                        {"pass_started_at", cursor.pass_started_at},
                        {"floor", cursor.created_floor},
                        {"complete", cursor.complete}}
      .dump();
}

void BlobEnqueuer::save_cursor(const Cursor& cursor) { queue_.set_cursor(cursor_name(), encode_cursor(cursor)); }

void wait_for_queue_room(JobQueue& queue, const EnqueueOptions& options, const std::atomic<bool>& stop) {
  bool told = false;
  while (!stop.load() && queue.queue_length() > options.max_queued) {
    if (!told) {
      spdlog::info("queue holds more than {} jobs: waiting for workers (--max-queued)", options.max_queued);
      told = true;
    }
    std::this_thread::sleep_for(options.backpressure_poll);
  }
}

Job BlobEnqueuer::job_for(const BlobRow& row) const {
  Job job = plan_.new_job();
  JobObject object;
  object.key = row.key;
  object.size = row.byte_size;
  object.checksum = row.checksum;
  object.content_type = row.content_type;
  object.blob_id = integer_blob_id(row.id);  // for reports; uuid ids stay in the table
  job.objects.push_back(std::move(object));
  return job;
}

Job BlobEnqueuer::variants_listing_for(const BlobRow& row) const {
  Job job = plan_.new_job(JobType::kListing);
  job.listing.prefix = "variants/" + row.key + "/";
  return job;
}

EnqueueStats BlobEnqueuer::run(const std::atomic<bool>& stop,
                               const std::function<void(const EnqueueStats&)>& progress) {
  EnqueueStats stats;
  Cursor cursor = load_cursor();
  if (cursor.complete || cursor.pass_started_at == 0) {
    stats.catch_up = cursor.complete;
    if (cursor.complete) {
      cursor.created_floor = utc_timestamp_text(cursor.pass_started_at - options_.catch_up_margin.count());
    }
    cursor.after_id.clear();
    cursor.complete = false;
    cursor.pass_started_at = now_seconds();
    save_cursor(cursor);
  }

  BlobFilter filter = plan_.filter;
  if (!cursor.created_floor.empty() &&
      (filter.created_after.empty() || filter.created_after < cursor.created_floor)) {
    filter.created_after = cursor.created_floor;
  }

  // The next page is read while this one is pushed: the two round trips
  // overlap instead of adding up. Only the reading thread touches the table.
  std::vector<BlobRow> rows;
  std::future<std::vector<BlobRow>> next;
  const auto read_page = [this, &filter](std::string after) { return table_.page(filter, after, options_.page_size); };
  while (!stop.load()) {
    wait_for_queue_room(queue_, options_, stop);
    if (stop.load()) break;
    rows = next.valid() ? next.get() : read_page(cursor.after_id);
    if (rows.empty()) {
      cursor.complete = true;
      save_cursor(cursor);
      break;
    }
    std::vector<Job> jobs;
    jobs.reserve(rows.size());
    for (const BlobRow& row : rows) {
      jobs.push_back(job_for(row));
      stats.bytes += row.byte_size;
      if (plan_.include_untracked_variants) jobs.push_back(variants_listing_for(row));
    }
    cursor.after_id = rows.back().id;
    next = std::async(std::launch::async, read_page, cursor.after_id);
    try {
      queue_.push_with_cursor(jobs, cursor_name(), encode_cursor(cursor));
    } catch (...) {
      next.wait();  // its result (or error) is dropped: the cursor has not moved past it
      throw;
    }
    stats.jobs += jobs.size();
    if (progress) progress(stats);
  }
  if (next.valid()) next.wait();
  return stats;
}

}  // namespace blobferry
