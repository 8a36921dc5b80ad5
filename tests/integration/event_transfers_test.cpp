// Small copies on the worker's event loop (issue 14 item 1): many in flight on few threads, every fault handed to the engine.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/queue/memory_queue.h"
#include "common/storage/s3/s3_storage.h"
#include "common/storage/service_registry.h"
#include "common/storage/storage_config.h"
#include "worker/copy/copy_engine.h"
#include "worker/loop/worker_loop.h"
#include "tests/support/fault_proxy.h"
#include "tests/support/seed_data.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_stack.h"

namespace blobferry::testing {
namespace {

using namespace std::chrono_literals;

std::string md5_base64(const std::string& bytes) { return base64_encode(md5_of(bytes)); }

// How many requests of a method a proxy holds at once, each for `delay`:
// the copies a worker really has in flight, whatever its threads.
class InFlightMeter {
 public:
  InFlightMeter(std::string method, std::chrono::milliseconds delay) : method_(std::move(method)), delay_(delay) {}

  Injection injection() {
    return [this](const InjectionRequest& request) -> std::optional<InjectedAnswer> {
      if (request.method != method_) return std::nullopt;
      const int now = ++in_flight_;
      int seen = peak_.load();
      while (now > seen && !peak_.compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(delay_);
      --in_flight_;
      return std::nullopt;
    };
  }
  int peak() const { return peak_.load(); }

 private:
  std::string method_;
  std::chrono::milliseconds delay_;
  std::atomic<int> in_flight_{0};
  std::atomic<int> peak_{0};
};

class EventTransfersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    StackOptions servers;
    servers.s3 = true;
    stack_ = new TestStack(servers);
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }

  static ServiceConfig s3rver_service(const std::string& bucket, const std::string& endpoint) {
    ServiceConfig config;
    config.name = bucket;
    config.kind = ServiceKind::kS3;
    config.bucket = bucket;
    config.endpoint = endpoint;
    config.force_path_style = true;
    config.access_key_id = "S3RVER";
    config.secret_access_key = "S3RVER";
    config.http_read_timeout = 10;
    return config;
  }

  // storage.yml with `source` and `target`, each reached directly or through a proxy.
  ServiceRegistry services(const std::string& source_endpoint, const std::string& target_endpoint) {
    const std::string s3rver = "\n  force_path_style: true\n  access_key_id: S3RVER\n  secret_access_key: S3RVER\n";
    const std::string path = folder_.file("storage.yml");
    std::ofstream(path) << "source:\n  service: S3\n  bucket: source\n  endpoint: " << source_endpoint << s3rver
                        << "target:\n  service: S3\n  bucket: target\n  endpoint: " << target_endpoint << s3rver;
    return ServiceRegistry(StorageConfig::load(path));
  }

  // `count` objects of 1–4 KiB under `prefix` on the source, one job each
  // with its size and MD5 as a manifest gives them.
  std::vector<Job> seed(const std::string& prefix, int count) {
    S3Storage source(s3rver_service("source", stack_->env("S3_SOURCE_ENDPOINT")));
    std::vector<Job> jobs;
    for (int i = 0; i < count; ++i) {
      const std::string key = prefix + "/" + std::to_string(i) + ".bin";
      std::string bytes(1024 + (i * 97) % 3072, '\0');
      for (std::size_t b = 0; b < bytes.size(); ++b) bytes[b] = static_cast<char>((b * 31 + i * 7) % 251);
      MemoryByteSource body(bytes);
      source.put(key, body, PutOptions{md5_base64(bytes), {}});
      md5_of_key_[key] = md5_base64(bytes);
      Job job;
      job.migration = "events";
      job.source = "source";
      job.target = "target";
      JobObject object;
      object.key = key;
      object.size = bytes.size();
      object.checksum = md5_of_key_[key];
      job.objects.push_back(object);
      jobs.push_back(job);
    }
    return jobs;
  }

  static WorkerOptions worker_options(int concurrency, int transfers) {
    WorkerOptions options;
    options.migration = "events";
    options.worker_id = "events-test";
    options.concurrency = concurrency;
    options.transfers = transfers;
    options.exit_when_empty = true;
    options.drain = 5s;
    return options;
  }

  // Every key of `prefix` on the target holds the source's bytes (its ETag is their MD5).
  void expect_copied_intact(const std::string& prefix, int count) {
    S3Storage target(s3rver_service("target", stack_->env("S3_TARGET_ENDPOINT")));
    for (int i = 0; i < count; ++i) {
      const std::string key = prefix + "/" + std::to_string(i) + ".bin";
      const std::optional<ObjectInfo> landed = target.head(key);
      ASSERT_TRUE(landed) << key << " is not on the target";
      EXPECT_EQ(base64_encode(*hex_decode(landed->etag)), md5_of_key_[key]) << key;
    }
  }

  static TestStack* stack_;
  TempDir folder_{"event-transfers"};
  std::map<std::string, std::string> md5_of_key_;
};

TestStack* EventTransfersTest::stack_ = nullptr;

// Two job threads, PUTs that each take 300 ms at the server: on the event
// loop dozens wait there at once; on the job threads alone, never more than two.
TEST_F(EventTransfersTest, ManySmallCopiesAreInFlightOnTwoJobThreads) {
  for (const int transfers : {0, 128}) {
    SCOPED_TRACE("transfers " + std::to_string(transfers));
    const std::string prefix = "flight-" + std::to_string(transfers);
    const int count = transfers == 0 ? 12 : 240;
    InFlightMeter meter("PUT", 300ms);
    FaultProxyOptions proxy_options;
    proxy_options.upstream = stack_->env("S3_TARGET_ENDPOINT");
    proxy_options.inject = meter.injection();
    FaultProxy proxy(proxy_options);
    ServiceRegistry registry = services(stack_->env("S3_SOURCE_ENDPOINT"), proxy.endpoint());
    MemoryQueue queue("events");
    queue.push(seed(prefix, count));
    CopyEngine engine;

    const WorkerSummary summary = WorkerLoop(queue, registry, engine, nullptr, worker_options(2, transfers)).run();

    EXPECT_EQ(summary.copied, static_cast<std::uint64_t>(count));
    EXPECT_EQ(summary.failed, 0u);
    EXPECT_EQ(queue.counts().copied, static_cast<std::uint64_t>(count));
    expect_copied_intact(prefix, count);
    if (transfers == 0) {
      EXPECT_LE(meter.peak(), 2) << "a copy per job thread";
    } else {
      EXPECT_GE(meter.peak(), 32) << "copies in flight on the event loop, not one per thread";
    }
  }
}

// Server errors, resets and flipped bytes on either side: the event loop
// hands each such object to the engine, which retries it; every object lands
// intact and is counted once.
TEST_F(EventTransfersTest, FaultsOnTheLoopGoToTheEngineAndEachObjectCountsOnce) {
  FaultProxyOptions source_faults;
  source_faults.upstream = stack_->env("S3_SOURCE_ENDPOINT");
  source_faults.flip_response_byte = {0.15, {"GET"}};
  source_faults.reset = {0.05, {"GET"}};
  source_faults.seed = 7;
  FaultProxy source_proxy(source_faults);
  FaultProxyOptions target_faults;
  target_faults.upstream = stack_->env("S3_TARGET_ENDPOINT");
  target_faults.server_error = {0.15, {"PUT", "HEAD"}};
  target_faults.flip_request_byte = {0.1, {"PUT"}};
  target_faults.seed = 11;
  InFlightMeter meter("HEAD", 50ms);  // shows the copies ran on the loop, not on the two threads
  target_faults.inject = meter.injection();
  FaultProxy target_proxy(target_faults);
  ServiceRegistry registry = services(source_proxy.endpoint(), target_proxy.endpoint());
  MemoryQueue queue("events");
  const int count = 150;
  queue.push(seed("faults", count));
  CopyEngineOptions engine_options;
  RetryOptions retries;
  retries.retries = 8;
  retries.integrity_retries = 8;
  retries.base = 5ms;
  retries.cap = 50ms;
  engine_options.retry_policy = RetryPolicy(retries);
  CopyEngine engine(engine_options);

  const WorkerSummary summary = WorkerLoop(queue, registry, engine, nullptr, worker_options(2, 64)).run();

  EXPECT_EQ(summary.copied, static_cast<std::uint64_t>(count));
  EXPECT_EQ(summary.failed, 0u);
  const Counts counts = queue.counts();
  EXPECT_EQ(counts.copied, static_cast<std::uint64_t>(count)) << "each object counted once";
  EXPECT_EQ(counts.failed, 0u);
  EXPECT_GT(source_proxy.stats().flipped_response_bytes + source_proxy.stats().resets, 0u);
  EXPECT_GT(target_proxy.stats().server_errors + target_proxy.stats().bad_digests, 0u);
  EXPECT_GT(meter.peak(), 2);
  expect_copied_intact("faults", count);
}

// At the drain deadline the loop's transfers are cancelled, their jobs go
// back to the queue unrecorded, and run() returns without waiting for them.
TEST_F(EventTransfersTest, TheDrainDeadlineCancelsTransfersOnTheLoopAndReturnsTheirJobs) {
  FaultProxyOptions stalling;
  stalling.upstream = stack_->env("S3_TARGET_ENDPOINT");
  stalling.stall = {1.0, {"PUT"}};
  stalling.stall_duration = 20s;
  FaultProxy proxy(stalling);
  ServiceRegistry registry = services(stack_->env("S3_SOURCE_ENDPOINT"), proxy.endpoint());
  MemoryQueue queue("events");
  const int count = 40;
  queue.push(seed("drain", count));
  CopyEngine engine;
  WorkerOptions options = worker_options(2, 64);
  options.exit_when_empty = false;
  options.drain = 1s;
  WorkerLoop loop(queue, registry, engine, nullptr, options);
  WorkerSummary summary;
  std::thread worker([&] { summary = loop.run(); });
  EXPECT_TRUE(wait_until([&] { return proxy.stats().stalls >= 20; }, 20s)) << proxy.stats().stalls << " PUTs stalled";

  const auto stopping = std::chrono::steady_clock::now();
  loop.request_stop();
  worker.join();
  const auto took = std::chrono::steady_clock::now() - stopping;

  EXPECT_LT(took, 8s) << "cancelled transfers end within about a second of the deadline, not when the server lets go";
  EXPECT_FALSE(summary.drained_cleanly);
  EXPECT_EQ(summary.copied, 0u);
  EXPECT_EQ(summary.failed, 0u);
  const Counts counts = queue.counts();
  EXPECT_EQ(counts.copied, 0u);
  EXPECT_EQ(counts.failed, 0u);
  EXPECT_EQ(counts.queued + counts.in_flight, static_cast<std::uint64_t>(count)) << "every job back to be run again";
}

}  // namespace
}  // namespace blobferry::testing
