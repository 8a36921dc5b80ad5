// Servers restarted under a running migration: Redis (AOF) and the S3 target while workers copy, PostgreSQL during switch.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/storage/disk/disk_storage.h"
#include "common/db/pg_connection.h"
#include "common/queue/redis_client.h"
#include "common/queue/redis_queue.h"
#include "common/queue/redis_url.h"
#include "common/storage/s3/s3_storage.h"
#include "tests/support/blob_fixture.h"
#include "tests/support/blobferry_cli.h"
#include "tests/support/child_process.h"
#include "tests/support/seed_data.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_services.h"
#include "tests/support/test_stack.h"
#include "tests/support/worker_fleet.h"

namespace blobferry {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using testing::BlobferryCli;
using testing::BlobFixture;
using testing::BlobSchema;
using testing::CliResult;
using testing::SeedObjects;
using testing::SeedRow;
using testing::TempDir;
using testing::disk_service;
using testing::TestStack;
using testing::WorkerFleet;
using testing::WorkerFleetOptions;

constexpr std::uint64_t kMiB = 1024 * 1024;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string disk_yaml(const std::string& name, const std::string& root) {
  return name + ":\n  service: Disk\n  root: " + root + "\n";
}

std::string s3_yaml(const std::string& name, const std::string& bucket, const std::string& endpoint) {
  return name + ":\n  service: S3\n  access_key_id: S3RVER\n  secret_access_key: S3RVER\n  region: us-east-1\n" +
         "  bucket: " + bucket + "\n  endpoint: " + endpoint + "\n  force_path_style: true\n" +
         "  http_open_timeout: 2\n  http_read_timeout: 5\n";
}

std::uint64_t done_of(const Counts& counts) { return counts.copied + counts.skipped + counts.failed; }

// Disk source written directly, S3 target: the objects, the storage.yml and the enqueued manifest.
struct CopyScenario {
  std::string config;
  SeedObjects objects;
};

CopyScenario prepare_copy(const TestStack& stack, const TempDir& scratch, const std::string& migration,
                          std::size_t count, const std::vector<std::uint64_t>& large, std::uint64_t seed) {
  CopyScenario scenario;
  const std::string root = scratch.file(migration + "-source");
  scenario.config = scratch.file(migration + ".storage.yml");
  testing::write_text_file(scenario.config,
                           disk_yaml("source", root) + s3_yaml("target", "target", stack.env("S3_TARGET_ENDPOINT")));
  DiskStorage source(disk_service("source", root));
  scenario.objects = testing::make_seed_objects(migration + "/", count, 1, 32 * 1024, large, seed);
  testing::write_seed_objects(scenario.objects, source);
  const std::string manifest = scratch.file(migration + ".csv");
  testing::write_text_file(manifest, testing::manifest_csv(scenario.objects));
  BlobferryCli cli(stack, scratch.path());
  cli.set_env("BLOBFERRY_STORAGE_CONFIG", scenario.config);
  const CliResult enqueued = cli.run({"enqueue", "--migration", migration, "--from", "source", "--to", "target",
                                      "--source", "manifest", "--manifest", manifest});
  EXPECT_EQ(enqueued.exit_code, 0) << enqueued.all();
  return scenario;
}

std::vector<std::string> missing_or_corrupt(const TestStack& stack, const SeedObjects& objects) {
  S3Storage target(testing::s3rver_service("target", stack.env("S3_TARGET_ENDPOINT")));
  return testing::not_intact_on(target, objects, 6);
}

std::size_t count_lost(const std::vector<std::string>& problems) {
  std::size_t lost = 0;
  for (const std::string& problem : problems) lost += problem.ends_with(": missing") ? 1 : 0;
  return lost;
}

// 1. Redis (appendonly, everysec) is stopped and started again mid-run on the
// same port: the workers keep running, reconnect, and finish every job.
TEST(RestartTest, RedisRestartedMidRunLosesNoJob) {
  TestStack stack({.redis = true, .s3 = true, .redis_aof = true});
  TempDir scratch("blobferry-restart-redis");
  const std::string migration = "redis-restart";
  const CopyScenario scenario = prepare_copy(stack, scratch, migration, 1000, {}, 71);
  const std::size_t total = scenario.objects.size();

  auto redis = std::make_shared<RedisClient>(RedisUrl::parse(stack.redis_url()));
  RedisQueue queue(redis, migration);
  const std::uint64_t queued_total = queue.counts().queued_total;
  WorkerFleet fleet({.migration = migration,
                     .storage_config = scenario.config,
                     .redis_url = stack.redis_url(),
                     .scratch_dir = scratch.path(),
                     .concurrency = 4,
                     .lease_seconds = 5});
  fleet.start();
  fleet.start();
  const auto started = Clock::now();
  ASSERT_TRUE(testing::wait_until([&] { return done_of(queue.counts()) >= 100; }, 60s)) << fleet.logs();
  const std::uint64_t done_before = done_of(queue.counts());

  const auto down = Clock::now();
  stack.stop_service("redis");
  std::this_thread::sleep_for(3s);
  stack.start_service("redis");
  const double downtime = seconds_since(down);
  ASSERT_LT(done_before, total) << "the restart came after the migration was over";

  // A fresh client: the test's own connection died with the server.
  redis = std::make_shared<RedisClient>(RedisUrl::parse(stack.redis_url()));
  RedisQueue after(redis, migration);
  EXPECT_EQ(after.counts().queued_total, queued_total) << "the queue did not survive the restart";
  const bool finished = testing::wait_until(
      [&] {
        const Counts counts = after.counts();
        return counts.idle() && done_of(counts) >= total;
      },
      180s);
  const double elapsed = seconds_since(started);
  EXPECT_TRUE(finished) << "not finished 180 s after the restart\n" << testing::last_lines(fleet.logs(), 30);
  EXPECT_EQ(fleet.running().size(), 2u) << "a worker gave up when Redis went away:\n"
                                        << testing::last_lines(fleet.logs(), 30);
  const std::vector<std::string> unclean = fleet.stop_all(60s);
  EXPECT_TRUE(unclean.empty()) << unclean.front();

  const Counts counts = after.counts();
  EXPECT_EQ(counts.copied + counts.skipped, total);
  EXPECT_EQ(counts.failed, 0u);
  EXPECT_EQ(counts.dead, 0u);
  const auto problems = missing_or_corrupt(stack, scenario.objects);
  EXPECT_TRUE(problems.empty()) << problems.size() << " not intact, first: " << problems.front();
  // Each worker logs a queue error once a second while Redis is away, then carries on.
  const std::size_t redis_errors = testing::lines_containing(fleet.logs(), "(retrying)").size();
  EXPECT_GT(redis_errors, 0u) << "no worker noticed that Redis was away";
  std::printf("RELIABILITY redis-restart: objects %zu, 2 workers x 4, Redis (AOF everysec) stopped after %llu done and "
              "started again %.1f s later on the same port; queue errors logged by workers %zu; copied %llu, skipped "
              "%llu, failed 0, lost %zu, corrupt %zu, in %.1f s\n",
              total, static_cast<unsigned long long>(done_before), downtime, redis_errors,
              static_cast<unsigned long long>(counts.copied), static_cast<unsigned long long>(counts.skipped),
              count_lost(problems), problems.size() - count_lost(problems), elapsed);
  std::fflush(stdout);  // the figures show at once, even when stdout is a file
}

// 1b. SIGTERM while Redis is away: the worker waits its drain time for copies
// in flight, then leaves without queueing behind Redis's reconnect backoff;
// the jobs it could not record return to the queue when their leases expire.
TEST(RestartTest, WorkerStopsOnSigtermWhileRedisIsDown) {
  TestStack stack({.redis = true, .s3 = true, .redis_aof = true});
  TempDir scratch("blobferry-restart-sigterm");
  const std::string migration = "sigterm-redis-down";
  const CopyScenario scenario = prepare_copy(stack, scratch, migration, 600, {}, 73);
  const std::size_t total = scenario.objects.size();
  auto redis = std::make_shared<RedisClient>(RedisUrl::parse(stack.redis_url()));
  RedisQueue queue(redis, migration);
  WorkerFleetOptions options{.migration = migration,
                             .storage_config = scenario.config,
                             .redis_url = stack.redis_url(),
                             .scratch_dir = scratch.path(),
                             .concurrency = 4,
                             .lease_seconds = 3,
                             .drain_seconds = 2};
  WorkerFleet fleet(options);
  fleet.start();
  ASSERT_TRUE(testing::wait_until([&] { return done_of(queue.counts()) >= 50; }, 60s)) << fleet.logs();
  stack.stop_service("redis");
  std::this_thread::sleep_for(1s);  // copies in flight now fail to record their results

  const auto term_sent = Clock::now();
  const std::vector<std::string> unclean = fleet.stop_all(40s);
  const double exit_seconds = seconds_since(term_sent);
  EXPECT_TRUE(unclean.empty()) << unclean.front();
  // The drain is 2 s; each queue call may wait out one reconnect backoff (at
  // most 5 s). Queued behind one another, the calls took tens of seconds.
  EXPECT_LT(exit_seconds, 20.0) << testing::last_lines(fleet.logs(), 20);

  stack.start_service("redis");
  redis = std::make_shared<RedisClient>(RedisUrl::parse(stack.redis_url()));
  RedisQueue after(redis, migration);
  options.exit_when_empty = true;
  WorkerFleet finisher(options);
  finisher.start();
  const std::vector<std::string> finished = finisher.wait_all(180s);
  EXPECT_TRUE(finished.empty()) << finished.front();
  const Counts counts = after.counts();
  EXPECT_EQ(counts.copied + counts.skipped, total);
  EXPECT_EQ(counts.failed + counts.dead, 0u);
  const auto problems = missing_or_corrupt(stack, scenario.objects);
  EXPECT_TRUE(problems.empty()) << problems.size() << " not intact, first: " << problems.front();
  std::printf("RELIABILITY sigterm-redis-down: objects %zu, 1 worker x 4, drain 2 s; Redis stopped mid-run, SIGTERM "
              "1 s later: exit %.1f s after it; a second worker finished the rest: copied %llu, skipped %llu, "
              "failed 0, lost %zu, corrupt %zu\n",
              total, exit_seconds, static_cast<unsigned long long>(counts.copied),
              static_cast<unsigned long long>(counts.skipped), count_lost(problems),
              problems.size() - count_lost(problems));
  std::fflush(stdout);
}

// 2. The S3 target goes away for a few seconds mid-run: in-place retries and
// rescheduled jobs carry the run to the end, every object intact.
TEST(RestartTest, S3TargetRestartedMidRunIsRiddenOutByRetries) {
  TestStack stack({.redis = true, .s3 = true});
  TempDir scratch("blobferry-restart-s3");
  const std::string migration = "s3-restart";
  const CopyScenario scenario = prepare_copy(stack, scratch, migration, 800, {8 * kMiB + 1, 8 * kMiB + 2}, 72);
  const std::size_t total = scenario.objects.size();

  auto redis = std::make_shared<RedisClient>(RedisUrl::parse(stack.redis_url()));
  RedisQueue queue(redis, migration);
  WorkerFleet fleet({.migration = migration,
                     .storage_config = scenario.config,
                     .redis_url = stack.redis_url(),
                     .scratch_dir = scratch.path(),
                     .concurrency = 4,
                     .lease_seconds = 10,
                     .exit_when_empty = true,
                     .log_level = "debug"});
  fleet.start();
  fleet.start();
  const auto started = Clock::now();
  ASSERT_TRUE(testing::wait_until([&] { return done_of(queue.counts()) >= 50; }, 60s)) << fleet.logs();
  const std::uint64_t done_before = done_of(queue.counts());
  const auto down = Clock::now();
  stack.stop_service("s3-target");
  std::this_thread::sleep_for(3s);
  stack.start_service("s3-target");
  const double downtime = seconds_since(down);
  ASSERT_LT(done_before, total) << "the restart came after the migration was over";

  const std::vector<std::string> unclean = fleet.wait_all(240s);
  const double elapsed = seconds_since(started);
  EXPECT_TRUE(unclean.empty()) << unclean.front();
  const std::string logs = fleet.logs();
  const std::size_t in_place = testing::lines_containing(logs, "), retry ").size();
  const std::size_t rescheduled = testing::lines_containing(logs, "will retry later").size();
  EXPECT_GT(in_place + rescheduled, 0u) << "the target was down, so something must have been retried";

  const Counts counts = queue.counts();
  EXPECT_EQ(counts.copied + counts.skipped, total);
  EXPECT_EQ(counts.failed, 0u);
  const auto problems = missing_or_corrupt(stack, scenario.objects);
  EXPECT_TRUE(problems.empty()) << problems.size() << " not intact, first: " << problems.front();
  std::printf("RELIABILITY s3-restart: objects %zu (incl. 2 x 8 MiB), 2 workers x 4, target s3rver stopped after %llu "
              "done and started again %.1f s later; in-place retries %zu, rescheduled %zu; copied %llu, skipped %llu, "
              "failed 0, lost %zu, corrupt %zu, in %.1f s\n",
              total, static_cast<unsigned long long>(done_before), downtime, in_place, rescheduled,
              static_cast<unsigned long long>(counts.copied), static_cast<unsigned long long>(counts.skipped),
              count_lost(problems), problems.size() - count_lost(problems), elapsed);
  std::fflush(stdout);  // the figures show at once, even when stdout is a file
}

long long scalar(const std::string& url, const std::string& sql) {
  PgConnection db(url);
  return std::stoll(db.exec(sql).value(0, 0));
}

// 3. PostgreSQL is stopped and started again while `switch` updates rows in
// small batches: switch (re-run if it gave up) finishes, every verified row
// is switched, none twice (a trigger logs every UPDATE of a row).
TEST(RestartTest, PostgresRestartedDuringSwitchSwitchesEveryRowOnce) {
  TestStack stack({.redis = true, .postgres = true});
  TempDir scratch("blobferry-restart-pg");
  const std::string migration = "pg-restart";
  constexpr std::size_t kRows = 2000;
  constexpr int kBatch = 20;

  // Both services are Disk folders written directly, so every row is verified in seconds.
  const std::string from_root = scratch.file("from");
  const std::string to_root = scratch.file("to");
  const std::string config = scratch.file("storage.yml");
  testing::write_text_file(config, disk_yaml("from_disk", from_root) + disk_yaml("to_disk", to_root));
  SeedObjects objects = testing::make_seed_objects("", kRows, 1, 64, {}, 73);
  testing::write_seed_objects(objects, DiskStorage(disk_service("from_disk", from_root)));
  testing::write_seed_objects(objects, DiskStorage(disk_service("to_disk", to_root)));

  const std::string url = BlobFixture::create_database(stack.database_url(), "switch_restart");
  {
    BlobFixture table(url, BlobSchema::kRails7);
    std::vector<SeedRow> rows;
    for (const auto& object : objects) {
      rows.push_back({"", object.key, object.size, object.md5, "2024-01-01 00:00:00", "from_disk"});
    }
    table.insert(rows);
    // Every UPDATE of a row is logged (and rolled back with its batch), and
    // each batch is slowed so the restart lands after the first batches.
    table.log_switches();
    table.db().exec(
        "CREATE FUNCTION slow_batch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.02); "
        "RETURN NULL; END $$");
    table.db().exec(
        "CREATE TRIGGER slow_batch AFTER UPDATE ON active_storage_blobs FOR EACH STATEMENT EXECUTE FUNCTION "
        "slow_batch()");
  }

  BlobferryCli cli(stack, scratch.path());
  cli.set_env("BLOBFERRY_STORAGE_CONFIG", config);
  cli.set_env("DATABASE_URL", url);
  const CliResult enqueued = cli.run({"enqueue", "--migration", migration, "--from", "from_disk", "--to", "to_disk"});
  ASSERT_EQ(enqueued.exit_code, 0) << enqueued.all();
  const CliResult worked = cli.run({"worker", "--migration", migration, "--exit-when-empty"}, std::chrono::minutes(5));
  ASSERT_EQ(worked.exit_code, 0) << testing::last_lines(worked.all(), 20);
  const CliResult validated = cli.run({"validate", "--migration", migration}, std::chrono::minutes(5));
  ASSERT_EQ(validated.exit_code, 0) << testing::last_lines(validated.all(), 20);

  testing::ChildProcess first = cli.start({"switch", "--migration", migration, "--batch-size", std::to_string(kBatch)});
  const std::string log_count = "SELECT count(*) FROM switch_log";
  ASSERT_TRUE(testing::wait_until([&] { return scalar(url, log_count) >= kBatch; }, 120s))
      << "switch never committed a batch: " << first.stderr_text();
  const long long switched_before = scalar(url, log_count);
  stack.stop_service("postgres");
  std::this_thread::sleep_for(2s);
  stack.start_service("postgres");
  const CliResult first_run = testing::finish(first, std::chrono::minutes(5));
  ASSERT_LT(switched_before, static_cast<long long>(kRows)) << "the restart came after the switch was over";

  // A switch that gave up is simply run again, as a user would.
  int runs = 1;
  CliResult last = first_run;
  while (last.exit_code != 0 && runs < 4) {
    last = cli.run({"switch", "--migration", migration, "--batch-size", std::to_string(kBatch)});
    ++runs;
  }
  EXPECT_EQ(last.exit_code, 0) << testing::last_lines(last.all(), 20);

  const long long on_target = scalar(url, "SELECT count(*) FROM active_storage_blobs WHERE service_name = 'to_disk'");
  const long long left_behind =
      scalar(url, "SELECT count(*) FROM active_storage_blobs WHERE service_name <> 'to_disk'");
  const long long updates = scalar(url, log_count);
  const long long updated_twice =
      scalar(url, "SELECT count(*) FROM (SELECT blob_id FROM switch_log GROUP BY blob_id HAVING count(*) > 1) t");
  EXPECT_EQ(on_target, static_cast<long long>(kRows));
  EXPECT_EQ(left_behind, 0);
  EXPECT_EQ(updates, static_cast<long long>(kRows)) << "one logged UPDATE per row";
  EXPECT_EQ(updated_twice, 0);
  std::printf("RELIABILITY pg-restart: rows %zu, batches of %d, PostgreSQL stopped after %lld rows switched and "
              "started again 2 s later; first switch run %s, switch runs %d; rows switched %lld, updated twice %lld, "
              "left behind %lld\n",
              kRows, kBatch, switched_before,
              first_run.exit_code == 0 ? "rode it out" : ("exited " + std::to_string(first_run.exit_code)).c_str(),
              runs, on_target, updated_twice, left_behind);
  std::fflush(stdout);  // the figures show at once, even when stdout is a file
  const auto first_words = testing::non_empty_lines(first_run.err);
  if (!first_words.empty()) std::printf("  first switch run ended with: %s\n", first_words.back().c_str());
}

}  // namespace
}  // namespace blobferry
