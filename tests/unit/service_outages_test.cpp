// ServiceOutages: expired credentials take one service out, one log line, a probe per period, back when it runs.
#include "worker/loop/service_outages.h"

#include <gtest/gtest.h>

#include <chrono>

#include "common/base/error.h"
#include "tests/support/log_capture.h"

// Its own namespace: unity builds put several test files in one translation unit.
namespace blobferry::service_outages_test {
namespace {

using std::chrono::seconds;
using Time = std::chrono::steady_clock::time_point;

Error expired(const std::string& service) {
  return Error(ErrorKind::kConfig, FailureReason::kCredentialsExpired,
               "service " + service + ": session token expired (HTTP 400 ExpiredToken)", 400)
      .about_service(service);
}

struct ServiceOutagesTest : ::testing::Test {
  Time now{seconds(1000)};
  ServiceOutages outages{seconds(30), [this] { return now; }};
  testing::LogCapture log;
};

TEST_F(ServiceOutagesTest, ExpiredCredentialsTakeOnlyTheirServiceOutWithOneLogLine) {
  EXPECT_TRUE(outages.admits("expiring", "target"));
  for (int job = 0; job < 3; ++job) EXPECT_TRUE(outages.took_out(expired("expiring")));
  EXPECT_TRUE(outages.out("expiring"));
  EXPECT_FALSE(outages.admits("expiring", "target"));
  EXPECT_FALSE(outages.admits("other", "expiring")) << "a target that is out stops the job too";
  EXPECT_TRUE(outages.admits("fine", "target"));
  EXPECT_FALSE(outages.out("target"));
  EXPECT_EQ(log.count("service expiring stopped taking jobs"), 1);
}

TEST_F(ServiceOutagesTest, OtherErrorsTakeNothingOut) {
  EXPECT_FALSE(outages.took_out(config_error("service a: no bucket")));
  EXPECT_FALSE(outages.took_out(Error(ErrorKind::kTransient, FailureReason::kNetwork, "reset")));
  EXPECT_FALSE(outages.took_out(Error(ErrorKind::kConfig, FailureReason::kCredentialsExpired, "no service named")))
      << "without the service it is about, nothing can be taken out";
  EXPECT_TRUE(outages.admits("a", "b"));
  EXPECT_EQ(log.count("stopped taking jobs"), 0);
}

TEST_F(ServiceOutagesTest, OneProbePerPeriodAndARunningProbeBringsTheServiceBack) {
  outages.took_out(expired("expiring"));
  now += seconds(29);
  EXPECT_FALSE(outages.admits("expiring", "target"));
  now += seconds(1);
  EXPECT_TRUE(outages.admits("expiring", "target")) << "the recheck is due: one probe";
  EXPECT_FALSE(outages.admits("expiring", "target")) << "the others wait for its answer";
  outages.ran("expiring", "target");
  EXPECT_FALSE(outages.out("expiring"));
  EXPECT_TRUE(outages.admits("expiring", "target"));
  EXPECT_EQ(log.count("service expiring: its credentials work again"), 1);
}

TEST_F(ServiceOutagesTest, AProbeThatExpiresAgainWaitsAnotherPeriodWithoutANewLogLine) {
  outages.took_out(expired("expiring"));
  now += seconds(30);
  ASSERT_TRUE(outages.admits("expiring", "target"));
  EXPECT_TRUE(outages.took_out(expired("expiring")));
  now += seconds(29);
  EXPECT_FALSE(outages.admits("expiring", "target"));
  now += seconds(1);
  EXPECT_TRUE(outages.admits("expiring", "target"));
  EXPECT_EQ(log.count("stopped taking jobs"), 1);
  EXPECT_EQ(log.count("work again"), 0);
}

TEST_F(ServiceOutagesTest, AJobLetThroughBeforeTheOutageProvesNothing) {
  ASSERT_TRUE(outages.admits("expiring", "target"));  // started before the expiry
  outages.took_out(expired("expiring"));               // another job met it
  outages.ran("expiring", "target");                   // the first one ends well
  EXPECT_TRUE(outages.out("expiring"));
  EXPECT_EQ(log.count("work again"), 0);
}

}  // namespace
}  // namespace blobferry::service_outages_test
