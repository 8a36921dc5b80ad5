// Percent-encoding of odd S3 keys, decoding of listings, and path normalisation.
#include "common/storage/s3/uri_encoding.h"

#include <string>

#include <gtest/gtest.h>

using blobferry::normalize_uri_path;
using blobferry::uri_decode;
using blobferry::uri_encode;
using blobferry::uri_encode_path;

TEST(UriEncoding, UnreservedCharactersStay) {
  const std::string unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  EXPECT_EQ(uri_encode(unreserved), unreserved);
  EXPECT_EQ(uri_encode_path(unreserved), unreserved);
}

TEST(UriEncoding, ReservedAndSpecialCharactersAreEscapedUppercase) {
  EXPECT_EQ(uri_encode("+ % = & ? # ( ) ! $ ' @ , ; :"),
            "%2B%20%25%20%3D%20%26%20%3F%20%23%20%28%20%29%20%21%20%24%20%27%20%40%20%2C%20%3B%20%3A");
  EXPECT_EQ(uri_encode("a/b"), "a%2Fb");
  EXPECT_EQ(uri_encode("*"), "%2A");
}

TEST(UriEncoding, PathKeepsSlashesIncludingDoubleAndTrailing) {
  EXPECT_EQ(uri_encode_path("photos//2024/a b.jpg"), "photos//2024/a%20b.jpg");
  EXPECT_EQ(uri_encode_path("/bucket/dir/"), "/bucket/dir/");
  EXPECT_EQ(uri_encode_path("a/./b/../c..."), "a/./b/../c...");
}

TEST(UriEncoding, Utf8IsEncodedBytewise) {
  EXPECT_EQ(uri_encode_path("ሴ/été/日本.txt"), "%E1%88%B4/%C3%A9t%C3%A9/%E6%97%A5%E6%9C%AC.txt");
  EXPECT_EQ(uri_encode(std::string("\x00\x7f\xff", 3)), "%00%7F%FF");
}

TEST(UriEncoding, DecodeIsTheInverseOfEncode) {
  const std::string key = "dir/ a+b%c=d&e?f#g~h(i)j!k$l'm@n,o;p ሴ//.";
  EXPECT_EQ(uri_decode(uri_encode(key)), key);
  EXPECT_EQ(uri_decode(uri_encode_path(key)), key);
}

TEST(UriEncoding, DecodeTreatsPlusAsSpaceOnlyWhenAsked) {
  EXPECT_EQ(uri_decode("a+b%2Bc"), "a+b+c");
  EXPECT_EQ(uri_decode("a+b%2Bc", true), "a b+c");
  EXPECT_EQ(uri_decode("%e1%88%b4"), "ሴ");
}

TEST(UriEncoding, DecodeRejectsBrokenEscapes) {
  EXPECT_EQ(uri_decode("abc%"), std::nullopt);
  EXPECT_EQ(uri_decode("abc%4"), std::nullopt);
  EXPECT_EQ(uri_decode("abc%G1"), std::nullopt);
  EXPECT_EQ(uri_decode(""), "");
}

TEST(UriEncoding, NormalizePathRemovesDotSegmentsAndEmptySegments) {
  EXPECT_EQ(normalize_uri_path("/example1/example2/../.."), "/");
  EXPECT_EQ(normalize_uri_path("/example/.."), "/");
  EXPECT_EQ(normalize_uri_path("/./"), "/");
  EXPECT_EQ(normalize_uri_path("/./example"), "/example");
  EXPECT_EQ(normalize_uri_path("//"), "/");
  EXPECT_EQ(normalize_uri_path("//example//"), "/example/");
  EXPECT_EQ(normalize_uri_path("/a/b/../c/./d"), "/a/c/d");
  EXPECT_EQ(normalize_uri_path("/../a"), "/a");
}
