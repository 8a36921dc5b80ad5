// FailureReason: its one table round-trips, keeps the names stored data
// relies on, and refuses unknown names for `requeue --reason`.
#include "common/base/failure_reason.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "common/base/error.h"

namespace blobferry {
namespace {

TEST(FailureReason, EveryReasonRoundTripsThroughItsName) {
  std::set<std::string_view> names;
  for (const FailureReasonInfo& row : failure_reasons()) {
    EXPECT_EQ(to_string(row.reason), row.name);
    EXPECT_EQ(parse_failure_reason(row.name), row.reason) << row.name;
    EXPECT_FALSE(row.description.empty()) << row.name;
    EXPECT_TRUE(names.insert(row.name).second) << "two reasons named " << row.name;
    for (char c : row.name) EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << "a metrics label: " << row.name;
  }
  EXPECT_EQ(names.size(), static_cast<std::size_t>(FailureReason::kUnknown) + 1);
}

// Redis records, reports and dashboards already hold these strings.
TEST(FailureReason, DocumentedNamesNeverChange) {
  EXPECT_EQ(to_string(FailureReason::kNotFound), "not_found");
  EXPECT_EQ(to_string(FailureReason::kAccessDenied), "access_denied");
  EXPECT_EQ(to_string(FailureReason::kThrottled), "throttled");
  EXPECT_EQ(to_string(FailureReason::kServerError), "server_error");
  EXPECT_EQ(to_string(FailureReason::kNetwork), "network");
  EXPECT_EQ(to_string(FailureReason::kIntegrity), "integrity");
  EXPECT_EQ(to_string(FailureReason::kConfig), "config");
  EXPECT_EQ(to_string(FailureReason::kPoison), "poison");
  EXPECT_EQ(to_string(FailureReason::kMalformed), "malformed");
  EXPECT_EQ(to_string(FailureReason::kDiskFull), "disk_full");
  EXPECT_EQ(to_string(FailureReason::kNoSuchUpload), "no_such_upload");
}

TEST(FailureReason, SaysWhetherARetryCanHelp) {
  EXPECT_TRUE(info(FailureReason::kThrottled).retry_can_help);
  EXPECT_TRUE(info(FailureReason::kNetwork).retry_can_help);
  EXPECT_FALSE(info(FailureReason::kNotFound).retry_can_help);
  EXPECT_FALSE(info(FailureReason::kConfig).retry_can_help);
}

TEST(FailureReason, ParsingIsExactAndUnknownNamesAreNone) {
  EXPECT_FALSE(parse_failure_reason(""));
  EXPECT_FALSE(parse_failure_reason("NOT_FOUND"));
  EXPECT_FALSE(parse_failure_reason("not_found "));
  EXPECT_FALSE(parse_failure_reason("notfound"));
}

TEST(FailureReason, AnUnknownOptionValueIsAOneLineConfigErrorListingTheKnownOnes) {
  EXPECT_EQ(failure_reason_option("throttled", "--reason"), FailureReason::kThrottled);
  try {
    failure_reason_option("not\nfound", "--reason");
    FAIL() << "an unknown reason was accepted";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_EQ(error.kind(), ErrorKind::kConfig);
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_NE(message.find("--reason 'not\\x0afound'"), std::string::npos) << message;
    for (const auto& row : failure_reasons()) {
      EXPECT_NE(message.find(std::string(row.name)), std::string::npos) << row.name << " missing from: " << message;
    }
  }
}

TEST(FailureReason, ErrorCarriesTheEnumAndReportsItsName) {
  const Error error(ErrorKind::kPermanent, FailureReason::kDiskFull, "write x: no space");
  EXPECT_EQ(error.failure_reason(), FailureReason::kDiskFull);
  EXPECT_EQ(error.reason(), "disk_full");
  EXPECT_EQ(config_error("bad").failure_reason(), FailureReason::kConfig);
}

}  // namespace
}  // namespace blobferry
