// A Disk target that fills up (a small tmpfs) or is read-only: clear errors, no partial file.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/base/digest.h"
#include "common/storage/disk/disk_storage.h"
#include "common/base/encoding.h"
#include "tests/support/blobferry_cli.h"
#include "tests/support/seed_data.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_services.h"
#include "tests/support/test_stack.h"
#include "tests/support/tmpfs_mount.h"

namespace blobferry {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using testing::BlobferryCli;
using testing::CliResult;
using testing::SeedObjects;
using testing::TempDir;
using testing::disk_service;
using testing::TestStack;
using testing::TmpfsMount;

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * kKiB;

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

std::string make_dir(const std::string& path) {
  std::filesystem::create_directories(path);
  return path;
}

class DiskTargetTest : public ::testing::Test {
 protected:
  TestStack stack_{{.redis = true}};
  TempDir scratch_{"blobferry-disk-target"};

  // A storage.yml with Disk services `source` and `target` at these roots.
  std::string config_for(const std::string& name, const std::string& source_root, const std::string& target_root) {
    const std::string config = scratch_.file(name + ".storage.yml");
    testing::write_text_file(config, "source:\n  service: Disk\n  root: " + source_root +
                                         "\ntarget:\n  service: Disk\n  root: " + target_root + "\n");
    return config;
  }
};

// Every file under root that is not one of objects, whole and intact: a
// partial file, a temporary file.
std::vector<std::string> stray_files(const std::string& root, const DiskStorage& disk, const SeedObjects& objects) {
  std::map<std::string, const testing::SeedObject*> by_path;
  for (const auto& object : objects) by_path[disk.path_for(object.key)] = &object;
  std::vector<std::string> strays;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    const std::string path = entry.path().string();
    auto found = by_path.find(path);
    if (found == by_path.end()) {
      strays.push_back(path + " (" + std::to_string(entry.file_size()) + " bytes) is no object");
      continue;
    }
    const std::string bytes = read_file(path);
    if (bytes.size() != found->second->size || base64_encode(md5_of(bytes)) != found->second->md5) {
      strays.push_back(path + " is partial: " + std::to_string(bytes.size()) + " of " +
                       std::to_string(found->second->size) + " bytes");
    }
  }
  return strays;
}

// The target fills up mid-run: what fits is copied whole, each object that
// does not is recorded failed with reason disk_full, and nothing partial or
// temporary is left on the full disk.
TEST_F(DiskTargetTest, FullDiskFailsEachObjectClearlyAndLeavesNoPartialFile) {
  const std::string source_root = scratch_.file("source");
  const std::string target_root = make_dir(scratch_.file("full"));
  TmpfsMount full(target_root, 2 * kMiB);

  SeedObjects objects = testing::make_seed_objects("", 24, 150 * kKiB, 250 * kKiB, {6 * kMiB + 3}, 17);
  testing::write_seed_objects(objects, DiskStorage(disk_service("source", source_root)));
  // The large one without a checksum, so it streams hashed into one put() (Disk has no multipart).
  const std::string large_key = objects[objects.size() / 2].key;
  ASSERT_EQ(objects[objects.size() / 2].size, 6 * kMiB + 3);
  const std::string manifest = scratch_.file("manifest.csv");
  testing::write_text_file(manifest, testing::manifest_csv(objects, {large_key}));

  BlobferryCli cli(stack_, scratch_.path());
  cli.set_env("BLOBFERRY_STORAGE_CONFIG", config_for("full", source_root, target_root));
  const CliResult enqueued = cli.run({"enqueue", "--migration", "full", "--from", "source", "--to", "target",
                                      "--source", "manifest", "--manifest", manifest});
  ASSERT_EQ(enqueued.exit_code, 0) << enqueued.all();
  const CliResult worked = cli.run({"worker", "--migration", "full", "--exit-when-empty", "--concurrency", "2",
                                    "--part-size-mib", "5"},
                                   3min);
  // The failures are recorded per object in Redis; the worker's own exit says it ran to the end.
  EXPECT_TRUE(worked.exit_code == 0 || worked.exit_code == 1) << testing::last_lines(worked.all(), 20);

  const CliResult report = cli.run({"report", "--migration", "full", "--format", "jsonl", "--failed"});
  ASSERT_EQ(report.exit_code, 0) << report.all();
  std::size_t failed = 0;
  std::istringstream lines(report.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const Json row = Json::parse(line);
    ++failed;
    EXPECT_EQ(row["reason"], "disk_full") << row.dump();
    EXPECT_NE(row["message"].get<std::string>().find("No space left on device"), std::string::npos) << row.dump();
    EXPECT_NE(row["message"].get<std::string>().find(target_root), std::string::npos) << row.dump();
    EXPECT_EQ(row["attempts"], 1) << "a full disk is not retried: " << row.dump();
  }
  const CliResult status_run = cli.run({"status", "--migration", "full", "--json"});
  ASSERT_EQ(status_run.exit_code, 0) << status_run.all();
  const Json status = Json::parse(status_run.out);
  const std::uint64_t copied = status["copied"].get<std::uint64_t>() + status["skipped"].get<std::uint64_t>();
  EXPECT_GT(copied, 0u) << "what fits must be copied: " << status.dump();
  EXPECT_GT(failed, 0u) << "the disk never filled up: " << status.dump();
  EXPECT_EQ(copied + failed, objects.size()) << status.dump();
  EXPECT_EQ(status["failed"], failed) << status.dump();

  const auto strays = stray_files(target_root, DiskStorage(disk_service("target", target_root)), objects);
  EXPECT_TRUE(strays.empty()) << strays.size() << " stray files, first: " << strays.front();
  std::printf("RELIABILITY disk-full: objects %zu (24 of 150-250 KiB + 1 of 6 MiB streamed, MD5 unknown) to a 2 MiB tmpfs; "
              "copied %llu, failed %zu (all disk_full, 1 attempt each), partial or temporary files left %zu, "
              "corrupt 0\n",
              objects.size(), static_cast<unsigned long long>(copied), failed, strays.size());
  std::fflush(stdout);  // the figures show at once, even when stdout is a file
}

// A read-only root stops worker and migrate at start: exit 2 and one line
// naming the service and the path (chmod would not do: root ignores it).
TEST_F(DiskTargetTest, ReadOnlyRootIsAClearErrorAtStart) {
  const std::string source_root = scratch_.file("source");
  const std::string writable_root = make_dir(scratch_.file("writable"));
  const std::string read_only_root = make_dir(scratch_.file("read-only"));
  TmpfsMount read_only(read_only_root, 1 * kMiB);
  read_only.make_read_only();

  SeedObjects objects = testing::make_seed_objects("", 5, 1, 4 * kKiB, {}, 23);
  testing::write_seed_objects(objects, DiskStorage(disk_service("source", source_root)));
  const std::string manifest = scratch_.file("manifest.csv");
  testing::write_text_file(manifest, testing::manifest_csv(objects));

  // Queued while the target was fine; the workers' storage.yml then points it at the read-only disk.
  BlobferryCli cli(stack_, scratch_.path());
  cli.set_env("BLOBFERRY_STORAGE_CONFIG", config_for("writable", source_root, writable_root));
  const CliResult enqueued = cli.run({"enqueue", "--migration", "ro", "--from", "source", "--to", "target",
                                      "--source", "manifest", "--manifest", manifest});
  ASSERT_EQ(enqueued.exit_code, 0) << enqueued.all();
  cli.set_env("BLOBFERRY_STORAGE_CONFIG", config_for("read-only", source_root, read_only_root));

  struct Case {
    const char* name;
    std::vector<std::string> args;
  };
  const std::vector<Case> cases{
      {"worker", {"worker", "--migration", "ro", "--exit-when-empty"}},
      {"migrate", {"migrate", "--from", "source", "--to", "target", "--source", "manifest", "--manifest", manifest}},
  };
  std::string figures;
  for (const Case& c : cases) {
    const CliResult result = cli.run(c.args, 60s);
    EXPECT_EQ(result.exit_code, 2) << c.name << ": " << result.all();
    // The last line is the error; a worker's log lines come before it, the error among them once.
    const auto lines = testing::non_empty_lines(result.err);
    ASSERT_FALSE(lines.empty()) << c.name;
    const std::string& error = lines.back();
    EXPECT_EQ(error.rfind("blobferry: ", 0), 0u) << c.name << ": " << result.err;
    EXPECT_NE(error.find("service target"), std::string::npos) << c.name << " does not name the service: " << error;
    EXPECT_NE(error.find(read_only_root), std::string::npos) << c.name << " does not name the path: " << error;
    EXPECT_NE(error.find("Read-only file system"), std::string::npos) << c.name << ": " << error;
    EXPECT_LE(testing::lines_containing(result.err, "Read-only file system").size(), 2u)
        << c.name << " repeats the error:\n" << result.err;
    figures += std::string(", ") + c.name + " exit " + std::to_string(result.exit_code);
  }
  EXPECT_TRUE(std::filesystem::is_empty(read_only_root));
  std::printf("RELIABILITY disk-read-only: target root on a read-only tmpfs%s, the error naming the service and "
              "path; files written 0\n",
              figures.c_str());
  std::fflush(stdout);  // the figures show at once, even when stdout is a file
}

}  // namespace
}  // namespace blobferry
