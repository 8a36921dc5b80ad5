// MemoryQueue under the sanitizers; its JobQueue contract is tests/support/job_queue_conformance.cpp.
#include "common/queue/memory_queue.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace blobferry {
namespace {

using namespace std::chrono_literals;

Job copy_job(const std::string& key, std::int64_t blob_id = 0) {
  Job job;
  job.migration = "m";
  job.source = "source";
  job.target = "target";
  JobObject object;
  object.key = key;
  if (blob_id) object.blob_id = blob_id;
  job.objects.push_back(object);
  return job;
}

std::string key_of(const Lease& lease) { return decode_job(lease.payload).objects.at(0).key; }

// A heavier in-process stress than the conformance suite's, here because the
// unit tests also run under ASan and UBSan: 4 producers, 4 consumers, 4,000
// jobs, a third of them detouring through release or a retry.
TEST(MemoryQueue, ConcurrentProducersAndConsumersLoseNothing) {
  MemoryQueue queue("m");
  constexpr int kProducers = 4, kJobsEach = 1000, kConsumers = 4;
  std::mutex mutex;
  std::multiset<std::string> seen;
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kJobsEach; i += 10) {
        std::vector<Job> jobs;
        for (int j = i; j < i + 10; ++j) jobs.push_back(copy_job(std::to_string(p) + "/" + std::to_string(j)));
        queue.push(jobs);
      }
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      int handled = 0;
      while (done.load() < kProducers * kJobsEach) {
        auto lease = queue.fetch("c" + std::to_string(c), 50ms);
        if (!lease) continue;
        // Every third job takes a detour through release or a short retry.
        if (++handled % 3 == 0 && decode_job(lease->payload).attempts == 0) {
          Job job = decode_job(lease->payload);
          ++job.attempts;
          ASSERT_TRUE(handled % 2 ? queue.retry_later(*lease, job, 1ms) : queue.release(*lease));
          continue;
        }
        ASSERT_TRUE(queue.complete(*lease, Outcome::copied(key_of(*lease), 1)));
        std::lock_guard lock(mutex);
        seen.insert(key_of(*lease));
        ++done;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kProducers * kJobsEach));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), seen.size()) << "no job ran twice";
  Counts counts = queue.counts();
  EXPECT_EQ(counts.copied, static_cast<std::uint64_t>(kProducers * kJobsEach));
  EXPECT_TRUE(counts.idle());
}

}  // namespace
}  // namespace blobferry
