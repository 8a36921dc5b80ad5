// The shared budget's pure parts: rate parsing, the AIMD token bucket on a fixed clock, batching, the storage gate.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <vector>

#include "common/base/error.h"
#include "common/budget/aimd_bucket.h"
#include "common/budget/batch_limiter.h"
#include "common/budget/budget_gate.h"
#include "common/budget/budget_limits.h"
#include "common/budget/gated_storage.h"
#include "common/budget/local_budget_store.h"
#include "common/budget/rate_parser.h"
#include "common/storage/disk/disk_storage.h"
#include "common/storage/s3/s3_storage.h"
#include "common/storage/storage_config.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_services.h"

namespace blobferry {
namespace {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------
// Parsing

TEST(RateParserTest, BandwidthForms) {
  const std::vector<std::pair<const char*, double>> vectors = {
      {"1048576", 1048576},   {"10MB/s", 10e6},      {"10mb/s", 10e6},        {"500KiB/s", 500 * 1024.0},
      {"80Mbit", 10e6},        {"80Mbps", 10e6},      {"1.5GB", 1.5e9},        {"2GiB/s", 2.0 * 1073741824},
      {"100 kB/s", 100e3},     {"8bit", 1},           {"250B/s", 250},         {"1TiB", 1099511627776.0},
      {"5M", 5e6},             {"1Gbit/s", 125e6},
  };
  for (const auto& [text, bytes] : vectors) {
    EXPECT_DOUBLE_EQ(parse_bandwidth(text, "--max-bandwidth"), bytes) << text;
  }
}

TEST(RateParserTest, BandwidthRefusalsNameTheOptionAndTheForms) {
  for (const char* text : {"0", "0MB/s", "-5MB/s", "fast", "", "10XB", "MB/s", "inf", "nan", "1e6", "10MB/h", "1..5MB"}) {
    try {
      parse_bandwidth(text, "--max-bandwidth");
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kConfig) << text;
      const std::string message = e.what();
      EXPECT_NE(message.find("--max-bandwidth '" + std::string(text) + "'"), std::string::npos) << message;
      EXPECT_NE(message.find("10MB/s, 500KiB/s"), std::string::npos) << message;
      EXPECT_NE(message.find("80Mbit"), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  }
}

TEST(RateParserTest, RequestRates) {
  EXPECT_DOUBLE_EQ(parse_request_rate("50", "--max-requests-per-second"), 50);
  EXPECT_DOUBLE_EQ(parse_request_rate("12.5/s", "--max-requests-per-second"), 12.5);
  for (const char* text : {"0", "-3", "0.0", "ten", "", "50MB/s", "5/m"}) {
    try {
      parse_request_rate(text, "--max-requests-per-second");
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kConfig);
      EXPECT_NE(std::string(e.what()).find("--max-requests-per-second"), std::string::npos);
    }
  }
}

TEST(BudgetLimitsTest, TightestOfMigrationWorkerAndService) {
  const BudgetLimits migration{100, 0};
  const BudgetLimits worker{0, 5e6};
  ServiceConfig service;
  service.max_requests_per_second = 40;
  const BudgetLimits applied = migration.tightest(worker).for_service(service);
  EXPECT_DOUBLE_EQ(applied.requests_per_second, 40);
  EXPECT_DOUBLE_EQ(applied.bytes_per_second, 5e6);
  EXPECT_EQ(BudgetLimits::from_json(applied.to_json()), applied);
  EXPECT_EQ(BudgetLimits::from_json("not json"), BudgetLimits{});
}

TEST(BudgetLimitsTest, AProvidersPublishedCeilingIsTheDefaultRequestRate) {
  ServiceConfig spaces;
  spaces.name = "spaces";
  spaces.kind = ServiceKind::kS3;
  spaces.endpoint = "https://nyc3.digitaloceanspaces.com";
  EXPECT_DOUBLE_EQ(BudgetLimits{}.for_service(spaces).requests_per_second, 1500);
  ServiceConfig b2 = spaces;
  b2.endpoint = "https://s3.us-west-004.backblazeb2.com";
  EXPECT_DOUBLE_EQ(BudgetLimits{}.for_service(b2).requests_per_second, 500);
  // A rate that was set, even above the table's, is the operator's to choose.
  EXPECT_DOUBLE_EQ((BudgetLimits{3000, 0}).for_service(spaces).requests_per_second, 3000);
  spaces.max_requests_per_second = 200;
  EXPECT_DOUBLE_EQ(BudgetLimits{}.for_service(spaces).requests_per_second, 200);
  ServiceConfig aws = b2;
  aws.endpoint = "https://s3.eu-west-1.amazonaws.com";
  EXPECT_DOUBLE_EQ(BudgetLimits{}.for_service(aws).requests_per_second, 0) << "no documented ceiling: adaptive only";
}

TEST(BudgetLimitsTest, StorageYmlCarriesAServicesOwnBudget) {
  const StorageConfig config = StorageConfig::parse(
      "spaces:\n  service: S3\n  bucket: b\n  access_key_id: k\n  secret_access_key: s\n"
      "  max_requests_per_second: 150\n  max_bandwidth: 50MB/s\n"
      "local:\n  service: Disk\n  root: /srv/files\n  max_bandwidth: \"80Mbit\"\n"
      "broken:\n  service: Disk\n  root: /srv/files\n  max_requests_per_second: 0\n",
      "storage.yml", [](const std::string&) -> std::optional<std::string> { return std::nullopt; });
  EXPECT_DOUBLE_EQ(config.service("spaces").max_requests_per_second, 150);
  EXPECT_DOUBLE_EQ(config.service("spaces").max_bandwidth, 50e6);
  EXPECT_DOUBLE_EQ(config.service("local").max_bandwidth, 10e6);
  EXPECT_DOUBLE_EQ(config.service("local").max_requests_per_second, 0);
  try {
    config.service("broken");
    ADD_FAILURE() << "a rate of 0 was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find("`max_requests_per_second` '0' is not a request rate above 0"),
              std::string::npos)
        << e.what();
  }
}

// ---------------------------------------------------------------------------
// The bucket, on a fixed clock

// Takes one token whenever the bucket allows, every millisecond from `from`
// for `ms`; returns how many were granted.
double drain(const AimdBucket& bucket, AimdState& state, std::int64_t from, std::int64_t ms) {
  double granted = 0;
  for (std::int64_t t = from; t < from + ms; ++t) granted += bucket.take(state, t, 1, 0).granted;
  return granted;
}

TEST(AimdBucketTest, ACeilingIsTheLongRunRate) {
  const AimdBucket bucket(50, true);
  AimdState state;
  const double granted = drain(bucket, state, 1'000'000, 10'000);
  // 10 s at 50/s, plus the initial burst of 0.1 s.
  EXPECT_NEAR(granted, 500, 6);
}

TEST(AimdBucketTest, NothingIsGrantedWithoutTokensAndTheWaitSaysWhen) {
  const AimdBucket bucket(10, true);
  AimdState state;
  EXPECT_EQ(bucket.take(state, 0, 5, 0).granted, 1);  // capacity max(1, 10 x 0.1)
  const AimdTake refused = bucket.take(state, 0, 1, 0);
  EXPECT_EQ(refused.granted, 0);
  EXPECT_EQ(refused.wait_ms, 100);
  EXPECT_EQ(bucket.take(state, 100, 1, 0).granted, 1);
}

TEST(AimdBucketTest, UnlimitedUntilThrottledThenHalvedFromTheObservedRate) {
  const AimdBucket bucket(0, true);
  AimdState state;
  // 200 requests a second for two seconds, all granted without a limit.
  for (int i = 0; i < 400; ++i) {
    const AimdTake took = bucket.take(state, i * 5, 1, 0);
    ASSERT_EQ(took.granted, 1);
    ASSERT_EQ(took.rate, 0);
  }
  ASSERT_TRUE(bucket.cut(state, 2000, 0));
  EXPECT_NEAR(state.learned, 200, 1);
  EXPECT_NEAR(state.rate, 100, 1);
  EXPECT_EQ(state.cuts, 1u);
  // A second report within the spacing (another worker's 503 of the same burst) changes nothing.
  EXPECT_FALSE(bucket.cut(state, 2500, 0));
  EXPECT_NEAR(state.rate, 105, 1e-6);  // not cut; climbed 0.5 s at 5 % of the learned 200 per second
  // The next one, a second later, cuts again.
  EXPECT_TRUE(bucket.cut(state, 3000, 0));
  EXPECT_LT(state.rate, 100);
  EXPECT_EQ(state.cuts, 2u);
}

TEST(AimdBucketTest, ClimbsBackAdditivelyToTheCeiling) {
  const AimdBucket bucket(100, true);
  AimdState state;
  bucket.advance(state, 0);
  ASSERT_TRUE(bucket.cut(state, 0, 0));
  EXPECT_DOUBLE_EQ(state.rate, 50);
  bucket.advance(state, 2000);
  EXPECT_NEAR(state.rate, 60, 1e-9);  // 5 % of the ceiling per second
  bucket.advance(state, 30'000);
  EXPECT_DOUBLE_EQ(state.rate, 100);  // never past the ceiling
}

TEST(AimdBucketTest, WithoutACeilingClimbsToTheLearnedRateThenProbesSlowly) {
  const AimdBucket bucket(0, true);
  AimdState state;
  for (int i = 0; i < 80; ++i) bucket.take(state, i * 25, 1, 0);  // 40/s
  ASSERT_TRUE(bucket.cut(state, 2000, 0));
  const double learned = state.learned;
  ASSERT_NEAR(learned, 40, 1);
  bucket.advance(state, 12'000);  // 10 s: back at the learned rate
  EXPECT_NEAR(state.rate, learned, 1e-9);
  bucket.advance(state, 22'000);  // 10 s more: a tenth of the climb past it
  EXPECT_NEAR(state.rate, learned + 10 * std::max(1.0, learned * 0.05) * 0.1, 1e-6);
}

TEST(AimdBucketTest, RetryAfterHoldsEveryGrant) {
  const AimdBucket bucket(100, true);
  AimdState state;
  drain(bucket, state, 0, 1000);  // the fleet at its ceiling
  ASSERT_TRUE(bucket.cut(state, 1000, 2500));
  const AimdTake held = bucket.take(state, 1200, 1, 0);
  EXPECT_EQ(held.granted, 0);
  EXPECT_EQ(held.wait_ms, 2300);
  EXPECT_GT(bucket.take(state, 3600, 1, 0).granted, 0);
}

TEST(AimdBucketTest, ThrottlingThatDoesNotEaseNeverTakesTheRateBelowAnEighthOfItsPeak) {
  const AimdBucket bucket(0, true);
  AimdState state;
  for (int i = 0; i < 320; ++i) bucket.take(state, i * 6, 1, 0);  // about 160/s
  // A 503 (with Retry-After) every 300 ms for 20 s, whatever the rate.
  int holds = 0;
  for (std::int64_t t = 2000; t < 22'000; t += 300) {
    const double before = state.rate;
    bucket.cut(state, t, 1000);
    holds += state.hold_until_ms == t + 1000 ? 1 : 0;
    ASSERT_GE(state.rate, state.peak / 8 - 1e-9) << "at " << t;
    if (before > 0 && before <= state.peak / 8 * 1.5) {  // at the floor (0 before the first cut: unlimited)
      ASSERT_NE(state.hold_until_ms, t + 1000) << "held at the floor, at " << t;
    }
  }
  EXPECT_NEAR(state.peak, 160, 10);
  EXPECT_NEAR(state.rate, state.peak / 8, state.peak * 0.1);
  // Held only by the cuts that lowered the rate (160 -> 80 -> 40 -> 20), not by every 503.
  EXPECT_LE(holds, 4);
}

TEST(AimdBucketTest, ABandwidthBucketIsNotCut) {
  const AimdBucket bucket(1e6, false);
  AimdState state;
  bucket.advance(state, 0);
  EXPECT_FALSE(bucket.cut(state, 10, 0));
  EXPECT_DOUBLE_EQ(state.rate, 1e6);
  EXPECT_EQ(state.cuts, 0u);
}

// ---------------------------------------------------------------------------
// Batching: the store is asked per batch, not per request

class CountingStore final : public BudgetStore {
 public:
  explicit CountingStore(BudgetStore& inner) : inner_(inner) {}
  AimdTake take(const BudgetKey& key, double want, double used) override {
    ++takes;
    return inner_.take(key, want, used);
  }
  bool cut(const BudgetKey& key, std::int64_t retry_after_ms) override {
    ++cuts;
    return inner_.cut(key, retry_after_ms);
  }
  std::optional<BudgetSnapshot> snapshot(const BudgetKey& key) override { return inner_.snapshot(key); }
  int takes = 0;
  int cuts = 0;

 private:
  BudgetStore& inner_;
};

struct FakeClock {
  std::int64_t ms = 1'000'000;
  LocalBudgetStore::Clock millis() {
    return [this] { return ms; };
  }
  BatchLimiter::Clock steady() {
    return [this] { return std::chrono::steady_clock::time_point(std::chrono::milliseconds(ms)); };
  }
};

TEST(BatchLimiterTest, TakesTokensInBatchesOfFiftyMilliseconds) {
  FakeClock clock;
  LocalBudgetStore local(clock.millis());
  CountingStore store(local);
  BatchLimiter limiter(store, {"requests:target:write", 1000, true}, {}, clock.steady());
  for (int i = 0; i < 1000; ++i) {
    limiter.acquire(1);
    ++clock.ms;  // 1,000 requests a second, as the ceiling allows
  }
  // A batch is 50 tokens (50 ms at 1,000/s): about 20 asks, not 1,000.
  EXPECT_GE(store.takes, 15);
  EXPECT_LE(store.takes, 40);
}

TEST(BatchLimiterTest, AnUnlimitedBucketIsAskedEveryHundredMillisecondsAndLearnsTheRate) {
  FakeClock clock;
  LocalBudgetStore local(clock.millis());
  CountingStore store(local);
  const BudgetKey key{"requests:target:write", 0, true};
  BatchLimiter limiter(store, key, {}, clock.steady());
  for (int i = 0; i < 2000; ++i) {
    limiter.acquire(1);
    if (i % 2) ++clock.ms;  // 2,000 requests a second for a second
  }
  EXPECT_LE(store.takes, 12);
  EXPECT_EQ(limiter.last_rate(), 0);
  // The usage reported with each sync is what a cut starts from.
  EXPECT_TRUE(limiter.report_throttled(0ms));
  const auto after = local.snapshot(key);
  ASSERT_TRUE(after);
  EXPECT_NEAR(after->learned, 2000, 250);
  EXPECT_NEAR(after->rate, after->learned / 2, 1e-9);
  // The next acquire asks the store again and so learns the new rate.
  const int before = store.takes;
  limiter.acquire(1);
  EXPECT_EQ(store.takes, before + 1);
  EXPECT_NEAR(limiter.last_rate(), after->rate, 1e-9);
}

TEST(BudgetGateTest, ExportsTheSharedRateAndCountsItsCuts) {
  FakeClock clock;
  LocalBudgetStore store(clock.millis());
  Metrics metrics;
  Metrics::Gauge& rate = metrics.gauge("blobferry_budget_requests_per_second", "rate", {{"service", "target"}});
  Metrics::Counter& cuts = metrics.counter("blobferry_budget_cuts_total", "cuts", {{"service", "target"}});
  BudgetGate gate(std::make_unique<BatchLimiter>(store, BudgetKey{"requests:target:write", 80, true},
                                                 BatchLimiterOptions{}, clock.steady()),
                  nullptr, &rate, &cuts);
  gate.acquire_request();
  EXPECT_DOUBLE_EQ(rate.value(), 80);
  gate.report_throttled(0ms);
  gate.report_throttled(0ms);  // the same second: one cut
  EXPECT_EQ(cuts.value(), 1u);
  clock.ms += 200;
  gate.acquire_request();
  EXPECT_NEAR(rate.value(), 40 + 0.2 * 4, 1e-9);  // halved, then 0.2 s of climbing at 5 % of 80 per second
  gate.acquire_bytes(1 << 20);  // no bandwidth configured: nothing to wait for
}

// ---------------------------------------------------------------------------
// The storage gate

class RecordingGate final : public RequestGate {
 public:
  void acquire_request() override { ++requests; }
  void acquire_bytes(std::uint64_t n) override { bytes += n; }
  void report_throttled(std::chrono::milliseconds retry_after) override {
    ++throttled;
    last_retry_after = retry_after;
  }
  int requests = 0;
  std::uint64_t bytes = 0;
  int throttled = 0;
  std::chrono::milliseconds last_retry_after{0};
};

// A storage whose every call answers as a throttling S3 does.
class ThrottlingStorage final : public Storage {
 public:
  explicit ThrottlingStorage(Error error) : error_(std::move(error)) {}
  std::string describe() const override { return "throttling"; }
  void check(Access) override {}
  std::optional<ObjectInfo> head(const std::string&) override { throw error_; }
  std::optional<ObjectInfo> get(const std::string&, const ByteSink&, std::optional<ByteRange>) override {
    throw error_;
  }
  std::string put(const std::string&, ByteSource&, const PutOptions&) override { throw error_; }
  ListPage list(const ListRequest&) override { throw error_; }

 private:
  Error error_;
};

TEST(GatedStorageTest, AsksTheGateBeforeEachRequestAndPerBodyByte) {
  testing::TempDir dir("blobferry-gated");
  DiskStorage disk(testing::disk_service("disk", dir.path(), DiskLayout::kPlain));
  RecordingGate gate;
  GatedStorage gated(disk, gate);
  const std::string body(300'000, 'x');
  MemoryByteSource source(body);
  gated.put("a/b.bin", source, {});
  EXPECT_EQ(gate.requests, 1);
  EXPECT_EQ(gate.bytes, body.size());
  std::uint64_t received = 0;
  ASSERT_TRUE(gated.get("a/b.bin", [&](std::string_view chunk) { received += chunk.size(); }));
  EXPECT_EQ(received, body.size());
  EXPECT_EQ(gate.requests, 2);
  EXPECT_EQ(gate.bytes, 2 * body.size());
  gated.head("a/b.bin");
  gated.list({});
  EXPECT_EQ(gate.requests, 4);
  EXPECT_EQ(gate.throttled, 0);
  EXPECT_EQ(gated.describe(), disk.describe());
  EXPECT_EQ(&GatedStorage::unwrap(gated), &disk);
  EXPECT_EQ(gated.capabilities().chunked_writer, nullptr);  // Disk has none, so the wrapper has none
}

// The copy engine sizes its requests by the target's limits: a budget must not hide R2's.
// Requests sent around the layers (the event loop's) still pass each gate.
TEST(GatedStorageTest, AdmitTakesFromEveryLayerAndReportOnlyThrottling) {
  testing::TempDir dir("blobferry-gated-admit");
  DiskStorage disk(testing::disk_service("disk", dir.path(), DiskLayout::kPlain));
  RecordingGate inner_gate;
  RecordingGate outer_gate;
  GatedStorage inner(disk, inner_gate);
  GatedStorage outer(inner, outer_gate);
  EXPECT_EQ(&GatedStorage::unwrap(static_cast<Storage&>(outer)), &disk);
  GatedStorage::admit(outer, 3, 1000);  // HEAD, GET and PUT of a 1,000-byte object
  for (const RecordingGate* gate : {&inner_gate, &outer_gate}) {
    EXPECT_EQ(gate->requests, 3);
    EXPECT_EQ(gate->bytes, 1000u);
  }
  GatedStorage::admit(disk, 3, 1000);  // nothing to pass
  EXPECT_EQ(outer_gate.requests, 3);
  GatedStorage::report(outer, Error(ErrorKind::kThrottled, FailureReason::kThrottled, "503 SlowDown", 503, 700ms));
  EXPECT_EQ(outer_gate.throttled, 1);
  EXPECT_EQ(inner_gate.throttled, 1);
  EXPECT_EQ(outer_gate.last_retry_after, 700ms);
  GatedStorage::report(outer, Error(ErrorKind::kTransient, FailureReason::kNetwork, "reset"));
  EXPECT_EQ(outer_gate.throttled, 1) << "only throttling is reported";
}

TEST(GatedStorageTest, ForwardsTheWrappedServicesSizeLimits) {
  ServiceConfig config;
  config.name = "r2";
  config.kind = ServiceKind::kS3;
  config.bucket = "b";
  config.endpoint = "https://x.r2.cloudflarestorage.com";
  config.access_key_id = "AKIDEXAMPLE";
  config.secret_access_key = "secret";
  S3Storage r2(config);  // no I/O until a request
  RecordingGate gate;
  GatedStorage gated(r2, gate);
  const StorageCapabilities can = gated.capabilities();
  ASSERT_NE(can.chunked_writer, nullptr);
  ASSERT_NE(can.server_side_copier, nullptr);
  const std::uint64_t r2_limit = 5ULL * 1024 * 1024 * 1024 - 5ULL * 1024 * 1024;
  EXPECT_EQ(can.chunked_writer->size_limits().max_single_put, r2_limit);
  EXPECT_EQ(can.chunked_writer->size_limits().max_part_size, r2_limit);
  EXPECT_EQ(can.server_side_copier->size_limits().max_single_copy, r2_limit);
  EXPECT_EQ(can.chunked_writer->size_limits().max_parts, 10'000u);
  EXPECT_EQ(gate.requests, 0) << "asking for limits makes no request";

  testing::TempDir root("blobferry-gated-limits");
  DiskStorage disk(testing::disk_service("disk", root.path(), DiskLayout::kPlain));
  EXPECT_EQ(GatedStorage(disk, gate).size_limits().max_single_put, SizeLimits::kUnlimited);
}

TEST(GatedStorageTest, ReportsThrottlingWithItsRetryAfterAndRethrows) {
  RecordingGate gate;
  ThrottlingStorage slow_down(Error(ErrorKind::kThrottled, FailureReason::kThrottled, "503 SlowDown", 503, 1500ms));
  GatedStorage gated(slow_down, gate);
  EXPECT_THROW(gated.head("k"), Error);
  EXPECT_EQ(gate.throttled, 1);
  EXPECT_EQ(gate.last_retry_after, 1500ms);

  // 503 ServiceUnavailable without Retry-After is a transient error, and throttling too.
  ThrottlingStorage unavailable(Error(ErrorKind::kTransient, FailureReason::kServerError, "503 ServiceUnavailable", 503));
  GatedStorage gated_unavailable(unavailable, gate);
  EXPECT_THROW(gated_unavailable.list({}), Error);
  EXPECT_EQ(gate.throttled, 2);

  // Other failures are not.
  ThrottlingStorage denied(Error(ErrorKind::kPermanent, FailureReason::kAccessDenied, "403", 403));
  GatedStorage gated_denied(denied, gate);
  EXPECT_THROW(gated_denied.head("k"), Error);
  EXPECT_EQ(gate.throttled, 2);
}

}  // namespace
}  // namespace blobferry
