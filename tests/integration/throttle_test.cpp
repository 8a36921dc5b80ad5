// Throttling: the target answers 503 SlowDown with Retry-After to a share of PUTs; workers slow down, wait, and finish.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/storage/disk/disk_storage.h"
#include "common/queue/redis_client.h"
#include "common/queue/redis_queue.h"
#include "common/queue/redis_url.h"
#include "common/storage/s3/s3_storage.h"
#include "tests/support/blobferry_cli.h"
#include "tests/support/fault_proxy.h"
#include "tests/support/seed_data.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_services.h"
#include "tests/support/test_stack.h"
#include "tests/support/worker_fleet.h"

namespace blobferry {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::BlobferryCli;
using testing::CliResult;
using testing::FaultProxy;
using testing::RequestRecord;
using testing::seconds_between;
using testing::TempDir;
using testing::TestStack;
using testing::WorkerFleet;

constexpr double kThrottledShare = 0.3;
constexpr int kRetryAfterSeconds = 1;

std::string path_of(const std::string& target) { return target.substr(0, target.find('?')); }

// PUT requests per second that arrived in [from, to), all of them and those let through.
struct PutRate {
  double requests = 0;
  double accepted = 0;
};

PutRate put_rate(const std::vector<RequestRecord>& records, Clock::time_point from, Clock::time_point to) {
  std::size_t requests = 0, accepted = 0;
  for (const RequestRecord& record : records) {
    if (record.method != "PUT" || record.time < from || record.time >= to) continue;
    ++requests;
    accepted += record.fault == testing::Fault::kNone ? 1 : 0;
  }
  const double seconds = std::max(seconds_between(from, to), 1e-3);
  return {requests / seconds, accepted / seconds};
}

TEST(ThrottleTest, WorkersHonourSlowDownAndFinish) {
  TestStack stack({.redis = true, .s3 = true});
  TempDir scratch("blobferry-throttle");
  const std::string migration = "throttle";

  testing::FaultProxyOptions proxy_options;
  proxy_options.upstream = stack.env("S3_TARGET_ENDPOINT");
  proxy_options.seed = 5;
  proxy_options.retry_after_seconds = kRetryAfterSeconds;
  proxy_options.record_requests = true;
  FaultProxy proxy(proxy_options);

  const std::string root = scratch.file("source");
  const std::string config = scratch.file("storage.yml");
  testing::write_text_file(config, "source:\n  service: Disk\n  root: " + root +
                                       "\ntarget:\n  service: S3\n  access_key_id: S3RVER\n"
                                       "  secret_access_key: S3RVER\n  region: us-east-1\n  bucket: target\n"
                                       "  endpoint: " + proxy.endpoint() + "\n  force_path_style: true\n");
  ServiceConfig source_service;
  source_service.name = "source";
  source_service.kind = ServiceKind::kDisk;
  source_service.service_type = "Disk";
  source_service.root = root;
  testing::SeedObjects objects = testing::make_seed_objects("", 600, 1, 16 * 1024, {}, 91);
  testing::write_seed_objects(objects, DiskStorage(source_service));
  const std::string manifest = scratch.file("manifest.csv");
  testing::write_text_file(manifest, testing::manifest_csv(objects));
  BlobferryCli cli(stack, scratch.path());
  cli.set_env("BLOBFERRY_STORAGE_CONFIG", config);
  const CliResult enqueued = cli.run({"enqueue", "--migration", migration, "--from", "source", "--to", "target",
                                      "--source", "manifest", "--manifest", manifest});
  ASSERT_EQ(enqueued.exit_code, 0) << enqueued.all();

  auto redis = std::make_shared<RedisClient>(RedisUrl::parse(stack.redis_url()));
  RedisQueue queue(redis, migration);
  auto done = [&] {
    const Counts counts = queue.counts();
    return counts.copied + counts.skipped + counts.failed;
  };
  WorkerFleet fleet({.migration = migration,
                     .storage_config = config,
                     .redis_url = stack.redis_url(),
                     .scratch_dir = scratch.path(),
                     .concurrency = 8,
                     .lease_seconds = 30,
                     .exit_when_empty = true});
  const auto started = Clock::now();
  fleet.start();
  fleet.start();

  // Unthrottled until a fifth is done, then a share of every PUT is refused to the end.
  ASSERT_TRUE(testing::wait_until([&] { return done() >= objects.size() / 5; }, 120s))
      << testing::last_lines(fleet.logs(), 20);
  const auto throttle_from = Clock::now();
  const std::uint64_t done_at_throttle = done();
  proxy.set_slow_down({kThrottledShare, {"PUT"}});
  const std::vector<std::string> unclean = fleet.wait_all(300s);
  const auto finished = Clock::now();
  EXPECT_TRUE(unclean.empty()) << unclean.front();
  ASSERT_LT(done_at_throttle, objects.size()) << "the throttle came after the migration was over";

  const std::vector<RequestRecord> records = proxy.requests();
  // The rate before is taken after the first fifth of those PUTs, past the workers' start-up.
  std::vector<Clock::time_point> puts_before;
  for (const RequestRecord& record : records) {
    if (record.method == "PUT" && record.time < throttle_from) puts_before.push_back(record.time);
  }
  ASSERT_GE(puts_before.size(), 5u);
  const PutRate before = put_rate(records, puts_before[puts_before.size() / 5], throttle_from);
  const PutRate during = put_rate(records, throttle_from, finished);

  // No tight retry loop: each key refused with 503 is not PUT again before Retry-After has passed.
  std::map<std::string, Clock::time_point> refused_at;
  std::size_t slow_downs = 0, retried = 0, put_requests = 0;
  double shortest_gap = 1e9;
  for (const RequestRecord& record : records) {
    if (record.method != "PUT") continue;
    ++put_requests;
    const std::string key = path_of(record.target);
    if (auto earlier = refused_at.find(key); earlier != refused_at.end()) {
      const double gap = seconds_between(earlier->second, record.time);
      shortest_gap = std::min(shortest_gap, gap);
      EXPECT_GE(gap, kRetryAfterSeconds) << key << " was PUT again " << gap << " s after a 503 SlowDown";
      ++retried;
      refused_at.erase(earlier);
    }
    if (record.fault == testing::Fault::kSlowDown) {
      ++slow_downs;
      refused_at[key] = record.time;
    }
  }
  EXPECT_GT(slow_downs, 0u);
  EXPECT_GT(retried, 0u);
  // About 1 / (1 - share) PUTs per object; a retry storm would be many more.
  EXPECT_LT(put_requests, 3 * objects.size()) << "too many PUTs for " << objects.size() << " objects";

  const Counts counts = queue.counts();
  EXPECT_EQ(counts.copied + counts.skipped, objects.size());
  EXPECT_EQ(counts.failed, 0u);
  S3Storage target(testing::s3rver_service("target", stack.env("S3_TARGET_ENDPOINT")));
  const auto problems = testing::not_intact_on(target, objects, 6);
  EXPECT_TRUE(problems.empty()) << problems.size() << " not intact, first: " << problems.front();
  std::size_t lost = 0;
  for (const std::string& problem : problems) lost += problem.ends_with(": missing") ? 1 : 0;

  std::printf("RELIABILITY throttle: objects %zu, 2 workers x 8, %.0f%% of PUTs answered 503 SlowDown (Retry-After %d s) "
              "after %llu were done; 503s %zu, PUT requests %zu (%.2f per object), shortest 503-to-retry gap %.2f s; "
              "PUT rate before %.1f/s (accepted %.1f/s), while throttled %.1f/s (accepted %.1f/s); copied %llu, "
              "skipped %llu, failed 0, lost %zu, corrupt %zu, in %.1f s\n",
              objects.size(), kThrottledShare * 100, kRetryAfterSeconds,
              static_cast<unsigned long long>(done_at_throttle), slow_downs, put_requests,
              static_cast<double>(put_requests) / objects.size(), retried ? shortest_gap : 0.0, before.requests,
              before.accepted, during.requests, during.accepted, static_cast<unsigned long long>(counts.copied),
              static_cast<unsigned long long>(counts.skipped), lost, problems.size() - lost,
              seconds_between(started, finished));
  std::fflush(stdout);  // the figures show at once, even when stdout is a file
}

}  // namespace
}  // namespace blobferry
