// The whole playbook as a new user runs it, binary against real servers:
// a Rails blob table copied by two workers, checked, validated and switched;
// the same in one `migrate --switch`; a listing of awkward keys; a manifest
// with one bad line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/storage/storage_config.h"
#include "common/storage/storage_factory.h"
#include "tests/support/blob_fixture.h"
#include "tests/support/blobferry_cli.h"
#include "tests/support/s3_server_quirks.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_services.h"
#include "tests/support/test_stack.h"

namespace blobferry {
namespace {

using namespace std::chrono_literals;
using testing::BlobferryCli;
using testing::BlobFixture;
using testing::BlobSchema;
using testing::CliResult;
using testing::SeedRow;
using testing::open_service;
using testing::TempDir;
using testing::TestStack;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kMiB = 1024 * 1024;
constexpr std::uint64_t kMultipartSize = 9 * kMiB + 123;  // over the 8 MiB part size: two parts

std::string now_utc() { return testing::utc_text(std::chrono::system_clock::now()); }

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Every object of a bucket, by key.
std::map<std::string, ObjectInfo> full_listing(Storage& storage) {
  std::map<std::string, ObjectInfo> objects;
  ListRequest request;
  do {
    ListPage page = storage.list(request);
    for (ObjectInfo& info : page.objects) objects.emplace(info.key, std::move(info));
    request.continuation_token = page.next_continuation_token;
  } while (!request.continuation_token.empty());
  return objects;
}

std::string get_bytes(Storage& storage, const std::string& key) {
  std::string bytes;
  const auto info = storage.get(key, [&bytes](std::string_view chunk) { bytes.append(chunk); });
  EXPECT_TRUE(info.has_value()) << key << " is not on " << storage.describe();
  return bytes;
}

// Sizes a Rails app has: empty files, small ones, and one that needs multipart.
std::vector<std::uint64_t> varied_sizes(std::size_t n, std::mt19937_64& rng) {
  std::uniform_int_distribution<std::uint64_t> small(1, 64 * 1024);
  std::vector<std::uint64_t> sizes;
  for (std::size_t i = 0; i < n; ++i) sizes.push_back(i % 50 == 0 ? 0 : small(rng));
  sizes[1] = kMultipartSize;
  sizes[2] = 5 * kMiB;  // exactly a minimal part's size, single PUT
  return sizes;
}

// Every row's object is on the target with the row's size and MD5.
void expect_rows_on_target(Storage& target, const std::vector<SeedRow>& rows) {
  const auto listed = full_listing(target);
  for (const SeedRow& row : rows) {
    auto it = listed.find(row.key);
    ASSERT_NE(it, listed.end()) << row.key << " is not on the target";
    EXPECT_EQ(it->second.size, row.byte_size) << row.key;
    EXPECT_EQ(base64_encode(md5_of(get_bytes(target, row.key))), row.checksum) << row.key;
  }
}

Json status_json(const BlobferryCli& cli, const std::string& migration) {
  const CliResult status = cli.run({"status", "--migration", migration, "--json"});
  EXPECT_EQ(status.exit_code, 0) << status.all();
  return Json::parse(status.out, nullptr, false);
}

std::uint64_t total_bytes(const std::vector<SeedRow>& rows) {
  std::uint64_t bytes = 0;
  for (const SeedRow& row : rows) bytes += row.byte_size;
  return bytes;
}

// The distributed way: enqueue, two workers, status, a re-run that only
// skips, validate, switch, and a catch-up after the switch that finds nothing.
TEST(PlaybookTest, RailsBlobTableWithTwoWorkersValidateAndSwitch) {
  TestStack stack({.redis = true, .postgres = true, .s3 = true});
  TempDir scratch("bf-playbook");
  auto source = open_service(stack, "source");
  auto target = open_service(stack, "target");
  const testing::S3ServerQuirks quirks = testing::probe_s3_server_quirks(stack.env("S3_TARGET_ENDPOINT") + "/target");
  BlobFixture table(stack.database_url(), BlobSchema::kRails7);
  const auto seeding = Clock::now();
  const std::vector<SeedRow> rows = table.add_objects(*source, varied_sizes(300, table.rng()), now_utc());
  const double seed_seconds = seconds_since(seeding);
  const BlobferryCli cli(stack, scratch.path());
  const std::vector<std::string> enqueue{"enqueue", "--migration", "app", "--from", "source", "--to", "target"};
  const std::vector<std::string> worker{"worker", "--migration", "app", "--exit-when-empty", "--concurrency", "4"};

  const auto copying = Clock::now();
  const CliResult queued = cli.run(enqueue);
  ASSERT_EQ(queued.exit_code, 0) << queued.all();
  EXPECT_NE(queued.out.find("queued 300 copy jobs"), std::string::npos) << queued.out;
  testing::ChildProcess first = cli.start(worker);
  testing::ChildProcess second = cli.start(worker);
  const CliResult first_done = testing::finish(first);
  const CliResult second_done = testing::finish(second);
  const double copy_seconds = seconds_since(copying);
  EXPECT_EQ(first_done.exit_code, 0) << first_done.all();
  EXPECT_EQ(second_done.exit_code, 0) << second_done.all();

  Json status = status_json(cli, "app");
  ASSERT_TRUE(status.is_object());
  EXPECT_EQ(status["copied"], 300);
  EXPECT_EQ(status["skipped"], 0);
  EXPECT_EQ(status["failed"], 0);
  EXPECT_EQ(status["dead"], 0);
  EXPECT_EQ(status["queued"], 0);
  EXPECT_EQ(status["in_flight"], 0);
  EXPECT_EQ(status["total"], 300);
  EXPECT_EQ(status["bytes_copied"], total_bytes(rows));
  EXPECT_EQ(status["done"], true);
  expect_rows_on_target(*target, rows);
  const auto big = target->head(rows[1].key);
  ASSERT_TRUE(big.has_value());
  if (!quirks.multipart_etag_without_part_count) {
    EXPECT_NE(big->etag.find("-2"), std::string::npos) << "the 9 MiB object was not copied in two parts: " << big->etag;
  }

  // Run again before switching: the catch-up pass re-reads rows created
  // within its margin (all of them here), and workers skip every one.
  const CliResult again = cli.run(enqueue);
  EXPECT_EQ(again.exit_code, 0) << again.all();
  EXPECT_NE(again.out.find("queued 300 copy jobs"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("catch-up pass"), std::string::npos) << again.out;
  const CliResult rerun = cli.run(worker);
  EXPECT_EQ(rerun.exit_code, 0) << rerun.all();
  status = status_json(cli, "app");
  EXPECT_EQ(status["copied"], 300);
  EXPECT_EQ(status["skipped"], 300);
  EXPECT_EQ(status["bytes_skipped"], total_bytes(rows));
  EXPECT_EQ(status["failed"], 0);

  const CliResult validated = cli.run({"validate", "--migration", "app"});
  EXPECT_EQ(validated.exit_code, 0) << validated.all();
  EXPECT_NE(validated.out.find("validated 300 objects"), std::string::npos) << validated.out;
  EXPECT_NE(validated.out.find("300 verified, 0 missing, 0 differ"), std::string::npos) << validated.out;

  const CliResult switched = cli.run({"switch", "--migration", "app", "--batch-size", "64"});
  EXPECT_EQ(switched.exit_code, 0) << switched.all();
  EXPECT_NE(switched.out.find("switched 300 blobs from source to target in 5 batches; 0 not verified"),
            std::string::npos)
      << switched.out;
  for (const auto& [id, service] : table.service_names()) EXPECT_EQ(service, "target") << "blob " << id;

  // After the switch no row is on the source any more: a catch-up queues nothing.
  const CliResult after = cli.run(enqueue);
  EXPECT_EQ(after.exit_code, 0) << after.all();
  EXPECT_NE(after.out.find("queued 0 copy jobs"), std::string::npos) << after.out;
  status = status_json(cli, "app");
  EXPECT_EQ(status["copied"], 300);
  EXPECT_EQ(status["total"], 600);
  std::printf("[ measured ] %zu blobs (%llu bytes) seeded in %.1f s; enqueue + 2 workers copied them in %.1f s\n",
              rows.size(), static_cast<unsigned long long>(total_bytes(rows)), seed_seconds, copy_seconds);
}

// The embedded way: one `migrate --switch`, no Redis; a second run has nothing to do.
TEST(PlaybookTest, MigrateSwitchAloneOnAFreshTable) {
  TestStack stack({.postgres = true, .s3 = true});
  TempDir scratch("bf-migrate");
  auto source = open_service(stack, "source");
  auto target = open_service(stack, "target");
  BlobFixture table(stack.database_url(), BlobSchema::kRails7, 7);
  const std::vector<SeedRow> rows = table.add_objects(*source, varied_sizes(120, table.rng()), now_utc());
  BlobferryCli cli(stack, scratch.path());
  cli.unset_env("REDIS_URL");  // the embedded mode needs none

  const auto started = Clock::now();
  const CliResult migrated = cli.run({"migrate", "--from", "source", "--to", "target", "--switch", "--no-progress"});
  const double migrate_seconds = seconds_since(started);
  EXPECT_EQ(migrated.exit_code, 0) << migrated.all();
  EXPECT_NE(migrated.out.find("copied 120 objects"), std::string::npos) << migrated.out;
  EXPECT_NE(migrated.out.find("skipped 0 already on target, 0 failed"), std::string::npos) << migrated.out;
  EXPECT_NE(migrated.out.find("120 verified, 0 missing, 0 differ"), std::string::npos) << migrated.out;
  EXPECT_NE(migrated.out.find("switched 120 blobs from source to target"), std::string::npos) << migrated.out;
  for (const auto& [id, service] : table.service_names()) EXPECT_EQ(service, "target") << "blob " << id;
  expect_rows_on_target(*target, rows);

  const CliResult again = cli.run({"migrate", "--from", "source", "--to", "target", "--switch", "--no-progress"});
  EXPECT_EQ(again.exit_code, 0) << again.all();
  EXPECT_NE(again.out.find("copied 0 objects"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("switched 0 blobs"), std::string::npos) << again.out;
  std::printf("[ measured ] migrate --switch of %zu blobs (%llu bytes): %.1f s\n", rows.size(),
              static_cast<unsigned long long>(total_bytes(rows)), migrate_seconds);
}

// Keys that need every kind of escaping, at the top of the bucket, through
// listing jobs: the target's listing must equal the source's, byte for byte.
TEST(PlaybookTest, ListingModeCopiesAwkwardKeysByteIdentical) {
  TestStack stack({.redis = true, .s3 = true});
  TempDir scratch("bf-listing");
  auto source = open_service(stack, "source");
  auto target = open_service(stack, "target");
  // Probed on the target, whose listing then has a few objects more under
  // quirk-probe/: on the source they would be copied too, and s3rver lists
  // them out of byte order, which a side-by-side listing walk cannot follow.
  const testing::S3ServerQuirks quirks = testing::probe_s3_server_quirks(stack.env("S3_TARGET_ENDPOINT") + "/target");
  std::vector<std::string> keys{
      "with space.txt",       "two  spaces/ and more .bin", "plus+sign+.jpg",   "percent%25and%zz",
      "equals=amp&q?hash#",   "tilde~(paren)!$'@,;.txt",    "trailing.dot.",    "dots.../x..",
      "UPPER/CASE.JPG",       "MiXeD/Case/Key",             "~starts-with-tilde", "ünïcödé/naïve café.png",
      "日本語/ファイル.txt",  "emoji 😀 key",               "a/b/c/d/e/deep",   "semi;colon,comma",
      "empty-object",         "0starts-with-digit",         "zz-last",          "double//slash",
      "/starts-with-slash",   "a//b//c",
  };
  std::vector<std::string> left_out;
  if (quirks.rejects_double_slash) {
    // s3rver maps keys to file paths and cannot hold "//"; real S3 can.
    auto unsupported = [](const std::string& key) { return key.find("//") != std::string::npos || key[0] == '/'; };
    for (const auto& key : keys) {
      if (unsupported(key)) left_out.push_back(key);
    }
    keys.erase(std::remove_if(keys.begin(), keys.end(), unsupported), keys.end());
  }
  std::map<std::string, std::string> bytes;
  std::mt19937_64 rng(5);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    bytes[keys[i]] = keys[i] == "empty-object" ? "" : testing::random_bytes(100 + i * 997, rng);
    testing::put_object(*source, keys[i], bytes[keys[i]]);
  }
  const auto source_listing = full_listing(*source);
  ASSERT_EQ(source_listing.size(), keys.size());

  const BlobferryCli cli(stack, scratch.path());
  const CliResult queued = cli.run({"enqueue", "--migration", "odd", "--from", "source", "--to", "target",
                                    "--source", "listing"});
  ASSERT_EQ(queued.exit_code, 0) << queued.all();
  EXPECT_NE(queued.out.find("queued 37 listing jobs"), std::string::npos) << queued.out;
  const CliResult worked = cli.run({"worker", "--migration", "odd", "--exit-when-empty", "--concurrency", "4"});
  EXPECT_EQ(worked.exit_code, 0) << worked.all();

  const auto target_listing = full_listing(*target);
  std::vector<std::string> source_keys, target_keys;
  for (const auto& [key, info] : source_listing) source_keys.push_back(key);
  for (const auto& [key, info] : target_listing) {
    if (key.rfind("quirk-probe/", 0) != 0) target_keys.push_back(key);
  }
  EXPECT_EQ(target_keys, source_keys);
  for (const auto& [key, info] : source_listing) {
    auto it = target_listing.find(key);
    if (it == target_listing.end()) continue;
    EXPECT_EQ(it->second.size, info.size) << key;
    EXPECT_EQ(it->second.etag, info.etag) << key;
  }
  for (const auto& key : keys) EXPECT_TRUE(get_bytes(*target, key) == bytes[key]) << key << " differs on the target";
  const Json status = status_json(cli, "odd");
  EXPECT_EQ(status["copied"], keys.size());
  EXPECT_EQ(status["failed"], 0);
  EXPECT_EQ(status["dead"], 0);
  const CliResult validated = cli.run({"validate", "--migration", "odd"});
  EXPECT_EQ(validated.exit_code, 0) << validated.all();
  EXPECT_NE(validated.out.find(std::to_string(keys.size()) + " verified, 0 missing"), std::string::npos)
      << validated.out;
  if (!left_out.empty()) {
    std::string list;
    for (const auto& key : left_out) list += " '" + key + "'";
    std::printf("[ note     ] s3rver cannot store keys with '//' or a leading '/'; left out:%s\n", list.c_str());
  }
}

// One malformed line in a manifest: the rest are copied, the line is named
// with its number, and enqueue exits 1.
TEST(PlaybookTest, ManifestWithOneBadLine) {
  TestStack stack({.redis = true, .s3 = true});
  TempDir scratch("bf-manifest");
  auto source = open_service(stack, "source");
  auto target = open_service(stack, "target");
  std::mt19937_64 rng(9);
  std::map<std::string, std::string> md5s;
  std::string manifest = "key,size,checksum\n";
  for (int i = 0; i < 12; ++i) {
    const std::string key = "manifest/file-" + std::to_string(i) + (i % 3 == 0 ? " with, comma" : "") + ".bin";
    const std::string body = testing::random_bytes(1000 + i * 311, rng);
    md5s[key] = testing::put_object(*source, key, body);
    manifest += "\"" + key + "\"," + std::to_string(body.size()) + "," + md5s[key] + "\n";
    if (i == 4) manifest += "manifest/broken.bin,twelve bytes,\n";  // line 7: a size that is no number
  }
  const std::string path = scratch.file("keys.csv");
  std::ofstream(path, std::ios::binary) << manifest;
  const BlobferryCli cli(stack, scratch.path());

  const CliResult queued = cli.run({"enqueue", "--migration", "list", "--from", "source", "--to", "target",
                                    "--source", "manifest", "--manifest", path});
  EXPECT_EQ(queued.exit_code, 1) << queued.all();
  EXPECT_NE(queued.out.find("queued 12 copy jobs"), std::string::npos) << queued.out;
  EXPECT_NE(queued.out.find("1 manifest lines did not parse"), std::string::npos) << queued.out;
  EXPECT_NE(queued.err.find("line 7: size 'twelve bytes' is not a byte count"), std::string::npos) << queued.err;

  const CliResult worked = cli.run({"worker", "--migration", "list", "--exit-when-empty"});
  EXPECT_EQ(worked.exit_code, 0) << worked.all();
  const auto listed = full_listing(*target);
  EXPECT_EQ(listed.size(), md5s.size());
  for (const auto& [key, md5] : md5s) {
    ASSERT_TRUE(listed.count(key)) << key;
    EXPECT_EQ(base64_encode(md5_of(get_bytes(*target, key))), md5) << key;
  }
  EXPECT_EQ(listed.count("manifest/broken.bin"), 0u);
  const Json status = status_json(cli, "list");
  EXPECT_EQ(status["copied"], 12);
  EXPECT_EQ(status["failed"], 0);
}

}  // namespace
}  // namespace blobferry
