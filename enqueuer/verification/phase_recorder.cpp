// Keeps a validate or switch pass's PhaseRecord in Redis up to date while the pass runs.
#include "enqueuer/verification/phase_recorder.h"

#include <chrono>

#include <spdlog/spdlog.h>

namespace blobferry {
namespace {

double epoch_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

PhaseRecorder::PhaseRecorder(JobQueue& queue, std::string cursor) : queue_(queue), cursor_(std::move(cursor)) {
  record_.running = true;
  record_.started_at = record_.updated_at = epoch_seconds();
  write(record_);
  refresher_ = std::thread([this] { refresh_until_finished(); });
}

PhaseRecorder::~PhaseRecorder() {
  bool finished = false;
  {
    std::lock_guard lock(mutex_);
    finished = finished_;
  }
  if (!finished) finish(record_.counts, true);
  if (refresher_.joinable()) refresher_.join();
}

void PhaseRecorder::update(std::map<std::string, std::uint64_t> counts) {
  std::lock_guard lock(mutex_);
  record_.counts = std::move(counts);
  record_.updated_at = epoch_seconds();
  write(record_);
}

void PhaseRecorder::finish(std::map<std::string, std::uint64_t> counts, bool interrupted) {
  {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    finished_ = true;
    record_.counts = std::move(counts);
    record_.running = false;
    record_.interrupted = interrupted;
    record_.updated_at = record_.finished_at = epoch_seconds();
    write(record_);
  }
  wake_.notify_all();
}

// Called with mutex_ held, so a refresh never overwrites the finished record.
void PhaseRecorder::write(const PhaseRecord& record) {
  try {
    queue_.set_cursor(cursor_, record.encode());
  } catch (const std::exception& e) {
    spdlog::warn("could not record {} progress in the queue: {}", cursor_, e.what());
  }
}

void PhaseRecorder::refresh_until_finished() {
  std::unique_lock lock(mutex_);
  const auto period = std::chrono::duration<double>(PhaseRecord::kRefreshSeconds);
  while (!wake_.wait_for(lock, period, [this] { return finished_; })) {
    record_.updated_at = epoch_seconds();
    write(record_);
  }
}

}  // namespace blobferry
