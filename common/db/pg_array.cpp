// The one writer of PostgreSQL array literals, for text[]/bigint[] parameters
// ($1::text[], unnest(...)) that send a whole batch in one statement.
#include "common/db/pg_array.h"

namespace blobferry {
namespace {

void append_element(std::string& out, const std::string& value) {
  out += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

}  // namespace

std::string pg_array_literal(const std::vector<std::optional<std::string>>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    if (values[i]) append_element(out, *values[i]);
    else out += "NULL";
  }
  return out + "}";
}

std::string pg_array_literal(const std::vector<std::string>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    append_element(out, values[i]);
  }
  return out + "}";
}

}  // namespace blobferry
