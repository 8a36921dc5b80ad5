// Keeps a validate or switch pass's PhaseRecord in Redis up to date while the pass runs.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "common/queue/job_queue.h"
#include "enqueuer/verification/phase_record.h"

namespace blobferry {

// Writes the record as running at construction and rewrites it every
// PhaseRecord::kRefreshSeconds from a thread of its own (a validate pass
// gives no sign of life while it lists), until finish(). Writing is best
// effort: a Redis hiccup never fails the validation or the switch it reports.
class PhaseRecorder {
 public:
  PhaseRecorder(JobQueue& queue, std::string cursor);
  // Without finish(): the pass ended by an exception, recorded as interrupted.
  ~PhaseRecorder();
  PhaseRecorder(const PhaseRecorder&) = delete;
  PhaseRecorder& operator=(const PhaseRecorder&) = delete;

  // Counts so far (a --wait round); the pass goes on.
  void update(std::map<std::string, std::uint64_t> counts);
  void finish(std::map<std::string, std::uint64_t> counts, bool interrupted);

 private:
  void write(const PhaseRecord& record);
  void refresh_until_finished();

  JobQueue& queue_;
  std::string cursor_;
  std::mutex mutex_;
  std::condition_variable wake_;
  PhaseRecord record_;
  bool finished_ = false;
  std::thread refresher_;
};

}  // namespace blobferry
