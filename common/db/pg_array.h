// The one writer of PostgreSQL array literals, for text[]/bigint[] parameters
// ($1::text[], unnest(...)) that send a whole batch in one statement.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace blobferry {

// '{"a","b\"c",NULL}': every element double-quoted with '"' and '\' escaped,
// so commas, braces, quotes and the word NULL stay data; nullopt is NULL.
std::string pg_array_literal(const std::vector<std::optional<std::string>>& values);
// The same without NULLs.
std::string pg_array_literal(const std::vector<std::string>& values);

}  // namespace blobferry
