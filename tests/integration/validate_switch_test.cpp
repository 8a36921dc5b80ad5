// validate and switch as a user runs them against real servers: a missing and
// a corrupted target object, the repair through validate --requeue, a Rails
// 6.0 table, and bad input answered in one line with exit 2 and no secret.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/queue/job.h"
#include "common/queue/redis_client.h"
#include "common/queue/redis_queue.h"
#include "common/queue/redis_url.h"
#include "common/storage/storage_config.h"
#include "common/storage/storage_factory.h"
#include "enqueuer/planning/migration_plan.h"
#include "enqueuer/verification/switcher.h"
#include "tests/support/blob_fixture.h"
#include "tests/support/blobferry_cli.h"
#include "tests/support/stack_suite.h"

namespace blobferry {
namespace {

using testing::BlobferryCli;
using testing::BlobFixture;
using testing::BlobSchema;
using testing::CliResult;
using testing::SeedRow;

// A loopback port nothing listens on (bound, read, released).
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    throw std::runtime_error("no free loopback port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

// The way s3rver stores an object: <dir>/<bucket>/<key>._S3rver_object and its companions.
void delete_from_s3rver(const std::string& dir, const std::string& bucket, const std::string& key) {
  const std::string base = dir + "/" + bucket + "/" + key;
  ASSERT_TRUE(std::filesystem::remove(base + "._S3rver_object")) << base;
  std::filesystem::remove(base + "._S3rver_object.md5");
  std::filesystem::remove(base + "._S3rver_metadata.json");
}

std::string now_utc() { return testing::utc_text(std::chrono::system_clock::now()); }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A configuration error as the contract promises: exit 2, nothing on stdout,
// one line on stderr.
void expect_one_line_config_error(const CliResult& result, const std::string& what) {
  EXPECT_EQ(result.exit_code, 2) << what << ": " << result.all();
  EXPECT_EQ(result.out, "") << what;
  EXPECT_EQ(testing::non_empty_lines(result.err).size(), 1u) << what << ": " << result.err;
}

class ValidateSwitchTest : public testing::StackSuite {};

TEST_F(ValidateSwitchTest, MissingAndCorruptedObjectsAreFoundRepairedAndSwitchedOnce) {
  const std::string url = database("repair");
  auto source = open_service("source");
  auto target = open_service("target");
  BlobFixture table(url, BlobSchema::kRails7);
  std::vector<std::uint64_t> sizes;
  for (int i = 0; i < 40; ++i) sizes.push_back(i == 0 ? 0 : 500 + 97 * i);
  const std::vector<SeedRow> rows = table.add_objects(*source, sizes, now_utc());
  // Every UPDATE of a blob row is logged, so a row switched twice would show.
  table.log_switches();

  BlobferryCli runner = cli(url);
  const std::vector<std::string> worker{"worker", "--migration", "repair", "--exit-when-empty"};
  const CliResult queued = runner.run({"enqueue", "--migration", "repair", "--from", "source", "--to", "target"});
  ASSERT_EQ(queued.exit_code, 0) << queued.all();
  const CliResult copied = runner.run(worker);
  ASSERT_EQ(copied.exit_code, 0) << copied.all();

  const SeedRow& deleted = rows[9];
  const SeedRow& corrupted = rows[17];
  delete_from_s3rver(stack_->env("S3_TARGET_DIR"), "target", deleted.key);
  ASSERT_FALSE(target->head(deleted.key).has_value());
  testing::put_object(*target, corrupted.key, testing::random_bytes(corrupted.byte_size, table.rng()));
  const auto changed = target->head(corrupted.key);
  ASSERT_TRUE(changed.has_value());
  ASSERT_EQ(changed->size, corrupted.byte_size);

  const CliResult found = runner.run({"validate", "--migration", "repair"});
  EXPECT_EQ(found.exit_code, 1) << found.all();
  EXPECT_TRUE(contains(found.out, deleted.key + " (blob " + deleted.id + "): missing on the target")) << found.out;
  EXPECT_TRUE(contains(found.out, corrupted.key + " (blob " + corrupted.id + "): checksum on the target differs"))
      << found.out;
  EXPECT_TRUE(contains(found.out, "validated 40 objects of repair on target")) << found.out;
  EXPECT_TRUE(contains(found.out, "38 verified, 1 missing, 1 differ")) << found.out;

  const CliResult partly = runner.run({"switch", "--migration", "repair", "--batch-size", "7"});
  EXPECT_EQ(partly.exit_code, 1) << partly.all();
  EXPECT_TRUE(contains(partly.out, "switched 38 blobs from source to target")) << partly.out;
  EXPECT_TRUE(contains(partly.out, "2 not verified yet")) << partly.out;
  std::map<std::string, std::string> services = table.service_names();
  for (const SeedRow& row : rows) {
    const bool bad = row.id == deleted.id || row.id == corrupted.id;
    EXPECT_EQ(services[row.id], bad ? "source" : "target") << "blob " << row.id;
  }

  const CliResult requeued = runner.run({"validate", "--migration", "repair", "--requeue"});
  EXPECT_EQ(requeued.exit_code, 1) << requeued.all();
  EXPECT_TRUE(contains(requeued.out, "validated 2 objects")) << requeued.out;
  EXPECT_TRUE(contains(requeued.out, "copy jobs queued for the rest")) << requeued.out;
  const CliResult repaired = runner.run(worker);
  EXPECT_EQ(repaired.exit_code, 0) << repaired.all();
  for (const SeedRow* row : {&deleted, &corrupted}) {
    std::string bytes;
    ASSERT_TRUE(target->get(row->key, [&bytes](std::string_view chunk) { bytes.append(chunk); }).has_value());
    EXPECT_EQ(base64_encode(md5_of(bytes)), row->checksum) << row->key;
  }

  const CliResult clean = runner.run({"validate", "--migration", "repair"});
  EXPECT_EQ(clean.exit_code, 0) << clean.all();
  EXPECT_TRUE(contains(clean.out, "2 verified, 0 missing, 0 differ")) << clean.out;
  const CliResult rest = runner.run({"switch", "--migration", "repair"});
  EXPECT_EQ(rest.exit_code, 0) << rest.all();
  EXPECT_TRUE(contains(rest.out, "switched 2 blobs from source to target")) << rest.out;
  const CliResult nothing_left = runner.run({"switch", "--migration", "repair"});
  EXPECT_EQ(nothing_left.exit_code, 0) << nothing_left.all();
  EXPECT_TRUE(contains(nothing_left.out, "switched 0 blobs")) << nothing_left.out;

  for (const auto& [id, service] : table.service_names()) EXPECT_EQ(service, "target") << "blob " << id;
  PgResult log = table.db().exec(
      "SELECT count(*), count(DISTINCT blob_id), "
      "count(*) FILTER (WHERE old_service = 'source' AND new_service = 'target') FROM switch_log");
  EXPECT_EQ(log.value(0, 0), "40") << "rows updated in all";
  EXPECT_EQ(log.value(0, 1), "40") << "distinct rows updated";
  EXPECT_EQ(log.value(0, 2), "40") << "updates from source to target";
}

// switch tells its progress after every batch (status and the operator page
// show it while a long switch runs), with totals that only grow.
TEST_F(ValidateSwitchTest, SwitchTellsItsProgressAfterEveryBatch) {
  const std::string url = database("progress");
  auto source = open_service("source");
  // A seed of its own: the same keys and bytes as another test's would be
  // found on the shared target and verified there.
  BlobFixture table(url, BlobSchema::kRails7, 0x5317c4);
  table.add_objects(*source, std::vector<std::uint64_t>(20, 300), now_utc());
  BlobferryCli runner = cli(url);
  ASSERT_EQ(runner.run({"enqueue", "--migration", "progress", "--from", "source", "--to", "target"}).exit_code, 0);
  ASSERT_EQ(runner.run({"worker", "--migration", "progress", "--exit-when-empty"}).exit_code, 0);
  ASSERT_EQ(runner.run({"validate", "--migration", "progress"}).exit_code, 0);

  RedisQueue queue(std::make_shared<RedisClient>(RedisUrl::parse(stack_->redis_url())), "progress");
  const std::optional<MigrationPlan> plan = load_plan(queue);
  ASSERT_TRUE(plan.has_value());
  std::vector<SwitchResult> told;
  const std::atomic<bool> stop{false};
  const SwitchResult result = switch_verified_blobs(table.db(), *plan, 6, false, stop,
                                                    [&told](const SwitchResult& so_far) { told.push_back(so_far); });
  EXPECT_EQ(result.switched, 20u);
  EXPECT_EQ(result.batches, 4u) << "pages of 6, 6, 6 and 2";
  ASSERT_EQ(told.size(), result.batches);
  for (std::size_t i = 0; i < told.size(); ++i) {
    EXPECT_EQ(told[i].batches, i + 1);
    EXPECT_EQ(told[i].switched, std::min<std::uint64_t>(6 * (i + 1), 20));
  }
  for (const auto& [id, service] : table.service_names()) EXPECT_EQ(service, "target") << "blob " << id;
}

// The app deletes blobs (rows and files) while their jobs wait: what is gone
// from the table is no longer the migration's, so it never blocks validate
// or switch, whether its copy failed (file purged too) or went through.
TEST_F(ValidateSwitchTest, BlobRowsDeletedSinceEnqueueNeverBlockValidateOrSwitch) {
  const std::string url = database("deleted_rows");
  auto source = open_service("source");
  BlobFixture table(url, BlobSchema::kRails7);
  const std::vector<SeedRow> rows = table.add_objects(*source, std::vector<std::uint64_t>(12, 700), now_utc());
  BlobferryCli runner = cli(url);
  ASSERT_EQ(runner.run({"enqueue", "--migration", "deleted", "--from", "source", "--to", "target"}).exit_code, 0);

  const SeedRow& purged = rows[3];     // row and file gone: its copy fails
  const SeedRow& row_only = rows[8];   // row gone, file left: its copy goes through
  table.db().exec("DELETE FROM active_storage_blobs WHERE id IN (" + purged.id + ", " + row_only.id + ")");
  delete_from_s3rver(stack_->env("S3_SOURCE_DIR"), "source", purged.key);
  const CliResult copied = runner.run({"worker", "--migration", "deleted", "--exit-when-empty"});
  EXPECT_EQ(copied.exit_code, 0) << copied.all();
  const CliResult failures = runner.run({"report", "--migration", "deleted", "--failed"});
  EXPECT_TRUE(contains(failures.out, purged.key)) << "the purged blob's copy should have failed: " << failures.all();

  const CliResult validated = runner.run({"validate", "--migration", "deleted"});
  EXPECT_EQ(validated.exit_code, 0) << validated.all();
  EXPECT_TRUE(contains(validated.out, "validated 10 objects")) << validated.out;
  EXPECT_TRUE(contains(validated.out, "10 verified, 0 missing, 0 differ")) << validated.out;
  const CliResult switched = runner.run({"switch", "--migration", "deleted"});
  EXPECT_EQ(switched.exit_code, 0) << switched.all();
  EXPECT_TRUE(contains(switched.out, "switched 10 blobs from source to target in 1 batches; 0 not verified yet"))
      << switched.out;
  const auto services = table.service_names();
  EXPECT_EQ(services.size(), 10u);
  for (const auto& [id, service] : services) EXPECT_EQ(service, "target") << "blob " << id;
}

// validate --wait with jobs queued and no worker: each round says what it
// waits for, and --timeout ends it with exit 1 instead of waiting forever.
TEST_F(ValidateSwitchTest, WaitWithoutAWorkerEndsAtItsTimeout) {
  const std::string url = database("no_worker");
  auto source = open_service("source");
  BlobFixture table(url, BlobSchema::kRails7);
  table.add_objects(*source, std::vector<std::uint64_t>(6, 300), now_utc());
  BlobferryCli runner = cli(url);
  ASSERT_EQ(runner.run({"enqueue", "--migration", "idle", "--from", "source", "--to", "target"}).exit_code, 0);

  const auto started = std::chrono::steady_clock::now();
  const CliResult waited =
      runner.run({"validate", "--migration", "idle", "--wait", "--timeout", "3s", "--interval", "1", "--show", "0"});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_EQ(waited.exit_code, 1) << waited.all();
  EXPECT_GE(seconds, 3.0) << waited.all();
  EXPECT_LT(seconds, 20.0) << "--timeout 3s should end the wait: " << waited.all();
  EXPECT_TRUE(contains(waited.out, "waiting for 6 queued, 0 in flight, no live worker")) << waited.out;
  EXPECT_TRUE(contains(waited.out, "timed out after 3s: 6 objects not verified yet")) << waited.out;

  const CliResult bad = runner.run({"validate", "--migration", "idle", "--wait", "--timeout", "5x"});
  expect_one_line_config_error(bad, "a --timeout that is no duration");
  EXPECT_TRUE(contains(bad.err, "--timeout '5x'")) << bad.err;
  EXPECT_TRUE(contains(bad.err, "90s, 15m, 2h")) << bad.err;
}

// uuid ids travel through validate's records and switch's batches as text and uuid[].
TEST_F(ValidateSwitchTest, UuidTableIsValidatedAndSwitched) {
  const std::string url = database("uuid_app");
  auto source = open_service("source");
  BlobFixture table(url, BlobSchema::kRails7Uuid, 3);
  const std::vector<SeedRow> rows = table.add_objects(*source, std::vector<std::uint64_t>(30, 1500), now_utc());
  BlobferryCli runner = cli(url);
  ASSERT_EQ(runner.run({"enqueue", "--migration", "uuid-app", "--from", "source", "--to", "target"}).exit_code, 0);
  ASSERT_EQ(runner.run({"worker", "--migration", "uuid-app", "--exit-when-empty"}).exit_code, 0);

  const CliResult validated = runner.run({"validate", "--migration", "uuid-app"});
  EXPECT_EQ(validated.exit_code, 0) << validated.all();
  EXPECT_TRUE(contains(validated.out, "30 verified, 0 missing, 0 differ")) << validated.out;
  const CliResult switched = runner.run({"switch", "--migration", "uuid-app", "--batch-size", "8"});
  EXPECT_EQ(switched.exit_code, 0) << switched.all();
  EXPECT_TRUE(contains(switched.out, "switched 30 blobs from source to target in 4 batches")) << switched.out;
  const auto services = table.service_names();
  EXPECT_EQ(services.size(), rows.size());
  for (const auto& [id, service] : services) EXPECT_EQ(service, "target") << "blob " << id;
}

// Rails 5.2/6.0 tables have no service_name: every row is a candidate, and
// switch explains that it does not apply.
TEST_F(ValidateSwitchTest, Rails60TableEnqueuesEveryRowAndSwitchDoesNotApply) {
  const std::string url = database("rails60");
  BlobFixture table(url, BlobSchema::kRails60);
  std::vector<SeedRow> rows = table.add_rows(25, now_utc(), "local");
  BlobferryCli runner = cli(url);

  const CliResult queued = runner.run({"enqueue", "--migration", "old-rails", "--from", "source", "--to", "target"});
  EXPECT_EQ(queued.exit_code, 0) << queued.all();
  EXPECT_TRUE(contains(queued.out, "queued 25 copy jobs")) << queued.out;
  auto client = std::make_shared<RedisClient>(RedisUrl::parse(stack_->redis_url()));
  RedisQueue queue(client, "old-rails");
  auto payloads = client->command({"LRANGE", queue.key("queue"), "0", "-1"});
  std::set<std::string> queued_ids, table_ids;
  for (std::size_t i = 0; i < payloads->elements; ++i) {
    const Job job = decode_job(reply_string(*payloads->element[i]));
    queued_ids.insert(std::to_string(job.objects.at(0).blob_id.value_or(-1)));
  }
  for (const SeedRow& row : rows) table_ids.insert(row.id);
  EXPECT_EQ(payloads->elements, 25u);
  EXPECT_EQ(queued_ids, table_ids);

  const CliResult switched = runner.run({"switch", "--migration", "old-rails"});
  expect_one_line_config_error(switched, "switch on a Rails 6.0 table");
  EXPECT_TRUE(contains(switched.err, "no service_name column")) << switched.err;
  EXPECT_TRUE(contains(switched.err, "switch does not apply")) << switched.err;
}

TEST_F(ValidateSwitchTest, BadInputIsOneLineExitTwoWithoutSecrets) {
  const BlobferryCli runner = cli();
  for (const char* command : {"validate", "switch", "status"}) {
    const CliResult unknown = runner.run({command, "--migration", "no-such-migration"});
    expect_one_line_config_error(unknown, std::string(command) + " of an unknown migration");
    EXPECT_TRUE(contains(unknown.err, "no migration no-such-migration")) << unknown.err;
  }

  const CliResult service =
      runner.run({"enqueue", "--migration", "bad-service", "--from", "dropbox", "--to", "target"});
  expect_one_line_config_error(service, "an unknown service");
  for (const char* name : {"dropbox", "source", "target", "local"}) {
    EXPECT_TRUE(contains(service.err, name)) << "the message should name " << name << ": " << service.err;
  }

  const std::string not_blobs = database("not_blobs");
  BlobFixture table(not_blobs, BlobSchema::kNotActiveStorage);
  table.add_rows(3, now_utc());
  const CliResult columns = runner.run({"enqueue", "--migration", "bad-table", "--from", "source", "--to", "target",
                                        "--database-url", not_blobs});
  expect_one_line_config_error(columns, "a table without ActiveStorage columns");
  EXPECT_TRUE(contains(columns.err, "has no column byte_size")) << columns.err;

  const std::string pg_secret = "PgPass-7c1e9Zq";
  const std::string pg_down = "postgresql://app:" + pg_secret + "@127.0.0.1:" + std::to_string(closed_port()) + "/app";
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"enqueue", "--migration", "pg-down", "--from", "source", "--to", "target"},
        std::vector<std::string>{"migrate", "--from", "source", "--to", "target", "--no-progress"}}) {
    std::vector<std::string> full = args;
    full.insert(full.end(), {"--database-url", pg_down});
    const CliResult down = runner.run(full);
    expect_one_line_config_error(down, args[0] + " with PostgreSQL down");
    EXPECT_FALSE(contains(down.all(), pg_secret)) << down.all();
    EXPECT_TRUE(contains(down.err, "127.0.0.1")) << "the message should name the server: " << down.err;
  }

  const std::string redis_secret = "RedisPass-4f8aWx";
  const std::string redis_down = "redis://:" + redis_secret + "@127.0.0.1:" + std::to_string(closed_port()) + "/0";
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"enqueue", "--migration", "redis-down", "--from", "source", "--to", "target"},
        std::vector<std::string>{"worker", "--migration", "redis-down", "--exit-when-empty"},
        std::vector<std::string>{"status", "--migration", "redis-down"},
        std::vector<std::string>{"validate", "--migration", "redis-down"}}) {
    std::vector<std::string> full = args;
    full.insert(full.end(), {"--redis-url", redis_down});
    const CliResult down = runner.run(full);
    expect_one_line_config_error(down, args[0] + " with Redis down");
    EXPECT_FALSE(contains(down.all(), redis_secret)) << down.all();
    EXPECT_TRUE(contains(down.err, "127.0.0.1")) << "the message should name the server: " << down.err;
  }
}

}  // namespace
}  // namespace blobferry
