// Runs the JobQueue conformance suite against every queue: RedisQueue on a real Redis, MemoryQueue in process.
#include <gtest/gtest.h>

#include "tests/support/job_queue_conformance.h"

namespace blobferry::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(Queues, JobQueueConformance,
                         ::testing::Values(memory_queue_backend(), redis_queue_backend()),
                         JobQueueConformance::name_of);

}  // namespace
}  // namespace blobferry::testing
