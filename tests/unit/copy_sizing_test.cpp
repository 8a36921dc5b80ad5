// CopySizing: one PUT or multipart, part sizes, CopyObject or UploadPartCopy, within a target's provider limits.
#include "worker/copy/copy_sizing.h"

#include <gtest/gtest.h>

#include "common/base/error.h"
#include "common/storage/s3/provider_profile.h"

// Its own namespace: unity builds put several test files in one translation unit.
namespace blobferry::copy_sizing_test {
namespace {

constexpr std::uint64_t kMiB = 1024ULL * 1024;
constexpr std::uint64_t kGiB = 1024 * kMiB;
constexpr std::uint64_t kTiB = 1024 * kGiB;

// R2's documented figures (provider_profile.cpp): 5 MiB less than 5 GiB for a
// single PUT, a part and a copy; 10,000 parts.
SizeLimits r2() { return SizeLimits{5 * kGiB - 5 * kMiB, 5 * kGiB - 5 * kMiB, 10'000, 5 * kGiB - 5 * kMiB}; }

std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }

TEST(CopySizing, AnR2ObjectJustUnderFiveGibGoesMultipartWhereAwsTakesOnePut) {
  const CopyEngineOptions options;
  const std::uint64_t size = 5 * kGiB - 4 * kMiB;  // 1 MiB over R2's largest PUT and copy
  const CopySizing on_r2(options, r2(), r2());
  EXPECT_FALSE(on_r2.fits_single_put(size));
  EXPECT_FALSE(on_r2.fits_single_copy(size)) << "UploadPartCopy, not CopyObject";
  EXPECT_FALSE(on_r2.copy_object_accepts(size));
  EXPECT_TRUE(on_r2.fits_single_put(5 * kGiB - 5 * kMiB)) << "the limit itself is allowed";
  EXPECT_TRUE(on_r2.fits_single_copy(5 * kGiB - 5 * kMiB));

  const CopySizing on_aws(options, SizeLimits{}, SizeLimits{});
  EXPECT_TRUE(on_aws.fits_single_put(size));
  EXPECT_TRUE(on_aws.fits_single_copy(size));
}

TEST(CopySizing, TheS3StoragesProfileRowsGiveTheseLimits) {
  const ProviderProfile& profile = provider_profile(Provider::kR2);
  EXPECT_EQ(profile.max_single_put, r2().max_single_put);
  EXPECT_EQ(profile.max_part_size, r2().max_part_size);
  EXPECT_EQ(profile.max_single_copy, r2().max_single_copy);
  EXPECT_EQ(static_cast<std::uint64_t>(profile.max_parts), r2().max_parts);
}

TEST(CopySizing, PartsNeverExceedTheLargestPartNorTheMostParts) {
  const CopyEngineOptions options;  // 8 MiB parts, 512 MiB copied ranges
  const CopySizing on_r2(options, r2(), r2());
  for (const std::uint64_t size : {5 * kGiB - 4 * kMiB, 100 * kGiB, 5 * kTiB, 10'000 * (5 * kGiB - 5 * kMiB)}) {
    const std::uint64_t part = on_r2.part_size(size);
    EXPECT_GE(part, options.part_size) << size;
    EXPECT_LE(part, r2().max_part_size) << size;
    EXPECT_LE(ceil_div(size, part), r2().max_parts) << size;
    const std::uint64_t range = on_r2.copy_part_size(size);
    EXPECT_GE(range, options.server_side_part_size) << size;
    EXPECT_LE(range, r2().max_single_copy) << size;
    EXPECT_LE(ceil_div(size, range), r2().max_parts) << size;
  }
  EXPECT_EQ(on_r2.part_size(5 * kGiB - 4 * kMiB), options.part_size) << "small enough: the configured size";
}

TEST(CopySizing, ALowLargestPartCapsTheRaisedPartSize) {
  CopyEngineOptions options;
  options.part_size = 8 * kMiB;
  options.server_side_part_size = 8 * kMiB;
  const SizeLimits tight{20 * kMiB, 6 * kMiB, 3, 7 * kMiB};
  const CopySizing sizing(options, tight, tight);
  EXPECT_EQ(sizing.part_size(18 * kMiB), 6 * kMiB) << "8 MiB wanted, 6 MiB allowed";
  EXPECT_EQ(sizing.copy_part_size(18 * kMiB), 6 * kMiB) << "a copied range is a part too";
  EXPECT_EQ(sizing.part_size(3 * kMiB), 6 * kMiB);
}

TEST(CopySizing, AnObjectNoUploadCanHoldIsTooLarge) {
  const CopyEngineOptions options;
  const CopySizing on_r2(options, r2(), r2());
  const std::uint64_t over = 10'000 * (5 * kGiB - 5 * kMiB) + 1;
  for (const bool copy : {false, true}) {
    try {
      copy ? on_r2.copy_part_size(over) : on_r2.part_size(over);
      FAIL() << "an object over 10,000 parts of the largest size was accepted";
    } catch (const Error& error) {
      EXPECT_EQ(error.failure_reason(), FailureReason::kTooLarge);
      EXPECT_EQ(error.kind(), ErrorKind::kPermanent);
    }
  }
}

TEST(CopySizing, TheSinglePutLimitIsTheThresholdWithinTheTargetsLargestPut) {
  CopyEngineOptions options;
  options.multipart_threshold = 6 * kGiB;
  EXPECT_EQ(CopySizing(options, r2(), r2()).single_put_limit(), 5 * kGiB - 5 * kMiB);
  EXPECT_EQ(CopySizing(options, SizeLimits::unlimited(), SizeLimits{}).single_put_limit(), 6 * kGiB);
  options.multipart_threshold.reset();
  EXPECT_EQ(CopySizing(options, r2(), r2()).single_put_limit(), options.part_size);
}

TEST(CopySizing, TheEnginesLowerCopyThresholdStillSendsPartsButMetadataRewritesUseTheTargetsLimit) {
  CopyEngineOptions options;
  options.server_side_single_copy_limit = 10 * kMiB;  // as the RGW tests lower it
  const CopySizing sizing(options, SizeLimits{}, SizeLimits{});
  EXPECT_FALSE(sizing.fits_single_copy(12 * kMiB));
  EXPECT_TRUE(sizing.copy_object_accepts(12 * kMiB));
}

TEST(CopySizing, ATargetWithoutMultipartTakesAnySizeInOnePut) {
  const CopySizing disk(CopyEngineOptions{}, SizeLimits::unlimited(), SizeLimits{});
  EXPECT_TRUE(disk.fits_single_put(50 * kTiB));
}

}  // namespace
}  // namespace blobferry::copy_sizing_test
