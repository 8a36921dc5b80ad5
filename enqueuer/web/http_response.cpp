// One HTTP response of the operator page: status, type, body or a streamed body.
#include "enqueuer/web/http_response.h"

namespace blobferry {

HttpResponse HttpResponse::text(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  if (!response.body.ends_with('\n')) response.body += '\n';
  return response;
}

HttpResponse HttpResponse::json(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.content_type = "application/json";
  response.body = std::move(body);
  return response;
}

const char* http_status_text(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

std::string HttpResponse::render_head() const {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + http_status_text(status) + "\r\n";
  head += "Content-Type: " + content_type + "\r\n";
  if (!stream) head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  // The page's data changes every second and may name keys: never cache it.
  head += "Cache-Control: no-store\r\n";
  head += "X-Content-Type-Options: nosniff\r\n";
  head += "X-Frame-Options: DENY\r\n";
  head += "Referrer-Policy: no-referrer\r\n";
  head += "Content-Security-Policy: default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'\r\n";
  for (const auto& [name, value] : headers) head += name + ": " + value + "\r\n";
  head += "Connection: close\r\n\r\n";
  return head;
}

}  // namespace blobferry
