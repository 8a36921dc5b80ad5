// `blobferry services` against the dev stack, and the one-line, exit-2 errors
// a new user gets for a broken storage.yml — never with a secret in them.
#include <fstream>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "common/db/pg_connection.h"
#include "tests/support/blobferry_cli.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_stack.h"

using blobferry::testing::BlobferryCli;
using blobferry::testing::CliResult;
using blobferry::testing::TestStack;

namespace {

constexpr const char* kSecret = "Sup3rSecretKey/ShouldNeverPrint+42";

class ServicesCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { stack_ = std::make_unique<TestStack>(blobferry::testing::StackOptions{.redis = false, .postgres = true, .s3 = true}); }
  static void TearDownTestSuite() { stack_.reset(); }

  void SetUp() override {
    scratch_ = std::make_unique<blobferry::testing::TempDir>();
    cli_ = std::make_unique<BlobferryCli>(*stack_, scratch_->path());
  }

  // Writes a storage.yml into the scratch folder and returns its path.
  std::string write_config(const std::string& text) {
    const std::string path = scratch_->path() + "/storage.yml";
    std::ofstream(path) << text;
    return path;
  }

  CliResult services_with(const std::string& yaml, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"services", "--storage-config", write_config(yaml)};
    args.insert(args.end(), extra.begin(), extra.end());
    return cli_->run(args);
  }

  static void expect_one_line_error(const CliResult& r, const std::string& fragment) {
    EXPECT_EQ(r.exit_code, 2) << r.all();
    EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
    EXPECT_EQ(r.all().find(kSecret), std::string::npos) << "secret leaked: " << r.all();
  }

  static std::unique_ptr<TestStack> stack_;
  std::unique_ptr<blobferry::testing::TempDir> scratch_;
  std::unique_ptr<BlobferryCli> cli_;
};

std::unique_ptr<TestStack> ServicesCli::stack_;

}  // namespace

TEST_F(ServicesCli, ListsAndChecksTheDevStackServices) {
  const CliResult r = cli_->run({"services"});
  ASSERT_EQ(r.exit_code, 0) << r.all();
  for (const char* name : {"source", "target", "local"}) EXPECT_NE(r.out.find(name), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(stack_->env("S3_SOURCE_ENDPOINT")), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("FAILED"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("S3RVER"), std::string::npos) << "the secret of the dev stack was printed: " << r.out;
}

TEST_F(ServicesCli, CountsBlobsPerServiceName) {
  const std::string url = stack_->database_url();
  const std::string sql =
      "CREATE TABLE IF NOT EXISTS active_storage_blobs (id bigserial primary key, key varchar not null, "
      "filename varchar, content_type varchar, metadata text, service_name varchar not null, "
      "byte_size bigint not null, checksum varchar, created_at timestamp not null default now())";
  const std::string insert =
      "INSERT INTO active_storage_blobs (key, service_name, byte_size) VALUES "
      "('k1','source',10),('k2','source',20),('k3','target',5)";
  blobferry::PgConnection db(url);
  db.exec(sql);
  db.exec("TRUNCATE active_storage_blobs");
  db.exec(insert);
  const CliResult r = cli_->run({"services", "--no-check", "--database-url", url});
  ASSERT_EQ(r.exit_code, 0) << r.all();
  EXPECT_NE(r.out.find("source"), std::string::npos);
  EXPECT_NE(r.out.find("2 blobs"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 blobs"), std::string::npos) << r.out;
}

TEST_F(ServicesCli, UnreachableServiceExitsOneAndNamesIt) {
  const CliResult r = services_with(std::string(R"(
dead:
  service: S3
  bucket: nothing
  endpoint: http://127.0.0.1:1
  region: us-east-1
  force_path_style: true
  access_key_id: AKIAEXAMPLEEXAMPLE12
  secret_access_key: )") + kSecret + "\n");
  EXPECT_EQ(r.exit_code, 1) << r.all();
  EXPECT_NE(r.out.find("FAILED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("127.0.0.1:1"), std::string::npos) << r.out;
  EXPECT_EQ(r.all().find(kSecret), std::string::npos) << r.all();
}

TEST_F(ServicesCli, MissingBucketAndWrongKeyAreReported) {
  const std::string endpoint = stack_->env("S3_SOURCE_ENDPOINT");
  const CliResult r = services_with("nobucket:\n  service: S3\n  bucket: does-not-exist\n  endpoint: " + endpoint +
                                    "\n  region: us-east-1\n  force_path_style: true\n  access_key_id: S3RVER\n"
                                    "  secret_access_key: S3RVER\n"
                                    "badkey:\n  service: S3\n  bucket: source\n  endpoint: " + endpoint +
                                    "\n  region: us-east-1\n  force_path_style: true\n  access_key_id: WRONGKEY\n"
                                    "  secret_access_key: " + kSecret + "\n");
  EXPECT_EQ(r.exit_code, 1) << r.all();
  EXPECT_NE(r.out.find("does-not-exist"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("credentials rejected"), std::string::npos) << r.out;
  EXPECT_EQ(r.all().find(kSecret), std::string::npos) << r.all();
}

TEST_F(ServicesCli, MirrorAndUnsupportedServicesAreExplained) {
  const CliResult r = services_with(
      "a:\n  service: Disk\n  root: " + scratch_->path() + "/a\n"
      "b:\n  service: Disk\n  root: " + scratch_->path() + "/b\n"
      "both:\n  service: Mirror\n  primary: a\n  mirrors: [b]\n"
      "gcs:\n  service: GCS\n  bucket: x\n");
  EXPECT_NE(r.out.find("primary a"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("not support"), std::string::npos) << r.out;
}

TEST_F(ServicesCli, YamlSyntaxErrorIsOneLineWithTheFile) {
  const CliResult r = services_with("source:\n  service: S3\n  bucket: [unclosed\n");
  expect_one_line_error(r, "storage.yml");
}

TEST_F(ServicesCli, UnsupportedErbTellsToUseAnEnvironmentVariable) {
  const CliResult r = services_with(
      "s3:\n  service: S3\n  bucket: b\n  secret_access_key: <%= Rails.application.credentials.dig(:aws, :secret) %>\n");
  expect_one_line_error(r, "ENV");
}

TEST_F(ServicesCli, MissingFileNamesThePathAndTheOption) {
  const CliResult r = cli_->run({"services", "--storage-config", scratch_->path() + "/nope.yml"});
  expect_one_line_error(r, "nope.yml");
  EXPECT_NE(r.err.find("--storage-config"), std::string::npos) << r.err;
}

TEST_F(ServicesCli, UnknownServiceListsTheKnownOnes) {
  cli_->set_env("REDIS_URL", "redis://127.0.0.1:1/0");
  const CliResult r = cli_->run({"enqueue", "--migration", "m", "--from", "nosuch", "--to", "target"});
  expect_one_line_error(r, "nosuch");
  EXPECT_NE(r.err.find("source"), std::string::npos) << r.err;
}

TEST_F(ServicesCli, GlobalOptionsMayFollowTheSubcommand) {
  const CliResult r = cli_->run({"services", "--no-check", "--log-format", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.all();
  const CliResult bad = cli_->run({"services", "--log-format", "xml"});
  EXPECT_EQ(bad.exit_code, 2) << bad.all();
}

TEST_F(ServicesCli, PrintsTheProviderProfileOfEachS3Service) {
  const CliResult r = services_with(
      "r2:\n  service: S3\n  bucket: b\n  endpoint: https://abc.r2.cloudflarestorage.com\n"
      "  access_key_id: AKID\n  secret_access_key: " + std::string(kSecret) + "\n"
      "spaces:\n  service: S3\n  bucket: b\n  endpoint: https://files.example.com\n  provider: spaces\n"
      "  access_key_id: AKID\n  secret_access_key: " + std::string(kSecret) + "\n"
      "odd:\n  service: S3\n  bucket: b\n  provider: azure\n",
      {"--no-check"});
  EXPECT_NE(r.out.find("provider profiles"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("r2 (single PUT"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[inferred]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("spaces (single PUT"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1500 req/s per IP address"), std::string::npos) << r.out;
  EXPECT_EQ(r.all().find(kSecret), std::string::npos) << r.all();
}

TEST_F(ServicesCli, UnknownProviderIsAOneLineErrorListingTheKnownOnes) {
  const std::string path = write_config(
      "odd:\n  service: S3\n  bucket: b\n  provider: azure\n  access_key_id: AKID\n  secret_access_key: " +
      std::string(kSecret) + "\ntarget:\n  service: Disk\n  root: " + scratch_->path() + "/t\n");
  const CliResult r = cli_->run({"migrate", "--storage-config", path, "--from", "odd", "--to", "target", "--dry-run"});
  expect_one_line_error(r, "unknown `provider: azure`; use one of aws, r2, spaces, b2, minio, ceph, wasabi, gcs, other");
}
