// Soak with chaos: three workers copy many objects while one of them is SIGKILLed and restarted every few seconds.
//
// The CI form copies a few thousand objects and one of 64 MiB; the long form
// is the same test with more objects, run by hand:
//   BLOBFERRY_SOAK_OBJECTS=50000 BLOBFERRY_SOAK_LARGE=3 build/tests/soak_test
// Other knobs: BLOBFERRY_SOAK_KILL_SECONDS (pause between kills, default 2),
// BLOBFERRY_SOAK_TIMEOUT_SECONDS (for the copy phase, default 300 + 20 ms per object).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/storage/disk/disk_storage.h"
#include "common/queue/redis_client.h"
#include "common/queue/redis_queue.h"
#include "common/queue/redis_url.h"
#include "common/storage/s3/s3_storage.h"
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
using testing::ChildOptions;
using testing::ChildProcess;
using testing::SeedObjects;
using testing::TempDir;
using testing::TestStack;
using testing::WorkerFleet;

constexpr std::uint64_t kMiB = 1024 * 1024;

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  return std::stoull(value);
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Multipart uploads begun and never completed or aborted: s3rver 3.7.1 keeps
// each in <bucket>/._S3rver_uploads/<upload id>/ (it answers
// ListMultipartUploads with NotImplemented, so its folder is the only witness).
std::size_t open_multipart_uploads(const std::string& bucket_dir) {
  const std::filesystem::path uploads = std::filesystem::path(bucket_dir) / "._S3rver_uploads";
  if (!std::filesystem::exists(uploads)) return 0;
  std::size_t open = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(uploads)) ++open;
  return open;
}

struct CliRun {
  testing::ChildExit exit;
  std::string out;
  std::string err;
};

class SoakTest : public ::testing::Test {
 protected:
  TestStack stack_{{.redis = true, .s3 = true}};
  TempDir scratch_{"blobferry-soak"};

  std::string write_config(const std::string& source_root) {
    const std::string path = scratch_.file("storage.yml");
    testing::write_text_file(path, "source:\n  service: Disk\n  root: " + source_root +
                                       "\ntarget:\n  service: S3\n  access_key_id: S3RVER\n"
                                       "  secret_access_key: S3RVER\n  region: us-east-1\n  bucket: target\n"
                                       "  endpoint: " + stack_.env("S3_TARGET_ENDPOINT") +
                                       "\n  force_path_style: true\n");
    return path;
  }

  CliRun run_cli(const std::string& label, std::vector<std::string> args, const std::string& config,
                 std::chrono::seconds timeout) {
    args.insert(args.begin(), BLOBFERRY_BINARY);
    args.insert(args.end(), {"--storage-config", config, "--redis-url", stack_.redis_url()});
    ChildOptions options;
    options.stdout_path = scratch_.file(label + ".out");
    options.stderr_path = scratch_.file(label + ".err");
    for (const char* name : {"REDIS_URL", "BLOBFERRY_STORAGE_CONFIG", "DATABASE_URL", "AWS_CA_BUNDLE"}) {
      options.env[name] = std::nullopt;
    }
    ChildProcess child(std::move(args), options);
    auto exit = child.wait_for(timeout);
    if (!exit) {
      child.send_signal(SIGKILL);
      exit = child.wait();
      ADD_FAILURE() << label << " still running after " << timeout.count() << " s";
    }
    return {*exit, child.stdout_text(), child.stderr_text()};
  }
};

TEST_F(SoakTest, EveryObjectArrivesIntactWhileWorkersAreKilledEveryFewSeconds) {
  const std::size_t small = env_number("BLOBFERRY_SOAK_OBJECTS", 3000);
  const std::size_t large = env_number("BLOBFERRY_SOAK_LARGE", 1);
  const auto kill_every = std::chrono::milliseconds(env_number("BLOBFERRY_SOAK_KILL_SECONDS", 2) * 1000);
  const auto copy_timeout = std::chrono::seconds(env_number("BLOBFERRY_SOAK_TIMEOUT_SECONDS", 300 + small / 50));
  const std::string migration = "soak";

  // The source is a Disk service whose files are written directly: seeding
  // 50,000 objects through s3rver would take longer than copying them.
  const std::string source_root = scratch_.file("source");
  const std::string config = write_config(source_root);
  ServiceConfig source_service;
  source_service.name = "source";
  source_service.kind = ServiceKind::kDisk;
  source_service.service_type = "Disk";
  source_service.root = source_root;
  DiskStorage source(source_service);
  SeedObjects objects =
      testing::make_seed_objects("", small, 0, 16 * 1024, std::vector<std::uint64_t>(large, 64 * kMiB + 7), 2026);
  const auto seeding = Clock::now();
  testing::write_seed_objects(objects, source);
  const double seed_seconds = seconds_since(seeding);
  const std::string manifest = scratch_.file("manifest.csv");
  testing::write_text_file(manifest, testing::manifest_csv(objects));

  CliRun enqueue = run_cli("enqueue",
                           {"enqueue", "--migration", migration, "--from", "source", "--to", "target", "--source",
                            "manifest", "--manifest", manifest},
                           config, 600s);
  ASSERT_TRUE(enqueue.exit.success()) << enqueue.exit.describe() << "\n" << enqueue.out << enqueue.err;

  auto redis = std::make_shared<RedisClient>(RedisUrl::parse(stack_.redis_url()));
  RedisQueue queue(redis, migration);
  auto finished = [&] {
    const Counts counts = queue.counts();
    return counts.idle() && counts.copied + counts.skipped + counts.failed >= objects.size();
  };

  WorkerFleet fleet({.migration = migration,
                     .storage_config = config,
                     .redis_url = stack_.redis_url(),
                     .scratch_dir = scratch_.path(),
                     .concurrency = 8,
                     .lease_seconds = 3,
                     .drain_seconds = 10});
  for (int i = 0; i < 3; ++i) fleet.start();

  // Chaos for the whole run: every kill_every one running worker (in turn) is
  // SIGKILLed mid-work and a fresh one takes its place at once.
  const auto started = Clock::now();
  std::size_t kills = 0;
  std::size_t turn = 0;
  bool done = false;
  while (!(done = finished()) && Clock::now() - started < copy_timeout) {
    if (testing::wait_until(finished, kill_every)) break;
    const std::vector<std::size_t> alive = fleet.running();
    ASSERT_FALSE(alive.empty()) << "every worker has exited by itself:\n" << testing::last_lines(fleet.logs(), 30);
    const std::size_t victim = alive[turn++ % alive.size()];
    const testing::ChildExit exit = fleet.kill(victim);
    EXPECT_EQ(exit.term_signal, SIGKILL) << "worker " << victim << " had ended before its kill: " << exit.describe()
                                         << "\n" << testing::last_lines(fleet.worker(victim).stderr_text(), 15);
    ++kills;
    fleet.start();
  }
  done = done || finished();
  const double copy_seconds = seconds_since(started);
  ASSERT_TRUE(done) << "not finished after " << copy_timeout.count() << " s: "
                    << Json{{"copied", queue.counts().copied}, {"queued", queue.counts().queued}}.dump() << "\n"
                    << testing::last_lines(fleet.logs(), 30);
  const std::vector<std::string> unclean = fleet.stop_all(60s);
  EXPECT_TRUE(unclean.empty()) << unclean.size() << " workers did not stop cleanly, first: " << unclean.front();
  EXPECT_GE(kills, 2u) << "the run ended before the chaos did anything";

  // Every object counted exactly once. Each job leaves the queue only by a
  // complete() (failed and dead are 0 below), so every object is counted at
  // least once; copied + skipped == objects then means none counted twice.
  CliRun status_run = run_cli("status", {"status", "--migration", migration, "--json"}, config, 120s);
  ASSERT_TRUE(status_run.exit.success()) << status_run.exit.describe() << "\n" << status_run.err;
  const Json status = Json::parse(status_run.out);
  const std::uint64_t copied = status["copied"].get<std::uint64_t>();
  const std::uint64_t skipped = status["skipped"].get<std::uint64_t>();
  EXPECT_EQ(copied + skipped, objects.size()) << status.dump();
  EXPECT_EQ(status["failed"], 0) << status.dump();
  EXPECT_EQ(status["dead"], 0) << status.dump();
  EXPECT_EQ(status["queued"], 0) << status.dump();
  EXPECT_EQ(status["scheduled"], 0) << status.dump();
  EXPECT_EQ(status["in_flight"], 0) << status.dump();
  const Counts counts = queue.counts();

  // blobferry's own proof, then ours: every object read back and hashed.
  const auto validating = Clock::now();
  CliRun validate = run_cli("validate", {"validate", "--migration", migration, "--wait", "--interval", "2"}, config,
                            std::chrono::seconds(300 + objects.size() / 100));
  EXPECT_TRUE(validate.exit.success()) << validate.exit.describe() << "\n"
                                       << testing::last_lines(validate.out + validate.err, 20);
  const double validate_seconds = seconds_since(validating);
  S3Storage target(testing::s3rver_service("target", stack_.env("S3_TARGET_ENDPOINT")));
  const std::vector<std::string> problems = testing::not_intact_on(target, objects, 8);
  std::size_t lost = 0;
  for (const std::string& problem : problems) lost += problem.ends_with(": missing") ? 1 : 0;
  const std::size_t corrupt = problems.size() - lost;
  EXPECT_TRUE(problems.empty()) << problems.size() << " objects not intact, first: " << problems.front();

  const std::size_t open_uploads = open_multipart_uploads(stack_.env("S3_TARGET_DIR") + "/target");
  EXPECT_EQ(open_uploads, 0u) << "multipart uploads left open in " << stack_.env("S3_TARGET_DIR");

  std::printf("RELIABILITY soak: objects %zu (%zu small 0-16 KiB + %zu x 64 MiB), 3 workers x 8, SIGKILLs %zu "
              "(one every %lld ms), leases recovered %llu, copied %llu, skipped %llu, failed 0, lost %zu, corrupt %zu, "
              "open multipart uploads %zu; seeded in %.1f s, copied in %.1f s (%.0f objects/s), validated in %.1f s\n",
              objects.size(), small, large, kills, static_cast<long long>(kill_every.count()),
              static_cast<unsigned long long>(counts.recovered), static_cast<unsigned long long>(copied),
              static_cast<unsigned long long>(skipped), lost, corrupt, open_uploads, seed_seconds, copy_seconds,
              objects.size() / copy_seconds, validate_seconds);
  std::fflush(stdout);  // the figures show at once, even when stdout is a file
}

}  // namespace
}  // namespace blobferry
