// The operator page's routes: the page itself, the JSON it polls, and its actions (requeue, pause, report).
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/queue/redis_client.h"
#include "enqueuer/commands/status_command.h"
#include "enqueuer/web/http_request.h"
#include "enqueuer/web/http_response.h"

namespace blobferry {

class PgConnection;

struct WebAppOptions {
  // Empty: no token (only allowed on loopback). Else every /api/ request
  // carries it in X-Blobferry-Token.
  std::string token;
  std::string redis_address;  // host:port, never the password
  std::string database_url;   // optional: counts of verified rows
  std::chrono::hours history{1};  // throughput samples kept per migration
};

// Thread-safe: the server calls handle() from several threads at once.
//
//   GET  /, /migrations/NAME     the page (404 page for an unknown migration)
//   GET  /assets/app.js|app.css  its script and style
//   GET  /api/config             whether actions need a token
//   GET  /api/migrations         every migration: status_json() plus route and state
//   GET  /api/migrations/NAME    the same plus workers, throughput history, and with a
//                                database the verified rows (validate and switch passes: both)
//   GET  /api/migrations/NAME/failures?reason=&q=&offset=&limit=   sorted by key, paged
//   GET  /api/migrations/NAME/report?format=csv|jsonl&failed=1     the report, streamed
//   POST /api/migrations/NAME/requeue (reason=…), /pause, /resume
//
// POSTs must carry X-Blobferry-Action: 1 (a header no cross-site form can
// send, and fetch() cannot either without a CORS preflight this server never
// answers) and, when they have an Origin, come from this page's own origin.
class WebApp {
 public:
  WebApp(std::shared_ptr<RedisClient> redis, WebAppOptions options);
  ~WebApp();

  HttpResponse handle(const HttpRequest& request);

  // Records one progress sample of every migration (the throughput chart and
  // the rates); the web command calls it every few seconds. Never throws.
  void sample_all();

  // Pure, public for tests: the token compared in constant time.
  static bool token_matches(const std::string& expected, const std::string& given);
  // The reason a POST is refused as cross-site, or nullopt when it is not.
  static std::optional<std::string> cross_site_reason(const HttpRequest& request);

 private:
  HttpResponse route(const HttpRequest& request);
  HttpResponse api(const HttpRequest& request, const std::string& rest);
  HttpResponse migration_api(const HttpRequest& request, const std::string& name, const std::string& action);
  HttpResponse page(const std::string& migration);
  std::string migration_json(RedisQueue& queue, bool detail);
  HttpResponse failures(RedisQueue& queue, const HttpRequest& request);
  HttpResponse report(std::shared_ptr<RedisQueue> queue, const HttpRequest& request);
  HttpResponse act(RedisQueue& queue, const HttpRequest& request, const std::string& action);
  std::shared_ptr<RedisQueue> open(const std::string& name);

  std::shared_ptr<RedisClient> redis_;
  WebAppOptions options_;
  std::mutex history_mutex_;
  std::map<std::string, std::deque<StatusSample>> history_;
  std::mutex db_mutex_;
  std::unique_ptr<PgConnection> db_;
};

}  // namespace blobferry
