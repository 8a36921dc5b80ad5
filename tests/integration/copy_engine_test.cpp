// CopyEngine against real s3rver buckets and Disk roots: copy, skip, verify, multipart, server-side, failures.
#include "worker/copy/copy_engine.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/base/error.h"
#include "common/storage/chunked_writer.h"
#include "common/storage/server_side_copier.h"
#include "common/storage/service_config.h"
#include "common/storage/storage_factory.h"
#include "tests/support/seed_data.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_services.h"
#include "tests/support/test_stack.h"

extern char** environ;

namespace blobferry {
namespace {

using testing::s3rver_service;

using testing::TempDir;
using testing::TestStack;
using testing::md5_base64;
constexpr std::uint64_t kMiB = 1024 * 1024;

// --- helpers -----------------------------------------------------------------



ServiceConfig disk_service(const std::string& root) {
  ServiceConfig service;
  service.name = "local";
  service.kind = ServiceKind::kDisk;
  service.service_type = "Disk";
  service.root = root;
  service.layout = DiskLayout::kPlain;
  return service;
}

std::optional<std::string> read_object(Storage& storage, const std::string& key) {
  std::string bytes;
  auto info = storage.get(key, [&](std::string_view chunk) { bytes.append(chunk); });
  if (!info) return std::nullopt;
  return bytes;
}

void put_object(Storage& storage, const std::string& key, const std::string& bytes, Metadata metadata = {}) {
  MemoryByteSource body(bytes);
  storage.put(key, body, PutOptions{md5_base64(bytes), std::move(metadata)});
}

std::string metadata_value(const Metadata& metadata, const std::string& name) {
  for (const auto& [key, value] : metadata) {
    if (key == name) return value;
  }
  return {};
}

// Every file under dir (relative path -> MD5 of its bytes): proves a tree untouched.
std::map<std::string, std::string> hash_tree(const std::string& dir) {
  std::map<std::string, std::string> hashes;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    const auto relative = std::filesystem::relative(entry.path(), dir).string();
    if (!entry.is_regular_file()) {
      hashes[relative] = "<dir>";
      continue;
    }
    std::ifstream file(entry.path(), std::ios::binary);
    std::stringstream contents;
    contents << file.rdbuf();
    hashes[relative] = hex_encode(md5_of(contents.str()));
  }
  return hashes;
}

std::vector<std::string> files_under(const std::string& dir) {
  std::vector<std::string> files;
  if (!std::filesystem::exists(dir)) return files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(std::filesystem::relative(entry.path(), dir).string());
  }
  return files;
}

CopyEngineOptions fast_options(std::atomic<int>* sleeps = nullptr) {
  CopyEngineOptions options;
  options.retry_policy = RetryPolicy({}, 42, [sleeps](std::chrono::milliseconds) {
    if (sleeps) ++*sleeps;
  });
  return options;
}

// A Storage that forwards to another and lets a test inject faults and watch
// the calls, standing in for a flaky network or a misbehaving server. It has
// exactly the optional capabilities of the storage it wraps.
class FaultyStorage final : public Storage, public ChunkedWriter, public ServerSideCopier {
 public:
  explicit FaultyStorage(Storage& inner) : inner_(inner), inner_can_(inner.capabilities()) {}

  // Called with each get's range and the chunks' sink; may throw or alter chunks.
  std::function<void(const std::optional<ByteRange>&, std::string& chunk, int call)> on_get_chunk;
  std::function<void(int part_number)> on_upload_part;
  std::function<void(ObjectInfo&)> on_head;
  std::function<void(int call)> before_complete;
  std::function<void(int call)> after_complete;
  // A provider's limits (R2's, scaled down), reported as this target's and
  // enforced as that provider would: 400 EntityTooLarge for a larger request.
  std::optional<SizeLimits> limits;

  std::string describe() const override { return inner_.describe(); }
  void check(Access access = Access::kWrite) override { inner_.check(access); }
  std::optional<ObjectInfo> head(const std::string& key) override {
    auto info = inner_.head(key);
    if (info && on_head) on_head(*info);
    return info;
  }
  std::optional<ObjectInfo> get(const std::string& key, const ByteSink& sink,
                                std::optional<ByteRange> range) override {
    const int call = ++gets;
    if (!on_get_chunk) return inner_.get(key, sink, range);
    return inner_.get(
        key,
        [&](std::string_view chunk) {
          std::string copy(chunk);
          on_get_chunk(range, copy, call);
          sink(copy);
        },
        range);
  }
  std::string put(const std::string& key, ByteSource& body, const PutOptions& options) override {
    ++puts;
    if (limits) refuse_over(body.size(), limits->max_single_put, "PUT");
    if (dynamic_cast<MemoryByteSource*>(&body) != nullptr) ++buffered_puts;
    return inner_.put(key, body, options);
  }
  ListPage list(const ListRequest& request) override { return inner_.list(request); }
  StorageCapabilities capabilities() override {
    return {inner_can_.chunked_writer ? this : nullptr, inner_can_.server_side_copier ? this : nullptr};
  }
  std::string create_multipart(const std::string& key, const PutOptions& options) override {
    std::string id = inner_can_.chunked_writer->create_multipart(key, options);
    std::lock_guard lock(mutex_);
    created.push_back(id);
    return id;
  }
  std::string upload_part(const std::string& key, const std::string& upload_id, int part_number,
                          ByteSource& body, const std::string& content_md5) override {
    if (on_upload_part) on_upload_part(part_number);
    ++parts;
    if (limits) {
      refuse_over(body.size(), limits->max_part_size, "UploadPart");
      refuse_over(static_cast<std::uint64_t>(part_number), limits->max_parts, "UploadPart number");
    }
    return inner_can_.chunked_writer->upload_part(key, upload_id, part_number, body, content_md5);
  }
  std::string complete_multipart(const std::string& key, const std::string& upload_id,
                                 const std::vector<CompletedPart>& completed) override {
    const int call = ++completes;
    if (before_complete) before_complete(call);
    std::string etag = inner_can_.chunked_writer->complete_multipart(key, upload_id, completed);
    if (after_complete) after_complete(call);
    return etag;
  }
  void abort_multipart(const std::string& key, const std::string& upload_id) override {
    {
      std::lock_guard lock(mutex_);
      aborted.push_back(upload_id);
    }
    // s3rver 3.7 answers an abort with 405; the call is what this test checks.
    try {
      inner_can_.chunked_writer->abort_multipart(key, upload_id);
    } catch (const Error&) {
    }
  }
  std::vector<CompletedPart> list_parts(const std::string& key, const std::string& upload_id) override {
    return inner_can_.chunked_writer->list_parts(key, upload_id);
  }
  bool can_copy_from(const Storage& source) const override {
    return inner_can_.server_side_copier->can_copy_from(source);
  }
  std::string copy_object(const Storage& source, const std::string& source_key, const std::string& key,
                          const CopyOptions& options = {}) override {
    ++copy_objects;
    if (limits) {
      // The source's size, as the provider would check it (a test-only HEAD).
      const auto there = const_cast<Storage&>(source).head(source_key);
      refuse_over(there ? there->size : 0, limits->max_single_copy, "CopyObject");
    }
    return inner_can_.server_side_copier->copy_object(source, source_key, key, options);
  }
  std::string copy_part(const Storage& source, const std::string& source_key, const std::string& key,
                        const std::string& upload_id, int part_number, ByteRange range,
                        const CopyOptions& options = {}) override {
    ++copy_parts;
    if (limits) {
      refuse_over(range.last - range.first + 1, std::min(limits->max_single_copy, limits->max_part_size), "UploadPartCopy");
      refuse_over(static_cast<std::uint64_t>(part_number), limits->max_parts, "UploadPartCopy number");
    }
    return inner_can_.server_side_copier->copy_part(source, source_key, key, upload_id, part_number, range,
                                                    options);
  }

  SizeLimits size_limits() const override {
    if (limits) return *limits;
    return inner_can_.chunked_writer ? inner_can_.chunked_writer->size_limits() : SizeLimits{};
  }

  std::atomic<int> gets{0}, puts{0}, buffered_puts{0}, parts{0}, completes{0}, copy_objects{0}, copy_parts{0};
  std::vector<std::string> created, aborted;

 private:
  static void refuse_over(std::uint64_t amount, std::uint64_t limit, const char* what) {
    if (amount <= limit) return;
    throw Error(ErrorKind::kPermanent, FailureReason::kTooLarge,
                std::string(what) + ": " + std::to_string(amount) + " over the limit " + std::to_string(limit) +
                    " (EntityTooLarge)",
                400);
  }

  Storage& inner_;
  const StorageCapabilities inner_can_;
  std::mutex mutex_;
};

// A private s3rver with two buckets, for server-side copies (the stack's two
// servers are separate "accounts"). Stopped by pid.
class S3rverProcess {
 public:
  S3rverProcess(const std::string& dir, const std::vector<std::string>& buckets) {
    port_ = free_port();
    std::vector<std::string> args{BLOBFERRY_SOURCE_DIR "/.deps/node_modules/.bin/s3rver",
                                  "--directory", dir, "--port", std::to_string(port_),
                                  "--address", "127.0.0.1", "--silent"};
    for (const auto& bucket : buckets) {
      args.push_back("--configure-bucket");
      args.push_back(bucket);
    }
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    ::setenv("NODE_OPTIONS", "--openssl-legacy-provider", 1);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    const int failed = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (failed != 0) throw std::runtime_error("cannot start s3rver");
  }
  ~S3rverProcess() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  S3rverProcess(const S3rverProcess&) = delete;
  S3rverProcess& operator=(const S3rverProcess&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  static int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ::close(fd);
      throw std::runtime_error("no free port");
    }
    ::close(fd);
    return ntohs(address.sin_port);
  }

  pid_t pid_ = -1;
  int port_ = 0;
};

void wait_until_ready(Storage& storage) {
  for (int i = 0; i < 150; ++i) {
    try {
      storage.check();
      return;
    } catch (const Error&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  storage.check();
}

// A private s3rver with buckets alpha and beta: one account, so copies
// between them can be server-side.
struct SameServerBuckets {
  SameServerBuckets() { wait_until_ready(*alpha); }

  TempDir dir{"blobferry-s3rver"};
  S3rverProcess server{dir.path(), {"alpha", "beta"}};
  std::unique_ptr<Storage> alpha = open_storage(s3rver_service("alpha", server.endpoint()));
  std::unique_ptr<Storage> beta = open_storage(s3rver_service("beta", server.endpoint()));
};

// --- fixture -------------------------------------------------------------------

const std::string kPlainKey = "small/plain.txt";
const std::string kPlainBody = "hello blobferry, one small object\n";
const std::string kRandomKey = "small/random.bin";
const std::string kLargeKey = "large/20mib.bin";
const std::string kEmptyKey = "empty";
const std::string kOddKey = "odd dir/spaces ünïcødé + plus & amp=eq %25 #hash ~tilde(1).txt";

class CopyEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ::unsetenv("AWS_CA_BUNDLE");
    stack_ = new TestStack({.s3 = true});
    source_ = open_storage(s3rver_service("source", stack_->env("S3_SOURCE_ENDPOINT"))).release();
    target_ = open_storage(s3rver_service("target", stack_->env("S3_TARGET_ENDPOINT"))).release();
    random_ = new std::string(testing::seeded_bytes(100 * 1024, 1));
    large_ = new std::string(testing::seeded_bytes(20 * kMiB, 2));
    put_object(*source_, kPlainKey, kPlainBody,
               {{"content-type", "text/plain"},
                {"content-disposition", "attachment; filename=\"plain.txt\""},
                {"cache-control", "max-age=60"},
                {"content-language", "en"},
                {"x-amz-meta-origin", "fixture"}});
    put_object(*source_, kRandomKey, *random_, {{"content-type", "application/octet-stream"}});
    put_object(*source_, kLargeKey, *large_, {{"content-type", "application/x-large"}});
    put_object(*source_, kEmptyKey, "");
    put_object(*source_, kOddKey, "odd key body");
    source_snapshot_ = new std::map<std::string, std::string>(hash_tree(stack_->env("S3_SOURCE_DIR")));
  }

  static void TearDownTestSuite() {
    delete source_snapshot_;
    delete large_;
    delete random_;
    delete target_;
    delete source_;
    delete stack_;
  }

  // A target key of this test's own, so tests never see each other's objects.
  std::string fresh_key(const std::string& base) const {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    return std::string(info->name()) + "/" + base;
  }

  static TestStack* stack_;
  static Storage* source_;
  static Storage* target_;
  static std::string* random_;
  static std::string* large_;
  static std::map<std::string, std::string>* source_snapshot_;
};

TestStack* CopyEngineTest::stack_ = nullptr;
Storage* CopyEngineTest::source_ = nullptr;
Storage* CopyEngineTest::target_ = nullptr;
std::string* CopyEngineTest::random_ = nullptr;
std::string* CopyEngineTest::large_ = nullptr;
std::map<std::string, std::string>* CopyEngineTest::source_snapshot_ = nullptr;

// --- small objects -----------------------------------------------------------

TEST_F(CopyEngineTest, CopiesSmallObjectWithExpectedChecksumKeepingMetadata) {
  const CopyEngine engine(fast_options());
  const std::string key = fresh_key("plain.txt");
  const CopyResult result =
      engine.copy({*source_, *target_, kPlainKey, key, kPlainBody.size(), md5_base64(kPlainBody), ""});

  EXPECT_EQ(result.status, CopyResult::Status::kCopied);
  EXPECT_EQ(result.bytes, kPlainBody.size());
  EXPECT_EQ(result.md5, md5_base64(kPlainBody));
  EXPECT_EQ(result.attempts, 1);
  EXPECT_FALSE(result.server_side);
  EXPECT_EQ(read_object(*target_, key), kPlainBody);
  const auto landed = target_->head(key);
  ASSERT_TRUE(landed);
  EXPECT_EQ(landed->etag, hex_encode(md5_of(kPlainBody)));
  EXPECT_EQ(metadata_value(landed->metadata, "content-type"), "text/plain");
  EXPECT_EQ(metadata_value(landed->metadata, "content-disposition"), "attachment; filename=\"plain.txt\"");
  EXPECT_EQ(metadata_value(landed->metadata, "cache-control"), "max-age=60");
  EXPECT_EQ(metadata_value(landed->metadata, "content-language"), "en");
  EXPECT_EQ(metadata_value(landed->metadata, "x-amz-meta-origin"), "fixture");
  // The ETag proves the MD5: the source's headers are kept exactly, none added.
  EXPECT_EQ(metadata_value(landed->metadata, "x-amz-meta-blobferry-md5"), "");
}

TEST_F(CopyEngineTest, CopiesSmallObjectKnowingNothingAboutIt) {
  const CopyEngine engine(fast_options());
  const std::string key = fresh_key("random.bin");
  const CopyResult result = engine.copy({*source_, *target_, kRandomKey, key, std::nullopt, "", ""});

  EXPECT_EQ(result.status, CopyResult::Status::kCopied);
  EXPECT_EQ(result.bytes, random_->size());
  EXPECT_EQ(result.md5, md5_base64(*random_));
  EXPECT_EQ(read_object(*target_, key), *random_);
}

TEST_F(CopyEngineTest, ContentTypeOfTheTaskOverridesTheSources) {
  const CopyEngine engine(fast_options());
  const std::string key = fresh_key("plain.txt");
  engine.copy({*source_, *target_, kPlainKey, key, std::nullopt, "", "text/markdown"});
  const auto landed = target_->head(key);
  ASSERT_TRUE(landed);
  EXPECT_EQ(metadata_value(landed->metadata, "content-type"), "text/markdown");
  EXPECT_EQ(metadata_value(landed->metadata, "x-amz-meta-origin"), "fixture");
}

TEST_F(CopyEngineTest, SecondCopyIsASkip) {
  std::atomic<int> sleeps{0};
  const CopyEngine engine(fast_options(&sleeps));
  FaultyStorage watched_target(*target_);
  const std::string key = fresh_key("random.bin");
  const CopyTask task{*source_, watched_target, kRandomKey, key, random_->size(), md5_base64(*random_), ""};
  ASSERT_EQ(engine.copy(task).status, CopyResult::Status::kCopied);
  ASSERT_EQ(watched_target.puts, 1);

  const CopyResult again = engine.copy(task);
  EXPECT_EQ(again.status, CopyResult::Status::kSkipped);
  EXPECT_EQ(again.bytes, random_->size());
  EXPECT_EQ(again.md5, md5_base64(*random_));
  EXPECT_EQ(again.attempts, 1);
  EXPECT_EQ(watched_target.puts, 1);

  // Without a checksum in the task, the source's single-part ETag proves it.
  const CopyResult blind = engine.copy({*source_, watched_target, kRandomKey, key, std::nullopt, "", ""});
  EXPECT_EQ(blind.status, CopyResult::Status::kSkipped);
  EXPECT_EQ(watched_target.puts, 1);
  EXPECT_EQ(sleeps, 0);
}

TEST_F(CopyEngineTest, TargetWithSameSizeButOtherBytesIsCopiedAgain) {
  const CopyEngine engine(fast_options());
  const std::string key = fresh_key("plain.txt");
  std::string impostor = kPlainBody;
  impostor[0] = 'J';
  put_object(*target_, key, impostor);

  const CopyResult result =
      engine.copy({*source_, *target_, kPlainKey, key, kPlainBody.size(), md5_base64(kPlainBody), ""});
  EXPECT_EQ(result.status, CopyResult::Status::kCopied);
  EXPECT_EQ(read_object(*target_, key), kPlainBody);
}

TEST_F(CopyEngineTest, WrongExpectedChecksumIsIntegrityAfterRetriesAndWritesNothing) {
  std::atomic<int> sleeps{0};
  const CopyEngine engine(fast_options(&sleeps));
  FaultyStorage watched_source(*source_);
  const std::string key = fresh_key("plain.txt");
  try {
    engine.copy({watched_source, *target_, kPlainKey, key, kPlainBody.size(), md5_base64("something else"), ""});
    FAIL() << "a wrong checksum was accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kIntegrity);
    EXPECT_NE(std::string(error.what()).find(kPlainKey), std::string::npos) << error.what();
  }
  EXPECT_EQ(watched_source.gets, 3);  // the first try and two in-place retries
  EXPECT_EQ(sleeps, 2);
  EXPECT_FALSE(target_->head(key));
}

TEST_F(CopyEngineTest, WrongExpectedSizeIsIntegrity) {
  const CopyEngine engine(fast_options());
  const std::string key = fresh_key("plain.txt");
  for (std::uint64_t size : {kPlainBody.size() + 1, kPlainBody.size() - 1}) {
    try {
      engine.copy({*source_, *target_, kPlainKey, key, size, "", ""});
      FAIL() << "size " << size << " was accepted";
    } catch (const Error& error) {
      EXPECT_EQ(error.kind(), ErrorKind::kIntegrity) << error.what();
    }
  }
  // Larger than the multipart threshold: found by the source's HEAD.
  try {
    engine.copy({*source_, *target_, kPlainKey, key, 100 * kMiB, "", ""});
    FAIL() << "100 MiB was accepted";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kIntegrity) << error.what();
  }
  EXPECT_FALSE(target_->head(key));
}

TEST_F(CopyEngineTest, MissingSourceIsPermanentNotFoundAtOnce) {
  std::atomic<int> sleeps{0};
  const CopyEngine engine(fast_options(&sleeps));
  const std::string missing = "no/such/key.bin";
  for (std::optional<std::uint64_t> size : {std::optional<std::uint64_t>{}, std::optional<std::uint64_t>{10}}) {
    try {
      engine.copy({*source_, *target_, missing, fresh_key("missing"), size, "", ""});
      FAIL() << "a missing source was copied";
    } catch (const Error& error) {
      EXPECT_EQ(error.kind(), ErrorKind::kPermanent);
      EXPECT_EQ(error.reason(), "not_found");
      EXPECT_NE(std::string(error.what()).find(missing), std::string::npos) << error.what();
    }
  }
  EXPECT_EQ(sleeps, 0);
}

TEST_F(CopyEngineTest, MalformedExpectedChecksumIsPermanent) {
  const CopyEngine engine(fast_options());
  try {
    engine.copy({*source_, *target_, kPlainKey, fresh_key("x"), std::nullopt, "not-a-checksum", ""});
    FAIL();
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kPermanent);
  }
}

TEST_F(CopyEngineTest, TransientFailureAndTruncatedBodyAreRetriedInPlace) {
  std::atomic<int> sleeps{0};
  const CopyEngine engine(fast_options(&sleeps));
  FaultyStorage flaky(*source_);
  flaky.on_get_chunk = [](const std::optional<ByteRange>&, std::string& chunk, int call) {
    if (call == 1) throw Error(ErrorKind::kTransient, FailureReason::kNetwork, "connection reset (injected)");
    if (call == 2) chunk.resize(chunk.size() / 2);  // a body cut short
  };
  const std::string key = fresh_key("random.bin");
  const CopyResult result = engine.copy({flaky, *target_, kRandomKey, key, random_->size(), "", ""});
  EXPECT_EQ(result.status, CopyResult::Status::kCopied);
  EXPECT_EQ(result.attempts, 3);
  EXPECT_EQ(sleeps, 2);
  EXPECT_EQ(read_object(*target_, key), *random_);
}

TEST_F(CopyEngineTest, FlippedByteIsCaughtByTheSourceETagAndRetried) {
  const CopyEngine engine(fast_options());
  FaultyStorage flipping(*source_);
  flipping.on_get_chunk = [](const std::optional<ByteRange>&, std::string& chunk, int call) {
    if (call == 1 && !chunk.empty()) chunk[chunk.size() / 2] ^= 0x01;
  };
  const std::string key = fresh_key("random.bin");
  // Neither size nor checksum known: the expected MD5 is the source's ETag.
  const CopyResult result = engine.copy({flipping, *target_, kRandomKey, key, std::nullopt, "", ""});
  EXPECT_EQ(result.attempts, 2);
  EXPECT_EQ(result.md5, md5_base64(*random_));
  EXPECT_EQ(read_object(*target_, key), *random_);
}

TEST_F(CopyEngineTest, FlippedByteEveryTimeNeverLands) {
  const CopyEngine engine(fast_options());
  FaultyStorage flipping(*source_);
  flipping.on_get_chunk = [](const std::optional<ByteRange>&, std::string& chunk, int) {
    if (!chunk.empty()) chunk[0] ^= 0x01;
  };
  const std::string key = fresh_key("random.bin");
  EXPECT_THROW(engine.copy({flipping, *target_, kRandomKey, key, random_->size(), md5_base64(*random_), ""}),
               Error);
  EXPECT_FALSE(target_->head(key));
}

TEST_F(CopyEngineTest, EmptyObject) {
  const CopyEngine engine(fast_options());
  const std::string key = fresh_key("empty");
  const CopyResult result = engine.copy({*source_, *target_, kEmptyKey, key, std::nullopt, "", ""});
  EXPECT_EQ(result.status, CopyResult::Status::kCopied);
  EXPECT_EQ(result.bytes, 0u);
  EXPECT_EQ(result.md5, "1B2M2Y8AsgTpgAmY7PhCfg==");
  const auto landed = target_->head(key);
  ASSERT_TRUE(landed);
  EXPECT_EQ(landed->size, 0u);
  EXPECT_EQ(engine.copy({*source_, *target_, kEmptyKey, key, 0, "1B2M2Y8AsgTpgAmY7PhCfg==", ""}).status,
            CopyResult::Status::kSkipped);
}

TEST_F(CopyEngineTest, KeyWithOddCharacters) {
  const CopyEngine engine(fast_options());
  const CopyResult result = engine.copy({*source_, *target_, kOddKey, kOddKey, std::nullopt, "", ""});
  EXPECT_EQ(result.status, CopyResult::Status::kCopied);
  EXPECT_EQ(read_object(*target_, kOddKey), "odd key body");
  EXPECT_EQ(engine.copy({*source_, *target_, kOddKey, kOddKey, std::nullopt, "", ""}).status,
            CopyResult::Status::kSkipped);
}

TEST_F(CopyEngineTest, RefusesToCopyAnObjectOntoItself) {
  const CopyEngine engine(fast_options());
  auto same_bucket = open_storage(s3rver_service("source", stack_->env("S3_SOURCE_ENDPOINT")));
  for (Storage* target : {source_, same_bucket.get()}) {
    try {
      engine.copy({*source_, *target, kPlainKey, kPlainKey, std::nullopt, "", ""});
      FAIL() << "copied onto itself";
    } catch (const Error& error) {
      EXPECT_EQ(error.kind(), ErrorKind::kConfig);
      EXPECT_NE(std::string(error.what()).find("source and target are the same object"), std::string::npos);
    }
  }
}

TEST_F(CopyEngineTest, ConcurrentCopiesShareOneEngine) {
  const CopyEngine engine(fast_options());
  std::vector<std::string> keys;
  for (int t = 0; t < 6; ++t) keys.push_back(fresh_key(std::to_string(t)));
  std::vector<std::thread> threads;
  std::atomic<int> copied{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      const std::string& key = t % 2 ? kRandomKey : kPlainKey;
      const auto result = engine.copy({*source_, *target_, key, keys[t], std::nullopt, "", ""});
      if (result.status == CopyResult::Status::kCopied) ++copied;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(copied, 6);
  for (int t = 0; t < 6; ++t) EXPECT_EQ(read_object(*target_, keys[t]), t % 2 ? *random_ : kPlainBody);
}

// --- multipart ---------------------------------------------------------------

CopyEngineOptions multipart_options(std::atomic<int>* sleeps = nullptr) {
  CopyEngineOptions options = fast_options(sleeps);
  options.part_size = 5 * kMiB;
  options.stream_large = false;  // these tests are about the multipart path
  return options;
}

CopyEngineOptions streaming_options() {
  CopyEngineOptions options = fast_options();
  options.part_size = 5 * kMiB;
  options.stream_buffer = 64 * 1024;  // many wraps of the ring for a 20 MiB object
  return options;
}

TEST_F(CopyEngineTest, LargeObjectWithKnownMd5StreamsAsOnePut) {
  const CopyEngine engine(streaming_options());
  FaultyStorage watched_target(*target_);
  const std::string key = fresh_key("20mib-streamed.bin");
  const CopyResult result =
      engine.copy({*source_, watched_target, kLargeKey, key, large_->size(), md5_base64(*large_), ""});
  EXPECT_EQ(result.status, CopyResult::Status::kCopied);
  EXPECT_EQ(result.bytes, large_->size());
  EXPECT_EQ(watched_target.puts, 1);
  EXPECT_TRUE(watched_target.created.empty()) << "went multipart";
  EXPECT_EQ(read_object(*target_, key), *large_);
  const auto landed = target_->head(key);
  ASSERT_TRUE(landed);
  EXPECT_EQ(metadata_value(landed->metadata, "content-type"), "application/x-large");
  EXPECT_EQ(engine.copy({*source_, *target_, kLargeKey, key, large_->size(), md5_base64(*large_), ""}).status,
            CopyResult::Status::kSkipped);
}

// R2's limits, scaled to this test's 20 MiB object: 5 MiB less than 24 MiB
// for a PUT, a part and a copy, as R2's are 5 MiB less than 5 GiB. The
// object, 4 MiB less than 24 MiB, is over them as 5 GiB - 4 MiB is over R2's.
SizeLimits scaled_r2(std::uint64_t max_parts = 10'000) {
  return SizeLimits{19 * kMiB, 19 * kMiB, max_parts, 19 * kMiB};
}

TEST_F(CopyEngineTest, ObjectOverTheTargetsLargestPutGoesMultipartInPartsItAccepts) {
  {  // Streamed otherwise (known MD5): multipart in the configured 5 MiB parts.
    const CopyEngine engine(streaming_options());
    FaultyStorage r2(*target_);
    r2.limits = scaled_r2();
    const std::string key = fresh_key("over-put.bin");
    const CopyResult result = engine.copy({*source_, r2, kLargeKey, key, large_->size(), md5_base64(*large_), ""});
    EXPECT_EQ(result.bytes, large_->size());
    EXPECT_EQ(r2.puts, 0) << "one PUT over the target's largest";
    EXPECT_EQ(r2.parts, 4);
    EXPECT_EQ(read_object(*target_, key), *large_);
  }
  {  // Configured parts larger than the target's largest part are capped at it.
    CopyEngineOptions options = fast_options();
    options.part_size = 32 * kMiB;  // would take the 20 MiB object in one PUT
    const CopyEngine engine(options);
    FaultyStorage r2(*target_);
    r2.limits = scaled_r2();
    const std::string key = fresh_key("capped-parts.bin");
    engine.copy({*source_, r2, kLargeKey, key, large_->size(), md5_base64(*large_), ""});
    EXPECT_EQ(r2.puts, 0);
    EXPECT_EQ(r2.parts, 2) << "19 MiB and 1 MiB";
    EXPECT_EQ(read_object(*target_, key), *large_);
  }
  {  // A part count the target caps: the parts grow instead.
    const CopyEngine engine(multipart_options());
    FaultyStorage r2(*target_);
    r2.limits = scaled_r2(3);
    const std::string key = fresh_key("few-parts.bin");
    engine.copy({*source_, r2, kLargeKey, key, large_->size(), md5_base64(*large_), ""});
    EXPECT_EQ(r2.parts, 3) << "5 MiB parts would be 4";
    EXPECT_EQ(read_object(*target_, key), *large_);
  }
}

TEST_F(CopyEngineTest, StreamedCopyOfCorruptedBytesNeverLands) {
  TempDir root("blobferry-disk");
  auto disk = open_storage(disk_service(root.path()));  // Disk verifies Content-MD5 before renaming
  const CopyEngine engine(streaming_options());
  FaultyStorage flipping(*source_);
  // Every download flips one byte in the middle of the stream (after many
  // chunks have already gone into the PUT).
  std::atomic<std::uint64_t> seen{0};
  flipping.on_get_chunk = [&seen](const std::optional<ByteRange>&, std::string& chunk, int) {
    const std::uint64_t before = seen.fetch_add(chunk.size()) % (20 * kMiB);
    if (before < 10 * kMiB && before + chunk.size() >= 10 * kMiB && !chunk.empty()) chunk[0] ^= 0x01;
  };
  try {
    engine.copy({flipping, *disk, kLargeKey, "large/copy.bin", large_->size(), md5_base64(*large_), ""});
    FAIL() << "a corrupted stream was counted as copied";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIntegrity) << e.what();
  }
  EXPECT_FALSE(disk->head("large/copy.bin"));
}

TEST_F(CopyEngineTest, StreamedCopyOfAMissingSourceIsNotFound) {
  const CopyEngine engine(streaming_options());
  FaultyStorage vanishing(*source_);
  vanishing.on_head = [](ObjectInfo&) {};
  try {
    engine.copy({*source_, *target_, "large/gone.bin", fresh_key("gone.bin"), 20 * kMiB, md5_base64(*large_), ""});
    FAIL() << "copied an object that does not exist";
  } catch (const Error& e) {
    EXPECT_EQ(e.reason(), "not_found") << e.what();
  }
}

TEST_F(CopyEngineTest, LargeObjectGoesMultipartArrivesIntactAndIsSkippedByItsMd5Metadata) {
  const CopyEngine engine(multipart_options());
  FaultyStorage watched_target(*target_);
  // Real S3 gives a multipart object an ETag that is no MD5; s3rver does not, so pretend.
  watched_target.on_head = [](ObjectInfo& info) { info.etag = "0123456789abcdef0123456789abcdef-4"; };
  const std::string key = fresh_key("20mib.bin");
  const CopyTask task{*source_, watched_target, kLargeKey, key, std::nullopt, "", ""};

  const CopyResult result = engine.copy(task);
  EXPECT_EQ(result.status, CopyResult::Status::kCopied);
  EXPECT_EQ(result.bytes, large_->size());
  EXPECT_EQ(result.md5, md5_base64(*large_));
  EXPECT_EQ(watched_target.created.size(), 1u);
  EXPECT_EQ(watched_target.parts, 4);
  EXPECT_EQ(watched_target.completes, 1);
  EXPECT_EQ(watched_target.puts, 0);
  EXPECT_TRUE(watched_target.aborted.empty());

  const auto landed = target_->head(key);
  ASSERT_TRUE(landed);
  EXPECT_EQ(landed->size, large_->size());
  EXPECT_EQ(metadata_value(landed->metadata, "x-amz-meta-blobferry-md5"), md5_base64(*large_));
  EXPECT_EQ(metadata_value(landed->metadata, "content-type"), "application/x-large");
  const auto bytes = read_object(*target_, key);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(md5_base64(*bytes), md5_base64(*large_));

  const CopyResult again = engine.copy(task);
  EXPECT_EQ(again.status, CopyResult::Status::kSkipped);
  EXPECT_EQ(watched_target.created.size(), 1u);
}

TEST_F(CopyEngineTest, LargeObjectWithBlobChecksumAndSize) {
  const CopyEngine engine(multipart_options());
  const std::string key = fresh_key("20mib.bin");
  const CopyResult result =
      engine.copy({*source_, *target_, kLargeKey, key, large_->size(), md5_base64(*large_), "video/mp4"});
  EXPECT_EQ(result.status, CopyResult::Status::kCopied);
  const auto landed = target_->head(key);
  ASSERT_TRUE(landed);
  EXPECT_EQ(metadata_value(landed->metadata, "content-type"), "video/mp4");
  EXPECT_EQ(metadata_value(landed->metadata, "x-amz-meta-blobferry-md5"), md5_base64(*large_));
}

TEST_F(CopyEngineTest, CorruptedPartAbortsTheUploadAndLeavesNoObject) {
  const CopyEngine engine(multipart_options());
  FaultyStorage flipping(*source_);
  flipping.on_get_chunk = [](const std::optional<ByteRange>& range, std::string& chunk, int) {
    if (range && range->first == 5 * kMiB && !chunk.empty()) chunk[0] ^= 0x20;
  };
  FaultyStorage watched_target(*target_);
  const std::string key = fresh_key("20mib.bin");
  try {
    engine.copy({flipping, watched_target, kLargeKey, key, std::nullopt, "", ""});
    FAIL() << "a corrupted part was completed";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kIntegrity) << error.what();
  }
  ASSERT_EQ(watched_target.created.size(), 1u);
  EXPECT_EQ(watched_target.aborted, watched_target.created);
  EXPECT_EQ(watched_target.completes, 0);
  EXPECT_FALSE(target_->head(key));
}

TEST_F(CopyEngineTest, RejectedPartAbortsTheUploadAndLeavesNoObject) {
  std::atomic<int> sleeps{0};
  const CopyEngine engine(multipart_options(&sleeps));
  FaultyStorage rejecting(*target_);
  rejecting.on_upload_part = [](int number) {
    if (number == 3) throw Error(ErrorKind::kPermanent, FailureReason::kInvalidDigest, "upload_part 3: BadDigest (injected)", 400);
  };
  const std::string key = fresh_key("20mib.bin");
  try {
    engine.copy({*source_, rejecting, kLargeKey, key, large_->size(), md5_base64(*large_), ""});
    FAIL() << "a rejected part was completed";
  } catch (const Error& error) {
    EXPECT_EQ(error.reason(), "invalid_digest");
  }
  EXPECT_EQ(rejecting.parts, 2);
  ASSERT_EQ(rejecting.created.size(), 1u);
  EXPECT_EQ(rejecting.aborted, rejecting.created);
  EXPECT_EQ(sleeps, 0);
  EXPECT_FALSE(target_->head(key));
}

TEST_F(CopyEngineTest, SourceChangingMidCopyIsIntegrity) {
  const CopyEngine engine(multipart_options());
  FaultyStorage changing(*source_);
  changing.on_head = [](ObjectInfo& info) { info.etag = "ffffffffffffffffffffffffffffffff"; };
  FaultyStorage watched_target(*target_);
  const std::string key = fresh_key("20mib.bin");
  EXPECT_THROW(engine.copy({changing, watched_target, kLargeKey, key, std::nullopt, md5_base64(*large_), ""}),
               Error);
  EXPECT_EQ(watched_target.aborted, watched_target.created);
  EXPECT_FALSE(target_->head(key));
}

// --- server-side and Disk -----------------------------------------------------

TEST_F(CopyEngineTest, ServerSideCopyBetweenBucketsOfOneServer) {
  SameServerBuckets buckets;
  auto& alpha = buckets.alpha;
  auto& beta = buckets.beta;
  ServerSideCopier* copier = beta->capabilities().server_side_copier;
  ASSERT_NE(copier, nullptr) << beta->describe();
  ASSERT_TRUE(copier->can_copy_from(*alpha)) << beta->describe() << " cannot read " << alpha->describe();
  put_object(*alpha, "doc.pdf", *random_, {{"content-type", "application/pdf"}, {"x-amz-meta-origin", "alpha"}});

  std::atomic<int> sleeps{0};
  const CopyEngine engine(fast_options(&sleeps));
  const CopyResult result =
      engine.copy({*alpha, *beta, "doc.pdf", "doc.pdf", random_->size(), md5_base64(*random_), ""});
  EXPECT_EQ(result.status, CopyResult::Status::kCopied);
  EXPECT_TRUE(result.server_side);
  EXPECT_EQ(result.md5, md5_base64(*random_));
  EXPECT_EQ(read_object(*beta, "doc.pdf"), *random_);
  const auto landed = beta->head("doc.pdf");
  ASSERT_TRUE(landed);
  EXPECT_EQ(metadata_value(landed->metadata, "content-type"), "application/pdf");
  EXPECT_EQ(metadata_value(landed->metadata, "x-amz-meta-origin"), "alpha");
  EXPECT_EQ(engine.copy({*alpha, *beta, "doc.pdf", "doc.pdf", std::nullopt, "", ""}).status,
            CopyResult::Status::kSkipped);

  // A different content type cannot be set by a copy: streamed instead.
  const CopyResult retyped =
      engine.copy({*alpha, *beta, "doc.pdf", "retyped.pdf", std::nullopt, "", "application/x-pdf"});
  EXPECT_FALSE(retyped.server_side);
  const auto retyped_head = beta->head("retyped.pdf");
  ASSERT_TRUE(retyped_head);
  EXPECT_EQ(metadata_value(retyped_head->metadata, "content-type"), "application/x-pdf");

  CopyEngineOptions streaming = fast_options();
  streaming.server_side_copy = false;
  const CopyResult streamed =
      CopyEngine(std::move(streaming)).copy({*alpha, *beta, "doc.pdf", "streamed.pdf", std::nullopt, "", ""});
  EXPECT_FALSE(streamed.server_side);
  EXPECT_EQ(read_object(*beta, "streamed.pdf"), *random_);
  EXPECT_EQ(sleeps, 0);

  // The stack's two servers are separate accounts: never server-side.
  EXPECT_FALSE(target_->capabilities().server_side_copier->can_copy_from(*source_));
}

// Over the target's CopyObject limit a server-side copy goes in parts
// (UploadPartCopy) of at most that size; s3rver cannot copy parts, so it
// refuses them and the bytes are streamed (in parts the target accepts).
TEST_F(CopyEngineTest, ServerSideCopyOverTheTargetsCopyLimitIsNeverOneCopyObject) {
  SameServerBuckets buckets;
  auto& alpha = buckets.alpha;
  auto& beta = buckets.beta;
  put_object(*alpha, "large.bin", *large_);
  FaultyStorage r2(*beta);
  r2.limits = scaled_r2();
  const CopyEngine engine(fast_options());
  const CopyResult result = engine.copy({*alpha, r2, "large.bin", "large.bin", large_->size(), md5_base64(*large_), ""});
  EXPECT_EQ(r2.copy_objects, 0);
  EXPECT_GE(r2.copy_parts, 1) << "UploadPartCopy tried first";
  EXPECT_EQ(result.bytes, large_->size());
  EXPECT_EQ(read_object(*beta, "large.bin"), *large_);
  // Under the limit the same object is one CopyObject.
  FaultyStorage aws(*beta);
  const CopyResult single =
      engine.copy({*alpha, aws, "large.bin", "single.bin", large_->size(), md5_base64(*large_), ""});
  EXPECT_TRUE(single.server_side);
  EXPECT_EQ(aws.copy_objects, 1);
  EXPECT_EQ(aws.copy_parts, 0);
}

TEST_F(CopyEngineTest, DiskToS3) {
  TempDir root("blobferry-disk");
  auto disk = open_storage(disk_service(root.path()));
  put_object(*disk, "uploads/photo.jpg", *random_);
  const CopyEngine engine(fast_options());
  const std::string key = fresh_key("photo.jpg");
  const CopyResult result =
      engine.copy({*disk, *target_, "uploads/photo.jpg", key, std::nullopt, md5_base64(*random_), "image/jpeg"});
  EXPECT_EQ(result.status, CopyResult::Status::kCopied);
  EXPECT_EQ(read_object(*target_, key), *random_);
  const auto landed = target_->head(key);
  ASSERT_TRUE(landed);
  EXPECT_EQ(metadata_value(landed->metadata, "content-type"), "image/jpeg");
  EXPECT_EQ(engine.copy({*disk, *target_, "uploads/photo.jpg", key, std::nullopt, md5_base64(*random_), ""}).status,
            CopyResult::Status::kSkipped);
}

TEST_F(CopyEngineTest, S3ToDiskSmallAndLarge) {
  TempDir root("blobferry-disk");
  auto disk = open_storage(disk_service(root.path()));
  FaultyStorage watched_disk(*disk);
  const CopyEngine engine(multipart_options());
  EXPECT_EQ(engine.copy({*source_, watched_disk, kRandomKey, kRandomKey, std::nullopt, "", ""}).status,
            CopyResult::Status::kCopied);
  EXPECT_EQ(read_object(*disk, kRandomKey), *random_);
  const int buffered_before = watched_disk.buffered_puts;
  const CopyResult large = engine.copy({*source_, watched_disk, kLargeKey, kLargeKey, std::nullopt, "", ""});
  EXPECT_EQ(watched_disk.buffered_puts, buffered_before) << "a large object reaches Disk streamed, not buffered";
  EXPECT_TRUE(watched_disk.created.empty()) << "Disk has no multipart";
  EXPECT_EQ(large.status, CopyResult::Status::kCopied);
  const auto bytes = read_object(*disk, kLargeKey);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(md5_base64(*bytes), md5_base64(*large_));
  EXPECT_EQ(engine.copy({*source_, *disk, kLargeKey, kLargeKey, std::nullopt, "", ""}).status,
            CopyResult::Status::kSkipped);
  EXPECT_EQ(engine.copy({*source_, *disk, kOddKey, kOddKey, std::nullopt, "", ""}).status,
            CopyResult::Status::kCopied);
  EXPECT_EQ(read_object(*disk, kOddKey), "odd key body");
}

// Disk has no ChunkedWriter: an object over the threshold whose MD5 nothing
// knows streams GET -> put() through the pipe, hashed on the way, never
// buffered whole and never in parts; the MD5 it proves is that of the bytes.
TEST_F(CopyEngineTest, LargeObjectOfUnknownMd5StreamsToDiskHashedOnTheWay) {
  TempDir root("blobferry-disk");
  auto disk = open_storage(disk_service(root.path()));
  EXPECT_EQ(disk->capabilities().chunked_writer, nullptr);
  EXPECT_EQ(disk->capabilities().server_side_copier, nullptr);
  FaultyStorage unhashed(*source_);
  unhashed.on_head = [](ObjectInfo& info) { info.etag.clear(); };  // no MD5 from the source either
  FaultyStorage watched_disk(*disk);
  const CopyEngine engine(multipart_options());
  const CopyResult result = engine.copy({unhashed, watched_disk, kLargeKey, "big.bin", large_->size(), "", ""});
  EXPECT_EQ(result.status, CopyResult::Status::kCopied);
  EXPECT_EQ(result.md5, md5_base64(*large_));
  EXPECT_EQ(result.bytes, large_->size());
  EXPECT_EQ(watched_disk.puts, 1);
  EXPECT_EQ(watched_disk.buffered_puts, 0) << "the body was the pipe, not a whole-object buffer";
  EXPECT_TRUE(watched_disk.created.empty());
  EXPECT_EQ(unhashed.gets, 1) << "one streamed GET, no ranged parts";
  const auto bytes = read_object(*disk, "big.bin");
  ASSERT_TRUE(bytes);
  EXPECT_EQ(md5_base64(*bytes), md5_base64(*large_));
  EXPECT_EQ(engine.copy({unhashed, watched_disk, kLargeKey, "big.bin", std::nullopt, md5_base64(*large_), ""}).status,
            CopyResult::Status::kSkipped);
}

TEST_F(CopyEngineTest, FailedLargeCopyToDiskLeavesNoFileBehind) {
  TempDir root("blobferry-disk");
  auto disk = open_storage(disk_service(root.path()));
  const CopyEngine engine(multipart_options());
  FaultyStorage flipping(*source_);
  // A byte flipped 10 MiB in, in the one streamed GET (or a ranged one).
  flipping.on_get_chunk = [offsets = std::make_shared<std::map<int, std::uint64_t>>()](
                              const std::optional<ByteRange>& range, std::string& chunk, int call) {
    std::uint64_t& offset = (*offsets)[call];
    if (offset == 0 && range) offset = range->first;
    if (offset <= 10 * kMiB && 10 * kMiB < offset + chunk.size()) chunk[10 * kMiB - offset] ^= 0x20;
    offset += chunk.size();
  };
  EXPECT_THROW(engine.copy({flipping, *disk, kLargeKey, "big.bin", std::nullopt, "", ""}), Error);
  EXPECT_FALSE(disk->head("big.bin"));
  EXPECT_EQ(files_under(root.path()), std::vector<std::string>{});
}

TEST_F(CopyEngineTest, OnlyReadsFromTheSource) {
  const CopyEngine engine(multipart_options());
  FaultyStorage watched_source(*source_);
  engine.copy({watched_source, *target_, kPlainKey, fresh_key("plain.txt"), std::nullopt, "", ""});
  engine.copy({watched_source, *target_, kLargeKey, fresh_key("20mib.bin"), std::nullopt, "", ""});
  EXPECT_GT(watched_source.gets, 4);
  EXPECT_EQ(watched_source.puts, 0);
  EXPECT_TRUE(watched_source.created.empty());
  EXPECT_EQ(watched_source.parts, 0);
  EXPECT_EQ(watched_source.completes, 0);
  EXPECT_TRUE(watched_source.aborted.empty());
}

TEST_F(CopyEngineTest, CompletionWhoseAnswerWasLostIsVerifiedNotFailed) {
  FaultyStorage lossy(*target_);
  lossy.after_complete = [](int call) {
    if (call == 1) throw Error(ErrorKind::kTransient, FailureReason::kNetwork, "complete_multipart: timeout (injected)");
  };
  // S3 answers a completed upload's id with NoSuchUpload (s3rver with a 500).
  lossy.before_complete = [](int call) {
    if (call == 2) throw Error(ErrorKind::kPermanent, FailureReason::kNoSuchUpload, "NoSuchUpload (injected)", 404);
  };
  FaultyStorage unhashed(*source_);
  unhashed.on_head = [](ObjectInfo& info) { info.etag.clear(); };  // unknown MD5: multipart, not one PUT
  const CopyEngine engine(multipart_options());
  const std::string key = fresh_key("lost-answer.bin");
  const CopyResult result = engine.copy({unhashed, lossy, kLargeKey, key, std::nullopt, "", ""});
  EXPECT_EQ(result.status, CopyResult::Status::kCopied);
  EXPECT_EQ(result.attempts, 2);
  EXPECT_EQ(lossy.completes, 2);
  const auto bytes = read_object(*target_, key);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(md5_base64(*bytes), md5_base64(*large_));
}

// Defined last so it runs after every copy above.
TEST_F(CopyEngineTest, SourceBucketIsByteForByteUnchanged) {
  EXPECT_EQ(hash_tree(stack_->env("S3_SOURCE_DIR")), *source_snapshot_);
}

}  // namespace
}  // namespace blobferry
