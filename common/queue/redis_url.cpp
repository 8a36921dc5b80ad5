// A parsed redis:// URL; its password is kept for AUTH and never printed.
#include "common/queue/redis_url.h"

#include <charconv>
#include <optional>

#include "common/base/error.h"

namespace blobferry {
namespace {

constexpr std::string_view kScheme = "redis://";

// The input as it may be shown: whatever sits before the last '@' after the
// scheme is credentials and is masked, even when the rest does not parse.
std::string mask_credentials(std::string_view url) {
  auto scheme_end = url.find("://");
  auto at = url.rfind('@');
  if (scheme_end == std::string_view::npos || at == std::string_view::npos || at < scheme_end) {
    return std::string(url);
  }
  return std::string(url.substr(0, scheme_end + 3)) + "***" + std::string(url.substr(at));
}

[[noreturn]] void bad_url(std::string_view url, const std::string& problem) {
  throw config_error("invalid Redis URL \"" + mask_credentials(url) + "\": " + problem +
                     " (expected redis://[:password@]host:port/db)");
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    int high = hex_value(text[i + 1]);
    int low = hex_value(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

std::optional<int> parse_number(std::string_view text, int min, int max) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (value < min || value > max) return std::nullopt;
  return value;
}

void parse_credentials(std::string_view url, std::string_view userinfo, RedisUrl& out) {
  auto colon = userinfo.find(':');
  auto user = percent_decode(userinfo.substr(0, colon));
  auto password = colon == std::string_view::npos ? std::optional<std::string>("")
                                                  : percent_decode(userinfo.substr(colon + 1));
  if (!user || !password) bad_url(url, "bad percent-encoding in the credentials");
  // "redis://secret@host" is how many hosting services hand out a bare password.
  if (colon == std::string_view::npos) {
    out.password = *user;
  } else {
    out.username = *user;
    out.password = *password;
  }
}

void parse_host_port(std::string_view url, std::string_view authority, RedisUrl& out) {
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) bad_url(url, "unclosed '[' in the host");
    out.host = std::string(authority.substr(1, close - 1));
    auto rest = authority.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') bad_url(url, "unexpected text after the IPv6 host");
    if (!rest.empty()) port_text = rest.substr(1);
  } else {
    auto colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) bad_url(url, "missing host");
  if (!port_text.empty() || authority.ends_with(':')) {
    auto port = parse_number(port_text, 1, 65535);
    if (!port) bad_url(url, "port must be a number from 1 to 65535");
    out.port = *port;
  }
}

}  // namespace

RedisUrl RedisUrl::parse(std::string_view url) {
  if (url.starts_with("rediss://")) bad_url(url, "TLS (rediss://) is not supported by this build");
  if (!url.starts_with(kScheme)) bad_url(url, "the scheme must be redis://");
  std::string_view rest = url.substr(kScheme.size());
  RedisUrl out;
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    parse_credentials(url, rest.substr(0, at), out);
    rest = rest.substr(at + 1);
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    bad_url(url, "query parameters are not supported");
  }
  auto slash = rest.find('/');
  parse_host_port(url, rest.substr(0, slash), out);
  if (slash != std::string_view::npos && slash + 1 < rest.size()) {
    auto db = parse_number(rest.substr(slash + 1), 0, 1 << 20);
    if (!db) bad_url(url, "the database must be a non-negative number");
    out.db = *db;
  }
  return out;
}

std::string RedisUrl::address() const {
  bool ipv6 = host.find(':') != std::string::npos;
  std::string shown = ipv6 ? "[" + host + "]" : host;
  return shown + ":" + std::to_string(port) + "/" + std::to_string(db);
}

std::string RedisUrl::redacted() const {
  std::string credentials;
  if (!username.empty() || !password.empty()) {
    credentials = username + (password.empty() ? "" : ":***") + "@";
  }
  return std::string(kScheme) + credentials + address();
}

}  // namespace blobferry
