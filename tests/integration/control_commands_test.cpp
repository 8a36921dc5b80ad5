// status, requeue, report and cancel run as the real binary against a real Redis
// whose state the test builds through RedisQueue; plus their pure helpers.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/queue/redis_queue.h"
#include "common/cli/progress_bar.h"
#include "enqueuer/commands/report_command.h"
#include "enqueuer/commands/status_command.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_stack.h"

namespace blobferry {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using testing::TempDir;
using testing::TestStack;

// A key that needs every kind of CSV quoting.
const std::string kAwkwardKey = "dir/we,ird \"quoted\"\nline two.txt";

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// RFC 4180 reader: quoted fields may hold commas, doubled quotes and line breaks.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      row.push_back(field);
      field.clear();
      rows.push_back(row);
      row.clear();
      ++i;
    } else {
      field += c;
    }
  }
  if (quoted) throw std::runtime_error("CSV ends inside a quoted field");
  if (!field.empty() || !row.empty()) throw std::runtime_error("CSV's last row has no CRLF");
  return rows;
}

// Rows as maps keyed by the header's column names.
std::vector<std::map<std::string, std::string>> csv_records(const std::string& text) {
  auto rows = parse_csv(text);
  if (rows.empty()) throw std::runtime_error("CSV without a header row");
  std::vector<std::map<std::string, std::string>> records;
  for (std::size_t r = 1; r < rows.size(); ++r) {
    if (rows[r].size() != rows[0].size()) throw std::runtime_error("CSV row " + std::to_string(r) + " has a wrong width");
    std::map<std::string, std::string> record;
    for (std::size_t c = 0; c < rows[0].size(); ++c) record[rows[0][c]] = rows[r][c];
    records.push_back(record);
  }
  return records;
}

int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

double epoch_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class ControlCommandsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { stack_ = new TestStack({.redis = true}); }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }

  std::unique_ptr<RedisQueue> queue(const std::string& migration) {
    return std::make_unique<RedisQueue>(client_, migration);
  }

  // Starts the binary with stdout and stderr going to scratch files; finish() collects it.
  pid_t start(std::vector<std::string> args, const std::string& redis_url = "") {
    args.insert(args.begin(), BLOBFERRY_BINARY);
    args.push_back("--redis-url");
    args.push_back(redis_url.empty() ? stack_->redis_url() : redis_url);
    ++runs_;
    const std::string out = scratch_.file("out-" + std::to_string(runs_));
    const std::string err = scratch_.file("err-" + std::to_string(runs_));
    pid_t pid = fork();
    if (pid == 0) {
      int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(out_fd, 1);
      ::dup2(err_fd, 2);
      ::unsetenv("REDIS_URL");
      std::vector<char*> argv;
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      _exit(127);
    }
    return pid;
  }

  RunResult finish(pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    RunResult result;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result.out = read_file(scratch_.file("out-" + std::to_string(runs_)));
    result.err = read_file(scratch_.file("err-" + std::to_string(runs_)));
    return result;
  }

  RunResult run(std::vector<std::string> args, const std::string& redis_url = "") {
    return finish(start(std::move(args), redis_url));
  }

  Json status_json_of(const std::string& migration) {
    RunResult result = run({"status", "--migration", migration, "--json"});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(lines_of(result.out).size(), 1u) << "one JSON object on one line: " << result.out;
    return Json::parse(result.out);
  }

  std::vector<std::string> keys_matching(const std::string& pattern) {
    std::vector<std::string> keys;
    std::string cursor = "0";
    do {
      auto page = client_->command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
      cursor = reply_string(*page->element[0]);
      for (std::size_t i = 0; i < page->element[1]->elements; ++i) {
        keys.push_back(reply_string(*page->element[1]->element[i]));
      }
    } while (cursor != "0");
    return keys;
  }

  static Job job_for(const std::string& migration, const std::string& key, std::int64_t blob_id) {
    Job job;
    job.migration = migration;
    job.source = "source";
    job.target = "target";
    JobObject object;
    object.key = key;
    object.blob_id = blob_id;
    job.objects.push_back(object);
    return job;
  }

  static Lease must_fetch(RedisQueue& q) {
    auto lease = q.fetch("test-worker", 2s);
    if (!lease) throw std::runtime_error("no job fetched within 2 s");
    return *lease;
  }

  // Nine jobs pushed: a and b copied (300 bytes), c skipped (50 bytes), d and
  // the awkward key failed "not_found", e and f failed "network", g queued, h
  // in flight; plus a malformed payload buried, and one live worker.
  void build_state(RedisQueue& q) {
    std::vector<Job> jobs;
    const std::vector<std::string> keys{"a", "b", "c", "d", "e", kAwkwardKey, "f", "g", "h"};
    for (std::size_t i = 0; i < keys.size(); ++i) {
      jobs.push_back(job_for(q.migration(), keys[i], static_cast<std::int64_t>(i + 1)));
    }
    q.push(jobs);
    client_->command({"RPUSH", q.key("queue"), "{not a job"});
    ASSERT_TRUE(q.complete(must_fetch(q), Outcome::copied("a", 100)));
    ASSERT_TRUE(q.complete(must_fetch(q), Outcome::copied("b", 200)));
    ASSERT_TRUE(q.complete(must_fetch(q), Outcome::skipped("c", 50)));
    ASSERT_TRUE(q.complete(must_fetch(q), Outcome::failed("d", "not_found", "GET d: 404 Not Found", 1)));
    ASSERT_TRUE(q.complete(must_fetch(q), Outcome::failed("e", "network", "GET e: connection reset", 5)));
    ASSERT_TRUE(q.complete(must_fetch(q), Outcome::failed(kAwkwardKey, "not_found", "GET: 404, \"gone\"", 1)));
    ASSERT_TRUE(q.complete(must_fetch(q), Outcome::failed("f", "network", "PUT f: timeout", 5)));
    Lease g = must_fetch(q);
    must_fetch(q);  // h stays in flight
    Lease garbage = must_fetch(q);
    ASSERT_EQ(garbage.payload, "{not a job");
    ASSERT_TRUE(q.bury(garbage, "malformed_job: not JSON"));
    ASSERT_TRUE(q.release(g));
    q.heartbeat("worker-1", "{\"concurrency\":4}");
  }

  void set_plan(RedisQueue& q, double started_at) {
    q.set_cursor("plan", Json{{"from", "source"}, {"to", "target"}, {"source", "blobs"}, {"started_at", started_at}}.dump());
  }

  static TestStack* stack_;
  std::shared_ptr<RedisClient> client_ = std::make_shared<RedisClient>(RedisUrl::parse(stack_->redis_url()));
  TempDir scratch_{"blobferry-control"};
  int runs_ = 0;
};

TestStack* ControlCommandsTest::stack_ = nullptr;

TEST_F(ControlCommandsTest, StatusJsonNumbersAreExact) {
  auto q = queue("ctl-status");
  build_state(*q);
  set_plan(*q, epoch_now() - 100);

  Json status = status_json_of("ctl-status");
  EXPECT_EQ(status["migration"], "ctl-status");
  EXPECT_EQ(status["queued"], 1);
  EXPECT_EQ(status["scheduled"], 0);
  EXPECT_EQ(status["in_flight"], 1);
  EXPECT_EQ(status["dead"], 1);
  EXPECT_EQ(status["copied"], 2);
  EXPECT_EQ(status["skipped"], 1);
  EXPECT_EQ(status["failed"], 4);
  EXPECT_EQ(status["failed_by_reason"], (Json{{"network", 2}, {"not_found", 2}}));
  EXPECT_EQ(status["bytes_copied"], 300);
  EXPECT_EQ(status["bytes_skipped"], 50);
  EXPECT_EQ(status["total"], 9);
  EXPECT_EQ(status["workers"], Json::array({"worker-1"}));
  EXPECT_EQ(status["done"], false);
  // No earlier status: the rate is the average since the plan's start, 100 s ago.
  EXPECT_NEAR(status["rate_objects_per_second"].get<double>(), 3.0 / 100, 0.001);
  EXPECT_NEAR(status["rate_bytes_per_second"].get<double>(), 350.0 / 100, 0.05);
  // 7 of 9 jobs finished in 100 s, 2 pending.
  EXPECT_NEAR(status["eta_seconds"].get<double>(), 2 / (7.0 / 100), 1.0);

  // The next status compares with the sample this one stored: nothing moved.
  std::this_thread::sleep_for(1200ms);
  Json again = status_json_of("ctl-status");
  EXPECT_EQ(again["rate_objects_per_second"], 0.0);
  EXPECT_EQ(again["rate_bytes_per_second"], 0.0);
  EXPECT_TRUE(again["eta_seconds"].is_null()) << "no progress: no ETA";

  RunResult human = run({"status", "--migration", "ctl-status"});
  EXPECT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("migration ctl-status, source -> target (blobs)"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("4 failed (network 2, not_found 2)"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("1 live: worker-1"), std::string::npos) << human.out;
}

TEST_F(ControlCommandsTest, StatusWithoutHistoryOrPlanHasNoRate) {
  auto q = queue("ctl-fresh");
  q->push({job_for("ctl-fresh", "only", 1)});
  Json status = status_json_of("ctl-fresh");
  EXPECT_EQ(status["total"], 1);
  EXPECT_EQ(status["queued"], 1);
  EXPECT_TRUE(status["rate_objects_per_second"].is_null());
  EXPECT_TRUE(status["rate_bytes_per_second"].is_null());
  EXPECT_TRUE(status["eta_seconds"].is_null());
  EXPECT_TRUE(status["workers"].is_array());
  EXPECT_TRUE(status["workers"].empty());
  EXPECT_EQ(status["failed_by_reason"], Json::object());
  EXPECT_EQ(status["done"], false);
}

TEST_F(ControlCommandsTest, StatusOfAFinishedMigrationIsDone) {
  auto q = queue("ctl-done");
  q->push({job_for("ctl-done", "x", 1), job_for("ctl-done", "y", 2)});
  ASSERT_TRUE(q->complete(must_fetch(*q), Outcome::copied("x", 10)));
  ASSERT_TRUE(q->complete(must_fetch(*q), Outcome::skipped("y", 20)));
  Json status = status_json_of("ctl-done");
  EXPECT_EQ(status["done"], true);
  EXPECT_EQ(status["eta_seconds"], 0.0);

  auto failing = queue("ctl-done-badly");
  failing->push({job_for("ctl-done-badly", "z", 1)});
  ASSERT_TRUE(failing->complete(must_fetch(*failing), Outcome::failed("z", "access_denied", "GET z: 403", 1)));
  EXPECT_EQ(status_json_of("ctl-done-badly")["done"], false) << "idle, but something failed";
}

TEST_F(ControlCommandsTest, StatusOfAnUnknownMigrationIsAOneLineConfigError) {
  RunResult result = run({"status", "--migration", "ctl-nope"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(result.out.empty()) << result.out;
  ASSERT_EQ(lines_of(result.err).size(), 1u) << result.err;
  EXPECT_NE(result.err.find("no migration ctl-nope in Redis at 127.0.0.1:"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("check the name (blobferry enqueue creates it)"), std::string::npos) << result.err;
  EXPECT_TRUE(keys_matching("bf:{ctl-nope}:*").empty()) << "status of an unknown name creates nothing";

  for (const char* command : {"requeue", "report"}) {
    RunResult other = run({command, "--migration", "ctl-nope"});
    EXPECT_EQ(other.exit_code, 2) << command;
    EXPECT_NE(other.err.find("no migration ctl-nope"), std::string::npos) << command << ": " << other.err;
  }
}

TEST_F(ControlCommandsTest, RedisDownOrABadNameIsAOneLineConfigError) {
  RunResult down = run({"status", "--migration", "ctl-any"}, "redis://127.0.0.1:" + std::to_string(closed_port()));
  EXPECT_EQ(down.exit_code, 2);
  EXPECT_EQ(lines_of(down.err).size(), 1u) << down.err;
  EXPECT_NE(down.err.find("cannot reach Redis"), std::string::npos) << down.err;

  RunResult bad = run({"status", "--migration", "bad name!"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("invalid migration name"), std::string::npos) << bad.err;
}

TEST_F(ControlCommandsTest, ReportCsvListsExactlyTheFailedKeysAndRoundTrips) {
  auto q = queue("ctl-report");
  build_state(*q);
  RunResult result = run({"report", "--migration", "ctl-report", "--format", "csv"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  ASSERT_TRUE(result.out.starts_with(csv_header())) << result.out;
  auto records = csv_records(result.out);

  std::map<std::string, std::map<std::string, std::string>> failed;
  std::vector<std::map<std::string, std::string>> dead, totals;
  for (const auto& record : records) {
    if (record.at("status") == "failed") failed[record.at("key")] = record;
    else if (record.at("status") == "dead") dead.push_back(record);
    else totals.push_back(record);
  }
  std::set<std::string> failed_keys;
  for (const auto& [key, record] : failed) failed_keys.insert(key);
  EXPECT_EQ(failed_keys, (std::set<std::string>{"d", "e", "f", kAwkwardKey}));
  ASSERT_TRUE(failed.contains(kAwkwardKey)) << "the awkward key must survive CSV quoting byte for byte";
  EXPECT_EQ(failed[kAwkwardKey]["blob_id"], "6");
  EXPECT_EQ(failed[kAwkwardKey]["reason"], "not_found");
  EXPECT_EQ(failed[kAwkwardKey]["message"], "GET: 404, \"gone\"");
  EXPECT_EQ(failed[kAwkwardKey]["attempts"], "1");
  EXPECT_EQ(failed["e"]["reason"], "network");
  EXPECT_EQ(failed["e"]["attempts"], "5");
  EXPECT_EQ(failed["e"]["objects"], "1");
  EXPECT_EQ(failed["e"]["time"].size(), std::string("2024-05-01T12:00:00Z").size());

  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0]["key"], "");
  EXPECT_EQ(dead[0]["reason"], "malformed");
  EXPECT_EQ(dead[0]["message"], "malformed_job: not JSON");

  ASSERT_EQ(totals.size(), 2u);
  EXPECT_EQ(totals[0]["status"], "copied");
  EXPECT_EQ(totals[0]["objects"], "2");
  EXPECT_EQ(totals[0]["bytes"], "300");
  EXPECT_EQ(totals[1]["status"], "skipped");
  EXPECT_EQ(totals[1]["objects"], "1");
  EXPECT_EQ(totals[1]["bytes"], "50");

  RunResult only_failed = run({"report", "--migration", "ctl-report", "--failed"});
  ASSERT_EQ(only_failed.exit_code, 0) << only_failed.err;
  auto failed_records = csv_records(only_failed.out);
  EXPECT_EQ(failed_records.size(), 5u) << "four failed keys and one dead payload, no totals";
  for (const auto& record : failed_records) EXPECT_TRUE(record.at("status") == "failed" || record.at("status") == "dead");
}

TEST_F(ControlCommandsTest, ReportJsonlHasOneObjectPerLine) {
  auto q = queue("ctl-jsonl");
  build_state(*q);
  RunResult result = run({"report", "--migration", "ctl-jsonl", "--format", "jsonl"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::set<std::string> failed_keys;
  std::map<std::string, std::uint64_t> totals;
  int dead = 0;
  for (const std::string& line : lines_of(result.out)) {
    Json row = Json::parse(line);
    if (row["status"] == "failed") {
      failed_keys.insert(row["key"].get<std::string>());
      EXPECT_TRUE(row["blob_id"].is_number_integer());
    } else if (row["status"] == "dead") {
      ++dead;
      EXPECT_TRUE(row["key"].is_null());
    } else {
      totals[row["status"].get<std::string>()] = row["objects"].get<std::uint64_t>();
    }
  }
  EXPECT_EQ(failed_keys, (std::set<std::string>{"d", "e", "f", kAwkwardKey}));
  EXPECT_EQ(dead, 1);
  EXPECT_EQ(totals, (std::map<std::string, std::uint64_t>{{"copied", 2}, {"skipped", 1}}));
}

TEST_F(ControlCommandsTest, ReportOutputIsWholeOrNothing) {
  auto q = queue("ctl-output");
  build_state(*q);
  TempDir folder("blobferry-report");
  const std::string path = folder.file("report.csv");
  RunResult result = run({"report", "--migration", "ctl-output", "--output", path});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(result.out.empty());
  RunResult to_stdout = run({"report", "--migration", "ctl-output"});
  EXPECT_EQ(read_file(path), to_stdout.out);
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(folder.path())) {
    names.push_back(entry.path().filename().string());
  }
  EXPECT_EQ(names, std::vector<std::string>{"report.csv"}) << "no temporary file left behind";

  RunResult nowhere = run({"report", "--migration", "ctl-output", "--output", folder.file("missing/report.csv")});
  EXPECT_EQ(nowhere.exit_code, 2);
  EXPECT_EQ(lines_of(nowhere.err).size(), 1u) << nowhere.err;
  EXPECT_FALSE(std::filesystem::exists(folder.file("missing")));
}

TEST_F(ControlCommandsTest, RequeueByReasonMovesOnlyThatReason) {
  auto q = queue("ctl-requeue");
  build_state(*q);
  RunResult result = run({"requeue", "--migration", "ctl-requeue", "--reason", "network"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("requeued 2 failed keys with reason network"), std::string::npos) << result.out;

  Counts counts = q->counts();
  EXPECT_EQ(counts.failed, 2u);
  EXPECT_EQ(counts.failed_by_reason, (std::map<std::string, std::uint64_t>{{"not_found", 2}}));
  EXPECT_EQ(counts.queued, 3u);
  EXPECT_EQ(counts.in_flight, 1u);
  std::set<std::string> queued_keys;
  auto queued = client_->command({"LRANGE", q->key("queue"), "0", "-1"});
  for (std::size_t i = 0; i < queued->elements; ++i) {
    queued_keys.insert(decode_job(reply_string(*queued->element[i])).objects.at(0).key);
  }
  EXPECT_EQ(queued_keys, (std::set<std::string>{"g", "e", "f"}));

  RunResult none = run({"requeue", "--migration", "ctl-requeue", "--reason", "throttled"});
  EXPECT_EQ(none.exit_code, 0);
  EXPECT_NE(none.out.find("requeued 0"), std::string::npos) << none.out;
  EXPECT_NE(none.out.find("not_found 2"), std::string::npos) << "lists the reasons there are: " << none.out;
  EXPECT_EQ(q->counts().queued, 3u);

  // A misspelt reason is bad input, not "nothing to requeue".
  RunResult misspelt = run({"requeue", "--migration", "ctl-requeue", "--reason", "notfound"});
  EXPECT_EQ(misspelt.exit_code, 2);
  EXPECT_EQ(lines_of(misspelt.err).size(), 1u) << misspelt.err;
  EXPECT_NE(misspelt.err.find("--reason 'notfound'"), std::string::npos) << misspelt.err;
  EXPECT_NE(misspelt.err.find("not_found, access_denied"), std::string::npos) << "lists the known ones: " << misspelt.err;
  EXPECT_EQ(q->counts().failed, 2u) << "nothing requeued";

  RunResult rest = run({"requeue", "--migration", "ctl-requeue"});
  EXPECT_EQ(rest.exit_code, 0);
  EXPECT_NE(rest.out.find("requeued 2 failed keys of migration ctl-requeue"), std::string::npos) << rest.out;
  counts = q->counts();
  EXPECT_EQ(counts.failed, 0u);
  EXPECT_EQ(counts.queued, 5u);
  EXPECT_EQ(counts.dead, 1u) << "a malformed payload cannot be retried";
}

TEST_F(ControlCommandsTest, CancelPurgeRemovesOnlyThatMigration) {
  auto doomed = queue("ctl-cancel");
  auto neighbour = queue("ctl-keep");
  build_state(*doomed);
  build_state(*neighbour);
  const std::size_t neighbour_keys = keys_matching("bf:{ctl-keep}:*").size();
  ASSERT_GE(neighbour_keys, 8u);

  RunResult preview = run({"cancel", "--migration", "ctl-cancel"});
  EXPECT_EQ(preview.exit_code, 0) << preview.err;
  EXPECT_NE(preview.out.find("1 queued, 0 scheduled for retry, 1 in flight"), std::string::npos) << preview.out;
  EXPECT_NE(preview.out.find("4 failure records, 1 dead"), std::string::npos) << preview.out;
  EXPECT_NE(preview.out.find("nothing deleted"), std::string::npos) << preview.out;
  EXPECT_FALSE(keys_matching("bf:{ctl-cancel}:*").empty());

  RunResult unconfirmed = run({"cancel", "--migration", "ctl-cancel", "--purge"});
  EXPECT_EQ(unconfirmed.exit_code, 2);
  EXPECT_NE(unconfirmed.err.find("--yes"), std::string::npos) << unconfirmed.err;
  EXPECT_FALSE(keys_matching("bf:{ctl-cancel}:*").empty());

  RunResult purged = run({"cancel", "--migration", "ctl-cancel", "--purge", "--yes"});
  EXPECT_EQ(purged.exit_code, 0) << purged.err;
  EXPECT_TRUE(keys_matching("bf:{ctl-cancel}:*").empty());
  EXPECT_EQ(keys_matching("bf:{ctl-keep}:*").size(), neighbour_keys);
  EXPECT_EQ(neighbour->counts().failed, 4u);
  auto migrations = RedisQueue::migrations(*client_);
  EXPECT_EQ(std::count(migrations.begin(), migrations.end(), "ctl-cancel"), 0);
  EXPECT_EQ(std::count(migrations.begin(), migrations.end(), "ctl-keep"), 1);

  EXPECT_EQ(run({"status", "--migration", "ctl-cancel"}).exit_code, 2) << "gone for status too";
  RunResult again = run({"cancel", "--migration", "ctl-cancel", "--purge", "--yes"});
  EXPECT_EQ(again.exit_code, 0) << "cancelling twice is not an error";
  EXPECT_NE(again.out.find("nothing to delete"), std::string::npos) << again.out;
}

TEST_F(ControlCommandsTest, WatchIntoAPipePrintsPlainLinesUntilInterrupted) {
  auto q = queue("ctl-watch");
  build_state(*q);
  pid_t pid = start({"status", "--migration", "ctl-watch", "--watch", "--interval", "0.2"});
  // Interrupt only once it has drawn twice, so the signal meets the running watch.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (lines_of(read_file(scratch_.file("out-" + std::to_string(runs_)))).size() < 2 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  ::kill(pid, SIGINT);
  RunResult result = finish(pid);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  auto lines = lines_of(result.out);
  EXPECT_GE(lines.size(), 2u) << result.out;
  for (const std::string& line : lines) {
    EXPECT_EQ(line.find('\x1b'), std::string::npos) << "no escape codes into a pipe";
    EXPECT_NE(line.find("ctl-watch"), std::string::npos) << line;
    EXPECT_NE(line.find("failed 4"), std::string::npos) << line;
  }

  // An idle migration ends the watch by itself.
  auto done = queue("ctl-watch-done");
  done->push({job_for("ctl-watch-done", "x", 1)});
  ASSERT_TRUE(done->complete(must_fetch(*done), Outcome::copied("x", 1)));
  RunResult idle = run({"status", "--migration", "ctl-watch-done", "--watch", "--json", "--interval", "5"});
  EXPECT_EQ(idle.exit_code, 0) << idle.err;
  ASSERT_EQ(lines_of(idle.out).size(), 1u) << idle.out;
  EXPECT_EQ(Json::parse(idle.out)["done"], true);
}

// Pure helpers.

TEST(StatusMath, RatesAndEtaFromTwoSamples) {
  StatusSample earlier{1000.0, 10, 1000, 5};
  StatusSample later{1010.0, 60, 6000, 15};
  auto rates = rates_between(earlier, later);
  ASSERT_TRUE(rates.has_value());
  EXPECT_DOUBLE_EQ(rates->objects_per_second, 5.0);
  EXPECT_DOUBLE_EQ(rates->bytes_per_second, 500.0);
  EXPECT_DOUBLE_EQ(rates->jobs_per_second, 1.0);
  EXPECT_FALSE(rates_between(later, earlier).has_value()) << "time must move forward";
  EXPECT_FALSE(rates_between(later, later).has_value());

  StatusSample after_requeue{1020.0, 50, 5000, 10};
  EXPECT_DOUBLE_EQ(rates_between(later, after_requeue)->objects_per_second, 0.0) << "counters going down read as 0";

  Counts counts;
  counts.queued = 20;
  counts.in_flight = 4;
  counts.scheduled = 6;
  counts.queued_total = 100;
  EXPECT_EQ(finished_jobs(counts), 70u);
  EXPECT_DOUBLE_EQ(*eta_seconds(counts, rates), 30.0);
  EXPECT_FALSE(eta_seconds(counts, std::nullopt).has_value());
  EXPECT_FALSE(eta_seconds(counts, StatusRates{1, 1, 0}).has_value());
  Counts idle;
  idle.queued_total = 3;
  EXPECT_DOUBLE_EQ(*eta_seconds(idle, std::nullopt), 0.0);
  EXPECT_TRUE(migration_done(idle));
  idle.dead = 1;
  EXPECT_FALSE(migration_done(idle));
}

TEST(StatusMath, SamplesAndPlansDecodeStrictly) {
  StatusSample sample{1714564800.5, 7, 700, 3};
  auto back = decode_sample(encode_sample(sample));
  ASSERT_TRUE(back.has_value());
  EXPECT_DOUBLE_EQ(back->time, sample.time);
  EXPECT_EQ(back->objects, 7u);
  EXPECT_EQ(back->bytes, 700u);
  EXPECT_EQ(back->jobs_done, 3u);
  EXPECT_FALSE(decode_sample("not json").has_value());
  EXPECT_FALSE(decode_sample(R"({"time":1,"objects":-1,"bytes":0,"jobs":0})").has_value());
  EXPECT_FALSE(decode_sample(R"({"objects":1,"bytes":0,"jobs":0})").has_value());

  EXPECT_EQ(plan_started_at(R"({"from":"a","to":"b","started_at":1714564800})"), 1714564800.0);
  EXPECT_FALSE(plan_started_at(R"({"from":"a","to":"b"})").has_value());
  EXPECT_FALSE(plan_started_at(R"({"started_at":"yesterday"})").has_value());
  EXPECT_FALSE(plan_started_at("[").has_value());
  EXPECT_EQ(plan_route(R"({"from":"a","to":"b","source":"listing"})"), "a -> b (listing)");
  EXPECT_EQ(plan_route(R"({"from":"a"})"), "");
}

TEST(ReportFormat, CsvQuotingFollowsRfc4180) {
  EXPECT_EQ(csv_field("plain/key.txt"), "plain/key.txt");
  EXPECT_EQ(csv_field(""), "");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_field("cr\rhere"), "\"cr\rhere\"");

  FailureRecord record{kAwkwardKey, 42, "network", "reset, again", 3, "2024-05-01T12:00:00Z", "{}"};
  const std::string line = csv_line(row_of_failure(record));
  auto rows = parse_csv(csv_header() + line);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1], (std::vector<std::string>{kAwkwardKey, "42", "failed", "network", "reset, again", "3",
                                               "2024-05-01T12:00:00Z", "1", ""}));

  record.reason = "poison";
  EXPECT_EQ(row_of_failure(record).status, "dead");
  Json json = Json::parse(jsonl_line(row_of_failure(record)));
  EXPECT_EQ(json["key"], kAwkwardKey);
  EXPECT_EQ(json["blob_id"], 42);
  EXPECT_TRUE(json["bytes"].is_null());
}

TEST(ProgressBarTest, BarFillsInProportion) {
  EXPECT_EQ(ProgressBar::bar(0.0, 10), "[----------]");
  EXPECT_EQ(ProgressBar::bar(0.55, 10), "[#####-----]");
  EXPECT_EQ(ProgressBar::bar(1.0, 4), "[####]");
  EXPECT_EQ(ProgressBar::bar(2.0, 4), "[####]");
  EXPECT_EQ(ProgressBar::bar(-1.0, 4), "[----]");
}

}  // namespace
}  // namespace blobferry
