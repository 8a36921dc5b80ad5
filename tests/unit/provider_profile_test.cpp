// The provider table, its inference from endpoint hosts, and storage.yml's `provider:` and `upload:` keys.
#include "common/storage/s3/provider_profile.h"

#include <map>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "common/base/error.h"
#include "common/storage/s3/s3_storage.h"
#include "common/storage/storage_config.h"

namespace blobferry {
namespace {

constexpr std::uint64_t kMiB = 1024ULL * 1024;
constexpr std::uint64_t kGiB = 1024 * kMiB;

EnvLookup no_env() {
  return [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
}

StorageConfig parse(const std::string& yaml) { return StorageConfig::parse(yaml, "storage.yml", no_env()); }

TEST(ProviderProfile, InferredFromUnambiguousHosts) {
  EXPECT_EQ(infer_provider(""), Provider::kAws);  // no endpoint: AWS's own
  EXPECT_EQ(infer_provider("s3.eu-west-1.amazonaws.com"), Provider::kAws);
  EXPECT_EQ(infer_provider("bucket.s3.amazonaws.com"), Provider::kAws);
  EXPECT_EQ(infer_provider("0123abcd.r2.cloudflarestorage.com"), Provider::kR2);
  EXPECT_EQ(infer_provider("0123abcd.eu.r2.cloudflarestorage.com"), Provider::kR2);
  EXPECT_EQ(infer_provider("nyc3.digitaloceanspaces.com"), Provider::kSpaces);
  EXPECT_EQ(infer_provider("s3.us-west-004.backblazeb2.com"), Provider::kB2);
  EXPECT_EQ(infer_provider("s3.eu-central-1.wasabisys.com"), Provider::kWasabi);
  EXPECT_EQ(infer_provider("storage.googleapis.com"), Provider::kGcs);
  EXPECT_EQ(infer_provider("STORAGE.GOOGLEAPIS.COM"), Provider::kGcs);
  // MinIO and Ceph run anywhere; look-alikes are not the provider.
  EXPECT_EQ(infer_provider("minio.internal"), Provider::kOther);
  EXPECT_EQ(infer_provider("127.0.0.1"), Provider::kOther);
  EXPECT_EQ(infer_provider("evilamazonaws.com"), Provider::kOther);
  EXPECT_EQ(infer_provider("r2.cloudflarestorage.com.example.org"), Provider::kOther);
  EXPECT_EQ(infer_provider("googleapis.com"), Provider::kOther);
}

TEST(ProviderProfile, ProfileForReadsTheEndpointUrlOrTheSetting) {
  EXPECT_STREQ(profile_for("s", "", "https://abc.r2.cloudflarestorage.com").name, "r2");
  EXPECT_STREQ(profile_for("s", "", "https://user@FRA1.digitaloceanspaces.com:443/x").name, "spaces");
  EXPECT_STREQ(profile_for("s", "", "http://127.0.0.1:9000").name, "other");
  EXPECT_STREQ(profile_for("s", "", "").name, "aws");
  // An explicit setting wins over the host (R2 behind a custom domain, MinIO).
  EXPECT_STREQ(profile_for("s", "R2", "https://files.example.com").name, "r2");
  EXPECT_STREQ(profile_for("s", "minio", "https://s3.amazonaws.com").name, "minio");
}

TEST(ProviderProfile, UnknownProviderIsOneLineListingTheKnownOnes) {
  try {
    profile_for("media", "digitalocean", "");
    FAIL() << "expected a configuration error";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kConfig);
    const std::string message = error.what();
    EXPECT_EQ(message.find('\n'), std::string::npos);
    EXPECT_NE(message.find("media"), std::string::npos) << message;
    EXPECT_NE(message.find("digitalocean"), std::string::npos) << message;
    EXPECT_NE(message.find("aws, r2, spaces, b2, minio, ceph, wasabi, gcs, other"), std::string::npos) << message;
  }
  EXPECT_EQ(known_providers(), "aws, r2, spaces, b2, minio, ceph, wasabi, gcs, other");
  EXPECT_FALSE(parse_provider("s3"));
  EXPECT_EQ(parse_provider("Ceph"), Provider::kCeph);
}

TEST(ProviderProfile, UnknownProviderInStorageYmlIsAConfigErrorNamingFileAndService) {
  const StorageConfig config = parse("media:\n  service: S3\n  bucket: b\n  provider: azure\n");
  try {
    config.service("media");
    FAIL() << "expected a configuration error";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kConfig);
    const std::string message = error.what();
    EXPECT_NE(message.find("service 'media' in storage.yml"), std::string::npos) << message;
    EXPECT_NE(message.find("provider: azure"), std::string::npos) << message;
    EXPECT_NE(message.find("aws, r2, spaces"), std::string::npos) << message;
  }
  EXPECT_EQ(parse("m:\n  service: S3\n  bucket: b\n  provider: ceph\n").service("m").provider, "ceph");
}

TEST(ProviderProfile, TableRowsCarryTheDocumentedFigures) {
  const ProviderProfile& aws = provider_profile(Provider::kAws);
  EXPECT_EQ(aws.max_single_put, 5 * kGiB);
  EXPECT_EQ(aws.min_part_size, 5 * kMiB);
  EXPECT_EQ(aws.max_part_size, 5 * kGiB);
  EXPECT_EQ(aws.max_parts, 10000);
  EXPECT_EQ(aws.max_single_copy, 5 * kGiB);
  EXPECT_TRUE(aws.single_part_etag_is_md5);
  EXPECT_STREQ(aws.copy_if_match_header, "x-amz-copy-source-if-match");

  const ProviderProfile& r2 = provider_profile(Provider::kR2);
  EXPECT_EQ(r2.max_single_copy, 5 * kGiB - 5 * kMiB);
  EXPECT_EQ(r2.max_single_put, 5 * kGiB - 5 * kMiB);
  EXPECT_TRUE(r2.decodes_gzip_without_accept_encoding);

  const ProviderProfile& spaces = provider_profile(Provider::kSpaces);
  EXPECT_FALSE(spaces.server_side_copy_across_buckets);
  EXPECT_EQ(spaces.requests_per_second, 1500);

  EXPECT_EQ(provider_profile(Provider::kB2).requests_per_second, 500);

  const ProviderProfile& ceph = provider_profile(Provider::kCeph);
  EXPECT_FALSE(ceph.complete_etag_trusted);
  EXPECT_STREQ(ceph.copy_if_match_header, "x-amz-copy-if-match");

  EXPECT_FALSE(provider_profile(Provider::kMinio).sse_s3_etag_is_md5);
  EXPECT_TRUE(provider_profile(Provider::kGcs).decodes_gzip_without_accept_encoding);
  for (Provider each : {Provider::kAws, Provider::kR2, Provider::kSpaces, Provider::kB2, Provider::kMinio,
                        Provider::kCeph, Provider::kWasabi, Provider::kGcs, Provider::kOther}) {
    const ProviderProfile& row = provider_profile(each);
    EXPECT_EQ(row.provider, each);
    EXPECT_EQ(parse_provider(row.name), each);
    EXPECT_GT(row.max_single_put, 0u) << row.name;
    EXPECT_LE(row.min_part_size, row.max_part_size) << row.name;
    EXPECT_GT(row.max_single_copy, 0u) << row.name;
  }
}

TEST(ProviderProfile, DescribedInOneLineForServices) {
  const std::string line = describe_profile(provider_profile(Provider::kSpaces));
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_NE(line.find("spaces"), std::string::npos) << line;
  EXPECT_NE(line.find("1500 req/s per IP address"), std::string::npos) << line;
  EXPECT_NE(line.find("no server-side copy across buckets"), std::string::npos) << line;
}

TEST(ProviderProfile, S3StorageFollowsItsProfileForCopiesAcrossBuckets) {
  auto service = [](const std::string& bucket, const std::string& endpoint) {
    ServiceConfig config;
    config.name = bucket;
    config.kind = ServiceKind::kS3;
    config.bucket = bucket;
    config.endpoint = endpoint;
    config.access_key_id = "AKIDEXAMPLE";
    config.secret_access_key = "secret";
    return config;
  };
  const S3Storage spaces_a(service("a", "https://nyc3.digitaloceanspaces.com"));
  const S3Storage spaces_b(service("b", "https://nyc3.digitaloceanspaces.com"));
  EXPECT_STREQ(spaces_b.profile().name, "spaces");
  EXPECT_FALSE(spaces_b.can_copy_from(spaces_a)) << "Spaces: copies between buckets stream";
  const S3Storage r2_a(service("a", "https://x.r2.cloudflarestorage.com"));
  const S3Storage r2_b(service("b", "https://x.r2.cloudflarestorage.com"));
  EXPECT_TRUE(r2_b.can_copy_from(r2_a));
}

TEST(UploadOptions, EveryRailsOptionBecomesItsHeaderAndUnknownKeysWarn) {
  const StorageConfig config = parse(R"(amazon:
  service: S3
  bucket: b
  upload:
    server_side_encryption: aws:kms
    ssekms_key_id: arn:aws:kms:us-east-1:1:key/k
    storage_class: STANDARD_IA
    acl: bucket-owner-full-control
    cache_control: private, max-age=60
    content_disposition: attachment
    content_encoding: gzip
    content_language: de
    expires: Wed, 21 Oct 2026 07:28:00 GMT
    multipart_threshold: 104857600
    metadata:
      Team: media
    frobnicate: 1
)");
  const ServiceConfig& amazon = config.service("amazon");
  const Metadata expected = {
      {"x-amz-server-side-encryption", "aws:kms"},
      {"x-amz-server-side-encryption-aws-kms-key-id", "arn:aws:kms:us-east-1:1:key/k"},
      {"x-amz-storage-class", "STANDARD_IA"},
      {"x-amz-acl", "bucket-owner-full-control"},
      {"cache-control", "private, max-age=60"},
      {"content-disposition", "attachment"},
      {"content-encoding", "gzip"},
      {"content-language", "de"},
      {"expires", "Wed, 21 Oct 2026 07:28:00 GMT"},
      {"x-amz-meta-team", "media"},
  };
  EXPECT_EQ(amazon.upload_headers, expected);
  ASSERT_EQ(amazon.warnings.size(), 1u);
  EXPECT_NE(amazon.warnings[0].find("upload.frobnicate"), std::string::npos) << amazon.warnings[0];
  EXPECT_NE(amazon.warnings[0].find("ignored"), std::string::npos) << amazon.warnings[0];
}

}  // namespace
}  // namespace blobferry
