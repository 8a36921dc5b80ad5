// One HTTP response of the operator page: status, type, body or a streamed body.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace blobferry {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // beyond the ones render_head() writes
  // When set, the body is written by this after the head, without a
  // Content-Length (the connection closes at its end), so a report of any
  // size streams from Redis with flat memory.
  std::function<void(const std::function<void(std::string_view)>& write)> stream;

  static HttpResponse text(int status, std::string body);
  static HttpResponse json(int status, std::string body);

  // The head with Content-Length (unless streamed), Connection: close, and
  // the headers every page response carries (no caching, no framing, no
  // sniffing, a Content-Security-Policy allowing only this origin).
  std::string render_head() const;
};

const char* http_status_text(int status);

}  // namespace blobferry
