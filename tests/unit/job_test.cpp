// Job JSON: round trips, compactness, and every malformed form rejected clearly.
#include "common/queue/job.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

#include "common/base/error.h"

namespace blobferry {
namespace {

Job realistic_copy_job() {
  Job job;
  job.id = new_job_id();
  job.migration = "spaces-to-r2-prd";  // 16 characters
  job.source = "digitalocean";
  job.target = "cloudflare";
  JobObject object;
  object.key = "xk3v9qz0b7m2c8d1f4g6h5j7l0np";  // 28 characters, like ActiveStorage's
  object.size = 2'483'921'117ULL;
  object.checksum = "nhB9nTcrtoJr2B01QqQZ1g==";
  object.content_type = "image/jpeg";
  object.blob_id = 18'204'332'117LL;
  job.objects.push_back(object);
  return job;
}

Job listing_job() {
  Job job;
  job.id = "00000000000000ff";
  job.type = JobType::kListing;
  job.migration = "m";
  job.source = "src";
  job.target = "dst";
  job.listing = {.prefix = "photos/a", .start_after = "photos/a0", .continuation_token = "token+/=",
                 .delimiter_depth = 2, .end_at = "photos/am"};
  return job;
}

// Expects decode_job to reject `payload` with a message containing `fragment`.
void expect_malformed(const std::string& payload, const std::string& fragment) {
  try {
    decode_job(payload);
    ADD_FAILURE() << "accepted: " << payload;
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kPermanent) << payload;
    EXPECT_EQ(error.reason(), "malformed_job") << payload;
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos)
        << "message \"" << error.what() << "\" lacks \"" << fragment << "\"";
  }
}

TEST(Job, CopyJobRoundTrips) {
  Job job = realistic_copy_job();
  job.objects[0].target_key = "attachments/2024/photo.jpg";
  job.attempts = 2;
  job.recoveries = 1;
  EXPECT_EQ(decode_job(encode_job(job)), job);
}

TEST(Job, BatchRoundTripsWithUnknownFieldsOmitted) {
  Job job = realistic_copy_job();
  JobObject bare;
  bare.key = "only/a/key";
  job.objects.push_back(bare);
  std::string payload = encode_job(job);
  EXPECT_EQ(decode_job(payload), job);
  // The bare object carries its key and nothing else.
  EXPECT_NE(payload.find(R"({"k":"only/a/key"})"), std::string::npos) << payload;
  EXPECT_EQ(payload.find("\"a\":"), std::string::npos) << "zero attempts must be omitted: " << payload;
}

TEST(Job, ListingJobRoundTrips) {
  Job job = listing_job();
  std::string payload = encode_job(job);
  EXPECT_EQ(decode_job(payload), job);
  EXPECT_EQ(decode_job(payload).listing.end_at, "photos/am");
  EXPECT_EQ(payload.find("\"o\""), std::string::npos) << payload;
}

TEST(Job, KeysWithAnyCharactersRoundTrip) {
  Job job = realistic_copy_job();
  job.objects[0].key = "dir/\"quoted\"\\back\nnew line/\xC3\xA9t\xC3\xA9 %2F*?{x}";
  EXPECT_EQ(decode_job(encode_job(job)).objects[0].key, job.objects[0].key);
}

TEST(Job, QueuedSingleObjectJobIsWellUnder300Bytes) {
  std::string payload = encode_job(realistic_copy_job());
  EXPECT_LT(payload.size(), 300u) << payload;
  EXPECT_LT(payload.size(), 220u) << payload;
}

TEST(Job, PayloadNeverMentionsCredentialsFields) {
  std::string payload = encode_job(realistic_copy_job());
  for (const char* word : {"secret", "access_key", "token", "password"}) {
    EXPECT_EQ(payload.find(word), std::string::npos) << payload;
  }
}

TEST(Job, NewJobIdsAreElevenUrlSafeCharactersAndDistinct) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    std::string id = new_job_id();
    ASSERT_EQ(id.size(), 11u);
    EXPECT_EQ(id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              std::string::npos)
        << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(Job, RejectsNotJson) { expect_malformed("{not json", "not JSON"); }
TEST(Job, RejectsEmptyPayload) { expect_malformed("", "not JSON"); }
TEST(Job, RejectsNonObject) { expect_malformed("[1,2]", "not a JSON object"); }
TEST(Job, RejectsMissingId) {
  expect_malformed(R"({"m":"x","s":"a","t":"b","o":[{"k":"k"}]})", "missing field \"i\"");
}
TEST(Job, RejectsMissingMigration) {
  expect_malformed(R"({"i":"1","s":"a","t":"b","o":[{"k":"k"}]})", "missing field \"m\"");
}
TEST(Job, RejectsMissingTarget) {
  expect_malformed(R"({"i":"1","m":"x","s":"a","o":[{"k":"k"}]})", "missing field \"t\"");
}
TEST(Job, RejectsWrongTypeOfService) {
  expect_malformed(R"({"i":"1","m":"x","s":5,"t":"b","o":[{"k":"k"}]})", "\"s\" must be a string");
}
TEST(Job, RejectsEmptySource) {
  expect_malformed(R"({"i":"1","m":"x","s":"","t":"b","o":[{"k":"k"}]})", "\"s\" is empty");
}
TEST(Job, RejectsCopyJobWithoutObjects) {
  expect_malformed(R"({"i":"1","m":"x","s":"a","t":"b"})", "without field \"o\"");
}
TEST(Job, RejectsObjectsThatAreNotAnArray) {
  expect_malformed(R"({"i":"1","m":"x","s":"a","t":"b","o":{"k":"k"}})", "must be an array");
}
TEST(Job, RejectsEmptyBatch) {
  expect_malformed(R"({"i":"1","m":"x","s":"a","t":"b","o":[]})", "\"o\" (objects) is empty");
}
TEST(Job, RejectsEmptyKey) {
  expect_malformed(R"({"i":"1","m":"x","s":"a","t":"b","o":[{"k":""}]})", "object 0: field \"k\" is empty");
}
TEST(Job, RejectsMissingKeyNamingTheObject) {
  expect_malformed(R"({"i":"1","m":"x","s":"a","t":"b","o":[{"k":"a"},{"n":1}]})",
                   "object 1: missing field \"k\"");
}
TEST(Job, RejectsEmptyTargetKey) {
  expect_malformed(R"({"i":"1","m":"x","s":"a","t":"b","o":[{"k":"a","tk":""}]})", "\"tk\" is empty");
}
TEST(Job, RejectsNegativeSize) {
  expect_malformed(R"({"i":"1","m":"x","s":"a","t":"b","o":[{"k":"a","n":-4}]})", "(size)");
}
TEST(Job, RejectsSizeAsString) {
  expect_malformed(R"({"i":"1","m":"x","s":"a","t":"b","o":[{"k":"a","n":"4"}]})", "(size)");
}
TEST(Job, RejectsChecksumThatIsNotBase64Md5) {
  expect_malformed(R"({"i":"1","m":"x","s":"a","t":"b","o":[{"k":"a","c":"9e107d9d372bb6826bd81d3542a419d6"}]})",
                   "(checksum) must be a base64 MD5");
}
TEST(Job, RejectsFractionalBlobId) {
  expect_malformed(R"({"i":"1","m":"x","s":"a","t":"b","o":[{"k":"a","b":1.5}]})", "(blob id)");
}
TEST(Job, RejectsUnknownType) {
  expect_malformed(R"({"i":"1","ty":"delete","m":"x","s":"a","t":"b"})", "unknown job type \"delete\"");
}
TEST(Job, RejectsNegativeAttempts) {
  expect_malformed(R"({"i":"1","m":"x","s":"a","t":"b","o":[{"k":"k"}],"a":-1})", "\"a\" must be a non-negative");
}
TEST(Job, RejectsTooDeepListing) {
  expect_malformed(R"({"i":"1","ty":"list","m":"x","s":"a","t":"b","dd":99})", "delimiter depth");
}

TEST(Job, RejectsOversizedBatch) {
  std::string payload = R"({"i":"1","m":"x","s":"a","t":"b","o":[)";
  for (std::size_t i = 0; i <= kMaxBatchObjects; ++i) payload += (i ? ",{\"k\":\"k\"}" : "{\"k\":\"k\"}");
  payload += "]}";
  expect_malformed(payload, "exceeds the limit of 1000");
}

TEST(Job, AcceptsFullBatchAndIgnoresUnknownFields) {
  std::string payload = R"({"i":"1","future":{"x":1},"m":"x","s":"a","t":"b","o":[)";
  for (std::size_t i = 0; i < kMaxBatchObjects; ++i) payload += (i ? ",{\"k\":\"k\"}" : "{\"k\":\"k\"}");
  payload += "]}";
  EXPECT_EQ(decode_job(payload).objects.size(), kMaxBatchObjects);
}

TEST(Job, FailureKeyAndRetryJobForBatchItem) {
  Job job = realistic_copy_job();
  JobObject second;
  second.key = "second";
  job.objects.push_back(second);
  job.attempts = 4;
  job.recoveries = 2;
  EXPECT_EQ(failure_key(job, 1), "second");
  Job retry = retry_job_for(job, 1);
  ASSERT_EQ(retry.objects.size(), 1u);
  EXPECT_EQ(retry.objects[0].key, "second");
  EXPECT_EQ(retry.attempts, 0);
  EXPECT_EQ(retry.recoveries, 0);
  EXPECT_NE(retry.id, job.id);
  EXPECT_EQ(retry.source, job.source);
  EXPECT_EQ(failure_key(listing_job(), 0), "listing:photos/a after photos/a0");
  Job whole_prefix = listing_job();
  whole_prefix.listing.start_after.clear();
  EXPECT_EQ(failure_key(whole_prefix, 0), "listing:photos/a");
  EXPECT_EQ(retry_job_for(listing_job(), 0).listing, listing_job().listing);
}

TEST(Job, FindObjectIndexByFailureKey) {
  Job job = realistic_copy_job();
  JobObject second;
  second.key = "second";
  job.objects.push_back(second);
  EXPECT_EQ(find_object_index(job, "second"), std::optional<std::size_t>(1));
  EXPECT_EQ(find_object_index(job, job.objects[0].key), std::optional<std::size_t>(0));
  EXPECT_EQ(find_object_index(job, "absent"), std::nullopt);
  EXPECT_EQ(find_object_index(listing_job(), failure_key(listing_job(), 0)), std::optional<std::size_t>(0));
  EXPECT_EQ(find_object_index(listing_job(), "listing:photos/a"), std::nullopt);
}

TEST(Job, UtcTimestampIsIso8601) {
  using namespace std::chrono;
  EXPECT_EQ(utc_timestamp(system_clock::time_point{seconds{1714564800}}), "2024-05-01T12:00:00Z");
}

TEST(Job, MigrationNamesAreValidatedAtTheBoundary) {
  EXPECT_NO_THROW(validate_migration_name("spaces-to-r2_2024.v1"));
  for (const char* bad : {"", "a*b", "a{b}", "has space", "slash/name", "colon:name"}) {
    try {
      validate_migration_name(bad);
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const Error& error) {
      EXPECT_EQ(error.kind(), ErrorKind::kConfig);
      EXPECT_NE(std::string(error.what()).find("letters, digits"), std::string::npos);
    }
  }
  EXPECT_THROW(validate_migration_name(std::string(65, 'a')), Error);
  EXPECT_NO_THROW(validate_migration_name(std::string(64, 'a')));
}

}  // namespace
}  // namespace blobferry

namespace blobferry {
namespace {

Job part_job() {
  Job job = realistic_copy_job();
  job.type = JobType::kPart;
  job.objects[0].size = 100;
  job.part = PartSpec{"2~upload/id+=", 3, 4, 30, "0123456789abcdef0123456789abcdef"};
  return job;
}

TEST(Job, PartJobRoundTrips) {
  const Job job = part_job();
  const std::string payload = encode_job(job);
  EXPECT_NE(payload.find(R"("ty":"part")"), std::string::npos) << payload;
  EXPECT_EQ(decode_job(payload), job);
}

TEST(Job, PartJobFieldsAreOnlyWrittenForPartJobs) {
  const std::string payload = encode_job(realistic_copy_job());
  EXPECT_EQ(payload.find("\"pn\""), std::string::npos) << payload;
  EXPECT_EQ(payload.find("\"u\""), std::string::npos) << payload;
}

TEST(Job, RejectsPartJobsThatDoNotDescribeARangeOfTheirObject) {
  const std::string head = R"({"i":"1","ty":"part","m":"x","s":"a","t":"b",)";
  const std::string one = R"("o":[{"k":"k","n":100}],)";
  expect_malformed(head + one + R"("pn":1,"pc":4,"ps":30})", "missing field \"u\"");
  expect_malformed(head + one + R"("u":"id","pn":5,"pc":4,"ps":30})", "part number");
  expect_malformed(head + one + R"("u":"id","pn":0,"pc":4,"ps":30})", "part number");
  expect_malformed(head + one + R"("u":"id","pn":1,"pc":0,"ps":30})", "part count");
  expect_malformed(head + one + R"("u":"id","pn":1,"pc":10001,"ps":30})", "part count");
  // 3 parts of 30 bytes cover 90 of 100; 5 parts of 30 leave the fifth empty.
  expect_malformed(head + one + R"("u":"id","pn":1,"pc":3,"ps":30})", "does not cover");
  expect_malformed(head + one + R"("u":"id","pn":1,"pc":5,"ps":30})", "does not cover");
  expect_malformed(head + one + R"("u":"id","pn":1,"pc":4,"ps":0})", "does not cover");
  expect_malformed(head + one + R"("u":"id","pn":1,"pc":4})", "without field \"ps\"");
  expect_malformed(head + R"("o":[{"k":"k"}],"u":"id","pn":1,"pc":4,"ps":30})", "without the object's size");
  expect_malformed(head + R"("o":[{"k":"k","n":100},{"k":"l","n":1}],"u":"id","pn":1,"pc":4,"ps":30})",
                   "part job with 2 objects");
}

TEST(Job, FailureKeyOfAPartJobIsItsObjectsKey) {
  const Job job = part_job();
  EXPECT_EQ(failure_key(job, 0), job.objects[0].key);
  EXPECT_EQ(retry_job_for(job, 0).part, job.part);
}

}  // namespace
}  // namespace blobferry
