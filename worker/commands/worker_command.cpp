// `blobferry worker`: pops and runs the jobs of one migration, or of every active one, until SIGTERM.
#include "worker/commands/worker_command.h"

#include <unistd.h>

#include <atomic>
#include <memory>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "common/budget/budget_gates.h"
#include "common/budget/redis_budget_store.h"
#include "common/base/error.h"
#include "common/metrics/metrics_server.h"
#include "common/queue/queue_connection.h"
#include "common/storage/storage_config.h"
#include "common/base/signal_watcher.h"
#include "worker/loop/worker_loop.h"

namespace blobferry {
namespace {

std::string make_worker_id() {
  char host[256] = "host";
  gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + new_job_id().substr(0, 6);
}

}  // namespace

void WorkerCommand::define(CLI::App& sub) {
  sub.add_option("--migration", migration_, "the migration whose jobs to run (default: every active migration, round robin)");
  sub.add_option("--concurrency", concurrency_, "copies in flight on job threads (large objects, Disk, server-side copies)")->check(CLI::Range(1, 1024))->capture_default_str();
  sub.add_option("--transfers", transfers_, "small S3 copies in flight on the event loop, beyond --concurrency (0: none)")->check(CLI::Range(0, 4096))->capture_default_str();
  sub.add_option("--host-connections", host_connections_, "the event loop's connections to one endpoint at most")->check(CLI::Range(1, 4096))->capture_default_str();
  sub.add_flag("--exit-when-empty", exit_when_empty_, "exit once nothing is queued, scheduled or in flight anywhere");
  sub.add_option("--metrics-addr", metrics_addr_, "serve Prometheus metrics at HOST:PORT (/metrics, /healthz, /ready)");
  sub.add_option("--lease-seconds", lease_seconds_, "a job of a worker silent this long returns to the queue")->check(CLI::Range(1, 3600))->capture_default_str();
  sub.add_option("--drain-seconds", drain_seconds_, "on SIGTERM, time for copies in flight to finish")->check(CLI::Range(0, 86400))->capture_default_str();
  sub.add_option("--retries", retries_, "in-place retries of a transient failure")->check(CLI::Range(0, 100))->capture_default_str();
  sub.add_option("--max-attempts", max_attempts_, "runs of a job before it is recorded as failed")->check(CLI::Range(1, 100))->capture_default_str();
  sub.add_option("--part-size-mib", part_size_mib_, "multipart part size; memory is about concurrency x part size")->check(CLI::Range(5, 5120))->capture_default_str();
  sub.add_option("--part-job-threshold-mib", part_job_threshold_mib_, "objects larger than this become one job per part that any worker may take (0: never)")->check(CLI::Range(0, 5 * 1024 * 1024))->capture_default_str();
  sub.add_option("--part-job-size-mib", part_job_size_mib_, "bytes per part job; memory is about concurrency x this")->check(CLI::Range(5, 5120))->capture_default_str();
  budget_options_.define(sub, "taking these too (the lower of these and the migration's applies)");
}

int WorkerCommand::run(const GlobalOptions& global) {
  // First, before any thread exists, so every thread inherits the blocked mask.
  std::atomic<WorkerLoop*> running{nullptr};
  std::atomic<bool> stop_early{false};
  SignalWatcher signals([&](int signal) {
    spdlog::info("signal {}: finishing copies in flight, taking no new jobs", signal);
    stop_early.store(true);
    if (WorkerLoop* loop = running.load()) loop->request_stop();
  });

  const BudgetLimits own_budget = budget_options_.limits();
  ServiceRegistry services(StorageConfig::load(global.storage_config));
  RedisQueueOptions queue_options;
  queue_options.lease_duration = std::chrono::seconds(lease_seconds_);
  // One migration, or every migration of this Redis: listed now and every few
  // seconds, each queue opened on the one shared connection.
  std::unique_ptr<RedisQueue> queue;
  std::unique_ptr<MigrationSet> migrations;
  if (!migration_.empty()) {
    queue = open_redis_queue(global.redis_url, migration_, queue_options);
  } else {
    std::shared_ptr<RedisClient> client = connect_redis(global.redis_url);
    migrations = std::make_unique<MigrationSet>(
        [client] { return RedisQueue::migrations(*client); },
        [client, queue_options](const std::string& name) -> std::shared_ptr<JobQueue> {
          return std::make_shared<RedisQueue>(client, name, queue_options);
        });
  }

  CopyEngineOptions engine_options;
  engine_options.part_size = static_cast<std::uint64_t>(part_size_mib_) * CopyEngineOptions::kMiB;
  RetryOptions retry;
  retry.retries = retries_;
  retry.max_job_attempts = max_attempts_;
  engine_options.retry_policy = RetryPolicy(retry);
  const CopyEngine engine(engine_options);

  Metrics metrics;
  std::unique_ptr<MetricsServer> metrics_server;
  if (!metrics_addr_.empty()) metrics_server = std::make_unique<MetricsServer>(metrics, metrics_addr_);

  // Its own connection: budget calls are short and must not wait behind a blocking fetch.
  std::shared_ptr<RedisClient> budget_client = connect_redis(global.redis_url);
  BudgetGates budgets([budget_client](const std::string& name) {
    return std::make_unique<RedisBudgetStore>(budget_client, name);
  }, services.config(), own_budget, &metrics);

  WorkerOptions options;
  options.budgets = &budgets;
  options.migration = migration_;
  options.worker_id = make_worker_id();
  options.concurrency = concurrency_;
  options.transfers = transfers_;
  options.host_connections = host_connections_;
  options.exit_when_empty = exit_when_empty_;
  options.lease = queue_options.lease_duration;
  options.drain = std::chrono::seconds(drain_seconds_);
  options.parts.threshold = static_cast<std::uint64_t>(part_job_threshold_mib_) * PartJobOptions::kMiB;
  options.parts.part_size = static_cast<std::uint64_t>(part_job_size_mib_) * PartJobOptions::kMiB;
  options.parts.server_side_copy = engine_options.server_side_copy;
  auto loop = queue ? std::make_unique<WorkerLoop>(*queue, services, engine, &metrics, options)
                    : std::make_unique<WorkerLoop>(*migrations, services, engine, &metrics, options);

  running.store(loop.get());
  if (stop_early.load()) loop->request_stop();
  if (metrics_server) metrics_server->set_ready(true);
  spdlog::info("worker {} on {}: concurrency {}, queue {}", options.worker_id,
               migration_.empty() ? std::string("every active migration") : "migration " + migration_, concurrency_,
               RedisUrl::parse(global.redis_url).address());

  const WorkerSummary summary = loop->run();
  running.store(nullptr);
  spdlog::info("worker {} done: {} copied, {} skipped, {} failed, {} bytes, {} rescheduled, {} malformed",
               options.worker_id, summary.copied, summary.skipped, summary.failed, summary.bytes,
               summary.rescheduled, summary.buried);
  if (!summary.config_error.empty()) throw config_error(summary.config_error);
  // Copies cut short by the drain deadline were cancelled and joined; their
  // jobs are back in the queue for another worker.
  return 0;
}

}  // namespace blobferry
