// The XML documents of the S3 API and what a failed S3 response means.
#include "common/storage/s3/s3_xml.h"

#include <algorithm>
#include <charconv>
#include <sstream>

#include <pugixml.hpp>

#include "common/storage/s3/uri_encoding.h"

namespace blobferry {
namespace {

[[noreturn]] void throw_bad_response(const std::string& what) {
  throw Error(ErrorKind::kTransient, FailureReason::kBadResponse, "unexpected S3 response: " + what);
}

pugi::xml_node parse_root(pugi::xml_document& document, std::string_view xml, const char* root_name) {
  const pugi::xml_parse_result parsed = document.load_buffer(xml.data(), xml.size());
  if (!parsed) throw_bad_response(std::string("not XML where ") + root_name + " was expected");
  pugi::xml_node root = document.document_element();
  if (std::string_view(root.name()) != root_name) {
    throw_bad_response(std::string("<") + root.name() + "> where " + root_name + " was expected");
  }
  return root;
}

std::string child_text(pugi::xml_node node, const char* name) { return node.child(name).text().get(); }

std::uint64_t parse_size(const std::string& text) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    throw_bad_response("object size '" + text + "' is not a number");
  }
  return value;
}

std::string decode_listed(const std::string& text, bool url_encoded) {
  if (!url_encoded) return text;
  auto decoded = uri_decode(text, /*plus_is_space=*/true);
  if (!decoded) throw_bad_response("listed name '" + text + "' is not valid url encoding");
  return *decoded;
}

// Server sentences go into one-line messages: no line breaks, bounded length.
std::string one_line(std::string_view text, std::size_t limit = 200) {
  std::string out;
  for (char c : text) {
    if (out.size() >= limit) {
      out += "…";
      break;
    }
    out.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
  }
  return out;
}

std::string describe_failure(const S3Failure& failure) {
  std::string text = "HTTP " + std::to_string(failure.http_status);
  if (!failure.code.empty()) text += " " + one_line(failure.code, 64);
  if (!failure.message.empty()) text += ": " + one_line(failure.message);
  return text;
}

}  // namespace

std::optional<S3ErrorDocument> parse_s3_error(std::string_view xml) {
  pugi::xml_document document;
  if (!document.load_buffer(xml.data(), xml.size())) return std::nullopt;
  const pugi::xml_node root = document.document_element();
  if (std::string_view(root.name()) != "Error") return std::nullopt;
  return S3ErrorDocument{child_text(root, "Code"), child_text(root, "Message"), child_text(root, "Endpoint")};
}

ListPage parse_list_objects_v2(std::string_view xml) {
  pugi::xml_document document;
  const pugi::xml_node root = parse_root(document, xml, "ListBucketResult");
  const bool url_encoded = child_text(root, "EncodingType") == "url";

  ListPage page;
  for (pugi::xml_node contents : root.children("Contents")) {
    ObjectInfo object;
    object.key = decode_listed(child_text(contents, "Key"), url_encoded);
    object.size = parse_size(child_text(contents, "Size"));
    object.etag = unquote_etag(child_text(contents, "ETag"));
    object.last_modified = child_text(contents, "LastModified");
    page.objects.push_back(std::move(object));
  }
  for (pugi::xml_node prefix : root.children("CommonPrefixes")) {
    page.common_prefixes.push_back(decode_listed(child_text(prefix, "Prefix"), url_encoded));
  }
  if (child_text(root, "IsTruncated") == "true") {
    page.next_continuation_token = child_text(root, "NextContinuationToken");
    if (page.next_continuation_token.empty()) {
      throw_bad_response("ListObjectsV2 page is truncated but has no NextContinuationToken");
    }
  }
  return page;
}

std::string parse_initiate_multipart_upload(std::string_view xml) {
  pugi::xml_document document;
  const pugi::xml_node root = parse_root(document, xml, "InitiateMultipartUploadResult");
  std::string upload_id = child_text(root, "UploadId");
  if (upload_id.empty()) throw_bad_response("InitiateMultipartUploadResult without UploadId");
  return upload_id;
}

std::string parse_complete_multipart_upload(std::string_view xml) {
  pugi::xml_document document;
  const pugi::xml_node root = parse_root(document, xml, "CompleteMultipartUploadResult");
  if (!root.child("ETag")) throw_bad_response("CompleteMultipartUploadResult without ETag");
  return unquote_etag(child_text(root, "ETag"));
}

MultipartUploadsPage parse_list_multipart_uploads(std::string_view xml) {
  pugi::xml_document document;
  const pugi::xml_node root = parse_root(document, xml, "ListMultipartUploadsResult");
  MultipartUploadsPage page;
  for (pugi::xml_node upload : root.children("Upload")) {
    page.uploads.emplace_back(child_text(upload, "Key"), child_text(upload, "UploadId"));
  }
  if (child_text(root, "IsTruncated") == "true") {
    page.next_key_marker = child_text(root, "NextKeyMarker");
    page.next_upload_id_marker = child_text(root, "NextUploadIdMarker");
    if (page.next_key_marker.empty()) {
      throw_bad_response("ListMultipartUploads page is truncated but has no NextKeyMarker");
    }
  }
  return page;
}

PartsPage parse_list_parts(std::string_view xml) {
  pugi::xml_document document;
  const pugi::xml_node root = parse_root(document, xml, "ListPartsResult");
  PartsPage page;
  for (pugi::xml_node part : root.children("Part")) {
    const int number = part.child("PartNumber").text().as_int(0);
    if (number <= 0) throw_bad_response("ListPartsResult with a Part without a valid PartNumber");
    page.parts.push_back(CompletedPart{number, unquote_etag(child_text(part, "ETag"))});
  }
  if (child_text(root, "IsTruncated") == "true") {
    page.next_part_number_marker = root.child("NextPartNumberMarker").text().as_int(0);
    if (page.next_part_number_marker <= 0) {
      throw_bad_response("ListParts page is truncated but has no NextPartNumberMarker");
    }
  }
  return page;
}

std::string parse_copy_result(std::string_view xml) {
  pugi::xml_document document;
  if (!document.load_buffer(xml.data(), xml.size())) throw_bad_response("copy result is not XML");
  const pugi::xml_node root = document.document_element();
  const std::string_view name = root.name();
  if (name != "CopyObjectResult" && name != "CopyPartResult") {
    throw_bad_response("<" + std::string(name) + "> where CopyObjectResult or CopyPartResult was expected");
  }
  std::string etag = unquote_etag(child_text(root, "ETag"));
  if (etag.empty()) throw_bad_response(std::string(name) + " without ETag");
  return etag;
}

std::string complete_multipart_upload_body(const std::vector<CompletedPart>& parts) {
  std::vector<CompletedPart> sorted = parts;
  std::sort(sorted.begin(), sorted.end(),
            [](const CompletedPart& a, const CompletedPart& b) { return a.number < b.number; });
  pugi::xml_document document;
  pugi::xml_node root = document.append_child("CompleteMultipartUpload");
  root.append_attribute("xmlns") = "http://s3.amazonaws.com/doc/2006-03-01/";
  for (const CompletedPart& part : sorted) {
    pugi::xml_node node = root.append_child("Part");
    node.append_child("PartNumber").text().set(part.number);
    node.append_child("ETag").text().set(("\"" + unquote_etag(part.etag) + "\"").c_str());
  }
  std::ostringstream out;
  document.save(out, "", pugi::format_raw | pugi::format_no_declaration);
  return out.str();
}

std::string unquote_etag(std::string_view etag) {
  // Some servers send W/"…" for weak ETags; the value inside is what matters.
  if (etag.starts_with("W/")) etag.remove_prefix(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return std::string(etag);
}

S3Failure read_s3_failure(int http_status, std::string retry_after, std::string_view body) {
  S3Failure failure;
  failure.http_status = http_status;
  failure.retry_after = std::move(retry_after);
  if (auto document = parse_s3_error(body)) {
    failure.code = std::move(document->code);
    failure.message = std::move(document->message);
    failure.endpoint = std::move(document->endpoint);
  }
  return failure;
}

std::chrono::milliseconds parse_retry_after(std::string_view header) {
  while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  while (!header.empty() && (header.back() == ' ' || header.back() == '\r')) header.remove_suffix(1);
  long long seconds = 0;
  const auto [end, error] = std::from_chars(header.data(), header.data() + header.size(), seconds);
  if (header.empty() || error != std::errc() || end != header.data() + header.size() || seconds < 0) {
    return std::chrono::milliseconds{0};
  }
  // A day is already longer than any sane throttle; cap to avoid overflow.
  return std::chrono::seconds{std::min(seconds, 86400LL)};
}

Error s3_error(const S3Failure& failure, const std::string& operation, const std::string& bucket) {
  const int status = failure.http_status;
  const std::string& code = failure.code;
  const std::string message = operation + " failed: " + describe_failure(failure);
  const auto retry_after = parse_retry_after(failure.retry_after);

  if (code == "BadDigest" || code == "InvalidDigest") {
    return Error(ErrorKind::kIntegrity, FailureReason::kIntegrity, message, status);
  }
  if (status == 404 && code == "NoSuchBucket") {
    return Error(ErrorKind::kConfig, FailureReason::kConfig,
                 "missing bucket " + bucket + ": create it or fix `bucket:` (" + message + ")", status);
  }
  if (status == 429 || (status == 503 && code == "SlowDown") || retry_after.count() > 0) {
    return Error(ErrorKind::kThrottled, FailureReason::kThrottled, message, status, retry_after);
  }
  if (status == 301 || status == 307 || code == "PermanentRedirect" || code == "TemporaryRedirect") {
    // libcurl follows no redirect (a signature is for one host), so say where to go.
    std::string where;
    if (!failure.bucket_region.empty()) where = "set `region: " + one_line(failure.bucket_region, 64) + "`";
    if (!failure.endpoint.empty()) {
      where += (where.empty() ? "" : " and ") + std::string("use endpoint ") + one_line(failure.endpoint, 128);
    }
    if (where.empty()) where = "check `region:` and `endpoint:`";
    const std::string text = "bucket " + bucket + " is served elsewhere: " + where + " (" + message + ")";
    if (status == 307 || code == "TemporaryRedirect") return Error(ErrorKind::kTransient, FailureReason::kServerError, text, status);
    return Error(ErrorKind::kConfig, FailureReason::kConfig, text, status);
  }
  if (status == 409 && code == "OperationAborted") return Error(ErrorKind::kTransient, FailureReason::kServerError, message, status);
  if (status == 501) return Error(ErrorKind::kPermanent, FailureReason::kUnsupported, message, status);
  if (status >= 500) return Error(ErrorKind::kTransient, FailureReason::kServerError, message, status);
  // S3 answers 400 RequestTimeout when the client sent the body too slowly.
  if (status == 408 || code == "RequestTimeout") {
    return Error(ErrorKind::kTransient, FailureReason::kNetwork, message, status);
  }
  if (status == 403) return Error(ErrorKind::kPermanent, FailureReason::kAccessDenied, message, status);
  if (status == 404) return Error(ErrorKind::kPermanent, FailureReason::kNotFound, message, status);
  if (status == 400) return Error(ErrorKind::kPermanent, FailureReason::kBadRequest, message, status);
  return Error(ErrorKind::kPermanent, FailureReason::kClientError, message, status);
}

Error s3_check_error(const S3Failure& failure, const S3CheckContext& context) {
  const std::string& code = failure.code;
  const int status = failure.http_status;
  const std::string why = "HTTP " + std::to_string(status) + (code.empty() ? "" : " " + one_line(code, 64));
  const auto refused = [&](const std::string& what) {
    return Error(ErrorKind::kConfig, FailureReason::kConfig, context.subject + ": " + what, status);
  };
  if (code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch") {
    return refused("credentials rejected (" + why + "): fix access_key_id and secret_access_key");
  }
  if (code == "ExpiredToken" || code == "InvalidToken" || code == "TokenRefreshRequired") {
    return refused("session token rejected (" + why + "): renew session_token");
  }
  if (code == "RequestTimeTooSkewed") {
    return refused("the system clock is more than 15 minutes off (" + why + "): fix the clock (NTP)");
  }
  if (!context.bucket_region.empty() && context.bucket_region != context.region) {
    const std::string region = one_line(context.bucket_region, 64);
    return refused("the bucket is in region " + region + " (" + why + "): set `region: " + region + "`");
  }
  if (status == 403) {
    return refused("access denied (" + why + "): the credentials need permission to list, read and write the bucket");
  }
  Error error = s3_error(failure, context.operation, context.bucket);
  // Throttling and server errors say nothing about the settings: keep them
  // retryable; any other refusal means the settings are wrong.
  if (error.retryable() || error.kind() == ErrorKind::kConfig) return error;
  return refused(error.what());
}

}  // namespace blobferry
