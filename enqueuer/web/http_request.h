// One HTTP/1.1 request of the operator page, parsed from its head and body (pure, no I/O).
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace blobferry {

// Query and form fields: name -> value, percent-decoded; the last one wins.
using HttpFields = std::map<std::string, std::string>;

struct HttpRequest {
  std::string method;  // "GET", "POST", …
  std::string path;    // percent-decoded, without the query: "/migrations/photos 2024"
  HttpFields query;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  // The header's value, or "" when absent.
  std::string header(const std::string& lower_name) const;

  // Parses "GET /path?x=1 HTTP/1.1\r\nName: value\r\n…" (the head without its
  // final blank line). nullopt with *error set to the reason (for a 400) when
  // malformed: no request line, a bad percent escape, a header without ':'.
  static std::optional<HttpRequest> parse_head(std::string_view head, std::string* error);
  // Content-Length: 0 when absent, nullopt when not a decimal number.
  std::optional<std::size_t> content_length() const;
};

// "a%20b+c" -> "a b c" (with plus_is_space); nullopt on a bad or truncated escape.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);
// "a=1&b=x%20y" -> {a: 1, b: "x y"}; nullopt on a bad escape.
std::optional<HttpFields> parse_url_encoded(std::string_view text);

}  // namespace blobferry
