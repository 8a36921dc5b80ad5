// MemoryQueue under the sanitizers; its JobQueue contract is tests/support/job_queue_conformance.cpp.
#include "common/queue/memory_queue.h"

#include <gtest/gtest.h>

#include "tests/support/queue_jobs.h"

namespace blobferry {
namespace {

// A heavier in-process stress than the conformance suite's, here because the
// unit tests also run under ASan and UBSan: 4 producers, 4 consumers, 4,000
// jobs, a third of them detouring through release or a retry.
TEST(MemoryQueue, ConcurrentProducersAndConsumersLoseNothing) {
  MemoryQueue queue("m");
  testing::expect_concurrent_jobs_copied_once(queue, 4, 1000, 4);
}

}  // namespace
}  // namespace blobferry
