// End to end: `blobferry worker` processes against real Redis and s3rver, killed, stopped and fed faults and bad jobs.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/storage/byte_source.h"
#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/queue/job.h"
#include "common/queue/redis_client.h"
#include "common/queue/redis_queue.h"
#include "common/queue/redis_url.h"
#include "common/storage/s3/s3_storage.h"
#include "common/storage/service_config.h"
#include "tests/support/child_process.h"
#include "tests/support/fault_proxy.h"
#include "tests/support/seed_data.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_services.h"
#include "tests/support/test_stack.h"

namespace blobferry {
namespace {

using testing::s3rver_service;

using namespace std::chrono_literals;
using Json = nlohmann::json;
using testing::ChildExit;
using testing::ChildOptions;
using testing::ChildProcess;
using testing::FaultProxy;
using testing::FaultProxyOptions;
using testing::FaultProxyStats;
using testing::FaultRule;
using testing::InjectedAnswer;
using testing::InjectionRequest;
using testing::TempDir;
using testing::TestStack;
using testing::SeedObject;
using testing::SeedObjects;
using testing::lines_containing;
using testing::last_lines;
using testing::make_seed_objects;
using testing::manifest_csv;
using testing::not_intact_on;
using testing::parallel_for;
using testing::put_seed_objects;
using testing::wait_until;
using testing::write_text_file;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * kKiB;
constexpr int kPartSizeMiB = 5;

// --- data ------------------------------------------------------------------

using DataSet = SeedObjects;

// count objects under prefix with sizes spread over [min_size, max_size], the
// first one of min_size (empty when that is 0), plus the given large sizes
// placed early in the list so they are in flight when workers are disturbed.
DataSet make_data_set(const std::string& prefix, std::size_t count, std::uint64_t min_size, std::uint64_t max_size,
                      const std::vector<std::uint64_t>& large, std::uint64_t seed) {
  DataSet data = make_seed_objects(prefix, count, min_size, max_size, {}, seed);
  if (!data.empty()) data.front().size = min_size;
  for (std::size_t i = 0; i < large.size(); ++i) {
    const std::string large_prefix = prefix + "large-" + std::to_string(i) + "-";
    SeedObject object = make_seed_objects(large_prefix, 1, large[i], large[i], {}, seed + 1 + i).front();
    data.insert(data.begin() + static_cast<std::ptrdiff_t>(std::min(data.size(), 1 + i * count / 2)), object);
  }
  return data;
}

// --- files -----------------------------------------------------------------

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

// Every file under dir, relative path -> hex MD5 of its bytes ("<dir>" for folders).
std::map<std::string, std::string> hash_tree(const std::string& dir) {
  std::vector<std::filesystem::directory_entry> entries(std::filesystem::recursive_directory_iterator(dir), {});
  std::vector<std::string> hashes(entries.size());
  parallel_for(entries.size(), 4, [&](std::size_t i) {
    hashes[i] = entries[i].is_regular_file() ? hex_encode(md5_of(read_file(entries[i].path().string()))) : "<dir>";
  });
  std::map<std::string, std::string> by_path;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    by_path[std::filesystem::relative(entries[i].path(), dir).string()] = hashes[i];
  }
  return by_path;
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// --- services --------------------------------------------------------------


// One S3 service of a storage.yml; read_timeout 0 keeps the default.
std::string s3_service_yaml(const std::string& name, const std::string& bucket, const std::string& endpoint,
                            int read_timeout = 0) {
  std::string yaml = name + ":\n  service: S3\n  access_key_id: S3RVER\n  secret_access_key: S3RVER\n" +
                     "  region: us-east-1\n  bucket: " + bucket + "\n  endpoint: " + endpoint +
                     "\n  force_path_style: true\n";
  if (read_timeout > 0) {
    yaml += "  http_open_timeout: " + std::to_string(read_timeout) +
            "\n  http_read_timeout: " + std::to_string(read_timeout) + "\n";
  }
  return yaml;
}

struct WorkerFlags {
  int concurrency = 8;
  int lease_seconds = 3;
  int drain_seconds = 10;
  bool exit_when_empty = false;
  std::string log_level = "info";
  int transfers = 256;  // small copies in flight on the event loop (0: none)
};

struct CommandRun {
  ChildExit exit;
  std::string out;
  std::string err;
};

// --- the suite -------------------------------------------------------------

// Everything the tests share: one stack, the seeded data sets (all seeded
// before any test, so the source's digest is taken once, before any worker
// ran), and the source's digest at that point.
struct Shared {
  TestStack stack{{.redis = true, .s3 = true}};
  TempDir scratch{"blobferry-workers"};
  S3Storage source{s3rver_service("source", stack.env("S3_SOURCE_ENDPOINT"))};
  S3Storage target{s3rver_service("target", stack.env("S3_TARGET_ENDPOINT"))};
  std::shared_ptr<RedisClient> redis = std::make_shared<RedisClient>(RedisUrl::parse(stack.redis_url()));

  DataSet killed = with_awkward_keys(
      make_data_set("kill/", 400, 0, 200 * kKiB, {12 * kMiB + 3, 12 * kMiB + 777}, 101), "kill/");
  DataSet faults = make_data_set("faults/", 150, 0, 200 * kKiB, {6 * kMiB + 5}, 202);
  DataSet malformed = make_data_set("malformed/", 20, 0, 64 * kKiB, {}, 303);
  DataSet missing = make_data_set("missing/", 10, 0, 64 * kKiB, {}, 404);
  // Larger objects, so copies are in flight when SIGTERM comes.
  DataSet drain = make_data_set("drain/", 16, 2 * kMiB, 3 * kMiB, {}, 505);
  // Three migrations one worker without --migration serves (the third is
  // enqueued after it started).
  DataSet every_a = make_data_set("every-a/", 40, 0, 32 * kKiB, {}, 606);
  DataSet every_b = make_data_set("every-b/", 20, 0, 32 * kKiB, {}, 607);
  DataSet every_c = make_data_set("every-c/", 15, 0, 32 * kKiB, {}, 608);
  // Three batches' worth for a worker of concurrency 8 killed holding one.
  DataSet batch = make_data_set("batch/", 24, 1, 64 * kKiB, {}, 709);
  DataSet loop_batch = make_data_set("loop-batch/", 24, 1, 64 * kKiB, {}, 719);

  std::map<std::string, std::string> source_digest;
  int runs = 0;

  Shared() {
    for (DataSet* data : {&killed, &faults, &malformed, &missing, &drain, &every_a, &every_b, &every_c, &batch, &loop_batch}) {
      put_seed_objects(*data, source);
    }
    source_digest = hash_tree(stack.env("S3_SOURCE_DIR"));
  }

  static DataSet with_awkward_keys(DataSet data, const std::string& prefix) {
    const std::vector<std::string> keys{prefix + "nested/folder/with space.bin", prefix + "ünïcödé-名前.txt",
                                        prefix + "sym&bols=+@!$'().dat"};
    for (std::size_t i = 0; i < keys.size(); ++i) data.push_back({keys[i], 1000 + 37 * i, 9000 + i, {}});
    return data;
  }

};

class WorkerDistributedTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { shared_ = new Shared(); }
  static void TearDownTestSuite() {
    delete shared_;
    shared_ = nullptr;
  }

  static Shared& shared() { return *shared_; }
  static TestStack& stack() { return shared_->stack; }

  // A storage.yml with `source` and `target` straight at the two s3rvers.
  static std::string direct_config(const std::string& name) {
    const std::string path = shared().scratch.file(name + ".storage.yml");
    write_text_file(path, s3_service_yaml("source", "source", stack().env("S3_SOURCE_ENDPOINT")) +
                         s3_service_yaml("target", "target", stack().env("S3_TARGET_ENDPOINT")));
    return path;
  }

  static ChildOptions child_options(const std::string& label) {
    const std::string base = shared().scratch.file(label + "-" + std::to_string(++shared().runs));
    ChildOptions options;
    options.stdout_path = base + ".out";
    options.stderr_path = base + ".err";
    // Only what the command line says: nothing from the developer's shell.
    for (const char* name : {"REDIS_URL", "BLOBFERRY_STORAGE_CONFIG", "DATABASE_URL", "AWS_CA_BUNDLE"}) {
      options.env[name] = std::nullopt;
    }
    return options;
  }

  static std::vector<std::string> blobferry(std::vector<std::string> args, const std::string& config) {
    args.insert(args.begin(), BLOBFERRY_BINARY);
    args.insert(args.end(), {"--storage-config", config, "--redis-url", stack().redis_url()});
    return args;
  }

  static CommandRun run_blobferry(const std::string& label, std::vector<std::string> args, const std::string& config) {
    ChildProcess child(blobferry(std::move(args), config), child_options(label));
    CommandRun run{child.wait(), child.stdout_text(), child.stderr_text()};
    return run;
  }

  static ChildProcess start_worker(const std::string& migration, const std::string& config,
                                   const WorkerFlags& flags) {
    std::vector<std::string> args{"worker",
                                  "--migration",
                                  migration,
                                  "--concurrency",
                                  std::to_string(flags.concurrency),
                                  "--lease-seconds",
                                  std::to_string(flags.lease_seconds),
                                  "--drain-seconds",
                                  std::to_string(flags.drain_seconds),
                                  "--part-size-mib",
                                  std::to_string(kPartSizeMiB),
                                  "--log-level",
                                  flags.log_level};
    if (flags.exit_when_empty) args.push_back("--exit-when-empty");
    args.insert(args.end(), {"--transfers", std::to_string(flags.transfers)});
    return ChildProcess(blobferry(std::move(args), config), child_options("worker-" + migration));
  }

  // SIGKILLs a worker run with `flags` once it holds `batch` stalled copies of
  // `data` (keys under `prefix`), then checks a second one copies each once.
  void kill_holding_a_full_batch(const std::string& migration, const DataSet& data, const std::string& prefix,
                                 const WorkerFlags& flags, std::size_t batch);

  // Waits for a worker to exit by itself; on timeout it is killed and the test fails.
  static ChildExit finish_worker(ChildProcess& worker, std::chrono::seconds timeout) {
    auto exit = worker.wait_for(timeout);
    if (!exit) {
      ADD_FAILURE() << "worker " << worker.pid() << " still running after " << timeout.count()
                    << " s; last log lines:\n"
                    << last_lines(worker.stderr_text(), 20);
      worker.send_signal(SIGKILL);
      return worker.wait();
    }
    return *exit;
  }

  static void enqueue_manifest(const std::string& migration, const std::string& manifest_text,
                               const std::string& config) {
    const std::string manifest = shared().scratch.file(migration + ".manifest.csv");
    write_text_file(manifest, manifest_text);
    CommandRun run = run_blobferry("enqueue-" + migration,
                                   {"enqueue", "--migration", migration, "--from", "source", "--to", "target",
                                    "--source", "manifest", "--manifest", manifest},
                                   config);
    ASSERT_TRUE(run.exit.success()) << run.exit.describe() << "\n" << run.out << run.err;
  }

  static Json status_of(const std::string& migration, const std::string& config) {
    CommandRun run = run_blobferry("status-" + migration, {"status", "--migration", migration, "--json"}, config);
    EXPECT_TRUE(run.exit.success()) << run.exit.describe() << "\n" << run.err;
    return Json::parse(run.out);
  }

  static RedisQueue queue(const std::string& migration) { return RedisQueue(shared().redis, migration); }

  // Leases of the migration held by the worker process pid (worker ids are host:pid:random).
  static std::size_t leases_held_by(const std::string& migration, pid_t pid) {
    RedisReplyPtr owners = shared().redis->command({"HVALS", queue(migration).key("owners")});
    const std::string marker = ":" + std::to_string(pid) + ":";
    std::size_t held = 0;
    for (std::size_t i = 0; i < owners->elements; ++i) {
      if (reply_string(*owners->element[i]).find(marker) != std::string::npos) ++held;
    }
    return held;
  }

  // Each object of data that is not on the target with the seeded size and MD5,
  // read straight from the target s3rver, with what is wrong with it.
  static std::vector<std::string> not_intact_on_target(const DataSet& data) {
    return not_intact_on(shared().target, data);
  }

  static Shared* shared_;
};

Shared* WorkerDistributedTest::shared_ = nullptr;

// Counted exactly once each: an object copied by a worker that died before
// recording it is found on the target by the next one and counted skipped.
void expect_counted_once(const Json& status, std::size_t objects) {
  EXPECT_EQ(status["copied"].get<std::uint64_t>() + status["skipped"].get<std::uint64_t>(), objects) << status.dump();
  EXPECT_LE(status["copied"].get<std::uint64_t>(), objects) << status.dump();
  EXPECT_EQ(status["failed"], 0) << status.dump();
  EXPECT_EQ(status["queued"], 0) << status.dump();
  EXPECT_EQ(status["scheduled"], 0) << status.dump();
  EXPECT_EQ(status["in_flight"], 0) << status.dump();
}

// 1. Two workers SIGKILLed mid-run: their leases expire and return to the
// queue, later workers finish, every byte arrives and nothing counts twice.
TEST_F(WorkerDistributedTest, SurvivesTwoWorkersKilledMidRun) {
  const std::string migration = "kill";
  const DataSet& data = shared().killed;
  const std::string config = direct_config(migration);
  enqueue_manifest(migration, manifest_csv(data), config);
  const auto started = Clock::now();

  std::vector<ChildProcess> workers;
  workers.push_back(start_worker(migration, config, {}));
  workers.push_back(start_worker(migration, config, {}));

  // Kills the first of `candidates` seen holding leases, so the kill lands
  // mid-copy; returns how many leases died with it.
  auto kill_one_holding_leases = [&](const std::vector<std::size_t>& candidates) -> std::size_t {
    std::optional<std::size_t> victim;
    wait_until([&] {
      for (std::size_t i : candidates) {
        if (leases_held_by(migration, workers[i].pid()) > 0) victim = i;
      }
      return victim.has_value();
    }, 20s);
    if (!victim) {
      ADD_FAILURE() << "no worker held a lease to be killed with";
      return 0;
    }
    workers[*victim].send_signal(SIGKILL);
    const ChildExit exit = workers[*victim].wait();
    EXPECT_FALSE(exit.exited) << exit.describe();
    EXPECT_EQ(exit.term_signal, SIGKILL) << exit.describe();
    // Read after the death: these leases can only end through recovery now.
    return leases_held_by(migration, workers[*victim].pid());
  };

  // Short pauses only: the kills must land while work remains, and the copies
  // get faster as the engine does (fixed long sleeps once let the migration
  // finish before the second kill).
  std::this_thread::sleep_for(500ms);
  const std::size_t lost_first = kill_one_holding_leases({0, 1});
  const Json after_first_kill = status_of(migration, config);
  workers.push_back(start_worker(migration, config, {}));
  std::this_thread::sleep_for(300ms);
  std::vector<std::size_t> alive;
  for (std::size_t i = 0; i < workers.size(); ++i) {
    if (!workers[i].exit()) alive.push_back(i);
  }
  const std::size_t lost_second = kill_one_holding_leases(alive);
  const Json after_second_kill = status_of(migration, config);
  EXPECT_GT(lost_first, 0u);
  EXPECT_GT(lost_second, 0u);

  WorkerFlags finishing;
  finishing.exit_when_empty = true;
  std::vector<ChildProcess> finishers;
  finishers.push_back(start_worker(migration, config, finishing));
  finishers.push_back(start_worker(migration, config, finishing));
  for (ChildProcess& worker : finishers) {
    const ChildExit exit = finish_worker(worker, 150s);
    EXPECT_TRUE(exit.success()) << exit.describe() << "\n" << last_lines(worker.stderr_text(), 20);
  }
  // The survivors run until told: SIGTERM on an idle worker is a clean exit.
  for (ChildProcess& worker : workers) {
    if (worker.exit()) continue;
    worker.send_signal(SIGTERM);
    auto exit = worker.wait_for(20s);
    ASSERT_TRUE(exit.has_value()) << "a survivor ignored SIGTERM";
    EXPECT_TRUE(exit->success()) << exit->describe() << "\n" << last_lines(worker.stderr_text(), 20);
  }
  const double elapsed = seconds_since(started);

  const Json status = status_of(migration, config);
  expect_counted_once(status, data.size());
  EXPECT_EQ(status["dead"], 0) << status.dump();
  const Counts counts = queue(migration).counts();
  EXPECT_GE(counts.recovered, lost_first + lost_second) << "every lease of a killed worker returns through recovery";
  EXPECT_LT(after_first_kill["copied"].get<std::uint64_t>() + after_first_kill["skipped"].get<std::uint64_t>(),
            data.size())
      << "the first kill came after the migration was over";
  EXPECT_LT(after_second_kill["copied"].get<std::uint64_t>() + after_second_kill["skipped"].get<std::uint64_t>(),
            data.size())
      << "the second kill came after the migration was over";

  const auto problems = not_intact_on_target(data);
  EXPECT_TRUE(problems.empty()) << problems.size() << " objects not intact, first: " << problems.front();

  std::printf("[ figures  ] kill: %zu objects in %.1f s; copied at the first kill %s, at the second %s; "
              "leases lost %zu + %zu, recovered %llu; copied %s, skipped %s\n",
              data.size(), elapsed, after_first_kill["copied"].dump().c_str(),
              after_second_kill["copied"].dump().c_str(), lost_first, lost_second,
              static_cast<unsigned long long>(counts.recovered), status["copied"].dump().c_str(),
              status["skipped"].dump().c_str());
}

// 1b. A worker leases jobs in batches: SIGKILLed holding a full batch (its
// concurrency on job threads, or its transfers on the event loop) mid-copy,
// every job of that batch returns through recovery and is copied exactly
// once by the worker that finishes: counters exact, nothing failed, nothing
// skipped (no copy of the dead worker reached the target), and it never held
// more leases than it had room for.
void WorkerDistributedTest::kill_holding_a_full_batch(const std::string& migration, const DataSet& data,
                                                      const std::string& prefix, const WorkerFlags& flags,
                                                      std::size_t batch) {
  // The target behind a proxy that holds each object request while `holding`
  // (bucket checks pass): the victim's copies all stall mid-way. Once it is
  // dead a held request is answered with a reset, never forwarded, so none of
  // its copies lands and the finisher must copy every job itself.
  std::atomic<bool> holding{true};
  std::atomic<int> held{0};
  FaultProxyOptions hold;
  hold.upstream = stack().env("S3_TARGET_ENDPOINT");
  hold.inject = [&](const InjectionRequest& request) -> std::optional<InjectedAnswer> {
    if (!holding.load() || request.target.find("/" + prefix) == std::string::npos) return std::nullopt;
    ++held;
    while (holding.load()) std::this_thread::sleep_for(10ms);
    InjectedAnswer reset;
    reset.reset = true;
    return reset;
  };
  FaultProxy proxy(hold);
  enqueue_manifest(migration, manifest_csv(data), direct_config(migration));
  const std::string proxied = shared().scratch.file(migration + "-proxied.storage.yml");
  write_text_file(proxied, s3_service_yaml("source", "source", stack().env("S3_SOURCE_ENDPOINT")) +
                               s3_service_yaml("target", "target", proxy.endpoint()));

  ChildProcess victim = start_worker(migration, proxied, flags);
  const bool full = wait_until([&] { return held.load() >= static_cast<int>(batch); }, 30s);
  ASSERT_TRUE(full) << "only " << held.load() << " copies reached the target\n" << last_lines(victim.stderr_text(), 20);
  // Every copy is stuck: what it holds now is all it fetched.
  std::this_thread::sleep_for(300ms);
  const std::size_t leases = leases_held_by(migration, victim.pid());
  const Counts before_kill = queue(migration).counts();
  victim.send_signal(SIGKILL);
  const ChildExit exit = victim.wait();
  EXPECT_EQ(exit.term_signal, SIGKILL) << exit.describe();
  EXPECT_EQ(leases, batch) << "a worker leases no more jobs than it has room for";
  EXPECT_EQ(held.load(), static_cast<int>(batch));
  EXPECT_EQ(before_kill.in_flight, batch);
  EXPECT_EQ(before_kill.queued, data.size() - batch);
  EXPECT_EQ(before_kill.copied + before_kill.skipped, 0u);
  holding = false;

  WorkerFlags finishing = flags;
  finishing.exit_when_empty = true;
  ChildProcess finisher = start_worker(migration, proxied, finishing);
  const ChildExit finished = finish_worker(finisher, 120s);
  EXPECT_TRUE(finished.success()) << finished.describe() << "\n" << last_lines(finisher.stderr_text(), 20);

  const Json status = status_of(migration, direct_config(migration));
  EXPECT_EQ(status["copied"], data.size()) << "each job copied exactly once: " << status.dump();
  EXPECT_EQ(status["skipped"], 0) << status.dump();
  expect_counted_once(status, data.size());
  EXPECT_EQ(status["dead"], 0) << status.dump();
  const Counts counts = queue(migration).counts();
  EXPECT_EQ(counts.recovered, batch) << "the killed worker's batch, and only it, came back through recovery";
  const auto problems = not_intact_on_target(data);
  EXPECT_TRUE(problems.empty()) << problems.size() << " objects not intact, first: " << problems.front();
}

TEST_F(WorkerDistributedTest, AWorkerKilledHoldingAFullBatchOfLeasesLosesNoJobAndCountsNoneTwice) {
  WorkerFlags threads_only;
  threads_only.concurrency = 8;
  threads_only.transfers = 0;
  kill_holding_a_full_batch("batch-kill", shared().batch, "batch/", threads_only, 8);
}

// The same with the copies on the event loop: 8 transfers on 2 job threads.
TEST_F(WorkerDistributedTest, AWorkerKilledHoldingAFullEventLoopLosesNoJobAndCountsNoneTwice) {
  WorkerFlags on_the_loop;
  on_the_loop.concurrency = 2;
  on_the_loop.transfers = 8;
  kill_holding_a_full_batch("loop-batch-kill", shared().loop_batch, "loop-batch/", on_the_loop, 8);
}

FaultProxyOptions fault_options(const std::string& upstream, std::uint64_t seed) {
  FaultProxyOptions options;
  options.upstream = upstream;
  options.seed = seed;
  options.stall_duration = 3s;  // longer than the services' 2 s read timeout
  return options;
}

std::string describe(const FaultProxyStats& s) {
  return "requests " + std::to_string(s.requests) + ", 500 " + std::to_string(s.server_errors) + ", 503 " +
         std::to_string(s.slow_downs) + ", resets " + std::to_string(s.resets) + ", truncations " +
         std::to_string(s.truncations) + ", flipped response bytes " + std::to_string(s.flipped_response_bytes) +
         ", flipped request bytes " + std::to_string(s.flipped_request_bytes) + ", stalls " +
         std::to_string(s.stalls) + ", bad digests " + std::to_string(s.bad_digests);
}

// 2. About 15% of requests to either side fail in one of S3's ways; the
// workers retry through all of it and only intact bytes are counted.
TEST_F(WorkerDistributedTest, CopiesIntactThroughInjectedFaults) {
  const std::string migration = "faults";
  const DataSet& data = shared().faults;

  // The source is only read (HEAD, GET): its faults are in the answers.
  FaultProxyOptions source_faults = fault_options(stack().env("S3_SOURCE_ENDPOINT"), 11);
  source_faults.server_error = {0.02, {}};
  source_faults.slow_down = {0.02, {}};
  source_faults.reset = {0.02, {}};
  source_faults.truncate = {0.04, {"GET"}};
  source_faults.flip_response_byte = {0.04, {"GET"}};
  source_faults.stall = {0.01, {}};
  // The target is written (HEAD, PUT, multipart POSTs): its faults are in the
  // requests. No flipped answers there: TLS guards those in real life, and a
  // flipped upload id is not a failure S3 has.
  FaultProxyOptions target_faults = fault_options(stack().env("S3_TARGET_ENDPOINT"), 12);
  target_faults.server_error = {0.03, {}};
  target_faults.slow_down = {0.02, {}};
  target_faults.reset = {0.03, {}};
  target_faults.flip_request_byte = {0.06, {"PUT"}};
  target_faults.stall = {0.01, {}};
  FaultProxy source_proxy(source_faults);
  FaultProxy target_proxy(target_faults);

  // Jobs name services; the workers' storage.yml sends the same names through the proxies.
  enqueue_manifest(migration, manifest_csv(data), direct_config(migration));
  const std::string proxied = shared().scratch.file("faults-proxied.storage.yml");
  write_text_file(proxied, s3_service_yaml("source", "source", source_proxy.endpoint(), 2) +
                          s3_service_yaml("target", "target", target_proxy.endpoint(), 2));

  WorkerFlags flags;
  flags.exit_when_empty = true;
  flags.lease_seconds = 10;
  flags.log_level = "debug";  // in-place retries are logged at debug
  const auto started = Clock::now();
  std::vector<ChildProcess> workers;
  workers.push_back(start_worker(migration, proxied, flags));
  workers.push_back(start_worker(migration, proxied, flags));
  std::size_t in_place_retries = 0;
  std::vector<std::string> rescheduled;
  for (ChildProcess& worker : workers) {
    const ChildExit exit = finish_worker(worker, 150s);
    EXPECT_TRUE(exit.success()) << exit.describe() << "\n" << last_lines(worker.stderr_text(), 20);
    const std::string log = worker.stderr_text();
    in_place_retries += lines_containing(log, "), retry ").size();
    for (std::string& line : lines_containing(log, "will retry later")) rescheduled.push_back(std::move(line));
  }
  const double elapsed = seconds_since(started);
  const FaultProxyStats source_stats = source_proxy.stats();
  const FaultProxyStats target_stats = target_proxy.stats();

  const Json status = status_of(migration, direct_config(migration));
  expect_counted_once(status, data.size());
  const auto problems = not_intact_on_target(data);
  EXPECT_TRUE(problems.empty()) << problems.size() << " objects not intact, first: " << problems.front();

  EXPECT_GT(source_stats.server_errors + target_stats.server_errors, 0u);
  EXPECT_GT(source_stats.slow_downs + target_stats.slow_downs, 0u);
  EXPECT_GT(source_stats.resets + target_stats.resets, 0u);
  EXPECT_GT(source_stats.truncations, 0u);
  EXPECT_GT(source_stats.flipped_response_bytes, 0u);
  EXPECT_GT(target_stats.flipped_request_bytes, 0u);
  EXPECT_GT(source_stats.stalls + target_stats.stalls, 0u);
  // Every upload carried Content-MD5, so every flipped body was refused.
  EXPECT_EQ(target_stats.bad_digests, target_stats.flipped_request_bytes);
  EXPECT_GT(in_place_retries + rescheduled.size(), 0u) << "faults were injected, so something must have been retried";

  std::printf("[ figures  ] faults: %zu objects in %.1f s; source proxy: %s; target proxy: %s; "
              "in-place retries %zu, rescheduled %zu; copied %s, skipped %s\n",
              data.size(), elapsed, describe(source_stats).c_str(), describe(target_stats).c_str(),
              in_place_retries, rescheduled.size(), status["copied"].dump().c_str(), status["skipped"].dump().c_str());
  // A rescheduled job waits 24 to 30 s before its next run: say why it came to that.
  for (const std::string& line : rescheduled) std::printf("[ figures  ]   %s\n", line.c_str());
}

Job copy_job(const std::string& migration, const SeedObject& object) {
  Job job;
  job.migration = migration;
  job.source = "source";
  job.target = "target";
  JobObject entry;
  entry.key = object.key;
  entry.size = object.size;
  entry.checksum = object.md5;
  job.objects.push_back(entry);
  return job;
}

// 3. Payloads that are not jobs, between good jobs, are moved aside with
// their error; the good jobs are copied and the worker exits cleanly.
TEST_F(WorkerDistributedTest, MovesMalformedJobsAsideAndCopiesTheRest) {
  const std::string migration = "malformed";
  const DataSet& data = shared().malformed;
  const std::string config = direct_config(migration);
  RedisQueue q = queue(migration);
  const std::vector<std::string> bad_payloads{
      "{this is not json",
      std::string("\x00\xff\xfe binary", 10),
      R"({"i":"0123456789abcdef","m":"malformed","s":"source","t":"target","o":[{"k":""}]})",  // empty key
  };

  const std::size_t half = data.size() / 2;
  std::vector<Job> first, second;
  for (std::size_t i = 0; i < data.size(); ++i) (i < half ? first : second).push_back(copy_job(migration, data[i]));
  q.push(first);
  for (const std::string& payload : bad_payloads) shared().redis->command({"RPUSH", q.key("queue"), payload});
  q.push(second);

  WorkerFlags flags;
  flags.exit_when_empty = true;
  flags.concurrency = 4;
  ChildProcess worker = start_worker(migration, config, flags);
  const ChildExit exit = finish_worker(worker, 60s);
  EXPECT_TRUE(exit.success()) << exit.describe() << "\n" << last_lines(worker.stderr_text(), 20);

  std::vector<DeadEntry> dead;
  q.for_each_dead([&](const DeadEntry& entry) { dead.push_back(entry); });
  ASSERT_EQ(dead.size(), bad_payloads.size());
  std::set<std::string> buried;
  for (const DeadEntry& entry : dead) {
    EXPECT_EQ(entry.reason, "malformed");
    EXPECT_NE(entry.error.find("malformed job"), std::string::npos) << entry.error;
    EXPECT_FALSE(entry.time.empty());
    buried.insert(entry.payload);
  }
  EXPECT_EQ(buried, std::set<std::string>(bad_payloads.begin(), bad_payloads.end()));

  const Json status = status_of(migration, config);
  expect_counted_once(status, data.size());
  EXPECT_EQ(status["dead"], bad_payloads.size());
  const auto problems = not_intact_on_target(data);
  EXPECT_TRUE(problems.empty()) << problems.size() << " objects not intact, first: " << problems.front();
  std::printf("[ figures  ] malformed: %zu good jobs, %zu buried\n", data.size(), dead.size());
}

// 4. A key missing on the source is a permanent failure: recorded once with
// its key and reason, not retried for minutes, the rest copied.
TEST_F(WorkerDistributedTest, RecordsAMissingSourceKeyAsFailedByKey) {
  const std::string migration = "missing";
  const DataSet& data = shared().missing;
  const std::string config = direct_config(migration);
  // One with a size and checksum (no HEAD of the source), one with its key only.
  const std::string sized_key = "missing/never-uploaded-sized.bin";
  const std::string bare_key = "missing/never uploaded bare.bin";
  enqueue_manifest(migration,
                   manifest_csv(data) + sized_key + ",1234,1B2M2Y8AsgTpgAmY7PhCfg==\n" + bare_key + ",,\n",
                   config);

  WorkerFlags flags;
  flags.exit_when_empty = true;
  flags.concurrency = 4;
  const auto started = Clock::now();
  ChildProcess worker = start_worker(migration, config, flags);
  const ChildExit exit = finish_worker(worker, 60s);
  const double elapsed = seconds_since(started);
  EXPECT_TRUE(exit.exited) << exit.describe();
  EXPECT_TRUE(exit.exit_code == 0 || exit.exit_code == 1) << exit.describe();
  // A reschedule would wait at least 24 s (30 s less 20% jitter).
  EXPECT_LT(elapsed, 20.0) << "the missing key was retried";

  CommandRun report = run_blobferry(
      "report-missing", {"report", "--migration", migration, "--format", "jsonl", "--failed"}, config);
  ASSERT_TRUE(report.exit.success()) << report.exit.describe() << "\n" << report.err;
  std::map<std::string, Json> failed;
  std::istringstream lines(report.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    Json row = Json::parse(line);
    failed[row["key"].is_string() ? row["key"].get<std::string>() : "<null>"] = row;
  }
  EXPECT_EQ(failed.size(), 2u) << report.out;
  for (const std::string& key : {sized_key, bare_key}) {
    ASSERT_TRUE(failed.count(key)) << key << " not in the report:\n" << report.out;
    const Json& row = failed[key];
    EXPECT_EQ(row["status"], "failed") << row.dump();
    EXPECT_EQ(row["reason"], "not_found") << row.dump();
    ASSERT_TRUE(row["attempts"].is_number_integer()) << row.dump();
    EXPECT_GE(row["attempts"].get<int>(), 1) << row.dump();
  }

  const Json status = status_of(migration, config);
  EXPECT_EQ(status["copied"].get<std::uint64_t>() + status["skipped"].get<std::uint64_t>(), data.size());
  EXPECT_EQ(status["failed"], 2) << status.dump();
  EXPECT_EQ(status["failed_by_reason"]["not_found"], 2) << status.dump();
  EXPECT_EQ(status["in_flight"], 0) << status.dump();
  EXPECT_EQ(status["scheduled"], 0) << status.dump();
  const auto problems = not_intact_on_target(data);
  EXPECT_TRUE(problems.empty()) << problems.size() << " objects not intact, first: " << problems.front();
  std::printf("[ figures  ] missing: %zu good + 2 missing keys, worker done in %.1f s (%s)\n", data.size(), elapsed,
              exit.describe().c_str());
}

// 5. SIGTERM: copies in flight finish within the drain, nothing is left
// leased, and a later worker completes what was still queued.
TEST_F(WorkerDistributedTest, DrainsOnSigtermAndLosesNothing) {
  const std::string migration = "drain";
  const DataSet& data = shared().drain;
  const std::string config = direct_config(migration);
  enqueue_manifest(migration, manifest_csv(data), config);

  WorkerFlags flags;
  flags.concurrency = 4;
  flags.drain_seconds = 20;
  flags.lease_seconds = 30;  // a lease left behind would block the rest of the test: it must not happen
  ChildProcess worker = start_worker(migration, config, flags);
  ASSERT_TRUE(wait_until([&] { return leases_held_by(migration, worker.pid()) > 0; }, 20s))
      << "the worker never took a job";
  const std::size_t in_flight_at_term = leases_held_by(migration, worker.pid());
  const auto term_sent = Clock::now();
  worker.send_signal(SIGTERM);
  auto exit = worker.wait_for(std::chrono::seconds(flags.drain_seconds + 10));
  const double drain_time = seconds_since(term_sent);
  ASSERT_TRUE(exit.has_value()) << "still running " << flags.drain_seconds + 10 << " s after SIGTERM";
  EXPECT_TRUE(exit->success()) << exit->describe() << "\n" << last_lines(worker.stderr_text(), 20);
  EXPECT_NE(worker.stderr_text().find("signal 15"), std::string::npos);

  // Every job is either recorded or back in the queue: none stays leased.
  const Json stopped = status_of(migration, config);
  EXPECT_EQ(stopped["in_flight"], 0) << stopped.dump();
  const std::uint64_t done_at_stop = stopped["copied"].get<std::uint64_t>() + stopped["skipped"].get<std::uint64_t>();
  EXPECT_EQ(done_at_stop + stopped["queued"].get<std::uint64_t>() + stopped["scheduled"].get<std::uint64_t>(),
            data.size())
      << stopped.dump();
  EXPECT_LT(done_at_stop, data.size()) << "the stop came after the migration was over";

  WorkerFlags finishing;
  finishing.exit_when_empty = true;
  finishing.concurrency = 4;
  ChildProcess finisher = start_worker(migration, config, finishing);
  const ChildExit finished = finish_worker(finisher, 90s);
  EXPECT_TRUE(finished.success()) << finished.describe() << "\n" << last_lines(finisher.stderr_text(), 20);

  const Json status = status_of(migration, config);
  expect_counted_once(status, data.size());
  const auto problems = not_intact_on_target(data);
  EXPECT_TRUE(problems.empty()) << problems.size() << " objects not intact, first: " << problems.front();
  std::printf("[ figures  ] drain: %zu objects, %zu in flight at SIGTERM, exit %.1f s after it, "
              "%llu done at the stop, the rest by the next worker\n",
              data.size(), in_flight_at_term, drain_time, static_cast<unsigned long long>(done_at_stop));
}

// 6. A worker started without --migration serves every migration with work,
// taking turns between them, and picks up one created after it started;
// status still counts each migration on its own.
TEST_F(WorkerDistributedTest, OneWorkerServesEveryMigrationRoundRobinAndNewOnes) {
  const std::string config = direct_config("every");
  enqueue_manifest("every-a", manifest_csv(shared().every_a), config);
  enqueue_manifest("every-b", manifest_csv(shared().every_b), config);
  auto handled = [](const std::string& migration) {
    const Counts c = queue(migration).counts();
    return c.copied + c.skipped + c.failed;
  };

  ChildProcess worker(blobferry({"worker", "--concurrency", "2", "--lease-seconds", "5", "--drain-seconds", "10",
                                 "--log-level", "info"},
                                config),
                      child_options("worker-every"));
  // Fair: when the smaller migration is done the larger one has had about as
  // many turns (a worker draining one queue first would have done none of it).
  std::uint64_t a_when_b_done = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        if (!queue("every-b").idle()) return false;
        a_when_b_done = handled("every-a");
        return true;
      },
      90s))
      << last_lines(worker.stderr_text(), 20);
  EXPECT_GE(a_when_b_done, shared().every_b.size() / 2) << "every-b was served before every-a had its turns";
  ASSERT_TRUE(wait_until([&] { return queue("every-a").idle(); }, 90s)) << last_lines(worker.stderr_text(), 20);

  // A migration created while the worker runs is found at its next rescan.
  const auto enqueued = Clock::now();
  enqueue_manifest("every-c", manifest_csv(shared().every_c), config);
  ASSERT_TRUE(wait_until([&] { return handled("every-c") == shared().every_c.size(); }, 60s))
      << "every-c was not picked up\n" << last_lines(worker.stderr_text(), 20);
  const double pick_up = seconds_since(enqueued);

  worker.send_signal(SIGTERM);
  const ChildExit exit = finish_worker(worker, 30s);
  EXPECT_TRUE(exit.success()) << exit.describe() << "\n" << last_lines(worker.stderr_text(), 20);

  for (const auto& [migration, data] : {std::pair<std::string, const DataSet*>{"every-a", &shared().every_a},
                                        {"every-b", &shared().every_b},
                                        {"every-c", &shared().every_c}}) {
    const Json status = status_of(migration, config);
    EXPECT_EQ(status["copied"], data->size()) << migration << ": " << status.dump();
    expect_counted_once(status, data->size());
    const auto problems = not_intact_on_target(*data);
    EXPECT_TRUE(problems.empty()) << migration << ": " << problems.size() << " objects not intact";
  }

  // --exit-when-empty without --migration: every migration is idle, so it exits at once.
  ChildProcess idle_worker(blobferry({"worker", "--exit-when-empty", "--concurrency", "2"}, config),
                           child_options("worker-every-idle"));
  const ChildExit idle_exit = finish_worker(idle_worker, 30s);
  EXPECT_TRUE(idle_exit.success()) << idle_exit.describe() << "\n" << last_lines(idle_worker.stderr_text(), 20);
  std::printf("[ figures  ] every migration: %zu + %zu + %zu objects by one worker; every-a had %llu done when "
              "every-b finished; every-c picked up and done %.1f s after its enqueue\n",
              shared().every_a.size(), shared().every_b.size(), shared().every_c.size(),
              static_cast<unsigned long long>(a_when_b_done), pick_up);
}

// s3rver writes `<key>._S3rver_object.md5` when it serves an object whose MD5
// it has not cached (FilesystemStore.getMetadata): a file derived from the
// object's bytes, not object data. Seeding through PUT writes it already, so
// none should appear; one that does is allowed only if its content is the hex
// MD5 of the object file beside it.
bool is_md5_cache_of_sibling(const std::string& root, const std::string& relative) {
  static const std::string kSuffix = "._S3rver_object.md5";
  if (relative.size() <= kSuffix.size() || relative.compare(relative.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return false;
  }
  const std::string object = root + "/" + relative.substr(0, relative.size() - 4);  // drop ".md5"
  if (!std::filesystem::is_regular_file(object)) return false;
  return read_file(root + "/" + relative) == hex_encode(md5_of(read_file(object)));
}

// 7. After everything above, the source's files are byte for byte what they
// were before the first worker started. Defined last so it runs last.
TEST_F(WorkerDistributedTest, LeavesTheSourceUntouched) {
  const std::string root = stack().env("S3_SOURCE_DIR");
  const auto before = shared().source_digest;
  const auto after = hash_tree(root);
  std::vector<std::string> changed;
  for (const auto& [path, hash] : before) {
    auto found = after.find(path);
    if (found == after.end()) changed.push_back("removed: " + path);
    else if (found->second != hash) changed.push_back("changed: " + path);
  }
  std::size_t md5_caches = 0;
  for (const auto& [path, hash] : after) {
    if (before.count(path)) continue;
    if (is_md5_cache_of_sibling(root, path)) {
      ++md5_caches;
    } else {
      changed.push_back("added: " + path);
    }
  }
  EXPECT_TRUE(changed.empty()) << changed.size() << " differences, first: " << changed.front();
  EXPECT_GT(before.size(), 600u) << "the digest must cover the seeded objects";
  std::printf("[ figures  ] source: %zu files and folders hashed before and after, %zu MD5 caches added\n",
              before.size(), md5_caches);
}

}  // namespace
}  // namespace blobferry
