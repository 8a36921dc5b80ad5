// The XML documents of the S3 API (read with pugixml) and what a failed S3
// response means as a blobferry::Error. Pure functions, no I/O.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/base/error.h"
#include "common/storage/storage.h"

namespace blobferry {

struct S3ErrorDocument {
  std::string code;     // "NoSuchKey", "SlowDown", …
  std::string message;  // the server's sentence, as sent
  std::string endpoint;  // <Endpoint> of a PermanentRedirect or TemporaryRedirect
};

// nullopt when the body is not an <Error> document (empty, or a proxy's HTML).
std::optional<S3ErrorDocument> parse_s3_error(std::string_view xml);

// The parsers below throw Error(kTransient, "bad_response") when the body is
// not the expected document: a garbled or cut-off reply is worth a retry.

// One ListObjectsV2 page. Keys and prefixes are decoded when the reply says
// <EncodingType>url</EncodingType> and taken verbatim otherwise, since some
// servers (s3rver) accept encoding-type=url but do not encode. A truncated page
// without NextContinuationToken is rejected rather than silently ending the
// listing early.
ListPage parse_list_objects_v2(std::string_view xml);

// InitiateMultipartUploadResult -> UploadId.
std::string parse_initiate_multipart_upload(std::string_view xml);

// CompleteMultipartUploadResult -> ETag, unquoted; empty when the element is
// there but empty, as RGW 16 answers (the caller then asks HEAD). A document
// without <ETag> at all is still a bad response.
std::string parse_complete_multipart_upload(std::string_view xml);

// One ListMultipartUploads page (ListMultipartUploadsResult).
struct MultipartUploadsPage {
  std::vector<std::pair<std::string, std::string>> uploads;  // key, upload id
  std::string next_key_marker;  // with next_upload_id_marker: where the next page starts; empty on the last
  std::string next_upload_id_marker;
};
MultipartUploadsPage parse_list_multipart_uploads(std::string_view xml);

// One ListParts page (ListPartsResult): part numbers and unquoted ETags.
struct PartsPage {
  std::vector<CompletedPart> parts;
  int next_part_number_marker = 0;  // where the next page starts; 0 on the last
};
PartsPage parse_list_parts(std::string_view xml);

// CopyObjectResult or CopyPartResult -> ETag, unquoted.
std::string parse_copy_result(std::string_view xml);

// The CompleteMultipartUpload request body, parts in ascending part number.
std::string complete_multipart_upload_body(const std::vector<CompletedPart>& parts);

// "\"abc\"" -> "abc"; S3 quotes ETags in headers and documents alike.
std::string unquote_etag(std::string_view etag);

// Retry-After in seconds ("120") -> 120s; 0 when absent or not a number of
// seconds (the HTTP-date form is not worth trusting across clock skew).
std::chrono::milliseconds parse_retry_after(std::string_view header);

// A non-2xx S3 response, reduced to what decides its meaning.
struct S3Failure {
  int http_status = 0;
  std::string code;         // from the error document; empty without one (HEAD has no body)
  std::string message;      // from the error document
  std::string retry_after;  // the Retry-After header, if any
  std::string bucket_region = {};  // the x-amz-bucket-region header, if any (redirects, HEAD too)
  std::string endpoint = {};       // the error document's <Endpoint>, if any (redirects)
};

// The failure a response describes: its status, its Retry-After header and
// the code and sentence of its error document, when the body is one.
S3Failure read_s3_failure(int http_status, std::string retry_after, std::string_view body);

// The error kind S3's answer means:
//   BadDigest, InvalidDigest             -> kIntegrity  "integrity"
//   404 NoSuchBucket                     -> kConfig     "config" ("missing bucket <bucket>: create it or fix `bucket:`")
//   429, 503 SlowDown, any Retry-After   -> kThrottled  "throttled" (with retry_after)
//   RequestTimeout, 408, other 5xx       -> kTransient  "server_error" / "network"
//   409 OperationAborted                 -> kTransient  "server_error" (a conflicting request was in flight)
//   301 PermanentRedirect                -> kConfig     "config" naming the bucket's region or endpoint
//   307 TemporaryRedirect                -> kTransient  "server_error" naming them (DNS not yet updated)
//   501 NotImplemented                   -> kPermanent  "unsupported"
//   403                                  -> kPermanent  "access_denied"
//   404                                  -> kPermanent  "not_found"
//   400 and other 4xx                    -> kPermanent  "bad_request" / "client_error"
// operation names the request and the storage ("PUT a.jpg on s3 bucket …");
// the message is one line and carries only the server's code and sentence.
Error s3_error(const S3Failure& failure, const std::string& operation, const std::string& bucket);

// What Storage::check knows besides the failure: which service it tests and
// what the settings say, so the error can name the setting to fix.
struct S3CheckContext {
  std::string operation;      // the listing request, as for s3_error
  std::string subject;        // "service <name> (<describe>)"
  std::string bucket;         // `bucket:`
  std::string region;         // `region:`
  std::string bucket_region;  // the x-amz-bucket-region header, if any
};

// The same failure met by Storage::check, which tests the settings: a
// refusal is kConfig "config" naming the fix (credentials, session token,
// clock, region, permissions), throttling and server errors stay as
// s3_error classifies them, retryable.
Error s3_check_error(const S3Failure& failure, const S3CheckContext& context);

}  // namespace blobferry
