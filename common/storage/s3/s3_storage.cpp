// The S3-compatible backend: SigV4-signed requests over libcurl, bodies streamed both ways.
#include "common/storage/s3/s3_storage.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <exception>

#include "common/base/cancellation.h"
#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/base/error.h"
#include "common/storage/s3/curl_share.h"
#include "common/storage/s3/http_date.h"
#include "common/storage/s3/s3_xml.h"
#include "common/storage/s3/transfer_loop.h"
#include "common/storage/s3/uri_encoding.h"

namespace blobferry {
namespace {

constexpr std::size_t kMaxErrorBody = 64 * 1024;
// A ListObjectsV2 page of 1,000 keys of 1,024 bytes is about 2 MB of XML.
constexpr std::size_t kMaxDocumentBody = 32 * 1024 * 1024;
constexpr long kTransferBufferSize = 256 * 1024;
constexpr long kEventBufferSize = 16 * 1024;  // libcurl's smallest upload buffer

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

bool is_header_token(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  });
}

// A header value with a line break would let a metadata value smuggle in
// headers of its own; refuse it rather than send it.
void require_safe_header(const std::string& name, const std::string& value, const std::string& operation) {
  const bool bad_value = value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos;
  if (!is_header_token(name) || bad_value) {
    throw Error(ErrorKind::kPermanent, FailureReason::kBadMetadata,
                operation + ": header " + name + " cannot be sent (invalid name or a line break in its value)");
  }
}

bool is_ip_address_or_localhost(const std::string& host) {
  if (host == "localhost" || host.ends_with(".localhost") || host.front() == '[') return true;
  int dots = 0;
  for (char c : host) {
    if (c == '.') {
      ++dots;
    } else if (!std::isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return dots == 3;
}

// Virtual-hosted addressing puts the bucket in the host name, which only works
// for DNS-safe names, and over TLS only without dots (the wildcard certificate
// covers one label).
bool bucket_fits_host_name(const std::string& bucket, const std::string& scheme) {
  if (bucket.size() < 3 || bucket.size() > 63) return false;
  if (!std::isalnum(static_cast<unsigned char>(bucket.front())) ||
      !std::isalnum(static_cast<unsigned char>(bucket.back()))) {
    return false;
  }
  for (char c : bucket) {
    const bool allowed = std::islower(static_cast<unsigned char>(c)) ||
                         std::isdigit(static_cast<unsigned char>(c)) || c == '-' || (c == '.' && scheme == "http");
    if (!allowed) return false;
  }
  return true;
}

struct EndpointParts {
  std::string scheme;
  std::string host;
  std::string port;
  std::string base_path;
};

EndpointParts parse_endpoint(const ServiceConfig& service) {
  std::string text = service.endpoint.empty() ? "https://s3." + service.region + ".amazonaws.com"
                                              : service.endpoint;
  EndpointParts parts;
  const auto scheme_end = text.find("://");
  parts.scheme = scheme_end == std::string::npos ? "https" : lowercase(text.substr(0, scheme_end));
  std::string rest = scheme_end == std::string::npos ? text : text.substr(scheme_end + 3);
  if (parts.scheme != "http" && parts.scheme != "https") {
    throw config_error("service " + service.name + ": endpoint scheme " + parts.scheme +
                       " is not http or https; fix `endpoint:`");
  }
  const auto path_start = rest.find('/');
  std::string authority = rest.substr(0, path_start);
  if (path_start != std::string::npos) parts.base_path = rest.substr(path_start);
  while (!parts.base_path.empty() && parts.base_path.back() == '/') parts.base_path.pop_back();
  // user:password@ in an endpoint would end up in logs; it is never used for S3.
  if (const auto at = authority.rfind('@'); at != std::string::npos) authority = authority.substr(at + 1);
  const auto port_colon = authority.rfind(':');
  const auto ipv6_end = authority.rfind(']');
  if (port_colon != std::string::npos && (ipv6_end == std::string::npos || port_colon > ipv6_end)) {
    parts.port = authority.substr(port_colon + 1);
    authority = authority.substr(0, port_colon);
  }
  parts.host = lowercase(authority);
  const bool default_port = (parts.scheme == "http" && parts.port == "80") ||
                            (parts.scheme == "https" && parts.port == "443");
  if (default_port) parts.port.clear();
  if (parts.host.empty()) {
    throw config_error("service " + service.name + ": endpoint " + parts.scheme + "://" + rest +
                       " has no host; fix `endpoint:`");
  }
  return parts;
}

bool is_success(long status) { return status >= 200 && status < 300; }

std::string make_operation_text(const std::string& method, const std::string& what,
                                const std::string& storage) {
  return method + " " + what + " on " + storage;
}

}  // namespace

// ---------------------------------------------------------------------------
// One request and its response, and the state libcurl's callbacks share.

struct S3Storage::Request {
  std::string method;
  std::optional<std::string> key;  // nullopt for requests on the bucket itself
  QueryParameters query;
  HttpHeaderList headers;  // beyond Host and the SigV4 ones
  ByteSource* body = nullptr;
  std::string payload_hash = std::string(SigV4Signer::kEmptyPayloadHash);
  const ByteSink* sink = nullptr;  // a 2xx body goes here; otherwise it is kept in Response::body
  bool expect_partial_content = false;
  std::string operation;  // "PUT a.jpg on s3 bucket …", for messages
  std::uint64_t signed_generation = 0;  // which credentials signed it (see refresh_credentials)
};

struct S3Storage::Response {
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercase, in order received
  std::string body;

  std::string header(std::string_view name) const {
    for (const auto& [header_name, value] : headers) {
      if (header_name == name) return value;
    }
    return "";
  }
};

// Named, not anonymous: S3Storage::Exchange holds one.
namespace s3_detail {

struct TransferState {
  long status = 0;
  std::vector<std::pair<std::string, std::string>>* headers = nullptr;
  std::string* body = nullptr;
  const ByteSink* sink = nullptr;
  ByteSource* source = nullptr;
  bool expect_partial_content = false;
  std::string operation;
  std::exception_ptr failure;  // what a callback threw, rethrown after the transfer
  const CancellationToken* cancel = nullptr;  // the calling thread's, checked while bytes move
};

}  // namespace s3_detail
using s3_detail::TransferState;

namespace {

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* state = static_cast<TransferState*>(user);
  const std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    // A new status line (after 100 Continue, say) starts a new response.
    state->headers->clear();
    const auto space = line.find(' ');
    long status = 0;
    if (space != std::string_view::npos) {
      std::from_chars(line.data() + space + 1, line.data() + line.size(), status);
    }
    state->status = status;
    return line.size();
  }
  const auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    state->headers->emplace_back(lowercase(trim(line.substr(0, colon))),
                                 std::string(trim(line.substr(colon + 1))));
  }
  return line.size();
}

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* state = static_cast<TransferState*>(user);
  const std::string_view chunk(data, size * count);
  const bool streamed = state->sink != nullptr && is_success(state->status);
  if (!streamed) {
    const std::size_t limit = is_success(state->status) ? kMaxDocumentBody : kMaxErrorBody;
    if (state->body->size() + chunk.size() > limit) {
      if (is_success(state->status)) {
        state->failure = std::make_exception_ptr(
            Error(ErrorKind::kTransient, FailureReason::kBadResponse, state->operation + ": response body is too large"));
        return 0;
      }
      return chunk.size();  // enough of an error body was kept to explain it
    }
    state->body->append(chunk);
    return chunk.size();
  }
  if (state->expect_partial_content && state->status != 206) {
    // The server ignored Range: passing its whole body on as the range would
    // hand the caller the wrong bytes.
    state->failure = std::make_exception_ptr(Error(ErrorKind::kPermanent, FailureReason::kBadResponse,
                                                   state->operation + ": Range was ignored (HTTP " +
                                                       std::to_string(state->status) + ")"));
    return 0;
  }
  try {
    (*state->sink)(chunk);
  } catch (...) {
    state->failure = std::current_exception();
    return 0;
  }
  return chunk.size();
}

std::size_t on_read(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto* state = static_cast<TransferState*>(user);
  try {
    return state->source->read(buffer, size * count);
  } catch (...) {
    state->failure = std::current_exception();
    return CURL_READFUNC_ABORT;
  }
}

// libcurl rewinds the body when it must send it again (a redirect, a
// connection that died before the response, a 100-continue refusal).
int on_seek(void* user, curl_off_t offset, int origin) {
  auto* state = static_cast<TransferState*>(user);
  if (origin != SEEK_SET || offset != 0) return CURL_SEEKFUNC_CANTSEEK;
  try {
    return state->source->rewind() ? CURL_SEEKFUNC_OK : CURL_SEEKFUNC_CANTSEEK;
  } catch (...) {
    state->failure = std::current_exception();
    return CURL_SEEKFUNC_FAIL;
  }
}

template <typename T>
void set_option(CURL* handle, CURLoption option, T value) {
  const CURLcode code = curl_easy_setopt(handle, option, value);
  if (code != CURLE_OK) {
    throw Error(ErrorKind::kPermanent, FailureReason::kInternal,
                std::string("curl_easy_setopt failed: ") + curl_easy_strerror(code));
  }
}

// Options every request shares: what libcurl may do, how long it may wait,
// and whom it trusts.
void set_connection_options(CURL* handle, const ServiceConfig& service) {
  set_option(handle, CURLOPT_PROTOCOLS_STR, "http,https");
  set_option(handle, CURLOPT_PATH_AS_IS, 1L);  // keys may hold "//", "/./" and "/../"
  set_option(handle, CURLOPT_NOSIGNAL, 1L);
  set_option(handle, CURLOPT_CONNECTTIMEOUT, static_cast<long>(std::max(1, service.http_open_timeout)));
  // A transfer is stalled, not slow, when not one byte moves for the read timeout.
  set_option(handle, CURLOPT_LOW_SPEED_LIMIT, 1L);
  set_option(handle, CURLOPT_LOW_SPEED_TIME, static_cast<long>(std::max(1, service.http_read_timeout)));
  set_option(handle, CURLOPT_TCP_KEEPALIVE, 1L);
  set_option(handle, CURLOPT_TCP_KEEPIDLE, 30L);
  set_option(handle, CURLOPT_TCP_KEEPINTVL, 15L);
  set_option(handle, CURLOPT_SSL_VERIFYPEER, service.verify_tls ? 1L : 0L);
  set_option(handle, CURLOPT_SSL_VERIFYHOST, service.verify_tls ? 2L : 0L);
  if (!service.ca_bundle.empty()) set_option(handle, CURLOPT_CAINFO, service.ca_bundle.c_str());
  set_option(handle, CURLOPT_BUFFERSIZE, kTransferBufferSize);
  set_option(handle, CURLOPT_SHARE, CurlShare::handle());
}

// libcurl calls this about once a second even while nothing moves (a server
// that stalls its answer), so a cancelled copy ends promptly and its thread
// can be joined instead of abandoned.
int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* state = static_cast<const TransferState*>(user);
  return state->cancel && state->cancel->cancelled() ? 1 : 0;
}

void set_callbacks(CURL* handle, TransferState& state) {
  if (state.cancel) {
    set_option(handle, CURLOPT_NOPROGRESS, 0L);
    set_option(handle, CURLOPT_XFERINFOFUNCTION, on_progress);
    set_option(handle, CURLOPT_XFERINFODATA, &state);
  }
  set_option(handle, CURLOPT_HEADERFUNCTION, on_header);
  set_option(handle, CURLOPT_HEADERDATA, &state);
  set_option(handle, CURLOPT_WRITEFUNCTION, on_body);
  set_option(handle, CURLOPT_WRITEDATA, &state);
}

// PUT and POST both go through libcurl's upload path, so a body is always
// streamed from a ByteSource (empty_body when there is none) and libcurl
// never adds a form Content-Type of its own.
void set_method(CURL* handle, const std::string& method, TransferState& state, ByteSource& empty_body) {
  if (method == "HEAD") {
    set_option(handle, CURLOPT_NOBODY, 1L);
    return;
  }
  if (method == "GET") {
    set_option(handle, CURLOPT_HTTPGET, 1L);
    return;
  }
  if (method == "DELETE") {
    set_option(handle, CURLOPT_CUSTOMREQUEST, "DELETE");
    return;
  }
  if (!state.source) state.source = &empty_body;
  set_option(handle, CURLOPT_UPLOAD, 1L);
  set_option(handle, CURLOPT_UPLOAD_BUFFERSIZE, kTransferBufferSize);
  set_option(handle, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(state.source->size()));
  set_option(handle, CURLOPT_READFUNCTION, on_read);
  set_option(handle, CURLOPT_READDATA, &state);
  set_option(handle, CURLOPT_SEEKFUNCTION, on_seek);
  set_option(handle, CURLOPT_SEEKDATA, &state);
  if (method != "PUT") set_option(handle, CURLOPT_CUSTOMREQUEST, method.c_str());
}

CurlSlistPtr curl_header_list(const HttpHeaderList& headers) {
  CurlSlistPtr list;
  for (const auto& [name, value] : headers) {
    // "Name;" is libcurl's way to send a header with an empty value.
    append_curl_header(list, value.empty() ? name + ";" : name + ": " + value);
  }
  return list;
}

std::optional<std::uint64_t> parse_number(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Content-Range "bytes 0-9/1234" gives the whole object's size; a plain
// response's Content-Length is that size already.
std::uint64_t object_size(const std::string& content_range, const std::string& content_length) {
  if (const auto slash = content_range.rfind('/'); slash != std::string::npos) {
    if (auto total = parse_number(std::string_view(content_range).substr(slash + 1))) return *total;
  }
  return parse_number(content_length).value_or(0);
}

bool is_hex_md5(std::string_view etag) {
  return etag.size() == 32 && std::all_of(etag.begin(), etag.end(), [](unsigned char c) {
           return std::isxdigit(c) != 0;
         });
}

}  // namespace

// ---------------------------------------------------------------------------

S3Storage::S3Storage(const ServiceConfig& service, Clock clock)
    : service_(service),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::system_clock::now(); })),
      profile_(&profile_for(service.name, service.provider, service.endpoint)),
      credentials_{service.access_key_id, service.secret_access_key, service.session_token},
      signer_(credentials_, service.region.empty() ? "us-east-1" : service.region, "s3") {
  if (service_.region.empty()) service_.region = "us-east-1";
  if (service_.bucket.empty()) throw config_error("service " + service_.name + " has no `bucket:`");
  EndpointParts endpoint = parse_endpoint(service_);
  scheme_ = std::move(endpoint.scheme);
  host_ = std::move(endpoint.host);
  port_ = std::move(endpoint.port);
  base_path_ = std::move(endpoint.base_path);
  path_style_ = service_.force_path_style || is_ip_address_or_localhost(host_) ||
                !bucket_fits_host_name(service_.bucket, scheme_);
  ensure_curl_initialized();
}

std::string S3Storage::describe() const {
  return "s3 bucket " + service_.bucket + " at " + scheme_ + "://" + host_ + (port_.empty() ? "" : ":" + port_) +
         base_path_;
}

std::string S3Storage::request_host() const {
  const std::string host = path_style_ ? host_ : service_.bucket + "." + host_;
  return port_.empty() ? host : host + ":" + port_;
}

std::string S3Storage::request_path(const std::optional<std::string>& key) const {
  std::string path = base_path_;
  if (path_style_) path += "/" + service_.bucket;
  if (key) {
    path += "/" + *key;
  } else if (!path_style_) {
    path += "/";
  }
  return path;
}

std::string S3Storage::object_url(const std::string& key) const {
  return scheme_ + "://" + request_host() + uri_encode_path(request_path(key));
}

std::string S3Storage::operation_name(const std::string& method, const std::string& key) const {
  return make_operation_text(method, key, describe());
}

// Everything libcurl's callbacks and options point to while one request
// runs: it must not move, and lives until the transfer ended.
struct S3Storage::Exchange {
  Response response;
  TransferState state;
  CurlSlistPtr header_list;
  std::string url;
  char error_buffer[CURL_ERROR_SIZE] = {};
  MemoryByteSource empty_body{""};
};

void S3Storage::prepare(Request& request, Exchange& exchange, CURL* handle, const CancellationToken* cancel) {
  if (cancel && cancel->cancelled()) throw cancelled_error(request.operation);
  RequestToSign to_sign{.method = request.method,
                        .path = request_path(request.key),
                        .query = request.query,
                        .headers = {{"Host", request_host()}},
                        .payload_hash = request.payload_hash};
  for (const auto& [name, value] : request.headers) {
    require_safe_header(name, value, request.operation);
    to_sign.headers.emplace_back(name, value);
  }
  {
    std::lock_guard lock(signer_mutex_);
    signer_.sign_s3_request(to_sign, clock_() + clock_offset());
    request.signed_generation = credential_generation_;
  }

  exchange.header_list = curl_header_list(to_sign.headers);
  // R2 and GCS hand a Content-Encoding: gzip object over decoded to a request
  // that does not ask otherwise, and the decoded bytes fail their MD5. So
  // every request asks for the stored bytes, and CURLOPT_ACCEPT_ENCODING is
  // never set (libcurl would decode them itself).
  append_curl_header(exchange.header_list, "Accept-Encoding: identity");

  exchange.url = scheme_ + "://" + request_host() + uri_encode_path(to_sign.path);
  if (const std::string query = SigV4Signer::canonical_query_string(request.query); !query.empty()) {
    exchange.url += "?" + query;
  }

  TransferState& state = exchange.state;
  state.headers = &exchange.response.headers;
  state.body = &exchange.response.body;
  state.sink = request.sink;
  state.source = request.body;
  state.expect_partial_content = request.expect_partial_content;
  state.operation = request.operation;
  state.cancel = cancel;

  set_option(handle, CURLOPT_URL, exchange.url.c_str());
  set_option(handle, CURLOPT_HTTPHEADER, exchange.header_list.get());
  set_option(handle, CURLOPT_ERRORBUFFER, exchange.error_buffer);
  set_connection_options(handle, service_);
  set_callbacks(handle, state);
  set_method(handle, request.method, state, exchange.empty_body);
}

S3Storage::Response S3Storage::finish(const Request& request, Exchange& exchange, CURL* handle, CURLcode code) {
  const TransferState& state = exchange.state;
  if (state.failure) std::rethrow_exception(state.failure);
  if (code == CURLE_ABORTED_BY_CALLBACK && state.cancel && state.cancel->cancelled()) {
    throw cancelled_error(request.operation);
  }
  if (code != CURLE_OK) throw curl_failure(code, request.operation, exchange.error_buffer);
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &exchange.response.status);
  return std::move(exchange.response);
}

S3Storage::Response S3Storage::perform_once(Request& request) {
  struct Lease {
    S3Storage* owner;
    CurlEasyPtr handle;
    ~Lease() { owner->handles_.give_back(std::move(handle)); }
  } lease{this, handles_.take()};
  Exchange exchange;
  prepare(request, exchange, lease.handle.get(), CancellationToken::current());
  return finish(request, exchange, lease.handle.get(), curl_easy_perform(lease.handle.get()));
}

namespace {

bool rewind_body(ByteSource* body) { return body == nullptr || body->rewind(); }

bool is_expired_token(const std::string& code) {
  return code == "ExpiredToken" || code == "TokenRefreshRequired";
}

// For settling an ambiguous write: a HEAD that fails proves nothing either
// way, and the write's own error is the one to report.
std::optional<ObjectInfo> head_or_nothing(Storage& storage, const std::string& key) {
  try {
    return storage.head(key);
  } catch (const Error&) {
    return std::nullopt;
  }
}

// Upload options that are stored with the object as metadata (and so are
// replaced, not kept, by a copy that sets them) rather than per-request
// settings such as encryption or storage class.
bool is_metadata_header(const std::string& name) {
  return name == "cache-control" || name == "content-disposition" || name == "content-encoding" ||
         name == "content-language" || name == "expires" || name.starts_with("x-amz-meta-");
}

// A refusal of the copy itself, which streaming the bytes can get around:
// not implemented, refused between these buckets (Spaces across clusters),
// or a policy that lets this key read and write but not copy.
bool is_copy_refusal(long status, const std::string& code) {
  return status == 501 || code == "NotImplemented" || (status == 400 && code == "InvalidRequest") ||
         (status == 403 && code == "AccessDenied");
}

}  // namespace

void S3Storage::set_credential_reloader(CredentialReloader reload) {
  std::lock_guard lock(signer_mutex_);
  reload_credentials_ = std::move(reload);
}

bool S3Storage::refresh_credentials(std::uint64_t signed_generation) {
  CredentialReloader reload;
  {
    std::lock_guard lock(signer_mutex_);
    // Another thread met the expiry first and refreshed: just sign again.
    if (credential_generation_ != signed_generation) return true;
    reload = reload_credentials_;
  }
  if (!reload) return false;
  const std::optional<AwsCredentials> fresh = reload();
  if (!fresh || fresh->access_key_id.empty()) return false;
  std::lock_guard lock(signer_mutex_);
  const bool same = fresh->access_key_id == credentials_.access_key_id &&
                    fresh->secret_access_key == credentials_.secret_access_key &&
                    fresh->session_token == credentials_.session_token;
  if (same) return credential_generation_ != signed_generation;
  credentials_ = *fresh;
  ++credential_generation_;
  signer_ = SigV4Signer(credentials_, service_.region, "s3");
  return true;
}

S3Storage::Response S3Storage::perform(Request& request) {
  Response response = perform_once(request);
  if (response.status < 400 || request.method == "HEAD") return response;
  const auto document = parse_s3_error(response.body);
  const std::string code = document ? document->code : "";
  if (code == "RequestTimeTooSkewed") {
    // The server signs nothing with its Date, but it is the clock the
    // signature is checked against; 15 minutes of tolerance make a second's
    // resolution enough.
    const auto server_time = parse_http_date(response.header("date"));
    if (!server_time || !rewind_body(request.body)) return response;
    const auto offset = std::chrono::duration_cast<std::chrono::milliseconds>(*server_time - clock_());
    clock_offset_ms_.store(offset.count());
    return perform_once(request);
  }
  if (is_expired_token(code)) {
    const std::string why = "HTTP " + std::to_string(response.status) + " " + code;
    if (refresh_credentials(request.signed_generation) && rewind_body(request.body)) {
      response = perform_once(request);
      const auto again = parse_s3_error(response.body);
      if (response.status < 400 || !again || !is_expired_token(again->code)) return response;
    }
    // kConfig: no retry helps until someone renews it; the worker stops
    // taking this service's jobs and reads the credentials again now and then.
    throw Error(ErrorKind::kConfig, FailureReason::kCredentialsExpired,
                "service " + service_.name + ": session token expired (" + why +
                    ") and storage.yml and the environment hold no newer one: renew session_token "
                    "(or AWS_SESSION_TOKEN)",
                static_cast<int>(response.status))
        .about_service(service_.name);
  }
  return response;
}

std::optional<std::string> S3Storage::landed_multipart(const std::string& key,
                                                       const std::vector<CompletedPart>& parts) {
  // S3's multipart ETag: MD5 of the parts' binary MD5s, then "-" and their count.
  std::string digests;
  for (const CompletedPart& part : parts) {
    const std::string etag = unquote_etag(part.etag);
    const auto binary = is_hex_md5(etag) ? hex_decode(etag) : std::nullopt;
    if (!binary) return std::nullopt;  // an encrypted part's ETag proves nothing
    digests += *binary;
  }
  const std::string expected = hex_encode(md5_of(digests)) + "-" + std::to_string(parts.size());
  const std::optional<ObjectInfo> there = head_or_nothing(*this, key);
  if (!there || lowercase(there->etag) != expected) return std::nullopt;
  return there->etag;
}

std::optional<std::string> S3Storage::landed_put(const std::string& key, const std::string& content_md5) {
  const auto expected = content_md5.empty() ? std::nullopt : base64_md5_to_hex(content_md5);
  if (!expected) return std::nullopt;
  const std::optional<ObjectInfo> there = head_or_nothing(*this, key);
  if (!there || !there->etag_is_md5 || lowercase(there->etag) != *expected) return std::nullopt;
  return there->etag;
}

std::optional<std::string> S3Storage::landed_copy(const S3Storage& source, const std::string& source_key,
                                                  const std::string& key) {
  const std::optional<ObjectInfo> there = head_or_nothing(*this, key);
  if (!there) return std::nullopt;
  const std::optional<ObjectInfo> original = head_or_nothing(const_cast<S3Storage&>(source), source_key);
  // Only a single-part MD5 carries over a copy unchanged; anything else is copied again.
  if (!original || !original->etag_is_md5 || !is_hex_md5(original->etag) || original->size != there->size ||
      lowercase(original->etag) != lowercase(there->etag)) {
    return std::nullopt;
  }
  return there->etag;
}

void S3Storage::throw_failure(const Response& response, const std::string& operation) const {
  S3Failure failure = read_s3_failure(static_cast<int>(response.status), response.header("retry-after"), response.body);
  failure.bucket_region = response.header("x-amz-bucket-region");
  // S3 can answer 200 and still fail (CompleteMultipartUpload, CopyObject):
  // the error document decides, and such late failures are worth a retry.
  if (is_success(response.status)) failure.http_status = failure.code == "SlowDown" ? 503 : 500;
  throw s3_error(failure, operation, service_.bucket);
}

namespace {

// Parses a 2xx document; S3 may put an <Error> in a 200, and a garbled reply
// is reported with the operation that got it.
template <typename Parse>
auto parse_document(const std::string& body, const std::string& operation, Parse parse) {
  try {
    return parse(body);
  } catch (const Error& error) {
    throw Error(error.kind(), error.failure_reason(), operation + ": " + error.what(), error.http_status());
  }
}

bool has_encryption_header(const std::vector<std::pair<std::string, std::string>>& headers) {
  return std::any_of(headers.begin(), headers.end(), [](const auto& header) {
    return header.first == "x-amz-server-side-encryption" ||
           header.first == "x-amz-server-side-encryption-customer-algorithm";
  });
}

// Whether a HEAD or GET's ETag is the MD5 of the bytes: only an MD5-shaped
// one, on a provider whose plain ETags are MD5s, of an object that is not
// encrypted with a key S3 mixes into the ETag (KMS, DSSE, a customer key).
bool etag_is_md5(const std::string& etag, const std::vector<std::pair<std::string, std::string>>& headers,
                 const ProviderProfile& profile) {
  if (!is_hex_md5(etag) || !profile.single_part_etag_is_md5) return false;
  for (const auto& [name, value] : headers) {
    if (name == "x-amz-server-side-encryption-customer-algorithm") return false;
    if (name == "x-amz-server-side-encryption") {
      const std::string how = lowercase(value);
      if (how.starts_with("aws:kms")) return false;  // aws:kms and aws:kms:dsse
      if (how == "aes256" && !profile.sse_s3_etag_is_md5) return false;
    }
  }
  return true;
}

ObjectInfo object_info_from(const std::string& key, const std::vector<std::pair<std::string, std::string>>& headers,
                            const ProviderProfile& profile) {
  ObjectInfo info;
  info.key = key;
  std::string content_range;
  std::string content_length;
  for (const auto& [name, value] : headers) {
    if (name == "etag") info.etag = unquote_etag(value);
    else if (name == "last-modified") info.last_modified = value;
    else if (name == "content-range") content_range = value;
    else if (name == "content-length") content_length = value;
    if (is_preserved_header(name)) info.metadata.emplace_back(name, value);
  }
  info.size = object_size(content_range, content_length);
  info.etag_is_md5 = etag_is_md5(info.etag, headers, profile);
  return info;
}

}  // namespace

void S3Storage::add_upload_headers(Request& request, const PutOptions& options) const {
  for (const auto& [name, value] : options.metadata) request.headers.emplace_back(lowercase(name), value);
  for (const auto& [name, value] : service_.upload_headers) {
    const std::string lower = lowercase(name);
    const bool already_set = std::any_of(options.metadata.begin(), options.metadata.end(),
                                         [&](const auto& header) { return lowercase(header.first) == lower; });
    if (!already_set) request.headers.emplace_back(lower, value);
  }
  // R2 and Spaces reject ACL headers they do not support, so none by default;
  // an `upload: acl:` of its own wins over `public: true`.
  const bool acl_set = std::any_of(request.headers.begin(), request.headers.end(),
                                   [](const auto& header) { return header.first == "x-amz-acl"; });
  if (service_.public_acl && !acl_set) request.headers.emplace_back("x-amz-acl", "public-read");
}

namespace {

// A server that ignores Content-MD5 (s3rver, some S3-compatibles) would keep
// corrupted bytes silently. Single-part ETags are the stored bytes' MD5, so
// compare them too, but not for encrypted objects: their ETags need not be
// MD5s (SSE-KMS, SSE-C, MinIO's SSE-S3), and the servers that encrypt (AWS,
// MinIO) verify Content-MD5 themselves.
void verify_stored_md5(const std::string& etag, const std::string& content_md5, bool encrypted,
                       const std::string& operation) {
  if (content_md5.empty() || encrypted || !is_hex_md5(etag)) return;
  const auto expected = base64_md5_to_hex(content_md5);
  if (!expected || lowercase(etag) == *expected) return;
  throw Error(ErrorKind::kIntegrity, FailureReason::kIntegrity,
              operation + ": the server stored bytes with MD5 " + lowercase(etag) + " but Content-MD5 was " +
                  *expected + " (the server did not verify Content-MD5)");
}

}  // namespace

// ---------------------------------------------------------------------------
// The Storage operations.

// Listing is a read in either mode: S3 grants writes per object, so a
// writable bucket shows only when the first copy lands.
void S3Storage::check(Access) {
  Request request;
  request.method = "GET";
  request.query = {{"list-type", "2"}, {"max-keys", "1"}};
  request.operation = "listing " + describe() + " for service " + service_.name;
  const std::string subject = "service " + service_.name + " (" + describe() + ")";
  Response response;
  try {
    response = perform(request);
  } catch (const Error& error) {
    if (error.kind() == ErrorKind::kTransient) {
      throw Error(ErrorKind::kTransient, FailureReason::kNetwork, "cannot reach " + describe() + " for service " +
                                                        service_.name + ": " + error.what());
    }
    throw;
  }
  if (is_success(response.status)) return;

  S3Failure failure = read_s3_failure(static_cast<int>(response.status), response.header("retry-after"), response.body);
  throw s3_check_error(failure, S3CheckContext{request.operation, subject, service_.bucket, service_.region,
                                               response.header("x-amz-bucket-region")});
}

std::optional<ObjectInfo> S3Storage::head(const std::string& key) {
  Request request;
  request.method = "HEAD";
  request.key = key;
  request.operation = operation_name("HEAD", key);
  Response response = perform(request);
  if (response.status == 400) {
    // A HEAD's error has no body to say which 400 it is; a one-byte GET's
    // does, and perform() renews an expired session token on it. Only then
    // is the HEAD worth asking again.
    const ByteSink discard = [](std::string_view) {};
    Request probe;
    probe.method = "GET";
    probe.key = key;
    probe.headers = {{"Range", "bytes=0-0"}};
    probe.sink = &discard;
    probe.operation = request.operation;
    const Response answer = perform(probe);
    if (answer.status == 400) throw_failure(answer, request.operation);
    response = perform(request);
  }
  // HEAD has no body, so a 404 cannot tell a missing key from a missing
  // bucket; check() is what reports the latter.
  if (response.status == 404) return std::nullopt;
  if (response.status == 403) {
    // Without s3:ListBucket S3 answers 403, not 404, for a key that is not
    // there; this one object is what failed, not the service.
    throw Error(ErrorKind::kPermanent, FailureReason::kNotFound,
                request.operation + ": missing or not readable (HTTP 403; a bucket that does not grant "
                                    "s3:ListBucket answers 403 for a missing key)",
                403);
  }
  if (!is_success(response.status)) throw_failure(response, request.operation);
  return object_info_from(key, response.headers, *profile_);
}

std::optional<ObjectInfo> S3Storage::get(const std::string& key, const ByteSink& sink,
                                         std::optional<ByteRange> range) {
  Request request;
  request.method = "GET";
  request.key = key;
  request.sink = &sink;
  request.operation = operation_name("GET", key);
  if (range) {
    request.headers.emplace_back("Range",
                                 "bytes=" + std::to_string(range->first) + "-" + std::to_string(range->last));
    request.expect_partial_content = true;
  }
  const Response response = perform(request);
  if (response.status == 404) {
    const auto document = parse_s3_error(response.body);
    if (!document || document->code != "NoSuchBucket") return std::nullopt;
  }
  if (!is_success(response.status)) throw_failure(response, request.operation);
  return object_info_from(key, response.headers, *profile_);
}

std::string S3Storage::put(const std::string& key, ByteSource& body, const PutOptions& options) {
  Request request;
  request.method = "PUT";
  request.key = key;
  request.body = &body;
  request.payload_hash = std::string(SigV4Signer::kUnsignedPayload);
  request.operation = operation_name("PUT", key);
  // Always base64 of 16 bytes (the copy engine refuses any other checksum as
  // "invalid_checksum" before sending): RGW answers a Content-MD5 that is not
  // base64 with 403 AccessDenied, which would read as a credentials problem.
  if (!options.content_md5.empty()) request.headers.emplace_back("Content-MD5", options.content_md5);
  add_upload_headers(request, options);
  Response response;
  try {
    response = perform(request);
  } catch (const Error& error) {
    // The connection died after the body went out: the object may be there.
    if (!error.retryable() || error.kind() == ErrorKind::kIntegrity) throw;
    if (auto etag = landed_put(key, options.content_md5)) return *etag;
    throw;
  }
  if (response.status >= 500) {
    if (auto etag = landed_put(key, options.content_md5)) return *etag;
  }
  if (!is_success(response.status)) throw_failure(response, request.operation);
  const std::string etag = unquote_etag(response.header("etag"));
  verify_stored_md5(etag, options.content_md5, has_encryption_header(response.headers), request.operation);
  return etag;
}

// ---------------------------------------------------------------------------
// The event-driven forms: the same requests and the same reading of a plain
// answer, with no second request of their own.

struct S3Storage::AsyncCall {
  Request request;
  Exchange exchange;
  CurlEasyPtr handle;
  ByteSink sink;
  std::unique_ptr<MemoryByteSource> body;
  std::function<Answer(const Response&)> read;
  AnswerDone done;
};

void S3Storage::start_async(TransferLoop& loop, std::shared_ptr<AsyncCall> call, const CancellationToken* cancel) {
  try {
    call->handle = loop.take_handle();
    prepare(call->request, call->exchange, call->handle.get(), cancel);
    // Small bodies, hundreds in flight: libcurl's buffers are most of what
    // a transfer costs in memory, so they are kept small here.
    set_option(call->handle.get(), CURLOPT_BUFFERSIZE, kEventBufferSize);
    set_option(call->handle.get(), CURLOPT_UPLOAD_BUFFERSIZE, kEventBufferSize);
    loop.start(call->handle.get(), [this, &loop, call](CURLcode code) {
      Answer answer;
      try {
        answer = call->read(finish(call->request, call->exchange, call->handle.get(), code));
      } catch (...) {
        answer = Answer{std::nullopt, "", std::current_exception()};
      }
      loop.give_back(std::move(call->handle));
      call->done(std::move(answer));
    });
  } catch (...) {
    if (call->handle) loop.give_back(std::move(call->handle));
    call->done(Answer{std::nullopt, "", std::current_exception()});
  }
}

void S3Storage::start_head(TransferLoop& loop, const std::string& key, const CancellationToken* cancel,
                           AnswerDone done) {
  auto call = std::make_shared<AsyncCall>();
  call->request.method = "HEAD";
  call->request.key = key;
  call->request.operation = operation_name("HEAD", key);
  call->read = [this, key, operation = call->request.operation](const Response& response) {
    if (response.status == 404) return Answer{};
    if (!is_success(response.status)) throw_failure(response, operation);
    return Answer{object_info_from(key, response.headers, *profile_), "", nullptr};
  };
  call->done = std::move(done);
  start_async(loop, std::move(call), cancel);
}

void S3Storage::start_get(TransferLoop& loop, const std::string& key, ByteSink sink, const CancellationToken* cancel,
                          AnswerDone done) {
  auto call = std::make_shared<AsyncCall>();
  call->sink = std::move(sink);
  call->request.method = "GET";
  call->request.key = key;
  call->request.sink = &call->sink;
  call->request.operation = operation_name("GET", key);
  call->read = [this, key, operation = call->request.operation](const Response& response) {
    if (response.status == 404) {
      const auto document = parse_s3_error(response.body);
      if (!document || document->code != "NoSuchBucket") return Answer{};
    }
    if (!is_success(response.status)) throw_failure(response, operation);
    return Answer{object_info_from(key, response.headers, *profile_), "", nullptr};
  };
  call->done = std::move(done);
  start_async(loop, std::move(call), cancel);
}

void S3Storage::start_put(TransferLoop& loop, const std::string& key, std::string_view body, const PutOptions& options,
                          const CancellationToken* cancel, AnswerDone done) {
  auto call = std::make_shared<AsyncCall>();
  call->body = std::make_unique<MemoryByteSource>(body);
  call->request.method = "PUT";
  call->request.key = key;
  call->request.body = call->body.get();
  call->request.payload_hash = std::string(SigV4Signer::kUnsignedPayload);
  call->request.operation = operation_name("PUT", key);
  if (!options.content_md5.empty()) call->request.headers.emplace_back("Content-MD5", options.content_md5);
  call->done = std::move(done);
  try {
    add_upload_headers(call->request, options);
  } catch (...) {
    call->done(Answer{std::nullopt, "", std::current_exception()});
    return;
  }
  call->read = [this, md5 = options.content_md5, operation = call->request.operation](const Response& response) {
    if (!is_success(response.status)) throw_failure(response, operation);
    Answer answer;
    answer.etag = unquote_etag(response.header("etag"));
    verify_stored_md5(answer.etag, md5, has_encryption_header(response.headers), operation);
    return answer;
  };
  start_async(loop, std::move(call), cancel);
}

ListPage S3Storage::list(const ListRequest& list_request) {
  Request request;
  request.method = "GET";
  // encoding-type=url lets S3 return keys XML 1.0 cannot carry (control
  // characters); the parser decodes only when the reply says it encoded.
  request.query = {{"list-type", "2"},
                   {"encoding-type", "url"},
                   {"max-keys", std::to_string(std::clamp(list_request.max_keys, 1, 1000))}};
  if (!list_request.prefix.empty()) request.query.emplace_back("prefix", list_request.prefix);
  if (!list_request.delimiter.empty()) request.query.emplace_back("delimiter", list_request.delimiter);
  if (!list_request.start_after.empty()) request.query.emplace_back("start-after", list_request.start_after);
  if (!list_request.continuation_token.empty()) {
    request.query.emplace_back("continuation-token", list_request.continuation_token);
  }
  request.operation = make_operation_text("LIST", "prefix '" + list_request.prefix + "'", describe());
  const Response response = perform(request);
  if (!is_success(response.status)) throw_failure(response, request.operation);
  ListPage page = parse_document(response.body, request.operation, parse_list_objects_v2);
  for (ObjectInfo& object : page.objects) {
    object.etag_is_md5 = is_hex_md5(object.etag) && profile_->single_part_etag_is_md5;
  }
  return page;
}

std::string S3Storage::create_multipart(const std::string& key, const PutOptions& options) {
  Request request;
  request.method = "POST";
  request.key = key;
  request.query = {{"uploads", ""}};
  request.operation = operation_name("CreateMultipartUpload", key);
  add_upload_headers(request, options);
  const Response response = perform(request);
  if (!is_success(response.status) || parse_s3_error(response.body)) throw_failure(response, request.operation);
  return parse_document(response.body, request.operation, parse_initiate_multipart_upload);
}

std::string S3Storage::upload_part(const std::string& key, const std::string& upload_id, int part_number,
                                   ByteSource& body, const std::string& content_md5) {
  Request request;
  request.method = "PUT";
  request.key = key;
  request.query = {{"partNumber", std::to_string(part_number)}, {"uploadId", upload_id}};
  request.body = &body;
  request.payload_hash = std::string(SigV4Signer::kUnsignedPayload);
  request.operation = operation_name("UploadPart " + std::to_string(part_number) + " of", key);
  if (!content_md5.empty()) request.headers.emplace_back("Content-MD5", content_md5);
  const Response response = perform(request);
  if (!is_success(response.status)) throw_failure(response, request.operation);
  const std::string etag = unquote_etag(response.header("etag"));
  verify_stored_md5(etag, content_md5, has_encryption_header(response.headers), request.operation);
  return etag;
}

std::string S3Storage::complete_multipart(const std::string& key, const std::string& upload_id,
                                          const std::vector<CompletedPart>& parts) {
  const std::string xml = complete_multipart_upload_body(parts);
  MemoryByteSource body(xml);
  Request request;
  request.method = "POST";
  request.key = key;
  request.query = {{"uploadId", upload_id}};
  request.headers = {{"Content-Type", "application/xml"}};
  request.body = &body;
  request.payload_hash = hex_encode(sha256_of(xml));
  request.operation = operation_name("CompleteMultipartUpload", key);
  Response response;
  try {
    response = perform(request);
  } catch (const Error& error) {
    // The answer was lost; the upload may have completed all the same.
    if (!error.retryable()) throw;
    if (auto etag = landed_multipart(key, parts)) return *etag;
    throw;
  }
  const auto document = parse_s3_error(response.body);
  // A 5xx (or an <Error> in a 200) may come after the object was assembled,
  // and a retried Complete whose first answer was lost finds NoSuchUpload:
  // what the key holds settles both.
  const bool ambiguous = response.status >= 500 || (is_success(response.status) && document) ||
                         (response.status == 404 && document && document->code == "NoSuchUpload");
  if (ambiguous) {
    if (auto etag = landed_multipart(key, parts)) return *etag;
  }
  if (!is_success(response.status) || document) throw_failure(response, request.operation);
  const std::string etag = parse_document(response.body, request.operation, parse_complete_multipart_upload);
  // Ceph RGW 16 answers an empty <ETag>, and a profile may not trust the
  // answer's: the object's own HEAD is the truth.
  if (!etag.empty() && profile_->complete_etag_trusted) return etag;
  const std::optional<ObjectInfo> there = head(key);
  if (there && !there->etag.empty()) return there->etag;
  if (!etag.empty()) return etag;
  throw Error(ErrorKind::kTransient, FailureReason::kBadResponse,
              request.operation + ": completed without an ETag, and HEAD found " + (there ? "none either" : "no object"));
}

std::vector<S3Storage::OpenUpload> S3Storage::list_multipart_uploads(const std::string& prefix) {
  std::vector<OpenUpload> open;
  MultipartUploadsPage page;
  do {
    Request request;
    request.method = "GET";
    request.query = {{"uploads", ""}};
    if (!prefix.empty()) request.query.emplace_back("prefix", prefix);
    if (!page.next_key_marker.empty()) {
      request.query.emplace_back("key-marker", page.next_key_marker);
      request.query.emplace_back("upload-id-marker", page.next_upload_id_marker);
    }
    request.operation = make_operation_text("ListMultipartUploads", "prefix '" + prefix + "'", describe());
    const Response response = perform(request);
    if (!is_success(response.status)) throw_failure(response, request.operation);
    page = parse_document(response.body, request.operation, parse_list_multipart_uploads);
    for (auto& [key, upload_id] : page.uploads) open.push_back({std::move(key), std::move(upload_id)});
  } while (!page.next_key_marker.empty());
  return open;
}

void S3Storage::abort_multipart(const std::string& key, const std::string& upload_id) {
  Request request;
  request.method = "DELETE";
  request.key = key;
  request.query = {{"uploadId", upload_id}};
  request.operation = operation_name("AbortMultipartUpload", key);
  const Response response = perform(request);
  if (is_success(response.status)) return;
  const auto document = parse_s3_error(response.body);
  if (response.status == 404 && document && document->code == "NoSuchUpload") return;
  throw_failure(response, request.operation);
}

SizeLimits S3Storage::size_limits() const {
  // A figure the provider's row leaves at 0 (none documented) keeps S3's.
  const auto or_s3 = [](std::uint64_t figure, std::uint64_t s3) { return figure != 0 ? figure : s3; };
  const SizeLimits s3;
  return SizeLimits{or_s3(profile_->max_single_put, s3.max_single_put),
                    or_s3(profile_->max_part_size, s3.max_part_size),
                    or_s3(static_cast<std::uint64_t>(std::max(profile_->max_parts, 0)), s3.max_parts),
                    or_s3(profile_->max_single_copy, s3.max_single_copy)};
}

std::vector<CompletedPart> S3Storage::list_parts(const std::string& key, const std::string& upload_id) {
  std::vector<CompletedPart> parts;
  PartsPage page;
  do {
    Request request;
    request.method = "GET";
    request.key = key;
    request.query = {{"uploadId", upload_id}};
    if (page.next_part_number_marker > 0) {
      request.query.emplace_back("part-number-marker", std::to_string(page.next_part_number_marker));
    }
    request.operation = operation_name("ListParts", key);
    const Response response = perform(request);
    if (!is_success(response.status)) throw_failure(response, request.operation);
    page = parse_document(response.body, request.operation, parse_list_parts);
    parts.insert(parts.end(), page.parts.begin(), page.parts.end());
  } while (page.next_part_number_marker > 0);
  std::sort(parts.begin(), parts.end(), [](const CompletedPart& a, const CompletedPart& b) { return a.number < b.number; });
  return parts;
}

bool S3Storage::can_copy_from(const Storage& source) const {
  const auto* peer = dynamic_cast<const S3Storage*>(&source);
  return peer != nullptr && peer->scheme_ == scheme_ && peer->host_ == host_ && peer->port_ == port_ &&
         peer->base_path_ == base_path_ && peer->service_.region == service_.region &&
         peer->service_.access_key_id == service_.access_key_id &&
         peer->service_.secret_access_key == service_.secret_access_key &&
         peer->service_.session_token == service_.session_token &&
         (peer->service_.bucket == service_.bucket || profile_->server_side_copy_across_buckets);
}

const S3Storage& S3Storage::copy_peer(const Storage& source) const {
  if (!can_copy_from(source)) {
    throw Error(ErrorKind::kPermanent, FailureReason::kUnsupported,
                "server-side copy from " + source.describe() + " to " + describe() +
                    " needs the same endpoint and credentials");
  }
  return static_cast<const S3Storage&>(source);
}

std::string S3Storage::copy_source(const S3Storage& source, const std::string& source_key) const {
  return "/" + uri_encode(source.service_.bucket) + "/" + uri_encode_path(source_key);
}

std::string S3Storage::copy_object(const Storage& source, const std::string& source_key, const std::string& key,
                                   const CopyOptions& options) {
  const S3Storage& peer = copy_peer(source);
  Request request;
  request.method = "PUT";
  request.key = key;
  request.headers = {{"x-amz-copy-source", copy_source(peer, source_key)}};
  // The `upload:` options apply to copies too. Encryption, storage class,
  // ACL and tags are settings of the request; the headers stored with the
  // object need REPLACE, which drops the source's, so those are the caller's
  // (options.metadata) or read from the source, sent again beside the service's.
  Metadata settings;
  Metadata stored;
  for (const auto& [name, value] : service_.upload_headers) {
    (is_metadata_header(lowercase(name)) ? stored : settings).emplace_back(lowercase(name), value);
  }
  if (!options.metadata && stored.empty()) {
    request.headers.emplace_back("x-amz-metadata-directive", "COPY");
  } else {
    PutOptions replaced;
    if (options.metadata) {
      replaced.metadata = *options.metadata;
    } else {
      const std::optional<ObjectInfo> original = const_cast<S3Storage&>(peer).head(source_key);
      if (!original) {
        throw Error(ErrorKind::kPermanent, FailureReason::kNotFound,
                    "CopyObject: source object '" + source_key + "' not found on " + peer.describe(), 404);
      }
      replaced.metadata = original->metadata;
    }
    request.headers.emplace_back("x-amz-metadata-directive", "REPLACE");
    add_upload_headers(request, replaced);
    settings.clear();  // add_upload_headers sent them with the rest
  }
  for (const auto& [name, value] : settings) request.headers.emplace_back(name, value);
  add_copy_condition(request, options);
  const bool tagged = std::any_of(request.headers.begin(), request.headers.end(),
                                  [](const auto& header) { return header.first == "x-amz-tagging"; });
  if (tagged) request.headers.emplace_back("x-amz-tagging-directive", "REPLACE");
  const bool acl_set = std::any_of(request.headers.begin(), request.headers.end(),
                                   [](const auto& header) { return header.first == "x-amz-acl"; });
  if (service_.public_acl && !acl_set) request.headers.emplace_back("x-amz-acl", "public-read");
  request.operation = operation_name("CopyObject " + source_key + " from " + peer.describe() + " to", key);
  // A copy that landed carries the source's single-part ETag, which must be
  // the pinned one when the copy was pinned.
  const auto landed = [&]() -> std::optional<std::string> {
    std::optional<std::string> etag = landed_copy(peer, source_key, key);
    if (etag && !options.source_etag.empty() && lowercase(*etag) != lowercase(options.source_etag)) return std::nullopt;
    return etag;
  };
  Response response;
  try {
    response = perform(request);
  } catch (const Error& error) {
    if (!error.retryable()) throw;
    if (auto etag = landed()) return *etag;
    throw;
  }
  if (response.status == 412) throw source_changed(request.operation, options);
  const auto document = parse_s3_error(response.body);
  if (response.status >= 500 || (is_success(response.status) && document)) {
    if (auto etag = landed()) return *etag;
  }
  if (!is_success(response.status) || document) throw_copy_failure(response, request.operation);
  return parse_document(response.body, request.operation, parse_copy_result);
}

void S3Storage::throw_copy_failure(const Response& response, const std::string& operation) const {
  const auto document = parse_s3_error(response.body);
  if (!is_success(response.status) && is_copy_refusal(response.status, document ? document->code : "")) {
    throw Error(ErrorKind::kPermanent, FailureReason::kCopyRefused,
                operation + ": server-side copy refused (HTTP " + std::to_string(response.status) +
                    (document ? " " + document->code : std::string()) + "); the bytes must be streamed",
                static_cast<int>(response.status));
  }
  throw_failure(response, operation);
}

std::string S3Storage::copy_part(const Storage& source, const std::string& source_key, const std::string& key,
                                 const std::string& upload_id, int part_number, ByteRange range,
                                 const CopyOptions& options) {
  const S3Storage& peer = copy_peer(source);
  Request request;
  request.method = "PUT";
  request.key = key;
  request.query = {{"partNumber", std::to_string(part_number)}, {"uploadId", upload_id}};
  request.headers = {{"x-amz-copy-source", copy_source(peer, source_key)},
                     {"x-amz-copy-source-range",
                      "bytes=" + std::to_string(range.first) + "-" + std::to_string(range.last)}};
  request.operation = operation_name("UploadPartCopy " + std::to_string(part_number) + " of " + source_key +
                                         " from " + peer.describe() + " to",
                                     key);
  add_copy_condition(request, options);
  const Response response = perform(request);
  if (response.status == 412) throw source_changed(request.operation, options);
  if (!is_success(response.status) || parse_s3_error(response.body)) throw_copy_failure(response, request.operation);
  return parse_document(response.body, request.operation, parse_copy_result);
}

// The standard header, and RGW 16's own: RGW ignores the first (answers 200
// whatever the source's ETag), AWS and the others ignore the second.
void S3Storage::add_copy_condition(Request& request, const CopyOptions& options) const {
  if (options.source_etag.empty()) return;
  const std::string quoted = "\"" + options.source_etag + "\"";
  request.headers.emplace_back("x-amz-copy-source-if-match", quoted);
  request.headers.emplace_back("x-amz-copy-if-match", quoted);
}

Error S3Storage::source_changed(const std::string& operation, const CopyOptions& options) const {
  return Error(ErrorKind::kTransient, FailureReason::kSourceChanged,
               operation + ": HTTP 412, the source no longer has ETag " + options.source_etag);
}

}  // namespace blobferry
