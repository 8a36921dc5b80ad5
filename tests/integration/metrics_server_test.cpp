// MetricsServer over real sockets: libcurl scrapes and probes, slow clients, bad addresses.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <chrono>
#include <memory>
#include <string>

#include <curl/curl.h>

#include "common/storage/s3/curl_handles.h"
#include "common/base/error.h"
#include "common/metrics/http_listener.h"
#include "common/metrics/metrics.h"
#include "common/metrics/metrics_server.h"

namespace blobferry {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Fetched {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
  std::string content_type;
  std::string allow;
};

std::size_t append_body(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

std::size_t capture_allow(char* data, std::size_t size, std::size_t count, void* out) {
  std::string line(data, size * count);
  if (line.rfind("Allow:", 0) == 0) {
    *static_cast<std::string*>(out) = line.substr(7, line.find('\r') - 7);
  }
  return size * count;
}

Fetched fetch(int port, const std::string& path, const std::string& method = "GET") {
  CurlEasyPtr curl = make_curl_easy();
  Fetched result;
  std::string url = "http://127.0.0.1:" + std::to_string(port) + path;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, 3000L);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &result.body);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, capture_allow);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &result.allow);
  if (method == "HEAD") {
    curl_easy_setopt(curl.get(), CURLOPT_NOBODY, 1L);
  } else if (method != "GET") {
    curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  result.code = curl_easy_perform(curl.get());
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &result.status);
  char* type = nullptr;
  curl_easy_getinfo(curl.get(), CURLINFO_CONTENT_TYPE, &type);
  if (type != nullptr) result.content_type = type;
  return result;
}

// A plain client socket, for the misbehaving clients libcurl will not imitate.
UniqueFd connect_raw(int port, milliseconds receive_timeout) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval timeout{};
  timeout.tv_sec = receive_timeout.count() / 1000;
  timeout.tv_usec = (receive_timeout.count() % 1000) * 1000;
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    return UniqueFd();
  }
  return fd;
}

std::string receive_all(int fd) {
  std::string text;
  char buffer[4096];
  ssize_t got;
  while ((got = ::recv(fd, buffer, sizeof buffer, 0)) > 0) {
    text.append(buffer, static_cast<std::size_t>(got));
  }
  return text;
}

TEST(MetricsServer, ServesMetricsHealthAndReadinessOnAFreePort) {
  Metrics metrics;
  auto& copied = metrics.counter("blobferry_objects_total", "Objects",
                                 {{"migration", "m"}, {"result", "copied"}});
  MetricsServer server(metrics, "127.0.0.1:0");
  ASSERT_GT(server.port(), 0);
  EXPECT_EQ(server.address(), "127.0.0.1:" + std::to_string(server.port()));

  copied.inc(7);
  Fetched scrape = fetch(server.port(), "/metrics");
  ASSERT_EQ(scrape.code, CURLE_OK) << curl_easy_strerror(scrape.code);
  EXPECT_EQ(scrape.status, 200);
  EXPECT_EQ(scrape.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(scrape.body, metrics.render());
  EXPECT_NE(scrape.body.find("blobferry_objects_total{migration=\"m\",result=\"copied\"} 7\n"),
            std::string::npos);

  Fetched health = fetch(server.port(), "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok");

  EXPECT_EQ(fetch(server.port(), "/ready").status, 503);
  server.set_ready(true);
  EXPECT_EQ(fetch(server.port(), "/ready").status, 200);
  server.set_ready(false);
  EXPECT_EQ(fetch(server.port(), "/ready").status, 503);

  EXPECT_EQ(fetch(server.port(), "/nope").status, 404);
  Fetched post = fetch(server.port(), "/metrics", "POST");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.allow, "GET, HEAD");
  Fetched head = fetch(server.port(), "/metrics", "HEAD");
  EXPECT_EQ(head.code, CURLE_OK);
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
}

TEST(MetricsServer, ServesManyShortConnectionsInARow) {
  Metrics metrics;
  MetricsServer server(metrics, "127.0.0.1:0");
  for (int i = 0; i < 200; ++i) ASSERT_EQ(fetch(server.port(), "/healthz").status, 200) << i;
}

TEST(MetricsServer, PortInUseIsAConfigErrorNamingTheAddress) {
  Metrics metrics;
  MetricsServer first(metrics, "127.0.0.1:0");
  std::string taken = "127.0.0.1:" + std::to_string(first.port());
  try {
    MetricsServer second(metrics, taken);
    FAIL() << "a second server bound " << taken;
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kConfig);
    std::string message = error.what();
    EXPECT_NE(message.find("--metrics-addr " + taken), std::string::npos) << message;
    EXPECT_NE(message.find("already in use"), std::string::npos) << message;
    EXPECT_NE(message.find("port 0"), std::string::npos) << message;
  }
  EXPECT_EQ(fetch(first.port(), "/healthz").status, 200) << "the first server is unharmed";
}

TEST(MetricsServer, BadAddressesAreConfigErrors) {
  Metrics metrics;
  for (const char* bad : {"nonsense", "127.0.0.1:99999", "127.0.0.1:", "::1:9464", "192.0.2.1:0"}) {
    try {
      MetricsServer server(metrics, bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const Error& error) {
      EXPECT_EQ(error.kind(), ErrorKind::kConfig) << bad;
      EXPECT_NE(std::string(error.what()).find(bad), std::string::npos) << error.what();
    }
  }
}

TEST(MetricsServer, SlowClientDoesNotDelayOthers) {
  Metrics metrics;
  MetricsServer server(metrics, "127.0.0.1:0");
  UniqueFd slow = connect_raw(server.port(), milliseconds(5000));
  ASSERT_TRUE(slow);
  ASSERT_GT(::send(slow.get(), "GET /met", 8, MSG_NOSIGNAL), 0);

  auto started = Clock::now();
  Fetched health = fetch(server.port(), "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_LT(Clock::now() - started, milliseconds(1000));

  // The slow client still gets its answer once it finishes the request.
  const char rest[] = "rics HTTP/1.1\r\n\r\n";
  ASSERT_GT(::send(slow.get(), rest, sizeof rest - 1, MSG_NOSIGNAL), 0);
  EXPECT_EQ(receive_all(slow.get()).rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
}

TEST(MetricsServer, SilentClientIsDroppedAfterTheReadTimeout) {
  Metrics metrics;
  MetricsServer server(metrics, "127.0.0.1:0", milliseconds(300));
  UniqueFd silent = connect_raw(server.port(), milliseconds(5000));
  ASSERT_TRUE(silent);
  auto started = Clock::now();
  char byte;
  EXPECT_EQ(::recv(silent.get(), &byte, 1, 0), 0) << "server closes the connection";
  auto waited = Clock::now() - started;
  EXPECT_GE(waited, milliseconds(250));
  EXPECT_LT(waited, milliseconds(2000));
}

TEST(MetricsServer, OversizedRequestHeadGets431) {
  Metrics metrics;
  MetricsServer server(metrics, "127.0.0.1:0");
  UniqueFd client = connect_raw(server.port(), milliseconds(3000));
  ASSERT_TRUE(client);
  std::string head = "GET /metrics HTTP/1.1\r\nX-Filler: " + std::string(9000, 'a') + "\r\n\r\n";
  ASSERT_EQ(::send(client.get(), head.data(), head.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(head.size()));
  EXPECT_EQ(receive_all(client.get()).rfind("HTTP/1.1 431 ", 0), 0u);
}

TEST(MetricsServer, StopIsPromptWithIdleClientsConnected) {
  Metrics metrics;
  auto server = std::make_unique<MetricsServer>(metrics, "127.0.0.1:0");
  int port = server->port();
  UniqueFd idle = connect_raw(port, milliseconds(3000));
  ASSERT_TRUE(idle);
  ASSERT_EQ(fetch(port, "/healthz").status, 200);

  auto started = Clock::now();
  server->stop();
  EXPECT_LT(Clock::now() - started, milliseconds(500));
  char byte;
  EXPECT_EQ(::recv(idle.get(), &byte, 1, 0), 0) << "idle client sees the close";
  EXPECT_FALSE(connect_raw(port, milliseconds(500))) << "nothing listens after stop()";
  server.reset();  // a second stop() from the destructor is harmless
}

}  // namespace
}  // namespace blobferry
