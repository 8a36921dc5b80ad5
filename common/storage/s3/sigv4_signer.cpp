// AWS Signature Version 4 (Authorization header form) as a pure computation.
#include "common/storage/s3/sigv4_signer.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/base/utc_time.h"
#include "common/storage/s3/uri_encoding.h"

namespace blobferry {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// SigV4 trims a header value and squeezes each run of spaces into one, even
// inside quotes (the suite's get-header-value-trim checks exactly that).
std::string canonical_header_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  bool pending_space = false;
  for (char c : value) {
    if (is_blank(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

bool has_header(const HttpHeaderList& headers, std::string_view lowercase_name) {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& header) { return lowercase(header.first) == lowercase_name; });
}

}  // namespace

SigV4Signer::SigV4Signer(AwsCredentials credentials, std::string region, std::string service,
                         SigV4Options options)
    : credentials_(std::move(credentials)),
      region_(std::move(region)),
      service_(std::move(service)),
      options_(options) {}

std::string SigV4Signer::amz_date(std::chrono::system_clock::time_point when) {
  return format_utc(when, "%Y%m%dT%H%M%SZ");
}

std::string SigV4Signer::canonical_query_string(const QueryParameters& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) encoded.emplace_back(uri_encode(name), uri_encode(value));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out += name + "=" + value;
  }
  return out;
}

std::string SigV4Signer::canonical_uri(const std::string& path) const {
  const std::string absolute = path.empty() || path.front() != '/' ? "/" + path : path;
  return uri_encode_path(options_.normalize_path ? normalize_uri_path(absolute) : absolute);
}

std::string SigV4Signer::signing_key(std::string_view date) const {
  std::lock_guard lock(key_cache_->mutex);
  if (key_cache_->date == date) return key_cache_->key;
  const std::string date_key = hmac_sha256("AWS4" + credentials_.secret_access_key, date);
  const std::string region_key = hmac_sha256(date_key, region_);
  const std::string service_key = hmac_sha256(region_key, service_);
  key_cache_->key = hmac_sha256(service_key, "aws4_request");
  key_cache_->date = date;
  return key_cache_->key;
}

SigV4Signature SigV4Signer::sign(const RequestToSign& request,
                                 std::chrono::system_clock::time_point when) const {
  // Repeated headers are joined with commas in the order they were given;
  // std::map sorts by lowercase name, which is the canonical order.
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : request.headers) {
    std::string& joined = headers[lowercase(name)];
    if (!joined.empty()) joined.push_back(',');
    joined += canonical_header_value(value);
  }

  SigV4Signature result;
  std::string canonical_headers;
  for (const auto& [name, value] : headers) {
    canonical_headers += name + ":" + value + "\n";
    if (!result.signed_headers.empty()) result.signed_headers.push_back(';');
    result.signed_headers += name;
  }

  result.canonical_request = request.method + "\n" + canonical_uri(request.path) + "\n" +
                             canonical_query_string(request.query) + "\n" + canonical_headers +
                             "\n" + result.signed_headers + "\n" + request.payload_hash;

  const std::string timestamp = amz_date(when);
  const std::string date = timestamp.substr(0, 8);
  const std::string scope = date + "/" + region_ + "/" + service_ + "/aws4_request";
  result.string_to_sign = "AWS4-HMAC-SHA256\n" + timestamp + "\n" + scope + "\n" +
                          hex_encode(sha256_of(result.canonical_request));

  result.signature = hex_encode(hmac_sha256(signing_key(date), result.string_to_sign));
  result.authorization = "AWS4-HMAC-SHA256 Credential=" + credentials_.access_key_id + "/" + scope +
                         ", SignedHeaders=" + result.signed_headers +
                         ", Signature=" + result.signature;
  return result;
}

SigV4Signature SigV4Signer::sign_s3_request(RequestToSign& request,
                                            std::chrono::system_clock::time_point when) const {
  if (!has_header(request.headers, "x-amz-date")) request.headers.emplace_back("x-amz-date", amz_date(when));
  if (!has_header(request.headers, "x-amz-content-sha256")) {
    request.headers.emplace_back("x-amz-content-sha256", request.payload_hash);
  }
  if (!credentials_.session_token.empty() && !has_header(request.headers, "x-amz-security-token")) {
    request.headers.emplace_back("x-amz-security-token", credentials_.session_token);
  }
  SigV4Signature signature = sign(request, when);
  request.headers.emplace_back("Authorization", signature.authorization);
  return signature;
}

}  // namespace blobferry
