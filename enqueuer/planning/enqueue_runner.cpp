// Plans a migration's work into a queue, from whichever source the plan
// names: the blob table, a listing of the source bucket, or a manifest.
#include "enqueuer/planning/enqueue_runner.h"

#include <fstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/base/encoding.h"
#include "common/base/error.h"
#include "common/db/pg_connection.h"
#include "enqueuer/sources/blobs/blob_table.h"
#include "enqueuer/sources/manifest/manifest_reader.h"

namespace blobferry {
namespace {

constexpr const char* kManifestCursor = "manifest:line";

}  // namespace

EnqueueRunner::EnqueueRunner(MigrationPlan plan, JobQueue& queue, Storage& source, std::string database_url,
                             EnqueueOptions options)
    : plan_(std::move(plan)), queue_(queue), source_(source), database_url_(std::move(database_url)), options_(options) {}

std::vector<Job> EnqueueRunner::split_listing(const MigrationPlan& plan, int delimiter_depth) {
  std::vector<Job> jobs;
  std::string previous;  // exclusive lower bound of the next range
  for (const char* c = kActiveStorageKeyAlphabet; ; ++c) {
    Job job = plan.new_job(JobType::kListing);
    job.listing.prefix = plan.prefix;
    job.listing.start_after = previous;
    job.listing.delimiter_depth = delimiter_depth;
    if (*c) job.listing.end_at = plan.prefix + *c;
    jobs.push_back(std::move(job));
    if (!*c) break;
    previous = plan.prefix + *c;
  }
  return jobs;
}

PlanTotals EnqueueRunner::run(const std::atomic<bool>& stop) {
  switch (plan_.source) {
    case SourceKind::kBlobs: return run_blobs(stop, false);
    case SourceKind::kListing: return run_listing(stop, false);
    case SourceKind::kManifest: return run_manifest(stop, false);
    case SourceKind::kPaperclip: break;
  }
  throw config_error("--source paperclip is not supported by this build yet");
}

PlanTotals EnqueueRunner::dry_run(const std::atomic<bool>& stop) {
  switch (plan_.source) {
    case SourceKind::kBlobs: return run_blobs(stop, true);
    case SourceKind::kListing: return run_listing(stop, true);
    case SourceKind::kManifest: return run_manifest(stop, true);
    case SourceKind::kPaperclip: break;
  }
  throw config_error("--source paperclip is not supported by this build yet");
}

PlanTotals EnqueueRunner::run_blobs(const std::atomic<bool>& stop, bool dry) {
  PgConnection db(database_url_);
  BlobTable table(db);
  PlanTotals totals;
  if (dry) {
    const ServiceCount count = table.count(plan_.filter);
    totals.objects = static_cast<std::uint64_t>(count.blobs);
    totals.bytes = count.bytes;
    return totals;
  }
  BlobEnqueuer enqueuer(table, queue_, plan_, options_);
  std::uint64_t reported = 0;
  const EnqueueStats stats = enqueuer.run(stop, [&reported](const EnqueueStats& s) {
    if (s.jobs / 100000 == reported / 100000) return;
    reported = s.jobs;
    spdlog::info("enqueued {} jobs so far", s.jobs);
  });
  totals.objects = stats.jobs;
  totals.bytes = stats.bytes;
  totals.catch_up = stats.catch_up;
  return totals;
}

PlanTotals EnqueueRunner::run_listing(const std::atomic<bool>& stop, bool dry) {
  PlanTotals totals;
  if (!dry) {
    // Workers list the ranges in parallel and queue copies as pages arrive.
    if (queue_.get_cursor("listing:split")) return totals;  // already planned; listing jobs carry their own progress
    const std::vector<Job> jobs = split_listing(plan_, delimiter_depth);
    queue_.push_with_cursor(jobs, "listing:split", "done");
    totals.listing_jobs = jobs.size();
    return totals;
  }
  ListRequest request;
  request.prefix = plan_.prefix;
  do {
    const ListPage page = source_.list(request);
    for (const ObjectInfo& info : page.objects) {
      ++totals.objects;
      totals.bytes += info.size;
    }
    request.continuation_token = page.next_continuation_token;
  } while (!request.continuation_token.empty() && !stop.load());
  return totals;
}

PlanTotals EnqueueRunner::run_manifest(const std::atomic<bool>& stop, bool dry) {
  std::ifstream in(plan_.manifest, std::ios::binary);
  if (!in) throw config_error("cannot read manifest " + plan_.manifest + ": check the path given to --manifest");
  ManifestReader reader(in, plan_.manifest);
  PlanTotals totals;
  std::size_t resume_line = 0;
  if (!dry) {
    if (auto stored = queue_.get_cursor(kManifestCursor)) resume_line = std::stoull(*stored);
    reader.skip_to_line(resume_line);
  }
  std::vector<Job> batch;
  auto flush = [&] {
    if (batch.empty()) return;
    while (!stop.load() && queue_.queue_length() > options_.max_queued) {
      std::this_thread::sleep_for(options_.backpressure_poll);
    }
    queue_.push_with_cursor(batch, kManifestCursor, std::to_string(reader.line()));
    batch.clear();
  };
  while (!stop.load()) {
    auto entry = reader.next();
    if (!entry) break;
    ++totals.objects;
    if (entry->size) totals.bytes += *entry->size;
    if (dry) continue;
    Job job = plan_.new_job();
    JobObject object;
    object.key = entry->key;
    object.size = entry->size;
    object.checksum = entry->checksum;
    object.content_type = entry->content_type;
    job.objects.push_back(std::move(object));
    batch.push_back(std::move(job));
    if (batch.size() >= static_cast<std::size_t>(options_.page_size)) flush();
  }
  if (!dry) flush();
  totals.problems = reader.problem_count();
  for (const ManifestProblem& p : reader.problems()) {
    spdlog::warn("{} line {}: {} (skipped)", plan_.manifest, p.line, p.message);
  }
  return totals;
}

}  // namespace blobferry
