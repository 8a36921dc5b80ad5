// The options that describe what a migration moves, shared by enqueue and migrate.
#include "enqueuer/planning/plan_options.h"

#include <regex>

#include <CLI/CLI.hpp>

#include "common/base/error.h"
#include "enqueuer/sources/paperclip/paperclip_path.h"
#include "enqueuer/sources/source_registry.h"

namespace blobferry {
namespace {

void check_copyable(const StorageConfig& config, const std::string& name, const char* option) {
  const ServiceConfig& service = config.service(name);  // throws for unknown names, listing the known ones
  if (service.kind == ServiceKind::kMirror) {
    throw config_error(std::string(option) + " " + name + " is a Mirror service: name its primary (" +
                       service.primary + ") or one of its mirrors instead");
  }
  if (service.kind == ServiceKind::kUnsupported) {
    throw config_error(std::string(option) + " " + name + " uses " + service.service_type +
                       ", which blobferry does not support yet");
  }
}

}  // namespace

void PlanOptions::define(CLI::App& sub) {
  sub.add_option("--from", from_, "source service (storage.yml); read only, never written")->required();
  sub.add_option("--to", to_, "target service (storage.yml)")->required();
  sub.add_option("--source", source_,
                 "what to copy: blobs (the blob table), listing (the source bucket), manifest, paperclip (a table's Paperclip columns)")
      ->capture_default_str();
  sub.add_option("--prefix", prefix_, "--source listing: only keys under this prefix");
  sub.add_option("--delimiter-depth", delimiter_depth_, "--source listing: split the listing along '/' this many levels deep")
      ->check(CLI::Range(0, 16));
  sub.add_option("--manifest", manifest_, "--source manifest: CSV or JSONL file of keys");
  sub.add_option("--key-prefix", key_prefix_, "--source blobs: only blobs whose key starts with this");
  sub.add_option("--created-before", created_before_, "--source blobs: only blobs created before this time (UTC)");
  sub.add_option("--created-after", created_after_, "--source blobs: only blobs created at or after this time (UTC)");
  sub.add_option("--id-range", id_range_, "--source blobs: only ids FIRST-LAST (inclusive, integer ids)");
  sub.add_option("--shard", shard_, "--source blobs: I/N, this enqueuer's slice of the table");
  sub.add_flag("--include-untracked-variants", untracked_variants_,
               "--source blobs: also copy variants/<key>/ files that pre-6.1 Rails wrote without blob rows");
  sub.add_option("--table", paperclip_.table, "--source paperclip: the model's table, e.g. users");
  sub.add_option("--attachment", paperclip_.attachment, "--source paperclip: the has_attached_file name, e.g. avatar");
  sub.add_option("--record-type", paperclip_.record_type, "--source paperclip: the model, e.g. User or Admin::Document");
  sub.add_option("--path", paperclip_.path, "--source paperclip: Paperclip's :path template (default " +
                                                 std::string(PaperclipPath::kDefaultTemplate) + ")");
  sub.add_option("--style", paperclip_.style, "--source paperclip: the style to copy")->capture_default_str();
  sub.add_option("--hash-secret", paperclip_.hash_secret, "--source paperclip: the app's :hash_secret, for :hash paths")
      ->envname("BLOBFERRY_PAPERCLIP_HASH_SECRET");
  sub.add_option("--max-queued", max_queued_, "wait while more jobs than this are queued")->capture_default_str();
  sub.add_option("--page-size", page_size_, "rows per keyset page")->check(CLI::Range(1, 100000))->capture_default_str();
}

std::unique_ptr<MigrationSource> PlanOptions::source(const std::string& migration, const StorageConfig& config) const {
  SourceRegistry::check_name(source_);
  MigrationPlan plan;
  plan.migration = migration;
  plan.source = source_;
  plan.from = from_;
  plan.to = to_;
  check_copyable(config, from_, "--from");
  check_copyable(config, to_, "--to");
  if (from_ == to_) throw config_error("--from and --to are both " + from_ + ": a service cannot be migrated onto itself");
  plan.prefix = prefix_;
  plan.manifest = manifest_;
  plan.include_untracked_variants = untracked_variants_;
  plan.paperclip = paperclip_;
  BlobFilter& f = plan.filter;
  f.service_name = from_;
  f.key_prefix = key_prefix_;
  f.created_before = created_before_;
  f.created_after = created_after_;
  std::smatch m;
  if (!id_range_.empty()) {
    if (!std::regex_match(id_range_, m, std::regex(R"((\d{1,18})-(\d{1,18}))"))) {
      throw config_error("--id-range '" + id_range_ + "' is not FIRST-LAST (e.g. 1-500000)");
    }
    f.id_range = std::make_pair(std::stoll(m[1]), std::stoll(m[2]));
    if (f.id_range->first > f.id_range->second) throw config_error("--id-range '" + id_range_ + "' is empty: FIRST must not exceed LAST");
  }
  if (!shard_.empty()) {
    if (!std::regex_match(shard_, m, std::regex(R"((\d{1,4})/(\d{1,4}))"))) {
      throw config_error("--shard '" + shard_ + "' is not I/N (e.g. 0/4)");
    }
    f.shard_index = std::stoi(m[1]);
    f.shard_count = std::stoi(m[2]);
    if (f.shard_count < 1 || f.shard_index >= f.shard_count) {
      throw config_error("--shard '" + shard_ + "': I must be below N (0/4 … 3/4)");
    }
  }
  const PaperclipSpec& p = paperclip_;
  unsigned given = 0;
  if (!prefix_.empty() || delimiter_depth_ > 0) given |= kListingOptions;
  if (untracked_variants_) given |= kUntrackedVariants;
  if (!p.table.empty() || !p.attachment.empty() || !p.record_type.empty() || !p.path.empty()) given |= kPaperclipOptions;
  if (!key_prefix_.empty() || !created_before_.empty() || !created_after_.empty() || !id_range_.empty() || !shard_.empty()) {
    given |= kBlobFilters;
  }
  std::unique_ptr<MigrationSource> source = SourceRegistry::make(plan);
  source->check_options(given);
  return source;
}

EnqueueOptions PlanOptions::enqueue_options() const {
  EnqueueOptions options;
  options.max_queued = max_queued_;
  options.page_size = page_size_;
  return options;
}

}  // namespace blobferry
