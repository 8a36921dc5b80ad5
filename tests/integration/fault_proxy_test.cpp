// FaultProxy before a real s3rver: each fault as libcurl sees it, and a clean pass-through.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <curl/curl.h>

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/base/error.h"
#include "common/storage/s3/curl_handles.h"
#include "tests/support/fault_proxy.h"
#include "tests/support/test_stack.h"

namespace blobferry::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Call {
  std::string method = "GET";
  std::string url;
  std::string body;                  // sent for PUT
  bool chunked = false;              // PUT without a size: curl sends it chunked
  std::vector<std::string> headers;  // "Name: value"
  long timeout_ms = 20000;
};

struct Reply {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lowercase names, final response only
  long new_connections = 0;
};

struct Upload {
  const std::string* body;
  std::size_t offset = 0;
};

std::size_t on_body(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<Reply*>(out)->body.append(data, size * count);
  return size * count;
}

std::size_t on_header(char* data, std::size_t size, std::size_t count, void* out) {
  auto& headers = static_cast<Reply*>(out)->headers;
  std::string line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) headers.clear();  // a 100 Continue came first
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = lowercase(line.substr(0, colon));
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    value.erase(value.find_last_not_of("\r\n ") + 1);
    headers[name] = value;
  }
  return size * count;
}

std::size_t on_read(char* buffer, std::size_t size, std::size_t count, void* in) {
  auto* upload = static_cast<Upload*>(in);
  std::size_t n = std::min(size * count, upload->body->size() - upload->offset);
  std::memcpy(buffer, upload->body->data() + upload->offset, n);
  upload->offset += n;
  return n;
}

// One request on handle, which keeps its connection for the next call.
Reply perform(CURL* handle, const Call& call) {
  curl_easy_reset(handle);
  Reply reply;
  Upload upload{&call.body};
  CurlSlistPtr headers;
  for (const auto& line : call.headers) append_curl_header(headers, line);
  curl_easy_setopt(handle, CURLOPT_URL, call.url.c_str());
  curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, call.timeout_ms);
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &reply);
  curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(handle, CURLOPT_HEADERDATA, &reply);
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers.get());
  if (call.method == "HEAD") {
    curl_easy_setopt(handle, CURLOPT_NOBODY, 1L);
  } else if (call.method == "PUT") {
    curl_easy_setopt(handle, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(handle, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(handle, CURLOPT_READDATA, &upload);
    if (!call.chunked) {
      curl_easy_setopt(handle, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(call.body.size()));
    }
  } else if (call.method != "GET") {
    curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, call.method.c_str());
  }
  reply.code = curl_easy_perform(handle);
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &reply.status);
  curl_easy_getinfo(handle, CURLINFO_NUM_CONNECTS, &reply.new_connections);
  return reply;
}

Reply perform(const Call& call) {
  CurlEasyPtr handle = make_curl_easy();
  return perform(handle.get(), call);
}

Call get_request(std::string url, std::vector<std::string> headers = {}, long timeout_ms = 20000) {
  Call call;
  call.url = std::move(url);
  call.headers = std::move(headers);
  call.timeout_ms = timeout_ms;
  return call;
}

Call head_request(std::string url) {
  Call call = get_request(std::move(url));
  call.method = "HEAD";
  return call;
}

Call put_request(std::string url, std::string body, std::vector<std::string> headers = {}) {
  Call call = get_request(std::move(url), std::move(headers));
  call.method = "PUT";
  call.body = std::move(body);
  return call;
}

FaultProxyOptions options_for(std::string upstream) {
  FaultProxyOptions options;
  options.upstream = std::move(upstream);
  return options;
}

std::string content_md5_header(const std::string& body) {
  return "Content-MD5: " + base64_encode(md5_of(body));
}

std::string unquoted(std::string etag) {
  if (etag.size() >= 2 && etag.front() == '"') etag = etag.substr(1, etag.size() - 2);
  return etag;
}

std::size_t differing_bytes(const std::string& a, const std::string& b) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) count += a[i] != b[i];
  return count;
}

// One s3rver for the whole suite, with an object every test reads.
class FaultProxyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    StackOptions servers;
    servers.s3 = true;
    stack_ = new TestStack(servers);
    std::mt19937 random(42);
    object_.resize(256 * 1024);
    for (char& c : object_) c = static_cast<char>(random());
    Reply put = perform(put_request(direct("obj"), object_));
    ASSERT_EQ(put.status, 200) << put.body;
  }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }

  static std::string upstream() { return stack_->env("S3_SOURCE_ENDPOINT"); }
  static std::string direct(const std::string& key) { return upstream() + "/source/" + key; }
  static std::string via(const FaultProxy& proxy, const std::string& key) {
    return proxy.endpoint() + "/source/" + key;
  }
  static FaultProxyOptions options() { return options_for(upstream()); }

  static TestStack* stack_;
  static std::string object_;
};

TestStack* FaultProxyTest::stack_ = nullptr;
std::string FaultProxyTest::object_;

TEST_F(FaultProxyTest, WithoutFaultsResponsesAreByteIdenticalOverOneKeptAliveConnection) {
  FaultProxy proxy(options());
  CurlEasyPtr through = make_curl_easy();
  const std::vector<Call> calls = {
      get_request("obj"),          get_request("missing-key"),
      head_request("obj"),         get_request("obj", {"Range: bytes=10-99"}),
      get_request("?list-type=2"),
  };
  for (const auto& call : calls) {
    Call to_upstream = call;
    to_upstream.url = direct(call.url);
    Call to_proxy = call;
    to_proxy.url = via(proxy, call.url);
    Reply expected = perform(to_upstream);
    Reply got = perform(through.get(), to_proxy);
    ASSERT_EQ(got.code, CURLE_OK) << call.url << ": " << curl_easy_strerror(got.code);
    EXPECT_EQ(got.status, expected.status) << call.url;
    EXPECT_EQ(got.body, expected.body) << call.url;
    for (const char* name :
         {"etag", "content-length", "content-type", "content-range", "last-modified"}) {
      EXPECT_EQ(got.headers[name], expected.headers[name]) << call.url << " " << name;
    }
  }
  EXPECT_EQ(perform(through.get(), get_request(via(proxy, "obj"))).body, object_);

  // An upload through the proxy lands exactly as sent.
  std::string body = "uploaded through the proxy " + std::string(5000, 'x');
  Reply put = perform(through.get(),
                      put_request(via(proxy, "put-plain"), body, {content_md5_header(body)}));
  EXPECT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(unquoted(put.headers["etag"]), hex_encode(md5_of(body)));
  EXPECT_EQ(perform(get_request(direct("put-plain"))).body, body);

  FaultProxyStats stats = proxy.stats();
  EXPECT_EQ(stats.connections, 1u) << "curl kept one connection alive for every request";
  EXPECT_EQ(stats.requests, calls.size() + 2);
  EXPECT_EQ(stats.forwarded, calls.size() + 2);
  EXPECT_EQ(stats.faults(), 0u);
  EXPECT_EQ(stats.upstream_errors, 0u);
}

TEST_F(FaultProxyTest, HandlesExpectContinueAndChunkedUploads) {
  FaultProxy proxy(options());
  CurlEasyPtr through = make_curl_easy();
  std::string body(300 * 1024, 'e');
  auto started = Clock::now();
  Reply expect =
      perform(through.get(), put_request(via(proxy, "expect"), body, {"Expect: 100-continue"}));
  EXPECT_EQ(expect.status, 200) << expect.body;
  // Unanswered, curl would wait a whole second before sending the body anyway.
  EXPECT_LT(Clock::now() - started, milliseconds(800)) << "the proxy answered 100 Continue";
  EXPECT_EQ(perform(get_request(direct("expect"))).body, body);

  std::string streamed = "streamed without a size";
  Call unsized = put_request(via(proxy, "chunked"), streamed);
  unsized.chunked = true;
  Reply chunked = perform(through.get(), unsized);
  EXPECT_EQ(chunked.status, 200) << chunked.body;
  EXPECT_EQ(perform(get_request(direct("chunked"))).body, streamed);
  EXPECT_EQ(proxy.stats().connections, 1u);
}

TEST_F(FaultProxyTest, ServerErrorAnswers500InternalErrorWithoutForwarding) {
  auto with = options();
  with.server_error.probability = 1.0;
  FaultProxy proxy(with);
  CurlEasyPtr through = make_curl_easy();
  for (int i = 0; i < 2; ++i) {
    Reply reply = perform(through.get(), get_request(via(proxy, "obj")));
    EXPECT_EQ(reply.code, CURLE_OK);
    EXPECT_EQ(reply.status, 500);
    EXPECT_NE(reply.body.find("<Code>InternalError</Code>"), std::string::npos) << reply.body;
    EXPECT_NE(reply.body.find("<Resource>/source/obj</Resource>"), std::string::npos) << reply.body;
    EXPECT_EQ(reply.headers["content-type"], "application/xml");
  }
  FaultProxyStats stats = proxy.stats();
  EXPECT_EQ(stats.server_errors, 2u);
  EXPECT_EQ(stats.forwarded, 0u);
  EXPECT_EQ(stats.connections, 1u) << "the connection survives an error answer";
}

TEST_F(FaultProxyTest, SlowDownAppliesOnlyToTheMethodsNamed) {
  auto with = options();
  with.slow_down = {.probability = 1.0, .methods = {"PUT"}};
  FaultProxy proxy(with);
  Reply put = perform(put_request(via(proxy, "throttled"), "abc"));
  EXPECT_EQ(put.status, 503);
  EXPECT_EQ(put.headers["retry-after"], "1");
  EXPECT_NE(put.body.find("<Code>SlowDown</Code>"), std::string::npos) << put.body;
  EXPECT_EQ(perform(get_request(direct("throttled"))).status, 404)
      << "the PUT never reached upstream";

  Reply get = perform(get_request(via(proxy, "obj")));
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, object_);
  EXPECT_EQ(proxy.stats().slow_downs, 1u);
}

TEST_F(FaultProxyTest, ResetClosesTheConnectionBeforeAnyAnswer) {
  auto with = options();
  with.reset.probability = 1.0;
  FaultProxy proxy(with);
  Reply reply = perform(get_request(via(proxy, "obj")));
  EXPECT_EQ(reply.code, CURLE_RECV_ERROR) << curl_easy_strerror(reply.code);
  EXPECT_EQ(reply.status, 0);
  EXPECT_TRUE(reply.body.empty());
  EXPECT_EQ(proxy.stats().resets, 1u);
  EXPECT_EQ(proxy.stats().forwarded, 0u);
}

TEST_F(FaultProxyTest, TruncateSendsHalfTheBodyUnderTheTrueLength) {
  auto with = options();
  with.truncate.probability = 1.0;
  FaultProxy proxy(with);
  Reply reply = perform(get_request(via(proxy, "obj")));
  EXPECT_EQ(reply.code, CURLE_PARTIAL_FILE) << curl_easy_strerror(reply.code);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers["content-length"], std::to_string(object_.size()));
  EXPECT_EQ(reply.body, object_.substr(0, object_.size() / 2));
  EXPECT_EQ(proxy.stats().truncations, 1u);
}

TEST_F(FaultProxyTest, FlippedResponseByteIsCaughtByTheEtag) {
  auto with = options();
  with.flip_response_byte = {.probability = 1.0, .methods = {"GET"}};
  FaultProxy proxy(with);
  Reply reply = perform(get_request(via(proxy, "obj")));
  ASSERT_EQ(reply.code, CURLE_OK);
  EXPECT_EQ(reply.status, 200);
  ASSERT_EQ(reply.body.size(), object_.size());
  EXPECT_EQ(differing_bytes(reply.body, object_), 1u);
  EXPECT_EQ(unquoted(reply.headers["etag"]), hex_encode(md5_of(object_)));
  EXPECT_NE(hex_encode(md5_of(reply.body)), unquoted(reply.headers["etag"]));
  EXPECT_EQ(proxy.stats().flipped_response_bytes, 1u);
}

TEST_F(FaultProxyTest, FlippedRequestByteIsRejectedByContentMd5) {
  auto with = options();
  with.flip_request_byte.probability = 1.0;
  FaultProxy proxy(with);
  std::string body(10000, 'r');
  Reply put = perform(put_request(via(proxy, "flipped"), body, {content_md5_header(body)}));
  EXPECT_EQ(put.status, 400);
  EXPECT_NE(put.body.find("<Code>BadDigest</Code>"), std::string::npos) << put.body;
  EXPECT_EQ(perform(get_request(direct("flipped"))).status, 404) << "nothing was stored";
  FaultProxyStats stats = proxy.stats();
  EXPECT_EQ(stats.flipped_request_bytes, 1u);
  EXPECT_EQ(stats.bad_digests, 1u);
  EXPECT_EQ(stats.forwarded, 0u);

  // A GET has no body to flip: it passes untouched and is not counted.
  EXPECT_EQ(perform(get_request(via(proxy, "obj"))).body, object_);
  EXPECT_EQ(proxy.stats().flipped_request_bytes, 1u);
}

TEST_F(FaultProxyTest, S3rverStoresAFlippedBodyWhenTheProxyDoesNotCheckContentMd5) {
  auto with = options();
  with.flip_request_byte.probability = 1.0;
  with.check_content_md5 = false;
  FaultProxy proxy(with);
  std::string body(10000, 's');
  Reply put = perform(put_request(via(proxy, "unchecked"), body, {content_md5_header(body)}));
  EXPECT_EQ(put.status, 200) << "s3rver 3.7.1 ignores Content-MD5";
  std::string stored = perform(get_request(direct("unchecked"))).body;
  EXPECT_EQ(differing_bytes(stored, body), 1u);
  EXPECT_NE(unquoted(put.headers["etag"]), hex_encode(md5_of(body))) << "only the ETag tells";
}

TEST_F(FaultProxyTest, ContentMd5IsCheckedAsS3DoesEvenWithoutFaults) {
  FaultProxy proxy(options());
  Reply wrong = perform(put_request(via(proxy, "wrong-md5"), "abc", {content_md5_header("abd")}));
  EXPECT_EQ(wrong.status, 400);
  EXPECT_NE(wrong.body.find("<Code>BadDigest</Code>"), std::string::npos);
  Reply invalid =
      perform(put_request(via(proxy, "wrong-md5"), "abc", {"Content-MD5: not-base64!"}));
  EXPECT_EQ(invalid.status, 400);
  EXPECT_NE(invalid.body.find("<Code>InvalidDigest</Code>"), std::string::npos);
  EXPECT_EQ(proxy.stats().bad_digests, 2u);
  EXPECT_EQ(perform(get_request(direct("wrong-md5"))).status, 404);
}

TEST_F(FaultProxyTest, StallSendsNothingForTheConfiguredTimeThenCloses) {
  auto with = options();
  with.stall.probability = 1.0;
  with.stall_duration = milliseconds(1000);
  FaultProxy proxy(with);

  auto started = Clock::now();
  Reply impatient = perform(get_request(via(proxy, "obj"), {}, 300));
  EXPECT_EQ(impatient.code, CURLE_OPERATION_TIMEDOUT) << curl_easy_strerror(impatient.code);
  EXPECT_LT(Clock::now() - started, milliseconds(900));

  started = Clock::now();
  Reply patient = perform(get_request(via(proxy, "obj")));
  EXPECT_EQ(patient.code, CURLE_GOT_NOTHING) << curl_easy_strerror(patient.code);
  EXPECT_GE(Clock::now() - started, milliseconds(900));
  EXPECT_EQ(proxy.stats().stalls, 2u);
  EXPECT_EQ(proxy.stats().forwarded, 0u);
}

TEST_F(FaultProxyTest, TheSameSeedGivesTheSameFaults) {
  auto statuses = [](std::uint64_t seed) {
    auto with = options();
    with.server_error.probability = 0.3;
    with.slow_down.probability = 0.3;
    with.seed = seed;
    FaultProxy proxy(with);
    CurlEasyPtr through = make_curl_easy();
    std::vector<long> seen;
    for (int i = 0; i < 40; ++i) {
      seen.push_back(perform(through.get(), get_request(via(proxy, "obj"))).status);
    }
    FaultProxyStats stats = proxy.stats();
    EXPECT_EQ(stats.server_errors + stats.slow_downs + stats.forwarded, 40u);
    return seen;
  };
  auto first = statuses(7);
  EXPECT_EQ(statuses(7), first);
  EXPECT_NE(statuses(8), first);
  for (long status : {200L, 500L, 503L}) {
    EXPECT_NE(std::find(first.begin(), first.end(), status), first.end()) << status;
  }
}

TEST_F(FaultProxyTest, StopIsPromptDuringAStallAndWithIdleConnections) {
  auto with = options();
  with.stall = {.probability = 1.0, .methods = {"PUT"}};
  with.stall_duration = milliseconds(30000);
  auto proxy = std::make_unique<FaultProxy>(with);
  CurlEasyPtr idle = make_curl_easy();
  ASSERT_EQ(perform(idle.get(), get_request(via(*proxy, "obj"))).status, 200);  // stays open

  Reply stalled;
  std::thread stalled_client([&] { stalled = perform(put_request(via(*proxy, "never"), "x")); });
  while (proxy->stats().stalls == 0) std::this_thread::sleep_for(milliseconds(10));

  auto started = Clock::now();
  proxy->stop();
  EXPECT_LT(Clock::now() - started, milliseconds(1000));
  stalled_client.join();
  EXPECT_EQ(stalled.code, CURLE_GOT_NOTHING) << curl_easy_strerror(stalled.code);
  proxy.reset();
}

TEST(FaultProxy, RejectsAnUpstreamThatIsNotPlainHttp) {
  EXPECT_THROW(FaultProxy(options_for("https://127.0.0.1:9000")), Error);
  EXPECT_THROW(FaultProxy(options_for("127.0.0.1:9000")), Error);
  EXPECT_THROW(FaultProxy(options_for("http://127.0.0.1")), Error);
}

}  // namespace
}  // namespace blobferry::testing
