// Collects what spdlog's default logger writes while it lives, so tests can count log lines.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace spdlog {
class logger;
}

namespace blobferry::testing {

// Replaces the default logger with one that also keeps every message (at
// info and above) in memory; the previous logger is back when it goes.
// Thread-safe like spdlog's sinks: workers may log from any thread.
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  // Every message so far, formatted as "level: text".
  std::vector<std::string> lines() const;
  // How many messages contain `needle`.
  int count(std::string_view needle) const;

 private:
  struct Sink;
  std::shared_ptr<Sink> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

}  // namespace blobferry::testing
