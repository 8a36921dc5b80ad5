// The S3-compatible backend (AWS, R2, Spaces, MinIO, s3rver): SigV4-signed
// requests over libcurl, bodies streamed both ways.
#pragma once

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/base/error.h"
#include "common/storage/chunked_writer.h"
#include "common/storage/s3/curl_handle_pool.h"
#include "common/storage/s3/curl_handles.h"
#include "common/storage/s3/provider_profile.h"
#include "common/storage/service_config.h"
#include "common/storage/s3/sigv4_signer.h"
#include "common/storage/server_side_copier.h"
#include "common/storage/storage.h"

namespace blobferry {

class CancellationToken;
class TransferLoop;

// Every method is thread-safe: each request borrows an easy handle from a small
// internal pool, so connections (and TLS sessions) are reused across calls
// while any number of threads share one instance. It has both optional
// capabilities: multipart upload and server-side copy.
class S3Storage final : public Storage, public ChunkedWriter, public ServerSideCopier {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  // No I/O here; check() is what proves the settings work. clock defaults to
  // the system clock and is called once per request to date its signature.
  explicit S3Storage(const ServiceConfig& service, Clock clock = {});
  S3Storage(const S3Storage&) = delete;
  S3Storage& operator=(const S3Storage&) = delete;

  std::string describe() const override;
  void check(Access access = Access::kWrite) override;
  std::optional<ObjectInfo> head(const std::string& key) override;
  std::optional<ObjectInfo> get(const std::string& key, const ByteSink& sink,
                                std::optional<ByteRange> range = std::nullopt) override;
  std::string put(const std::string& key, ByteSource& body, const PutOptions& options) override;
  ListPage list(const ListRequest& request) override;
  StorageCapabilities capabilities() override { return {this, this}; }

  std::string create_multipart(const std::string& key, const PutOptions& options) override;
  std::string upload_part(const std::string& key, const std::string& upload_id, int part_number,
                          ByteSource& body, const std::string& content_md5) override;
  std::string complete_multipart(const std::string& key, const std::string& upload_id,
                                 const std::vector<CompletedPart>& parts) override;
  // Succeeds too when the upload is already gone (404 NoSuchUpload).
  void abort_multipart(const std::string& key, const std::string& upload_id) override;
  // The provider's documented limits (R2: 5 MiB less than 5 GiB for a PUT, a
  // part and a copy); one answer for both capabilities.
  SizeLimits size_limits() const override;
  std::vector<CompletedPart> list_parts(const std::string& key, const std::string& upload_id) override;

  // Same endpoint, region and credentials: then one request can read the
  // source and write here, and the bytes never leave the service.
  bool can_copy_from(const Storage& source) const override;
  // With options.source_etag both send x-amz-copy-source-if-match and RGW's
  // own x-amz-copy-if-match (RGW 16 ignores the standard header; others
  // ignore the unknown one); a 412 throws reason "source_changed". RGW also
  // ignores both on UploadPartCopy: callers HEAD the source after the parts.
  std::string copy_object(const Storage& source, const std::string& source_key,
                          const std::string& key, const CopyOptions& options = {}) override;
  std::string copy_part(const Storage& source, const std::string& source_key, const std::string& key,
                        const std::string& upload_id, int part_number, ByteRange range,
                        const CopyOptions& options = {}) override;

  // Open multipart uploads whose key starts with prefix (ListMultipartUploads,
  // every page): what an abort must leave none of. Throws Error.
  struct OpenUpload {
    std::string key;
    std::string upload_id;
  };
  std::vector<OpenUpload> list_multipart_uploads(const std::string& prefix);

  // The URL an object is addressed at (path-style or virtual-hosted), for
  // logs and tests; no credentials in it.
  std::string object_url(const std::string& key) const;
  bool path_style() const { return path_style_; }

  // The provider row this service follows (`provider:` or inferred).
  const ProviderProfile& profile() const { return *profile_; }
  // How far the server's clock is ahead of ours, learnt from a 403
  // RequestTimeTooSkewed's Date header; added to every signing time.
  std::chrono::milliseconds clock_offset() const { return std::chrono::milliseconds{clock_offset_ms_.load()}; }
  // Where fresh credentials come from when the server answers ExpiredToken
  // (storage.yml and the environment, read again): nullopt when none can be
  // had. Without a reloader an expired token is a configuration error at once.
  using CredentialReloader = std::function<std::optional<AwsCredentials>()>;
  void set_credential_reloader(CredentialReloader reload);

  // Event-driven forms of head(), get() and put() for small copies
  // (worker/copy/event_copier.h): signed as the blocking calls are, driven
  // by `loop`, and `done` runs once, on the loop's thread (or on the calling
  // one when the request cannot even start). Only plain answers are read
  // here. Whatever a blocking call corrects or settles with more requests (a
  // skewed clock, an expired token, a HEAD's 400, a 5xx after a PUT whose
  // bytes may have landed) arrives as the Error it is, and the caller takes
  // the blocking path for that object.
  struct Answer {
    std::optional<ObjectInfo> info;  // head and get: nullopt when the key is not there
    std::string etag;                // put: the new object's
    std::exception_ptr error;        // set instead when the request failed
  };
  using AnswerDone = std::function<void(Answer)>;
  void start_head(TransferLoop& loop, const std::string& key, const CancellationToken* cancel, AnswerDone done);
  // The body goes to `sink` (on the loop's thread); a throwing sink fails the GET.
  void start_get(TransferLoop& loop, const std::string& key, ByteSink sink, const CancellationToken* cancel,
                 AnswerDone done);
  // `body` must stay alive until `done` ran.
  void start_put(TransferLoop& loop, const std::string& key, std::string_view body, const PutOptions& options,
                 const CancellationToken* cancel, AnswerDone done);

 private:
  struct Request;
  struct Response;
  struct Exchange;
  struct AsyncCall;

  // perform_once, then the corrections a second attempt can make: the
  // signing clock after RequestTimeTooSkewed, the credentials after
  // ExpiredToken (once; then a kConfig error naming the service).
  Response perform(Request& request);
  Response perform_once(Request& request);
  // The halves of one request around whoever drives the transfer
  // (curl_easy_perform, or a TransferLoop): sign it and set up `handle`;
  // then turn libcurl's result into a Response or an Error.
  void prepare(Request& request, Exchange& exchange, CURL* handle, const CancellationToken* cancel);
  Response finish(const Request& request, Exchange& exchange, CURL* handle, CURLcode code);
  void start_async(TransferLoop& loop, std::shared_ptr<AsyncCall> call, const CancellationToken* cancel);
  // True when credentials newer than those of signed_generation are in place.
  bool refresh_credentials(std::uint64_t signed_generation);
  // What a HEAD proves after an answer that was lost or a 5xx (the write may
  // have landed): the etag when the object there is the one written.
  std::optional<std::string> landed_multipart(const std::string& key, const std::vector<CompletedPart>& parts);
  std::optional<std::string> landed_put(const std::string& key, const std::string& content_md5);
  std::optional<std::string> landed_copy(const S3Storage& source, const std::string& source_key,
                                         const std::string& key);
  [[noreturn]] void throw_copy_failure(const Response& response, const std::string& operation) const;
  [[noreturn]] void throw_failure(const Response& response, const std::string& operation) const;
  std::string operation_name(const std::string& method, const std::string& key) const;
  std::string request_path(const std::optional<std::string>& key) const;
  std::string request_host() const;
  void add_upload_headers(Request& request, const PutOptions& options) const;
  std::string copy_source(const S3Storage& source, const std::string& source_key) const;
  const S3Storage& copy_peer(const Storage& source) const;
  void add_copy_condition(Request& request, const CopyOptions& options) const;
  Error source_changed(const std::string& operation, const CopyOptions& options) const;


  ServiceConfig service_;
  Clock clock_;
  const ProviderProfile* profile_ = nullptr;
  std::atomic<std::int64_t> clock_offset_ms_{0};
  std::mutex signer_mutex_;  // guards signer_ and credentials_, replaced on ExpiredToken
  AwsCredentials credentials_;
  std::uint64_t credential_generation_ = 0;
  SigV4Signer signer_;
  CredentialReloader reload_credentials_;
  std::string scheme_;     // "http" or "https"
  std::string host_;       // as in a URL: "127.0.0.1", "[::1]", "s3.us-east-1.amazonaws.com"
  std::string port_;       // empty for the scheme's default
  std::string base_path_;  // an endpoint's own path prefix, usually empty
  bool path_style_ = false;

  // Connections (and TLS sessions) stay with the handles between requests.
  CurlHandlePool handles_{16};
};

}  // namespace blobferry
