// CancellationToken: the current token per thread, interrupted sleeps, and a Disk copy that stops between chunks.
#include "common/base/cancellation.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "common/base/retry_policy.h"
#include "common/storage/disk/disk_storage.h"
#include "common/storage/byte_source.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_services.h"

namespace blobferry {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

TEST(Cancellation, CurrentTokenIsPerThreadAndScopesNest) {
  CancellationToken outer, inner;
  EXPECT_EQ(CancellationToken::current(), nullptr);
  {
    CancellationToken::Scope a(&outer);
    EXPECT_EQ(CancellationToken::current(), &outer);
    {
      CancellationToken::Scope b(&inner);
      EXPECT_EQ(CancellationToken::current(), &inner);
      std::thread([] { EXPECT_EQ(CancellationToken::current(), nullptr); }).join();
    }
    EXPECT_EQ(CancellationToken::current(), &outer);
  }
  EXPECT_EQ(CancellationToken::current(), nullptr);
}

TEST(Cancellation, ThrowsACancelledErrorOnlyOnceCancelled) {
  CancellationToken token;
  CancellationToken::Scope scope(&token);
  EXPECT_NO_THROW(CancellationToken::throw_if_current_cancelled("GET k"));
  token.cancel();
  try {
    CancellationToken::throw_if_current_cancelled("GET k");
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_TRUE(is_cancellation(e));
    EXPECT_FALSE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("GET k"), std::string::npos);
  }
}

TEST(Cancellation, RetryBackoffEndsWhenTheTokenIsCancelled) {
  CancellationToken token;
  const RetryPolicy policy;  // the real sleeper
  std::thread canceller([&] {
    std::this_thread::sleep_for(milliseconds(100));
    token.cancel();
  });
  const auto start = Clock::now();
  {
    CancellationToken::Scope scope(&token);
    policy.sleep(std::chrono::seconds(20));
  }
  canceller.join();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

// A body that cancels the token after its first chunk: the Disk write must
// stop at the next chunk instead of consuming the whole body.
class CancellingBody : public ByteSource {
 public:
  CancellingBody(CancellationToken& token, std::uint64_t size) : token_(token), size_(size) {}
  std::uint64_t size() const override { return size_; }
  std::size_t read(char* buf, std::size_t n) override {
    const std::size_t give = static_cast<std::size_t>(std::min<std::uint64_t>(n, size_ - given_));
    std::fill(buf, buf + give, 'x');
    given_ += give;
    token_.cancel();
    return give;
  }
  bool rewind() override { return false; }
  std::uint64_t given() const { return given_; }

 private:
  CancellationToken& token_;
  std::uint64_t size_;
  std::uint64_t given_ = 0;
};

TEST(Cancellation, DiskPutStopsBetweenChunksAndStoresNothing) {
  testing::TempDir root("blobferry-cancel");
  DiskStorage disk(testing::disk_service("local", root.path()));
  disk.check();
  CancellationToken token;
  CancellingBody body(token, 16 * 1024 * 1024);
  {
    CancellationToken::Scope scope(&token);
    try {
      disk.put("abcdefghijklmnopqrstuvwxyz01", body, {});
      FAIL() << "the put was not cancelled";
    } catch (const Error& e) {
      EXPECT_TRUE(is_cancellation(e)) << e.what();
    }
  }
  EXPECT_LT(body.given(), 16u * 1024 * 1024);
  EXPECT_FALSE(disk.head("abcdefghijklmnopqrstuvwxyz01").has_value());
}

}  // namespace
}  // namespace blobferry
