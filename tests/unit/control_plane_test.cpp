// Pure parts of the control plane: validation verdicts, the listing split,
// the stored plan and its checks.
#include <gtest/gtest.h>

#include "common/base/error.h"
#include "common/queue/memory_queue.h"
#include "enqueuer/sources/blobs/blob_table.h"
#include "enqueuer/sources/listing/listing_source.h"
#include "enqueuer/planning/migration_plan.h"
#include "enqueuer/verification/validator.h"

using namespace blobferry;

namespace {

ObjectInfo object(std::uint64_t size, std::string etag, Metadata metadata = {}) {
  ObjectInfo info;
  info.key = "k";
  info.size = size;
  info.etag = std::move(etag);
  info.metadata = std::move(metadata);
  return info;
}

// MD5("The quick brown fox jumps over the lazy dog")
constexpr const char* kHex = "9e107d9d372bb6826bd81d3542a419d6";
constexpr const char* kBase64 = "nhB9nTcrtoJr2B01QqQZ1g==";

MigrationPlan listing_plan(const std::string& prefix) {
  MigrationPlan plan;
  plan.migration = "m";
  plan.source = "listing";
  plan.from = "a";
  plan.to = "b";
  plan.prefix = prefix;
  return plan;
}

}  // namespace

TEST(Judge, MissingObject) { EXPECT_EQ(judge(43, kBase64, nullptr), Verdict::kMissing); }

TEST(Judge, SinglePartEtagIsTheMd5) {
  const ObjectInfo same = object(43, kHex);
  EXPECT_EQ(judge(43, kBase64, &same), Verdict::kVerified);
  const ObjectInfo upper = object(43, "9E107D9D372BB6826BD81D3542A419D6");
  EXPECT_EQ(judge(43, kBase64, &upper), Verdict::kVerified);
  // A listing cannot tell a changed object from an ETag scheme that is not
  // MD5 (encryption, some servers' multipart): a HEAD decides.
  const ObjectInfo other = object(43, "00000000000000000000000000000000");
  EXPECT_EQ(judge(43, kBase64, &other), Verdict::kNeedsHead);
  EXPECT_EQ(judge(43, kBase64, &other, /*headed=*/true), Verdict::kChecksumMismatch);
}

TEST(Judge, SizeIsCheckedFirst) {
  const ObjectInfo shorter = object(42, kHex);
  EXPECT_EQ(judge(43, kBase64, &shorter), Verdict::kSizeMismatch);
}

TEST(Judge, MultipartEtagNeedsTheStoredMd5) {
  const ObjectInfo multipart = object(43, "0123456789abcdef0123456789abcdef-3");
  EXPECT_EQ(judge(43, kBase64, &multipart), Verdict::kNeedsHead);
  EXPECT_EQ(judge(43, kBase64, &multipart, /*headed=*/true), Verdict::kNeedsHead);  // only --deep can tell
  const ObjectInfo stored = object(43, "0123456789abcdef0123456789abcdef-3", {{"x-amz-meta-blobferry-md5", kBase64}});
  EXPECT_EQ(judge(43, kBase64, &stored), Verdict::kVerified);
  const ObjectInfo wrong = object(43, "0123456789abcdef0123456789abcdef-3",
                                  {{"x-amz-meta-blobferry-md5", "AAAAAAAAAAAAAAAAAAAAAA=="}});
  EXPECT_EQ(judge(43, kBase64, &wrong), Verdict::kChecksumMismatch);
}

// SSE-KMS and SSE-C give single-part objects 32-hex ETags that are not
// their MD5: such an object is unverifiable from its HEAD, never "differs".
TEST(Judge, EncryptedObjectsEtagIsNoMd5) {
  ObjectInfo encrypted = object(43, "00000000000000000000000000000000");
  encrypted.etag_is_md5 = false;
  EXPECT_EQ(judge(43, kBase64, &encrypted, /*headed=*/true), Verdict::kNeedsHead);
  encrypted.metadata = {{"x-amz-meta-blobferry-md5", kBase64}};
  EXPECT_EQ(judge(43, kBase64, &encrypted, /*headed=*/true), Verdict::kVerified);
}

TEST(Judge, UnknownChecksumComparesSizeOnly) {
  const ObjectInfo any = object(7, "whatever");
  EXPECT_EQ(judge(7, "", &any), Verdict::kVerified);
}

TEST(SplitListing, CoversTheKeySpaceInContiguousRanges) {
  const auto jobs = ListingSource::split_listing(listing_plan("p/"));
  ASSERT_EQ(jobs.size(), 37u);
  EXPECT_EQ(jobs.front().listing.start_after, "");
  EXPECT_EQ(jobs.front().listing.end_at, "p/0");
  EXPECT_EQ(jobs.back().listing.start_after, "p/z");
  EXPECT_EQ(jobs.back().listing.end_at, "");
  for (std::size_t i = 1; i < jobs.size(); ++i) {
    EXPECT_EQ(jobs[i].listing.start_after, jobs[i - 1].listing.end_at) << "gap or overlap before range " << i;
    EXPECT_EQ(jobs[i].listing.prefix, "p/");
    EXPECT_EQ(jobs[i].type, JobType::kListing);
  }
  // Every key lands in exactly one range (start_after < key <= end_at).
  for (const std::string key : {"p/0", "p/00", "p/A", "p/~x", "p/zz", "p/\xc3\xa9t\xc3\xa9", "p//x", "p/"}) {
    int homes = 0;
    for (const Job& job : jobs) {
      const auto& l = job.listing;
      if (key > l.start_after && (l.end_at.empty() || key <= l.end_at)) ++homes;
    }
    EXPECT_EQ(homes, 1) << key;
  }
}

TEST(MigrationPlanJson, RoundTripsWithoutTheShard) {
  MigrationPlan plan;
  plan.migration = "m1";
  plan.from = "old";
  plan.to = "new";
  plan.filter.key_prefix = "ab";
  plan.filter.id_range = std::make_pair(10LL, 20LL);
  plan.filter.shard_index = 1;
  plan.filter.shard_count = 4;
  plan.started_at = 1700000000;
  const MigrationPlan back = MigrationPlan::from_json(plan.to_json());
  EXPECT_EQ(back.from, "old");
  EXPECT_EQ(back.to, "new");
  EXPECT_EQ(back.filter.key_prefix, "ab");
  EXPECT_EQ(back.filter.id_range->second, 20);
  EXPECT_EQ(back.filter.shard_count, 1);  // a shard is one enqueuer's slice, not the migration's
  EXPECT_EQ(back.started_at, 1700000000);
  EXPECT_THROW(MigrationPlan::from_json("{not json"), Error);
}

TEST(MigrationPlanJson, AnotherPlanUnderTheSameNameIsRefused) {
  MemoryQueue queue("m");
  MigrationPlan plan = listing_plan("x/");
  const MigrationPlan saved = save_or_check_plan(queue, plan);
  EXPECT_GT(saved.started_at, 0);
  EXPECT_EQ(save_or_check_plan(queue, plan).started_at, saved.started_at);  // the same plan resumes
  plan.to = "elsewhere";
  try {
    save_or_check_plan(queue, plan);
    FAIL() << "a different plan under the same name was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find("another --migration name"), std::string::npos) << e.what();
  }
}

TEST(JobTargetAbsent, RoundTripsAndStaysOffWhenUnset) {
  Job job;
  job.id = new_job_id();
  job.migration = "m";
  job.source = "a";
  job.target = "b";
  JobObject object;
  object.key = "k";
  object.target_absent = true;
  job.objects.push_back(object);
  const std::string encoded = encode_job(job);
  EXPECT_NE(encoded.find("\"ta\":1"), std::string::npos) << encoded;
  EXPECT_TRUE(decode_job(encoded).objects.at(0).target_absent);
  job.objects[0].target_absent = false;
  const std::string plain = encode_job(job);
  EXPECT_EQ(plain.find("ta"), std::string::npos) << plain;
  EXPECT_FALSE(decode_job(plain).objects.at(0).target_absent);
  std::string wrong = encoded;
  wrong.replace(wrong.find("\"ta\":1"), 6, "\"ta\":\"yes\"");
  EXPECT_THROW(decode_job(wrong), Error);
}
