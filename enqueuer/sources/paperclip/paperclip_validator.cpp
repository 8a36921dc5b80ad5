// Proves each planned Paperclip file is on the target under its new key, and
// records its size and MD5 for the blob row, by listing the target once per
// key partition.
#include "enqueuer/sources/paperclip/paperclip_validator.h"

#include <unordered_map>

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "enqueuer/sources/blobs/blob_table.h"
#include "enqueuer/sources/paperclip/paperclip_enqueuer.h"

namespace blobferry {
namespace {

constexpr const char* kStoredMd5 = "x-amz-meta-blobferry-md5";

std::string stored_md5(const Metadata& metadata) {
  for (const auto& [name, value] : metadata) {
    if (name == kStoredMd5) return value;
  }
  return "";
}

// A single-part ETag is the hex MD5 of the bytes; anything else proves nothing.
std::optional<std::string> etag_as_md5(const std::string& etag) {
  if (etag.size() != 32) return std::nullopt;
  return hex_md5_to_base64(lowercase(etag));
}

}  // namespace

PaperclipValidator::PaperclipValidator(MigrationPlan plan, Storage& target, ValidateOptions options,
                                       Validator::ProblemSink on_problem)
    : plan_(std::move(plan)), target_(target), options_(options), on_problem_(std::move(on_problem)) {}

void PaperclipValidator::report(const PaperclipEntry& entry, const std::string& what) {
  if (!on_problem_) return;
  Job job = PaperclipEnqueuer::job_for(plan_, entry);
  on_problem_({entry.key, "",
               what + " (" + entry.record_type + "#" + entry.record_id + ", Paperclip file " + entry.source_key + ")"},
              job.objects.front());
}

std::optional<std::string> PaperclipValidator::md5_on_target(const PaperclipEntry& entry, const ObjectInfo& listed,
                                                             ValidationResult& result) {
  if (auto md5 = etag_as_md5(listed.etag)) return md5;
  ++result.head_requests;
  const std::optional<ObjectInfo> headed = target_.head(entry.key);
  if (!headed) return std::nullopt;
  if (auto md5 = etag_as_md5(headed->etag)) return md5;
  if (std::string stored = stored_md5(headed->metadata); !stored.empty()) return stored;
  if (!options_.deep) return std::nullopt;
  ++result.get_requests;
  Digest digest = Digest::md5();
  if (!target_.get(entry.key, [&digest](std::string_view chunk) { digest.update(chunk); })) return std::nullopt;
  return base64_encode(digest.finish());
}

std::optional<PaperclipProof> PaperclipValidator::prove(const PaperclipEntry& entry, const ObjectInfo* listed,
                                                        ValidationResult& result) {
  ++result.checked;
  if (!listed) {
    ++result.missing;
    report(entry, "missing on the target");
    return std::nullopt;
  }
  if (entry.expected_size && listed->size != *entry.expected_size) {
    ++result.mismatched;
    report(entry, "size " + std::to_string(listed->size) + " on the target, " + std::to_string(*entry.expected_size) +
                      " in the file_size column");
    return std::nullopt;
  }
  const std::optional<std::string> md5 = md5_on_target(entry, *listed, result);
  if (!md5) {
    ++result.unverifiable;
    report(entry, "multipart ETag and no stored MD5: run validate --deep to hash it");
    return std::nullopt;
  }
  if (!entry.expected_md5.empty() && *md5 != entry.expected_md5) {
    ++result.mismatched;
    report(entry, "MD5 " + *md5 + " on the target, " + entry.expected_md5 + " in the fingerprint column");
    return std::nullopt;
  }
  ++result.verified;
  return PaperclipProof{entry.key, listed->size, *md5};
}

ValidationResult PaperclipValidator::validate(PgConnection& db, bool recheck, const std::atomic<bool>& stop) {
  PaperclipStore store(db);
  if (recheck) store.forget_verifications(plan_.migration);
  ValidationResult result;
  // Keys are ours, all base36: one listing per first character keeps memory
  // at a 36th of the target, and partitions with nothing to check are not listed.
  for (const char* c = kActiveStorageKeyAlphabet; *c && !stop.load(); ++c) {
    const std::string prefix(1, *c);
    std::vector<PaperclipEntry> entries = store.unverified(plan_.migration, prefix, "", options_.page_size);
    if (entries.empty()) continue;
    std::unordered_map<std::string, ObjectInfo> listed;
    list_partition(target_, prefix, stop, result.list_requests,
                   [&](ObjectInfo&& info) { listed.emplace(info.key, std::move(info)); });
    while (!entries.empty() && !stop.load()) {
      std::vector<PaperclipProof> proofs;
      for (const PaperclipEntry& entry : entries) {
        auto it = listed.find(entry.key);
        if (auto proof = prove(entry, it == listed.end() ? nullptr : &it->second, result)) proofs.push_back(*proof);
      }
      store.mark_verified(plan_.migration, proofs);
      entries = store.unverified(plan_.migration, prefix, entries.back().key, options_.page_size);
    }
  }
  return result;
}

}  // namespace blobferry
