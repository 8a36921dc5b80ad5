// Pure pieces of pause (the in-process queue, the migration state) and of the operator page (HTTP parsing, guards).
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "common/queue/memory_queue.h"
#include "enqueuer/commands/status_command.h"
#include "enqueuer/commands/web_command.h"
#include "enqueuer/web/http_request.h"
#include "enqueuer/web/http_response.h"
#include "enqueuer/web/web_app.h"
#include "tests/support/queue_jobs.h"

namespace blobferry {
namespace {

using namespace std::chrono_literals;

using testing::copy_job;

TEST(MemoryQueuePause, PausedFetchGivesNothingAndIsNotIdle) {
  MemoryQueue queue("m");
  queue.push({copy_job("a"), copy_job("b")});
  queue.set_paused(true);
  EXPECT_TRUE(queue.paused());
  EXPECT_FALSE(queue.fetch("w", 50ms).has_value());
  // Work is queued: an --exit-when-empty worker must keep waiting.
  EXPECT_FALSE(queue.idle());
  EXPECT_TRUE(queue.counts().paused);
  EXPECT_EQ(queue.counts().queued, 2u);
  queue.set_paused(false);
  EXPECT_TRUE(queue.fetch("w", 50ms).has_value());
  EXPECT_FALSE(queue.counts().paused);
}

TEST(MemoryQueuePause, ResumeWakesAWaitingFetch) {
  MemoryQueue queue("m");
  queue.push({copy_job("a")});
  queue.set_paused(true);
  std::thread resumer([&] {
    std::this_thread::sleep_for(100ms);
    queue.set_paused(false);
  });
  const auto start = std::chrono::steady_clock::now();
  auto lease = queue.fetch("w", 5s);
  resumer.join();
  ASSERT_TRUE(lease.has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(MigrationState, PausedWinsThenPlanningCopyingFailedDone) {
  Counts counts;
  EXPECT_STREQ(migration_state(counts), "planning");
  counts.queued_total = 3;
  counts.queued = 1;
  EXPECT_STREQ(migration_state(counts), "copying");
  counts.paused = true;
  EXPECT_STREQ(migration_state(counts), "paused");
  counts.paused = false;
  counts.queued = 0;
  counts.failed = 1;
  EXPECT_STREQ(migration_state(counts), "failed");
  counts.failed = 0;
  EXPECT_STREQ(migration_state(counts), "done");
}

TEST(HttpRequest, ParsesPathQueryAndHeaders) {
  std::string error;
  auto request = HttpRequest::parse_head(
      "GET /migrations/a%20b?reason=not_found&q=x+y%2Fz HTTP/1.1\r\nHost: 127.0.0.1:9292\r\nX-Blobferry-Token:  t0k \r\n",
      &error);
  ASSERT_TRUE(request) << error;
  EXPECT_EQ(request->method, "GET");
  EXPECT_EQ(request->path, "/migrations/a b");
  EXPECT_EQ(request->query.at("reason"), "not_found");
  EXPECT_EQ(request->query.at("q"), "x y/z");
  EXPECT_EQ(request->header("host"), "127.0.0.1:9292");
  EXPECT_EQ(request->header("x-blobferry-token"), "t0k");
  EXPECT_EQ(request->content_length(), 0u);
}

TEST(HttpRequest, RefusesMalformedHeads) {
  std::string error;
  EXPECT_FALSE(HttpRequest::parse_head("GARBAGE", &error));
  EXPECT_FALSE(HttpRequest::parse_head("GET /a%zz HTTP/1.1", &error));
  EXPECT_NE(error.find("percent"), std::string::npos);
  EXPECT_FALSE(HttpRequest::parse_head("GET http://evil/ HTTP/1.1", &error));
  EXPECT_FALSE(HttpRequest::parse_head("GET / HTTP/1.1\r\nno colon here", &error));
  auto request = HttpRequest::parse_head("POST / HTTP/1.1\r\nContent-Length: 12x", &error);
  ASSERT_TRUE(request);
  EXPECT_FALSE(request->content_length().has_value());
}

TEST(HttpRequest, DecodesFormsAndRejectsTruncatedEscapes) {
  auto form = parse_url_encoded("reason=not_found&x=%41%42+c&&empty=");
  ASSERT_TRUE(form);
  EXPECT_EQ(form->at("reason"), "not_found");
  EXPECT_EQ(form->at("x"), "AB c");
  EXPECT_EQ(form->at("empty"), "");
  EXPECT_FALSE(parse_url_encoded("reason=%4"));
  EXPECT_FALSE(parse_url_encoded("reason=%"));
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
}

TEST(HttpResponse, HeadCarriesLengthAndSecurityHeaders) {
  HttpResponse response = HttpResponse::json(404, "{}");
  const std::string head = response.render_head();
  EXPECT_TRUE(head.starts_with("HTTP/1.1 404 Not Found\r\n"));
  EXPECT_NE(head.find("Content-Length: 2\r\n"), std::string::npos);
  EXPECT_NE(head.find("Content-Security-Policy: default-src 'self'"), std::string::npos);
  EXPECT_NE(head.find("X-Frame-Options: DENY"), std::string::npos);
  response.stream = [](const auto&) {};
  EXPECT_EQ(response.render_head().find("Content-Length"), std::string::npos);
}

TEST(WebGuards, TokenComparisonAndCrossSiteChecks) {
  EXPECT_TRUE(WebApp::token_matches("secret", "secret"));
  EXPECT_FALSE(WebApp::token_matches("secret", "secreT"));
  EXPECT_FALSE(WebApp::token_matches("secret", "secret2"));
  EXPECT_FALSE(WebApp::token_matches("secret", ""));
  EXPECT_FALSE(WebApp::token_matches("", ""));

  std::string error;
  auto same = HttpRequest::parse_head(
      "POST /api/migrations/m/pause HTTP/1.1\r\nHost: 127.0.0.1:9292\r\nOrigin: http://127.0.0.1:9292\r\n"
      "X-Blobferry-Action: 1\r\nSec-Fetch-Site: same-origin",
      &error);
  ASSERT_TRUE(same);
  EXPECT_FALSE(WebApp::cross_site_reason(*same).has_value());
  auto other = *same;
  other.headers["origin"] = "http://evil.example";
  EXPECT_TRUE(WebApp::cross_site_reason(other).has_value());
  auto no_header = *same;
  no_header.headers.erase("x-blobferry-action");
  EXPECT_TRUE(WebApp::cross_site_reason(no_header).has_value());
  auto cross_fetch = *same;
  cross_fetch.headers.erase("origin");
  cross_fetch.headers["sec-fetch-site"] = "cross-site";
  EXPECT_TRUE(WebApp::cross_site_reason(cross_fetch).has_value());
}

TEST(WebGuards, LoopbackHosts) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.1.2.3"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_FALSE(is_loopback_host(""));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("::"));
  EXPECT_FALSE(is_loopback_host("10.0.0.5"));
}

}  // namespace
}  // namespace blobferry
