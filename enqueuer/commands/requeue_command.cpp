// `blobferry requeue`: failed keys of a migration back to its queue.
#include "enqueuer/commands/requeue_command.h"

#include <cstdio>

#include <CLI/CLI.hpp>

#include "common/base/failure_reason.h"

#include "enqueuer/commands/status_command.h"

namespace blobferry {
namespace {

std::string reasons_of(const Counts& counts) {
  std::string out;
  for (const auto& [reason, n] : counts.failed_by_reason) {
    out += (out.empty() ? "" : ", ") + reason + " " + std::to_string(n);
  }
  return out.empty() ? "none" : out;
}

}  // namespace

void RequeueCommand::define(CLI::App& sub) {
  sub.add_option("--migration", migration_, "migration name (as given to enqueue)")->required();
  sub.add_option("--reason", reason_,
                 "only failures of this reason class (" + failure_reason_names() +
                     "; `blobferry status` lists those of the migration)");
  sub.footer(
      "Each failure record goes back as the single-key job that retries exactly that key, with its attempt count "
      "reset; the record and its counters are removed. Malformed payloads in the dead list cannot be retried and "
      "stay (see `blobferry report`).");
}

int RequeueCommand::run(const GlobalOptions& global) {
  // A misspelt reason would match nothing and look like success.
  if (reason_) failure_reason_option(*reason_, "--reason");
  auto queue = open_existing_migration(global.redis_url, migration_);
  const Counts before = queue->counts();
  const std::size_t requeued = queue->requeue_failed(reason_);
  const std::string which = reason_ ? " with reason " + *reason_ : "";
  std::printf("requeued %zu failed keys%s of migration %s\n", requeued, which.c_str(), migration_.c_str());
  if (requeued == 0 && reason_ && !before.failed_by_reason.contains(*reason_)) {
    std::printf("no failure has reason %s; failures by reason: %s\n", reason_->c_str(),
                reasons_of(before).c_str());
  }
  if (requeued > 0 && queue->live_workers(kLiveWorkerAge).empty()) {
    std::printf("no live worker: start `blobferry worker --migration %s` to retry them\n", migration_.c_str());
  }
  return 0;
}

}  // namespace blobferry
