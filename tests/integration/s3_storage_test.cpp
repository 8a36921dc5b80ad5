// S3Storage against real s3rver servers (through TestStack), with FaultProxy
// in front where S3's own failures are needed, and a request recorder for what
// s3rver cannot show (keys with "//" and dot segments, the headers sent).
#include "common/storage/s3/s3_storage.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/storage/s3/curl_handles.h"
#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/base/error.h"
#include "tests/support/fault_proxy.h"
#include "tests/support/test_stack.h"

using blobferry::ByteRange;
using blobferry::Error;
using blobferry::ErrorKind;
using blobferry::ListPage;
using blobferry::ListRequest;
using blobferry::MemoryByteSource;
using blobferry::Metadata;
using blobferry::ObjectInfo;
using blobferry::PutOptions;
using blobferry::S3Storage;
using blobferry::ServiceConfig;
using blobferry::ServiceKind;
using blobferry::testing::FaultProxy;
using blobferry::testing::FaultProxyOptions;
using blobferry::testing::TestStack;

namespace {

constexpr const char* kSecret = "S3RVER";  // s3rver's only account: key and secret alike

ServiceConfig s3_config(const std::string& bucket, const std::string& endpoint) {
  ServiceConfig service;
  service.name = "test_" + bucket;
  service.kind = ServiceKind::kS3;
  service.service_type = "S3";
  service.bucket = bucket;
  service.endpoint = endpoint;
  service.access_key_id = "S3RVER";
  service.secret_access_key = kSecret;
  service.force_path_style = true;
  service.http_open_timeout = 5;
  service.http_read_timeout = 10;
  return service;
}

std::string md5_base64(const std::string& bytes) { return blobferry::base64_encode(blobferry::md5_of(bytes)); }
std::string md5_hex(const std::string& bytes) { return blobferry::hex_encode(blobferry::md5_of(bytes)); }

ListRequest list_request(const std::string& prefix, const std::string& delimiter = "",
                         const std::string& start_after = "", int max_keys = 1000) {
  ListRequest request;
  request.prefix = prefix;
  request.delimiter = delimiter;
  request.start_after = start_after;
  request.max_keys = max_keys;
  return request;
}

std::string put_text(S3Storage& storage, const std::string& key, const std::string& text,
                     PutOptions options = {}) {
  MemoryByteSource body(text);
  return storage.put(key, body, options);
}

struct Fetched {
  ObjectInfo info;
  std::string bytes;
};

std::optional<Fetched> get_text(S3Storage& storage, const std::string& key,
                                std::optional<ByteRange> range = std::nullopt) {
  std::string bytes;
  auto info = storage.get(key, [&](std::string_view chunk) { bytes.append(chunk); }, range);
  if (!info) return std::nullopt;
  return Fetched{*info, bytes};
}

template <typename Call>
Error error_from(Call call) {
  try {
    call();
  } catch (const Error& error) {
    return error;
  }
  throw std::logic_error("expected a blobferry::Error, none was thrown");
}

std::string metadata_value(const Metadata& metadata, const std::string& name) {
  for (const auto& [header, value] : metadata) {
    if (header == name) return value;
  }
  return "<absent>";
}

// Creates a bucket with an unsigned request (s3rver accepts those), so that
// two buckets share one server and server-side copy has somewhere to go.
void create_bucket(const std::string& endpoint, const std::string& bucket) {
  auto handle = blobferry::make_curl_easy();
  const std::string url = endpoint + "/" + bucket;
  curl_easy_setopt(handle.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(handle.get(), CURLOPT_CUSTOMREQUEST, "PUT");
  curl_easy_setopt(handle.get(), CURLOPT_WRITEFUNCTION,
                   +[](char*, std::size_t size, std::size_t count, void*) { return size * count; });
  ASSERT_EQ(curl_easy_perform(handle.get()), CURLE_OK);
  long status = 0;
  curl_easy_getinfo(handle.get(), CURLINFO_RESPONSE_CODE, &status);
  ASSERT_EQ(status, 200) << "creating bucket " << bucket;
}

// Accepts connections on a free loopback port, records each request's head
// (request line and headers) and closes without answering: the client sees a
// network failure, the test sees exactly what was sent.
class RequestRecorder {
 public:
  RequestRecorder() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(listen_fd_, 16) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      throw std::runtime_error("RequestRecorder: cannot listen on 127.0.0.1");
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~RequestRecorder() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> heads() const {
    std::lock_guard lock(mutex_);
    return heads_;
  }
  std::string last_head() const {
    auto all = heads();
    return all.empty() ? "" : all.back();
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd ready{listen_fd_, POLLIN, 0};
      if (::poll(&ready, 1, 50) <= 0) continue;
      const int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) continue;
      std::string head;
      char buffer[4096];
      while (head.find("\r\n\r\n") == std::string::npos) {
        pollfd readable{client, POLLIN, 0};
        if (::poll(&readable, 1, 10000) <= 0) break;
        const ssize_t n = ::read(client, buffer, sizeof buffer);
        if (n <= 0) break;
        head.append(buffer, static_cast<std::size_t>(n));
      }
      // Recorded before the close: the close is what makes the client throw,
      // and a test reads the head right after that throw.
      {
        std::lock_guard lock(mutex_);
        heads_.push_back(head.substr(0, head.find("\r\n\r\n")));
      }
      ::close(client);
    }
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<std::string> heads_;
};

std::string request_line(const std::string& head) { return head.substr(0, head.find("\r\n")); }

// The last request that was not the HEAD settling a write whose answer was lost.
std::string last_non_head(const RequestRecorder& recorder) {
  const auto all = recorder.heads();
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (!it->starts_with("HEAD ")) return *it;
  }
  return "";
}

bool has_header_line(const std::string& head, const std::string& line) {
  return head.find("\r\n" + line + "\r\n") != std::string::npos ||
         (head.size() >= line.size() && head.ends_with("\r\n" + line));
}

}  // namespace

// --- addressing and description: no server needed -----------------------------

TEST(S3StorageAddressing, AwsEndpointsAreVirtualHostedByDefault) {
  ServiceConfig service = s3_config("media", "");
  service.force_path_style = false;
  service.region = "eu-west-1";
  const S3Storage storage(service);
  EXPECT_FALSE(storage.path_style());
  EXPECT_EQ(storage.object_url("photos/a b+c.jpg"), "https://media.s3.eu-west-1.amazonaws.com/photos/a%20b%2Bc.jpg");
  EXPECT_EQ(storage.describe(), "s3 bucket media at https://s3.eu-west-1.amazonaws.com");
}

TEST(S3StorageAddressing, PathStyleForIpAndLocalhostForcedOrDottedBuckets) {
  ServiceConfig service = s3_config("target", "http://127.0.0.1:4568");
  service.force_path_style = false;
  EXPECT_TRUE(S3Storage(service).path_style());
  EXPECT_EQ(S3Storage(service).object_url("a//b"), "http://127.0.0.1:4568/target/a//b");
  service.endpoint = "http://localhost:9000";
  EXPECT_TRUE(S3Storage(service).path_style());
  service.endpoint = "https://nyc3.digitaloceanspaces.com";
  EXPECT_FALSE(S3Storage(service).path_style());
  EXPECT_EQ(S3Storage(service).object_url("k"), "https://target.nyc3.digitaloceanspaces.com/k");
  service.force_path_style = true;
  EXPECT_EQ(S3Storage(service).object_url("k"), "https://nyc3.digitaloceanspaces.com/target/k");
  // A dotted name would not match the endpoint's wildcard certificate.
  service.force_path_style = false;
  service.bucket = "assets.example.com";
  EXPECT_TRUE(S3Storage(service).path_style());
}

TEST(S3StorageAddressing, DescribeNeverShowsCredentials) {
  ServiceConfig service = s3_config("media", "https://user:hunter2@account.r2.cloudflarestorage.com:443/");
  service.secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  service.session_token = "FwoGZXIvYXdzEXAMPLETOKEN";
  service.region = "auto";
  const S3Storage storage(service);
  EXPECT_EQ(storage.describe(), "s3 bucket media at https://account.r2.cloudflarestorage.com");
}

TEST(S3StorageAddressing, UnsupportedEndpointSchemeIsAConfigError) {
  EXPECT_EQ(error_from([] { S3Storage storage(s3_config("b", "ftp://example.com")); }).kind(), ErrorKind::kConfig);
}

// --- against s3rver ---------------------------------------------------------------

class S3StorageTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new TestStack({.s3 = true});
    create_bucket(endpoint(), "copies");
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }

  static std::string endpoint() { return stack_->env("S3_SOURCE_ENDPOINT"); }
  static S3Storage& source() {
    static S3Storage storage(s3_config("source", endpoint()));
    return storage;
  }

  static TestStack* stack_;
};

TestStack* S3StorageTest::stack_ = nullptr;

TEST_F(S3StorageTest, CheckPassesForAGoodBucket) { EXPECT_NO_THROW(source().check()); }

TEST_F(S3StorageTest, OddKeysRoundTripThroughPutHeadGetAndList) {
  // What s3rver can store; "//" and dot segments are checked on the wire below.
  const std::vector<std::string> keys = {
      "odd/with space.txt", "odd/日本語/ファイル.txt", "odd/emoji 😀", "odd/plus+sign", "odd/percent%41%",
      "odd/eq=and&amp",     "odd/question?mark",     "odd/hash#tag", "odd/tilde~",    "odd/parens()",
      "odd/bang!",          "odd/dollar$",           "odd/quote'",   "odd/at@",       "odd/comma,",
      "odd/semi;colon",     "odd/trailing.dots..",   "odd/colon:x",  "odd/star*",     "odd/dir/",
  };
  for (const std::string& key : keys) {
    SCOPED_TRACE(key);
    const std::string body = "bytes of " + key;
    EXPECT_EQ(put_text(source(), key, body), md5_hex(body));
    const auto info = source().head(key);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->size, body.size());
    EXPECT_EQ(info->etag, md5_hex(body));
    const auto fetched = get_text(source(), key);
    ASSERT_TRUE(fetched);
    EXPECT_EQ(fetched->bytes, body);
  }
  std::vector<std::string> listed;
  ListRequest request = list_request("odd/");
  do {
    ListPage page = source().list(request);
    for (const auto& object : page.objects) listed.push_back(object.key);
    request.continuation_token = page.next_continuation_token;
  } while (!request.continuation_token.empty());
  for (const std::string& key : keys) {
    EXPECT_NE(std::find(listed.begin(), listed.end(), key), listed.end()) << key << " was not listed verbatim";
  }
}

TEST_F(S3StorageTest, EmptyObject) {
  EXPECT_EQ(put_text(source(), "empty/zero", ""), md5_hex(""));
  const auto info = source().head("empty/zero");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->size, 0u);
  EXPECT_EQ(info->etag, "d41d8cd98f00b204e9800998ecf8427e");
  int chunks = 0;
  const auto got = source().get("empty/zero", [&](std::string_view) { ++chunks; });
  ASSERT_TRUE(got);
  EXPECT_EQ(got->size, 0u);
  EXPECT_EQ(chunks, 0);
}

TEST_F(S3StorageTest, RangeGetReturnsOnlyTheRangeAndTheWholeSize) {
  std::string body;
  for (int i = 0; i < 100; ++i) body.push_back(static_cast<char>('a' + i % 26));
  put_text(source(), "range/alphabet", body);
  const auto fetched = get_text(source(), "range/alphabet", ByteRange{10, 19});
  ASSERT_TRUE(fetched);
  EXPECT_EQ(fetched->bytes, body.substr(10, 10));
  EXPECT_EQ(fetched->info.size, 100u);
  EXPECT_EQ(fetched->info.etag, md5_hex(body));
  const auto last = get_text(source(), "range/alphabet", ByteRange{99, 99});
  ASSERT_TRUE(last);
  EXPECT_EQ(last->bytes, body.substr(99));
}

TEST_F(S3StorageTest, MissingKeysAreValuesNotErrors) {
  EXPECT_EQ(source().head("missing/nothing-here"), std::nullopt);
  bool called = false;
  EXPECT_EQ(source().get("missing/nothing-here", [&](std::string_view) { called = true; }), std::nullopt);
  EXPECT_FALSE(called);
}

TEST_F(S3StorageTest, MetadataIsStoredAndReturnedLowercase) {
  PutOptions options;
  options.metadata = {{"Content-Type", "image/png"},
                      {"content-disposition", "attachment; filename=\"a b.png\""},
                      {"content-language", "fr"},
                      {"cache-control", "max-age=60"},
                      {"x-amz-meta-Owner", "alice"}};
  const std::string body = "\x89PNG fake";
  put_text(source(), "meta/a.png", body, options);
  for (const auto& info : {source().head("meta/a.png"), std::optional(get_text(source(), "meta/a.png")->info)}) {
    ASSERT_TRUE(info);
    EXPECT_EQ(metadata_value(info->metadata, "content-type"), "image/png");
    EXPECT_EQ(metadata_value(info->metadata, "content-disposition"), "attachment; filename=\"a b.png\"");
    EXPECT_EQ(metadata_value(info->metadata, "content-language"), "fr");
    EXPECT_EQ(metadata_value(info->metadata, "cache-control"), "max-age=60");
    EXPECT_EQ(metadata_value(info->metadata, "x-amz-meta-owner"), "alice");
    EXPECT_FALSE(info->last_modified.empty());
  }
}

TEST_F(S3StorageTest, UploadHeadersApplyUnlessTheMetadataSetsThem) {
  ServiceConfig service = s3_config("source", endpoint());
  service.upload_headers = {{"cache-control", "public, max-age=31536000"}};
  S3Storage storage(service);
  put_text(storage, "upload-headers/default", "x");
  EXPECT_EQ(metadata_value(storage.head("upload-headers/default")->metadata, "cache-control"),
            "public, max-age=31536000");
  put_text(storage, "upload-headers/own", "x", PutOptions{.content_md5 = "", .metadata = {{"cache-control", "no-store"}}});
  EXPECT_EQ(metadata_value(storage.head("upload-headers/own")->metadata, "cache-control"), "no-store");
}

TEST_F(S3StorageTest, RightContentMd5IsAccepted) {
  const std::string body = "verified bytes";
  EXPECT_EQ(put_text(source(), "md5/right", body, PutOptions{.content_md5 = md5_base64(body), .metadata = {}}),
            md5_hex(body));
}

// s3rver stores whatever Content-MD5 says; S3Storage still notices, because a
// single-part ETag is the MD5 of what was stored.
TEST_F(S3StorageTest, WrongContentMd5IsIntegrityEvenWhenTheServerDoesNotCheck) {
  const Error error = error_from([] {
    put_text(source(), "md5/wrong-direct", "actual bytes", PutOptions{.content_md5 = md5_base64("other"), .metadata = {}});
  });
  EXPECT_EQ(error.kind(), ErrorKind::kIntegrity);
  EXPECT_EQ(error.reason(), "integrity");
}

// Through FaultProxy, which verifies Content-MD5 as S3 does and answers 400 BadDigest.
TEST_F(S3StorageTest, ServerBadDigestIsIntegrity) {
  FaultProxyOptions options;
  options.upstream = endpoint();
  FaultProxy proxy(options);
  S3Storage storage(s3_config("source", proxy.endpoint()));
  const Error error = error_from([&] {
    put_text(storage, "md5/wrong-proxied", "actual bytes", PutOptions{.content_md5 = md5_base64("other"), .metadata = {}});
  });
  EXPECT_EQ(error.kind(), ErrorKind::kIntegrity);
  EXPECT_EQ(error.http_status(), 400);
  EXPECT_EQ(proxy.stats().bad_digests, 1u);
  EXPECT_EQ(storage.head("md5/wrong-proxied"), std::nullopt);
}

TEST_F(S3StorageTest, WrongCredentialsAreAConfigErrorThatHidesTheSecret) {
  ServiceConfig service = s3_config("source", endpoint());
  service.access_key_id = "NOT-A-KEY";
  service.secret_access_key = "very-secret-value-123";
  S3Storage storage(service);
  const Error error = error_from([&] { storage.check(); });
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  const std::string message = error.what();
  EXPECT_NE(message.find("credentials rejected"), std::string::npos) << message;
  EXPECT_NE(message.find(service.name), std::string::npos) << message;
  EXPECT_EQ(message.find("very-secret-value-123"), std::string::npos) << message;
  EXPECT_EQ(message.find("Signature="), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;

  const Error put_error = error_from([&] { put_text(storage, "creds/x", "x"); });
  EXPECT_EQ(put_error.kind(), ErrorKind::kPermanent);
  EXPECT_EQ(put_error.reason(), "access_denied");
  EXPECT_EQ(std::string(put_error.what()).find("very-secret-value-123"), std::string::npos);
}

TEST_F(S3StorageTest, MissingBucketIsAConfigError) {
  S3Storage storage(s3_config("no-such-bucket", endpoint()));
  const Error error = error_from([&] { storage.check(); });
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  EXPECT_NE(std::string(error.what()).find("missing bucket no-such-bucket: create it or fix `bucket:`"),
            std::string::npos)
      << error.what();
  EXPECT_EQ(error_from([&] { put_text(storage, "k", "x"); }).kind(), ErrorKind::kConfig);
  EXPECT_EQ(error_from([&] { storage.get("k", [](std::string_view) {}); }).kind(), ErrorKind::kConfig);
}

TEST_F(S3StorageTest, UnreachableEndpointIsTransient) {
  std::string closed_port;
  {
    RequestRecorder recorder;  // a port that was free a moment ago and is closed again
    closed_port = recorder.endpoint();
  }
  S3Storage storage(s3_config("source", closed_port));
  const Error error = error_from([&] { storage.check(); });
  EXPECT_EQ(error.kind(), ErrorKind::kTransient);
  EXPECT_EQ(std::string(error.what()).rfind("cannot reach s3 bucket source at " + closed_port, 0), 0u)
      << error.what();
}

TEST_F(S3StorageTest, ListPaginatesWithContinuationTokens) {
  std::vector<std::string> keys;
  for (int i = 0; i < 25; ++i) {
    char key[32];
    std::snprintf(key, sizeof key, "pages/%02d", i);
    keys.emplace_back(key);
    put_text(source(), key, std::to_string(i));
  }
  std::vector<std::string> listed;
  std::vector<std::size_t> page_sizes;
  ListRequest request = list_request("pages/", "", "", 10);
  do {
    ListPage page = source().list(request);
    page_sizes.push_back(page.objects.size());
    for (const auto& object : page.objects) {
      listed.push_back(object.key);
      EXPECT_EQ(object.etag, md5_hex(object.key.substr(6, 1) == "0" ? object.key.substr(7) : object.key.substr(6)));
    }
    request.continuation_token = page.next_continuation_token;
  } while (!request.continuation_token.empty() && page_sizes.size() < 10);
  EXPECT_EQ(page_sizes, (std::vector<std::size_t>{10, 10, 5}));
  EXPECT_EQ(listed, keys);
}

TEST_F(S3StorageTest, ListWithDelimiterGivesCommonPrefixes) {
  // Each prefix holds an object directly: s3rver's directory walk never sees
  // a prefix whose objects all sit deeper (tree/b/c/1 alone), unlike S3.
  for (const char* key : {"tree/top.txt", "tree/a/1", "tree/a/2", "tree/b/1", "tree/b/c/1"}) {
    put_text(source(), key, "x");
  }
  const ListPage page = source().list(list_request("tree/", "/"));
  ASSERT_EQ(page.objects.size(), 1u);
  EXPECT_EQ(page.objects[0].key, "tree/top.txt");
  EXPECT_EQ(page.objects[0].size, 1u);
  EXPECT_EQ(page.common_prefixes, (std::vector<std::string>{"tree/a/", "tree/b/"}));
  EXPECT_TRUE(page.next_continuation_token.empty());
}

TEST_F(S3StorageTest, ListStartsAfterAKey) {
  for (const char* key : {"after/a", "after/b", "after/c", "after/d"}) put_text(source(), key, "x");
  const ListPage page = source().list(list_request("after/", "", "after/b"));
  std::vector<std::string> listed;
  for (const auto& object : page.objects) listed.push_back(object.key);
  EXPECT_EQ(listed, (std::vector<std::string>{"after/c", "after/d"}));
}

TEST_F(S3StorageTest, MultipartUploadCompletesWithMetadata) {
  const std::string part1(5 * 1024 * 1024, 'a');
  const std::string part2 = "the tail";
  const std::string upload_id =
      source().create_multipart("multi/big.bin", PutOptions{.content_md5 = "", .metadata = {{"content-type", "video/mp4"}}});
  ASSERT_FALSE(upload_id.empty());
  MemoryByteSource body1(part1);
  MemoryByteSource body2(part2);
  const std::string etag1 = source().upload_part("multi/big.bin", upload_id, 1, body1, md5_base64(part1));
  const std::string etag2 = source().upload_part("multi/big.bin", upload_id, 2, body2, md5_base64(part2));
  EXPECT_EQ(etag1, md5_hex(part1));
  EXPECT_EQ(etag2, md5_hex(part2));
  // Parts given out of order: the request lists them in order.
  const std::string etag = source().complete_multipart("multi/big.bin", upload_id, {{2, etag2}, {1, etag1}});
  EXPECT_FALSE(etag.empty());
  const auto fetched = get_text(source(), "multi/big.bin");
  ASSERT_TRUE(fetched);
  EXPECT_EQ(fetched->bytes.size(), part1.size() + part2.size());
  EXPECT_TRUE(fetched->bytes == part1 + part2);
  EXPECT_EQ(fetched->info.etag, etag);
  EXPECT_EQ(metadata_value(fetched->info.metadata, "content-type"), "video/mp4");
}

TEST_F(S3StorageTest, UploadPartWithWrongContentMd5IsIntegrity) {
  const std::string upload_id = source().create_multipart("multi/bad-part", {});
  MemoryByteSource body("part bytes");
  EXPECT_EQ(error_from([&] { source().upload_part("multi/bad-part", upload_id, 1, body, md5_base64("x")); }).kind(),
            ErrorKind::kIntegrity);
}

// s3rver 3.7.1 has no AbortMultipartUpload: it answers 405 MethodNotAllowed,
// and only for a DELETE that carries uploadId on an existing bucket. The
// request's shape is checked on the wire in AbortAndCopyPartRequestsOnTheWire.
TEST_F(S3StorageTest, AbortMultipartReachesTheServer) {
  const std::string upload_id = source().create_multipart("multi/aborted", {});
  const Error error = error_from([&] { source().abort_multipart("multi/aborted", upload_id); });
  EXPECT_EQ(error.http_status(), 405);
  EXPECT_EQ(error.kind(), ErrorKind::kPermanent);
  EXPECT_NE(std::string(error.what()).find("MethodNotAllowed"), std::string::npos);
  EXPECT_EQ(source().head("multi/aborted"), std::nullopt);
}

TEST_F(S3StorageTest, CopyObjectBetweenBucketsOfOneServerKeepsMetadata) {
  S3Storage copies(s3_config("copies", endpoint()));
  ASSERT_TRUE(copies.can_copy_from(source()));
  const std::string body = "copied server-side";
  put_text(source(), "copy/a b ሴ.txt", body,
           PutOptions{.content_md5 = "", .metadata = {{"content-type", "text/plain"}, {"x-amz-meta-origin", "source"}}});
  EXPECT_EQ(copies.copy_object(source(), "copy/a b ሴ.txt", "landed/a b ሴ.txt"), md5_hex(body));
  const auto fetched = get_text(copies, "landed/a b ሴ.txt");
  ASSERT_TRUE(fetched);
  EXPECT_EQ(fetched->bytes, body);
  EXPECT_EQ(metadata_value(fetched->info.metadata, "content-type"), "text/plain");
  EXPECT_EQ(metadata_value(fetched->info.metadata, "x-amz-meta-origin"), "source");
  EXPECT_EQ(error_from([&] { copies.copy_object(source(), "copy/missing", "landed/missing"); }).reason(), "not_found");
}

TEST_F(S3StorageTest, ServerSideCopyNeedsTheSameEndpointAndCredentials) {
  S3Storage copies(s3_config("copies", endpoint()));
  ServiceConfig other_secret = s3_config("source", endpoint());
  other_secret.secret_access_key = "different";
  EXPECT_FALSE(copies.can_copy_from(S3Storage(other_secret)));
  EXPECT_FALSE(copies.can_copy_from(S3Storage(s3_config("target", stack_->env("S3_TARGET_ENDPOINT")))));
  EXPECT_EQ(error_from([&] { copies.copy_object(S3Storage(other_secret), "k", "k"); }).reason(), "unsupported");
}

// s3rver 3.7.1 has no UploadPartCopy (501 NotImplemented); the request's
// headers are checked on the wire in AbortAndCopyPartRequestsOnTheWire.
TEST_F(S3StorageTest, CopyPartReachesTheServer) {
  S3Storage copies(s3_config("copies", endpoint()));
  put_text(source(), "copy/part-source", "0123456789");
  const std::string upload_id = copies.create_multipart("landed/parts", {});
  const Error error = error_from([&] {
    copies.copy_part(source(), "copy/part-source", "landed/parts", upload_id, 1, ByteRange{0, 4});
  });
  EXPECT_EQ(error.http_status(), 501);
  // A refusal of the copy itself: the copy engine streams instead.
  EXPECT_EQ(error.failure_reason(), blobferry::FailureReason::kCopyRefused);
}

TEST_F(S3StorageTest, ThrottlingServerErrorsResetsAndStallsThroughFaultProxy) {
  put_text(source(), "faults/object", "payload");
  const auto through = [&](auto configure, int read_timeout) {
    FaultProxyOptions options;
    options.upstream = endpoint();
    configure(options);
    auto proxy = std::make_unique<FaultProxy>(options);
    ServiceConfig service = s3_config("source", proxy->endpoint());
    service.http_read_timeout = read_timeout;
    S3Storage storage(service);
    return error_from([&] { storage.get("faults/object", [](std::string_view) {}); });
  };

  const Error slow_down = through([](FaultProxyOptions& o) { o.slow_down.probability = 1.0; }, 10);
  EXPECT_EQ(slow_down.kind(), ErrorKind::kThrottled);
  EXPECT_EQ(slow_down.retry_after(), std::chrono::seconds{1});

  EXPECT_EQ(through([](FaultProxyOptions& o) { o.server_error.probability = 1.0; }, 10).kind(),
            ErrorKind::kTransient);
  EXPECT_EQ(through([](FaultProxyOptions& o) { o.reset.probability = 1.0; }, 10).reason(), "network");

  const auto started = std::chrono::steady_clock::now();
  const Error stall = through(
      [](FaultProxyOptions& o) {
        o.stall.probability = 1.0;
        o.stall_duration = std::chrono::seconds{20};
      },
      1);
  EXPECT_EQ(stall.kind(), ErrorKind::kTransient);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds{10});
}

TEST_F(S3StorageTest, TruncatedBodyIsTransient) {
  put_text(source(), "faults/long", std::string(64 * 1024, 'z'));
  FaultProxyOptions options;
  options.upstream = endpoint();
  options.truncate.probability = 1.0;
  FaultProxy proxy(options);
  S3Storage storage(s3_config("source", proxy.endpoint()));
  EXPECT_EQ(error_from([&] { storage.get("faults/long", [](std::string_view) {}); }).kind(), ErrorKind::kTransient);
}

TEST_F(S3StorageTest, ASinksExceptionReachesTheCaller) {
  put_text(source(), "sink/object", "abc");
  struct SinkFull : std::runtime_error {
    SinkFull() : std::runtime_error("disk full") {}
  };
  EXPECT_THROW(source().get("sink/object", [](std::string_view) { throw SinkFull(); }), SinkFull);
  // The handle that carried the aborted transfer is reused cleanly.
  EXPECT_EQ(get_text(source(), "sink/object")->bytes, "abc");
}

TEST_F(S3StorageTest, OneInstanceServesManyThreads) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([t, &failures] {
      for (int i = 0; i < 10; ++i) {
        const std::string key = "threads/" + std::to_string(t) + "/" + std::to_string(i);
        const std::string body = key + std::string(1000 + i, 'x');
        try {
          put_text(source(), key, body, PutOptions{.content_md5 = md5_base64(body), .metadata = {}});
          const auto fetched = get_text(source(), key);
          if (!fetched || fetched->bytes != body) ++failures;
        } catch (const std::exception&) {
          ++failures;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(source().list(list_request("threads/")).objects.size(), 80u);
}

// The injected clock dates the signature: s3rver refuses requests more than
// 15 minutes off with RequestTimeTooSkewed.
TEST_F(S3StorageTest, TheInjectedClockDatesEveryRequest) {
  S3Storage skewed(s3_config("source", endpoint()),
                   [] { return std::chrono::system_clock::now() - std::chrono::hours{1}; });
  // s3rver refuses the hour-old signature (RequestTimeTooSkewed); its Date
  // header corrects the signing clock and the request is signed again.
  EXPECT_FALSE(skewed.get("anything", [](std::string_view) {}));
  EXPECT_NEAR(std::chrono::duration_cast<std::chrono::seconds>(skewed.clock_offset()).count(), 3600, 5);
  EXPECT_NO_THROW(skewed.check());
}

// --- on the wire: what s3rver cannot show --------------------------------------------

TEST(S3StorageWire, KeysAreSentVerbatimWithoutPathNormalisation) {
  RequestRecorder recorder;
  ServiceConfig service = s3_config("bucket", recorder.endpoint());
  service.http_read_timeout = 2;
  S3Storage storage(service);
  for (const std::string key : {"a//b", "a/./b/../c", "./x/..", "sp ace+%/", "x//"}) {
    EXPECT_EQ(error_from([&] { storage.head(key); }).kind(), ErrorKind::kTransient);
  }
  const auto heads = recorder.heads();
  ASSERT_EQ(heads.size(), 5u);
  EXPECT_EQ(request_line(heads[0]), "HEAD /bucket/a//b HTTP/1.1");
  EXPECT_EQ(request_line(heads[1]), "HEAD /bucket/a/./b/../c HTTP/1.1");
  EXPECT_EQ(request_line(heads[2]), "HEAD /bucket/./x/.. HTTP/1.1");
  EXPECT_EQ(request_line(heads[3]), "HEAD /bucket/sp%20ace%2B%25/ HTTP/1.1");
  EXPECT_EQ(request_line(heads[4]), "HEAD /bucket/x// HTTP/1.1");
}

TEST(S3StorageWire, PutSendsSignedHeadersButNoChecksumOrAclByDefault) {
  RequestRecorder recorder;
  ServiceConfig service = s3_config("bucket", recorder.endpoint());
  service.http_read_timeout = 2;
  service.session_token = "session-token-value";
  S3Storage storage(service);
  EXPECT_THROW(put_text(storage, "k", "body", PutOptions{.content_md5 = md5_base64("body"), .metadata = {}}), Error);
  const std::string head = last_non_head(recorder);
  EXPECT_EQ(request_line(head), "PUT /bucket/k HTTP/1.1");
  EXPECT_TRUE(has_header_line(head, "Host: " + recorder.endpoint().substr(7))) << head;
  EXPECT_TRUE(has_header_line(head, "Content-MD5: " + md5_base64("body"))) << head;
  EXPECT_TRUE(has_header_line(head, "x-amz-content-sha256: UNSIGNED-PAYLOAD")) << head;
  EXPECT_TRUE(has_header_line(head, "x-amz-security-token: session-token-value")) << head;
  EXPECT_NE(head.find("Authorization: AWS4-HMAC-SHA256 Credential=S3RVER/"), std::string::npos) << head;
  EXPECT_NE(head.find("SignedHeaders=content-md5;host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"),
            std::string::npos)
      << head;
  EXPECT_EQ(head.find("x-amz-checksum"), std::string::npos) << head;
  EXPECT_EQ(head.find("x-amz-acl"), std::string::npos) << head;

  service.public_acl = true;
  S3Storage public_storage(service);
  EXPECT_THROW(put_text(public_storage, "k", "body"), Error);
  EXPECT_TRUE(has_header_line(last_non_head(recorder), "x-amz-acl: public-read")) << last_non_head(recorder);
}

TEST(S3StorageWire, AbortAndCopyPartRequestsOnTheWire) {
  RequestRecorder recorder;
  ServiceConfig service = s3_config("bucket", recorder.endpoint());
  service.http_read_timeout = 2;
  S3Storage target(service);
  ServiceConfig source_service = service;
  source_service.bucket = "origin";
  S3Storage source(source_service);

  EXPECT_THROW(target.abort_multipart("dir/a b", "up/load=1"), Error);
  EXPECT_EQ(request_line(recorder.last_head()), "DELETE /bucket/dir/a%20b?uploadId=up%2Fload%3D1 HTTP/1.1");

  EXPECT_THROW(target.copy_part(source, "src/k+1 ሴ", "dst", "u1", 3, ByteRange{5, 9}), Error);
  const std::string head = recorder.last_head();
  EXPECT_EQ(request_line(head), "PUT /bucket/dst?partNumber=3&uploadId=u1 HTTP/1.1");
  EXPECT_TRUE(has_header_line(head, "x-amz-copy-source: /origin/src/k%2B1%20%E1%88%B4")) << head;
  EXPECT_TRUE(has_header_line(head, "x-amz-copy-source-range: bytes=5-9")) << head;

  EXPECT_THROW(target.copy_object(source, "src/k", "dst"), Error);
  EXPECT_TRUE(has_header_line(last_non_head(recorder), "x-amz-metadata-directive: COPY")) << last_non_head(recorder);
}

TEST(S3StorageWire, ListAsksForUrlEncodingAndSendsEveryParameter) {
  RequestRecorder recorder;
  ServiceConfig service = s3_config("bucket", recorder.endpoint());
  service.http_read_timeout = 2;
  S3Storage storage(service);
  ListRequest request = list_request("a b/", "/", "a b/c", 5000);
  request.continuation_token = "tok+/=";
  EXPECT_THROW(storage.list(request), Error);
  EXPECT_EQ(request_line(recorder.last_head()),
            "GET /bucket?continuation-token=tok%2B%2F%3D&delimiter=%2F&encoding-type=url&list-type=2&max-keys=1000"
            "&prefix=a%20b%2F&start-after=a%20b%2Fc HTTP/1.1");
}
