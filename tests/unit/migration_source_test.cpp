// The --source registry and each source's own option checks and summary
// wording, without any server: what the commands print and refuse.
#include <gtest/gtest.h>

#include "common/base/error.h"
#include "enqueuer/sources/source_registry.h"
#include "tests/support/config_error_of.h"

namespace blobferry {
namespace {

MigrationPlan plan_of(const std::string& source) {
  MigrationPlan plan;
  plan.migration = "m";
  plan.source = source;
  plan.from = "old";
  plan.to = "new";
  return plan;
}

TEST(SourceRegistry, EveryNameMakesItsSourceAndAnUnknownOneListsThem) {
  EXPECT_EQ(SourceRegistry::names(), (std::vector<std::string>{"blobs", "listing", "manifest", "paperclip"}));
  for (const std::string& name : SourceRegistry::names()) {
    EXPECT_EQ(SourceRegistry::make(plan_of(name))->plan().source, name);
  }
  EXPECT_EQ(testing::config_error_of([] { SourceRegistry::make(plan_of("carrierwave")); }),
            "unknown --source 'carrierwave': use blobs, listing, manifest or paperclip");
  EXPECT_EQ(testing::config_error_of([] { SourceRegistry::check_name("s3"); }), "unknown --source 's3': use blobs, listing, manifest or paperclip");
}

TEST(SourceRegistry, EachSourceRefusesTheOptionsOfTheOthers) {
  auto check = [](const std::string& name, unsigned given) {
    MigrationPlan plan = plan_of(name);
    plan.manifest = "keys.csv";
    plan.paperclip = {"users", "avatar", "User", "", "original", ""};
    return testing::config_error_of([&] { SourceRegistry::make(plan)->check_options(given); });
  };
  EXPECT_EQ(check("blobs", kBlobFilters | kUntrackedVariants), "");
  EXPECT_NE(check("blobs", kListingOptions).find("--prefix and --delimiter-depth apply to --source listing"), std::string::npos);
  EXPECT_EQ(check("listing", kListingOptions), "");
  EXPECT_NE(check("listing", kBlobFilters).find("--id-range and --shard apply to --source blobs"), std::string::npos);
  EXPECT_NE(check("manifest", kUntrackedVariants).find("--include-untracked-variants applies to --source blobs"),
            std::string::npos);
  EXPECT_NE(check("blobs", kPaperclipOptions).find("apply to --source paperclip"), std::string::npos);
  EXPECT_EQ(check("paperclip", kPaperclipOptions), "");
  EXPECT_NE(check("paperclip", kBlobFilters).find("apply to --source blobs"), std::string::npos);
}

TEST(SourceRegistry, SourcesCompleteOrRefuseTheirOwnOptions) {
  EXPECT_NE(testing::config_error_of([] { SourceRegistry::make(plan_of("manifest"))->check_options(0); }).find("needs --manifest FILE"),
            std::string::npos);
  MigrationPlan paperclip = plan_of("paperclip");
  paperclip.paperclip.table = "users";
  EXPECT_NE(testing::config_error_of([&] { SourceRegistry::make(paperclip)->check_options(kPaperclipOptions); }).find("--attachment"),
            std::string::npos);
  paperclip.paperclip.attachment = "avatar";
  paperclip.paperclip.record_type = "User";
  auto source = SourceRegistry::make(paperclip);
  source->check_options(kPaperclipOptions);
  EXPECT_EQ(source->plan().paperclip.path, ":class/:attachment/:id_partition/:style/:filename");
  paperclip.paperclip.path = ":class/:nope";
  EXPECT_NE(testing::config_error_of([&] { SourceRegistry::make(paperclip)->check_options(kPaperclipOptions); }).find(":nope"),
            std::string::npos);
}

// enqueue and migrate print one wording per source, through the source.
TEST(SourceRegistry, SummaryLinesKeepTheirWording) {
  PlanTotals totals;
  totals.objects = 3;
  totals.bytes = 0;
  auto blobs = SourceRegistry::make(plan_of("blobs"));
  EXPECT_EQ(blobs->describe_count(totals), "3 objects");
  EXPECT_EQ(blobs->describe_enqueued(totals, false), "queued 3 copy jobs (0 B) for migration m");
  totals.catch_up = true;
  EXPECT_EQ(blobs->describe_enqueued(totals, true),
            "queued 3 copy jobs (0 B) for migration m (catch-up pass); interrupted, run again to continue");
  MigrationPlan pc = plan_of("paperclip");
  pc.paperclip = {"users", "avatar", "User", "", "original", ""};
  auto paperclip = SourceRegistry::make(pc);
  totals.catch_up = false;
  EXPECT_EQ(paperclip->describe_count(totals), "3 User records with a file in avatar and no attachment of it yet");
  EXPECT_EQ(paperclip->describe_enqueued(totals, false),
            "queued 3 copy jobs (0 B) for migration m: users.avatar -> ActiveStorage keys on new");
  SwitchResult switched;
  switched.switched = 5;
  switched.unverified = 2;
  switched.batches = 1;
  EXPECT_EQ(blobs->describe_switch(switched, false, true),
            "switched 5 blobs from old to new in 1 batches; 2 not verified yet (run blobferry validate, then switch again)");
  EXPECT_EQ(paperclip->describe_switch(switched, true, false),
            "would write 5 ActiveStorage blob and attachment rows for User on new in 1 batches; 2 files not verified yet");
  totals.listing_jobs = 37;
  EXPECT_EQ(SourceRegistry::make(plan_of("listing"))->describe_enqueued(totals, false),
            "queued 37 listing jobs for migration m: workers list old and queue copies as pages arrive");
  EXPECT_EQ(SourceRegistry::make(plan_of("listing"))->switch_policy(), MigrationSource::SwitchPolicy::kNone);
  EXPECT_NE(testing::config_error_of([] {
              std::atomic<bool> stop{false};
              SourceRegistry::make(plan_of("manifest"))->switch_rows("", 10, false, stop, {});
            }).find("manifest migrations have no blob rows"),
            std::string::npos);
}

}  // namespace
}  // namespace blobferry
