// A group of `blobferry worker` processes for one migration, started, killed and restarted by tests.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "tests/support/child_process.h"

namespace blobferry::testing {

struct WorkerFleetOptions {
  std::string migration;
  std::string storage_config;  // the workers' storage.yml
  std::string redis_url;
  std::string scratch_dir;  // each worker's stdout and stderr go to files here
  int concurrency = 8;
  int lease_seconds = 3;
  int drain_seconds = 10;
  bool exit_when_empty = false;
  std::string log_level = "info";
  std::vector<std::string> extra_args = {};  // e.g. {"--part-size-mib", "5"}
};

// Every worker ever started stays in the fleet (killed ones too), so the logs
// of the whole run can be read at the end.
class WorkerFleet {
 public:
  explicit WorkerFleet(WorkerFleetOptions options);

  // Starts one more worker; returns its index.
  std::size_t start();
  // Starts a replacement for worker `index` (which must have ended) and
  // returns the replacement's index.
  std::size_t restart(std::size_t index);
  // SIGKILL and reap; returns how it ended (the signal, or an exit that came first).
  ChildExit kill(std::size_t index);

  ChildProcess& worker(std::size_t index) { return workers_[index]; }
  std::size_t size() const { return workers_.size(); }
  // Indexes of the workers that have not ended.
  std::vector<std::size_t> running();

  // SIGTERM to every running worker, then waits up to timeout for each; one
  // line per worker that did not exit 0 (killed by the test or not) is
  // returned, a worker still running after timeout is killed and reported.
  std::vector<std::string> stop_all(std::chrono::seconds timeout);
  // Waits for every running worker to exit by itself (--exit-when-empty),
  // reporting as stop_all does.
  std::vector<std::string> wait_all(std::chrono::seconds timeout);

  // stderr of every worker, in start order.
  std::string logs() const;

 private:
  std::vector<std::string> collect(std::chrono::seconds timeout);

  WorkerFleetOptions options_;
  std::vector<ChildProcess> workers_;
  std::vector<bool> killed_by_test_;
};

}  // namespace blobferry::testing
