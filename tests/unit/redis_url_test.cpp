// redis:// URL parsing, and that no message ever shows the password.
#include "common/queue/redis_url.h"

#include <string>

#include <gtest/gtest.h>

#include "common/base/error.h"

namespace blobferry {
namespace {

// Parses a bad URL expecting a kConfig error mentioning `fragment` and never `secret`.
void expect_rejected(const std::string& url, const std::string& fragment, const std::string& secret = "") {
  try {
    RedisUrl::parse(url);
    ADD_FAILURE() << "accepted " << url;
  } catch (const Error& error) {
    std::string message = error.what();
    EXPECT_EQ(error.kind(), ErrorKind::kConfig);
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
    if (!secret.empty()) {
      EXPECT_EQ(message.find(secret), std::string::npos) << message;
    }
  }
}

TEST(RedisUrl, HostPortAndDatabase) {
  auto url = RedisUrl::parse("redis://cache.internal:6380/3");
  EXPECT_EQ(url.host, "cache.internal");
  EXPECT_EQ(url.port, 6380);
  EXPECT_EQ(url.db, 3);
  EXPECT_TRUE(url.password.empty());
  EXPECT_EQ(url.address(), "cache.internal:6380/3");
  EXPECT_EQ(url.redacted(), "redis://cache.internal:6380/3");
}

TEST(RedisUrl, DefaultsPortAndDatabase) {
  auto url = RedisUrl::parse("redis://localhost");
  EXPECT_EQ(url.host, "localhost");
  EXPECT_EQ(url.port, 6379);
  EXPECT_EQ(url.db, 0);
  EXPECT_EQ(RedisUrl::parse("redis://localhost/").db, 0);
}

TEST(RedisUrl, PasswordOnlyIsKeptButNeverShown) {
  auto url = RedisUrl::parse("redis://:s3cr%40t@127.0.0.1:7000/1");
  EXPECT_EQ(url.password, "s3cr@t");
  EXPECT_TRUE(url.username.empty());
  EXPECT_EQ(url.redacted(), "redis://:***@127.0.0.1:7000/1");
  EXPECT_EQ(url.address().find("s3cr"), std::string::npos);
}

TEST(RedisUrl, UserAndPasswordForAcl) {
  auto url = RedisUrl::parse("redis://worker:p%2Fw@10.0.0.5:6379/0");
  EXPECT_EQ(url.username, "worker");
  EXPECT_EQ(url.password, "p/w");
  EXPECT_EQ(url.redacted(), "redis://worker:***@10.0.0.5:6379/0");
}

TEST(RedisUrl, BarePasswordBeforeAt) {
  auto url = RedisUrl::parse("redis://hunter2@host:1");
  EXPECT_EQ(url.password, "hunter2");
  EXPECT_TRUE(url.username.empty());
}

TEST(RedisUrl, UnencodedAtInPasswordSplitsAtTheLastAt) {
  auto url = RedisUrl::parse("redis://:pa@ss@host:6379");
  EXPECT_EQ(url.password, "pa@ss");
  EXPECT_EQ(url.host, "host");
}

TEST(RedisUrl, Ipv6Host) {
  auto url = RedisUrl::parse("redis://[::1]:6390/2");
  EXPECT_EQ(url.host, "::1");
  EXPECT_EQ(url.port, 6390);
  EXPECT_EQ(url.address(), "[::1]:6390/2");
}

TEST(RedisUrl, RejectsOtherSchemes) {
  expect_rejected("http://localhost:6379", "scheme must be redis://");
  expect_rejected("localhost:6379", "scheme must be redis://");
  expect_rejected("rediss://:topsecret@host:6380", "TLS", "topsecret");
}

TEST(RedisUrl, RejectsBadPortWithoutShowingPassword) {
  expect_rejected("redis://:topsecret@host:notaport/0", "port must be a number", "topsecret");
  expect_rejected("redis://host:0", "port must be a number");
  expect_rejected("redis://host:65536", "port must be a number");
  expect_rejected("redis://host:", "port must be a number");
}

TEST(RedisUrl, RejectsBadDatabaseWithoutShowingPassword) {
  expect_rejected("redis://u:topsecret@host:6379/x", "database must be", "topsecret");
  expect_rejected("redis://host:6379/-1", "database must be");
}

TEST(RedisUrl, RejectsMissingHost) {
  expect_rejected("redis://", "missing host");
  expect_rejected("redis://:topsecret@:6379", "missing host", "topsecret");
}

TEST(RedisUrl, RejectsBadPercentEncodingWithoutShowingPassword) {
  expect_rejected("redis://:top%zzsecret@host", "percent-encoding", "top%zzsecret");
}

TEST(RedisUrl, RejectsQueryParameters) {
  expect_rejected("redis://:topsecret@host:6379/0?ssl=true", "query parameters", "topsecret");
}

TEST(RedisUrl, RejectsUnclosedIpv6) { expect_rejected("redis://[::1:6379", "unclosed"); }

}  // namespace
}  // namespace blobferry
