// The options that describe what a migration moves, shared by enqueue and migrate.
#pragma once

#include <memory>
#include <string>

#include "common/storage/storage_config.h"
#include "enqueuer/sources/blobs/blob_enqueuer.h"
#include "enqueuer/planning/migration_plan.h"
#include "enqueuer/sources/migration_source.h"

// Only plan_options.cpp needs CLI11 itself (see common/cli/command.h).
namespace CLI {
class App;
}  // namespace CLI

namespace blobferry {

class PlanOptions {
 public:
  // Adds --from, --to, --source, --prefix, --manifest, the blob filters,
  // the Paperclip columns and path, --max-queued and --page-size to `sub`.
  void define(CLI::App& sub);

  // Checks the values against each other and storage.yml (known services,
  // not a Mirror, source differs from target), then lets the --source check
  // its own options, and returns it holding the plan. Throws Error kConfig.
  std::unique_ptr<MigrationSource> source(const std::string& migration, const StorageConfig& config) const;
  EnqueueOptions enqueue_options() const;
  int delimiter_depth() const { return delimiter_depth_; }
  const std::string& from() const { return from_; }
  const std::string& to() const { return to_; }

 private:
  std::string from_, to_, source_ = "blobs", prefix_, manifest_;
  std::string key_prefix_, created_before_, created_after_, id_range_, shard_;
  std::uint64_t max_queued_ = 100000;
  int page_size_ = 1000;
  int delimiter_depth_ = 0;
  bool untracked_variants_ = false;
  PaperclipSpec paperclip_;
};

}  // namespace blobferry
