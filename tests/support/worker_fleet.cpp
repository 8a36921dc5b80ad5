// A group of `blobferry worker` processes for one migration, started, killed and restarted by tests.
#include "tests/support/worker_fleet.h"

#include <signal.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "tests/support/seed_data.h"

namespace blobferry::testing {

WorkerFleet::WorkerFleet(WorkerFleetOptions options) : options_(std::move(options)) {}

std::size_t WorkerFleet::start() {
  std::vector<std::string> argv{BLOBFERRY_BINARY,
                                "worker",
                                "--migration",
                                options_.migration,
                                "--concurrency",
                                std::to_string(options_.concurrency),
                                "--lease-seconds",
                                std::to_string(options_.lease_seconds),
                                "--drain-seconds",
                                std::to_string(options_.drain_seconds),
                                "--log-level",
                                options_.log_level,
                                "--storage-config",
                                options_.storage_config,
                                "--redis-url",
                                options_.redis_url};
  if (options_.exit_when_empty) argv.push_back("--exit-when-empty");
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());

  const std::string base = options_.scratch_dir + "/worker-" + options_.migration + "-" +
                           std::to_string(workers_.size() + 1);
  ChildOptions child;
  child.stdout_path = base + ".out";
  child.stderr_path = base + ".err";
  // Only what the command line says: nothing from the developer's shell.
  for (const char* name : {"REDIS_URL", "BLOBFERRY_STORAGE_CONFIG", "DATABASE_URL", "AWS_CA_BUNDLE"}) {
    child.env[name] = std::nullopt;
  }
  workers_.emplace_back(std::move(argv), std::move(child));
  killed_by_test_.push_back(false);
  return workers_.size() - 1;
}

std::size_t WorkerFleet::restart(std::size_t index) {
  if (!workers_.at(index).exit()) throw std::logic_error("restart of a worker that is still running");
  return start();
}

ChildExit WorkerFleet::kill(std::size_t index) {
  ChildProcess& worker = workers_.at(index);
  killed_by_test_[index] = true;
  worker.send_signal(SIGKILL);
  return worker.wait();
}

std::vector<std::size_t> WorkerFleet::running() {
  std::vector<std::size_t> alive;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    if (!workers_[i].exit() && !workers_[i].wait_for(std::chrono::milliseconds(0))) alive.push_back(i);
  }
  return alive;
}

std::vector<std::string> WorkerFleet::stop_all(std::chrono::seconds timeout) {
  for (std::size_t i : running()) workers_[i].send_signal(SIGTERM);
  return collect(timeout);
}

std::vector<std::string> WorkerFleet::wait_all(std::chrono::seconds timeout) { return collect(timeout); }

std::vector<std::string> WorkerFleet::collect(std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::string> problems;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    ChildProcess& worker = workers_[i];
    if (killed_by_test_[i]) continue;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto exit = worker.wait_for(std::max(left, std::chrono::milliseconds(0)));
    if (!exit) {
      worker.send_signal(SIGKILL);
      worker.wait();
      problems.push_back("worker " + std::to_string(i + 1) + " (pid " + std::to_string(worker.pid()) +
                         ") still running after " + std::to_string(timeout.count()) + " s; last lines:\n" +
                         last_lines(worker.stderr_text(), 15));
    } else if (!exit->success()) {
      problems.push_back("worker " + std::to_string(i + 1) + " (pid " + std::to_string(worker.pid()) + ") ended with " +
                         exit->describe() + "; last lines:\n" + last_lines(worker.stderr_text(), 15));
    }
  }
  return problems;
}

std::string WorkerFleet::logs() const {
  std::string all;
  for (const ChildProcess& worker : workers_) all += worker.stderr_text();
  return all;
}

}  // namespace blobferry::testing
