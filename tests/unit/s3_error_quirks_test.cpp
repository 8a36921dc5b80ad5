// What providers answer that a retry, a clock correction or a new setting fixes (s3_error, parse_http_date).
#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "common/storage/s3/http_date.h"
#include "common/storage/s3/s3_xml.h"

namespace blobferry {
namespace {

Error map(int status, std::string code, std::string bucket_region = "", std::string endpoint = "") {
  S3Failure failure;
  failure.http_status = status;
  failure.code = std::move(code);
  failure.message = "server says so";
  failure.bucket_region = std::move(bucket_region);
  failure.endpoint = std::move(endpoint);
  return s3_error(failure, "PUT a.jpg on s3 bucket media at https://s3.amazonaws.com", "media");
}

TEST(S3ErrorQuirks, ErrorsThatCanPassAreRetried) {
  EXPECT_EQ(map(409, "OperationAborted").kind(), ErrorKind::kTransient);
  EXPECT_EQ(map(503, "ServiceUnavailable").kind(), ErrorKind::kTransient);
  EXPECT_EQ(map(400, "RequestTimeout").kind(), ErrorKind::kTransient);
  // Other conflicts are not.
  EXPECT_EQ(map(409, "BucketAlreadyExists").kind(), ErrorKind::kPermanent);
}

TEST(S3ErrorQuirks, PermanentRedirectNamesTheRegion) {
  const Error error = map(301, "PermanentRedirect", "eu-central-1", "media.s3.eu-central-1.amazonaws.com");
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  const std::string message = error.what();
  EXPECT_NE(message.find("set `region: eu-central-1`"), std::string::npos) << message;
  EXPECT_NE(message.find("media.s3.eu-central-1.amazonaws.com"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
  // HEAD has no body: the header alone is enough.
  const Error head = map(301, "", "ap-south-1");
  EXPECT_EQ(head.kind(), ErrorKind::kConfig);
  EXPECT_NE(std::string(head.what()).find("region: ap-south-1"), std::string::npos) << head.what();
}

TEST(S3ErrorQuirks, TemporaryRedirectNamesTheEndpointAndIsRetried) {
  const Error error = map(307, "TemporaryRedirect", "", "media.s3-us-west-2.amazonaws.com");
  EXPECT_EQ(error.kind(), ErrorKind::kTransient);
  EXPECT_NE(std::string(error.what()).find("use endpoint media.s3-us-west-2.amazonaws.com"), std::string::npos)
      << error.what();
}

TEST(S3ErrorQuirks, RedirectEndpointComesFromTheErrorDocument) {
  const auto document = parse_s3_error(
      "<Error><Code>PermanentRedirect</Code><Message>use the endpoint</Message>"
      "<Endpoint>media.s3.eu-west-1.amazonaws.com</Endpoint><Bucket>media</Bucket></Error>");
  ASSERT_TRUE(document);
  EXPECT_EQ(document->endpoint, "media.s3.eu-west-1.amazonaws.com");
}

TEST(HttpDate, ParsesImfFixdate) {
  using namespace std::chrono;
  const auto parsed = parse_http_date("Wed, 02 Dec 2026 17:38:45 GMT");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(duration_cast<seconds>(parsed->time_since_epoch()).count(), 1796233125);
  const auto epoch = parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT");
  ASSERT_TRUE(epoch);
  EXPECT_EQ(epoch->time_since_epoch().count(), 0);
}

TEST(HttpDate, RejectsOtherForms) {
  EXPECT_FALSE(parse_http_date(""));
  EXPECT_FALSE(parse_http_date("Wednesday, 02-Dec-26 17:38:45 GMT"));
  EXPECT_FALSE(parse_http_date("Wed Dec  2 17:38:45 2026"));
  EXPECT_FALSE(parse_http_date("Wed, 31 Feb 2026 17:38:45 GMT"));
  EXPECT_FALSE(parse_http_date("Wed, 02 Foo 2026 17:38:45 GMT"));
  EXPECT_FALSE(parse_http_date("Wed, 02 Dec 2026 25:38:45 GMT"));
}

}  // namespace
}  // namespace blobferry
