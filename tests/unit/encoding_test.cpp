// Unit tests of the checksum encodings and of printable(), which keeps messages one line.
#include "common/base/encoding.h"

#include <gtest/gtest.h>

#include <string>

namespace blobferry {
namespace {

using namespace std::string_literals;

TEST(Encoding, MarkupEscapeCoversTextAndBothQuotes) {
  EXPECT_EQ(markup_escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
  EXPECT_EQ(markup_escape("plain/key.txt"), "plain/key.txt");
  EXPECT_EQ(markup_escape("&amp;"), "&amp;amp;") << "escaped again, never taken as an entity";
}

TEST(Encoding, HexRoundTripsAndRejectsBadDigits) {
  EXPECT_EQ(hex_encode("\x01\xab\xff"s), "01abff");
  EXPECT_EQ(hex_decode("01ABff"), "\x01\xab\xff"s);
  EXPECT_FALSE(hex_decode("abc"));
  EXPECT_FALSE(hex_decode("zz"));
}

TEST(Encoding, Base64OfRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_decode("Zm9vYmE="), "fooba");
  EXPECT_FALSE(base64_decode("Zm9v!mFy"));
}

TEST(Encoding, Md5BetweenEtagAndActiveStorageForms) {
  // MD5("The quick brown fox jumps over the lazy dog")
  EXPECT_EQ(hex_md5_to_base64("9e107d9d372bb6826bd81d3542a419d6"), "nhB9nTcrtoJr2B01QqQZ1g==");
  EXPECT_EQ(base64_md5_to_hex("nhB9nTcrtoJr2B01QqQZ1g=="), "9e107d9d372bb6826bd81d3542a419d6");
  EXPECT_FALSE(hex_md5_to_base64("9e107d9d"));
  EXPECT_FALSE(base64_md5_to_hex("Zm9vYmFy"));
}

TEST(Encoding, PrintableEscapesControlBytesOnly) {
  EXPECT_EQ(printable("a/b c.txt"), "a/b c.txt");
  EXPECT_EQ(printable("fine\0.txt"s), "fine\\x00.txt");
  EXPECT_EQ(printable("two\nlines\r\x7f"), "two\\x0alines\\x0d\\x7f");
  EXPECT_EQ(printable("ünïcödé"), "ünïcödé");  // UTF-8 bytes are >= 0x80 and stay
}

}  // namespace
}  // namespace blobferry
