// `blobferry web`: the operator page — every migration's progress, failures and actions, from this binary.
#include "enqueuer/commands/web_command.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>

#include <CLI/CLI.hpp>

#include "common/base/error.h"
#include "common/base/signal_watcher.h"
#include "common/metrics/http_listener.h"
#include "common/queue/queue_connection.h"
#include "common/queue/redis_client.h"
#include "common/queue/redis_url.h"
#include "enqueuer/web/web_app.h"
#include "enqueuer/web/web_server.h"

namespace blobferry {

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

void WebCommand::define(CLI::App& sub) {
  sub.add_option("--listen", listen_, "HOST:PORT to serve the page on (port 0 picks a free one)")
      ->capture_default_str();
  sub.add_option("--token", token_,
                 "token the page asks for before showing or changing anything (env BLOBFERRY_WEB_TOKEN); required "
                 "when --listen is not a loopback address");
  sub.add_option("--sample-seconds", sample_seconds_, "seconds between the throughput chart's samples")
      ->check(CLI::Range(0.2, 600.0))
      ->capture_default_str();
  sub.footer(
      "Serves every migration in Redis: progress by objects and bytes, rate, ETA, a throughput chart of the last "
      "hour, live workers, failures by reason (searchable), and the actions requeue, pause, resume and report "
      "download. Prefer an SSH tunnel to a non-loopback --listen; with one, pass a long random --token. "
      "With --database-url it also counts the rows `validate` verified.");
}

int WebCommand::run(const GlobalOptions& global) {
  if (token_.empty()) {
    if (const char* env = std::getenv("BLOBFERRY_WEB_TOKEN"); env && *env) token_ = env;
  }
  const auto address = parse_listen_address(listen_);
  if (!address) {
    throw config_error("--listen " + listen_ + " is not HOST:PORT: use e.g. 127.0.0.1:9292");
  }
  if (token_.empty() && !is_loopback_host(address->host)) {
    throw config_error("--listen " + listen_ +
                       " is reachable from other machines: pass --token (or set BLOBFERRY_WEB_TOKEN), or listen on "
                       "127.0.0.1 and use an SSH tunnel");
  }
  const std::shared_ptr<RedisClient> client = connect_redis(global.redis_url);

  WebApp app(client, {token_, client->url().address(), global.database_url});
  app.sample_all();
  WebServer server(listen_, [&app](const HttpRequest& request) { return app.handle(request); });
  std::printf("blobferry web: serving the operator page on http://%s/%s\n", server.address().c_str(),
              token_.empty() ? "" : " (token required)");
  std::fflush(stdout);

  std::mutex mutex;
  std::condition_variable wake;
  bool stop = false;
  SignalWatcher signals([&](int) {
    {
      std::lock_guard lock(mutex);
      stop = true;
    }
    wake.notify_all();
  });
  const auto interval = std::chrono::duration<double>(sample_seconds_);
  for (;;) {
    std::unique_lock lock(mutex);
    if (wake.wait_for(lock, interval, [&] { return stop; })) break;
    lock.unlock();
    app.sample_all();
  }
  server.stop();
  return 0;
}

}  // namespace blobferry
