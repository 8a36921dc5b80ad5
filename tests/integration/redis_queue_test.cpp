// The Redis queue against a real Redis: leases, recovery, poison, retries,
// failure records, purge isolation and reconnection after a restart.
#include "common/queue/redis_queue.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/base/error.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_stack.h"

namespace blobferry {
namespace {

using namespace std::chrono_literals;
using testing::TestStack;

Job copy_job(const std::string& migration, const std::string& key, std::int64_t blob_id = 0) {
  Job job;
  job.migration = migration;
  job.source = "source";
  job.target = "target";
  JobObject object;
  object.key = key;
  object.size = 1000;
  if (blob_id) object.blob_id = blob_id;
  job.objects.push_back(object);
  return job;
}

Job batch_job(const std::string& migration, const std::vector<std::string>& keys) {
  Job job = copy_job(migration, keys.at(0), 1);
  for (std::size_t i = 1; i < keys.size(); ++i) {
    JobObject object;
    object.key = keys[i];
    object.blob_id = static_cast<std::int64_t>(i + 1);
    job.objects.push_back(object);
  }
  return job;
}

class RedisQueueTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { stack_ = new TestStack({.redis = true}); }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }

  std::shared_ptr<RedisClient> new_client() {
    return std::make_shared<RedisClient>(RedisUrl::parse(stack_->redis_url()));
  }

  // Each test gets its own migration, so tests never see each other's keys.
  std::unique_ptr<RedisQueue> queue(const std::string& suffix, RedisQueueOptions options = {}) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    return std::make_unique<RedisQueue>(client_, std::string(info->name()) + suffix, options);
  }

  Lease must_fetch(JobQueue& q, const std::string& worker = "w1") {
    auto lease = q.fetch(worker, 2s);
    if (!lease) throw std::runtime_error("no job fetched within 2 s");
    return *lease;
  }

  static TestStack* stack_;
  std::shared_ptr<RedisClient> client_ = new_client();
};

TestStack* RedisQueueTest::stack_ = nullptr;

RedisQueueOptions short_leases(std::chrono::milliseconds lease) {
  RedisQueueOptions options;
  options.lease_duration = lease;
  options.recover_every = 1h;  // tests call recover_expired() themselves
  return options;
}

TEST_F(RedisQueueTest, PipelinedPushOfTenThousandJobsKeepsOrder) {
  auto q = queue("");
  std::vector<Job> jobs;
  for (int i = 0; i < 10'000; ++i) jobs.push_back(copy_job(q->migration(), "key/" + std::to_string(i)));
  auto started = std::chrono::steady_clock::now();
  q->push(jobs);
  auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_LT(elapsed, 5s) << "10,000 jobs should take a handful of round trips";
  EXPECT_EQ(q->queue_length(), 10'000u);
  EXPECT_EQ(q->counts().queued_total, 10'000u);
  Job first = decode_job(must_fetch(*q).payload);
  EXPECT_EQ(first.objects.at(0).key, "key/0");
  EXPECT_EQ(first.id.size(), 11u) << "push assigns an id";
  Job second = decode_job(must_fetch(*q).payload);
  EXPECT_EQ(second.objects.at(0).key, "key/1");
  EXPECT_NE(first.id, second.id);
  auto migrations = RedisQueue::migrations(*client_);
  EXPECT_NE(std::find(migrations.begin(), migrations.end(), q->migration()), migrations.end());
}

TEST_F(RedisQueueTest, FetchAndCompleteCountersAreExact) {
  auto q = queue("");
  q->push({copy_job(q->migration(), "a"), copy_job(q->migration(), "b"), copy_job(q->migration(), "c"),
           batch_job(q->migration(), {"d1", "d2", "d3"})});
  Lease a = must_fetch(*q);
  EXPECT_FALSE(a.job_id.empty());
  EXPECT_EQ(a.job_id, decode_job(a.payload).id);
  Counts during = q->counts();
  EXPECT_EQ(during.queued, 3u);
  EXPECT_EQ(during.in_flight, 1u);
  EXPECT_TRUE(q->complete(a, Outcome::copied("a", 1000)));
  EXPECT_TRUE(q->complete(must_fetch(*q), Outcome::skipped("b", 700)));
  EXPECT_TRUE(q->complete(must_fetch(*q), Outcome::failed("c", "not_found", "GET c: 404", 1)));
  Outcome batch;
  batch.objects = {{"d1", OutcomeKind::kCopied, 10, {}, {}, 0},
                   {"d2", OutcomeKind::kCopied, 20, {}, {}, 0},
                   {"d3", OutcomeKind::kSkipped, 30, {}, {}, 0}};
  Lease d = must_fetch(*q);
  EXPECT_TRUE(q->complete(d, batch));
  EXPECT_FALSE(q->complete(d, batch)) << "a second completion of one lease is stale";
  Counts counts = q->counts();
  EXPECT_EQ(counts.copied, 3u);
  EXPECT_EQ(counts.skipped, 2u);
  EXPECT_EQ(counts.failed, 1u);
  EXPECT_EQ(counts.failed_by_reason["not_found"], 1u);
  EXPECT_EQ(counts.bytes_copied, 1030u);
  EXPECT_EQ(counts.bytes_skipped, 730u);
  EXPECT_EQ(counts.queued, 0u);
  EXPECT_EQ(counts.in_flight, 0u);
  EXPECT_EQ(counts.queued_total, 4u);
  EXPECT_TRUE(q->idle());
}

TEST_F(RedisQueueTest, FetchWaitsWithoutBusyLoopingAndTimesOut) {
  auto q = queue("");
  auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(q->fetch("w1", 300ms).has_value());
  auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 1500ms);
  // A job pushed while a fetch waits is picked up before the wait ends.
  std::thread producer([&] {
    std::this_thread::sleep_for(200ms);
    auto other = std::make_unique<RedisQueue>(new_client(), q->migration());
    other->push({copy_job(q->migration(), "late")});
  });
  auto lease = q->fetch("w1", 5s);
  producer.join();
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(decode_job(lease->payload).objects.at(0).key, "late");
}

TEST_F(RedisQueueTest, ExpiredLeaseReturnsToTheQueueWithRecoveryCounted) {
  auto q = queue("", short_leases(1s));
  q->push({copy_job(q->migration(), "slow")});
  Lease lease = must_fetch(*q);
  EXPECT_EQ(q->recover_expired(), 0u) << "a fresh lease is not expired";
  std::this_thread::sleep_for(1200ms);
  EXPECT_EQ(q->counts().in_flight, 1u) << "expired but not yet recovered still counts as in flight";
  EXPECT_FALSE(q->idle());
  EXPECT_EQ(q->recover_expired(), 1u);
  Counts counts = q->counts();
  EXPECT_EQ(counts.in_flight, 0u);
  EXPECT_EQ(counts.queued, 1u);
  EXPECT_EQ(counts.recovered, 1u);
  Job again = decode_job(must_fetch(*q).payload);
  EXPECT_EQ(again.recoveries, 1);
  EXPECT_EQ(again.objects.at(0).key, "slow");
  EXPECT_EQ(again.id, decode_job(lease.payload).id);
}

TEST_F(RedisQueueTest, OneRecoveryCallReturnsMoreThanOneBatchOfDeadLeases) {
  auto q = queue("", short_leases(300ms));
  std::vector<Job> jobs;
  for (int i = 0; i < 250; ++i) jobs.push_back(copy_job(q->migration(), "k" + std::to_string(i)));
  q->push(jobs);
  for (int i = 0; i < 250; ++i) must_fetch(*q, "fleet-" + std::to_string(i % 5));
  EXPECT_EQ(q->counts().in_flight, 250u);
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(q->recover_expired(), 250u);
  Counts counts = q->counts();
  EXPECT_EQ(counts.queued, 250u);
  EXPECT_EQ(counts.in_flight, 0u);
  EXPECT_EQ(counts.recovered, 250u);
}

TEST_F(RedisQueueTest, SigkilledWorkerLosesNoJob) {
  auto q = queue("", short_leases(500ms));
  q->push({copy_job(q->migration(), "victim")});
  std::string url = stack_->redis_url();
  std::string migration = q->migration();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    RedisQueue worker(std::make_shared<RedisClient>(RedisUrl::parse(url)), migration, short_leases(500ms));
    auto lease = worker.fetch("doomed", 2s);
    ::kill(::getpid(), lease ? SIGKILL : SIGTERM);
    _exit(3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_EQ(WTERMSIG(status), SIGKILL) << "the child fetched the job and was killed holding it";
  EXPECT_EQ(q->counts().in_flight, 1u);
  std::this_thread::sleep_for(700ms);
  EXPECT_EQ(q->recover_expired(), 1u);
  Lease lease = must_fetch(*q, "survivor");
  EXPECT_EQ(decode_job(lease.payload).objects.at(0).key, "victim");
  EXPECT_TRUE(q->complete(lease, Outcome::copied("victim", 1000)));
  EXPECT_EQ(q->counts().copied, 1u);
}

TEST_F(RedisQueueTest, RenewedLeaseIsNotReaped) {
  auto q = queue("", short_leases(600ms));
  q->push({copy_job(q->migration(), "big")});
  Lease lease = must_fetch(*q);
  for (int i = 0; i < 6; ++i) {
    std::this_thread::sleep_for(250ms);
    EXPECT_TRUE(q->renew(lease));
    EXPECT_EQ(q->recover_expired(), 0u) << "renewal " << i;
  }
  EXPECT_EQ(q->counts().recovered, 0u);
  EXPECT_TRUE(q->complete(lease, Outcome::copied("big", 5)));
  EXPECT_FALSE(q->renew(lease)) << "a completed lease cannot be renewed";
}

TEST_F(RedisQueueTest, StaleOwnerCannotOverwriteTheNewOwnersResult) {
  auto q = queue("", short_leases(300ms));
  q->push({copy_job(q->migration(), "contested")});
  Lease stale = must_fetch(*q, "slow-worker");
  std::this_thread::sleep_for(450ms);
  ASSERT_EQ(q->recover_expired(), 1u);
  Lease fresh = must_fetch(*q, "fast-worker");
  EXPECT_NE(fresh.token, stale.token);
  EXPECT_FALSE(q->renew(stale));
  EXPECT_FALSE(q->complete(stale, Outcome::failed("contested", "network", "timeout", 3)));
  EXPECT_FALSE(q->retry_later(stale, decode_job(stale.payload), 10ms));
  EXPECT_FALSE(q->release(stale));
  EXPECT_FALSE(q->bury(stale, "nope"));
  Counts before = q->counts();
  EXPECT_EQ(before.failed, 0u) << "the stale failure was ignored";
  EXPECT_EQ(before.in_flight, 1u);
  EXPECT_EQ(before.queued, 0u);
  EXPECT_TRUE(q->complete(fresh, Outcome::copied("contested", 1000)));
  Counts after = q->counts();
  EXPECT_EQ(after.copied, 1u);
  EXPECT_EQ(after.failed, 0u);
  EXPECT_TRUE(after.idle());
}

TEST_F(RedisQueueTest, PoisonJobGoesDeadAfterMaxRecoveries) {
  RedisQueueOptions options = short_leases(200ms);
  options.max_recoveries = 2;
  auto q = queue("", options);
  q->push({batch_job(q->migration(), {"p1", "p2"}), copy_job(q->migration(), "innocent")});
  int runs = 0;
  while (runs < 10) {
    auto lease = q->fetch("w", 100ms);
    if (!lease) break;
    if (decode_job(lease->payload).objects.at(0).key == "innocent") {
      EXPECT_TRUE(q->complete(*lease, Outcome::copied("innocent", 1)));
      continue;
    }
    ++runs;  // the worker "dies": the lease is never completed
    std::this_thread::sleep_for(300ms);
    q->recover_expired();
  }
  EXPECT_EQ(runs, 3) << "ran once, then recovered twice, then went dead";
  Counts counts = q->counts();
  EXPECT_EQ(counts.dead, 1u);
  EXPECT_EQ(counts.failed, 2u) << "one failure record per object of the batch";
  EXPECT_EQ(counts.failed_by_reason["poison"], 2u);
  EXPECT_EQ(counts.copied, 1u);
  EXPECT_EQ(counts.recovered, 2u);
  EXPECT_TRUE(counts.idle());
  std::vector<DeadEntry> dead;
  q->for_each_dead([&](const DeadEntry& entry) { dead.push_back(entry); });
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].reason, "poison");
  EXPECT_NE(dead[0].error.find("3 times"), std::string::npos) << dead[0].error;
  EXPECT_EQ(decode_job(dead[0].payload).recoveries, 2);
  std::set<std::string> keys;
  q->for_each_failure([&](const FailureRecord& record) {
    keys.insert(record.key);
    EXPECT_EQ(record.reason, "poison");
    Job retry = decode_job(record.job_payload);
    ASSERT_EQ(retry.objects.size(), 1u);
    EXPECT_EQ(retry.objects[0].key, record.key);
    EXPECT_EQ(retry.recoveries, 0);
  });
  EXPECT_EQ(keys, (std::set<std::string>{"p1", "p2"}));
}

TEST_F(RedisQueueTest, RetryLaterThenPromoteDue) {
  auto q = queue("", short_leases(30s));
  q->push({copy_job(q->migration(), "flaky")});
  Lease lease = must_fetch(*q);
  Job job = decode_job(lease.payload);
  ++job.attempts;
  EXPECT_TRUE(q->retry_later(lease, job, 400ms));
  Counts counts = q->counts();
  EXPECT_EQ(counts.scheduled, 1u);
  EXPECT_EQ(counts.queued, 0u);
  EXPECT_EQ(counts.in_flight, 0u);
  EXPECT_FALSE(q->idle()) << "a scheduled retry is pending work";
  EXPECT_EQ(q->promote_due(), 0u) << "not due yet";
  EXPECT_EQ(q->queue_length(), 0u);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(q->promote_due(), 1u);
  EXPECT_EQ(q->queue_length(), 1u);
  Lease again = must_fetch(*q);
  EXPECT_EQ(decode_job(again.payload).attempts, 1);
  // fetch promotes due retries by itself.
  Job twice = decode_job(again.payload);
  ++twice.attempts;
  EXPECT_TRUE(q->retry_later(again, twice, 200ms));
  auto third = q->fetch("w1", 3s);
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(decode_job(third->payload).attempts, 2);
}

TEST_F(RedisQueueTest, ReleasePutsTheJobBackAtTheHeadWithoutCounting) {
  auto q = queue("");
  q->push({copy_job(q->migration(), "first"), copy_job(q->migration(), "second")});
  Lease lease = must_fetch(*q);
  EXPECT_TRUE(q->release(lease));
  Job next = decode_job(must_fetch(*q).payload);
  EXPECT_EQ(next.objects.at(0).key, "first");
  EXPECT_EQ(next.attempts, 0);
  Counts counts = q->counts();
  EXPECT_EQ(counts.failed, 0u);
  EXPECT_EQ(counts.copied, 0u);
}

TEST_F(RedisQueueTest, FailuresAreRecordedByKeyAndRemovedOnLaterSuccess) {
  auto q = queue("");
  q->push({batch_job(q->migration(), {"x1", "x2", "x3"})});
  Lease lease = must_fetch(*q);
  Outcome outcome;
  outcome.objects = {{"x1", OutcomeKind::kCopied, 5, {}, {}, 0},
                     {"x2", OutcomeKind::kFailed, 0, "not_found", "GET x2: 404 Not Found", 1},
                     {"x3", OutcomeKind::kFailed, 0, "network", "GET x3: connection reset", 5}};
  ASSERT_TRUE(q->complete(lease, outcome));
  std::vector<FailureRecord> records;
  q->for_each_failure([&](const FailureRecord& record) { records.push_back(record); });
  ASSERT_EQ(records.size(), 2u);
  for (const auto& record : records) {
    Job retry = decode_job(record.job_payload);
    ASSERT_EQ(retry.objects.size(), 1u);
    EXPECT_EQ(retry.objects[0].key, record.key);
    EXPECT_EQ(retry.attempts, 0);
    EXPECT_EQ(record.time.size(), 20u) << record.time;
    if (record.key == "x2") {
      EXPECT_EQ(record.reason, "not_found");
      EXPECT_EQ(record.message, "GET x2: 404 Not Found");
      EXPECT_EQ(record.attempts, 1);
      EXPECT_EQ(record.blob_id, std::optional<std::int64_t>(2));
    } else {
      EXPECT_EQ(record.key, "x3");
      EXPECT_EQ(record.reason, "network");
      EXPECT_EQ(record.attempts, 5);
    }
  }
  // The same key failing again replaces its record rather than counting twice.
  q->push({copy_job(q->migration(), "x3")});
  ASSERT_TRUE(q->complete(must_fetch(*q), Outcome::failed("x3", "throttled", "SlowDown", 6)));
  Counts counts = q->counts();
  EXPECT_EQ(counts.failed, 2u);
  EXPECT_EQ(counts.failed_by_reason.count("network"), 0u);
  EXPECT_EQ(counts.failed_by_reason["throttled"], 1u);
  // A later success of x2 removes its record and its counters.
  q->push({copy_job(q->migration(), "x2")});
  ASSERT_TRUE(q->complete(must_fetch(*q), Outcome::copied("x2", 9)));
  counts = q->counts();
  EXPECT_EQ(counts.failed, 1u);
  EXPECT_EQ(counts.failed_by_reason.count("not_found"), 0u);
  EXPECT_EQ(counts.copied, 2u);
}

TEST_F(RedisQueueTest, RequeueFailedByReason) {
  auto q = queue("");
  q->push({copy_job(q->migration(), "n1"), copy_job(q->migration(), "n2"), copy_job(q->migration(), "t1")});
  ASSERT_TRUE(q->complete(must_fetch(*q), Outcome::failed("n1", "network", "reset", 5)));
  ASSERT_TRUE(q->complete(must_fetch(*q), Outcome::failed("n2", "network", "reset", 5)));
  ASSERT_TRUE(q->complete(must_fetch(*q), Outcome::failed("t1", "access_denied", "403", 1)));
  EXPECT_EQ(q->requeue_failed(std::string("network")), 2u);
  Counts counts = q->counts();
  EXPECT_EQ(counts.queued, 2u);
  EXPECT_EQ(counts.failed, 1u);
  EXPECT_EQ(counts.failed_by_reason.count("network"), 0u);
  EXPECT_EQ(counts.failed_by_reason["access_denied"], 1u);
  std::set<std::string> keys;
  for (int i = 0; i < 2; ++i) {
    Job job = decode_job(must_fetch(*q).payload);
    keys.insert(job.objects.at(0).key);
    EXPECT_EQ(job.attempts, 0);
  }
  EXPECT_EQ(keys, (std::set<std::string>{"n1", "n2"}));
  EXPECT_EQ(q->requeue_failed(std::nullopt), 1u);
  EXPECT_EQ(q->counts().failed, 0u);
  EXPECT_EQ(decode_job(must_fetch(*q).payload).objects.at(0).key, "t1");
}

TEST_F(RedisQueueTest, MalformedPayloadIsBuriedAndTheWorkerGoesOn) {
  auto q = queue("");
  const std::string garbage = "{\"i\":\"1\",\"this is\": not json";
  client_->command({"RPUSH", q->key("queue"), garbage});
  q->push({copy_job(q->migration(), "good")});
  Lease bad = must_fetch(*q);
  EXPECT_EQ(bad.payload, garbage);
  EXPECT_TRUE(bad.job_id.empty());
  std::string error;
  try {
    decode_job(bad.payload);
  } catch (const Error& e) {
    error = e.what();
  }
  ASSERT_FALSE(error.empty());
  EXPECT_TRUE(q->bury(bad, error));
  Lease good = must_fetch(*q);
  EXPECT_TRUE(q->complete(good, Outcome::copied("good", 1)));
  Counts counts = q->counts();
  EXPECT_EQ(counts.dead, 1u);
  EXPECT_TRUE(counts.idle());
  std::vector<DeadEntry> dead;
  q->for_each_dead([&](const DeadEntry& entry) { dead.push_back(entry); });
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].reason, "malformed");
  EXPECT_EQ(dead[0].payload, garbage);
  EXPECT_EQ(dead[0].error, error);
}

TEST_F(RedisQueueTest, ExpiredMalformedPayloadGoesDeadRatherThanLooping) {
  auto q = queue("", short_leases(200ms));
  client_->command({"RPUSH", q->key("queue"), "garbage"});
  must_fetch(*q);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(q->recover_expired(), 1u);
  Counts counts = q->counts();
  EXPECT_EQ(counts.dead, 1u);
  EXPECT_EQ(counts.queued, 0u);
}

TEST_F(RedisQueueTest, IdleMeansNothingQueuedScheduledOrInFlight) {
  auto q = queue("");
  EXPECT_TRUE(q->idle());
  q->push({copy_job(q->migration(), "k")});
  EXPECT_FALSE(q->idle());
  Lease lease = must_fetch(*q);
  EXPECT_FALSE(q->idle()) << "in flight";
  EXPECT_TRUE(q->retry_later(lease, decode_job(lease.payload), 60s));
  EXPECT_FALSE(q->idle()) << "scheduled";
  EXPECT_EQ(q->counts().scheduled, 1u);
  client_->command({"DEL", q->key("retry")});
  EXPECT_TRUE(q->idle());
}

TEST_F(RedisQueueTest, HeartbeatsListLiveWorkers) {
  auto q = queue("");
  q->heartbeat("host-a:101", R"({"concurrency":8})");
  q->heartbeat("host-b:202", R"({"concurrency":4})");
  auto workers = q->live_workers(3s);
  ASSERT_EQ(workers.size(), 2u);
  std::set<std::string> ids;
  for (const auto& worker : workers) {
    ids.insert(worker.worker_id);
    EXPECT_LT(worker.age, 1s);
    if (worker.worker_id == "host-a:101") {
      EXPECT_EQ(worker.info_json, R"({"concurrency":8})");
    }
  }
  EXPECT_EQ(ids, (std::set<std::string>{"host-a:101", "host-b:202"}));
  std::this_thread::sleep_for(300ms);
  q->heartbeat("host-b:202", "{}");
  workers = q->live_workers(200ms);
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].worker_id, "host-b:202");
}

TEST_F(RedisQueueTest, PushWithCursorStoresBothInOneTransaction) {
  auto q = queue("");
  std::vector<Job> jobs;
  for (int i = 0; i < 2500; ++i) jobs.push_back(copy_job(q->migration(), "c" + std::to_string(i)));
  q->push_with_cursor(jobs, "blobs", R"({"after":2500})");
  EXPECT_EQ(q->queue_length(), 2500u);
  EXPECT_EQ(q->counts().queued_total, 2500u);
  EXPECT_EQ(q->get_cursor("blobs"), std::optional<std::string>(R"({"after":2500})"));
  q->push_with_cursor({}, "blobs", "done");
  EXPECT_EQ(q->get_cursor("blobs"), std::optional<std::string>("done"));
  EXPECT_EQ(q->counts().queued_total, 2500u);
}

TEST_F(RedisQueueTest, CursorsStoreSmallValues) {
  auto q = queue("");
  EXPECT_EQ(q->get_cursor("blobs"), std::nullopt);
  q->set_cursor("blobs", "12345");
  q->set_cursor("blobs", "67890");
  EXPECT_EQ(q->get_cursor("blobs"), std::optional<std::string>("67890"));
}

// Fills every structure of a migration.
void populate(RedisQueue& q, std::function<Lease(JobQueue&)> fetch) {
  q.push({copy_job(q.migration(), "f"), copy_job(q.migration(), "r"), copy_job(q.migration(), "i"),
          copy_job(q.migration(), "d"), copy_job(q.migration(), "q")});
  ASSERT_TRUE(q.complete(fetch(q), Outcome::failed("f", "network", "x", 1)));
  Lease retry = fetch(q);
  ASSERT_TRUE(q.retry_later(retry, decode_job(retry.payload), 60s));
  fetch(q);  // stays in flight
  ASSERT_TRUE(q.bury(fetch(q), "buried"));
  q.heartbeat("w", "{}");
  q.set_cursor("c", "1");
}

std::set<std::string> all_keys(RedisClient& client) {
  std::set<std::string> keys;
  std::string cursor = "0";
  do {
    auto page = client.command({"SCAN", cursor, "COUNT", "1000"});
    cursor = reply_string(*page->element[0]);
    for (std::size_t i = 0; i < page->element[1]->elements; ++i) {
      keys.insert(reply_string(*page->element[1]->element[i]));
    }
  } while (cursor != "0");
  return keys;
}

std::size_t keys_with_prefix(const std::set<std::string>& keys, const std::string& prefix) {
  std::size_t n = 0;
  for (const auto& key : keys) n += key.starts_with(prefix) ? 1 : 0;
  return n;
}

TEST_F(RedisQueueTest, PurgeDeletesEveryKeyOfTheMigrationAndNoOther) {
  RedisQueue doomed(client_, "purge-me");
  RedisQueue neighbour(client_, "purge-me-not");
  auto fetch = [this](JobQueue& q) { return must_fetch(q); };
  populate(doomed, fetch);
  populate(neighbour, fetch);
  Counts neighbour_before = neighbour.counts();
  EXPECT_GE(keys_with_prefix(all_keys(*client_), "bf:{purge-me}:"), 10u);
  doomed.purge();
  auto keys = all_keys(*client_);
  EXPECT_EQ(keys_with_prefix(keys, "bf:{purge-me}:"), 0u);
  EXPECT_GE(keys_with_prefix(keys, "bf:{purge-me-not}:"), 10u);
  Counts neighbour_after = neighbour.counts();
  EXPECT_EQ(neighbour_after.queued, neighbour_before.queued);
  EXPECT_EQ(neighbour_after.failed, 1u);
  EXPECT_EQ(neighbour_after.in_flight, 1u);
  EXPECT_EQ(neighbour.get_cursor("c"), std::optional<std::string>("1"));
  auto migrations = RedisQueue::migrations(*client_);
  EXPECT_EQ(std::count(migrations.begin(), migrations.end(), "purge-me"), 0);
  EXPECT_EQ(std::count(migrations.begin(), migrations.end(), "purge-me-not"), 1);
  neighbour.purge();
}

TEST_F(RedisQueueTest, GlobAndHashTagCharactersInNamesStayIsolated) {
  auto fetch = [this](JobQueue& q) { return must_fetch(q); };
  RedisQueue odd(client_, "a*b{c}");
  RedisQueue lookalike(client_, "axb{c}");
  RedisQueue prefix(client_, "a*b{c}}:x");
  populate(odd, fetch);
  populate(lookalike, fetch);
  populate(prefix, fetch);
  EXPECT_EQ(odd.key("queue"), "bf:{a*b{c}}:queue");
  odd.purge();
  auto keys = all_keys(*client_);
  for (const auto& name : {"queue", "processing", "failed", "stats", "dead", "retry", "cursors"}) {
    EXPECT_EQ(keys.count(odd.key(name)), 0u) << name;
    EXPECT_EQ(keys.count(lookalike.key(name)), 1u) << name;
    EXPECT_EQ(keys.count(prefix.key(name)), 1u) << name;
  }
  EXPECT_EQ(lookalike.counts().failed, 1u);
  EXPECT_EQ(prefix.counts().failed, 1u);
  EXPECT_TRUE(odd.idle());
  lookalike.purge();
  prefix.purge();
}

TEST_F(RedisQueueTest, ConcurrentProducersAndConsumersLoseNothing) {
  auto q = queue("");
  const std::string migration = q->migration();
  constexpr int kProducers = 3, kJobsEach = 400, kConsumers = 4;
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      RedisQueue producer(new_client(), migration);
      std::vector<Job> jobs;
      for (int i = 0; i < kJobsEach; ++i) jobs.push_back(copy_job(migration, std::to_string(p) + "/" + std::to_string(i)));
      for (std::size_t start = 0; start < jobs.size(); start += 50) {
        producer.push(std::vector<Job>(jobs.begin() + start, jobs.begin() + std::min(jobs.size(), start + 50)));
      }
    });
  }
  std::mutex mutex;
  std::multiset<std::string> seen;
  std::atomic<int> done{0};
  // Two consumers share one client (it is thread-safe), two have their own.
  auto shared = std::make_shared<RedisQueue>(new_client(), migration);
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      std::shared_ptr<RedisQueue> consumer = c < 2 ? shared : std::make_shared<RedisQueue>(new_client(), migration);
      while (done.load() < kProducers * kJobsEach) {
        auto lease = consumer->fetch("c" + std::to_string(c), 300ms);
        if (!lease) continue;
        std::string key = decode_job(lease->payload).objects.at(0).key;
        if (consumer->complete(*lease, Outcome::copied(key, 1))) {
          std::lock_guard lock(mutex);
          seen.insert(key);
          ++done;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kProducers * kJobsEach));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), seen.size()) << "no job ran twice";
  Counts counts = q->counts();
  EXPECT_EQ(counts.copied, static_cast<std::uint64_t>(kProducers * kJobsEach));
  EXPECT_EQ(counts.queued_total, static_cast<std::uint64_t>(kProducers * kJobsEach));
  EXPECT_TRUE(counts.idle());
}

// A redis-server of this test's own, for what TestStack cannot do: restart
// on the same port, and require a password.
class OwnRedis {
 public:
  OwnRedis() : port_(free_port()) { start(); }
  ~OwnRedis() { stop(); }
  int port() const { return port_; }

  void start() {
    pid_ = fork();
    if (pid_ == 0) {
      execlp("redis-server", "redis-server", "--port", std::to_string(port_).c_str(), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", dir_.path().c_str(), "--requirepass", "s3cretpw",
             "--logfile", dir_.file("redis.log").c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      if (answers()) return;
      std::this_thread::sleep_for(50ms);
    }
    throw std::runtime_error("redis-server on port " + std::to_string(port_) + " did not start");
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  static int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    socklen_t length = sizeof address;
    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    close(fd);
    return ntohs(address.sin_port);
  }

  bool answers() const {
    try {
      RedisClient probe(RedisUrl::parse("redis://:s3cretpw@127.0.0.1:" + std::to_string(port_)));
      return reply_string(*probe.command({"PING"})) == "PONG";
    } catch (const Error&) {
      return false;
    }
  }

  testing::TempDir dir_{"blobferry-own-redis"};
  int port_;
  pid_t pid_ = -1;
};

TEST(RedisQueueReconnect, RestartedRedisFailsOneCallThenReconnects) {
  OwnRedis redis;
  auto client = std::make_shared<RedisClient>(
      RedisUrl::parse("redis://:s3cretpw@127.0.0.1:" + std::to_string(redis.port()) + "/2"));
  RedisQueue q(client, "restart");
  q.push({copy_job("restart", "before")});
  EXPECT_EQ(q.queue_length(), 1u);
  redis.stop();
  redis.start();  // same port, empty (no persistence)
  try {
    q.queue_length();
    ADD_FAILURE() << "a call on the dead connection should throw";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kTransient) << error.what();
    EXPECT_NE(std::string(error.what()).find("127.0.0.1:" + std::to_string(redis.port())), std::string::npos)
        << error.what();
    EXPECT_EQ(std::string(error.what()).find("s3cretpw"), std::string::npos) << error.what();
  }
  EXPECT_EQ(q.queue_length(), 0u) << "reconnected (with AUTH and SELECT) to the fresh server";
  q.push({copy_job("restart", "after")});
  auto lease = q.fetch("w", 1s);  // scripts are reloaded after NOSCRIPT
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(decode_job(lease->payload).objects.at(0).key, "after");
  EXPECT_EQ(reply_integer(*client->command({"EXISTS", q.key("processing")})), 1);
}

TEST(RedisQueueReconnect, DownRedisIsTransientAndWrongPasswordIsConfig) {
  OwnRedis redis;
  auto url = RedisUrl::parse("redis://:wrongpass@127.0.0.1:" + std::to_string(redis.port()));
  RedisClient wrong(url);
  try {
    wrong.command({"PING"});
    ADD_FAILURE() << "AUTH with a wrong password should fail";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kConfig) << error.what();
    EXPECT_EQ(std::string(error.what()).find("wrongpass"), std::string::npos) << error.what();
  }
  redis.stop();
  RedisClient down(RedisUrl::parse("redis://:s3cretpw@127.0.0.1:" + std::to_string(redis.port())));
  try {
    down.command({"PING"});
    ADD_FAILURE() << "nothing listens";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kTransient);
    EXPECT_NE(std::string(error.what()).find("redis connect to 127.0.0.1:"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace blobferry
