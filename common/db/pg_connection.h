// A libpq connection: parameterised statements only, errors translated.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <libpq-fe.h>

namespace blobferry {

struct PgConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct PgResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgConnPtr = std::unique_ptr<PGconn, PgConnDeleter>;
using PgResultPtr = std::unique_ptr<PGresult, PgResultDeleter>;

// A query result; text format. Columns are looked up by name once.
class PgResult {
 public:
  explicit PgResult(PgResultPtr result) : result_(std::move(result)) {}
  int rows() const { return PQntuples(result_.get()); }
  int column(const char* name) const;  // -1 when absent
  bool is_null(int row, int col) const { return PQgetisnull(result_.get(), row, col) != 0; }
  std::string value(int row, int col) const { return PQgetvalue(result_.get(), row, col); }
  long long affected() const;  // rows changed by an UPDATE/INSERT

 private:
  PgResultPtr result_;
};

// Parameters are text or SQL NULL (nullopt).
using PgParams = std::vector<std::optional<std::string>>;

class PgConnection {
 public:
  // Throws Error kConfig naming the host, port and database (never the
  // password) and telling the user to check --database-url.
  explicit PgConnection(const std::string& url);

  // Runs one parameterised statement. Throws Error: kTransient when the
  // connection broke (the next call reconnects), kConfig for SQL errors that
  // mean the schema is not what blobferry expects, kPermanent otherwise.
  PgResult exec(const std::string& sql, const PgParams& params = {});

  // Runs statements inside BEGIN … COMMIT; rolls back when fn throws.
  template <typename Fn>
  void transaction(Fn&& fn) {
    exec("BEGIN");
    try {
      fn(*this);
      exec("COMMIT");
    } catch (...) {
      try { exec("ROLLBACK"); } catch (...) {}
      throw;
    }
  }

  // host:port/dbname, for messages.
  const std::string& describe() const { return description_; }
  // Identifier quoting for names that cannot be parameters (table, column).
  std::string quote_identifier(const std::string& name) const;

 private:
  void connect();
  std::string url_;
  std::string description_;
  PgConnPtr conn_;
};

}  // namespace blobferry
