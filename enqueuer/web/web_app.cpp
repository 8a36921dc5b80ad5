// The operator page's routes: the page itself, the JSON it polls, and its actions (requeue, pause, report).
#include "enqueuer/web/web_app.h"

#include <algorithm>
#include <charconv>
#include <queue>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/base/encoding.h"
#include "common/base/error.h"
#include "common/db/pg_connection.h"
#include "common/queue/job.h"
#include "common/queue/redis_queue.h"
#include "enqueuer/commands/report_command.h"
#include "enqueuer/web/web_assets.h"

namespace blobferry {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::system_clock;

constexpr double kRateWindowSeconds = 30.0;  // as `status --watch`
constexpr std::size_t kMaxFailurePage = 200;
constexpr std::size_t kMaxFailureOffset = 100'000;  // the page keeps offset + limit records in memory

double epoch_seconds() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

std::string dump(const Json& json) { return json.dump(-1, ' ', false, Json::error_handler_t::replace); }

HttpResponse json_error(int status, const std::string& message) {
  return HttpResponse::json(status, dump(Json{{"error", message}}));
}

HttpResponse asset(const std::string& name, const std::string& type) {
  HttpResponse response;
  response.content_type = type;
  response.body = std::string(web_asset(name).value_or(""));
  return response;
}

HttpResponse not_found_page(const std::string& what) {
  HttpResponse response;
  response.status = 404;
  response.content_type = "text/html; charset=utf-8";
  response.body = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found - blobferry</title>"
                  "<link rel=\"stylesheet\" href=\"/assets/app.css\"></head><body><main class=\"notfound\">"
                  "<h1>Not found</h1><p>" + markup_escape(what) + "</p><p><a href=\"/\">All migrations</a></p>"
                  "</main></body></html>\n";
  return response;
}

// An unsigned query or form number; nullopt when present and not one.
std::optional<std::size_t> number_field(const HttpFields& fields, const std::string& name, std::size_t fallback) {
  auto it = fields.find(name);
  if (it == fields.end() || it->second.empty()) return fallback;
  std::size_t value = 0;
  auto [end, error] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), value);
  if (error != std::errc() || end != it->second.data() + it->second.size()) return std::nullopt;
  return value;
}

// Failure reasons are classes like not_found or server_error.
bool valid_reason(const std::string& reason) {
  return !reason.empty() && reason.size() <= 64 &&
         std::all_of(reason.begin(), reason.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
}

// What a worker reported, reduced to the fields the page shows: a heartbeat
// is free-form JSON and the page must never echo something unexpected.
Json worker_info(const std::string& info_json) {
  const Json info = Json::parse(info_json, nullptr, false);
  Json out = Json::object();
  if (!info.is_object()) return out;
  for (const char* field : {"concurrency", "host", "pid", "version"}) {
    auto it = info.find(field);
    if (it != info.end() && (it->is_number() || it->is_string())) out[field] = *it;
  }
  return out;
}

Json history_json(const std::deque<StatusSample>& samples) {
  Json points = Json::array();
  for (std::size_t i = 1; i < samples.size(); ++i) {
    if (auto rates = rates_between(samples[i - 1], samples[i])) {
      points.push_back({{"t", samples[i].time},
                        {"objects_per_second", rates->objects_per_second},
                        {"bytes_per_second", rates->bytes_per_second}});
    }
  }
  return points;
}

}  // namespace

WebApp::WebApp(std::shared_ptr<RedisClient> redis, WebAppOptions options)
    : redis_(std::move(redis)), options_(std::move(options)) {}

WebApp::~WebApp() = default;

bool WebApp::token_matches(const std::string& expected, const std::string& given) {
  // Constant time in the token's content, so response timing reveals nothing of it.
  unsigned char diff = expected.size() == given.size() ? 0 : 1;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    diff |= static_cast<unsigned char>(expected[i] ^ (i < given.size() ? given[i] : 0));
  }
  return diff == 0 && !expected.empty();
}

std::optional<std::string> WebApp::cross_site_reason(const HttpRequest& request) {
  if (request.header("x-blobferry-action") != "1") {
    return "actions need the header X-Blobferry-Action: 1 (the page sends it; a cross-site form cannot)";
  }
  const std::string origin = request.header("origin");
  if (!origin.empty()) {
    const std::string host = request.header("host");
    if (origin != "http://" + host && origin != "https://" + host) {
      return "cross-site request refused: Origin " + origin + " is not this page's";
    }
  }
  const std::string site = request.header("sec-fetch-site");
  if (!site.empty() && site != "same-origin" && site != "none") return "cross-site request refused (" + site + ")";
  return std::nullopt;
}

HttpResponse WebApp::handle(const HttpRequest& request) {
  try {
    return route(request);
  } catch (const Error& e) {
    // A Redis restart is the expected case: the page shows it and retries.
    if (e.kind() == ErrorKind::kTransient) {
      return json_error(503, "Redis unavailable at " + options_.redis_address + ": retrying");
    }
    spdlog::warn("web: {} {}: {}", request.method, request.path, e.what());
    return json_error(500, e.what());
  } catch (const std::exception& e) {
    spdlog::warn("web: {} {}: {}", request.method, request.path, e.what());
    return json_error(500, "internal error");
  }
}

HttpResponse WebApp::route(const HttpRequest& request) {
  const std::string& path = request.path;
  if (path.starts_with("/api/")) return api(request, path.substr(5));
  if (request.method != "GET") return HttpResponse::text(405, "only GET here");
  if (path == "/" || path == "/index.html") return page("");
  if (path == "/assets/app.js") return asset("app.js", "text/javascript; charset=utf-8");
  if (path == "/assets/app.css") return asset("app.css", "text/css; charset=utf-8");
  if (path.starts_with("/migrations/")) return page(path.substr(12));
  return not_found_page("No page at " + path + ".");
}

HttpResponse WebApp::page(const std::string& migration) {
  if (!migration.empty()) {
    try {
      validate_migration_name(migration);
    } catch (const Error&) {
      return not_found_page("No migration named " + migration + ".");
    }
    try {
      auto queue = open(migration);
      if (!migration_exists(*queue)) return not_found_page("No migration named " + migration + " in Redis.");
    } catch (const Error& e) {
      // Redis restarting: serve the page, which says so and retries.
      if (e.kind() != ErrorKind::kTransient) throw;
    }
  }
  return asset("index.html", "text/html; charset=utf-8");
}

std::shared_ptr<RedisQueue> WebApp::open(const std::string& name) { return std::make_shared<RedisQueue>(redis_, name); }

HttpResponse WebApp::api(const HttpRequest& request, const std::string& rest) {
  if (rest == "config" && request.method == "GET") {
    return HttpResponse::json(200, dump(Json{{"token_required", !options_.token.empty()},
                                             {"database", !options_.database_url.empty()},
                                             {"redis", options_.redis_address}}));
  }
  if (!options_.token.empty() && !token_matches(options_.token, request.header("x-blobferry-token"))) {
    return json_error(403, "wrong or missing token: enter the token blobferry web was started with");
  }
  if (request.method == "POST") {
    if (auto reason = cross_site_reason(request)) return json_error(403, *reason);
  } else if (request.method != "GET") {
    return json_error(405, "only GET and POST");
  }
  if (rest == "migrations") {
    if (request.method != "GET") return json_error(405, "only GET here");
    std::vector<std::string> names = RedisQueue::migrations(*redis_);
    std::sort(names.begin(), names.end());
    std::string body = "{\"migrations\":[";
    for (std::size_t i = 0; i < names.size(); ++i) {
      RedisQueue queue(redis_, names[i]);
      body += (i == 0 ? "" : ",") + migration_json(queue, false);
    }
    return HttpResponse::json(200, body + "]}");
  }
  if (!rest.starts_with("migrations/")) return json_error(404, "no such endpoint");
  const std::string tail = rest.substr(11);
  const std::size_t slash = tail.find('/');
  return migration_api(request, tail.substr(0, slash), slash == std::string::npos ? "" : tail.substr(slash + 1));
}

HttpResponse WebApp::migration_api(const HttpRequest& request, const std::string& name, const std::string& action) {
  try {
    validate_migration_name(name);
  } catch (const Error& e) {
    return json_error(404, "no migration named " + name);
  }
  auto queue = open(name);
  if (!migration_exists(*queue)) return json_error(404, "no migration named " + name + " in Redis");
  const bool post = request.method == "POST";
  if (action.empty() && !post) return HttpResponse::json(200, migration_json(*queue, true));
  if (action == "failures" && !post) return failures(*queue, request);
  if (action == "report" && !post) return report(queue, request);
  if ((action == "requeue" || action == "pause" || action == "resume") && post) return act(*queue, request, action);
  return json_error(action == "requeue" || action == "pause" || action == "resume" || action == "failures" ||
                            action == "report" || action.empty()
                        ? 405
                        : 404,
                    "no " + request.method + " /" + action + " for a migration");
}

std::string WebApp::migration_json(RedisQueue& queue, bool detail) {
  const double now = epoch_seconds();
  StatusView view;
  view.migration = queue.migration();
  const std::optional<std::string> plan = queue.get_cursor("plan");
  if (plan) view.route = plan_route(*plan);
  view.counts = queue.counts();
  const std::vector<WorkerInfo> workers = queue.live_workers(kLiveWorkerAge);
  for (const WorkerInfo& worker : workers) view.workers.push_back(worker.worker_id);
  std::sort(view.workers.begin(), view.workers.end());
  const StatusSample current = sample_of(view.counts, now);

  std::deque<StatusSample> samples;
  {
    std::lock_guard lock(history_mutex_);
    samples = history_[view.migration];
  }
  // The rate over the last half minute of samples, else since the stored
  // `status` sample or the plan's start, as `status` computes it.
  std::optional<StatusSample> baseline;
  for (const StatusSample& sample : samples) {
    if (sample.time >= now - kRateWindowSeconds && sample.time < now - 1) {
      baseline = sample;
      break;
    }
  }
  if (!baseline && plan) {
    if (auto started = plan_started_at(*plan); started && *started < now - 1) baseline = StatusSample{*started, 0, 0, 0};
  }
  if (baseline) view.rates = rates_between(*baseline, current);
  view.eta_seconds = eta_seconds(view.counts, view.rates);
  load_phases(queue, now, view);
  // The database only for one migration's page, not for every row of the list.
  if (detail && plan && records_verified_rows(*plan)) {
    std::lock_guard lock(db_mutex_);
    view.verified_rows = read_verified_rows(db_, options_.database_url, view.migration);
  }

  if (detail && plan) view.budgets = budgets_of(queue, *plan);

  Json json = status_json(view);
  Json route = Json::object();
  if (plan) {
    const Json plan_json = Json::parse(*plan, nullptr, false);
    if (plan_json.is_object()) {
      for (const char* field : {"from", "to", "source"}) {
        if (auto it = plan_json.find(field); it != plan_json.end() && it->is_string()) route[field] = *it;
      }
      if (auto started = plan_started_at(*plan)) json["started_at"] = *started;
    }
  }
  json["route"] = route;
  json["finished_jobs"] = finished_jobs(view.counts);
  if (!detail) return dump(json);

  const std::map<std::string, std::uint64_t> in_flight = queue.in_flight_by_worker();
  Json workers_json = Json::array();
  for (const WorkerInfo& worker : workers) {
    auto it = in_flight.find(worker.worker_id);
    workers_json.push_back({{"id", worker.worker_id},
                            {"seen_ms_ago", worker.age.count()},
                            {"in_flight", it == in_flight.end() ? 0 : it->second},
                            {"info", worker_info(worker.info_json)}});
  }
  json["workers_detail"] = workers_json;
  samples.push_back(current);
  json["history"] = history_json(samples);
  return dump(json);
}

HttpResponse WebApp::failures(RedisQueue& queue, const HttpRequest& request) {
  const auto offset = number_field(request.query, "offset", 0);
  const auto limit = number_field(request.query, "limit", 50);
  if (!offset || !limit || *limit == 0 || *limit > kMaxFailurePage || *offset > kMaxFailureOffset) {
    return json_error(400, "offset must be a number up to " + std::to_string(kMaxFailureOffset) +
                               " and limit a number from 1 to " + std::to_string(kMaxFailurePage));
  }
  const std::string reason = request.query.contains("reason") ? request.query.at("reason") : "";
  if (!reason.empty() && !valid_reason(reason)) return json_error(400, "reason must be a class like not_found");
  const std::string search = request.query.contains("q") ? request.query.at("q") : "";

  // Sorted by key for stable pages; a max-heap of offset + limit records keeps
  // memory bounded however many keys failed.
  auto by_key = [](const FailureRecord& a, const FailureRecord& b) { return a.key < b.key; };
  std::priority_queue<FailureRecord, std::vector<FailureRecord>, decltype(by_key)> smallest(by_key);
  const std::size_t keep = *offset + *limit;
  std::size_t matching = 0;
  queue.for_each_failure([&](const FailureRecord& record) {
    if (!reason.empty() && record.reason != reason) return;
    if (!search.empty() && record.key.find(search) == std::string::npos &&
        record.message.find(search) == std::string::npos) {
      return;
    }
    ++matching;
    if (smallest.size() < keep) {
      smallest.push(record);
    } else if (record.key < smallest.top().key) {
      smallest.pop();
      smallest.push(record);
    }
  });
  std::vector<FailureRecord> sorted;
  while (!smallest.empty()) {
    sorted.push_back(smallest.top());
    smallest.pop();
  }
  std::reverse(sorted.begin(), sorted.end());
  Json rows = Json::array();
  for (std::size_t i = *offset; i < sorted.size(); ++i) {
    const FailureRecord& r = sorted[i];
    rows.push_back({{"key", r.key},
                    {"blob_id", r.blob_id ? Json(*r.blob_id) : Json(nullptr)},
                    {"reason", r.reason},
                    {"message", r.message},
                    {"attempts", r.attempts},
                    {"time", r.time}});
  }
  return HttpResponse::json(200, dump(Json{{"matching", matching}, {"offset", *offset}, {"limit", *limit},
                                           {"failures", rows}}));
}

HttpResponse WebApp::report(std::shared_ptr<RedisQueue> queue, const HttpRequest& request) {
  const std::string format = request.query.contains("format") ? request.query.at("format") : "csv";
  const std::string failed = request.query.contains("failed") ? request.query.at("failed") : "0";
  if ((format != "csv" && format != "jsonl") || (failed != "0" && failed != "1")) {
    return json_error(400, "format must be csv or jsonl, failed 0 or 1");
  }
  HttpResponse response;
  response.content_type = format == "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson";
  response.headers.push_back({"Content-Disposition", "attachment; filename=\"" + queue->migration() +
                                                         (failed == "1" ? "-failures." : "-report.") + format + "\""});
  const bool csv = format == "csv", failed_only = failed == "1";
  // Streamed after the head: an error in the middle ends the download short.
  response.stream = [queue, csv, failed_only](const std::function<void(std::string_view)>& write) {
    try {
      stream_report(*queue, csv, failed_only, write);
    } catch (const std::exception& e) {
      spdlog::warn("web: report of {} cut short: {}", queue->migration(), e.what());
    }
  };
  return response;
}

HttpResponse WebApp::act(RedisQueue& queue, const HttpRequest& request, const std::string& action) {
  const std::string type = request.header("content-type");
  if (!request.body.empty() && !type.starts_with("application/x-www-form-urlencoded")) {
    return json_error(400, "the form must be application/x-www-form-urlencoded");
  }
  auto form = parse_url_encoded(request.body);
  if (!form) return json_error(400, "malformed form: bad percent escape");
  for (const auto& [field, value] : *form) {
    if (field != "reason") return json_error(400, "unknown form field " + field + " (only reason)");
  }
  if (action == "requeue") {
    std::optional<std::string> reason;
    if (form->contains("reason")) {
      reason = form->at("reason");
      if (!valid_reason(*reason)) return json_error(400, "reason must be a class like not_found, in lower case");
    }
    const std::size_t requeued = queue.requeue_failed(reason);
    spdlog::info("web: requeued {} failed keys{} of migration {}", requeued, reason ? " with reason " + *reason : "",
                 queue.migration());
    return HttpResponse::json(200, dump(Json{{"requeued", requeued}}));
  }
  if (!form->empty()) return json_error(400, action + " takes no form field");
  queue.set_paused(action == "pause");
  spdlog::info("web: migration {} {}", queue.migration(), action == "pause" ? "paused" : "resumed");
  return HttpResponse::json(200, dump(Json{{"paused", action == "pause"}}));
}

void WebApp::sample_all() {
  try {
    const double now = epoch_seconds();
    const double oldest = now - std::chrono::duration<double>(options_.history).count();
    for (const std::string& name : RedisQueue::migrations(*redis_)) {
      RedisQueue queue(redis_, name);
      const StatusSample sample = sample_of(queue.counts(), now);
      std::lock_guard lock(history_mutex_);
      auto& samples = history_[name];
      samples.push_back(sample);
      while (!samples.empty() && samples.front().time < oldest) samples.pop_front();
    }
  } catch (const std::exception& e) {
    spdlog::debug("web: sampling: {}", e.what());  // Redis away: the chart shows the gap
  }
}

}  // namespace blobferry
