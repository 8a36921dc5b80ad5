// A parsed redis:// URL; its password is kept for AUTH and never printed.
#pragma once

#include <string>
#include <string_view>

namespace blobferry {

struct RedisUrl {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string username;  // Redis 6 ACL user; empty means the default user
  std::string password;  // percent-decoded; empty means no AUTH

  // redis://[[user]:password@]host[:port][/db], host may be [IPv6]. Throws
  // Error of kind kConfig naming the URL (password masked) and the fix;
  // rediss:// and unix sockets are rejected as unsupported by this build.
  static RedisUrl parse(std::string_view url);

  // "host:port/db" for error messages and logs.
  std::string address() const;
  // The URL with the password replaced by "***".
  std::string redacted() const;
};

}  // namespace blobferry
