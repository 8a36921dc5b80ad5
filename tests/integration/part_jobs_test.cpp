// Giant objects as part jobs on Ceph RGW: three workers with two SIGKILLed, an upload aborted behind their back, cancel.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/queue/redis_client.h"
#include "common/queue/redis_queue.h"
#include "common/queue/redis_url.h"
#include "common/queue/upload_records.h"
#include "common/storage/byte_source.h"
#include "common/storage/chunked_writer.h"
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
constexpr std::uint64_t kMiB = 1024 * 1024;

// Deterministic bytes made as they are read and hashed on the way, so a 2 GiB
// source needs neither 2 GiB of RAM nor a second pass for its MD5.
class PatternSource final : public ByteSource {
 public:
  explicit PatternSource(std::uint64_t size) : size_(size), block_(testing::seeded_bytes(kMiB, 77)) {}
  std::uint64_t size() const override { return size_; }
  std::size_t read(char* buf, std::size_t n) override {
    const std::uint64_t left = size_ - offset_;
    n = static_cast<std::size_t>(std::min<std::uint64_t>({n, left, kMiB - offset_ % kMiB}));
    if (n == 0) return 0;
    // Each MiB starts with its own index, so no two parts are alike.
    std::string block = block_;
    const std::uint64_t index = offset_ / kMiB;
    std::memcpy(block.data(), &index, sizeof index);
    std::memcpy(buf, block.data() + offset_ % kMiB, n);
    md5_.update(std::string_view(buf, n));
    offset_ += n;
    return n;
  }
  bool rewind() override { return false; }  // written once; a retry would hash twice
  std::string md5() { return base64_encode(md5_.finish()); }

 private:
  std::uint64_t size_;
  std::uint64_t offset_ = 0;
  std::string block_;
  Digest md5_ = Digest::md5();
};

// UploadPart requests as the proxy in front of RGW saw them: upload id -> part -> count.
struct PartRequests {
  std::mutex mutex;
  std::map<std::string, std::map<int, int>> by_upload;
  int total = 0;

  // Returns the upload id and part number of an UploadPart request, else nothing.
  static std::optional<std::pair<std::string, int>> parse(const testing::InjectionRequest& request) {
    if (request.method != "PUT") return std::nullopt;
    const std::string& target = request.target;
    const auto number = target.find("partNumber=");
    const auto upload = target.find("uploadId=");
    if (number == std::string::npos || upload == std::string::npos) return std::nullopt;
    const std::string id = target.substr(upload + 9, target.find('&', upload) - (upload + 9));
    return std::make_pair(id, std::atoi(target.c_str() + number + 11));
  }
  int note(const std::string& id, int number) {
    std::lock_guard lock(mutex);
    ++by_upload[id][number];
    return ++total;
  }
};

struct Shared {
  Shared() : stack({.redis = true, .rgw = true}), scratch("bf-parts"), redis(std::make_shared<RedisClient>(RedisUrl::parse(stack.redis_url()))) {
    source = testing::open_service(stack, "local");
    target = testing::open_service(stack, "rgw_target");
    std::ifstream in(stack.storage_config());
    const std::string yml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto root = yml.find("root: ", yml.find("local:"));
    disk_root = yml.substr(root + 6, yml.find('\n', root) - root - 6);
  }
  testing::TestStack stack;
  testing::TempDir scratch;
  std::shared_ptr<RedisClient> redis;
  std::unique_ptr<Storage> source;
  std::unique_ptr<Storage> target;
  std::string disk_root;
};

Shared& shared() {
  static Shared instance;
  return instance;
}

class PartJobsTest : public ::testing::Test {
 protected:
  void SetUp() override { ::unsetenv("AWS_CA_BUNDLE"); }

  // Writes `size` pattern bytes to the Disk source; returns their MD5.
  static std::string put_source(const std::string& key, std::uint64_t size) {
    PatternSource body(size);
    shared().source->put(key, body, PutOptions{});
    return body.md5();
  }

  // A storage.yml for the workers: the Disk source, and RGW's target bucket through the proxy.
  static std::string proxied_config(const std::string& name, const std::string& endpoint) {
    const testing::TestStack& stack = shared().stack;
    const std::string path = shared().scratch.file(name + ".storage.yml");
    testing::write_text_file(path, "local:\n  service: Disk\n  root: " + shared().disk_root +
                                       "\nrgw_target:\n  service: S3\n  access_key_id: " +
                                       stack.env("RGW_ACCESS_KEY_ID") + "\n  secret_access_key: " +
                                       stack.env("RGW_SECRET_ACCESS_KEY") +
                                       "\n  region: us-east-1\n  bucket: rgw-target\n  endpoint: " + endpoint +
                                       "\n  force_path_style: true\n  http_read_timeout: 300\n");
    return path;
  }

  // The fault proxy in front of RGW's target, showing `observe` every request
  // (to count parts, or to act behind the workers' back); it answers nothing
  // itself, and RGW checks Content-MD5.
  static std::unique_ptr<testing::FaultProxy> proxy_to_rgw(
      std::function<void(const testing::InjectionRequest&)> observe) {
    testing::FaultProxyOptions options;
    options.upstream = shared().stack.env("RGW_ENDPOINT");
    options.check_content_md5 = false;
    options.inject = [observe = std::move(observe)](
                         const testing::InjectionRequest& request) -> std::optional<testing::InjectedAnswer> {
      observe(request);
      return std::nullopt;
    };
    return std::make_unique<testing::FaultProxy>(options);
  }

  // Runs one worker of 5 MiB part jobs through `proxy` until the migration is idle; returns its log.
  static std::string run_one_worker(const std::string& migration, testing::FaultProxy& proxy) {
    testing::WorkerFleet fleet(fleet_options(migration, proxied_config(migration, proxy.endpoint()), 5));
    fleet.start();
    const std::vector<std::string> unclean = fleet.wait_all(300s);
    EXPECT_TRUE(unclean.empty()) << unclean.front();
    return fleet.logs();
  }

  static testing::BlobferryCli cli() { return testing::BlobferryCli(shared().stack, shared().scratch.path()); }

  static void enqueue(const std::string& migration, const std::string& key, std::uint64_t size, const std::string& md5) {
    const std::string manifest = shared().scratch.file(migration + ".csv");
    testing::write_text_file(manifest, "key,size,checksum\n" + key + "," + std::to_string(size) + "," + md5 + "\n");
    const testing::CliResult result = cli().run({"enqueue", "--migration", migration, "--from", "local", "--to",
                                                 "rgw_target", "--source", "manifest", "--manifest", manifest});
    ASSERT_EQ(result.exit_code, 0) << result.all();
  }

  static testing::WorkerFleetOptions fleet_options(const std::string& migration, const std::string& config,
                                                   std::uint64_t part_mib) {
    return {.migration = migration,
            .storage_config = config,
            .redis_url = shared().stack.redis_url(),
            .scratch_dir = shared().scratch.path(),
            .concurrency = 2,
            .lease_seconds = 3,
            .drain_seconds = 5,
            .exit_when_empty = true,
            .log_level = "info",
            .extra_args = {"--part-job-threshold-mib", "16", "--part-job-size-mib", std::to_string(part_mib)}};
  }

  static int parts_done(const std::string& migration) {
    const std::vector<UploadProgress> open = UploadRecords(shared().redis, migration).all();
    return open.empty() ? -1 : open.front().parts_done;
  }

  static std::vector<S3Storage::OpenUpload> open_uploads(const std::string& prefix) {
    return dynamic_cast<S3Storage&>(*shared().target).list_multipart_uploads(prefix);
  }

  // The target's object is the source's bytes: its MD5 metadata, and its bytes hashed.
  static void expect_proven(const std::string& key, std::uint64_t size, const std::string& md5) {
    const std::optional<ObjectInfo> head = shared().target->head(key);
    ASSERT_TRUE(head) << key << " is not on the target";
    EXPECT_EQ(head->size, size);
    std::string stored;
    for (const auto& [name, value] : head->metadata) {
      if (name == "x-amz-meta-blobferry-md5") stored = value;
    }
    EXPECT_EQ(stored, md5) << "the MD5 validate reads";
    Digest digest = Digest::md5();
    std::uint64_t received = 0;
    shared().target->get(key, [&](std::string_view chunk) {
      digest.update(chunk);
      received += chunk.size();
    });
    EXPECT_EQ(received, size);
    EXPECT_EQ(base64_encode(digest.finish()), md5) << "the target's bytes";
  }
};

// Size of the big object: BLOBFERRY_PART_JOBS_BYTES, else 320 MiB (64 parts
// of 5 MiB) so CI stays within minutes; the closing figure used 2 GiB.
std::uint64_t big_size() {
  const char* text = std::getenv("BLOBFERRY_PART_JOBS_BYTES");
  return text != nullptr ? std::strtoull(text, nullptr, 10) : 320 * kMiB;
}

TEST_F(PartJobsTest, ThreeWorkersTwoKilledUploadEveryPartAtMostTwiceAndProveTheObject) {
  const std::string migration = "parts-killed";
  const std::string key = "killed-big.bin";
  const std::uint64_t size = big_size();
  const std::uint64_t part_mib = std::max<std::uint64_t>(5, (size / 64 + kMiB - 1) / kMiB);
  const int parts = static_cast<int>((size + part_mib * kMiB - 1) / (part_mib * kMiB));
  const std::string md5 = put_source(key, size);

  PartRequests requests;
  const auto proxy = proxy_to_rgw([&](const testing::InjectionRequest& request) {
    if (auto part = PartRequests::parse(request)) requests.note(part->first, part->second);
  });
  enqueue(migration, key, size, md5);

  testing::WorkerFleet fleet(fleet_options(migration, proxied_config(migration, proxy->endpoint()), part_mib));
  const auto started = Clock::now();
  fleet.start();
  fleet.start();
  fleet.start();
  ASSERT_TRUE(testing::wait_until([&] { return parts_done(migration) >= parts / 4; }, 600s)) << fleet.logs();
  fleet.kill(0);
  const int done_at_first_kill = parts_done(migration);
  ASSERT_TRUE(testing::wait_until([&] { return parts_done(migration) >= parts / 2; }, 600s)) << fleet.logs();
  fleet.kill(1);
  const int done_at_second_kill = parts_done(migration);
  ASSERT_GE(done_at_first_kill, 0) << "the object was done before the first kill";
  ASSERT_LT(done_at_second_kill, parts) << "the object was done before the second kill";

  const std::vector<std::string> ended = fleet.wait_all(900s);
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  const std::string logs = fleet.logs();

  RedisQueue queue(shared().redis, migration);
  const Counts counts = queue.counts();
  EXPECT_EQ(counts.copied, 1u) << testing::last_lines(logs, 40);
  EXPECT_EQ(counts.bytes_copied, size);
  EXPECT_EQ(counts.failed, 0u);
  EXPECT_EQ(counts.dead, 0u);
  EXPECT_TRUE(counts.idle());
  EXPECT_GT(counts.recovered, 0u) << "the killed workers' leases came back to the queue";
  EXPECT_TRUE(UploadRecords(shared().redis, migration).all().empty()) << "the upload's record outlived it";

  std::lock_guard lock(requests.mutex);
  ASSERT_EQ(requests.by_upload.size(), 1u) << "killing workers must not start the object over";
  const std::map<int, int>& uploads = requests.by_upload.begin()->second;
  int most = 0;
  int twice = 0;
  for (int n = 1; n <= parts; ++n) {
    const auto found = uploads.find(n);
    ASSERT_NE(found, uploads.end()) << "part " << n << " was never uploaded";
    EXPECT_LE(found->second, 2) << "part " << n << " uploaded " << found->second << " times";
    most = std::max(most, found->second);
    twice += found->second > 1 ? 1 : 0;
  }
  EXPECT_EQ(static_cast<int>(uploads.size()), parts);
  expect_proven(key, size, md5);
  EXPECT_TRUE(open_uploads("killed-").empty()) << "an upload was left open";
  std::printf("RELIABILITY part_jobs: %.0f MiB as %d part jobs of %llu MiB, 3 workers, 2 SIGKILLed (at %d and %d "
              "parts done): %llu leases recovered, %d UploadPart requests, each part at most %d times (%d twice), "
              "copied 1, MD5 proven, 0 uploads open, %.1f s\n",
              static_cast<double>(size) / kMiB, parts, static_cast<unsigned long long>(part_mib), done_at_first_kill,
              done_at_second_kill, static_cast<unsigned long long>(counts.recovered), requests.total, most, twice,
              seconds);
  (void)ended;
}

TEST_F(PartJobsTest, VanishedUploadStartsOverAndEndsProven) {
  const std::string migration = "parts-vanished";
  const std::string key = "vanished-big.bin";
  const std::uint64_t size = 48 * kMiB + 123;
  const std::string md5 = put_source(key, size);

  PartRequests requests;
  S3Storage& direct = dynamic_cast<S3Storage&>(*shared().target);
  const auto proxy = proxy_to_rgw([&](const testing::InjectionRequest& request) {
    if (auto part = PartRequests::parse(request)) {
      // A lifecycle rule expiring the upload mid-way, as seen by the workers.
      if (requests.note(part->first, part->second) == 4) direct.abort_multipart(key, part->first);
    }
  });
  enqueue(migration, key, size, md5);

  const std::string logs = run_one_worker(migration, *proxy);

  EXPECT_FALSE(testing::lines_containing(logs, "starts over").empty()) << testing::last_lines(logs, 40);
  {
    std::lock_guard lock(requests.mutex);
    EXPECT_EQ(requests.by_upload.size(), 2u) << "one upload aborted, one new";
  }
  const Counts counts = RedisQueue(shared().redis, migration).counts();
  EXPECT_EQ(counts.copied, 1u) << testing::last_lines(logs, 40);
  EXPECT_EQ(counts.failed, 0u);
  expect_proven(key, size, md5);
  EXPECT_TRUE(open_uploads("vanished-").empty()) << "an upload was left open";
  EXPECT_TRUE(UploadRecords(shared().redis, migration).all().empty());
}

// A coordinator killed after creating and recording its upload, before
// queuing the part jobs (three parts already on the server): the job run again
// lists the upload's parts and uploads only the seven missing ones.
TEST_F(PartJobsTest, ARestartedCoordinatorUploadsOnlyThePartsListPartsLacks) {
  const std::string migration = "parts-resumed";
  const std::string key = "resumed-big.bin";
  const std::uint64_t size = 50 * kMiB;
  const std::uint64_t part_size = 5 * kMiB;
  const std::string md5 = put_source(key, size);
  const std::optional<ObjectInfo> head = shared().source->head(key);
  ASSERT_TRUE(head);

  ChunkedWriter& writer = *shared().target->capabilities().chunked_writer;
  UploadRecord record;
  record.target_key = key;
  record.upload_id = writer.create_multipart(key, PutOptions{"", {{"x-amz-meta-blobferry-md5", md5}}});
  record.source = "local";
  record.target = "rgw_target";
  record.source_key = key;
  record.size = size;
  record.part_size = part_size;
  record.part_count = 10;
  record.source_etag = head->etag;
  record.md5 = md5;
  for (int n = 1; n <= 3; ++n) {
    std::string part;
    shared().source->get(key, [&](std::string_view chunk) { part.append(chunk); },
                         ByteRange{(n - 1) * part_size, n * part_size - 1});
    MemoryByteSource body(part);
    writer.upload_part(key, record.upload_id, n, body, testing::md5_base64(part));
  }
  UploadRecords records(shared().redis, migration);
  ASSERT_TRUE(records.open(record));

  PartRequests requests;
  const auto proxy = proxy_to_rgw([&](const testing::InjectionRequest& request) {
    if (auto part = PartRequests::parse(request)) requests.note(part->first, part->second);
  });
  enqueue(migration, key, size, md5);
  const std::string logs = run_one_worker(migration, *proxy);
  EXPECT_FALSE(testing::lines_containing(logs, "resumed, 7 of 10 parts to upload").empty()) << testing::last_lines(logs, 30);

  {
    std::lock_guard lock(requests.mutex);
    ASSERT_EQ(requests.by_upload.size(), 1u) << "the recorded upload is resumed, not replaced";
    const std::map<int, int>& uploads = requests.by_upload.begin()->second;
    EXPECT_EQ(requests.by_upload.begin()->first, record.upload_id);
    for (int n = 1; n <= 10; ++n) {
      const auto found = uploads.find(n);
      EXPECT_EQ(found == uploads.end() ? 0 : found->second, n <= 3 ? 0 : 1) << "UploadPart requests for part " << n;
    }
  }
  const Counts counts = RedisQueue(shared().redis, migration).counts();
  EXPECT_EQ(counts.copied, 1u) << testing::last_lines(logs, 30);
  expect_proven(key, size, md5);
  EXPECT_TRUE(open_uploads("resumed-").empty()) << "an upload was left open";
  EXPECT_TRUE(records.all().empty());
}

TEST_F(PartJobsTest, StatusListsAnOpenUploadAndCancelAbortsIt) {
  const std::string migration = "parts-cancelled";
  const std::string key = "cancelled-big.bin";
  const std::uint64_t size = 48 * kMiB;
  const std::string md5 = put_source(key, size);

  const auto proxy = proxy_to_rgw([&](const testing::InjectionRequest& request) {
    // Slow parts, so the worker is surely killed with the upload open.
    if (PartRequests::parse(request)) std::this_thread::sleep_for(400ms);
  });
  enqueue(migration, key, size, md5);
  testing::WorkerFleet fleet(fleet_options(migration, proxied_config(migration, proxy->endpoint()), 5));
  fleet.start();
  ASSERT_TRUE(testing::wait_until([&] { return parts_done(migration) >= 2; }, 120s)) << fleet.logs();
  fleet.kill(0);
  ASSERT_LT(parts_done(migration), 10) << "the object was done before the kill";
  ASSERT_EQ(open_uploads("cancelled-").size(), 1u);

  const testing::CliResult text = cli().run({"status", "--migration", migration});
  EXPECT_EQ(text.exit_code, 0) << text.all();
  EXPECT_FALSE(testing::lines_containing(text.out, "upload   " + key).empty()) << text.out;
  EXPECT_NE(text.out.find("of 10 parts done"), std::string::npos) << text.out;
  const testing::CliResult json = cli().run({"status", "--migration", migration, "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.all();
  const nlohmann::json parsed = nlohmann::json::parse(json.out);
  ASSERT_EQ(parsed.at("open_uploads").size(), 1u) << json.out;
  EXPECT_EQ(parsed["open_uploads"][0]["key"], key);
  EXPECT_EQ(parsed["open_uploads"][0]["parts"], 10);
  EXPECT_GE(parsed["open_uploads"][0]["parts_done"].get<int>(), 2);

  const testing::CliResult cancelled = cli().run({"cancel", "--migration", migration, "--purge", "--yes"});
  EXPECT_EQ(cancelled.exit_code, 0) << cancelled.all();
  EXPECT_NE(cancelled.out.find("aborted the multipart upload of " + key), std::string::npos) << cancelled.out;
  EXPECT_TRUE(open_uploads("cancelled-").empty()) << "cancel left the upload open";
  const RedisReplyPtr left = shared().redis->command({"KEYS", "bf:{" + migration + "}:upload*"});
  EXPECT_EQ(left->elements, 0u) << "an upload record outlived --purge: " << (left->elements ? reply_string(*left->element[0]) : "");
  EXPECT_TRUE(shared().source->head(key).has_value()) << "the source is never touched";
}

}  // namespace
}  // namespace blobferry
