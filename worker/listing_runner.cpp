// Runs a listing job: one page of the source bucket becomes copy jobs, and the
// rest of the listing becomes further listing jobs.
#include "worker/listing_runner.h"

#include "common/encoding.h"

namespace blobferry {
namespace {

Job child_of(const Job& parent) {
  Job child;
  child.migration = parent.migration;
  child.source = parent.source;
  child.target = parent.target;
  return child;
}

JobObject object_from(const ObjectInfo& info) {
  JobObject object;
  object.key = info.key;
  object.size = info.size;
  // A single-part ETag is the MD5; a multipart one proves nothing, so the
  // copy engine then trusts the bytes it hashes on the way.
  if (auto md5 = hex_md5_to_base64(info.etag)) object.checksum = *md5;
  return object;
}

}  // namespace

void ListingRunner::run(const Job& job) {
  Storage& source = services_.get(job.source);
  const ListingSpec& spec = job.listing;
  ListRequest request;
  request.prefix = spec.prefix;
  request.start_after = spec.start_after;
  request.continuation_token = spec.continuation_token;
  request.delimiter = spec.delimiter_depth > 0 ? "/" : "";
  request.max_keys = kPageSize;
  const ListPage page = source.list(request);

  // A range job stops at its end key; the next range's job lists the rest.
  auto beyond_end = [&spec](const std::string& key) { return !spec.end_at.empty() && key > spec.end_at; };
  bool reached_end = false;

  std::vector<Job> jobs;
  jobs.reserve(page.objects.size() + page.common_prefixes.size() + 1);
  for (const ObjectInfo& info : page.objects) {
    if (beyond_end(info.key)) {
      reached_end = true;
      break;
    }
    Job copy = child_of(job);
    copy.objects.push_back(object_from(info));
    jobs.push_back(std::move(copy));
  }
  for (const std::string& prefix : page.common_prefixes) {
    if (beyond_end(prefix)) {
      reached_end = true;
      continue;
    }
    Job listing = child_of(job);
    listing.type = JobType::kListing;
    listing.listing.prefix = prefix;
    listing.listing.delimiter_depth = spec.delimiter_depth - 1;
    // A child inherits the range bounds that fall inside its prefix.
    listing.listing.end_at = spec.end_at.rfind(prefix, 0) == 0 ? spec.end_at : "";
    listing.listing.start_after = spec.start_after.rfind(prefix, 0) == 0 ? spec.start_after : "";
    jobs.push_back(std::move(listing));
  }
  if (!page.next_continuation_token.empty() && !reached_end) {
    Job next = child_of(job);
    next.type = JobType::kListing;
    next.listing = spec;
    next.listing.continuation_token = page.next_continuation_token;
    jobs.push_back(std::move(next));
  }
  if (!jobs.empty()) queue_.push(jobs);
}

}  // namespace blobferry
