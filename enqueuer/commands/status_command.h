// `blobferry status`: where a migration stands — queue, results, rate, ETA, workers.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/budget/budget_status.h"
#include "common/cli/command.h"
#include "common/queue/job_queue.h"
#include "common/queue/redis_queue.h"
#include "common/queue/upload_records.h"
#include "enqueuer/verification/phase_record.h"

namespace blobferry {

class PgConnection;

// Workers heartbeat every couple of seconds; a few missed beats mean gone.
inline constexpr std::chrono::seconds kLiveWorkerAge{15};

// Progress at one moment, as stored in cursor "status:last" between runs so a
// single `status` can still report a rate.
struct StatusSample {
  double time = 0;              // seconds since the Unix epoch
  std::uint64_t objects = 0;    // copied + skipped
  std::uint64_t bytes = 0;      // bytes copied + skipped
  std::uint64_t jobs_done = 0;  // finished_jobs()
};

struct StatusRates {
  double objects_per_second = 0;
  double bytes_per_second = 0;
  double jobs_per_second = 0;
};

// Everything status prints, gathered once per frame.
struct StatusView {
  std::string migration;
  std::string route;  // "from -> to (source)" from cursor "plan"; empty when absent
  Counts counts;
  std::optional<StatusRates> rates;  // nullopt: no earlier sample to compare with
  std::optional<double> eta_seconds;
  std::vector<std::string> workers;  // ids of workers with a recent heartbeat
  // The last or running validate and switch passes (cursors "validate" and
  // "switch"), as seen when the view was taken (PhaseRecord::seen_at).
  std::optional<PhaseRecord> validation;
  std::optional<PhaseRecord> switching;
  // Rows of the migration in blobferry_verified_blobs, read from the database
  // when one is configured and the migration is of --source blobs.
  std::optional<long long> verified_rows;
  std::vector<BudgetStatus> budgets;  // the shared rates workers use (common/budget/)
  std::vector<UploadProgress> uploads;  // giant objects' open multipart uploads (part jobs)
};

// Pure helpers (no I/O), public so tests can pin them with fixed values.
// Jobs pushed that are no longer queued, scheduled or in flight. Batch jobs
// hold many objects, so the ETA counts jobs, not objects.
std::uint64_t finished_jobs(const Counts& counts);
StatusSample sample_of(const Counts& counts, double time);
std::string encode_sample(const StatusSample& sample);
std::optional<StatusSample> decode_sample(std::string_view json);  // nullopt when malformed
// The start of the migration from cursor "plan" ({"started_at": epoch seconds, …}).
std::optional<double> plan_started_at(std::string_view plan_json);
// "from -> to (source)" from cursor "plan"; empty when it says nothing usable.
std::string plan_route(std::string_view plan_json);
// The shared budgets of the plan's services (cursor "plan") as the workers
// left them; empty when the plan is unreadable. Throws what Redis throws.
std::vector<BudgetStatus> budgets_of(RedisQueue& queue, const std::string& plan_json);
// nullopt when `later` is not later; counters that went down (a requeue) give 0.
std::optional<StatusRates> rates_between(const StatusSample& earlier, const StatusSample& later);
// 0 when idle; nullopt while the rate is unknown or zero.
std::optional<double> eta_seconds(const Counts& counts, const std::optional<StatusRates>& rates);
// Idle with no failure records and no dead payloads.
bool migration_done(const Counts& counts);
// One word for the copy phase: "planning" (no job pushed yet), "paused",
// "copying", "failed" (idle with failures or dead payloads) or "done".
const char* migration_state(const Counts& counts);
// The migration's phase: "paused" first, then "switching" or "validating"
// while such a pass runs, else the copy phase above.
const char* migration_state(const StatusView& view);
// Whether the migration's verified rows are in blobferry_verified_blobs
// (--source blobs; Paperclip records its own).
bool records_verified_rows(std::string_view plan_json);
nlohmann::json status_json(const StatusView& view);
// The lines of the human-readable report; with `bar_width` > 0 the first
// line is a progress bar.
std::vector<std::string> status_lines(const StatusView& view, std::size_t bar_width);
// One compact line, for `--watch` into a pipe or a log.
std::string status_summary_line(const StatusView& view);

// Fills view.validation and view.switching from the migration's cursors.
void load_phases(RedisQueue& queue, double now, StatusView& view);
// The migration's rows in blobferry_verified_blobs, read only (0 before any
// validate created the table); nullopt, with a warning, when the database
// fails, and db is then dropped so the next call reconnects.
std::optional<long long> read_verified_rows(std::unique_ptr<PgConnection>& db, const std::string& database_url,
                                            const std::string& migration);

// Whether Redis holds anything of the migration: a job ever pushed, or a plan.
bool migration_exists(RedisQueue& queue);

// Opens the migration's queue and throws a kConfig error when Redis holds
// nothing of it (no job ever pushed, no plan), so a typo in the name is caught
// instead of reporting an empty migration. Shared by the control commands.
std::unique_ptr<RedisQueue> open_existing_migration(const std::string& redis_url, const std::string& migration);

class StatusCommand : public Command {
 public:
  StatusCommand();
  ~StatusCommand() override;  // where PgConnection is complete
  void define(CLI::App& sub) override;
  int run(const GlobalOptions& global) override;

 private:
  StatusView snapshot(RedisQueue& queue, const std::optional<StatusSample>& baseline, double now);
  std::optional<StatusSample> stored_baseline(RedisQueue& queue, double now) const;
  void remember(RedisQueue& queue, const StatusSample& sample) const;
  int run_once(RedisQueue& queue);
  int watch(RedisQueue& queue);
  void print(const StatusView& view, std::size_t bar_width);

  std::string migration_;
  bool json_ = false;
  bool watch_ = false;
  double interval_seconds_ = 2.0;
  std::optional<std::string> plan_;  // cursor "plan", read once per run
  std::string database_url_;         // empty: no verified rows to read
  std::unique_ptr<PgConnection> db_;
};

}  // namespace blobferry
