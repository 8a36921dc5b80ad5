// Collects what spdlog's default logger writes while it lives, so tests can count log lines.
#include "tests/support/log_capture.h"

#include <algorithm>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

namespace blobferry::testing {

struct LogCapture::Sink final : spdlog::sinks::base_sink<std::mutex> {
  std::vector<std::string> lines() {
    std::lock_guard lock(this->mutex_);
    return kept;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    const auto level = spdlog::level::to_string_view(message.level);
    kept.push_back(std::string(level.data(), level.size()) + ": " +
                   std::string(message.payload.data(), message.payload.size()));
  }
  void flush_() override {}

 private:
  std::vector<std::string> kept;
};

LogCapture::LogCapture() : sink_(std::make_shared<Sink>()), previous_(spdlog::default_logger()) {
  // The previous logger's sinks still print, so a failing test shows its log.
  std::vector<spdlog::sink_ptr> sinks = previous_->sinks();
  sinks.push_back(sink_);
  auto logger = std::make_shared<spdlog::logger>(previous_->name(), sinks.begin(), sinks.end());
  logger->set_level(std::min(previous_->level(), spdlog::level::info));
  sink_->set_level(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
}

LogCapture::~LogCapture() { spdlog::set_default_logger(previous_); }

std::vector<std::string> LogCapture::lines() const { return sink_->lines(); }

int LogCapture::count(std::string_view needle) const {
  const std::vector<std::string> all = lines();
  return static_cast<int>(std::count_if(all.begin(), all.end(), [&](const std::string& line) {
    return line.find(needle) != std::string::npos;
  }));
}

}  // namespace blobferry::testing
