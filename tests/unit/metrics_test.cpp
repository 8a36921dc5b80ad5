// Unit tests: the metrics exposition format, thread safety, and the metrics server's routing.
#include <gtest/gtest.h>

#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/metrics/http_listener.h"
#include "common/metrics/metrics.h"
#include "common/metrics/metrics_server.h"

namespace blobferry {
namespace {

TEST(Metrics, RendersCounterWithHelpTypeAndLabels) {
  Metrics metrics;
  auto& copied = metrics.counter("blobferry_objects_total", "Objects processed",
                                 {{"migration", "m1"}, {"result", "copied"}});
  copied.inc();
  copied.inc(2);
  metrics.counter("blobferry_objects_total", "Objects processed",
                  {{"migration", "m1"}, {"result", "failed"}});

  EXPECT_EQ(metrics.render(),
            "# HELP blobferry_objects_total Objects processed\n"
            "# TYPE blobferry_objects_total counter\n"
            "blobferry_objects_total{migration=\"m1\",result=\"copied\"} 3\n"
            "blobferry_objects_total{migration=\"m1\",result=\"failed\"} 0\n");
}

TEST(Metrics, RendersGaugesWithAndWithoutLabels) {
  Metrics metrics;
  auto& in_flight = metrics.gauge("blobferry_in_flight", "Copies running", {{"migration", "m"}});
  in_flight.inc();
  in_flight.inc();
  in_flight.dec();
  auto& depth = metrics.gauge("blobferry_queue_depth", "Jobs queued");
  depth.set(2.5);
  depth.add(-1);

  EXPECT_EQ(metrics.render(),
            "# HELP blobferry_in_flight Copies running\n"
            "# TYPE blobferry_in_flight gauge\n"
            "blobferry_in_flight{migration=\"m\"} 1\n"
            "# HELP blobferry_queue_depth Jobs queued\n"
            "# TYPE blobferry_queue_depth gauge\n"
            "blobferry_queue_depth 1.5\n");
}

TEST(Metrics, EscapesLabelValuesAndHelpText) {
  Metrics metrics;
  metrics
      .counter("escaped_total", "a \\ back\nslash \"quoted\"",
               {{"migration", "we\\ird \"name\"\nline2"}})
      .inc();

  EXPECT_EQ(metrics.render(),
            "# HELP escaped_total a \\\\ back\\nslash \"quoted\"\n"
            "# TYPE escaped_total counter\n"
            "escaped_total{migration=\"we\\\\ird \\\"name\\\"\\nline2\"} 1\n");
}

TEST(Metrics, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Metrics metrics;
  auto& duration = metrics.histogram("copy_seconds", "Copy time", {{"migration", "m"}}, {0.25, 1});
  duration.observe(0.125);
  duration.observe(0.25);  // a bound is inclusive: le means "less or equal"
  duration.observe(0.5);
  duration.observe(4);

  EXPECT_EQ(metrics.render(),
            "# HELP copy_seconds Copy time\n"
            "# TYPE copy_seconds histogram\n"
            "copy_seconds_bucket{migration=\"m\",le=\"0.25\"} 2\n"
            "copy_seconds_bucket{migration=\"m\",le=\"1\"} 3\n"
            "copy_seconds_bucket{migration=\"m\",le=\"+Inf\"} 4\n"
            "copy_seconds_sum{migration=\"m\"} 4.875\n"
            "copy_seconds_count{migration=\"m\"} 4\n");
}

TEST(Metrics, HistogramWithoutLabelsAndDefaultBuckets) {
  Metrics metrics;
  auto& duration = metrics.histogram("d_seconds", "d", {});
  duration.observe(100);
  duration.observe(std::numeric_limits<double>::quiet_NaN());  // dropped

  std::string text = metrics.render();
  EXPECT_NE(text.find("d_seconds_bucket{le=\"0.005\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("d_seconds_bucket{le=\"60\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("d_seconds_bucket{le=\"+Inf\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("d_seconds_sum 100\n"), std::string::npos) << text;
  EXPECT_NE(text.find("d_seconds_count 1\n"), std::string::npos) << text;
  EXPECT_EQ(Metrics::default_duration_buckets().front(), 0.005);
  EXPECT_EQ(Metrics::default_duration_buckets().back(), 60);
}

TEST(Metrics, SameNameAndLabelsGiveTheSameSeriesInAnyLabelOrder) {
  Metrics metrics;
  auto& a = metrics.counter("c_total", "c", {{"migration", "m"}, {"result", "copied"}});
  auto& b = metrics.counter("c_total", "c", {{"result", "copied"}, {"migration", "m"}});
  auto& other = metrics.counter("c_total", "c", {{"migration", "n"}, {"result", "copied"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &other);
  a.inc();
  EXPECT_EQ(b.value(), 1u);
  EXPECT_EQ(other.value(), 0u);
}

TEST(Metrics, RejectsMalformedOrInconsistentRegistrations) {
  Metrics metrics;
  metrics.counter("ok_total", "ok", {{"migration", "m"}});
  EXPECT_THROW(metrics.counter("1bad", "x"), std::invalid_argument);
  EXPECT_THROW(metrics.counter("bad-name", "x"), std::invalid_argument);
  EXPECT_THROW(metrics.counter("x_total", "x", {{"bad-label", "v"}}), std::invalid_argument);
  EXPECT_THROW(metrics.counter("x_total", "x", {{"__reserved", "v"}}), std::invalid_argument);
  EXPECT_THROW(metrics.counter("x_total", "x", {{"a", "1"}, {"a", "2"}}), std::invalid_argument);
  EXPECT_THROW(metrics.counter("ok_total", "ok", {{"reason", "m"}}), std::invalid_argument);
  EXPECT_THROW(metrics.counter("ok_total", "ok", {}), std::invalid_argument);
  EXPECT_THROW(metrics.gauge("ok_total", "ok", {{"migration", "m"}}), std::invalid_argument);
  EXPECT_THROW(metrics.histogram("h", "h", {{"le", "1"}}), std::invalid_argument);
  EXPECT_THROW(metrics.histogram("h", "h", {}, {1, 1}), std::invalid_argument);
  metrics.histogram("h", "h", {}, {1, 2});
  EXPECT_THROW(metrics.histogram("h", "h", {}, {1, 3}), std::invalid_argument);
  // A failed registration leaves nothing half-made behind.
  EXPECT_EQ(metrics.render().find("x_total"), std::string::npos);
}

TEST(Metrics, ConcurrentIncrementsAndRegistrationsAreExact) {
  Metrics metrics;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  auto& shared = metrics.counter("shared_total", "s", {{"migration", "m"}});
  auto& gauge = metrics.gauge("g", "g");
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Half the threads look the series up each time, as a careless caller would.
      for (int i = 0; i < kPerThread; ++i) {
        if (t % 2 == 0) {
          shared.inc();
        } else {
          metrics.counter("shared_total", "s", {{"migration", "m"}}).inc();
        }
        gauge.inc();
        metrics.histogram("h_seconds", "h", {{"migration", "m"}}, {1})
            .observe(i % 2 == 0 ? 0.5 : 2);
        if (i % 10000 == 0) metrics.render();  // scrapes while copies run
      }
    });
  }
  for (auto& thread : threads) thread.join();

  EXPECT_EQ(shared.value(), static_cast<std::uint64_t>(kThreads) * kPerThread);
  EXPECT_EQ(gauge.value(), static_cast<double>(kThreads) * kPerThread);
  auto& histogram = metrics.histogram("h_seconds", "h", {{"migration", "m"}}, {1});
  EXPECT_EQ(histogram.cumulative_counts(),
            (std::vector<std::uint64_t>{kThreads * kPerThread / 2, kThreads * kPerThread}));
  EXPECT_EQ(histogram.sum(), 1.25 * kThreads * kPerThread);
}

TEST(MetricsServerRespond, RoutesPathsAndMethods) {
  Metrics metrics;
  metrics.counter("x_total", "x").inc();

  std::string scrape =
      MetricsServer::respond("GET /metrics HTTP/1.1\r\nHost: a\r\n", metrics, false);
  EXPECT_EQ(scrape.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << scrape;
  EXPECT_NE(scrape.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            std::string::npos);
  EXPECT_NE(scrape.find("Connection: close\r\n"), std::string::npos);
  std::string body = metrics.render();
  EXPECT_NE(scrape.find("Content-Length: " + std::to_string(body.size()) + "\r\n"),
            std::string::npos);
  EXPECT_EQ(scrape.substr(scrape.size() - body.size()), body);

  std::string head = MetricsServer::respond("HEAD /metrics?x=1 HTTP/1.1", metrics, false);
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n") << "HEAD has no body";

  EXPECT_EQ(
      MetricsServer::respond("GET /healthz HTTP/1.1", metrics, false).rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(MetricsServer::respond("GET /ready HTTP/1.1", metrics, false).rfind("HTTP/1.1 503", 0),
            0u);
  EXPECT_EQ(MetricsServer::respond("GET /ready HTTP/1.1", metrics, true).rfind("HTTP/1.1 200", 0),
            0u);
  EXPECT_EQ(MetricsServer::respond("GET /nope HTTP/1.1", metrics, true).rfind("HTTP/1.1 404", 0),
            0u);
  std::string post = MetricsServer::respond("POST /metrics HTTP/1.1", metrics, true);
  EXPECT_EQ(post.rfind("HTTP/1.1 405", 0), 0u);
  EXPECT_NE(post.find("Allow: GET, HEAD\r\n"), std::string::npos);
  EXPECT_EQ(MetricsServer::respond("garbage", metrics, true).rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(MetricsServer::respond("GET /metrics FTP/1", metrics, true).rfind("HTTP/1.1 400", 0),
            0u);
}

TEST(ParseListenAddress, AcceptsHostPortFormsAndRejectsTheRest) {
  auto v4 = parse_listen_address("127.0.0.1:9464");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, "9464");
  auto v6 = parse_listen_address("[::1]:0");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, "0");
  auto any = parse_listen_address(":65535");
  ASSERT_TRUE(any);
  EXPECT_EQ(any->host, "");

  for (const char* bad :
       {"", "9464", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:94a",
        "::1:9464", "[::1]9464", "[]:1", "[::1:80", "local host:80", "127.0.0.1:123456"}) {
    EXPECT_FALSE(parse_listen_address(bad)) << bad;
  }
}

}  // namespace
}  // namespace blobferry
