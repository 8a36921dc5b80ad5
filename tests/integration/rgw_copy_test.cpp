// Every copy-engine strategy, and a blob-table migration with validate and switch, on Ceph RGW (a real S3).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/base/error.h"
#include "common/storage/s3/s3_storage.h"
#include "common/storage/service_config.h"
#include "enqueuer/verification/validator.h"
#include "tests/support/blob_fixture.h"
#include "tests/support/blobferry_cli.h"
#include "tests/support/seed_data.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_services.h"
#include "tests/support/test_stack.h"
#include "worker/copy/copy_engine.h"

namespace blobferry {
namespace {

using testing::md5_base64;
using testing::md5_hex;
constexpr std::uint64_t kMiB = 1024 * 1024;
constexpr const char* kMd5Metadata = "x-amz-meta-blobferry-md5";

std::string metadata_value(const Metadata& metadata, const std::string& name) {
  for (const auto& [key, value] : metadata) {
    if (key == name) return value;
  }
  return {};
}

std::string read_all(Storage& storage, const std::string& key) {
  std::string bytes;
  if (!storage.get(key, [&](std::string_view chunk) { bytes.append(chunk); })) return "<missing>";
  return bytes;
}

// Uploads bytes as a multipart object of 5 MiB parts, so its ETag is "…-N" as
// an app's large uploads are.
std::string put_multipart(Storage& storage, const std::string& key, const std::string& bytes,
                          const Metadata& metadata = {}) {
  ChunkedWriter& writer = *storage.capabilities().chunked_writer;  // RGW has it
  const std::string upload_id = writer.create_multipart(key, PutOptions{"", metadata});
  std::vector<CompletedPart> parts;
  int number = 1;
  for (std::size_t offset = 0; offset < bytes.size(); offset += 5 * kMiB, ++number) {
    const std::string part = bytes.substr(offset, 5 * kMiB);
    MemoryByteSource body(part);
    parts.push_back({number, writer.upload_part(key, upload_id, number, body, md5_base64(part))});
  }
  return writer.complete_multipart(key, upload_id, parts);
}

void put_single(Storage& storage, const std::string& key, const std::string& bytes, const Metadata& metadata = {}) {
  MemoryByteSource body(bytes);
  storage.put(key, body, PutOptions{md5_base64(bytes), metadata});
}

// Forwards to an RGW storage; before_copy runs ahead of each server-side copy
// request (to change the source under it, as an app writing meanwhile would).
class WatchedTarget final : public Storage, public ChunkedWriter, public ServerSideCopier {
 public:
  explicit WatchedTarget(Storage& inner) : inner_(inner), writer_(*inner.capabilities().chunked_writer),
                                           copier_(*inner.capabilities().server_side_copier) {}
  std::function<void(int part_number)> before_copy;  // 0 for copy_object
  std::optional<SizeLimits> limits;                  // reported instead of RGW's own
  std::atomic<int> creates{0}, aborts{0}, copies{0};

  SizeLimits size_limits() const override { return limits ? *limits : writer_.size_limits(); }

  std::string describe() const override { return inner_.describe(); }
  void check(Access access) override { inner_.check(access); }
  std::optional<ObjectInfo> head(const std::string& key) override { return inner_.head(key); }
  std::optional<ObjectInfo> get(const std::string& key, const ByteSink& sink,
                                std::optional<ByteRange> range) override {
    return inner_.get(key, sink, range);
  }
  std::string put(const std::string& key, ByteSource& body, const PutOptions& options) override {
    return inner_.put(key, body, options);
  }
  ListPage list(const ListRequest& request) override { return inner_.list(request); }
  StorageCapabilities capabilities() override { return {this, this}; }
  std::string create_multipart(const std::string& key, const PutOptions& options) override {
    ++creates;
    return writer_.create_multipart(key, options);
  }
  std::string upload_part(const std::string& key, const std::string& upload_id, int number, ByteSource& body,
                          const std::string& md5) override {
    return writer_.upload_part(key, upload_id, number, body, md5);
  }
  std::string complete_multipart(const std::string& key, const std::string& upload_id,
                                 const std::vector<CompletedPart>& parts) override {
    return writer_.complete_multipart(key, upload_id, parts);
  }
  void abort_multipart(const std::string& key, const std::string& upload_id) override {
    ++aborts;
    writer_.abort_multipart(key, upload_id);
  }
  std::vector<CompletedPart> list_parts(const std::string& key, const std::string& upload_id) override {
    return writer_.list_parts(key, upload_id);
  }
  bool can_copy_from(const Storage& source) const override { return copier_.can_copy_from(peer(source)); }
  std::string copy_object(const Storage& source, const std::string& source_key, const std::string& key,
                          const CopyOptions& options) override {
    if (before_copy) before_copy(0);
    ++copies;
    return copier_.copy_object(peer(source), source_key, key, options);
  }
  std::string copy_part(const Storage& source, const std::string& source_key, const std::string& key,
                        const std::string& upload_id, int number, ByteRange range,
                        const CopyOptions& options) override {
    if (before_copy) before_copy(number);
    ++copies;
    return copier_.copy_part(peer(source), source_key, key, upload_id, number, range, options);
  }

 private:
  const Storage& peer(const Storage& source) const { return &source == this ? inner_ : source; }
  Storage& inner_;
  ChunkedWriter& writer_;
  ServerSideCopier& copier_;
};

// One stack for the whole binary (RGW costs ~17 s to start), built on first
// use and stopped at exit, shared by both suites below.
struct Shared {
  Shared()
      : stack({.redis = true, .postgres = true, .s3 = true, .rgw = true}),
        scratch("bf-rgw"),
        source(testing::open_service(stack, "rgw_source")),
        target(testing::open_service(stack, "rgw_target")),
        small(testing::seeded_bytes(100 * 1024, 1)),
        large(testing::seeded_bytes(12 * kMiB + 4321, 2)),
        medium(testing::seeded_bytes(7 * kMiB + 99, 3)) {
    const Metadata kept{{"content-type", "application/x-fixture"}, {"x-amz-meta-origin", "app"}};
    put_single(*source, "fixture/small", small, kept);
    put_single(*source, "fixture/large-single", large, kept);
    put_multipart(*source, "fixture/large-multi", large, kept);
    put_multipart(*source, "fixture/medium-multi", medium, kept);
  }
  testing::TestStack stack;
  testing::TempDir scratch;
  std::unique_ptr<Storage> source;
  std::unique_ptr<Storage> target;
  std::string small, large, medium;
};

Shared& shared() {
  static Shared instance;
  return instance;
}

class RgwCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("AWS_CA_BUNDLE");
    Shared& s = shared();
    stack_ = &s.stack;
    scratch_ = &s.scratch;
    source_ = s.source.get();
    target_ = s.target.get();
    small_ = &s.small;
    large_ = &s.large;
    medium_ = &s.medium;
  }

  // Thresholds lowered so a 12 MiB object takes the paths a 5 GiB one would.
  static CopyEngineOptions small_thresholds(bool server_side) {
    CopyEngineOptions options;
    options.part_size = 5 * kMiB;
    options.multipart_threshold = 6 * kMiB;
    options.server_side_copy = server_side;
    options.server_side_part_size = 5 * kMiB;
    options.server_side_single_copy_limit = 8 * kMiB;
    options.retry_policy = RetryPolicy({}, 42, [](std::chrono::milliseconds) {});
    return options;
  }

  std::string fresh_key(const std::string& base) const {
    return std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "/" + base;
  }

  // The target holds exactly bytes under key, proven as validate proves it
  // (its HEAD: ETag or blobferry's MD5), and no multipart upload is open.
  void expect_landed(const std::string& key, const std::string& bytes) {
    EXPECT_TRUE(read_all(*target_, key) == bytes) << key << ": bytes differ";
    const auto head = target_->head(key);
    ASSERT_TRUE(head) << key;
    EXPECT_EQ(judge(bytes.size(), md5_base64(bytes), &*head, /*headed=*/true), Verdict::kVerified)
        << key << " ETag " << head->etag << ", stored MD5 '" << metadata_value(head->metadata, kMd5Metadata) << "'";
    EXPECT_EQ(metadata_value(head->metadata, "x-amz-meta-origin"), "app") << key;
    EXPECT_TRUE(dynamic_cast<S3Storage&>(*target_).list_multipart_uploads("").empty()) << "an upload was left open";
  }

  testing::TestStack* stack_ = nullptr;
  testing::TempDir* scratch_ = nullptr;
  Storage* source_ = nullptr;
  Storage* target_ = nullptr;
  const std::string* small_ = nullptr;
  const std::string* large_ = nullptr;
  const std::string* medium_ = nullptr;
};

TEST_F(RgwCopyTest, SmallObjectIsOnePutThatKeepsTheSourcesHeadersExactly) {
  const CopyEngine engine(small_thresholds(false));
  const std::string key = fresh_key("small");
  const CopyResult result = engine.copy({*source_, *target_, "fixture/small", key, std::nullopt, "", ""});
  EXPECT_FALSE(result.server_side);
  EXPECT_EQ(result.md5, md5_base64(*small_));
  expect_landed(key, *small_);
  const auto head = target_->head(key);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->etag, md5_hex(*small_));
  EXPECT_EQ(metadata_value(head->metadata, kMd5Metadata), "") << "the ETag proves it: no blobferry metadata";
}

TEST_F(RgwCopyTest, LargeObjectWithKnownMd5StreamsAsOnePutWithContentMd5) {
  const CopyEngine engine(small_thresholds(false));
  const std::string key = fresh_key("large");
  WatchedTarget watched(*target_);
  const CopyResult result =
      engine.copy({*source_, watched, "fixture/large-multi", key, large_->size(), md5_base64(*large_), ""});
  EXPECT_FALSE(result.server_side);
  EXPECT_EQ(watched.creates, 0) << "one PUT, not multipart";
  expect_landed(key, *large_);
  EXPECT_EQ(target_->head(key)->etag, md5_hex(*large_)) << "a single PUT: its ETag is the MD5";
  EXPECT_EQ(metadata_value(target_->head(key)->metadata, kMd5Metadata), "");
}

TEST_F(RgwCopyTest, MultipartSourceWithUnknownMd5GoesMultipartAndEndsProven) {
  const CopyEngine engine(small_thresholds(false));
  const std::string key = fresh_key("large");
  WatchedTarget watched(*target_);
  const CopyResult result = engine.copy({*source_, watched, "fixture/large-multi", key, std::nullopt, "", ""});
  EXPECT_FALSE(result.server_side);
  EXPECT_EQ(result.md5, md5_base64(*large_));
  EXPECT_EQ(watched.creates, 1);
  expect_landed(key, *large_);
  const auto head = target_->head(key);
  EXPECT_NE(head->etag.find('-'), std::string::npos) << head->etag;
  EXPECT_EQ(metadata_value(head->metadata, kMd5Metadata), md5_base64(*large_));
  // Its stored MD5 is what lets a later run (with the blob table's checksum) skip it.
  EXPECT_EQ(engine.copy({*source_, *target_, "fixture/large-multi", key, large_->size(), md5_base64(*large_), ""})
                .status,
            CopyResult::Status::kSkipped);
}

TEST_F(RgwCopyTest, ServerSideCopyObjectOfASinglePartSourceKeepsItsHeadersExactly) {
  const CopyEngine engine(small_thresholds(true));
  const std::string key = fresh_key("small");
  const CopyResult result =
      engine.copy({*source_, *target_, "fixture/small", key, small_->size(), md5_base64(*small_), ""});
  EXPECT_TRUE(result.server_side);
  expect_landed(key, *small_);
  EXPECT_EQ(target_->head(key)->metadata, source_->head("fixture/small")->metadata);
}

TEST_F(RgwCopyTest, ServerSideCopyObjectOfAMultipartSourceStoresItsMd5) {
  const CopyEngine engine(small_thresholds(true));
  const std::string key = fresh_key("medium");
  WatchedTarget watched(*target_);
  const CopyResult result = engine.copy({*source_, watched, "fixture/medium-multi", key, std::nullopt, "", ""});
  EXPECT_TRUE(result.server_side);
  EXPECT_EQ(result.md5, md5_base64(*medium_));
  EXPECT_EQ(watched.creates, 0) << "one CopyObject";
  expect_landed(key, *medium_);
  EXPECT_EQ(metadata_value(target_->head(key)->metadata, kMd5Metadata), md5_base64(*medium_));
}

TEST_F(RgwCopyTest, ServerSideUploadPartCopyOfSingleAndMultipartSources) {
  const CopyEngine engine(small_thresholds(true));
  for (const char* source_key : {"fixture/large-single", "fixture/large-multi"}) {
    SCOPED_TRACE(source_key);
    const std::string key = fresh_key(source_key);
    WatchedTarget watched(*target_);
    const CopyResult result =
        engine.copy({*source_, watched, source_key, key, large_->size(), md5_base64(*large_), ""});
    EXPECT_TRUE(result.server_side);
    EXPECT_EQ(watched.creates, 1);
    EXPECT_EQ(watched.copies, 3) << "three 5 MiB ranges";
    expect_landed(key, *large_);
    const auto head = target_->head(key);
    EXPECT_NE(head->etag.find("-3"), std::string::npos) << head->etag;
    EXPECT_EQ(metadata_value(head->metadata, kMd5Metadata), md5_base64(*large_));
  }
}

// With the engine's own thresholds (5 GiB) and a target whose CopyObject and
// part limit is 1 MiB under the object, as R2's 5 GiB - 5 MiB is under a
// 5 GiB - 4 MiB object: UploadPartCopy in ranges of at most that limit.
TEST_F(RgwCopyTest, ObjectOverTheTargetsCopyLimitIsCopiedInRangesWithinIt) {
  CopyEngineOptions options;
  options.retry_policy = RetryPolicy({}, 42, [](std::chrono::milliseconds) {});
  const CopyEngine engine(options);
  const std::uint64_t limit = large_->size() - kMiB;
  WatchedTarget watched(*target_);
  watched.limits = SizeLimits{limit, limit, 10'000, limit};
  const std::string key = fresh_key("over-copy-limit");
  const CopyResult result =
      engine.copy({*source_, watched, "fixture/large-single", key, large_->size(), md5_base64(*large_), ""});
  EXPECT_TRUE(result.server_side);
  EXPECT_EQ(watched.creates, 1) << "one CopyObject over the limit instead of a multipart upload";
  EXPECT_EQ(watched.copies, 2) << "a range of the limit and the rest";
  expect_landed(key, *large_);
}

// RGW ignores x-amz-copy-source-if-match on UploadPartCopy: without the HEAD
// after the last part, parts of two versions would complete as one object.
TEST_F(RgwCopyTest, SourceChangedDuringUploadPartCopyStartsAgainAndNeverMixesVersions) {
  const CopyEngine engine(small_thresholds(true));
  const std::string source_key = fresh_key("changing");
  const std::string old_bytes = testing::seeded_bytes(12 * kMiB, 7);
  const std::string new_bytes = testing::seeded_bytes(12 * kMiB, 8);
  put_single(*source_, source_key, old_bytes, {{"x-amz-meta-origin", "app"}});
  WatchedTarget watched(*target_);
  int changes = 0;
  watched.before_copy = [&](int part) {
    if (part == 2 && changes++ == 0) put_single(*source_, source_key, new_bytes, {{"x-amz-meta-origin", "app"}});
  };
  const std::string key = fresh_key("changed");
  const CopyResult result = engine.copy({*source_, watched, source_key, key, std::nullopt, "", ""});
  EXPECT_EQ(changes, 2) << "the second run's part 2 saw nothing change";
  EXPECT_EQ(watched.creates, 2) << "started again from the source's HEAD";
  EXPECT_GE(watched.aborts, 1) << "the mixed upload was aborted, not completed";
  EXPECT_EQ(result.md5, md5_base64(new_bytes));
  expect_landed(key, new_bytes);
}

// RGW honours only its own x-amz-copy-if-match on CopyObject.
TEST_F(RgwCopyTest, SourceChangedBeforeCopyObjectIsRefusedAndStartsAgain) {
  const CopyEngine engine(small_thresholds(true));
  const std::string source_key = fresh_key("changing");
  put_single(*source_, source_key, "version one", {{"x-amz-meta-origin", "app"}});
  WatchedTarget watched(*target_);
  int changes = 0;
  watched.before_copy = [&](int) {
    if (changes++ == 0) put_single(*source_, source_key, "version two!", {{"x-amz-meta-origin", "app"}});
  };
  const std::string key = fresh_key("changed");
  const CopyResult result = engine.copy({*source_, watched, source_key, key, std::nullopt, "", ""});
  EXPECT_EQ(result.md5, md5_base64("version two!"));
  expect_landed(key, "version two!");
}

// --- a blob table on RGW, migrated with the CLI as a user would ---------------

class RgwMigrationTest : public RgwCopyTest {
 protected:
  // Rows on rgw_source: small single-part objects and multipart ones ("…-N",
  // checksum = base64 MD5 as ActiveStorage stores it).
  std::vector<testing::SeedRow> seed(testing::BlobFixture& table) {
    std::vector<testing::SeedRow> rows;
    const std::string now = testing::utc_text(std::chrono::system_clock::now());
    for (int i = 0; i < 8; ++i) {
      testing::SeedRow row;
      row.key = testing::random_blob_key(table.rng());
      const bool multipart = i % 3 == 0;
      const std::string bytes = testing::random_bytes(multipart ? 6 * kMiB + 1000 * i : 1000 + 517 * i, table.rng());
      if (multipart) {
        const std::string etag = put_multipart(*source_, row.key, bytes);
        EXPECT_NE(etag.find('-'), std::string::npos) << etag;
      } else {
        put_single(*source_, row.key, bytes);
      }
      row.byte_size = bytes.size();
      row.checksum = md5_base64(bytes);
      row.created_at = now;
      row.service_name = "rgw_source";
      rows.push_back(row);
    }
    table.insert(rows);
    return rows;
  }

  void migrate_and_switch(const std::string& name, const std::string& to) {
    const std::string url = testing::BlobFixture::create_database(stack_->database_url(), name);
    testing::BlobFixture table(url, testing::BlobSchema::kRails7);
    const auto rows = seed(table);
    testing::BlobferryCli cli(*stack_, scratch_->path());
    cli.set_env("DATABASE_URL", url);
    const testing::CliResult migrated = cli.run({"migrate", "--from", "rgw_source", "--to", to, "--switch"});
    EXPECT_EQ(migrated.exit_code, 0) << migrated.all();
    for (const auto& [id, service] : table.service_names()) EXPECT_EQ(service, to) << "blob " << id;
    // validate again, as a separate run would: every object provable by its HEAD.
    auto target = testing::open_service(*stack_, to);
    for (const auto& row : rows) {
      const auto head = target->head(row.key);
      ASSERT_TRUE(head) << row.key;
      EXPECT_EQ(judge(row.byte_size, row.checksum, &*head, true), Verdict::kVerified) << row.key << " " << head->etag;
    }
  }
};

TEST_F(RgwMigrationTest, BlobsWithMultipartObjectsFromRgwToS3rverValidateAndSwitch) {
  migrate_and_switch("rgw_to_s3rver", "target");
}

TEST_F(RgwMigrationTest, BlobsWithMultipartObjectsWithinRgwServerSideValidateAndSwitch) {
  migrate_and_switch("rgw_within", "rgw_target");
}

}  // namespace
}  // namespace blobferry
