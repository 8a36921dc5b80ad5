// `blobferry web` end to end: a real migration with failures on Redis and s3rver, the page in Debian's chromium, and its HTTP guards.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/queue/redis_client.h"
#include "common/queue/redis_queue.h"
#include "common/queue/redis_url.h"
#include "tests/support/blob_fixture.h"
#include "tests/support/blobferry_cli.h"
#include "tests/support/child_process.h"
#include "tests/support/seed_data.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_services.h"
#include "tests/support/test_stack.h"

namespace blobferry {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using testing::BlobFixture;
using testing::BlobSchema;
using testing::BlobferryCli;
using testing::ChildProcess;
using testing::CliResult;
using testing::TempDir;
using testing::TestStack;

constexpr std::size_t kObjects = 120;
constexpr std::size_t kMissing = 8;
const std::string kMigration = "web-run";
const std::string kToken = "correct-horse-battery-staple";

struct HttpReply {
  int status = 0;
  std::string head;
  std::string body;
};

// One request over a fresh connection; the server closes it after the reply.
HttpReply http(int port, const std::string& request) {
  HttpReply reply;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return reply;
  }
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string data;
  char buffer[8192];
  for (ssize_t got; (got = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) data.append(buffer, static_cast<std::size_t>(got));
  ::close(fd);
  const std::size_t end = data.find("\r\n\r\n");
  if (data.size() < 12 || end == std::string::npos) return reply;
  reply.status = std::stoi(data.substr(9, 3));
  reply.head = data.substr(0, end);
  reply.body = data.substr(end + 4);
  return reply;
}

HttpReply get(int port, const std::string& path, const std::string& headers = "") {
  return http(port, "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n" + headers + "\r\n");
}

HttpReply post(int port, const std::string& path, const std::string& body, const std::string& headers) {
  return http(port, "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n" + headers + "\r\n" + body);
}

class WebTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // PostgreSQL for validate and switch; Redis with its append-only file, so
    // a restart keeps the migrations the page shows.
    stack_ = new TestStack({.redis = true, .postgres = true, .s3 = true, .redis_aof = true});
    scratch_ = new TempDir("blobferry-web");
    cli_ = new BlobferryCli(*stack_, scratch_->path());
  }
  static void TearDownTestSuite() {
    delete cli_;
    delete scratch_;
    delete stack_;
  }

  // Starts `blobferry web` on a free port and returns it with the port it printed.
  static std::pair<ChildProcess, int> start_web(std::vector<std::string> extra = {},
                                                const BlobferryCli* cli = nullptr) {
    std::vector<std::string> args{"web", "--listen", "127.0.0.1:0", "--sample-seconds", "0.5"};
    args.insert(args.end(), extra.begin(), extra.end());
    ChildProcess web = (cli ? cli : cli_)->start(args);
    int port = 0;
    const std::regex serving(R"(on http://127\.0\.0\.1:(\d+)/)");
    testing::wait_until([&] {
      std::smatch match;
      const std::string out = web.stdout_text();
      if (std::regex_search(out, match, serving)) port = std::stoi(match[1]);
      return port != 0 || !testing::still_running(web);
    }, 20s);
    EXPECT_NE(port, 0) << web.stderr_text();
    return {std::move(web), port};
  }

  static Json status_json(const std::string& migration = kMigration, const BlobferryCli* cli = nullptr) {
    CliResult run = (cli ? cli : cli_)->run({"status", "--migration", migration, "--json"});
    EXPECT_EQ(run.exit_code, 0) << run.all();
    return Json::parse(run.out);
  }

  static TestStack* stack_;
  static TempDir* scratch_;
  static BlobferryCli* cli_;
};

TestStack* WebTest::stack_ = nullptr;
TempDir* WebTest::scratch_ = nullptr;
BlobferryCli* WebTest::cli_ = nullptr;

TEST_F(WebTest, PageShowsStatusAndRequeuesInChromium) {
  const std::string playwright = std::string(BLOBFERRY_SOURCE_DIR) + "/.deps/node_modules/playwright-core";
  ASSERT_TRUE(std::filesystem::exists(playwright)) << "run bash ops/install-deps.sh (playwright-core)";
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium")) << "run bash ops/install-deps.sh (chromium)";

  // The page runs from before the migration, so its chart has samples.
  auto [web, port] = start_web();
  ASSERT_NE(port, 0);

  auto source = testing::open_service(*stack_, "source");
  auto data = testing::make_seed_objects("web/", kObjects, 1, 64 * 1024, {}, 71);
  testing::put_seed_objects(data, *source, 8);
  std::string manifest = testing::manifest_csv(data);
  for (std::size_t i = 0; i < kMissing; ++i) manifest += "web/missing-" + std::to_string(i) + ".bin,100,\n";
  testing::write_text_file(scratch_->file("web.csv"), manifest);
  CliResult enqueue = cli_->run({"enqueue", "--migration", kMigration, "--from", "source", "--to", "target",
                                 "--source", "manifest", "--manifest", scratch_->file("web.csv"),
                                 "--max-requests-per-second", "400"});
  ASSERT_EQ(enqueue.exit_code, 0) << enqueue.all();
  CliResult worker = cli_->run({"worker", "--migration", kMigration, "--concurrency", "2", "--exit-when-empty"});
  ASSERT_TRUE(worker.exit_code == 0 || worker.exit_code == 1) << worker.all();
  std::this_thread::sleep_for(1500ms);  // a few samples after the end, so the chart has its fall too

  const Json status = status_json();
  ASSERT_EQ(status["failed"], kMissing) << status.dump();
  ASSERT_EQ(status["copied"], kObjects) << status.dump();

  const std::string screenshot =
      (std::filesystem::path(BLOBFERRY_BINARY).parent_path() / "web_test_screenshot.png").string();
  std::filesystem::remove(screenshot);
  testing::ChildOptions options;
  options.env["PLAYWRIGHT_CORE"] = playwright;
  options.stdout_path = scratch_->file("browser.out");
  options.stderr_path = scratch_->file("browser.err");
  ChildProcess browser({"/usr/bin/node", std::string(BLOBFERRY_SOURCE_DIR) + "/tests/browser/web_page.js",
                        "http://127.0.0.1:" + std::to_string(port) + "/migrations/" + kMigration, screenshot},
                       options);
  auto ended = browser.wait_for(120s);
  ASSERT_TRUE(ended && ended->success()) << (ended ? ended->describe() : "still running") << "\n"
                                         << browser.stderr_text() << web.stderr_text();
  const Json page = Json::parse(browser.stdout_text());

  EXPECT_EQ(page["unknown_status"], 404) << page.dump();
  EXPECT_EQ(page["unknown_text"], "Not found") << page.dump();
  for (const char* field : {"copied", "skipped", "failed", "queued", "scheduled", "in_flight", "dead", "total"}) {
    EXPECT_EQ(page["shown"][field], status[field]) << field << ": page " << page["shown"].dump() << " status "
                                                  << status.dump();
  }
  EXPECT_EQ(page["state"], "failed") << page.dump();
  EXPECT_NE(page["connection"].get<std::string>().find("live"), std::string::npos) << page.dump();
  ASSERT_EQ(page["reasons"].size(), 1u) << page.dump();
  EXPECT_NE(page["reasons"][0].get<std::string>().find("not_found"), std::string::npos) << page.dump();
  EXPECT_EQ(page["failure_rows"], kMissing) << page.dump();
  EXPECT_EQ(page["chart_paths"], 2) << "the throughput chart drew no line: " << page.dump();
  // The shared budgets the worker used, as status --json has them: both
  // services, both under the ceiling enqueue stored.
  ASSERT_EQ(status["budgets"].size(), 2u) << status.dump();
  EXPECT_EQ(page["budgets_hidden"], false) << page.dump();
  ASSERT_EQ(page["budgets"].size(), status["budgets"].size()) << page.dump();
  for (std::size_t i = 0; i < status["budgets"].size(); ++i) {
    const Json& shown = page["budgets"][i];
    EXPECT_EQ(shown[0], status["budgets"][i]["service"]) << page.dump();
    EXPECT_EQ(shown[3], "400 req/s") << page.dump();
  }
  EXPECT_EQ(page["html_has_secret"], false);
  EXPECT_EQ(page["search_rows"], Json::array({"web/missing-3.bin"})) << page.dump();
  EXPECT_NE(page["message"].get<std::string>().find("Requeued " + std::to_string(kMissing)), std::string::npos)
      << page.dump();
  EXPECT_EQ(page["page_errors"].size(), 0u) << page.dump();
  EXPECT_TRUE(std::filesystem::exists(screenshot));
  std::printf("WEB screenshot %s (%ju bytes)\n", screenshot.c_str(),
              static_cast<std::uintmax_t>(std::filesystem::file_size(screenshot)));

  // Redis: the failures went back to the queue as their single-key jobs.
  auto redis = std::make_shared<RedisClient>(RedisUrl::parse(stack_->redis_url()));
  RedisQueue queue(redis, kMigration);
  const Counts after = queue.counts();
  EXPECT_EQ(after.failed, 0u);
  EXPECT_EQ(after.queued, kMissing);
  EXPECT_EQ(page["after"]["queued"], kMissing) << page.dump();
}

// Validate and switch progress where a database is configured, and the page
// riding out a Redis restart: "Redis unavailable" within a few polls, then the
// numbers again in the same document.
TEST_F(WebTest, ValidateSwitchProgressAndRedisRestartInChromium) {
  constexpr std::size_t kBacked = 30, kUnbacked = 3;  // rows with and without an object behind them
  const std::string migration = "web-phases";
  const std::string playwright = std::string(BLOBFERRY_SOURCE_DIR) + "/.deps/node_modules/playwright-core";
  ASSERT_TRUE(std::filesystem::exists(playwright)) << "run bash ops/install-deps.sh (playwright-core)";

  const std::string url = BlobFixture::create_database(stack_->database_url(), "webphases");
  BlobFixture table(url, BlobSchema::kRails7);
  auto source = testing::open_service(*stack_, "source");
  const std::string created = testing::utc_text(std::chrono::system_clock::now());
  table.add_objects(*source, std::vector<std::uint64_t>(kBacked, 3000), created);
  table.add_rows(kUnbacked, created);  // their copies fail: never verified, never switched

  BlobferryCli cli(*stack_, scratch_->path());
  cli.set_env("DATABASE_URL", url);
  // The page runs from before the migration, so its chart has samples.
  auto [web, port] = start_web({}, &cli);
  ASSERT_NE(port, 0);
  CliResult enqueue = cli.run({"enqueue", "--migration", migration, "--from", "source", "--to", "target"});
  ASSERT_EQ(enqueue.exit_code, 0) << enqueue.all();
  CliResult worker = cli.run({"worker", "--migration", migration, "--exit-when-empty"});
  ASSERT_TRUE(worker.exit_code == 0 || worker.exit_code == 1) << worker.all();
  CliResult validate = cli.run({"validate", "--migration", migration});
  EXPECT_EQ(validate.exit_code, 1) << validate.all();
  CliResult switched = cli.run({"switch", "--migration", migration});
  EXPECT_EQ(switched.exit_code, 1) << switched.all();  // the unbacked rows stay unverified

  const long long in_database = std::stoll(
      table.db().exec("SELECT count(*) FROM blobferry_verified_blobs WHERE migration = $1", {migration}).value(0, 0));
  ASSERT_EQ(in_database, static_cast<long long>(kBacked));
  const Json status = status_json(migration, &cli);
  ASSERT_EQ(status["verified_rows"], in_database) << status.dump();
  EXPECT_EQ(status["validation"]["to_verify"], kBacked + kUnbacked) << status.dump();
  EXPECT_EQ(status["validation"]["missing"], kUnbacked) << status.dump();
  EXPECT_EQ(status["validation"]["running"], false) << status.dump();
  EXPECT_EQ(status["switch"]["switched"], kBacked) << status.dump();
  EXPECT_EQ(status["switch"]["unverified"], kUnbacked) << status.dump();
  EXPECT_EQ(status["switch"]["running"], false) << status.dump();
  // Counts only: no service's secret, no URL.
  EXPECT_EQ(status.dump().find("S3RVER"), std::string::npos);
  EXPECT_EQ(status.dump().find("postgres://"), std::string::npos);

  const std::string screenshot =
      (std::filesystem::path(BLOBFERRY_BINARY).parent_path() / "web_test_phases.png").string();
  testing::ChildOptions options;
  options.env["PLAYWRIGHT_CORE"] = playwright;
  options.stdout_path = scratch_->file("phases.out");
  options.stderr_path = scratch_->file("phases.err");
  ChildProcess browser({"/usr/bin/node", std::string(BLOBFERRY_SOURCE_DIR) + "/tests/browser/web_phases.js",
                        "http://127.0.0.1:" + std::to_string(port) + "/migrations/" + migration, screenshot},
                       options);
  auto said = [&](const std::string& line) {
    return testing::wait_until(
        [&] { return browser.stdout_text().find(line) != std::string::npos || !testing::still_running(browser); },
        60s) &&
           browser.stdout_text().find(line) != std::string::npos;
  };
  ASSERT_TRUE(said("STOP-REDIS")) << browser.stderr_text();
  stack_->stop_service("redis");
  const bool saw_unavailable = said("START-REDIS");
  stack_->start_service("redis");  // whatever the page did, the next tests need Redis
  ASSERT_TRUE(saw_unavailable) << "the page never said Redis unavailable: " << browser.stderr_text();
  auto ended = browser.wait_for(60s);
  ASSERT_TRUE(ended && ended->success()) << (ended ? ended->describe() : "still running") << "\n"
                                         << browser.stderr_text() << web.stderr_text();
  const std::string out = browser.stdout_text();
  const Json page = Json::parse(out.substr(out.find("START-REDIS") + 12));

  // Before the restart: the database's count, the total validate recorded, the switch's result.
  const std::string verified = std::to_string(in_database);
  EXPECT_EQ(page["before"]["panel_shown"], true) << page.dump();
  EXPECT_EQ(page["before"]["verified"], verified) << page.dump();
  EXPECT_EQ(page["before"]["to_verify"], std::to_string(kBacked + kUnbacked)) << page.dump();
  EXPECT_NE(page["before"]["validate"].get<std::string>().find(std::to_string(kUnbacked) + " missing"),
            std::string::npos)
      << page.dump();
  EXPECT_NE(page["before"]["switch"].get<std::string>().find(verified + " rows switched"), std::string::npos)
      << page.dump();
  EXPECT_EQ(page["before"]["state"], status["state"]) << page.dump();

  // During: said so; after: live again in the same document, with the numbers of status --json.
  EXPECT_NE(page["during"]["connection"].get<std::string>().find("Redis unavailable"), std::string::npos)
      << page.dump();
  EXPECT_EQ(page["same_document"], true) << page.dump();
  EXPECT_NE(page["after"]["connection"].get<std::string>().find("live"), std::string::npos) << page.dump();
  EXPECT_EQ(page["after"]["verified"], verified) << page.dump();
  const Json after = status_json(migration, &cli);
  for (const char* field : {"copied", "skipped", "failed", "queued", "total"}) {
    EXPECT_EQ(page["fields_after"][field], after[field]) << field << ": page " << page.dump() << " status "
                                                         << after.dump();
  }
  EXPECT_EQ(after["verified_rows"], in_database) << after.dump();
  EXPECT_EQ(page["page_errors"].size(), 0u) << page.dump();
}

TEST_F(WebTest, HttpGuardsRefuseBadRequests) {
  auto redis = std::make_shared<RedisClient>(RedisUrl::parse(stack_->redis_url()));
  RedisQueue queue(redis, "guarded");
  Job job;
  job.migration = "guarded";
  job.source = "source";
  job.target = "target";
  job.objects.push_back({});
  job.objects.back().key = "k";
  queue.push({job});

  auto [web, port] = start_web({"--token", kToken});
  ASSERT_NE(port, 0);
  const std::string token = "X-Blobferry-Token: " + kToken + "\r\n";
  const std::string action = "X-Blobferry-Action: 1\r\n";

  EXPECT_EQ(get(port, "/").status, 200);
  EXPECT_EQ(get(port, "/migrations/nope").status, 404);
  EXPECT_NE(get(port, "/migrations/nope").body.find("Not found"), std::string::npos);
  EXPECT_EQ(get(port, "/migrations/guarded").status, 200);
  EXPECT_EQ(get(port, "/api/migrations/nope", token).status, 404);
  EXPECT_EQ(get(port, "/api/migrations/guarded", token).status, 200);

  // Token: missing or wrong is 403 and nothing changes.
  EXPECT_EQ(get(port, "/api/migrations").status, 403);
  EXPECT_EQ(post(port, "/api/migrations/guarded/pause", "", action).status, 403);
  EXPECT_EQ(post(port, "/api/migrations/guarded/pause", "", action + "X-Blobferry-Token: wrong\r\n").status, 403);
  EXPECT_FALSE(queue.paused());

  // Cross-site: without the action header, or from another origin.
  EXPECT_EQ(post(port, "/api/migrations/guarded/pause", "", token).status, 403);
  EXPECT_EQ(post(port, "/api/migrations/guarded/pause", "", token + action + "Origin: http://evil.example\r\n").status,
            403);
  EXPECT_FALSE(queue.paused());

  // Malformed fields: 400 with the reason.
  HttpReply bad = post(port, "/api/migrations/guarded/requeue", "reason=%zz", token + action);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("percent"), std::string::npos) << bad.body;
  EXPECT_EQ(post(port, "/api/migrations/guarded/requeue", "reason=Not Found!", token + action).status, 400);
  EXPECT_EQ(post(port, "/api/migrations/guarded/requeue", "bogus=1", token + action).status, 400);
  EXPECT_EQ(get(port, "/api/migrations/guarded/failures?limit=abc", token).status, 400);
  EXPECT_EQ(get(port, "/api/migrations/guarded/report?format=xml", token).status, 400);
  EXPECT_EQ(http(port, "GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n").status, 400);

  // The right request works: pause, resume, report.
  HttpReply paused = post(port, "/api/migrations/guarded/pause", "", token + action + "Origin: http://127.0.0.1:" +
                                                                         std::to_string(port) + "\r\n");
  EXPECT_EQ(paused.status, 200) << paused.body;
  EXPECT_TRUE(queue.paused());
  EXPECT_EQ(Json::parse(get(port, "/api/migrations/guarded", token).body)["state"], "paused");
  EXPECT_EQ(post(port, "/api/migrations/guarded/resume", "", token + action).status, 200);
  EXPECT_FALSE(queue.paused());
  HttpReply report = get(port, "/api/migrations/guarded/report?format=csv", token);
  EXPECT_EQ(report.status, 200);
  EXPECT_TRUE(report.body.starts_with("key,")) << report.body;

  // Nothing shows a credential: the config names Redis by address only.
  const std::string config = get(port, "/api/config").body;
  EXPECT_EQ(config.find("redis://"), std::string::npos) << config;

  // Redis restarting: 503 "Redis unavailable" while it is down, then back.
  stack_->stop_service("redis");
  HttpReply down = get(port, "/api/migrations", token);
  EXPECT_EQ(down.status, 503);
  EXPECT_NE(down.body.find("Redis unavailable"), std::string::npos) << down.body;
  stack_->start_service("redis");
  EXPECT_TRUE(testing::wait_until([&] { return get(port, "/api/migrations", token).status == 200; }, 20s));
}

TEST_F(WebTest, NonLoopbackListenNeedsAToken) {
  CliResult run = cli_->run({"web", "--listen", "0.0.0.0:0"}, 20s);
  EXPECT_EQ(run.exit_code, 2) << run.all();
  EXPECT_EQ(testing::non_empty_lines(run.err).size(), 1u) << run.err;
  EXPECT_NE(run.err.find("--token"), std::string::npos) << run.err;
  CliResult bad = cli_->run({"web", "--listen", "nonsense"}, 20s);
  EXPECT_EQ(bad.exit_code, 2) << bad.all();
}

}  // namespace
}  // namespace blobferry
