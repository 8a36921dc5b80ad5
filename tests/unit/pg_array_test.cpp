// pg_array_literal: the one PostgreSQL array literal escapes what would
// otherwise end an element or the array.
#include "common/db/pg_array.h"

#include <gtest/gtest.h>

namespace blobferry {
namespace {

using Texts = std::vector<std::string>;
using Nullable = std::vector<std::optional<std::string>>;

TEST(PgArrayLiteral, QuotesEachElement) {
  EXPECT_EQ(pg_array_literal(Texts{"1", "22"}), R"({"1","22"})");
  EXPECT_EQ(pg_array_literal(Texts{}), "{}");
  EXPECT_EQ(pg_array_literal(Texts{""}), R"({""})");
}

TEST(PgArrayLiteral, EscapesQuotesAndBackslashes) {
  EXPECT_EQ(pg_array_literal(Texts{R"(say "hi")"}), R"({"say \"hi\""})");
  EXPECT_EQ(pg_array_literal(Texts{R"(C:\dir\)"}), R"({"C:\\dir\\"})");
  EXPECT_EQ(pg_array_literal(Texts{R"(\")"}), R"({"\\\""})");
}

TEST(PgArrayLiteral, CommasBracesAndSpacesStayInsideTheElement) {
  EXPECT_EQ(pg_array_literal(Texts{"a,b", "{c}", " d "}), R"({"a,b","{c}"," d "})");
}

TEST(PgArrayLiteral, NullIsOnlyWhatIsMissing) {
  // The text NULL is quoted, so PostgreSQL reads the word, not a NULL.
  EXPECT_EQ(pg_array_literal(Texts{"NULL"}), R"({"NULL"})");
  EXPECT_EQ(pg_array_literal(Nullable{"x", std::nullopt, "NULL"}), R"({"x",NULL,"NULL"})");
  EXPECT_EQ(pg_array_literal(Nullable{}), "{}");
}

}  // namespace
}  // namespace blobferry
