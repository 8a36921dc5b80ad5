// The dev stack starts real servers that answer, and stops exactly them.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "common/db/pg_connection.h"
#include "common/queue/redis_client.h"
#include "common/storage/s3/curl_handles.h"
#include "tests/support/test_stack.h"

namespace blobferry::testing {
namespace {

// "redis://127.0.0.1:6379/0" or "http://127.0.0.1:9000" -> 6379 / 9000.
int port_of(const std::string& url) {
  auto host = url.find("127.0.0.1:");
  if (host == std::string::npos) return 0;
  return std::atoi(url.c_str() + host + std::string("127.0.0.1:").size());
}

bool port_accepts_connections(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return connected;
}

// Nobody may reap servers adopted by a minimal init, so a zombie counts as gone.
bool process_is_running(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == EPERM;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto after_name = text.rfind(") ");
  return after_name == std::string::npos || text[after_name + 2] != 'Z';
}

std::vector<std::pair<std::string, pid_t>> recorded_pids(const std::string& dir) {
  std::ifstream file(dir + "/pids");
  std::vector<std::pair<std::string, pid_t>> pids;
  std::string name;
  pid_t pid;
  while (file >> name >> pid) pids.emplace_back(name, pid);
  return pids;
}

std::optional<std::string> redis_ping(const std::string& redis_url) {
  RedisContextPtr context(redisConnect("127.0.0.1", port_of(redis_url)));
  if (!context || context->err) return std::nullopt;
  RedisReplyPtr reply(
      static_cast<redisReply*>(redisCommand(context.get(), "PING")));
  if (!reply || reply->type != REDIS_REPLY_STATUS) return std::nullopt;
  return std::string(reply->str, reply->len);
}

std::optional<std::string> postgres_select_one(const std::string& database_url) {
  PgConnPtr connection(PQconnectdb(database_url.c_str()));
  if (!connection || PQstatus(connection.get()) != CONNECTION_OK) return std::nullopt;
  PgResultPtr result(PQexec(connection.get(), "SELECT 1"));
  if (!result || PQresultStatus(result.get()) != PGRES_TUPLES_OK || PQntuples(result.get()) != 1) {
    return std::nullopt;
  }
  return std::string(PQgetvalue(result.get(), 0, 0));
}

// HEAD on a bucket: s3rver answers anonymous requests, 200 when it exists.
long http_head_status(const std::string& url) {
  CurlEasyPtr curl = make_curl_easy();
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_NOBODY, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 10L);
  if (curl_easy_perform(curl.get()) != CURLE_OK) return 0;
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  return status;
}

struct HttpAnswer {
  long status = 0;  // 0: no answer
  std::string body;
};

size_t append_to_string(char* data, size_t size, size_t count, void* body) {
  static_cast<std::string*>(body)->append(data, size * count);
  return size * count;
}

// One S3 request signed with SigV4 by libcurl itself (empty key: anonymous).
// libcurl 7.88 hashes the payload into the signature without sending
// x-amz-content-sha256, and radosgw then assumes UNSIGNED-PAYLOAD, so the
// request says UNSIGNED-PAYLOAD outright.
HttpAnswer s3_request(const std::string& method, const std::string& url, const std::string& key,
                      const std::string& secret, const std::string& body = "") {
  CurlEasyPtr curl = make_curl_easy();
  CurlSlistPtr headers(
      curl_slist_append(nullptr, "x-amz-content-sha256: UNSIGNED-PAYLOAD"));
  HttpAnswer answer;
  const std::string credentials = key + ":" + secret;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 30L);
  if (!key.empty()) {
    curl_easy_setopt(curl.get(), CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:s3");
    curl_easy_setopt(curl.get(), CURLOPT_USERPWD, credentials.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
  }
  if (method == "HEAD") {
    curl_easy_setopt(curl.get(), CURLOPT_NOBODY, 1L);
  } else if (method == "PUT") {
    curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, append_to_string);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &answer.body);
  if (curl_easy_perform(curl.get()) != CURLE_OK) return {};
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &answer.status);
  return answer;
}

std::string read_file(const std::string& path) {
  std::ifstream file(path);
  return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

TEST(DevStack, EveryServerAnswersAndIsGoneAfterwards) {
  std::vector<std::pair<std::string, pid_t>> pids;
  std::vector<int> ports;
  std::string dir;
  {
    TestStack stack({.redis = true, .postgres = true, .s3 = true});
    dir = stack.dir();
    EXPECT_EQ(redis_ping(stack.redis_url()), "PONG");
    EXPECT_EQ(postgres_select_one(stack.database_url()), "1");
    EXPECT_EQ(stack.env("PGDATABASE"), "blobferry");
    EXPECT_EQ(http_head_status(stack.env("S3_SOURCE_ENDPOINT") + "/source"), 200);
    EXPECT_EQ(http_head_status(stack.env("S3_TARGET_ENDPOINT") + "/target"), 200);
    EXPECT_EQ(http_head_status(stack.env("S3_TARGET_ENDPOINT") + "/no-such-bucket"), 404);
    EXPECT_TRUE(std::filesystem::is_directory(stack.env("S3_SOURCE_DIR")));
    EXPECT_TRUE(std::filesystem::is_directory(stack.env("S3_TARGET_DIR")));
    EXPECT_EQ(stack.env("AWS_ACCESS_KEY_ID"), "S3RVER");
    EXPECT_EQ(stack.env("NOT_SET_BY_THE_STACK"), "");

    std::string yml = read_file(stack.storage_config());
    EXPECT_NE(yml.find("source:\n  service: S3"), std::string::npos) << yml;
    EXPECT_NE(yml.find("target:\n  service: S3"), std::string::npos) << yml;
    EXPECT_NE(yml.find("endpoint: " + stack.env("S3_TARGET_ENDPOINT") + "\n"), std::string::npos) << yml;
    EXPECT_NE(yml.find("force_path_style: true"), std::string::npos) << yml;
    EXPECT_NE(yml.find("local:\n  service: Disk\n  root: " + dir + "/disk"), std::string::npos) << yml;
    EXPECT_EQ(yml.find("S3RVER\n"), std::string::npos) << "credentials must come through ERB, not literally";

    pids = recorded_pids(dir);
    ports = {port_of(stack.redis_url()), std::atoi(stack.env("PGPORT").c_str()),
             port_of(stack.env("S3_SOURCE_ENDPOINT")), port_of(stack.env("S3_TARGET_ENDPOINT"))};
    ASSERT_EQ(pids.size(), 5u) << "redis, postgres, s3-source, s3-target and the watcher";
    for (const auto& [name, pid] : pids) EXPECT_TRUE(process_is_running(pid)) << name;
    for (int port : ports) EXPECT_TRUE(port_accepts_connections(port)) << port;
  }
  for (const auto& [name, pid] : pids) EXPECT_FALSE(process_is_running(pid)) << name << " pid " << pid;
  for (int port : ports) EXPECT_FALSE(port_accepts_connections(port)) << port;
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(DevStack, StartsOnlyWhatIsAsked) {
  TestStack stack({.redis = true});
  EXPECT_EQ(redis_ping(stack.redis_url()), "PONG");
  EXPECT_EQ(stack.database_url(), "");
  EXPECT_EQ(stack.env("S3_SOURCE_ENDPOINT"), "");
  EXPECT_EQ(recorded_pids(stack.dir()).size(), 2u) << "redis and the watcher";
}

TEST(DevStack, TwoStacksRunSideBySide) {
  TestStack first({.redis = true});
  TestStack second({.redis = true});
  EXPECT_NE(first.redis_url(), second.redis_url());
  EXPECT_EQ(redis_ping(first.redis_url()), "PONG");
  EXPECT_EQ(redis_ping(second.redis_url()), "PONG");
}

TEST(DevStack, AServerThatCannotStartIsNamedAndNothingIsLeftRunning) {
  ASSERT_EQ(::setenv("S3RVER", "/nonexistent/s3rver", 1), 0);
  std::string message;
  try {
    TestStack stack({.redis = true, .s3 = true});
  } catch (const std::runtime_error& error) {
    message = error.what();
  }
  ::unsetenv("S3RVER");
  EXPECT_NE(message.find("s3-source failed to start"), std::string::npos) << message;
  auto stopping = message.find("stopping redis (pid ");
  ASSERT_NE(stopping, std::string::npos) << message;
  pid_t redis_pid = std::atoi(message.c_str() + stopping + std::string("stopping redis (pid ").size());
  ASSERT_GT(redis_pid, 0) << message;
  EXPECT_FALSE(process_is_running(redis_pid));
}

TEST(DevStack, RadosGatewayAnswersSignedRequestsSurvivesARestartAndIsGoneAfterwards) {
  std::vector<std::pair<std::string, pid_t>> pids;
  int port = 0;
  std::string dir;
  {
    TestStack stack({.rgw = true});
    dir = stack.dir();
    const std::string endpoint = stack.env("RGW_ENDPOINT");
    const std::string key = stack.env("RGW_ACCESS_KEY_ID");
    const std::string secret = stack.env("RGW_SECRET_ACCESS_KEY");
    port = port_of(endpoint);
    ASSERT_GT(port, 0) << "RGW_ENDPOINT=" << endpoint;
    EXPECT_EQ(endpoint, "http://127.0.0.1:" + std::to_string(port));
    EXPECT_EQ(key, "BLOBFERRYRGWTEST");
    EXPECT_FALSE(secret.empty());
    EXPECT_EQ(stack.redis_url(), "") << "only rgw was asked for";
    EXPECT_EQ(stack.env("S3_SOURCE_ENDPOINT"), "");

    std::string yml = read_file(stack.storage_config());
    EXPECT_NE(yml.find("rgw_source:\n  service: S3"), std::string::npos) << yml;
    EXPECT_NE(yml.find("rgw_target:\n  service: S3"), std::string::npos) << yml;
    EXPECT_NE(yml.find("  bucket: rgw-source\n"), std::string::npos) << yml;
    EXPECT_NE(yml.find("  bucket: rgw-target\n"), std::string::npos) << yml;
    EXPECT_NE(yml.find("endpoint: " + endpoint + "\n"), std::string::npos) << yml;
    EXPECT_NE(yml.find("force_path_style: true"), std::string::npos) << yml;
    EXPECT_NE(yml.find("ENV.fetch(\"RGW_SECRET_ACCESS_KEY\""), std::string::npos) << yml;
    EXPECT_EQ(yml.find("\nsource:"), std::string::npos) << "no s3rver services without s3rver";

    const std::string object = endpoint + "/rgw-source/dev-stack/hello.txt";
    EXPECT_EQ(s3_request("HEAD", endpoint + "/rgw-source", key, secret).status, 200);
    EXPECT_EQ(s3_request("HEAD", endpoint + "/rgw-target", key, secret).status, 200);
    HttpAnswer put = s3_request("PUT", object, key, secret, "hello from the dev stack\n");
    EXPECT_EQ(put.status, 200) << put.body;
    HttpAnswer get = s3_request("GET", object, key, secret);
    EXPECT_EQ(get.status, 200) << get.body;
    EXPECT_EQ(get.body, "hello from the dev stack\n");
    EXPECT_EQ(s3_request("GET", object, "", "").status, 403) << "anonymous reads must be refused";
    EXPECT_EQ(s3_request("GET", object, key, "not-the-secret").status, 403);

    // Only radosgw restarts, on its port; the OSD kept the object.
    stack.stop_service("rgw");
    EXPECT_FALSE(port_accepts_connections(port));
    stack.start_service("rgw");
    get = s3_request("GET", object, key, secret);
    EXPECT_EQ(get.status, 200) << get.body;
    EXPECT_EQ(get.body, "hello from the dev stack\n");

    pids = recorded_pids(dir);
    std::vector<std::string> names;
    for (const auto& [name, pid] : pids) names.push_back(name);
    EXPECT_EQ(names, (std::vector<std::string>{"rgw-mon", "rgw-osd", "watcher", "rgw"}))
        << "monitor, OSD, the watcher and radosgw (restarted last)";
    for (const auto& [name, pid] : pids) EXPECT_TRUE(process_is_running(pid)) << name;
    EXPECT_TRUE(std::filesystem::exists(dir + "/rgw/ceph.conf")) << "the cluster's files live in the stack folder";
  }
  for (const auto& [name, pid] : pids) EXPECT_FALSE(process_is_running(pid)) << name << " pid " << pid;
  EXPECT_FALSE(port_accepts_connections(port));
  EXPECT_FALSE(std::filesystem::exists(dir));
}

}  // namespace
}  // namespace blobferry::testing
