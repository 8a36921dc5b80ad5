// AWS Signature Version 4 (Authorization header form) as a pure computation:
// credentials, request and time in, signature out; no clock, no I/O.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace blobferry {

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty unless the credentials are temporary (STS)
};

using HttpHeaderList = std::vector<std::pair<std::string, std::string>>;
using QueryParameters = std::vector<std::pair<std::string, std::string>>;

struct RequestToSign {
  std::string method;        // "GET", "PUT", …
  std::string path;          // not yet percent-encoded: "/bucket/my key.txt"; encoded once here
  QueryParameters query;     // names and values not yet percent-encoded
  HttpHeaderList headers;    // every header to sign, Host included; names in any case
  std::string payload_hash;  // hex SHA-256 of the body, or UNSIGNED-PAYLOAD
};

struct SigV4Options {
  // The generic SigV4 rules normalise the path ("/a/./b//c" -> "/a/b/c"); S3
  // forbids it because keys may contain such segments, so it is off by default.
  bool normalize_path = false;
};

struct SigV4Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;  // "host;x-amz-date"
  std::string signature;       // lowercase hex
  std::string authorization;   // the whole Authorization header value
};

class SigV4Signer {
 public:
  static constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
  static constexpr std::string_view kEmptyPayloadHash =
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

  SigV4Signer(AwsCredentials credentials, std::string region, std::string service,
              SigV4Options options = {});

  // Signs the request exactly as given; `when` supplies the credential scope
  // date and the string-to-sign timestamp (it must match any X-Amz-Date header).
  SigV4Signature sign(const RequestToSign& request, std::chrono::system_clock::time_point when) const;

  // What S3 requests need: adds x-amz-date, x-amz-content-sha256 (the
  // payload_hash) and, with temporary credentials, x-amz-security-token to
  // request.headers, signs, then appends the Authorization header (unsigned).
  SigV4Signature sign_s3_request(RequestToSign& request, std::chrono::system_clock::time_point when) const;

  // "20150830T123600Z"
  static std::string amz_date(std::chrono::system_clock::time_point when);
  // Query parameters encoded and sorted as in the canonical request
  // ("a=1&b=&c=%20"); also the query string to put in the URL, so that what is
  // sent and what is signed cannot differ.
  static std::string canonical_query_string(const QueryParameters& query);

 private:
  std::string canonical_uri(const std::string& path) const;
  std::string signing_key(std::string_view date) const;

  // The derived key changes once a day (it depends only on the date, the
  // secret, region and service), yet deriving it costs four HMACs per
  // request: kept for the last date, shared by copies of this signer.
  struct KeyCache {
    std::mutex mutex;
    std::string date;
    std::string key;
  };

  AwsCredentials credentials_;
  std::string region_;
  std::string service_;
  SigV4Options options_;
  std::shared_ptr<KeyCache> key_cache_ = std::make_shared<KeyCache>();
};

}  // namespace blobferry
