// ListingRunner's comparison with the target, on two Disk roots (the listing logic, no servers).
#include "worker/listing/listing_runner.h"

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/queue/memory_queue.h"
#include "common/storage/storage_config.h"
#include "tests/support/temp_dir.h"

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
  const Outcome outcome = ListingRunner(queue, services).run(job);

  ASSERT_EQ(outcome.objects.size(), 1u);
  EXPECT_EQ(outcome.objects[0].key, "zz1");
  EXPECT_EQ(outcome.objects[0].kind, OutcomeKind::kSkipped);
  EXPECT_EQ(queue.queue_length(), 0u) << "zz1 is on the target already: no copy job";
}

}  // namespace
}  // namespace blobferry
