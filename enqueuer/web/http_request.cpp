// One HTTP/1.1 request of the operator page, parsed from its head and body (pure, no I/O).
#include "enqueuer/web/http_request.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "common/base/encoding.h"

namespace blobferry {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) text.remove_suffix(1);
  return text;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;  // truncated: "%" or "%4" at the end
      const int high = hex_value(text[i + 1]), low = hex_value(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out += static_cast<char>(high * 16 + low);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<HttpFields> parse_url_encoded(std::string_view text) {
  HttpFields fields;
  while (!text.empty()) {
    const std::size_t amp = text.find('&');
    const std::string_view pair = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view() : text.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    auto name = percent_decode(pair.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
    if (!name || !value) return std::nullopt;
    fields[*name] = *value;
  }
  return fields;
}

std::string HttpRequest::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

std::optional<std::size_t> HttpRequest::content_length() const {
  const std::string text = header("content-length");
  if (text.empty()) return 0;
  std::size_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<HttpRequest> HttpRequest::parse_head(std::string_view head, std::string* error) {
  auto fail = [&](const std::string& reason) -> std::optional<HttpRequest> {
    if (error) *error = reason;
    return std::nullopt;
  };
  const std::size_t line_end = head.find("\r\n");
  const std::string_view request_line = head.substr(0, line_end);
  const std::size_t first = request_line.find(' ');
  const std::size_t second = first == std::string_view::npos ? first : request_line.find(' ', first + 1);
  if (second == std::string_view::npos || !request_line.substr(second + 1).starts_with("HTTP/1.")) {
    return fail("malformed request line");
  }
  HttpRequest request;
  request.method = std::string(request_line.substr(0, first));
  const std::string_view target = request_line.substr(first + 1, second - first - 1);
  if (!target.starts_with('/')) return fail("request target must be a path");
  const std::size_t question = target.find('?');
  auto path = percent_decode(target.substr(0, question), false);
  if (!path) return fail("bad percent escape in the path");
  request.path = std::move(*path);
  if (question != std::string_view::npos) {
    auto query = parse_url_encoded(target.substr(question + 1));
    if (!query) return fail("bad percent escape in the query");
    request.query = std::move(*query);
  }
  std::string_view rest = line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
  while (!rest.empty()) {
    const std::size_t end = rest.find("\r\n");
    const std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
    if (line.empty()) continue;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail("malformed header line");
    request.headers[lowercase(trim(line.substr(0, colon)))] = std::string(trim(line.substr(colon + 1)));
  }
  return request;
}

}  // namespace blobferry
