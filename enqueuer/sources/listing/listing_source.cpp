// --source listing: every object under --prefix in the source bucket, listed
// by workers in parallel key ranges.
#include "enqueuer/sources/listing/listing_source.h"

#include "enqueuer/sources/blobs/blob_table.h"

namespace blobferry {
namespace {

constexpr const char* kSplitCursor = "listing:split";

}  // namespace

std::vector<Job> ListingSource::split_listing(const MigrationPlan& plan, int delimiter_depth) {
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

void ListingSource::check_options(unsigned given) { accept_only(given, kListingOptions); }

PlanTotals ListingSource::enqueue(SourceContext& context, const std::atomic<bool>&) {
  PlanTotals totals;
  // Workers list the ranges in parallel and queue copies as pages arrive.
  if (context.queue.get_cursor(kSplitCursor)) return totals;  // already planned; listing jobs carry their own progress
  const std::vector<Job> jobs = split_listing(plan(), context.delimiter_depth);
  context.queue.push_with_cursor(jobs, kSplitCursor, "done");
  totals.listing_jobs = jobs.size();
  return totals;
}

PlanTotals ListingSource::count(SourceContext& context, const std::atomic<bool>& stop) {
  PlanTotals totals;
  ListRequest request;
  request.prefix = plan().prefix;
  do {
    const ListPage page = context.source.list(request);
    for (const ObjectInfo& info : page.objects) {
      ++totals.objects;
      totals.bytes += info.size;
    }
    request.continuation_token = page.next_continuation_token;
  } while (!request.continuation_token.empty() && !stop.load());
  return totals;
}

std::string ListingSource::describe_enqueued(const PlanTotals& totals, bool interrupted) const {
  if (!totals.listing_jobs) return MigrationSource::describe_enqueued(totals, interrupted);
  return "queued " + std::to_string(totals.listing_jobs) + " listing jobs for migration " + plan().migration +
         ": workers list " + plan().from + " and queue copies as pages arrive";
}

ValidationResult ListingSource::validate(const SourceValidation& v, const std::atomic<bool>& stop) {
  return Validator(plan(), v.source, v.target, v.options, v.on_problem).validate_listing(stop);
}

}  // namespace blobferry
