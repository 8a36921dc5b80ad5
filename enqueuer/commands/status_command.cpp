// `blobferry status`: where a migration stands — queue, results, rate, ETA, workers.
#include "enqueuer/commands/status_command.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <mutex>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/base/error.h"
#include "common/db/pg_connection.h"
#include "common/budget/redis_budget_store.h"
#include "common/queue/queue_connection.h"
#include "common/queue/redis_url.h"
#include "common/cli/human_units.h"
#include "common/cli/progress_bar.h"
#include "common/base/signal_watcher.h"
#include "enqueuer/verification/verification_store.h"

namespace blobferry {
namespace {

using Json = nlohmann::json;

constexpr const char* kLastSampleCursor = "status:last";
constexpr const char* kPlanCursor = "plan";
// A stored sample younger than this gives a rate too noisy to show, and is
// kept rather than overwritten so rapid calls still measure a useful window.
constexpr double kMinSampleAgeSeconds = 1.0;
constexpr std::size_t kBarWidth = 30;
constexpr double kWatchRateWindowSeconds = 30.0;

double epoch_seconds() {
  using namespace std::chrono;
  return duration_cast<duration<double>>(system_clock::now().time_since_epoch()).count();
}

std::uint64_t increase(std::uint64_t earlier, std::uint64_t later) { return later > earlier ? later - earlier : 0; }

std::optional<std::uint64_t> unsigned_field(const Json& json, const char* name) {
  auto it = json.find(name);
  if (it == json.end() || !it->is_number_unsigned()) return std::nullopt;
  return it->get<std::uint64_t>();
}

std::string string_field(const Json& json, const char* name) {
  auto it = json.find(name);
  return it != json.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Json nullable(const std::optional<double>& value) { return value ? Json(*value) : Json(nullptr); }

std::string format(const char* pattern, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, pattern, value);
  return buf;
}

std::string percent(const Counts& counts) {
  if (counts.queued_total == 0) return "0.0%";
  return format("%.1f%%", 100.0 * static_cast<double>(finished_jobs(counts)) /
                              static_cast<double>(counts.queued_total));
}

double fraction_done(const Counts& counts) {
  if (counts.queued_total == 0) return 0.0;
  return static_cast<double>(finished_jobs(counts)) / static_cast<double>(counts.queued_total);
}

// Small rates need decimals to be more than "0.0".
std::string objects_rate(double per_second) { return format(per_second < 10 ? "%.2f" : "%.1f", per_second); }

std::string bytes_rate(double per_second) {
  return human_bytes(static_cast<std::uint64_t>(std::max(0.0, per_second))) + "/s";
}

std::string failed_breakdown(const Counts& counts) {
  std::string out;
  for (const auto& [reason, n] : counts.failed_by_reason) {
    out += (out.empty() ? "" : ", ") + reason + " " + std::to_string(n);
  }
  return out.empty() ? out : " (" + out + ")";
}

std::string rate_text(const StatusView& view) {
  if (!view.rates) return "unknown yet (run status again, or use --watch)";
  std::string eta = view.eta_seconds ? human_duration(*view.eta_seconds) : "unknown";
  return objects_rate(view.rates->objects_per_second) + " objects/s, " + bytes_rate(view.rates->bytes_per_second) +
         ", ETA " + eta;
}

std::string workers_text(const StatusView& view) {
  std::string out = std::to_string(view.workers.size()) + " live";
  for (std::size_t i = 0; i < view.workers.size(); ++i) out += (i == 0 ? ": " : ", ") + view.workers[i];
  return out;
}

std::string state_text(const StatusView& view) {
  const Counts& c = view.counts;
  if (c.paused) {
    return "paused: no worker takes its jobs (copies in flight finish); `blobferry resume --migration " +
           view.migration + "` restarts them";
  }
  const std::string state = migration_state(view);
  if (state == "switching") return "switching: a `blobferry switch` is moving verified rows to the target";
  if (state == "validating") return "validating: a `blobferry validate` is proving the objects on the target";
  if (migration_done(c)) return "done: every job finished and nothing failed";
  if (c.idle()) {
    return "finished with " + std::to_string(c.failed) + " failed keys and " + std::to_string(c.dead) +
           " dead payloads: list them with `blobferry report`, retry with `blobferry requeue`";
  }
  if (view.workers.empty()) return "waiting: no live worker (start `blobferry worker`)";
  return "running";
}

std::uint64_t count_of(const PhaseRecord& record, const char* name) {
  auto it = record.counts.find(name);
  return it == record.counts.end() ? 0 : it->second;
}

Json phase_json(const std::optional<PhaseRecord>& record) {
  if (!record) return nullptr;
  Json json{{"running", record->running},
            {"interrupted", record->interrupted},
            {"started_at", record->started_at},
            {"finished_at", record->finished_at > 0 ? Json(record->finished_at) : Json(nullptr)}};
  for (const auto& [name, value] : record->counts) json[name] = value;
  return json;
}

std::string clock_time(double epoch);

std::string phase_when(const PhaseRecord& record) {
  if (record.running) return "running since " + clock_time(record.started_at);
  return std::string(record.interrupted ? "interrupted" : "finished") + " at " +
         clock_time(record.finished_at > 0 ? record.finished_at : record.updated_at);
}

// "verified 27 of 30 rows; validate finished at 12:01:02: 3 missing, 0 differ, 0 unverifiable"
std::string validation_text(const StatusView& view) {
  std::string out;
  const std::optional<PhaseRecord>& v = view.validation;
  if (view.verified_rows) {
    out = std::to_string(*view.verified_rows) + " rows verified";
    if (v && v->counts.contains("to_verify")) out += " of " + std::to_string(count_of(*v, "to_verify"));
  }
  if (v) {
    out += (out.empty() ? "" : "; ") + std::string("validate ") + phase_when(*v) + ": " +
           std::to_string(count_of(*v, "verified")) + " of " + std::to_string(count_of(*v, "checked")) +
           " checked verified, " + std::to_string(count_of(*v, "missing")) + " missing, " +
           std::to_string(count_of(*v, "mismatched")) + " differ, " + std::to_string(count_of(*v, "unverifiable")) +
           " unverifiable";
  }
  return out;
}

std::string clock_time(double epoch) {
  const std::time_t seconds = static_cast<std::time_t>(epoch);
  std::tm local{};
  localtime_r(&seconds, &local);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &local);
  return buf;
}

}  // namespace

std::uint64_t finished_jobs(const Counts& counts) {
  const std::uint64_t pending = counts.queued + counts.scheduled + counts.in_flight;
  return increase(pending, counts.queued_total);
}

StatusSample sample_of(const Counts& counts, double time) {
  return {time, counts.copied + counts.skipped, counts.bytes_copied + counts.bytes_skipped, finished_jobs(counts)};
}

std::string encode_sample(const StatusSample& sample) {
  return Json{{"time", sample.time}, {"objects", sample.objects}, {"bytes", sample.bytes}, {"jobs", sample.jobs_done}}
      .dump();
}

std::optional<StatusSample> decode_sample(std::string_view json_text) {
  const Json json = Json::parse(json_text, nullptr, false);
  if (!json.is_object()) return std::nullopt;
  auto time = json.find("time");
  auto objects = unsigned_field(json, "objects");
  auto bytes = unsigned_field(json, "bytes");
  auto jobs = unsigned_field(json, "jobs");
  if (time == json.end() || !time->is_number() || !objects || !bytes || !jobs) return std::nullopt;
  return StatusSample{time->get<double>(), *objects, *bytes, *jobs};
}

std::optional<double> plan_started_at(std::string_view plan_json) {
  const Json json = Json::parse(plan_json, nullptr, false);
  if (!json.is_object()) return std::nullopt;
  auto it = json.find("started_at");
  if (it == json.end() || !it->is_number() || it->get<double>() <= 0) return std::nullopt;
  return it->get<double>();
}

std::string plan_route(std::string_view plan_json) {
  const Json json = Json::parse(plan_json, nullptr, false);
  if (!json.is_object()) return {};
  const std::string from = string_field(json, "from"), to = string_field(json, "to");
  if (from.empty() || to.empty()) return {};
  const std::string source = string_field(json, "source");
  return from + " -> " + to + (source.empty() ? "" : " (" + source + ")");
}

std::optional<StatusRates> rates_between(const StatusSample& earlier, const StatusSample& later) {
  const double elapsed = later.time - earlier.time;
  if (!(elapsed > 0)) return std::nullopt;
  return StatusRates{static_cast<double>(increase(earlier.objects, later.objects)) / elapsed,
                     static_cast<double>(increase(earlier.bytes, later.bytes)) / elapsed,
                     static_cast<double>(increase(earlier.jobs_done, later.jobs_done)) / elapsed};
}

std::optional<double> eta_seconds(const Counts& counts, const std::optional<StatusRates>& rates) {
  const std::uint64_t pending = counts.queued + counts.scheduled + counts.in_flight;
  if (pending == 0) return 0.0;
  if (!rates || rates->jobs_per_second <= 0) return std::nullopt;
  return static_cast<double>(pending) / rates->jobs_per_second;
}

bool migration_done(const Counts& counts) { return counts.idle() && counts.failed == 0 && counts.dead == 0; }

const char* migration_state(const Counts& counts) {
  // Paused first: a paused migration is one an operator is holding, whatever its queue.
  if (counts.paused) return "paused";
  if (counts.queued_total == 0) return "planning";
  if (!counts.idle()) return "copying";
  return migration_done(counts) ? "done" : "failed";
}

const char* migration_state(const StatusView& view) {
  if (view.counts.paused) return "paused";
  if (view.switching && view.switching->running) return "switching";
  if (view.validation && view.validation->running) return "validating";
  return migration_state(view.counts);
}

bool records_verified_rows(std::string_view plan_json) {
  const Json json = Json::parse(plan_json, nullptr, false);
  return json.is_object() && string_field(json, "source") == "blobs";
}

void load_phases(RedisQueue& queue, double now, StatusView& view) {
  auto load = [&](const char* cursor) -> std::optional<PhaseRecord> {
    const std::optional<std::string> text = queue.get_cursor(cursor);
    if (!text) return std::nullopt;
    const std::optional<PhaseRecord> record = PhaseRecord::decode(*text);
    if (!record) return std::nullopt;
    return record->seen_at(now);
  };
  view.validation = load(PhaseRecord::kValidateCursor);
  view.switching = load(PhaseRecord::kSwitchCursor);
}

std::optional<long long> read_verified_rows(std::unique_ptr<PgConnection>& db, const std::string& database_url,
                                            const std::string& migration) {
  if (database_url.empty()) return std::nullopt;
  try {
    if (!db) db = std::make_unique<PgConnection>(database_url);
    return VerificationStore::count_if_created(*db, migration);
  } catch (const std::exception& e) {
    db.reset();
    spdlog::warn("counting verified rows of {}: {}", migration, e.what());
    return std::nullopt;
  }
}

namespace {

Json uploads_json(const std::vector<UploadProgress>& uploads) {
  Json list = Json::array();
  for (const UploadProgress& upload : uploads) {
    list.push_back({{"key", upload.record.target_key},
                    {"parts_done", upload.parts_done},
                    {"parts", upload.record.part_count},
                    {"part_uploads", upload.part_uploads},
                    {"bytes", upload.record.size}});
  }
  return list;
}

Json budgets_json(const std::vector<BudgetStatus>& budgets) {
  Json list = Json::array();
  for (const BudgetStatus& budget : budgets) {
    const auto positive = [](double value) { return value > 0 ? Json(value) : Json(nullptr); };
    list.push_back({{"service", budget.service},
                    {"direction", budget.direction},
                    {"requests_per_second", positive(budget.requests.rate)},
                    {"max_requests_per_second", positive(budget.requests.ceiling)},
                    {"learned_requests_per_second", positive(budget.requests.learned)},
                    {"cuts", budget.requests.cuts},
                    {"max_bandwidth", budget.bytes ? positive(budget.bytes->ceiling) : Json(nullptr)}});
  }
  return list;
}

std::string budget_text(const BudgetStatus& budget) {
  char rate[64];
  std::snprintf(rate, sizeof rate, "%.1f req/s", budget.requests.rate);
  std::string text = budget.service + " " + budget.direction + ": " +
                     (budget.requests.rate > 0 ? std::string(rate) + " shared" : std::string("unlimited"));
  if (budget.requests.ceiling > 0) {
    std::snprintf(rate, sizeof rate, "%.0f", budget.requests.ceiling);
    text += " (ceiling " + std::string(rate) + ")";
  }
  text += ", cut " + std::to_string(budget.requests.cuts) + (budget.requests.cuts == 1 ? " time" : " times");
  if (budget.bytes) text += ", bandwidth " + bytes_rate(budget.bytes->ceiling);
  return text;
}

}  // namespace

// The buckets of the plan's services (cursor "plan"), as the workers left them.
std::vector<BudgetStatus> budgets_of(RedisQueue& queue, const std::string& plan_json) {
  const Json plan = Json::parse(plan_json, nullptr, false);
  if (!plan.is_object()) return {};
  RedisBudgetStore store(queue.client(), queue.migration());
  return read_budget_status(store, string_field(plan, "from"), string_field(plan, "to"));
}

Json status_json(const StatusView& view) {
  const Counts& c = view.counts;
  Json by_reason = Json::object();
  for (const auto& [reason, n] : c.failed_by_reason) by_reason[reason] = n;
  Json rate_objects = view.rates ? Json(view.rates->objects_per_second) : Json(nullptr);
  Json rate_bytes = view.rates ? Json(view.rates->bytes_per_second) : Json(nullptr);
  return Json{{"migration", view.migration},
              {"queued", c.queued},
              {"scheduled", c.scheduled},
              {"in_flight", c.in_flight},
              {"dead", c.dead},
              {"copied", c.copied},
              {"skipped", c.skipped},
              {"failed", c.failed},
              {"failed_by_reason", by_reason},
              {"bytes_copied", c.bytes_copied},
              {"bytes_skipped", c.bytes_skipped},
              {"total", c.queued_total},
              {"rate_objects_per_second", rate_objects},
              {"rate_bytes_per_second", rate_bytes},
              {"eta_seconds", nullable(view.eta_seconds)},
              {"workers", view.workers},
              {"budgets", budgets_json(view.budgets)},
              {"open_uploads", uploads_json(view.uploads)},
              {"paused", c.paused},
              {"state", migration_state(view)},
              {"done", migration_done(c)},
              {"verified_rows", view.verified_rows ? Json(*view.verified_rows) : Json(nullptr)},
              {"validation", phase_json(view.validation)},
              {"switch", phase_json(view.switching)}};
}

std::vector<std::string> status_lines(const StatusView& view, std::size_t bar_width) {
  const Counts& c = view.counts;
  const std::string jobs = std::to_string(finished_jobs(c)) + " of " + std::to_string(c.queued_total) + " jobs finished";
  std::string header = "migration " + view.migration + (view.route.empty() ? "" : ", " + view.route);
  if (bar_width > 0) header += "  " + ProgressBar::bar(fraction_done(c), bar_width) + " " + percent(c) + "  " + jobs;
  else header += ": " + jobs + " (" + percent(c) + ")";
  std::vector<std::string> lines{
      header,
      "  queue    " + std::to_string(c.queued) + " queued, " + std::to_string(c.scheduled) + " scheduled for retry, " +
          std::to_string(c.in_flight) + " in flight, " + std::to_string(c.dead) + " dead",
      "  results  " + std::to_string(c.copied) + " copied (" + human_bytes(c.bytes_copied) + "), " +
          std::to_string(c.skipped) + " skipped (" + human_bytes(c.bytes_skipped) + "), " + std::to_string(c.failed) +
          " failed" + failed_breakdown(c),
      "  rate     " + rate_text(view),
      "  workers  " + workers_text(view),
      "  state    " + state_text(view),
  };
  if (const std::string verified = validation_text(view); !verified.empty()) lines.push_back("  verified " + verified);
  if (view.switching) {
    const PhaseRecord& s = *view.switching;
    lines.push_back("  switch   " + phase_when(s) + ": " + std::to_string(count_of(s, "switched")) + " rows switched, " +
                    std::to_string(count_of(s, "unverified")) + " not verified yet");
  }
  for (const BudgetStatus& budget : view.budgets) lines.push_back("  budget   " + budget_text(budget));
  for (const UploadProgress& upload : view.uploads) {
    lines.push_back("  upload   " + upload.record.target_key + " (" + human_bytes(upload.record.size) + "): " +
                    std::to_string(upload.parts_done) + " of " + std::to_string(upload.record.part_count) +
                    " parts done, open multipart upload");
  }
  return lines;
}

std::string status_summary_line(const StatusView& view) {
  const Counts& c = view.counts;
  std::string line = view.migration + " " + percent(c) + " queued " + std::to_string(c.queued) + " scheduled " +
                     std::to_string(c.scheduled) + " in_flight " + std::to_string(c.in_flight) + " copied " +
                     std::to_string(c.copied) + " skipped " + std::to_string(c.skipped) + " failed " +
                     std::to_string(c.failed) + " dead " + std::to_string(c.dead);
  if (view.rates) {
    line += " rate " + objects_rate(view.rates->objects_per_second) + "/s " + bytes_rate(view.rates->bytes_per_second);
  }
  if (view.eta_seconds) line += " eta " + human_duration(*view.eta_seconds);
  if (c.paused) line += " paused";
  return line + " workers " + std::to_string(view.workers.size());
}

bool migration_exists(RedisQueue& queue) {
  return queue.counts().queued_total > 0 || queue.get_cursor(kPlanCursor).has_value();
}

std::unique_ptr<RedisQueue> open_existing_migration(const std::string& redis_url, const std::string& migration) {
  auto queue = open_redis_queue(redis_url, migration);
  if (!migration_exists(*queue)) {
    throw config_error("no migration " + migration + " in Redis at " + RedisUrl::parse(redis_url).address() +
                       ": check the name (blobferry enqueue creates it)");
  }
  return queue;
}

StatusCommand::StatusCommand() = default;
StatusCommand::~StatusCommand() = default;

void StatusCommand::define(CLI::App& sub) {
  sub.add_option("--migration", migration_, "migration name (as given to enqueue)")->required();
  sub.add_flag("--json", json_, "print one JSON object (with --watch: one per interval)");
  sub.add_flag("--watch", watch_, "redraw every --interval until the migration is idle or Ctrl-C");
  sub.add_option("--interval", interval_seconds_, "seconds between --watch frames")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  sub.footer(
      "Rates count copied and skipped objects and their bytes. A single status compares with the sample the "
      "previous status stored in Redis (or with the migration's start); --watch compares with its frame of about "
      "30 s before. The ETA counts pending jobs (a batch job holds many small objects) at the recent job rate.");
}

int StatusCommand::run(const GlobalOptions& global) {
  auto queue = open_existing_migration(global.redis_url, migration_);
  plan_ = queue->get_cursor(kPlanCursor);
  if (plan_ && records_verified_rows(*plan_)) database_url_ = global.database_url;
  return watch_ ? watch(*queue) : run_once(*queue);
}

std::optional<StatusSample> StatusCommand::stored_baseline(RedisQueue& queue, double now) const {
  if (auto text = queue.get_cursor(kLastSampleCursor)) {
    auto last = decode_sample(*text);
    if (last && now - last->time >= kMinSampleAgeSeconds) return last;
  }
  // No usable history: average since the start, when the enqueuer said when.
  if (plan_) {
    if (auto started = plan_started_at(*plan_); started && *started < now) return StatusSample{*started, 0, 0, 0};
  }
  return std::nullopt;
}

void StatusCommand::remember(RedisQueue& queue, const StatusSample& sample) const {
  std::optional<StatusSample> last;
  if (auto text = queue.get_cursor(kLastSampleCursor)) last = decode_sample(*text);
  // A sample from the future (another machine's clock) would block updates forever.
  const bool replace = !last || sample.time - last->time >= kMinSampleAgeSeconds || last->time > sample.time;
  if (replace) queue.set_cursor(kLastSampleCursor, encode_sample(sample));
}

StatusView StatusCommand::snapshot(RedisQueue& queue, const std::optional<StatusSample>& baseline, double now) {
  StatusView view;
  view.migration = migration_;
  if (plan_) view.route = plan_route(*plan_);
  view.counts = queue.counts();
  for (const WorkerInfo& worker : queue.live_workers(kLiveWorkerAge)) view.workers.push_back(worker.worker_id);
  std::sort(view.workers.begin(), view.workers.end());
  if (baseline) view.rates = rates_between(*baseline, sample_of(view.counts, now));
  if (plan_) view.budgets = budgets_of(queue, *plan_);
  view.uploads = UploadRecords(queue.client(), migration_).all();
  view.eta_seconds = eta_seconds(view.counts, view.rates);
  load_phases(queue, now, view);
  view.verified_rows = read_verified_rows(db_, database_url_, migration_);
  return view;
}

void StatusCommand::print(const StatusView& view, std::size_t bar_width) {
  if (json_) {
    std::printf("%s\n", status_json(view).dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
  } else {
    for (const std::string& line : status_lines(view, bar_width)) std::printf("%s\n", line.c_str());
  }
  std::fflush(stdout);
}

int StatusCommand::run_once(RedisQueue& queue) {
  const double now = epoch_seconds();
  const StatusView view = snapshot(queue, stored_baseline(queue, now), now);
  remember(queue, sample_of(view.counts, now));
  print(view, 0);
  return 0;
}

int StatusCommand::watch(RedisQueue& queue) {
  std::mutex mutex;
  std::condition_variable wake;
  bool interrupted = false;
  SignalWatcher signals([&](int) {
    {
      std::lock_guard lock(mutex);
      interrupted = true;
    }
    wake.notify_all();
  });
  const bool terminal = isatty(fileno(stdout)) == 1;
  ProgressBar block(stdout, terminal);
  const auto interval = std::chrono::duration<double>(interval_seconds_);

  // Frames of the last kWatchRateWindow: comparing with the oldest smooths
  // the rate without hiding a stall for long.
  std::deque<StatusSample> history;
  if (auto stored = stored_baseline(queue, epoch_seconds())) history.push_back(*stored);
  for (;;) {
    try {
      const double now = epoch_seconds();
      while (history.size() > 1 && history[1].time <= now - kWatchRateWindowSeconds) history.pop_front();
      const StatusView view =
          snapshot(queue, history.empty() ? std::nullopt : std::optional<StatusSample>(history.front()), now);
      const StatusSample current = sample_of(view.counts, now);
      remember(queue, current);
      history.push_back(current);
      if (json_) print(view, 0);
      else if (terminal) block.draw(status_lines(view, kBarWidth));
      else block.draw({clock_time(now) + " " + status_summary_line(view)});
      // queued_total == 0: the enqueuer has written its plan but no job yet.
      if (view.counts.idle() && view.counts.queued_total > 0) return 0;
    } catch (const Error& e) {
      // Redis restarting is worth waiting out; anything else ends the watch.
      if (e.kind() != ErrorKind::kTransient) throw;
      std::fprintf(stderr, "blobferry: %s; retrying\n", e.what());
    }
    std::unique_lock lock(mutex);
    if (wake.wait_for(lock, interval, [&] { return interrupted; })) return 0;
  }
}

}  // namespace blobferry
