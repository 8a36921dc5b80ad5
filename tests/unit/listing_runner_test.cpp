// ListingRunner's comparison with the target, on two Disk roots (the listing logic, no servers).
#include "worker/listing/listing_runner.h"

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/budget/budget_gates.h"
#include "common/budget/local_budget_store.h"
#include "common/queue/memory_queue.h"
#include "common/storage/service_registry.h"
#include "common/storage/storage_config.h"
#include "tests/support/temp_dir.h"
#include "worker/copy/copy_engine.h"
#include "worker/loop/worker_loop.h"

namespace blobferry {
namespace {

void write_file(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

// A target page of 1,000 entries that are all common prefixes used to end the
// comparison, so an object already on the target after them was queued as
// absent (target_absent skips the HEAD: it would be copied again blindly).
TEST(ListingRunner, KeepsComparingPastATargetPageOfOnlyCommonPrefixes) {
  testing::TempDir source_root("listing-source");
  testing::TempDir target_root("listing-target");
  // 1,001 folders on the target sort before the key: more than a page of 1,000.
  for (int i = 0; i <= ListingRunner::kPageSize; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "a%04d/file", i);
    write_file(target_root.file(name), "x");
  }
  const std::string yaml = "source:\n  service: Disk\n  root: " + source_root.path() +
                           "\n  layout: plain\ntarget:\n  service: Disk\n  root: " + target_root.path() +
                           "\n  layout: plain\n";
  ServiceRegistry services(StorageConfig::parse(yaml, "test storage.yml", process_environment()));
  const std::string bytes = "the same bytes on both sides";
  PutOptions options{base64_encode(md5_of(bytes)), {}};
  for (const char* side : {"source", "target"}) {
    MemoryByteSource body(bytes);
    services.get(side).put("zz1", body, options);
  }

  MemoryQueue queue("m");
  Job job;
  job.type = JobType::kListing;
  job.migration = "m";
  job.source = "source";
  job.target = "target";
  job.listing.delimiter_depth = 1;
  const Outcome outcome = ListingRunner(queue, services.get("source"), services.get("target")).run(job);

  ASSERT_EQ(outcome.objects.size(), 1u);
  EXPECT_EQ(outcome.objects[0].key, "zz1");
  EXPECT_EQ(outcome.objects[0].kind, OutcomeKind::kSkipped);
  EXPECT_EQ(queue.queue_length(), 0u) << "zz1 is on the target already: no copy job";
}

// Listing pages are requests like any other: a listing migration whose
// objects are all on the target already reads the source only by listing
// it, and those pages must still be taken from the source's read budget
// (they were not, once: a fleet listing a bucket ignored the provider limit).
TEST(ListingRunner, WorkersTakeListingPagesFromTheRequestBudget) {
  testing::TempDir source_root("listing-budget-source");
  testing::TempDir target_root("listing-budget-target");
  const std::string yaml = "source:\n  service: Disk\n  root: " + source_root.path() +
                           "\n  layout: plain\ntarget:\n  service: Disk\n  root: " + target_root.path() +
                           "\n  layout: plain\n";
  ServiceRegistry services(StorageConfig::parse(yaml, "test storage.yml", process_environment()));
  const std::string bytes = "already copied";
  for (const char* side : {"source", "target"}) {
    MemoryByteSource body(bytes);
    services.get(side).put("photos/a.jpg", body, PutOptions{base64_encode(md5_of(bytes)), {}});
  }

  MemoryQueue queue("listed");
  store_limits(queue, BudgetLimits{1000, 0});
  Job job;
  job.type = JobType::kListing;
  job.migration = "listed";
  job.source = "source";
  job.target = "target";
  queue.push({job});

  LocalBudgetStore* store = nullptr;
  BudgetGates budgets([&store](const std::string&) {
    auto made = std::make_unique<LocalBudgetStore>();
    store = made.get();
    return made;
  }, services.config());
  const CopyEngine engine;
  WorkerOptions options;
  options.migration = "listed";
  options.worker_id = "listing-budget-test";
  options.concurrency = 1;
  options.exit_when_empty = true;
  options.poll_wait = std::chrono::milliseconds(20);
  options.housekeeping = std::chrono::milliseconds(50);
  options.budgets = &budgets;
  const WorkerSummary summary = WorkerLoop(queue, services, engine, nullptr, options).run();

  EXPECT_EQ(summary.skipped, 1u) << "the object was on the target: skipped by the listing, never copied";
  EXPECT_EQ(summary.copied, 0u);
  ASSERT_NE(store, nullptr) << "the worker opened no budget at all for the listing job";
  const BudgetKey source_reads{request_bucket_name("source", BudgetDirection::kRead), 1000, true};
  const BudgetKey target_requests{request_bucket_name("target", BudgetDirection::kWrite), 1000, true};
  EXPECT_TRUE(store->snapshot(source_reads).has_value()) << "listing the source took nothing from its budget";
  EXPECT_TRUE(store->snapshot(target_requests).has_value()) << "listing the target took nothing from its budget";
}

}  // namespace
}  // namespace blobferry
