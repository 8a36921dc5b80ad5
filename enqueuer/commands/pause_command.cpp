// `blobferry pause` / `blobferry resume`: stop or restart every worker taking a migration's jobs.
#include "enqueuer/commands/pause_command.h"

#include <cstdio>

#include <CLI/CLI.hpp>

#include "enqueuer/commands/status_command.h"

namespace blobferry {

void PauseCommand::define(CLI::App& sub) {
  sub.add_option("--migration", migration_, "migration name (as given to enqueue)")->required();
  if (pause_) {
    sub.footer(
        "Workers stop taking the migration's jobs at their next fetch (within a fraction of a second); copies in "
        "flight finish and are recorded. Nothing is lost: queued and scheduled jobs wait, `--exit-when-empty` "
        "workers keep waiting too, and `blobferry resume` restarts where it stopped. `blobferry status` shows "
        "paused.");
  } else {
    sub.footer("Workers take the migration's jobs again at their next fetch. Resuming a running migration changes "
               "nothing.");
  }
}

int PauseCommand::run(const GlobalOptions& global) {
  // open_existing_migration refuses an unknown name (a typo would otherwise
  // pause nothing and say it did).
  auto queue = open_existing_migration(global.redis_url, migration_);
  const bool was_paused = queue->paused();
  queue->set_paused(pause_);
  const Counts counts = queue->counts();
  if (pause_) {
    std::printf("migration %s %s: workers take none of its jobs (%llu queued, %llu in flight finishing); "
                "`blobferry resume --migration %s` restarts them\n",
                migration_.c_str(), was_paused ? "was already paused" : "paused",
                static_cast<unsigned long long>(counts.queued), static_cast<unsigned long long>(counts.in_flight),
                migration_.c_str());
  } else {
    std::printf("migration %s %s: workers take its jobs again (%llu queued)\n", migration_.c_str(),
                was_paused ? "resumed" : "was not paused", static_cast<unsigned long long>(counts.queued));
  }
  return 0;
}

}  // namespace blobferry
