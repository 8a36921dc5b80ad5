// Validate and switch progress as status and the page read it: the record's JSON, a dead pass, and the state it gives.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "enqueuer/commands/status_command.h"
#include "enqueuer/verification/phase_record.h"

namespace blobferry {
namespace {

PhaseRecord running_validation(double updated_at) {
  PhaseRecord record;
  record.running = true;
  record.started_at = 1000;
  record.updated_at = updated_at;
  record.counts = {{"checked", 33}, {"verified", 30}, {"missing", 3}, {"verified_total", 30}, {"to_verify", 33}};
  return record;
}

TEST(PhaseRecord, RoundTripsThroughItsJson) {
  PhaseRecord record = running_validation(1004.5);
  record.interrupted = true;
  record.finished_at = 1010;
  const auto decoded = PhaseRecord::decode(record.encode());
  ASSERT_TRUE(decoded.has_value());
  EXPECT_TRUE(decoded->running);
  EXPECT_TRUE(decoded->interrupted);
  EXPECT_DOUBLE_EQ(decoded->started_at, 1000);
  EXPECT_DOUBLE_EQ(decoded->updated_at, 1004.5);
  EXPECT_DOUBLE_EQ(decoded->finished_at, 1010);
  EXPECT_EQ(decoded->counts, record.counts);
}

TEST(PhaseRecord, RefusesWhatItDidNotWrite) {
  EXPECT_FALSE(PhaseRecord::decode("").has_value());
  EXPECT_FALSE(PhaseRecord::decode("[1]").has_value());
  EXPECT_FALSE(PhaseRecord::decode(R"({"running":true})").has_value());
  EXPECT_FALSE(PhaseRecord::decode(R"({"counts":{"verified":-1}})").has_value());
  EXPECT_FALSE(PhaseRecord::decode(R"({"counts":{"verified":"12"}})").has_value());
}

TEST(PhaseRecord, APassNotRefreshedForTwentySecondsDied) {
  const PhaseRecord record = running_validation(1000);
  EXPECT_TRUE(record.seen_at(1000 + PhaseRecord::kStaleSeconds - 1).running);
  const PhaseRecord dead = record.seen_at(1000 + PhaseRecord::kStaleSeconds);
  EXPECT_FALSE(dead.running);
  EXPECT_TRUE(dead.interrupted);
  EXPECT_EQ(dead.counts, record.counts);
}

TEST(PhaseRecord, StateIsPausedThenSwitchingThenValidatingThenTheCopyPhase) {
  StatusView view;
  view.counts.queued_total = 3;  // copied, nothing pending, nothing failed: done
  EXPECT_STREQ(migration_state(view), "done");
  view.validation = running_validation(1000);
  EXPECT_STREQ(migration_state(view), "validating");
  view.switching = PhaseRecord();
  view.switching->running = true;
  EXPECT_STREQ(migration_state(view), "switching");
  view.counts.paused = true;
  EXPECT_STREQ(migration_state(view), "paused");
  view.counts.paused = false;
  view.switching->running = false;
  view.validation = view.validation->seen_at(1000 + PhaseRecord::kStaleSeconds);  // its validate was killed
  EXPECT_STREQ(migration_state(view), "done");
}

TEST(PhaseRecord, StatusJsonCarriesVerifiedRowsAndBothPasses) {
  StatusView view;
  view.migration = "m";
  const nlohmann::json none = status_json(view);
  EXPECT_TRUE(none["verified_rows"].is_null());
  EXPECT_TRUE(none["validation"].is_null());
  EXPECT_TRUE(none["switch"].is_null());

  view.verified_rows = 30;
  view.validation = running_validation(1000);
  view.validation->running = false;
  view.validation->finished_at = 1002;
  view.switching = PhaseRecord();
  view.switching->started_at = 1003;
  view.switching->updated_at = view.switching->finished_at = 1004;
  view.switching->counts = {{"switched", 30}, {"unverified", 3}, {"batches", 1}};
  const nlohmann::json json = status_json(view);
  EXPECT_EQ(json["verified_rows"], 30);
  EXPECT_EQ(json["validation"]["to_verify"], 33);
  EXPECT_EQ(json["validation"]["missing"], 3);
  EXPECT_EQ(json["validation"]["running"], false);
  EXPECT_EQ(json["validation"]["finished_at"], 1002.0);
  EXPECT_EQ(json["switch"]["switched"], 30);
  EXPECT_EQ(json["switch"]["unverified"], 3);

  const std::vector<std::string> lines = status_lines(view, 0);
  bool verified_line = false, switch_line = false;
  for (const std::string& line : lines) {
    verified_line |= line.find("30 rows verified of 33") != std::string::npos;
    switch_line |= line.find("30 rows switched, 3 not verified yet") != std::string::npos;
  }
  EXPECT_TRUE(verified_line) << ::testing::PrintToString(lines);
  EXPECT_TRUE(switch_line) << ::testing::PrintToString(lines);
}

TEST(PhaseRecord, OnlyBlobsMigrationsCountVerifiedRows) {
  EXPECT_TRUE(records_verified_rows(R"({"source":"blobs","from":"a","to":"b"})"));
  EXPECT_FALSE(records_verified_rows(R"({"source":"paperclip","from":"a","to":"b"})"));
  EXPECT_FALSE(records_verified_rows(R"({"source":"manifest"})"));
  EXPECT_FALSE(records_verified_rows("not json"));
}

}  // namespace
}  // namespace blobferry
