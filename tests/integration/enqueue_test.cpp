// `blobferry enqueue` as a user runs it, against real PostgreSQL, Redis and
// s3rver: bounded queue depth, SIGKILL and restart, catch-up passes, filters,
// uuid ids and dry runs, each checked against the exact rows of the table.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/queue/job.h"
#include "common/queue/redis_client.h"
#include "common/queue/redis_queue.h"
#include "common/queue/redis_url.h"
#include "common/cli/human_units.h"
#include "tests/support/blob_fixture.h"
#include "tests/support/blobferry_cli.h"
#include "tests/support/stack_suite.h"

namespace blobferry {
namespace {

using namespace std::chrono_literals;
using testing::BlobferryCli;
using testing::BlobFixture;
using testing::BlobSchema;
using testing::CliResult;
using testing::SeedRow;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kBigTableRows = 100000;
constexpr std::uint64_t kMaxQueued = 5000;
constexpr std::uint64_t kPageSize = 1000;

// A migration's Redis keys as the test reads them, beside the binary that writes them.
class QueueProbe {
 public:
  QueueProbe(const std::string& redis_url, const std::string& migration)
      : client_(std::make_shared<RedisClient>(RedisUrl::parse(redis_url))), queue_(client_, migration) {}

  std::uint64_t length() { return queue_.queue_length(); }
  std::uint64_t queued_total() { return queue_.counts().queued_total; }
  bool exists(const std::string& name) {
    return reply_integer(*client_->command({"EXISTS", queue_.key(name)})) == 1;
  }

  // Pops up to n jobs from the head of the queue, as a consumer would, decoded.
  std::vector<Job> pop(std::size_t n) {
    auto reply = client_->command({"LPOP", queue_.key("queue"), std::to_string(n)});
    std::vector<Job> jobs;
    if (reply_is_nil(*reply)) return jobs;
    for (std::size_t i = 0; i < reply->elements; ++i) jobs.push_back(decode_job(reply_string(*reply->element[i])));
    return jobs;
  }

  // Every job still queued, in order, without removing any.
  std::vector<Job> peek_all() {
    std::vector<Job> jobs;
    for (std::size_t start = 0;; start += 1000) {
      auto reply = client_->command(
          {"LRANGE", queue_.key("queue"), std::to_string(start), std::to_string(start + 999)});
      for (std::size_t i = 0; i < reply->elements; ++i) jobs.push_back(decode_job(reply_string(*reply->element[i])));
      if (reply->elements < 1000) return jobs;
    }
  }

 private:
  std::shared_ptr<RedisClient> client_;
  RedisQueue queue_;
};

std::vector<std::string> blob_ids_of(const std::vector<Job>& jobs) {
  std::vector<std::string> ids;
  for (const Job& job : jobs) {
    for (const JobObject& object : job.objects) {
      ids.push_back(object.blob_id ? std::to_string(*object.blob_id) : "none");
    }
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<std::string> keys_of(const std::vector<Job>& jobs) {
  std::vector<std::string> keys;
  for (const Job& job : jobs) {
    for (const JobObject& object : job.objects) keys.push_back(object.key);
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

template <typename Pick>
std::vector<std::string> sorted_ids(const std::vector<SeedRow>& rows, Pick pick) {
  std::vector<std::string> ids;
  for (const SeedRow& row : rows) {
    if (pick(row)) ids.push_back(row.id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::size_t duplicates_in(const std::vector<std::string>& sorted) {
  std::size_t n = 0;
  for (std::size_t i = 1; i < sorted.size(); ++i) n += sorted[i] == sorted[i - 1];
  return n;
}

std::string utc_ago(std::chrono::seconds ago) { return testing::utc_text(std::chrono::system_clock::now() - ago); }

class EnqueueTest : public testing::StackSuite {
 protected:
  QueueProbe probe(const std::string& migration) const { return QueueProbe(stack_->redis_url(), migration); }
  static std::vector<std::string> enqueue_args(const std::string& migration, const std::string& database_url,
                                               std::vector<std::string> more = {}) {
    std::vector<std::string> args{"enqueue", "--migration", migration, "--from", "source", "--to", "target",
                                  "--database-url", database_url};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
};

// 100,000 rows through a queue capped at 5,000: a slow consumer pops while a
// sampler watches LLEN; the enqueuer is SIGKILLed five times and restarted; every
// id must come out exactly once, then a catch-up pass and a dry run follow.
TEST_F(EnqueueTest, HundredThousandRowsBoundedDepthSurviveKillsAndCatchUp) {
  const std::string url = database("big");
  BlobFixture table(url, BlobSchema::kRails7);
  const auto seed_started = Clock::now();
  std::vector<SeedRow> rows = table.add_rows(kBigTableRows, utc_ago(2h));
  const double seed_seconds = std::chrono::duration<double>(Clock::now() - seed_started).count();
  ASSERT_EQ(table.row_count(), static_cast<long long>(kBigTableRows));

  const std::string migration = "big";
  QueueProbe sampler = probe(migration);
  QueueProbe consumer = probe(migration);
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> max_depth{0}, samples{0}, consumed{0};
  std::thread sampling([&] {
    while (!done.load()) {
      const std::uint64_t depth = sampler.length();
      if (depth > max_depth.load()) max_depth.store(depth);
      ++samples;
      std::this_thread::sleep_for(1ms);
    }
  });
  std::vector<Job> popped;
  std::mutex popped_mutex;
  std::atomic<bool> drain_now{false};
  std::thread consuming([&] {
    // Starts once the queue is full, then pops about 10,000 jobs a second:
    // slower than the enqueuer, so the cap is what holds the queue back.
    for (std::uint64_t depth = 0; !done.load() && depth < kMaxQueued; depth = consumer.length()) {
      if (depth > max_depth.load()) max_depth.store(depth);
      std::this_thread::sleep_for(5ms);
    }
    while (!done.load()) {
      std::vector<Job> batch = consumer.pop(drain_now.load() ? 5000 : 200);
      consumed += batch.size();
      {
        std::lock_guard lock(popped_mutex);
        popped.insert(popped.end(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
      }
      if (batch.empty() || !drain_now.load()) std::this_thread::sleep_for(20ms);
    }
  });

  const BlobferryCli runner = cli();
  const auto args = enqueue_args(migration, url, {"--max-queued", std::to_string(kMaxQueued)});
  const auto started = Clock::now();
  int kills = 0;
  CliResult last;
  QueueProbe watcher = probe(migration);
  for (std::uint64_t kill_after : {15000ULL, 30000ULL, 45000ULL, 60000ULL, 75000ULL, ~0ULL}) {
    testing::ChildProcess enqueuer = runner.start(args);
    while (testing::still_running(enqueuer) && consumed.load() < kill_after) std::this_thread::sleep_for(5ms);
    // Kill it while it pushes (the queue just grew), not while it waits for room.
    for (std::uint64_t before = watcher.length(), now = before; testing::still_running(enqueuer); before = now) {
      now = watcher.length();
      if (now > before) break;
    }
    if (testing::still_running(enqueuer)) {
      enqueuer.send_signal(SIGKILL);
      last = testing::finish(enqueuer);
      ASSERT_EQ(last.signal, SIGKILL) << last.all();
      ++kills;
      continue;
    }
    last = testing::finish(enqueuer);
    break;
  }
  const double enqueue_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  EXPECT_EQ(last.exit_code, 0) << last.all();
  EXPECT_EQ(kills, 5) << "the enqueuer finished before it could be killed five times";
  drain_now.store(true);
  for (auto deadline = Clock::now() + 60s; sampler.length() > 0 && Clock::now() < deadline;) {
    std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(50ms);
  done.store(true);
  consuming.join();
  sampling.join();

  const std::vector<std::string> expected = sorted_ids(rows, [](const SeedRow&) { return true; });
  const std::vector<std::string> got = blob_ids_of(popped);
  std::printf("[ measured ] %zu rows seeded in %.1f s; enqueued through --max-queued %llu in %.1f s with %d kills; "
              "%zu jobs popped, %zu duplicates; max queue depth %llu over %llu samples\n",
              rows.size(), seed_seconds, static_cast<unsigned long long>(kMaxQueued), enqueue_seconds, kills,
              got.size(), duplicates_in(got), static_cast<unsigned long long>(max_depth.load()),
              static_cast<unsigned long long>(samples.load()));
  EXPECT_LE(max_depth.load(), kMaxQueued + kPageSize);
  EXPECT_GE(max_depth.load(), kMaxQueued) << "the consumer never fell behind: backpressure was not exercised";
  EXPECT_EQ(duplicates_in(got), 0u);
  EXPECT_EQ(got.size(), kBigTableRows);
  EXPECT_TRUE(got == expected) << "the popped ids are not the table's ids exactly once";
  EXPECT_EQ(probe(migration).queued_total(), kBigTableRows);

  // Catch-up: rows created since, and a late commit dated inside the margin
  // (an hour before the first pass began), are queued; the original rows,
  // two hours old, are outside the margin and are not queued again.
  std::vector<SeedRow> fresh = table.add_rows(500, utc_ago(0s));
  std::vector<SeedRow> late = table.add_rows(10, utc_ago(30min));
  const CliResult catch_up = runner.run(args);
  EXPECT_EQ(catch_up.exit_code, 0) << catch_up.all();
  EXPECT_NE(catch_up.out.find("queued 510 copy jobs"), std::string::npos) << catch_up.out;
  EXPECT_NE(catch_up.out.find("catch-up pass"), std::string::npos) << catch_up.out;
  std::vector<SeedRow> added = fresh;
  added.insert(added.end(), late.begin(), late.end());
  EXPECT_TRUE(blob_ids_of(probe(migration).peek_all()) == sorted_ids(added, [](const SeedRow&) { return true; }));

  // A dry run counts the whole table and its bytes and pushes nothing.
  std::uint64_t bytes = 0;
  for (const auto* set : {&rows, &added}) {
    for (const SeedRow& row : *set) bytes += row.byte_size;
  }
  const CliResult dry = runner.run(enqueue_args(migration, url, {"--dry-run"}));
  EXPECT_EQ(dry.exit_code, 0) << dry.all();
  EXPECT_NE(dry.out.find("dry run: 100510 objects, " + human_bytes(bytes) + " to copy"), std::string::npos)
      << dry.out;
  EXPECT_EQ(probe(migration).length(), 510u);
  EXPECT_EQ(probe(migration).queued_total(), kBigTableRows + 510);
}

// Each filter queues exactly the rows it names; rows already on another
// service are never queued; two shards cover the table exactly once.
TEST_F(EnqueueTest, FiltersSelectExactlyTheirRows) {
  const std::string url = database("filters");
  BlobFixture table(url, BlobSchema::kRails7);
  // Row i was created i minutes after midnight; every 15th is already on the target.
  std::vector<SeedRow> rows;
  for (int i = 0; i < 3000; ++i) {
    SeedRow row;
    row.key = testing::random_blob_key(table.rng());
    row.byte_size = static_cast<std::uint64_t>(i) * 7;
    row.checksum = "AAAAAAAAAAAAAAAAAAAAAA==";
    const auto when = std::chrono::sys_days{std::chrono::year{2024} / 1 / 1} + std::chrono::minutes(i);
    row.created_at = testing::utc_text(when);
    row.service_name = i % 15 == 0 ? "target" : "source";
    rows.push_back(row);
  }
  table.insert(rows);
  auto on_source = [](const SeedRow& row) { return row.service_name == "source"; };
  const BlobferryCli runner = cli();
  auto queued_ids = [&](const std::string& migration, std::vector<std::string> filter) {
    const CliResult run = runner.run(enqueue_args(migration, url, std::move(filter)));
    EXPECT_EQ(run.exit_code, 0) << migration << ": " << run.all();
    return blob_ids_of(probe(migration).peek_all());
  };

  const auto prefix = queued_ids("f-prefix", {"--key-prefix", "a"});
  const auto prefix_expected = sorted_ids(rows, [&](const SeedRow& r) { return on_source(r) && r.key[0] == 'a'; });
  EXPECT_FALSE(prefix_expected.empty());
  EXPECT_TRUE(prefix == prefix_expected) << prefix.size() << " queued, " << prefix_expected.size() << " expected";

  const long long first = std::stoll(rows[1000].id), last = std::stoll(rows[1999].id);
  const auto range = queued_ids("f-range", {"--id-range", std::to_string(first) + "-" + std::to_string(last)});
  EXPECT_TRUE(range == sorted_ids(rows, [&](const SeedRow& r) {
    return on_source(r) && std::stoll(r.id) >= first && std::stoll(r.id) <= last;
  })) << range.size() << " queued";

  const auto window = queued_ids("f-created", {"--created-after", "2024-01-01 10:00:00", "--created-before",
                                               "2024-01-01 20:00:00"});
  EXPECT_TRUE(window == sorted_ids(rows, [&](const SeedRow& r) {
    return on_source(r) && r.created_at >= "2024-01-01 10:00:00" && r.created_at < "2024-01-01 20:00:00";
  })) << window.size() << " queued";
  EXPECT_EQ(window.size(), 600u - 40u);  // 10 hours of minutes, less every 15th

  const auto shard0 = queued_ids("f-shard0", {"--shard", "0/2"});
  const auto shard1 = queued_ids("f-shard1", {"--shard", "1/2"});
  std::vector<std::string> both = shard0;
  both.insert(both.end(), shard1.begin(), shard1.end());
  std::sort(both.begin(), both.end());
  EXPECT_EQ(duplicates_in(both), 0u);
  EXPECT_TRUE(both == sorted_ids(rows, on_source)) << both.size() << " queued by both shards";
  EXPECT_TRUE(shard0 == sorted_ids(rows, [&](const SeedRow& r) { return on_source(r) && std::stoll(r.id) % 2 == 0; }));

  // A dry run with a filter counts exactly its rows and bytes, and creates no queue.
  std::uint64_t bytes = 0;
  for (const SeedRow& row : rows) bytes += on_source(row) && row.key[0] == 'a' ? row.byte_size : 0;
  const CliResult dry = runner.run(enqueue_args("f-dry", url, {"--key-prefix", "a", "--dry-run"}));
  EXPECT_EQ(dry.exit_code, 0) << dry.all();
  EXPECT_NE(dry.out.find("dry run: " + std::to_string(prefix_expected.size()) + " objects, " + human_bytes(bytes)),
            std::string::npos)
      << dry.out;
  QueueProbe dry_queue = probe("f-dry");
  EXPECT_FALSE(dry_queue.exists("queue"));
  EXPECT_FALSE(dry_queue.exists("stats"));
  EXPECT_FALSE(dry_queue.exists("cursors"));
}

// uuid primary keys: keyset paging over uuids queues every row once (the jobs
// carry no integer blob id), shards split by a hash, and --id-range is refused.
TEST_F(EnqueueTest, UuidKeyedTable) {
  const std::string url = database("uuid");
  BlobFixture table(url, BlobSchema::kRails7Uuid);
  std::vector<SeedRow> rows = table.add_rows(2500, utc_ago(2h));
  std::vector<std::string> keys;
  for (const SeedRow& row : rows) keys.push_back(row.key);
  std::sort(keys.begin(), keys.end());
  const BlobferryCli runner = cli();

  const CliResult all = runner.run(enqueue_args("u-all", url, {"--page-size", "300"}));
  EXPECT_EQ(all.exit_code, 0) << all.all();
  EXPECT_NE(all.out.find("queued 2500 copy jobs"), std::string::npos) << all.out;
  const std::vector<Job> jobs = probe("u-all").peek_all();
  EXPECT_TRUE(keys_of(jobs) == keys);
  EXPECT_TRUE(std::all_of(jobs.begin(), jobs.end(), [](const Job& j) { return !j.objects.at(0).blob_id; }));

  ASSERT_EQ(runner.run(enqueue_args("u-shard0", url, {"--shard", "0/2"})).exit_code, 0);
  ASSERT_EQ(runner.run(enqueue_args("u-shard1", url, {"--shard", "1/2"})).exit_code, 0);
  const auto shard0 = keys_of(probe("u-shard0").peek_all());
  std::vector<std::string> both = shard0;
  const auto shard1 = keys_of(probe("u-shard1").peek_all());
  both.insert(both.end(), shard1.begin(), shard1.end());
  std::sort(both.begin(), both.end());
  EXPECT_TRUE(both == keys) << both.size() << " keys queued by both shards";
  EXPECT_GT(shard0.size(), 1000u);  // a hash, not everything on one side
  EXPECT_LT(shard0.size(), 1500u);

  const CliResult range = runner.run(enqueue_args("u-range", url, {"--id-range", "1-10"}));
  EXPECT_EQ(range.exit_code, 2) << range.all();
  EXPECT_NE(range.err.find("uuid"), std::string::npos) << range.err;
  EXPECT_EQ(testing::non_empty_lines(range.err).size(), 1u) << range.err;
  // Refused options leave nothing behind: the name is free for the corrected command.
  const CliResult corrected = runner.run(enqueue_args("u-range", url));
  EXPECT_EQ(corrected.exit_code, 0) << corrected.all();
  EXPECT_EQ(probe("u-range").length(), 2500u);
}

}  // namespace
}  // namespace blobferry
