// `migrate` stopped by SIGINT while its copies hang on a stalled target: it cancels and joins them (run under ASan).
#include <gtest/gtest.h>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/storage/disk/disk_storage.h"
#include "enqueuer/commands/migrate_command.h"
#include "tests/support/fault_proxy.h"
#include "tests/support/seed_data.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_services.h"
#include "tests/support/test_stack.h"

namespace blobferry {
namespace {

using testing::FaultProxy;
using testing::FaultProxyOptions;
using testing::TempDir;
using testing::TestStack;
using Clock = std::chrono::steady_clock;

constexpr auto kStall = std::chrono::seconds(12);

// The test sends SIGINT to its own process; migrate's SignalWatcher must be
// the one to take it, so no other thread (the stack's, the proxy's) may.
void block_sigint_everywhere_from_now() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int run_migrate(const std::string& storage_config, const std::vector<std::string>& args) {
  CLI::App app;
  MigrateCommand command;
  command.define(*app.add_subcommand("migrate"));
  std::vector<std::string> argv = args;
  argv.insert(argv.begin(), "migrate");
  std::reverse(argv.begin(), argv.end());  // CLI11 takes the vector reversed
  app.parse(argv);
  GlobalOptions global;
  global.storage_config = storage_config;
  return command.run(global);
}

TEST(MigrateDrain, CtrlCPastTheDrainDeadlineCancelsAndJoinsCopiesInFlight) {
  block_sigint_everywhere_from_now();
  TestStack stack(testing::StackOptions{.s3 = true});
  TempDir scratch("blobferry-migrate-drain");

  // Source: a Disk root with a few objects. Target: s3rver behind a proxy
  // that stalls every PUT far past the drain deadline, so each copy is
  // blocked inside libcurl when the deadline comes.
  const std::string root = scratch.path() + "/source";
  DiskStorage disk(testing::disk_service("local", root));
  disk.check();
  testing::SeedObjects objects = testing::make_seed_objects("", 12, 64 * 1024, 256 * 1024, {}, 7);
  testing::write_seed_objects(objects, disk);

  FaultProxyOptions faults;
  faults.upstream = stack.env("S3_TARGET_ENDPOINT");
  faults.stall = {1.0, {"PUT"}};
  faults.stall_duration = std::chrono::duration_cast<std::chrono::milliseconds>(kStall);
  FaultProxy proxy(faults);

  const std::string config = scratch.path() + "/storage.yml";
  testing::write_text_file(config, "local:\n  service: Disk\n  root: " + root +
                                       "\nslow:\n  service: S3\n  access_key_id: S3RVER\n  secret_access_key: S3RVER\n"
                                       "  region: us-east-1\n  bucket: target\n  endpoint: " + proxy.endpoint() +
                                       "\n  force_path_style: true\n");

  auto migrate = std::async(std::launch::async, [&] {
    return run_migrate(config, {"--from", "local", "--to", "slow", "--source", "listing", "--concurrency", "4",
                                "--drain-seconds", "1", "--no-progress"});
  });
  ASSERT_TRUE(testing::wait_until([&] { return proxy.stats().stalls >= 4; }, std::chrono::seconds(30)))
      << "copies never reached the target: " << proxy.stats().requests << " requests";

  const auto interrupted = Clock::now();
  kill(getpid(), SIGINT);
  // Drain (1 s), then cancellation within libcurl's next progress callback.
  ASSERT_EQ(migrate.wait_for(std::chrono::seconds(8)), std::future_status::ready)
      << "migrate did not return after Ctrl-C: its copies were waited for, not cancelled";
  const double took = std::chrono::duration<double>(Clock::now() - interrupted).count();
  EXPECT_EQ(migrate.get(), 1);  // interrupted: "run the same command again"
  EXPECT_LT(took, 6.0);

  // Today's detached copies would wake up when the stall ends and use the
  // engine, queue and storages migrate has destroyed: ASan reports it. Wait
  // past it, so such a thread would have run by the end of the test.
  std::this_thread::sleep_for(kStall - std::chrono::seconds(static_cast<int>(took)) + std::chrono::seconds(2));
  proxy.stop();
  EXPECT_GE(proxy.stats().stalls, 4u);
  std::printf("RELIABILITY migrate_drain: Ctrl-C with %llu PUTs stalled, returned in %.1f s (drain 1 s)\n",
              static_cast<unsigned long long>(proxy.stats().stalls), took);
}

}  // namespace
}  // namespace blobferry
