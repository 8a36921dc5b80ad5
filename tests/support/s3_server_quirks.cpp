// What the test S3 server does differently from Amazon S3, found by asking it directly.
#include "tests/support/s3_server_quirks.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "common/storage/s3/curl_handles.h"
#include "common/base/digest.h"
#include "common/base/encoding.h"

namespace blobferry::testing {
namespace {

struct HttpReply {
  long status = 0;
  std::string body;
};

std::size_t append_to_string(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// One unsigned request; s3rver serves anonymous callers like signed ones.
HttpReply http(const std::string& method, const std::string& url, const std::string& body = {},
               const std::vector<std::string>& headers = {}) {
  CurlEasyPtr curl = make_curl_easy();
  CurlSlistPtr header_list;
  append_curl_header(header_list, "Expect:");
  for (const std::string& header : headers) append_curl_header(header_list, header);
  HttpReply reply;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, header_list.get());
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, append_to_string);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &reply.body);
  if (method == "PUT" || method == "POST") {
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  CURLcode code = curl_easy_perform(curl.get());
  if (code != CURLE_OK) {
    throw std::runtime_error("probing the test S3 server: " + method + " " + url + ": " + curl_easy_strerror(code));
  }
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &reply.status);
  return reply;
}

// The text of the first <tag>…</tag> in xml, or "".
std::string first_element(const std::string& xml, const std::string& tag) {
  auto open = xml.find("<" + tag + ">");
  if (open == std::string::npos) return {};
  open += tag.size() + 2;
  auto close = xml.find("</" + tag + ">", open);
  return close == std::string::npos ? std::string() : xml.substr(open, close - open);
}

bool is_success(const HttpReply& reply) { return reply.status >= 200 && reply.status < 300; }

bool probe_ignores_content_md5(const std::string& base) {
  return is_success(http("PUT", base + "md5", "hello", {"Content-MD5: " + base64_encode(md5_of("not hello"))}));
}

bool probe_range_ending_at_zero_is_ignored(const std::string& base) {
  http("PUT", base + "range", "hello");
  return http("GET", base + "range", {}, {"Range: bytes=0-0"}).body != "h";
}

bool probe_no_abort_multipart(const std::string& base) {
  return http("DELETE", base + "abort?uploadId=no-such-upload").status == 405;
}

bool probe_multipart_etag_without_part_count(const std::string& base) {
  const std::string key = base + "multipart";
  const std::string upload_id = first_element(http("POST", key + "?uploads").body, "UploadId");
  if (upload_id.empty()) return false;  // then the suite's own checks show what is wrong
  const std::string part = "part one";
  http("PUT", key + "?partNumber=1&uploadId=" + upload_id, part);
  const std::string completion = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"" +
                                 hex_encode(md5_of(part)) + "\"</ETag></Part></CompleteMultipartUpload>";
  const HttpReply reply = http("POST", key + "?uploadId=" + upload_id, completion);
  return is_success(reply) && first_element(reply.body, "ETag").find("-1") == std::string::npos;
}

bool probe_lists_out_of_byte_order(const std::string& bucket_url, const std::string& base) {
  http("PUT", base + "order/a-b", "x");
  http("PUT", base + "order/a/b", "x");
  const HttpReply listing = http("GET", bucket_url + "?list-type=2&prefix=quirk-probe/order/");
  return first_element(listing.body, "Key") != "quirk-probe/order/a-b";
}

bool probe_rejects_double_slash(const std::string& base) {
  return http("PUT", base + "double//slash", "x").status == 404;
}

}  // namespace

S3ServerQuirks probe_s3_server_quirks(const std::string& bucket_url) {
  const std::string base = bucket_url + "/quirk-probe/";
  S3ServerQuirks quirks;
  quirks.ignores_content_md5 = probe_ignores_content_md5(base);
  quirks.range_ending_at_zero_is_ignored = probe_range_ending_at_zero_is_ignored(base);
  quirks.no_abort_multipart = probe_no_abort_multipart(base);
  quirks.multipart_etag_without_part_count = probe_multipart_etag_without_part_count(base);
  quirks.lists_out_of_byte_order = probe_lists_out_of_byte_order(bucket_url, base);
  quirks.rejects_double_slash = probe_rejects_double_slash(base);
  return quirks;
}

}  // namespace blobferry::testing
