// What only the Redis queue has, against a real Redis: pipelined pushes, a
// SIGKILLed worker process, payloads pushed raw, key isolation of purge,
// separate connections, reconnection after a restart. The JobQueue contract
// both queues share is tests/support/job_queue_conformance.cpp.
#include "common/queue/redis_queue.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
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
#include "tests/support/queue_jobs.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_stack.h"

namespace blobferry {
namespace {

using namespace std::chrono_literals;
using testing::copy_job;
using testing::expect_each_job_copied_once;
using testing::must_fetch;
using testing::TestStack;

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
  for (int i = 0; i < 10'000; ++i) jobs.push_back(copy_job("key/" + std::to_string(i)));
  auto started = std::chrono::steady_clock::now();
  q->push(jobs);
  auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_LT(elapsed, 5s) << "10,000 jobs should take a handful of round trips";
  EXPECT_EQ(q->queue_length(), 10'000u);
  EXPECT_EQ(q->counts().queued_total, 10'000u);
  Job first = decode_job(must_fetch(*q).payload);
  EXPECT_EQ(first.objects.at(0).key, "key/0");
  Job second = decode_job(must_fetch(*q).payload);
  EXPECT_EQ(second.objects.at(0).key, "key/1");
  auto migrations = RedisQueue::migrations(*client_);
  EXPECT_NE(std::find(migrations.begin(), migrations.end(), q->migration()), migrations.end());
}

TEST_F(RedisQueueTest, SigkilledWorkerLosesNoJob) {
  auto q = queue("", short_leases(500ms));
  q->push({copy_job("victim")});
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

TEST_F(RedisQueueTest, MalformedPayloadIsBuriedAndTheWorkerGoesOn) {
  auto q = queue("");
  const std::string garbage = "{\"i\":\"1\",\"this is\": not json";
  client_->command({"RPUSH", q->key("queue"), garbage});
  q->push({copy_job("good")});
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

// Fills every structure of a migration.
void populate(RedisQueue& q) {
  q.push({copy_job("f"), copy_job("r"), copy_job("i"), copy_job("d"), copy_job("q")});
  ASSERT_TRUE(q.complete(must_fetch(q), Outcome::failed("f", "network", "x", 1)));
  Lease retry = must_fetch(q);
  ASSERT_TRUE(q.retry_later(retry, decode_job(retry.payload), 60s));
  must_fetch(q);  // stays in flight
  ASSERT_TRUE(q.bury(must_fetch(q), "buried"));
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
  populate(doomed);
  populate(neighbour);
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
  RedisQueue odd(client_, "a*b{c}");
  RedisQueue lookalike(client_, "axb{c}");
  RedisQueue prefix(client_, "a*b{c}}:x");
  populate(odd);
  populate(lookalike);
  populate(prefix);
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

// Producers and consumers on connections of their own and on one shared client.
TEST_F(RedisQueueTest, ConcurrentProducersAndConsumersOnSeparateConnectionsLoseNothing) {
  auto q = queue("");
  const std::string migration = q->migration();
  constexpr int kProducers = 3, kJobsEach = 400, kConsumers = 4;
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      RedisQueue producer(new_client(), migration);
      std::vector<Job> jobs;
      for (int i = 0; i < kJobsEach; ++i) jobs.push_back(copy_job(std::to_string(p) + "/" + std::to_string(i)));
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
  expect_each_job_copied_once(seen, q->counts(), kProducers * kJobsEach);
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
  q.push({copy_job("before")});
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
  q.push({copy_job("after")});
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
