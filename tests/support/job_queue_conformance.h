// The JobQueue contract as one parameterised GoogleTest suite, run against every queue (Redis, in-memory).
#pragma once

#include <chrono>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "common/queue/job_queue.h"

namespace blobferry::testing {

// What a test asks of the queue it gets; each backend maps it onto its own options.
struct QueueSettings {
  std::chrono::milliseconds lease_duration{30'000};
  int max_recoveries = 3;
};

// A queue implementation under test. open() returns a fresh, empty queue of
// `migration` (each test uses its own name, so a shared server never mixes
// tests). Tests share one handle between threads: every JobQueue is thread-safe.
struct JobQueueBackend {
  std::string name;  // the test name's suffix: "memory", "redis"
  std::function<std::unique_ptr<JobQueue>(const std::string& migration, const QueueSettings& settings)> open;
};

// So a failure names the backend rather than dumping its bytes.
void PrintTo(const JobQueueBackend& backend, std::ostream* out);

// The in-process MemoryQueue.
JobQueueBackend memory_queue_backend();
// RedisQueue on a redis-server this test binary starts on a free loopback
// port at first use (TestStack) and stops at exit.
JobQueueBackend redis_queue_backend();

// Instantiate with INSTANTIATE_TEST_SUITE_P(Queues, JobQueueConformance,
// ::testing::Values(memory_queue_backend(), redis_queue_backend()), JobQueueConformance::name_of).
class JobQueueConformance : public ::testing::TestWithParam<JobQueueBackend> {
 public:
  static std::string name_of(const ::testing::TestParamInfo<JobQueueBackend>& info) { return info.param.name; }

 protected:
  // A fresh queue named after the running test (and suffix).
  std::unique_ptr<JobQueue> open(const QueueSettings& settings = {}, const std::string& suffix = "");
  std::string migration(const std::string& suffix = "") const;
};

}  // namespace blobferry::testing
