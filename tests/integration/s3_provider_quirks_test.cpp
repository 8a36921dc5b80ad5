// What real providers answer that s3rver does not, injected by FaultProxy in front of s3rver (issue 12 item 4).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/base/error.h"
#include "common/storage/s3/s3_storage.h"
#include "common/storage/service_registry.h"
#include "common/storage/storage_config.h"
#include "tests/support/fault_proxy.h"
#include "tests/support/log_capture.h"
#include "tests/support/redis_dump.h"
#include "tests/support/seed_data.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_services.h"
#include "tests/support/test_stack.h"
#include "common/queue/redis_client.h"
#include "common/queue/memory_queue.h"
#include "common/queue/redis_queue.h"
#include "common/queue/redis_url.h"
#include "worker/copy/copy_engine.h"
#include "worker/loop/worker_loop.h"

namespace blobferry::testing {
namespace {

using namespace std::chrono_literals;

std::string md5_base64(const std::string& bytes) { return base64_encode(md5_of(bytes)); }

std::string header_of(const InjectionRequest& request, const std::string& name) {
  for (const auto& [header, value] : request.headers) {
    if (header == name) return value;
  }
  return "";
}

std::string header_of(const RequestRecord& record, const std::string& name) {
  for (const auto& [header, value] : record.headers) {
    if (header == name) return value;
  }
  return "";
}

std::string http_date(std::chrono::system_clock::time_point when) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(when);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[64];
  std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &utc);
  return text;
}

std::string error_body(const std::string& code, const std::string& extra = "") {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code + "</Code><Message>injected</Message>" +
         extra + "</Error>";
}

bool is_complete(const InjectionRequest& request) {
  return request.method == "POST" && request.target.find("uploadId=") != std::string::npos;
}

// Fires once: the first matching request gets the answer, later ones pass.
Injection once(std::function<bool(const InjectionRequest&)> match, InjectedAnswer answer,
               std::shared_ptr<std::atomic<int>> hits = std::make_shared<std::atomic<int>>(0)) {
  return [match = std::move(match), answer = std::move(answer), hits](const InjectionRequest& request)
             -> std::optional<InjectedAnswer> {
    if (!match(request) || hits->fetch_add(1) > 0) return std::nullopt;
    return answer;
  };
}

// Each test puts a FaultProxy with its own injection before a real server.
class QuirksFixture : public ::testing::Test {
 protected:
  virtual std::string upstream() const = 0;
  virtual ServiceConfig server_service(const std::string& endpoint) const = 0;

  FaultProxy& proxy(Injection inject, bool record = false) {
    FaultProxyOptions options;
    options.upstream = upstream();
    options.inject = std::move(inject);
    options.record_requests = record;
    proxy_.emplace(options);
    return *proxy_;
  }
  ServiceConfig service() const {
    ServiceConfig config = server_service(proxy_->endpoint());
    config.http_read_timeout = 10;
    return config;
  }
  std::string put(S3Storage& storage, const std::string& key, const std::string& bytes, Metadata metadata = {}) {
    MemoryByteSource body(bytes);
    return storage.put(key, body, PutOptions{md5_base64(bytes), std::move(metadata)});
  }
  // Two parts, the first of S3's minimum size.
  std::pair<std::string, std::vector<CompletedPart>> upload_two_parts(S3Storage& storage, const std::string& key) {
    const std::string upload_id = storage.create_multipart(key, {});
    std::vector<CompletedPart> parts;
    for (int number : {1, 2}) {
      const std::string bytes(number == 1 ? 5 * 1024 * 1024 : 1000, static_cast<char>('a' + number));
      MemoryByteSource body(bytes);
      parts.push_back({number, storage.upload_part(key, upload_id, number, body, md5_base64(bytes))});
    }
    return {upload_id, parts};
  }

  std::optional<FaultProxy> proxy_;
};

// s3rver: fast, for what needs no real multipart ETag.
class S3ProviderQuirksTest : public QuirksFixture {
 protected:
  static void SetUpTestSuite() {
    StackOptions servers;
    servers.s3 = true;
    servers.redis = true;  // the expired-credentials worker test's queue
    stack_ = new TestStack(servers);
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  std::string upstream() const override { return stack_->env("S3_SOURCE_ENDPOINT"); }
  ServiceConfig server_service(const std::string& endpoint) const override {
    return s3rver_service("source", endpoint);
  }

  // The proxy answers 400 ExpiredToken to every request signed with "old-token".
  void expire_old_token() {
    proxy([](const InjectionRequest& request) -> std::optional<InjectedAnswer> {
      if (header_of(request, "x-amz-security-token") != "old-token") return std::nullopt;
      return InjectedAnswer{400, "Content-Type: application/xml\r\n", error_body("ExpiredToken")};
    });
  }
  // One object of migration "expiry" from `service` to "target".
  static Job expiry_job(const std::string& service, const std::string& key) {
    Job job;
    job.migration = "expiry";
    job.source = service;
    job.target = "target";
    job.objects.push_back(JobObject{});
    job.objects.back().key = key;
    return job;
  }
  static WorkerOptions expiry_worker_options() {
    WorkerOptions options;
    options.migration = "expiry";
    options.worker_id = "quirks-test";
    options.concurrency = 2;
    options.exit_when_empty = true;
    options.drain = 2s;
    return options;
  }
  static TestStack* stack_;
};

TestStack* S3ProviderQuirksTest::stack_ = nullptr;

// Ceph RGW: S3's multipart ETags (s3rver's are the MD5 of the whole), which
// settling a lost Complete answer relies on.
class S3ProviderQuirksRgwTest : public QuirksFixture {
 protected:
  static void SetUpTestSuite() { stack_ = new TestStack({.rgw = true}); }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }
  std::string upstream() const override { return stack_->env("RGW_ENDPOINT"); }
  ServiceConfig server_service(const std::string& endpoint) const override {
    ServiceConfig config = s3rver_service("rgw-source", endpoint);
    config.name = "rgw_source";
    config.access_key_id = stack_->env("RGW_ACCESS_KEY_ID");
    config.secret_access_key = stack_->env("RGW_SECRET_ACCESS_KEY");
    config.provider = "ceph";  // its Complete answers an empty <ETag>
    return config;
  }
  static TestStack* stack_;
};

TestStack* S3ProviderQuirksRgwTest::stack_ = nullptr;

// 4c. A clock an hour slow: the server's Date corrects it and the request is signed again.
TEST_F(S3ProviderQuirksTest, RequestTimeTooSkewedCorrectsTheSigningClockAndRetries) {
  const auto skew = 1h;
  auto skewed = [&] { return std::chrono::system_clock::now() - skew; };
  std::atomic<int> refused{0};
  proxy([&](const InjectionRequest& request) -> std::optional<InjectedAnswer> {
    // x-amz-date is "YYYYMMDDTHHMMSSZ"; a stale one is refused the way S3 does.
    const std::string stamp = header_of(request, "x-amz-date");
    std::tm parsed{};
    if (!strptime(stamp.c_str(), "%Y%m%dT%H%M%SZ", &parsed)) return std::nullopt;
    const auto signed_at = std::chrono::system_clock::from_time_t(timegm(&parsed));
    if (std::chrono::abs(std::chrono::system_clock::now() - signed_at) < 15min) return std::nullopt;
    ++refused;
    return InjectedAnswer{403, "Date: " + http_date(std::chrono::system_clock::now()) + "\r\nContent-Type: application/xml\r\n",
                          error_body("RequestTimeTooSkewed")};
  });
  S3Storage storage(service(), skewed);
  EXPECT_FALSE(put(storage, "skewed.txt", "signed again").empty());
  EXPECT_EQ(refused.load(), 1);
  EXPECT_NEAR(std::chrono::duration_cast<std::chrono::seconds>(storage.clock_offset()).count(), 3600, 5);
  // The correction is kept: the next request passes at once.
  ASSERT_TRUE(storage.head("skewed.txt"));
  EXPECT_EQ(refused.load(), 1);
}

// 4c. ExpiredToken: storage.yml is read again, the request retried once with the new token.
TEST_F(S3ProviderQuirksTest, ExpiredTokenReReadsStorageYmlOnceThenFailsNamingTheService) {
  std::atomic<int> expired{0};
  proxy([&](const InjectionRequest& request) -> std::optional<InjectedAnswer> {
    if (header_of(request, "x-amz-security-token") != "old-token") return std::nullopt;
    ++expired;
    return InjectedAnswer{400, "Content-Type: application/xml\r\n", error_body("ExpiredToken")};
  });
  TempDir folder("quirks-token");
  const std::string path = folder.file("storage.yml");
  auto write_yaml = [&](const std::string& token) {
    std::ofstream(path) << "session:\n  service: S3\n  bucket: source\n  endpoint: " << proxy_->endpoint()
                        << "\n  force_path_style: true\n  access_key_id: S3RVER\n  secret_access_key: S3RVER\n"
                        << "  session_token: " << token << "\n";
  };
  write_yaml("old-token");
  ServiceRegistry services(StorageConfig::load(path));
  Storage& storage = services.get("session");

  // Nothing newer yet: one try, one re-read, then a configuration error;
  // a HEAD (no error body) learns it from a one-byte GET.
  for (const bool head : {false, true}) {
    try {
      MemoryByteSource body("x");
      if (head) {
        storage.head("anything");
      } else {
        storage.put("token.txt", body, PutOptions{});
      }
      FAIL() << "expected the expired token to stop the request";
    } catch (const Error& error) {
      EXPECT_EQ(error.kind(), ErrorKind::kConfig);
      const std::string message = error.what();
      EXPECT_NE(message.find("service session: session token expired"), std::string::npos) << message;
      EXPECT_EQ(message.find("old-token"), std::string::npos) << "no credential in an error";
    }
  }
  const int before = expired.load();

  write_yaml("new-token");
  MemoryByteSource body("renewed");
  EXPECT_FALSE(storage.put("token.txt", body, PutOptions{md5_base64("renewed"), {}}).empty());
  EXPECT_EQ(expired.load(), before + 1) << "one refused request, then the renewed token";
  EXPECT_TRUE(storage.head("token.txt"));
  EXPECT_EQ(expired.load(), before + 1);
}

// 4c / bad input. Credentials that expired for good stop only their service:
// the other service's jobs are copied, its own wait in the queue (none failed,
// no attempt counted) after one log line, and once storage.yml holds a renewed
// token the worker, reading it again, copies them too.
TEST_F(S3ProviderQuirksTest, ExpiredCredentialsStopOnlyThatServiceAndItsJobsWaitUntilRenewed) {
  expire_old_token();
  S3Storage source(s3rver_service("source", stack_->env("S3_SOURCE_ENDPOINT")));
  std::vector<Job> jobs;
  for (const std::string service : {"expiring", "fine"}) {
    for (int i = 1; i <= 3; ++i) {
      const std::string key = service + "/" + std::to_string(i) + ".txt";
      put(source, key, "bytes of " + key);
      jobs.push_back(expiry_job(service, key));
    }
  }
  TempDir folder("quirks-worker");
  const std::string path = folder.file("storage.yml");
  const auto write_yaml = [&](const std::string& token) {
    const std::string s3rver = "\n  force_path_style: true\n  access_key_id: S3RVER\n  secret_access_key: S3RVER\n";
    std::ofstream(path) << "expiring:\n  service: S3\n  bucket: source\n  endpoint: " << proxy_->endpoint() << s3rver
                        << "  session_token: " << token << "\nfine:\n  service: S3\n  bucket: source\n  endpoint: "
                        << stack_->env("S3_SOURCE_ENDPOINT") << s3rver
                        << "target:\n  service: S3\n  bucket: target\n  endpoint: " << stack_->env("S3_TARGET_ENDPOINT")
                        << s3rver;
  };
  write_yaml("old-token");
  ServiceRegistry services(StorageConfig::load(path));
  auto redis = std::make_shared<RedisClient>(RedisUrl::parse(stack_->redis_url()));
  RedisQueue queue(redis, "expiry");
  queue.push(jobs);
  S3Storage target(s3rver_service("target", stack_->env("S3_TARGET_ENDPOINT")));

  CopyEngine engine;
  WorkerOptions options = expiry_worker_options();
  options.credentials_recheck = 3s;
  LogCapture log;
  WorkerLoop loop(queue, services, engine, nullptr, options);
  WorkerSummary summary;
  std::thread worker([&] { summary = loop.run(); });

  const bool waiting = wait_until([&] {
    const Counts now = queue.counts();
    return now.copied == 3 && now.scheduled == 3;
  }, 30s);
  const Counts while_out = queue.counts();
  const auto redis_keys = dump_redis(*redis);
  EXPECT_TRUE(waiting) << "copied " << while_out.copied << ", scheduled " << while_out.scheduled;
  EXPECT_EQ(while_out.failed, 0u);
  EXPECT_FALSE(loop.stopping()) << "the worker goes on serving the other service";
  for (const auto& [key, value] : redis_keys) {
    EXPECT_EQ(value.find("\"attempts\""), std::string::npos) << "an attempt was counted in " << key << ": " << value;
  }
  for (int i = 1; i <= 3; ++i) {
    EXPECT_TRUE(target.head("fine/" + std::to_string(i) + ".txt")) << i;
    EXPECT_FALSE(target.head("expiring/" + std::to_string(i) + ".txt")) << i;
  }
  EXPECT_EQ(log.count("service expiring stopped taking jobs"), 1);

  write_yaml("new-token");
  const bool renewed = wait_until([&] { return queue.counts().copied == 6; }, 60s);
  if (!renewed) loop.request_stop();
  worker.join();
  EXPECT_TRUE(renewed) << "copied " << queue.counts().copied << " of 6 after the renewal";
  EXPECT_TRUE(summary.config_error.empty()) << summary.config_error;
  EXPECT_EQ(summary.failed, 0u);
  EXPECT_EQ(queue.counts().failed, 0u);
  for (int i = 1; i <= 3; ++i) EXPECT_TRUE(target.head("expiring/" + std::to_string(i) + ".txt")) << i;
  EXPECT_EQ(log.count("service expiring stopped taking jobs"), 1) << "a probe that expired again logs nothing";
  EXPECT_EQ(log.count("service expiring: its credentials work again"), 1);
  for (const std::string& line : log.lines()) {
    EXPECT_EQ(line.find("old-token"), std::string::npos) << "no credential in a log line: " << line;
  }
}

// The embedded migrate has no queue that outlives it: expired credentials end
// the run at once, naming the service (exit 2), and no job is failed for it.
TEST_F(S3ProviderQuirksTest, EmbeddedRunStopsOnExpiredCredentialsAndNoJobFails) {
  expire_old_token();
  TempDir folder("quirks-worker");
  const std::string path = folder.file("storage.yml");
  std::ofstream(path) << "expiring:\n  service: S3\n  bucket: source\n  endpoint: " << proxy_->endpoint()
                      << "\n  force_path_style: true\n  access_key_id: S3RVER\n  secret_access_key: S3RVER\n"
                      << "  session_token: old-token\ntarget:\n  service: S3\n  bucket: target\n  endpoint: "
                      << stack_->env("S3_TARGET_ENDPOINT")
                      << "\n  force_path_style: true\n  access_key_id: S3RVER\n  secret_access_key: S3RVER\n";
  ServiceRegistry services(StorageConfig::load(path));
  MemoryQueue queue("expiry");
  queue.push({expiry_job("expiring", "a.txt"), expiry_job("expiring", "b.txt"), expiry_job("expiring", "c.txt")});
  CopyEngine engine;
  WorkerOptions options = expiry_worker_options();
  options.wait_for_renewed_credentials = false;
  const WorkerSummary summary = WorkerLoop(queue, services, engine, nullptr, options).run();

  EXPECT_NE(summary.config_error.find("session token expired"), std::string::npos) << summary.config_error;
  EXPECT_EQ(summary.failed, 0u);
  const Counts counts = queue.counts();
  EXPECT_EQ(counts.failed, 0u);
  EXPECT_EQ(counts.queued, 3u) << "every job back in the queue for the rerun";
}

// 4c. Redirects name where the bucket is.
TEST_F(S3ProviderQuirksTest, PermanentRedirectNamesTheRegionAndEndpoint) {
  proxy([](const InjectionRequest&) -> std::optional<InjectedAnswer> {
    return InjectedAnswer{301, "x-amz-bucket-region: eu-west-3\r\nContent-Type: application/xml\r\n",
                          error_body("PermanentRedirect", "<Endpoint>source.s3.eu-west-3.amazonaws.com</Endpoint>")};
  });
  S3Storage storage(service());
  for (bool head : {false, true}) {
    try {
      if (head) {
        storage.head("k");
      } else {
        storage.get("k", [](std::string_view) {});
      }
      FAIL() << "expected an error";
    } catch (const Error& error) {
      EXPECT_EQ(error.kind(), ErrorKind::kConfig);
      const std::string message = error.what();
      EXPECT_NE(message.find("set `region: eu-west-3`"), std::string::npos) << message;
      if (!head) {
        EXPECT_NE(message.find("source.s3.eu-west-3.amazonaws.com"), std::string::npos) << message;
      }
    }
  }
}

// 4d. The Complete went through but its answer was lost: the HEAD proves it.
TEST_F(S3ProviderQuirksRgwTest, LostCompleteAnswerIsSettledByHead) {
  for (const bool reset : {true, false}) {
    InjectedAnswer lost;
    lost.forward_first = true;
    lost.reset = reset;  // the connection drops, or a 500 after the object was assembled
    lost.status = 500;
    lost.headers = "Content-Type: application/xml\r\n";
    lost.body = error_body("InternalError");
    auto hits = std::make_shared<std::atomic<int>>(0);
    proxy(once(is_complete, lost, hits));
    S3Storage storage(service());
    const std::string key = reset ? "complete-reset.bin" : "complete-500.bin";
    auto [upload_id, parts] = upload_two_parts(storage, key);
    const std::string etag = storage.complete_multipart(key, upload_id, parts);
    EXPECT_EQ(hits->load(), 1);
    EXPECT_NE(etag.find("-2"), std::string::npos) << etag;
    const auto there = storage.head(key);
    ASSERT_TRUE(there);
    EXPECT_EQ(there->etag, etag);
    EXPECT_EQ(there->size, 5u * 1024 * 1024 + 1000);
  }
}

// 4d. A Complete retried after it succeeded meets NoSuchUpload: copied, not not_found.
TEST_F(S3ProviderQuirksRgwTest, CompleteRetriedAfterSuccessIsNotNotFound) {
  // What S3 answers a Complete of an upload it already completed.
  auto completes = std::make_shared<std::atomic<int>>(0);
  proxy([completes](const InjectionRequest& r) -> std::optional<InjectedAnswer> {
    if (!is_complete(r) || completes->fetch_add(1) == 0) return std::nullopt;
    return InjectedAnswer{404, "Content-Type: application/xml\r\n", error_body("NoSuchUpload")};
  });
  S3Storage storage(service());
  auto [upload_id, parts] = upload_two_parts(storage, "complete-twice.bin");
  const std::string first = storage.complete_multipart("complete-twice.bin", upload_id, parts);
  EXPECT_EQ(storage.complete_multipart("complete-twice.bin", upload_id, parts), first);
  // Parts that do not match what is there still fail.
  std::vector<CompletedPart> other = parts;
  other[0].etag = std::string(32, '0');
  EXPECT_THROW(storage.complete_multipart("complete-twice.bin", upload_id, other), Error);
}

// 4d. PUT and CopyObject whose answers were lost after they landed.
TEST_F(S3ProviderQuirksTest, LostPutAndCopyAnswersAreSettledByHead) {
  InjectedAnswer lost;
  lost.forward_first = true;
  lost.reset = true;
  auto puts = std::make_shared<std::atomic<int>>(0);
  proxy(once([](const InjectionRequest& r) { return r.method == "PUT" && header_of(r, "x-amz-copy-source").empty(); },
             lost, puts));
  S3Storage storage(service());
  EXPECT_EQ(put(storage, "lost-put.txt", "landed anyway"), hex_encode(md5_of("landed anyway")));
  EXPECT_EQ(puts->load(), 1);

  InjectedAnswer failed_late{503, "Content-Type: application/xml\r\n", error_body("ServiceUnavailable"), true, false};
  auto copies = std::make_shared<std::atomic<int>>(0);
  proxy(once([](const InjectionRequest& r) { return !header_of(r, "x-amz-copy-source").empty(); }, failed_late,
             copies));
  S3Storage source(service());
  S3Storage target(service());
  put(source, "copy-from.txt", "copied before the 503");
  EXPECT_EQ(target.copy_object(source, "copy-from.txt", "copy-to.txt"), hex_encode(md5_of("copied before the 503")));
  EXPECT_EQ(copies->load(), 1);
}

// 4g. 403 on HEAD (no s3:ListBucket) is this key missing or unreadable, not the service refused.
TEST_F(S3ProviderQuirksTest, HeadForbiddenIsMissingOrNotReadable) {
  proxy([](const InjectionRequest& r) -> std::optional<InjectedAnswer> {
    if (r.method != "HEAD") return std::nullopt;
    return InjectedAnswer{403, "", ""};
  });
  S3Storage storage(service());
  try {
    storage.head("not-there.txt");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.reason(), "not_found");
    EXPECT_EQ(error.kind(), ErrorKind::kPermanent);
    EXPECT_NE(std::string(error.what()).find("missing or not readable"), std::string::npos) << error.what();
    EXPECT_EQ(std::string(error.what()).find("access denied"), std::string::npos) << error.what();
  }
}

// 4h. Encryption headers on HEAD decide whether the ETag can be the MD5.
TEST_F(S3ProviderQuirksTest, EncryptionHeadersClearEtagIsMd5) {
  std::mutex mutex;
  std::string encryption;
  proxy([&](const InjectionRequest& r) -> std::optional<InjectedAnswer> {
    if (r.method != "HEAD") return std::nullopt;
    std::lock_guard lock(mutex);
    return InjectedAnswer{200, "ETag: \"0cc175b9c0f1b6a831c399e269772661\"\r\n" + encryption, ""};
  });
  auto flag_with = [&](const std::string& headers, const std::string& provider = "") {
    {
      std::lock_guard lock(mutex);
      encryption = headers;
    }
    ServiceConfig config = service();
    config.provider = provider;
    S3Storage storage(config);
    const auto info = storage.head("k");
    EXPECT_TRUE(info);
    return info && info->etag_is_md5;
  };
  EXPECT_TRUE(flag_with(""));
  EXPECT_TRUE(flag_with("x-amz-server-side-encryption: AES256\r\n"));
  EXPECT_FALSE(flag_with("x-amz-server-side-encryption: aws:kms\r\n"));
  EXPECT_FALSE(flag_with("x-amz-server-side-encryption: aws:kms:dsse\r\n"));
  EXPECT_FALSE(flag_with("x-amz-server-side-encryption-customer-algorithm: AES256\r\n"));
  EXPECT_FALSE(flag_with("x-amz-server-side-encryption: AES256\r\n", "minio"));
}

// Ceph RGW may answer Complete with an empty <ETag>: the object's own is read.
TEST_F(S3ProviderQuirksRgwTest, CephEmptyCompleteEtagIsReadByHead) {
  InjectedAnswer empty{200, "Content-Type: application/xml\r\n",
                       "<CompleteMultipartUploadResult><ETag></ETag></CompleteMultipartUploadResult>", true, false};
  proxy(once(is_complete, empty));
  ServiceConfig config = service();
  config.provider = "ceph";
  S3Storage storage(config);
  auto [upload_id, parts] = upload_two_parts(storage, "ceph-complete.bin");
  const std::string etag = storage.complete_multipart("ceph-complete.bin", upload_id, parts);
  EXPECT_NE(etag.find("-2"), std::string::npos) << etag;
}

// R2 and GCS decode gzip for requests that do not refuse it: every request says identity.
TEST_F(S3ProviderQuirksTest, EveryRequestAsksForTheStoredBytes) {
  FaultProxy& recording = proxy({}, true);
  S3Storage storage(service());
  const std::string gzipped("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x4b\x04\x00\x43\xbe\xb7\xe8\x01\x00\x00\x00", 21);
  put(storage, "page.json.gz", gzipped, {{"content-encoding", "gzip"}, {"content-type", "application/json"}});
  std::string got;
  ASSERT_TRUE(storage.get("page.json.gz", [&](std::string_view chunk) { got.append(chunk); }));
  EXPECT_EQ(got, gzipped) << "the stored gzip bytes, not decoded";
  ASSERT_TRUE(storage.head("page.json.gz"));
  const auto requests = recording.requests();
  ASSERT_GE(requests.size(), 3u);
  for (const RequestRecord& request : requests) {
    EXPECT_EQ(header_of(request, "accept-encoding"), "identity") << request.method << " " << request.target;
  }
}

// 4e. storage.yml's upload: options reach every write on the wire.
TEST_F(S3ProviderQuirksTest, UploadOptionsAreSentOnEveryWrite) {
  FaultProxy& recording = proxy({}, true);
  ServiceConfig config = service();
  config.upload_headers = {{"x-amz-server-side-encryption", "AES256"},
                           {"x-amz-storage-class", "STANDARD"},
                           {"x-amz-acl", "private"},
                           {"cache-control", "max-age=60"},
                           {"content-language", "de"},
                           {"expires", "Wed, 21 Oct 2026 07:28:00 GMT"}};
  S3Storage storage(config);
  put(storage, "opts-put.txt", "put", {{"content-type", "text/plain"}});
  storage.create_multipart("opts-multi.bin", {});  // s3rver cannot abort: left to the stack's removal
  S3Storage source(service());
  put(source, "opts-source.txt", "source", {{"content-type", "text/csv"}, {"x-amz-meta-owner", "ops"}});
  storage.copy_object(source, "opts-source.txt", "opts-copy.txt");

  int writes = 0;
  for (const RequestRecord& r : recording.requests()) {
    const bool copy = !header_of(r, "x-amz-copy-source").empty();
    const bool write = (r.method == "PUT" && r.target.find("opts-source") == std::string::npos &&
                        r.target.find("partNumber") == std::string::npos) ||
                       (r.method == "POST" && r.target.find("uploads") != std::string::npos);
    if (!write) continue;
    ++writes;
    SCOPED_TRACE(r.method + " " + r.target);
    EXPECT_EQ(header_of(r, "x-amz-server-side-encryption"), "AES256");
    EXPECT_EQ(header_of(r, "x-amz-storage-class"), "STANDARD");
    EXPECT_EQ(header_of(r, "x-amz-acl"), "private");
    EXPECT_EQ(header_of(r, "cache-control"), "max-age=60");
    EXPECT_EQ(header_of(r, "content-language"), "de");
    EXPECT_EQ(header_of(r, "expires"), "Wed, 21 Oct 2026 07:28:00 GMT");
    if (copy) {
      // REPLACE, with the source's own headers sent again.
      EXPECT_EQ(header_of(r, "x-amz-metadata-directive"), "REPLACE");
      EXPECT_EQ(header_of(r, "content-type"), "text/csv");
      EXPECT_EQ(header_of(r, "x-amz-meta-owner"), "ops");
    }
  }
  EXPECT_EQ(writes, 3);
  const auto copied = storage.head("opts-copy.txt");
  ASSERT_TRUE(copied);
  bool cache_control = false, content_type = false;
  for (const auto& [name, value] : copied->metadata) {
    cache_control |= name == "cache-control" && value == "max-age=60";
    content_type |= name == "content-type" && value == "text/csv";
  }
  EXPECT_TRUE(cache_control && content_type) << "stored on the copy, the source's type kept";
}

// Spaces-style refusal of a server-side copy: the engine streams instead of failing the job.
TEST_F(S3ProviderQuirksTest, RefusedServerSideCopyFallsBackToStreaming) {
  std::atomic<int> refused{0};
  proxy([&](const InjectionRequest& r) -> std::optional<InjectedAnswer> {
    if (header_of(r, "x-amz-copy-source").empty()) return std::nullopt;
    ++refused;
    return InjectedAnswer{501, "Content-Type: application/xml\r\n", error_body("NotImplemented")};
  });
  S3Storage source(service());
  S3Storage target(service());
  const std::string bytes = "streamed because the copy was refused";
  put(source, "refused-from.txt", bytes);
  ASSERT_TRUE(target.can_copy_from(source));
  try {
    target.copy_object(source, "refused-from.txt", "refused-direct.txt");
    FAIL() << "expected the refusal";
  } catch (const Error& error) {
    EXPECT_EQ(error.failure_reason(), FailureReason::kCopyRefused);
  }
  CopyEngine engine;
  const CopyResult result = engine.copy(CopyTask{source, target, "refused-from.txt", "refused-to.txt", bytes.size(),
                                                 md5_base64(bytes), "", false});
  EXPECT_EQ(result.status, CopyResult::Status::kCopied);
  EXPECT_FALSE(result.server_side);
  EXPECT_EQ(refused.load(), 2);
  std::string got;
  ASSERT_TRUE(target.get("refused-to.txt", [&](std::string_view chunk) { got.append(chunk); }));
  EXPECT_EQ(got, bytes);
}

}  // namespace
}  // namespace blobferry::testing
