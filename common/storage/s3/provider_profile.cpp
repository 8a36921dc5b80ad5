// The provider table: each S3-compatible provider's documented limits and quirks, with sources.
#include "common/storage/s3/provider_profile.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>

#include "common/base/error.h"
#include "common/base/encoding.h"

namespace blobferry {
namespace {

constexpr std::uint64_t kMiB = 1024ULL * 1024;
constexpr std::uint64_t kGiB = 1024 * kMiB;
constexpr std::uint64_t kTiB = 1024 * kGiB;
constexpr std::uint64_t kGB = 1000ULL * 1000 * 1000;

ProviderProfile row(Provider provider, const char* name) {
  ProviderProfile profile;
  profile.provider = provider;
  profile.name = name;
  // AWS's figures, which most S3-compatibles copy; each row below states
  // where it differs.
  profile.max_single_put = 5 * kGiB;
  profile.min_part_size = 5 * kMiB;
  profile.max_part_size = 5 * kGiB;
  profile.max_parts = 10000;
  profile.max_single_copy = 5 * kGiB;
  return profile;
}

std::array<ProviderProfile, 9> make_table() {
  std::array<ProviderProfile, 9> table;

  // AWS S3. Limits: https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
  // (parts 5 MiB–5 GiB, 10,000 parts; single PUT and CopyObject 5 GiB:
  // https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html).
  // ETag is the MD5 for PUT unencrypted or SSE-S3, never for SSE-KMS, DSSE-KMS
  // or SSE-C: https://docs.aws.amazon.com/AmazonS3/latest/API/API_Object.html
  // Request rates are per prefix (3,500 writes, 5,500 reads per second), not a
  // ceiling per client: https://docs.aws.amazon.com/AmazonS3/latest/userguide/optimizing-performance.html
  table[0] = row(Provider::kAws, "aws");

  // Cloudflare R2: https://developers.cloudflare.com/r2/reference/limits
  // "The max upload size is 5 MiB less than 5 GiB" and it applies to a single
  // PUT, a part, and a copy into a part; 10,000 parts. R2 serves objects stored
  // with Content-Encoding: gzip decoded to a request without Accept-Encoding
  // (reported: https://gist.github.com/csuhta/0001d1bb74200412bc1d7f9e11ec4ea5).
  table[1] = row(Provider::kR2, "r2");
  table[1].max_single_put = 5 * kGiB - 5 * kMiB;
  table[1].max_part_size = 5 * kGiB - 5 * kMiB;
  table[1].max_single_copy = 5 * kGiB - 5 * kMiB;
  table[1].decodes_gzip_without_accept_encoding = true;

  // DigitalOcean Spaces: https://docs.digitalocean.com/products/spaces/details/limits
  // PUT at most 5 GB, parts 5 MiB–5 GB, 10,000 parts; 1,500 requests per
  // second per IP address to all buckets of an account; buckets cannot be
  // moved between regions, and CopyObject between buckets on different
  // clusters is refused, so copies between buckets stream.
  table[2] = row(Provider::kSpaces, "spaces");
  table[2].server_side_copy_across_buckets = false;
  table[2].requests_per_second = 1500;
  table[2].rate_scope = "per IP address";

  // Backblaze B2's S3-compatible API: 500 requests per second for new
  // accounts, 503 SlowDown beyond: https://www.backblaze.com/docs/cloud-storage-rate-limits
  // Sizes (5 GB PUT, parts 5 MB–5 GB, 10,000 parts): Backblaze's S3-compatible
  // API reference (https://www.backblaze.com/docs/cloud-storage-s3-compatible-api;
  // the page itself was not re-read for this table).
  table[3] = row(Provider::kB2, "b2");
  table[3].max_single_put = 5 * kGB;
  table[3].max_part_size = 5 * kGB;
  table[3].max_single_copy = 5 * kGB;
  table[3].requests_per_second = 500;
  table[3].rate_scope = "per account (uploads and downloads)";

  // MinIO: https://min.io/docs/minio/linux/operations/concepts/thresholds.html
  // (single PUT 5 TiB, parts 5 MiB–5 GiB, 10,000 parts). Its SSE-S3 objects'
  // ETags are not MD5s either (see etag_is_md5 in s3_storage.cpp).
  table[4] = row(Provider::kMinio, "minio");
  table[4].max_single_put = 5 * kTiB;
  table[4].sse_s3_etag_is_md5 = false;

  // Ceph RADOS Gateway 16.2: rgw_max_put_size 5 GiB, rgw_multipart_min_part_size
  // 5 MiB (https://docs.ceph.com/en/pacific/radosgw/config-ref/). Complete may
  // answer an empty <ETag> (https://bugzilla.redhat.com/show_bug.cgi?id=2266579,
  // tested in red-hat-storage/ceph-qe-scripts#564), and RGW reads the copy
  // precondition as x-amz-copy-if-match (rgw_rest_s3.cc, RGWCopyObj_ObjStore_S3).
  table[5] = row(Provider::kCeph, "ceph");
  table[5].complete_etag_trusted = false;
  table[5].copy_if_match_header = "x-amz-copy-if-match";

  // Wasabi: a single PUT up to 5 GB, objects up to 5 TB, multipart as AWS
  // (Wasabi's FAQ, as quoted in https://github.com/pglombardo/PasswordPusher/issues/1895).
  table[6] = row(Provider::kWasabi, "wasabi");
  table[6].max_single_put = 5 * kGB;
  table[6].max_single_copy = 5 * kGB;

  // Google Cloud Storage's XML API: objects up to 5 TiB in one PUT
  // (https://cloud.google.com/storage/quotas, not re-read for this table); decompressive transcoding
  // serves gzip-encoded objects decoded unless the request accepts gzip
  // (https://cloud.google.com/storage/docs/transcoding).
  table[7] = row(Provider::kGcs, "gcs");
  table[7].max_single_put = 5 * kTiB;
  table[7].decodes_gzip_without_accept_encoding = true;

  // Anything else: AWS's documented API, with no ceiling assumed.
  table[8] = row(Provider::kOther, "other");
  return table;
}

const std::array<ProviderProfile, 9>& table() {
  static const std::array<ProviderProfile, 9> instance = make_table();
  return instance;
}

bool host_is_or_under(const std::string& host, std::string_view domain) {
  return host == domain.substr(1) || host.ends_with(domain);
}

// "https://user@Host.example:443/path" -> "host.example".
std::string host_of(const std::string& endpoint) {
  std::string rest = endpoint;
  if (const auto scheme_end = rest.find("://"); scheme_end != std::string::npos) rest = rest.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const auto at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
  if (!rest.empty() && rest.front() == '[') return lowercase(rest.substr(0, rest.find(']') + 1));
  return lowercase(rest.substr(0, rest.find(':')));
}

std::string size_text(std::uint64_t bytes) {
  if (bytes == 0) return "?";
  char buffer[32];
  if (bytes % kGB == 0 && bytes % kGiB != 0) {
    std::snprintf(buffer, sizeof buffer, "%llu GB", static_cast<unsigned long long>(bytes / kGB));
  } else if (bytes >= kTiB) {
    std::snprintf(buffer, sizeof buffer, "%.3g TiB", static_cast<double>(bytes) / kTiB);
  } else if (bytes >= kGiB) {
    std::snprintf(buffer, sizeof buffer, "%.3g GiB", static_cast<double>(bytes) / kGiB);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.3g MiB", static_cast<double>(bytes) / kMiB);
  }
  return buffer;
}

}  // namespace

const ProviderProfile& provider_profile(Provider provider) {
  for (const ProviderProfile& profile : table()) {
    if (profile.provider == provider) return profile;
  }
  return table().back();
}

std::optional<Provider> parse_provider(std::string_view name) {
  const std::string wanted = lowercase(name);
  for (const ProviderProfile& profile : table()) {
    if (wanted == profile.name) return profile.provider;
  }
  return std::nullopt;
}

std::string known_providers() {
  std::string names;
  for (const ProviderProfile& profile : table()) names += (names.empty() ? "" : ", ") + std::string(profile.name);
  return names;
}

Provider infer_provider(std::string_view endpoint_host) {
  const std::string host = lowercase(endpoint_host);
  if (host.empty() || host_is_or_under(host, ".amazonaws.com")) return Provider::kAws;
  if (host.ends_with(".r2.cloudflarestorage.com")) return Provider::kR2;
  if (host_is_or_under(host, ".digitaloceanspaces.com")) return Provider::kSpaces;
  if (host.ends_with(".backblazeb2.com")) return Provider::kB2;
  if (host_is_or_under(host, ".wasabisys.com")) return Provider::kWasabi;
  if (host == "storage.googleapis.com") return Provider::kGcs;
  return Provider::kOther;
}

const ProviderProfile& profile_for(const std::string& service_name, const std::string& provider_setting,
                                   const std::string& endpoint) {
  if (!provider_setting.empty()) {
    if (auto provider = parse_provider(provider_setting)) return provider_profile(*provider);
    throw config_error("service " + service_name + ": unknown `provider: " + provider_setting +
                       "`; use one of " + known_providers() + " (or leave it out to infer it from the endpoint)");
  }
  return provider_profile(infer_provider(endpoint.empty() ? std::string() : host_of(endpoint)));
}

std::string describe_profile(const ProviderProfile& profile) {
  std::string text = std::string(profile.name) + " (single PUT <= " + size_text(profile.max_single_put) +
                     ", parts " + size_text(profile.min_part_size) + "-" + size_text(profile.max_part_size) +
                     " x " + std::to_string(profile.max_parts) + ", copy <= " + size_text(profile.max_single_copy);
  if (!profile.single_part_etag_is_md5) text += ", ETag not MD5";
  if (!profile.sse_s3_etag_is_md5) text += ", SSE-S3 ETag not MD5";
  if (!profile.complete_etag_trusted) text += ", Complete ETag untrusted";
  if (std::string_view(profile.copy_if_match_header) != "x-amz-copy-source-if-match") {
    text += std::string(", copy precondition ") + profile.copy_if_match_header;
  }
  if (!profile.server_side_copy_across_buckets) text += ", no server-side copy across buckets";
  if (profile.decodes_gzip_without_accept_encoding) text += ", decodes gzip unless Accept-Encoding: identity";
  if (profile.requests_per_second > 0) {
    text += ", " + std::to_string(profile.requests_per_second) + " req/s " + profile.rate_scope;
  }
  return text + ")";
}

}  // namespace blobferry
