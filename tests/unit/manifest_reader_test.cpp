// Manifest parsing: CSV with and without a header, RFC 4180 quoting, JSONL,
// and bad lines reported by number without stopping the rest.
#include "enqueuer/sources/manifest/manifest_reader.h"

#include <sstream>

#include <gtest/gtest.h>

using blobferry::ManifestEntry;
using blobferry::ManifestReader;

namespace {

std::vector<ManifestEntry> read_all(const std::string& text, ManifestReader** keep = nullptr) {
  static std::istringstream in;
  in = std::istringstream(text);
  static std::unique_ptr<ManifestReader> reader;
  reader = std::make_unique<ManifestReader>(in, "test");
  std::vector<ManifestEntry> out;
  while (auto e = reader->next()) out.push_back(*e);
  if (keep) *keep = reader.get();
  return out;
}

}  // namespace

TEST(ManifestReader, PlainCsvKeysWithOptionalSizeAndChecksum) {
  ManifestReader* reader = nullptr;
  auto entries = read_all("a/1.jpg\nb/2.jpg,12\nc,5,9e107d9d372bb6826bd81d3542a419d6\n", &reader);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].key, "a/1.jpg");
  EXPECT_FALSE(entries[0].size);
  EXPECT_EQ(*entries[1].size, 12u);
  EXPECT_EQ(entries[2].checksum, "nhB9nTcrtoJr2B01QqQZ1g==");  // hex converted to base64
  EXPECT_EQ(reader->problem_count(), 0u);
}

TEST(ManifestReader, HeaderNamesColumnsInAnyOrder) {
  auto entries = read_all("checksum,key,byte_size\nnhB9nTcrtoJr2B01QqQZ1g==,x,3\n");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].key, "x");
  EXPECT_EQ(*entries[0].size, 3u);
  EXPECT_EQ(entries[0].checksum, "nhB9nTcrtoJr2B01QqQZ1g==");
}

TEST(ManifestReader, QuotedKeysKeepCommasQuotesAndNewlines) {
  auto entries = read_all("key,size\n\"a,b \"\"c\"\"\nd\",4\nplain,1\n");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].key, "a,b \"c\"\nd");
  EXPECT_EQ(*entries[0].size, 4u);
  EXPECT_EQ(entries[1].key, "plain");
}

TEST(ManifestReader, BadLinesAreReportedByNumberAndSkipped) {
  ManifestReader* reader = nullptr;
  auto entries = read_all("good1,1\nbad,notanumber\ngood2,2\n,3\ngood3,3,zzz\ngood4\n", &reader);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[2].key, "good4");
  ASSERT_EQ(reader->problem_count(), 3u);
  EXPECT_EQ(reader->problems()[0].line, 2u);
  EXPECT_EQ(reader->problems()[1].line, 4u);
  EXPECT_EQ(reader->problems()[2].line, 5u);
}

TEST(ManifestReader, JsonLines) {
  ManifestReader* reader = nullptr;
  auto entries = read_all(
      "{\"key\":\"k 1\",\"size\":7,\"md5\":\"9e107d9d372bb6826bd81d3542a419d6\"}\n"
      "not json\n"
      "{\"size\":1}\n"
      "\n"
      "{\"key\":\"k2\",\"byte_size\":-1}\n"
      "{\"key\":\"k3\",\"content_type\":\"image/png\"}\n",
      &reader);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].key, "k 1");
  EXPECT_EQ(*entries[0].size, 7u);
  EXPECT_EQ(entries[0].checksum, "nhB9nTcrtoJr2B01QqQZ1g==");
  EXPECT_EQ(entries[1].content_type, "image/png");
  ASSERT_EQ(reader->problem_count(), 3u);
  EXPECT_EQ(reader->problems()[0].line, 2u);
  EXPECT_EQ(reader->problems()[1].line, 3u);
  EXPECT_EQ(reader->problems()[2].line, 5u);
}
