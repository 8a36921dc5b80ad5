// A Paperclip file without _file_size costs no extra request: the copy to its
// new key learns the size from the GET, not from a HEAD of the source.
#include <gtest/gtest.h>

#include <atomic>

#include "common/storage/byte_source.h"
#include "common/base/digest.h"
#include "common/storage/disk/disk_storage.h"
#include "common/base/encoding.h"
#include "common/base/error.h"
#include "common/storage/service_config.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_services.h"
#include "worker/copy/copy_engine.h"

namespace blobferry {
namespace {

ServiceConfig plain_disk(const std::string& name, const std::string& root) {
  return testing::disk_service(name, root, DiskLayout::kPlain);
}

// Counts what is asked of a storage and passes everything through.
class CountingStorage final : public Storage {
 public:
  explicit CountingStorage(Storage& inner) : inner_(inner) {}
  std::atomic<int> heads{0}, gets{0}, puts{0};

  std::string describe() const override { return "counting " + inner_.describe(); }
  void check(Access access) override { inner_.check(access); }
  std::optional<ObjectInfo> head(const std::string& key) override {
    ++heads;
    return inner_.head(key);
  }
  std::optional<ObjectInfo> get(const std::string& key, const ByteSink& sink,
                                std::optional<ByteRange> range) override {
    ++gets;
    return inner_.get(key, sink, range);
  }
  std::string put(const std::string& key, ByteSource& body, const PutOptions& options) override {
    ++puts;
    return inner_.put(key, body, options);
  }
  ListPage list(const ListRequest& request) override { return inner_.list(request); }
  // Optional capabilities pass straight through, uncounted: what is counted
  // here is what every backend has.
  StorageCapabilities capabilities() override { return inner_.capabilities(); }

 private:
  Storage& inner_;
};

class PaperclipCopyTest : public ::testing::Test {
 protected:
  PaperclipCopyTest()
      : source_disk_(plain_disk("paperclip_files", dir_.path() + "/system")),
        target_disk_(plain_disk("target", dir_.path() + "/target")),
        source_(source_disk_),
        target_(target_disk_) {}

  void plant(const std::string& key, const std::string& bytes) {
    MemoryByteSource body(bytes);
    source_disk_.put(key, body, {});
  }

  CopyEngineOptions small_threshold() {
    CopyEngineOptions options;
    options.part_size = 5 * CopyEngineOptions::kMiB;
    options.retry_policy = RetryPolicy(RetryOptions{.retries = 0, .integrity_retries = 0});
    return options;
  }

  testing::TempDir dir_{"bf-paperclip-copy"};
  DiskStorage source_disk_, target_disk_;
  CountingStorage source_, target_;
};

TEST_F(PaperclipCopyTest, UnknownSizeIsLearntFromTheGetWithoutAHeadOfTheSource) {
  const std::string bytes = "a Paperclip avatar without a file_size";
  plant("users/avatars/000/000/001/original/me.png", bytes);
  const CopyEngine engine(small_threshold());
  const CopyResult result = engine.copy({source_, target_, "users/avatars/000/000/001/original/me.png",
                                         "abcdefghijklmnopqrstuvwxyz01", std::nullopt, "", "image/png"});
  EXPECT_EQ(result.status, CopyResult::Status::kCopied);
  EXPECT_EQ(result.bytes, bytes.size());
  EXPECT_EQ(result.md5, base64_encode(md5_of(bytes)));
  EXPECT_EQ(source_.heads, 0);
  EXPECT_EQ(source_.gets, 1);
  EXPECT_EQ(target_.heads, 1);  // the skip test, as with a known size
  EXPECT_EQ(target_.puts, 1);
  std::string landed;
  target_disk_.get("abcdefghijklmnopqrstuvwxyz01", [&landed](std::string_view c) { landed.append(c); });
  EXPECT_EQ(landed, bytes);
}

TEST_F(PaperclipCopyTest, UnknownSizeWithFingerprintSkipsWhatIsAlreadyThere) {
  const std::string bytes = "copied by an earlier run";
  plant("f.txt", bytes);
  const CopyEngine engine(small_threshold());
  const std::string md5 = base64_encode(md5_of(bytes));
  const CopyTask task{source_, target_, "f.txt", "abcdefghijklmnopqrstuvwxyz02", std::nullopt, md5, ""};
  ASSERT_EQ(engine.copy(task).status, CopyResult::Status::kCopied);
  const CopyResult again = engine.copy(task);
  EXPECT_EQ(again.status, CopyResult::Status::kSkipped);
  EXPECT_EQ(again.bytes, bytes.size());
  EXPECT_EQ(source_.heads, 0);
  EXPECT_EQ(source_.gets, 1);
  EXPECT_EQ(target_.puts, 1);
}

TEST_F(PaperclipCopyTest, UnknownSizeWithWrongFingerprintLandsNothing) {
  plant("f.txt", "the bytes");
  const CopyEngine engine(small_threshold());
  EXPECT_THROW(engine.copy({source_, target_, "f.txt", "abcdefghijklmnopqrstuvwxyz03", std::nullopt,
                            base64_encode(md5_of("other bytes")), ""}),
               Error);
  EXPECT_EQ(target_.puts, 0);
  EXPECT_FALSE(target_disk_.head("abcdefghijklmnopqrstuvwxyz03"));
}

TEST_F(PaperclipCopyTest, UnknownSizeOverTheThresholdStillArrivesWhole) {
  std::string bytes(6 * CopyEngineOptions::kMiB + 17, 'x');
  for (std::size_t i = 0; i < bytes.size(); i += 4096) bytes[i] = static_cast<char>('a' + i % 26);
  plant("big.bin", bytes);
  const CopyEngine engine(small_threshold());
  const CopyResult result = engine.copy({source_, target_, "big.bin", "abcdefghijklmnopqrstuvwxyz04", std::nullopt, "", ""});
  EXPECT_EQ(result.status, CopyResult::Status::kCopied);
  EXPECT_EQ(result.bytes, bytes.size());
  std::string landed;
  target_disk_.get("abcdefghijklmnopqrstuvwxyz04", [&landed](std::string_view c) { landed.append(c); });
  EXPECT_EQ(md5_of(landed), md5_of(bytes));
}

TEST_F(PaperclipCopyTest, MissingSourceIsNotFoundNamingTheKey) {
  const CopyEngine engine(small_threshold());
  try {
    engine.copy({source_, target_, "users/avatars/000/000/005/original/gone.png", "abcdefghijklmnopqrstuvwxyz05",
                 std::nullopt, "", ""});
    FAIL() << "a missing file was copied";
  } catch (const Error& e) {
    EXPECT_EQ(e.reason(), "not_found");
    EXPECT_NE(std::string(e.what()).find("users/avatars/000/000/005/original/gone.png"), std::string::npos);
  }
  EXPECT_EQ(source_.heads, 0);
}

}  // namespace
}  // namespace blobferry
