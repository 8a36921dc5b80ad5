// blobferry: one binary, subcommands for the control plane and the data plane.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "common/cli/command.h"
#include "common/base/error.h"
#include "common/base/logging.h"
#include "enqueuer/commands/cancel_command.h"
#include "enqueuer/commands/enqueue_command.h"
#include "enqueuer/commands/migrate_command.h"
#include "enqueuer/commands/pause_command.h"
#include "enqueuer/commands/report_command.h"
#include "enqueuer/commands/requeue_command.h"
#include "enqueuer/commands/services_command.h"
#include "enqueuer/commands/status_command.h"
#include "enqueuer/commands/switch_command.h"
#include "enqueuer/commands/validate_command.h"
#include "enqueuer/commands/web_command.h"
#include "worker/commands/worker_command.h"

namespace {

using blobferry::Command;

struct Entry {
  const char* name;
  const char* description;
  std::unique_ptr<Command> command;
};

std::vector<Entry> all_commands() {
  std::vector<Entry> entries;
  entries.push_back({"services", "List the services of storage.yml, check each, count blobs per service",
                     std::make_unique<blobferry::ServicesCommand>()});
  entries.push_back({"migrate", "Embedded mode, no Redis: plan, copy, validate (and --switch) in one process",
                     std::make_unique<blobferry::MigrateCommand>()});
  entries.push_back({"enqueue", "Push a migration's copy jobs to Redis (from the blob table, a listing or a manifest)",
                     std::make_unique<blobferry::EnqueueCommand>()});
  entries.push_back({"status", "Show a migration's queue, results, rate, ETA and live workers",
                     std::make_unique<blobferry::StatusCommand>()});
  entries.push_back({"pause", "Stop every worker from taking a migration's jobs (copies in flight finish)",
                     std::make_unique<blobferry::PauseCommand>(true)});
  entries.push_back({"resume", "Let workers take a paused migration's jobs again",
                     std::make_unique<blobferry::PauseCommand>(false)});
  entries.push_back({"web", "Serve the operator page: migrations, progress, failures, requeue, pause",
                     std::make_unique<blobferry::WebCommand>()});
  entries.push_back({"requeue", "Put a migration's failed keys back on its queue",
                     std::make_unique<blobferry::RequeueCommand>()});
  entries.push_back({"report", "List a migration's failed and dead keys and its success totals (CSV or JSONL)",
                     std::make_unique<blobferry::ReportCommand>()});
  entries.push_back({"cancel", "Show, or with --purge --yes delete, every Redis key of a migration",
                     std::make_unique<blobferry::CancelCommand>()});
  entries.push_back({"validate", "Prove every object of a migration is on the target with the right size and checksum",
                     std::make_unique<blobferry::ValidateCommand>()});
  entries.push_back({"switch", "Point verified blobs at the target service, in small batches",
                     std::make_unique<blobferry::SwitchCommand>()});
  entries.push_back({"worker", "Pop and run copy jobs until SIGTERM: of one migration, or of every active one",
                     std::make_unique<blobferry::WorkerCommand>()});
  return entries;
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

// Global options live on the top-level app; fallthrough lets them follow the
// subcommand's name too, as the command-line contract promises.
void define_global_options(CLI::App& app, blobferry::GlobalOptions& global) {
  global.storage_config = env_or("BLOBFERRY_STORAGE_CONFIG", global.storage_config);
  global.database_url = env_or("DATABASE_URL", "");
  global.redis_url = env_or("REDIS_URL", "");
  app.add_option("--storage-config", global.storage_config,
                 "storage.yml path (env BLOBFERRY_STORAGE_CONFIG)")->capture_default_str();
  app.add_option("--database-url", global.database_url, "PostgreSQL URL (env DATABASE_URL)");
  app.add_option("--redis-url", global.redis_url, "Redis URL (env REDIS_URL)");
  app.add_option("--log-format", global.log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))->capture_default_str();
  app.add_option("--log-level", global.log_level, "trace, debug, info, warn, error, critical, off")
      ->capture_default_str();
  app.fallthrough();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"blobferry: move every stored file of an application to another storage service"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "blobferry 0.1.0");
  blobferry::GlobalOptions global;
  define_global_options(app, global);

  std::vector<Entry> entries = all_commands();
  for (Entry& entry : entries) {
    CLI::App* sub = app.add_subcommand(entry.name, entry.description);
    entry.command->define(*sub);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "blobferry: %s; see blobferry --help\n", e.what());
    return 2;
  }

  try {
    blobferry::setup_logging(global.log_format, global.log_level);
    for (Entry& entry : entries) {
      if (app.got_subcommand(entry.name)) return entry.command->run(global);
    }
  } catch (const blobferry::Error& e) {
    std::fprintf(stderr, "blobferry: %s\n", e.what());
    return e.kind() == blobferry::ErrorKind::kConfig ? 2 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "blobferry: %s\n", e.what());
    return 1;
  }
  return 2;
}
