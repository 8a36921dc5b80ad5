// Runs a listing job: one page of the source bucket becomes copy jobs, and the
// rest of the listing becomes further listing jobs.
#include "worker/listing/listing_runner.h"

#include <unordered_map>

#include "common/base/encoding.h"

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

struct Listed {
  std::uint64_t size;
  std::string etag;
};

// The target's objects in (start_after, last], listed with the source's
// prefix and delimiter so both sides cover the same keys.
std::unordered_map<std::string, Listed> list_target_range(Storage& target, const ListRequest& source_request,
                                                          const std::string& last) {
  std::unordered_map<std::string, Listed> found;
  ListRequest request;
  request.prefix = source_request.prefix;
  request.delimiter = source_request.delimiter;
  request.start_after = source_request.start_after;
  request.max_keys = ListingRunner::kPageSize;
  for (;;) {
    const ListPage page = target.list(request);
    for (const ObjectInfo& info : page.objects) {
      if (info.key > last) return found;
      found.emplace(info.key, Listed{info.size, info.etag});
    }
    // A page may hold only common prefixes (a target with many folders):
    // the listing goes on past it until a key or a prefix passes `last`.
    if (!page.common_prefixes.empty() && page.common_prefixes.back() > last) return found;
    if (page.next_continuation_token.empty()) return found;
    request.continuation_token = page.next_continuation_token;
  }
}

bool same_object(const ObjectInfo& source, const Listed& target) {
  if (source.size != target.size) return false;
  // Equal single-part ETags are equal MD5s; anything else is left to the
  // copy engine, whose HEAD also reads blobferry's stored MD5.
  return hex_md5_to_base64(source.etag).has_value() && source.etag == target.etag;
}

}  // namespace

Outcome ListingRunner::run(const Job& job) {
  Storage& source = source_;
  Storage& target = target_;
  const ListingSpec& spec = job.listing;
  ListRequest request;
  request.prefix = spec.prefix;
  request.start_after = spec.start_after;
  request.continuation_token = spec.continuation_token;
  request.delimiter = spec.delimiter_depth > 0 ? "/" : "";
  request.max_keys = kPageSize;
  // A range whose keys share a longer prefix than the split (say "photos/obj…")
  // is empty in most of its 37 ranges, yet a full page would return 1,000 keys
  // past its end: a one-key probe settles those for almost nothing.
  if (!spec.end_at.empty() && spec.continuation_token.empty()) {
    ListRequest probe = request;
    probe.max_keys = 1;
    const ListPage first = source.list(probe);
    const bool empty = first.objects.empty() && first.common_prefixes.empty();
    const std::string first_key = !first.objects.empty() ? first.objects.front().key
                                  : !first.common_prefixes.empty() ? first.common_prefixes.front() : "";
    if (empty || first_key > spec.end_at) return {};
  }
  const ListPage page = source.list(request);

  // A range job stops at its end key; the next range's job lists the rest.
  auto beyond_end = [&spec](const std::string& key) { return !spec.end_at.empty() && key > spec.end_at; };
  std::vector<const ObjectInfo*> in_range;
  bool reached_end = false;
  for (const ObjectInfo& info : page.objects) {
    if (beyond_end(info.key)) {
      reached_end = true;
      break;
    }
    in_range.push_back(&info);
  }

  // Comparing needs the range's start: pages after the first carry it as
  // start_after (below); an old job with only a continuation token is copied
  // with HEADs instead.
  std::unordered_map<std::string, Listed> on_target;
  const bool compared = !in_range.empty() && spec.continuation_token.empty();
  if (compared) on_target = list_target_range(target, request, in_range.back()->key);

  Outcome skipped;
  std::vector<Job> jobs;
  jobs.reserve(in_range.size() + page.common_prefixes.size() + 1);
  for (const ObjectInfo* info : in_range) {
    const auto there = on_target.find(info->key);
    if (compared && there != on_target.end() && same_object(*info, there->second)) {
      skipped.objects.push_back({info->key, OutcomeKind::kSkipped, info->size, {}, {}, 0});
      continue;
    }
    Job copy = child_of(job);
    copy.objects.push_back(object_from(*info));
    copy.objects.back().target_absent = compared && there == on_target.end();
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
    // Resume after the last key seen rather than by token: the next page can
    // then list the same range of the target beside it.
    // After a common prefix P the next page starts past every key under P:
    // P + U+10FFFF sorts after them all and is still valid UTF-8.
    const std::string last_object = page.objects.empty() ? "" : page.objects.back().key;
    const std::string last_prefix = page.common_prefixes.empty() ? "" : page.common_prefixes.back() + "\xf4\x8f\xbf\xbf";
    next.listing.start_after = std::max(last_object, last_prefix);
    next.listing.continuation_token.clear();
    if (next.listing.start_after.empty()) next.listing.continuation_token = page.next_continuation_token;
    jobs.push_back(std::move(next));
  }
  if (!jobs.empty()) queue_.push(jobs);
  return skipped;
}

}  // namespace blobferry
