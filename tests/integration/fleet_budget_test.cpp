// The fleet-wide budget: three workers share one request rate through Redis, settle under a provider's ceiling, and keep --max-requests-per-second.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/budget/aimd_bucket.h"
#include "common/budget/local_budget_store.h"
#include "common/budget/redis_budget_store.h"
#include "common/queue/redis_client.h"
#include "common/queue/redis_queue.h"
#include "common/queue/redis_url.h"
#include "common/storage/disk/disk_storage.h"
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

// The provider's ceiling the proxy enforces: small, so each phase is short
// and a loaded 2-core machine can still send more than it.
constexpr double kCeiling = 50;
constexpr int kWorkers = 3;

// Requests the proxy met in [from, to), all of them and those it throttled.
struct Window {
  double seconds = 0;
  std::size_t requests = 0;
  std::size_t throttled = 0;
  double rate() const { return requests / std::max(seconds, 1e-3); }
  double throttled_share() const { return requests ? static_cast<double>(throttled) / requests : 0; }
};

Window window_of(const std::vector<RequestRecord>& records, Clock::time_point from, Clock::time_point to) {
  Window window;
  window.seconds = seconds_between(from, to);
  for (const RequestRecord& record : records) {
    if (record.time < from || record.time >= to) continue;
    ++window.requests;
    window.throttled += record.fault == testing::Fault::kRateLimited ? 1 : 0;
  }
  return window;
}

// The highest number of requests in any sliding second of [from, to).
std::size_t busiest_second(const std::vector<RequestRecord>& records, Clock::time_point from, Clock::time_point to) {
  std::vector<Clock::time_point> times;
  for (const RequestRecord& record : records) {
    if (record.time >= from && record.time < to) times.push_back(record.time);
  }
  std::size_t most = 0;
  for (std::size_t begin = 0, end = 0; end < times.size(); ++end) {
    while (times[end] - times[begin] >= 1s) ++begin;
    most = std::max(most, end - begin + 1);
  }
  return most;
}

struct Phase {
  std::string status_json;  // `status --json` once the workers are done
  std::string status_text;
  std::size_t objects = 0;
  std::vector<RequestRecord> records;
  std::uint64_t copied = 0, failed = 0;
  std::string logs;
};

// A migration of `count` small files from a Disk source to the S3 target
// behind a proxy that throttles past kCeiling requests a second, copied by
// kWorkers workers; the proxy's records of every target request.
Phase run_phase(TestStack& stack, TempDir& scratch, const std::string& migration, std::size_t count,
                const std::vector<std::string>& enqueue_extra) {
  testing::FaultProxyOptions proxy_options;
  proxy_options.upstream = stack.env("S3_TARGET_ENDPOINT");
  proxy_options.max_requests_per_second = kCeiling;
  proxy_options.record_requests = true;
  FaultProxy proxy(proxy_options);

  const std::string root = scratch.file(migration + "-source");
  const std::string config = scratch.file(migration + "-storage.yml");
  testing::write_text_file(config, "source:\n  service: Disk\n  root: " + root +
                                       "\ntarget:\n  service: S3\n  access_key_id: S3RVER\n"
                                       "  secret_access_key: S3RVER\n  region: us-east-1\n  bucket: target\n"
                                       "  endpoint: " + proxy.endpoint() + "\n  force_path_style: true\n");
  testing::SeedObjects objects =
      testing::make_seed_objects(migration + "/", count, 512, 4096, {}, migration.size() * 7 + 1);
  testing::write_seed_objects(objects, DiskStorage(testing::disk_service("source", root)));
  const std::string manifest = scratch.file(migration + "-manifest.csv");
  testing::write_text_file(manifest, testing::manifest_csv(objects));

  BlobferryCli cli(stack, scratch.path());
  cli.set_env("BLOBFERRY_STORAGE_CONFIG", config);
  std::vector<std::string> enqueue{"enqueue", "--migration", migration, "--from", "source", "--to", "target",
                                   "--source", "manifest", "--manifest", manifest};
  enqueue.insert(enqueue.end(), enqueue_extra.begin(), enqueue_extra.end());
  const CliResult enqueued = cli.run(enqueue);
  EXPECT_EQ(enqueued.exit_code, 0) << enqueued.all();

  WorkerFleet fleet({.migration = migration,
                     .storage_config = config,
                     .redis_url = stack.redis_url(),
                     .scratch_dir = scratch.path(),
                     .concurrency = 8,
                     .lease_seconds = 30,
                     .exit_when_empty = true});
  for (int i = 0; i < kWorkers; ++i) fleet.start();
  const std::vector<std::string> unclean = fleet.wait_all(240s);
  EXPECT_TRUE(unclean.empty()) << unclean.front();

  auto redis = std::make_shared<RedisClient>(RedisUrl::parse(stack.redis_url()));
  const Counts counts = RedisQueue(redis, migration).counts();
  Phase phase;
  phase.objects = objects.size();
  phase.records = proxy.requests();
  phase.copied = counts.copied + counts.skipped;
  phase.failed = counts.failed;
  phase.logs = fleet.logs();
  phase.status_json = cli.run({"status", "--migration", migration, "--json"}).out;
  phase.status_text = cli.run({"status", "--migration", migration}).out;
  return phase;
}

TEST(FleetBudgetTest, ThreeWorkersSettleUnderAProviderCeilingAndKeepAConfiguredBudget) {
  TestStack stack({.redis = true, .s3 = true});
  TempDir scratch("blobferry-fleet-budget");

  // 1. No budget configured: the workers learn the ceiling from 503 SlowDown.
  const Phase adaptive = run_phase(stack, scratch, "adaptive", 400, {});
  ASSERT_EQ(adaptive.copied, adaptive.objects) << testing::last_lines(adaptive.logs, 30);
  ASSERT_EQ(adaptive.failed, 0u);
  ASSERT_GE(adaptive.records.size(), 2 * adaptive.objects);
  const Clock::time_point first = adaptive.records.front().time;
  const Clock::time_point last = adaptive.records.back().time;
  // "Within seconds": everything after the first 10 s counts as settled.
  const Clock::time_point settled_from = first + 10s;
  ASSERT_LT(settled_from + 5s, last) << "the run ended before it could settle; seed more objects";
  const Window whole = window_of(adaptive.records, first, last);
  const Window settled = window_of(adaptive.records, settled_from, last);
  const std::size_t busiest = busiest_second(adaptive.records, settled_from, last);
  std::size_t throttled_in_first_seconds = 0;
  for (const RequestRecord& record : adaptive.records) {
    throttled_in_first_seconds += record.time < settled_from && record.fault == testing::Fault::kRateLimited;
  }
  // The fleet did hit the ceiling (so this proves something), then stayed under it.
  EXPECT_GT(throttled_in_first_seconds + settled.throttled, 0u);
  EXPECT_LE(settled.rate(), kCeiling) << "settled aggregate rate";
  EXPECT_LT(settled.throttled_share(), 0.05) << settled.throttled << " of " << settled.requests << " throttled";
  // No tight retry loop: about two requests (HEAD, PUT) per object, not a storm.
  EXPECT_LT(static_cast<double>(adaptive.records.size()), 2.6 * adaptive.objects);

  // status shows the shared rate the workers ended with and how often it was cut.
  const nlohmann::json status = nlohmann::json::parse(adaptive.status_json, nullptr, false);
  ASSERT_TRUE(status.is_object()) << adaptive.status_json;
  bool target_write = false;
  for (const auto& budget : status.value("budgets", nlohmann::json::array())) {
    if (budget.value("service", "") != "target" || budget.value("direction", "") != "write") continue;
    target_write = true;
    EXPECT_GE(budget.value("cuts", 0), 1) << budget.dump();
    EXPECT_TRUE(budget["requests_per_second"].is_number()) << budget.dump();
    EXPECT_TRUE(budget["max_requests_per_second"].is_null()) << budget.dump();
  }
  EXPECT_TRUE(target_write) << adaptive.status_json;
  EXPECT_NE(adaptive.status_text.find("budget   target write: "), std::string::npos) << adaptive.status_text;
  EXPECT_NE(adaptive.status_text.find(" req/s shared, cut "), std::string::npos) << adaptive.status_text;

  // 2. --max-requests-per-second R/2 on enqueue: every worker keeps the one shared rate.
  const double budget = kCeiling / 2;
  const Phase budgeted = run_phase(stack, scratch, "budgeted", 150, {"--max-requests-per-second", "25"});
  ASSERT_EQ(budgeted.copied, budgeted.objects) << testing::last_lines(budgeted.logs, 30);
  ASSERT_GE(budgeted.records.size(), 2 * budgeted.objects);
  // From 2 s in (the workers' start-up checks are over) to the last request.
  const Clock::time_point budget_from = budgeted.records.front().time + 2s;
  const Window kept = window_of(budgeted.records, budget_from, budgeted.records.back().time);
  EXPECT_NEAR(kept.rate(), budget, budget * 0.10) << kept.requests << " requests in " << kept.seconds << " s";
  EXPECT_EQ(kept.throttled, 0u);
  EXPECT_NE(budgeted.status_text.find("budget   target write: 25.0 req/s shared (ceiling 25), cut 0 times"),
            std::string::npos)
      << budgeted.status_text;

  std::printf("RELIABILITY fleet budget: %d workers x 8, target throttled past %.0f req/s (sliding second, 503 "
              "SlowDown, no Retry-After). No budget: %zu objects, %zu requests (%.2f per object) in %.1f s, %.1f req/s "
              "overall; after the first 10 s %.1f req/s, busiest second %zu, %zu of %zu throttled (%.2f%%); "
              "%zu throttled in the first 10 s. --max-requests-per-second %.0f: %zu objects, %.2f req/s "
              "(%zu requests in %.1f s), %zu throttled\n",
              kWorkers, kCeiling, adaptive.objects, adaptive.records.size(),
              static_cast<double>(adaptive.records.size()) / adaptive.objects, whole.seconds, whole.rate(),
              settled.rate(), busiest, settled.throttled, settled.requests, 100 * settled.throttled_share(),
              throttled_in_first_seconds, budget, budgeted.objects, kept.rate(), kept.requests, kept.seconds,
              kept.throttled);
  std::fflush(stdout);
}

// The Lua script and AimdBucket are one algorithm written twice: the same
// calls at the same instants must give the same answers.
TEST(FleetBudgetTest, TheRedisScriptComputesWhatTheInProcessBucketDoes) {
  TestStack stack({.redis = true});
  auto redis = std::make_shared<RedisClient>(RedisUrl::parse(stack.redis_url()));
  RedisBudgetStore shared(redis, "conformance");
  std::int64_t now = 5'000'000;
  LocalBudgetStore local([&now] { return now; });

  for (const BudgetKey& key : {BudgetKey{"requests:unlimited", 0, true}, BudgetKey{"requests:ceiling", 40, true},
                               BudgetKey{"bytes:ceiling", 1e6, false}}) {
    SCOPED_TRACE(key.name);
    // Bursts, waits, usage reports, cuts (some within the spacing), a Retry-After, and long climbs.
    struct Step {
      std::int64_t advance_ms;
      char op;  // t: take, c: cut
      double a, b;
    };
    const Step steps[] = {{0, 't', 3, 0},    {1, 't', 50, 0},    {7, 't', 1, 120},  {100, 't', 2, 40},
                          {900, 't', 1, 300}, {10, 'c', 0, 0},    {20, 't', 5, 0},   {400, 'c', 0, 0},
                          {700, 'c', 1500, 0}, {200, 't', 1, 0},  {1400, 't', 4, 0}, {3000, 't', 1, 10},
                          {12000, 't', 1, 0}, {5, 'c', 0, 0},     {2500, 't', 2, 0}, {60000, 't', 1, 0}};
    for (const Step& step : steps) {
      now += step.advance_ms;
      shared.set_fixed_now(now);
      if (step.op == 't') {
        const AimdTake want = local.take(key, step.a, step.b);
        const AimdTake got = shared.take(key, step.a, step.b);
        EXPECT_NEAR(got.granted, want.granted, 1e-9) << "at " << now;
        EXPECT_EQ(got.wait_ms, want.wait_ms) << "at " << now;
        EXPECT_NEAR(got.rate, want.rate, 1e-6) << "at " << now;
      } else {
        EXPECT_EQ(shared.cut(key, static_cast<std::int64_t>(step.a)), local.cut(key, static_cast<std::int64_t>(step.a)))
            << "at " << now;
      }
      const auto want = local.snapshot(key);
      const auto got = shared.snapshot(key);
      ASSERT_TRUE(want && got);
      EXPECT_NEAR(got->rate, want->rate, 1e-6) << "at " << now;
      EXPECT_NEAR(got->learned, want->learned, 1e-6) << "at " << now;
      EXPECT_EQ(got->cuts, want->cuts) << "at " << now;
    }
  }
  // A bucket never used has no snapshot; nothing is created by asking.
  EXPECT_FALSE(shared.snapshot({"requests:never", 10, true}));
  EXPECT_FALSE(shared.snapshot({"requests:never", 10, true}));
}

}  // namespace
}  // namespace blobferry
