// What each S3-compatible provider documents about its limits and quirks, in one table.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace blobferry {

enum class Provider { kAws, kR2, kSpaces, kB2, kMinio, kCeph, kWasabi, kGcs, kOther };

// One row of the provider table (provider_profile.cpp cites each row's
// source). Sizes are bytes; 0 means "no documented figure".
struct ProviderProfile {
  Provider provider = Provider::kOther;
  const char* name = "other";  // as written in storage.yml's `provider:`

  std::uint64_t max_single_put = 0;   // largest PutObject body
  std::uint64_t min_part_size = 0;    // every part but the last
  std::uint64_t max_part_size = 0;
  int max_parts = 0;
  std::uint64_t max_single_copy = 0;  // largest CopyObject source (and UploadPartCopy range)

  // A single-part, unencrypted object's ETag is the hex MD5 of its bytes.
  // Never true under SSE-KMS, DSSE-KMS or SSE-C, whatever the provider.
  bool single_part_etag_is_md5 = true;
  // Under SSE-S3 (x-amz-server-side-encryption: AES256) too; MinIO's are not.
  bool sse_s3_etag_is_md5 = true;
  // CompleteMultipartUpload's <ETag> is the object's (Ceph RGW 16 may send it empty).
  bool complete_etag_trusted = true;
  // The precondition header CopyObject honours for "copy only this version".
  const char* copy_if_match_header = "x-amz-copy-source-if-match";
  // CopyObject works between two buckets of one endpoint and account.
  bool server_side_copy_across_buckets = true;
  // Without Accept-Encoding the provider may decode Content-Encoding: gzip
  // objects on GET, which changes the bytes and breaks the MD5.
  bool decodes_gzip_without_accept_encoding = false;
  // Documented default request-rate ceiling, requests per second (0: none documented).
  int requests_per_second = 0;
  const char* rate_scope = "";  // what the ceiling applies to ("per IP", "per account")
};

// The row of a provider; every Provider has one.
const ProviderProfile& provider_profile(Provider provider);

// "aws" -> kAws; nullopt for a name not in the table (case-insensitive).
std::optional<Provider> parse_provider(std::string_view name);

// "aws, r2, spaces, b2, minio, ceph, wasabi, gcs, other", for error messages.
std::string known_providers();

// The provider an endpoint's host unambiguously belongs to ("" means AWS's
// default endpoint); kOther for any host that names none (MinIO and Ceph run
// anywhere, so they are never inferred).
Provider infer_provider(std::string_view endpoint_host);

// The profile a service uses: `provider:` when set, else inferred from the
// endpoint URL. Throws Error kConfig for an unknown `provider:` value.
const ProviderProfile& profile_for(const std::string& service_name, const std::string& provider_setting,
                                   const std::string& endpoint);

// One line for `blobferry services`: "r2 (single PUT ≤ 4.99 GiB, parts 5 MiB–4.99 GiB × 10000, …)".
std::string describe_profile(const ProviderProfile& profile);

}  // namespace blobferry
