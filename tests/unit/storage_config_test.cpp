// StorageConfig: a realistic storage.yml, AWS_* fallbacks, lenient per-service problems, YAML errors, masking.
#include "common/storage/storage_config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "common/base/error.h"
#include "common/storage/storage_factory.h"
#include "tests/support/fixed_env.h"
#include "tests/support/config_error_of.h"

namespace blobferry {
namespace {

using testing::error_of;
using testing::fixed_env;

const char kRealisticYaml[] = R"(# Rails storage.yml as apps write it
test:
  service: Disk
  root: <%= Rails.root.join("tmp/storage") %>

local:
  service: Disk
  root: <%= Rails.root.join("storage") %>

paperclip:
  service: Disk
  root: /mnt/nfs/public/system
  layout: plain

amazon:
  service: S3
  access_key_id: <%= ENV["AWS_ACCESS_KEY_ID"] %>
  secret_access_key: <%= ENV.fetch("AWS_SECRET_ACCESS_KEY") %>
  region: us-west-2
  bucket: acme-<%= ENV.fetch("RAILS_ENV", "development") %>
  public: true
  http_open_timeout: 5
  http_read_timeout: 120
  retry_limit: 3
  upload:
    cache_control: "private, max-age=<%= 1.day.to_i rescue 86400 %>"
)";

// The same, without the unsupported line, plus the other providers.
const char kProvidersYaml[] = R"(
defaults: &defaults
  service: S3
  force_path_style: false

local:
  service: Disk
  root: <%= Rails.root.join("storage") %>

amazon:
  <<: *defaults
  access_key_id: <%= ENV["AWS_ACCESS_KEY_ID"] %>
  secret_access_key: <%= ENV.fetch("AWS_SECRET_ACCESS_KEY") %>
  region: us-west-2
  bucket: acme-production
  public: true
  http_open_timeout: 5
  http_read_timeout: 120
  retry_limit: 3
  upload:
    cache_control: "private, max-age=86400"
    content_disposition: inline
    content_type: ignored/by-blobferry
    server_side_encryption: AES256
    metadata:
      Owner: media-team
      app: acme

r2:
  service: S3
  endpoint: https://0123456789abcdef.r2.cloudflarestorage.com
  access_key_id: <%= ENV["R2_ACCESS_KEY_ID"] %>
  secret_access_key: <%= ENV["R2_SECRET_ACCESS_KEY"] %>
  region: auto
  bucket: acme-media

spaces:
  service: S3
  endpoint: https://nyc3.digitaloceanspaces.com
  access_key_id: <%= ENV["SPACES_KEY"] %>
  secret_access_key: <%= ENV["SPACES_SECRET"] %>
  region: nyc3
  bucket: acme-spaces

minio:
  <<: *defaults
  endpoint: http://127.0.0.1:9000
  force_path_style: true
  access_key_id: minio
  secret_access_key: minio-secret
  bucket: dev
  ssl_verify_peer: false
  ssl_ca_bundle: /etc/ssl/private-ca.pem

mirror:
  service: Mirror
  primary: amazon
  mirrors: [ r2, spaces ]

google:
  service: GCS
  project: acme
  credentials: <%= Rails.root.join("config/gcs.json") %>
  bucket: acme-gcs

azure:
  service: AzureStorage
  storage_account_name: acme
  container: media
)";

const std::map<std::string, std::string> kProviderEnv = {
    {"AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"},
    {"AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
    {"R2_ACCESS_KEY_ID", "r2-key-id-0123456789abcdef"},
    {"R2_SECRET_ACCESS_KEY", "r2-secret"},
    {"SPACES_KEY", "DO00SPACESKEY"},
    {"SPACES_SECRET", "spaces-secret"},
};

StorageConfig providers() {
  return StorageConfig::parse(kProvidersYaml, "config/storage.yml", fixed_env(kProviderEnv), "/srv/app");
}


TEST(StorageConfig, NamesInFileOrder) {
  EXPECT_EQ(providers().names(), (std::vector<std::string>{"defaults", "local", "amazon", "r2", "spaces", "minio",
                                                           "mirror", "google", "azure"}));
}

TEST(StorageConfig, AwsS3) {
  const StorageConfig config = providers();
  const ServiceConfig& amazon = config.service("amazon");
  EXPECT_EQ(amazon.name, "amazon");
  EXPECT_EQ(amazon.kind, ServiceKind::kS3);
  EXPECT_EQ(amazon.service_type, "S3");
  EXPECT_EQ(amazon.bucket, "acme-production");
  EXPECT_EQ(amazon.region, "us-west-2");
  EXPECT_EQ(amazon.endpoint, "");
  EXPECT_EQ(amazon.access_key_id, "AKIAIOSFODNN7EXAMPLE");
  EXPECT_EQ(amazon.secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
  EXPECT_TRUE(amazon.public_acl);
  EXPECT_FALSE(amazon.force_path_style);
  EXPECT_TRUE(amazon.verify_tls);
  EXPECT_EQ(amazon.http_open_timeout, 5);
  EXPECT_EQ(amazon.http_read_timeout, 120);
  EXPECT_EQ(amazon.upload_headers, (Metadata{{"cache-control", "private, max-age=86400"},
                                             {"content-disposition", "inline"},
                                             {"x-amz-server-side-encryption", "AES256"},
                                             {"x-amz-meta-owner", "media-team"},
                                             {"x-amz-meta-app", "acme"}}));
}

TEST(StorageConfig, R2WithRegionAutoAndEndpoint) {
  const StorageConfig config = providers();
  const ServiceConfig& r2 = config.service("r2");
  EXPECT_EQ(r2.kind, ServiceKind::kS3);
  EXPECT_EQ(r2.region, "auto");
  EXPECT_EQ(r2.endpoint, "https://0123456789abcdef.r2.cloudflarestorage.com");
  EXPECT_EQ(r2.bucket, "acme-media");
  EXPECT_EQ(r2.access_key_id, "r2-key-id-0123456789abcdef");
  EXPECT_EQ(r2.secret_access_key, "r2-secret");
  EXPECT_EQ(r2.http_open_timeout, ServiceConfig{}.http_open_timeout);
  EXPECT_EQ(r2.http_read_timeout, ServiceConfig{}.http_read_timeout);
}

TEST(StorageConfig, Spaces) {
  const StorageConfig config = providers();
  const ServiceConfig& spaces = config.service("spaces");
  EXPECT_EQ(spaces.endpoint, "https://nyc3.digitaloceanspaces.com");
  EXPECT_EQ(spaces.region, "nyc3");
  EXPECT_EQ(spaces.access_key_id, "DO00SPACESKEY");
  EXPECT_EQ(spaces.secret_access_key, "spaces-secret");
}

TEST(StorageConfig, MinioWithPathStyleAndMergedDefaults) {
  const StorageConfig config = providers();
  const ServiceConfig& minio = config.service("minio");
  EXPECT_EQ(minio.kind, ServiceKind::kS3);  // from <<: *defaults
  EXPECT_TRUE(minio.force_path_style);      // its own key wins over the merged one
  EXPECT_EQ(minio.endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(minio.access_key_id, "minio");
  EXPECT_EQ(minio.region, "us-east-1");
  EXPECT_FALSE(minio.verify_tls);
  EXPECT_EQ(minio.ca_bundle, "/etc/ssl/private-ca.pem");
}

TEST(StorageConfig, DiskServices) {
  const StorageConfig config = providers();
  const ServiceConfig& local = config.service("local");
  EXPECT_EQ(local.kind, ServiceKind::kDisk);
  EXPECT_EQ(local.root, "/srv/app/storage");
  EXPECT_EQ(local.layout, DiskLayout::kActiveStorage);

  const StorageConfig plain = StorageConfig::parse("pc:\n  service: Disk\n  root: /mnt/system\n  layout: plain\n",
                                                   "s.yml", fixed_env({}), "/srv/app");
  EXPECT_EQ(plain.service("pc").layout, DiskLayout::kPlain);
  EXPECT_EQ(plain.service("pc").root, "/mnt/system");
}

TEST(StorageConfig, MirrorIsRecordedAndExplainedByTheFactory) {
  const StorageConfig config = providers();
  const ServiceConfig& mirror = config.service("mirror");
  EXPECT_EQ(mirror.kind, ServiceKind::kMirror);
  EXPECT_EQ(mirror.primary, "amazon");
  EXPECT_EQ(mirror.mirrors, (std::vector<std::string>{"r2", "spaces"}));
  const Error error = error_of([&] { open_storage(mirror); });
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  EXPECT_STREQ(error.what(),
               "service mirror is a Mirror (primary amazon, mirrors r2, spaces): name its primary or one of its "
               "mirrors as --from/--to");
}

TEST(StorageConfig, GcsAndAzureAreRecognisedButUnsupported) {
  const StorageConfig config = providers();
  EXPECT_EQ(config.service("google").kind, ServiceKind::kUnsupported);
  EXPECT_EQ(config.service("google").service_type, "GCS");
  EXPECT_EQ(config.service("azure").kind, ServiceKind::kUnsupported);
  const Error error = error_of([&] { open_storage(config.service("google")); });
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  EXPECT_STREQ(error.what(), "service google uses GCS, which blobferry does not support yet");
  EXPECT_STREQ(error_of([&] { open_storage(config.service("azure")); }).what(),
               "service azure uses AzureStorage, which blobferry does not support yet");
}

TEST(StorageConfig, FactoryOpensDisk) {
  const StorageConfig config = providers();
  auto storage = open_storage(config.service("local"));
  ASSERT_NE(storage, nullptr);
  EXPECT_EQ(storage->describe(), "disk /srv/app/storage (activestorage layout)");
}

TEST(StorageConfig, FactoryOpensS3WithoutShowingCredentials) {
  const StorageConfig config = providers();
  auto storage = open_storage(config.service("r2"));
  ASSERT_NE(storage, nullptr);
  const std::string description = storage->describe();
  EXPECT_NE(description.find("acme-media"), std::string::npos) << description;
  EXPECT_EQ(description.find("r2-secret"), std::string::npos) << description;
  EXPECT_EQ(description.find("r2-key-id"), std::string::npos) << description;
}

TEST(StorageConfig, UnknownServiceListsTheKnownOnes) {
  const StorageConfig config = providers();
  const Error error = error_of([&] { config.service("amazn"); });
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  EXPECT_STREQ(error.what(),
               "unknown service 'amazn': config/storage.yml defines defaults, local, amazon, r2, spaces, minio, "
               "mirror, google, azure");
}

TEST(StorageConfig, EntryWithoutServiceKeyIsAProblemOnlyWhenUsed) {
  const char yaml[] = "shared: &shared\n  region: eu-west-1\ns3:\n  <<: *shared\n  service: S3\n  bucket: b\n";
  const StorageConfig config = StorageConfig::parse(yaml, "config/storage.yml", fixed_env({}));
  EXPECT_EQ(config.service("s3").region, "eu-west-1");
  const Error error = error_of([&] { config.service("shared"); });
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  EXPECT_NE(std::string(error.what()).find("service 'shared' in config/storage.yml: no `service:` key"),
            std::string::npos)
      << error.what();
  // The providers' `defaults` block says S3 but names no bucket.
  EXPECT_NE(std::string(error_of([] { providers().service("defaults"); }).what()).find("`bucket` is missing"),
            std::string::npos);
}

TEST(StorageConfig, AwsEnvironmentFallbacks) {
  const char yaml[] = "s3:\n  service: S3\n  bucket: b\n";
  const StorageConfig config = StorageConfig::parse(
      yaml, "s.yml",
      fixed_env({{"AWS_ACCESS_KEY_ID", "AKIAENV"},
                 {"AWS_SECRET_ACCESS_KEY", "env-secret"},
                 {"AWS_SESSION_TOKEN", "env-token"},
                 {"AWS_DEFAULT_REGION", "ap-south-1"}}));
  const ServiceConfig& s3 = config.service("s3");
  EXPECT_EQ(s3.access_key_id, "AKIAENV");
  EXPECT_EQ(s3.secret_access_key, "env-secret");
  EXPECT_EQ(s3.session_token, "env-token");
  EXPECT_EQ(s3.region, "ap-south-1");

  const StorageConfig both_regions = StorageConfig::parse(
      yaml, "s.yml", fixed_env({{"AWS_REGION", "eu-central-1"}, {"AWS_DEFAULT_REGION", "ap-south-1"}}));
  EXPECT_EQ(both_regions.service("s3").region, "eu-central-1");
  EXPECT_EQ(StorageConfig::parse(yaml, "s.yml", fixed_env({})).service("s3").region, "us-east-1");
}

TEST(StorageConfig, FileCredentialsWinOverTheEnvironment) {
  const char yaml[] =
      "s3:\n  service: S3\n  bucket: b\n  region: us-west-1\n  access_key_id: FILEKEY\n  secret_access_key: "
      "file-secret\n";
  const StorageConfig config = StorageConfig::parse(
      yaml, "s.yml",
      fixed_env({{"AWS_ACCESS_KEY_ID", "AKIAENV"}, {"AWS_SECRET_ACCESS_KEY", "env-secret"},
                 {"AWS_SESSION_TOKEN", "env-token"}, {"AWS_REGION", "eu-central-1"}}));
  const ServiceConfig& s3 = config.service("s3");
  EXPECT_EQ(s3.access_key_id, "FILEKEY");
  EXPECT_EQ(s3.secret_access_key, "file-secret");
  EXPECT_EQ(s3.session_token, "");  // never paired with another identity's token
  EXPECT_EQ(s3.region, "us-west-1");
}

TEST(StorageConfig, EmptyErbCredentialFallsBackToTheEnvironment) {
  // ENV["X"] with X unset leaves `access_key_id:` null.
  const char yaml[] =
      "s3:\n  service: S3\n  bucket: b\n  access_key_id: <%= ENV[\"APP_KEY\"] %>\n  secret_access_key: <%= "
      "ENV[\"APP_SECRET\"] %>\n";
  const StorageConfig config = StorageConfig::parse(
      yaml, "s.yml", fixed_env({{"AWS_ACCESS_KEY_ID", "AKIAENV"}, {"AWS_SECRET_ACCESS_KEY", "env-secret"}}));
  EXPECT_EQ(config.service("s3").access_key_id, "AKIAENV");
  EXPECT_EQ(config.service("s3").secret_access_key, "env-secret");
}

TEST(StorageConfig, HalfACredentialIsAProblemThatDoesNotLeakTheOtherHalf) {
  const char yaml[] = "s3:\n  service: S3\n  bucket: b\n  access_key_id: AKIAONLYKEY\n";
  const StorageConfig config = StorageConfig::parse(yaml, "s.yml", fixed_env({{"AWS_SECRET_ACCESS_KEY", "env-secret"}}));
  const Error error = error_of([&] { config.service("s3"); });
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  EXPECT_NE(std::string(error.what()).find("`secret_access_key` is empty"), std::string::npos) << error.what();
  EXPECT_EQ(std::string(error.what()).find("AKIAONLYKEY"), std::string::npos);
  EXPECT_EQ(std::string(error.what()).find("env-secret"), std::string::npos);
}

TEST(StorageConfig, BrokenEntriesDoNotBlockTheOthers) {
  const char yaml[] =
      "nobucket:\n  service: S3\n  region: x\n"
      "noroot:\n  service: Disk\n"
      "badbool:\n  service: S3\n  bucket: b\n  force_path_style: maybe\n"
      "badtimeout:\n  service: S3\n  bucket: b\n  http_read_timeout: soon\n"
      "badlayout:\n  service: Disk\n  root: /x\n  layout: paperclip\n"
      "badendpoint:\n  service: S3\n  bucket: b\n  endpoint: minio.local:9000\n"
      "fine:\n  service: Disk\n  root: /data\n";
  const StorageConfig config = StorageConfig::parse(yaml, "s.yml", fixed_env({}));
  EXPECT_EQ(config.service("fine").root, "/data");
  const std::map<std::string, std::string> expected = {
      {"nobucket", "`bucket` is missing"},
      {"noroot", "`root` is missing"},
      {"badbool", "`force_path_style` must be true or false, not 'maybe'"},
      {"badtimeout", "`http_read_timeout` must be a number of seconds"},
      {"badlayout", "`layout` must be activestorage or plain"},
      {"badendpoint", "`endpoint` must start with https://"},
  };
  for (const auto& [name, fragment] : expected) {
    const Error error = error_of([&, name = name] { config.service(name); });
    EXPECT_EQ(error.kind(), ErrorKind::kConfig) << name;
    EXPECT_NE(std::string(error.what()).find("service '" + name + "' in s.yml: " + fragment), std::string::npos)
        << error.what();
  }
}

TEST(StorageConfig, FractionalTimeoutsRoundUp) {
  const StorageConfig config = StorageConfig::parse(
      "s3:\n  service: S3\n  bucket: b\n  http_open_timeout: 2.5\n  http_read_timeout: 30\n", "s.yml", fixed_env({}));
  EXPECT_EQ(config.service("s3").http_open_timeout, 3);
  EXPECT_EQ(config.service("s3").http_read_timeout, 30);
}

TEST(StorageConfig, UnsupportedErbStopsTheLoad) {
  const Error error = error_of(
      [] { StorageConfig::parse(kRealisticYaml, "config/storage.yml", fixed_env(kProviderEnv), "/srv/app"); });
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  EXPECT_NE(std::string(error.what()).find("unsupported ERB in config/storage.yml line 26: <%= 1.day.to_i"),
            std::string::npos)
      << error.what();
}

TEST(StorageConfig, YamlSyntaxErrorNamesFileAndLine) {
  const char yaml[] = "local:\n  service: Disk\n  root: /a\namazon:\n  service: S3\n    bucket: b\n";
  const Error error = error_of([&] { StorageConfig::parse(yaml, "config/storage.yml", fixed_env({})); });
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  const std::string message = error.what();
  EXPECT_EQ(message.rfind("YAML syntax error in config/storage.yml line 6", 0), 0u) << message;
  EXPECT_NE(message.find("indentation"), std::string::npos) << message;
}

TEST(StorageConfig, YamlErrorsNeverShowSecrets) {
  // The secret lands in the YAML and breaks it; the message must not echo it.
  const char yaml[] = "s3:\n  service: S3\n  secret_access_key: <%= ENV['S'] %>\n  bucket: b\n";
  const Error error = error_of([&] { StorageConfig::parse(yaml, "s.yml", fixed_env({{"S", "[sekrit: \"x"}})); });
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  EXPECT_EQ(std::string(error.what()).find("sekrit"), std::string::npos) << error.what();
}

TEST(StorageConfig, NotAMapOrEmpty) {
  EXPECT_EQ(error_of([] { StorageConfig::parse("", "s.yml", fixed_env({})); }).kind(), ErrorKind::kConfig);
  EXPECT_EQ(error_of([] { StorageConfig::parse("- a\n- b\n", "s.yml", fixed_env({})); }).kind(), ErrorKind::kConfig);
  EXPECT_EQ(error_of([] { StorageConfig::parse("just text", "s.yml", fixed_env({})); }).kind(), ErrorKind::kConfig);
}

TEST(StorageConfig, MissingFileNamesPathAndHowToPassAnother) {
  const Error error = error_of([] { StorageConfig::load("/nonexistent/config/storage.yml", fixed_env({})); });
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  EXPECT_STREQ(error.what(),
               "storage config /nonexistent/config/storage.yml not found; pass another with --storage-config PATH "
               "or BLOBFERRY_STORAGE_CONFIG");
}

TEST(StorageConfig, LoadUsesTheAppFolderAsRailsRoot) {
  const std::filesystem::path app =
      std::filesystem::temp_directory_path() / ("blobferry-config-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(app / "config");
  {
    std::ofstream file(app / "config" / "storage.yml");
    file << "local:\n  service: Disk\n  root: <%= Rails.root.join(\"storage\") %>\n";
  }
  const StorageConfig config = StorageConfig::load((app / "config" / "storage.yml").string(), fixed_env({}));
  EXPECT_EQ(config.service("local").root, (app / "storage").string());
  EXPECT_EQ(config.origin(), (app / "config" / "storage.yml").string());
  std::filesystem::remove_all(app);
}

TEST(StorageConfig, Masking) {
  EXPECT_EQ(StorageConfig::masked("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"), "****");
  EXPECT_EQ(StorageConfig::masked("x"), "****");
  EXPECT_EQ(StorageConfig::masked(""), "");
  EXPECT_EQ(StorageConfig::masked_key_id("AKIAIOSFODNN7EXAMPLE"), "AKIA…(20 chars)");
  EXPECT_EQ(StorageConfig::masked_key_id("minio"), "…(5 chars)");
  EXPECT_EQ(StorageConfig::masked_key_id(""), "");
}

}  // namespace
}  // namespace blobferry
