// Jobs, leases and end-of-run checks shared by the JobQueue tests (the conformance suite and each queue's own).
#include "tests/support/queue_jobs.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

namespace blobferry::testing {

Job copy_job(const std::string& key, std::int64_t blob_id) {
  Job job;
  job.migration = "m";
  job.source = "source";
  job.target = "target";
  JobObject object;
  object.key = key;
  object.size = 1000;
  if (blob_id) object.blob_id = blob_id;
  job.objects.push_back(object);
  return job;
}

Job batch_job(const std::vector<std::string>& keys) {
  Job job = copy_job(keys.at(0), 1);
  for (std::size_t i = 1; i < keys.size(); ++i) {
    JobObject object;
    object.key = keys[i];
    object.blob_id = static_cast<std::int64_t>(i + 1);
    job.objects.push_back(object);
  }
  return job;
}

Lease must_fetch(JobQueue& queue, const std::string& worker) {
  auto lease = queue.fetch(worker, std::chrono::seconds(2));
  if (!lease) throw std::runtime_error("no job fetched within 2 s");
  return *lease;
}

std::string key_of(const Lease& lease) { return decode_job(lease.payload).objects.at(0).key; }

void expect_each_job_copied_once(const std::multiset<std::string>& seen, const Counts& counts, int jobs) {
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(jobs));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), seen.size()) << "no job ran twice";
  EXPECT_EQ(counts.copied, static_cast<std::uint64_t>(jobs));
  EXPECT_EQ(counts.queued_total, static_cast<std::uint64_t>(jobs));
  EXPECT_TRUE(counts.idle());
}

void expect_concurrent_jobs_copied_once(JobQueue& queue, int producers, int jobs_each, int consumers) {
  using namespace std::chrono_literals;
  const int jobs = producers * jobs_each;
  std::mutex mutex;
  std::multiset<std::string> seen;
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < jobs_each; i += 25) {
        std::vector<Job> batch;
        for (int j = i; j < i + 25; ++j) batch.push_back(copy_job(std::to_string(p) + "/" + std::to_string(j)));
        queue.push(batch);
      }
    });
  }
  for (int c = 0; c < consumers; ++c) {
    threads.emplace_back([&, c] {
      int handled = 0;
      const auto give_up = std::chrono::steady_clock::now() + 60s;
      while (done.load() < jobs && std::chrono::steady_clock::now() < give_up) {
        auto lease = queue.fetch("c" + std::to_string(c), 100ms);
        if (!lease) continue;
        Job job = decode_job(lease->payload);
        if (++handled % 3 == 0 && job.attempts == 0) {
          ++job.attempts;
          EXPECT_TRUE(handled % 2 ? queue.retry_later(*lease, job, 1ms) : queue.release(*lease));
          continue;
        }
        EXPECT_TRUE(queue.complete(*lease, Outcome::copied(job.objects.at(0).key, 1)));
        std::lock_guard lock(mutex);
        seen.insert(job.objects.at(0).key);
        ++done;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  expect_each_job_copied_once(seen, queue.counts(), jobs);
}

}  // namespace blobferry::testing
