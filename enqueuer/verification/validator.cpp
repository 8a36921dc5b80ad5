// Proves every object of a migration is on the target with the right size and
// checksum, by listing the target (one request per 1,000 keys) rather than
// asking for each key.
#include "enqueuer/verification/validator.h"

#include <fstream>
#include <unordered_map>

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/base/error.h"
#include "enqueuer/sources/blobs/blob_table.h"
#include "enqueuer/sources/manifest/manifest_reader.h"
#include "enqueuer/verification/verification_store.h"

namespace blobferry {
namespace {

constexpr const char* kStoredMd5 = "x-amz-meta-blobferry-md5";

std::string metadata_value(const Metadata& metadata, const std::string& name) {
  for (const auto& [k, v] : metadata) {
    if (k == name) return v;
  }
  return "";
}

struct Listed {
  std::uint64_t size;
  std::string etag;
};

}  // namespace

void list_partition(Storage& target, const std::string& prefix, const std::atomic<bool>& stop,
                    std::uint64_t& list_requests, const std::function<void(ObjectInfo&&)>& each) {
  ListRequest request;
  request.prefix = prefix;
  do {
    ++list_requests;
    ListPage page = target.list(request);
    for (ObjectInfo& info : page.objects) each(std::move(info));
    request.continuation_token = page.next_continuation_token;
  } while (!request.continuation_token.empty() && !stop.load());
}

Verdict judge(std::uint64_t expected_size, const std::string& expected_md5, const ObjectInfo* found, bool headed) {
  if (!found) return Verdict::kMissing;
  if (found->size != expected_size) return Verdict::kSizeMismatch;
  if (expected_md5.empty()) return Verdict::kVerified;
  const auto expected_hex = base64_md5_to_hex(expected_md5);
  if (!expected_hex) return Verdict::kChecksumMismatch;  // a checksum that is no MD5 cannot match
  const std::string etag = lowercase(found->etag);
  if (etag == *expected_hex) return Verdict::kVerified;
  const std::string stored = metadata_value(found->metadata, kStoredMd5);
  if (!stored.empty()) return stored == expected_md5 ? Verdict::kVerified : Verdict::kChecksumMismatch;
  if (!headed) return Verdict::kNeedsHead;
  // Headed and nothing stored: a single-part ETag that differs is a different
  // object; any other ETag (multipart, or SSE-KMS/SSE-C's) proves nothing either way.
  const bool single_part = found->etag_is_md5 && etag.size() == 32 && hex_decode(etag).has_value();
  return single_part ? Verdict::kChecksumMismatch : Verdict::kNeedsHead;
}

Validator::Validator(MigrationPlan plan, Storage& source, Storage& target, ValidateOptions options,
                     ProblemSink on_problem)
    : plan_(std::move(plan)), source_(source), target_(target), options_(options), on_problem_(std::move(on_problem)) {}

void Validator::report(const Expected& expected, const std::string& what, ValidationResult& result) {
  if (!on_problem_) return;
  JobObject object;
  object.key = expected.key;
  if (expected.size_known) object.size = expected.size;
  object.checksum = expected.md5;
  object.blob_id = integer_blob_id(expected.blob_id);
  on_problem_({expected.key, expected.blob_id, what}, object);
}

std::string Validator::hash_of_target(const std::string& key, ValidationResult& result) {
  Digest md5 = Digest::md5();
  ++result.get_requests;
  if (!target_.get(key, [&md5](std::string_view chunk) { md5.update(chunk); })) return "";
  return base64_encode(md5.finish());
}

bool Validator::settle(const Expected& expected, const ObjectInfo* found, ValidationResult& result) {
  ++result.checked;
  std::optional<ObjectInfo> headed;
  Verdict verdict = expected.size_known ? judge(expected.size, expected.md5, found)
                                        : (found ? judge(found->size, expected.md5, found) : Verdict::kMissing);
  if (verdict == Verdict::kNeedsHead) {
    ++result.head_requests;
    headed = target_.head(expected.key);
    verdict = expected.size_known ? judge(expected.size, expected.md5, headed ? &*headed : nullptr, true)
                                  : (headed ? judge(headed->size, expected.md5, &*headed, true) : Verdict::kMissing);
  }
  if (options_.deep && (verdict == Verdict::kVerified || verdict == Verdict::kNeedsHead)) {
    const std::string actual = hash_of_target(expected.key, result);
    verdict = actual.empty() ? Verdict::kMissing
              : expected.md5.empty() || actual == expected.md5 ? Verdict::kVerified
                                                               : Verdict::kChecksumMismatch;
  }
  switch (verdict) {
    case Verdict::kVerified:
      ++result.verified;
      return true;
    case Verdict::kMissing:
      ++result.missing;
      report(expected, "missing on the target", result);
      return false;
    case Verdict::kSizeMismatch:
      ++result.mismatched;
      report(expected, "size " + std::to_string(found ? found->size : 0) + " on the target, " +
                           std::to_string(expected.size) + " expected", result);
      return false;
    case Verdict::kChecksumMismatch:
      ++result.mismatched;
      report(expected, "checksum on the target differs from " + expected.md5, result);
      return false;
    case Verdict::kNeedsHead:
      ++result.unverifiable;
      report(expected, "multipart ETag and no stored MD5: run validate --deep to hash it", result);
      return false;
  }
  return false;
}

ValidationResult Validator::validate_blobs(PgConnection& db, const std::atomic<bool>& stop) {
  BlobTable table(db);
  VerificationStore store(db);
  ValidationResult result;
  BlobFilter base = plan_.filter;
  base.unverified_in = plan_.migration;

  auto check_rows = [&](BlobFilter filter, const std::unordered_map<std::string, Listed>* listed) {
    std::string after;
    for (;;) {
      if (stop.load()) return;
      const auto rows = table.page(filter, after, options_.page_size);
      if (rows.empty()) return;
      std::vector<std::string> verified, failed;
      for (const BlobRow& row : rows) {
        Expected expected{row.key, row.id, row.byte_size, row.checksum, true};
        std::optional<ObjectInfo> found;
        if (listed) {
          auto it = listed->find(row.key);
          if (it != listed->end()) found = ObjectInfo{row.key, it->second.size, it->second.etag, "", {}};
        } else {
          ++result.head_requests;
          found = target_.head(row.key);
        }
        (settle(expected, found ? &*found : nullptr, result) ? verified : failed).push_back(row.id);
      }
      store.mark(plan_.migration, verified);
      after = rows.back().id;
    }
  };

  // One listing per partition keeps memory at a 36th of the bucket.
  for (const char* c = kActiveStorageKeyAlphabet; *c && !stop.load(); ++c) {
    const std::string prefix = plan_.filter.key_prefix + *c;
    std::unordered_map<std::string, Listed> listed;
    list_partition(target_, prefix, stop, result.list_requests, [&](ObjectInfo&& info) {
      listed.emplace(std::move(info.key), Listed{info.size, std::move(info.etag)});
    });
    BlobFilter filter = base;
    filter.key_prefix = prefix;
    check_rows(filter, &listed);
  }
  // Keys outside base36 (not ActiveStorage's own) are rare: HEAD each.
  BlobFilter others = base;
  others.key_not_base36_next = true;
  check_rows(others, nullptr);
  return result;
}

ValidationResult Validator::validate_listing(const std::atomic<bool>& stop) {
  ValidationResult result;
  ListRequest source_request, target_request;
  source_request.prefix = target_request.prefix = plan_.prefix;
  ListPage target_page;
  std::size_t target_index = 0;
  bool target_done = false;
  // Next target object at or after key, paging the target listing lazily.
  auto target_at = [&](const std::string& key) -> const ObjectInfo* {
    for (;;) {
      while (target_index < target_page.objects.size() && target_page.objects[target_index].key < key) ++target_index;
      if (target_index < target_page.objects.size()) {
        const ObjectInfo& info = target_page.objects[target_index];
        return info.key == key ? &info : nullptr;
      }
      if (target_done) return nullptr;
      ++result.list_requests;
      target_page = target_.list(target_request);
      target_index = 0;
      target_request.continuation_token = target_page.next_continuation_token;
      target_done = target_request.continuation_token.empty();
    }
  };
  do {
    ++result.list_requests;
    const ListPage page = source_.list(source_request);
    for (const ObjectInfo& info : page.objects) {
      if (stop.load()) return result;
      auto md5 = hex_md5_to_base64(info.etag);
      Expected expected{info.key, "", info.size, md5 ? *md5 : "", true};
      settle(expected, target_at(info.key), result);
    }
    source_request.continuation_token = page.next_continuation_token;
  } while (!source_request.continuation_token.empty() && !stop.load());
  return result;
}

ValidationResult Validator::validate_manifest(const std::atomic<bool>& stop) {
  std::ifstream in(plan_.manifest, std::ios::binary);
  if (!in) throw config_error("cannot read manifest " + plan_.manifest + ": validate needs the file enqueue read");
  ManifestReader reader(in, plan_.manifest);
  ValidationResult result;
  while (auto entry = reader.next()) {
    if (stop.load()) break;
    ++result.head_requests;
    const auto found = target_.head(entry->key);
    Expected expected{entry->key, "", entry->size.value_or(0), entry->checksum, entry->size.has_value()};
    settle(expected, found ? &*found : nullptr, result);
  }
  return result;
}

}  // namespace blobferry
