// A libpq connection: parameterised statements only, errors translated.
#include "common/db/pg_connection.h"

#include <cstdlib>

#include "common/base/error.h"

namespace blobferry {
namespace {

// libpq messages end with a newline and may span lines; errors are one line.
std::string one_line(const char* message) {
  std::string s = message ? message : "";
  for (char& c : s) if (c == '\n' || c == '\r') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// SQLSTATE classes that mean the schema or permissions are not what we need.
bool is_schema_error(const std::string& sqlstate) {
  return sqlstate.rfind("42", 0) == 0 || sqlstate.rfind("3D", 0) == 0 || sqlstate.rfind("28", 0) == 0;
}

}  // namespace

int PgResult::column(const char* name) const { return PQfnumber(result_.get(), name); }

long long PgResult::affected() const {
  const char* tuples = PQcmdTuples(result_.get());
  return tuples && *tuples ? std::atoll(tuples) : 0;
}

PgConnection::PgConnection(const std::string& url) : url_(url) {
  if (url_.empty()) {
    throw config_error("no database: pass --database-url or set DATABASE_URL (postgresql://user@host:port/db)");
  }
  connect();
}

void PgConnection::connect() {
  conn_.reset(PQconnectdb(url_.c_str()));
  if (!conn_) throw config_error("PQconnectdb: out of memory");
  description_ = std::string(PQhost(conn_.get()) ? PQhost(conn_.get()) : "?") + ":" +
                 (PQport(conn_.get()) ? PQport(conn_.get()) : "?") + "/" +
                 (PQdb(conn_.get()) ? PQdb(conn_.get()) : "?");
  if (PQstatus(conn_.get()) != CONNECTION_OK) {
    const std::string message = one_line(PQerrorMessage(conn_.get()));
    conn_.reset();
    throw config_error("cannot connect to PostgreSQL at " + description_ + ": " + message +
                       "; check --database-url or DATABASE_URL");
  }
  // NOTICEs ("relation already exists, skipping") are not for our users' terminals.
  PQsetNoticeProcessor(conn_.get(), [](void*, const char*) {}, nullptr);
}

PgResult PgConnection::exec(const std::string& sql, const PgParams& params) {
  if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) {
    try {
      connect();
    } catch (const Error& e) {
      throw Error(ErrorKind::kTransient, FailureReason::kDatabase, e.what());
    }
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PgResultPtr result(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                                  values.data(), nullptr, nullptr, 0));
  const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return PgResult(std::move(result));

  const std::string message = one_line(result ? PQresultErrorMessage(result.get()) : PQerrorMessage(conn_.get()));
  if (PQstatus(conn_.get()) != CONNECTION_OK) {
    conn_.reset();
    throw Error(ErrorKind::kTransient, FailureReason::kDatabase, "PostgreSQL at " + description_ + " went away: " + message);
  }
  const char* state = result ? PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
  const std::string sqlstate = state ? state : "";
  if (is_schema_error(sqlstate)) {
    throw Error(ErrorKind::kConfig, FailureReason::kDatabase, "PostgreSQL at " + description_ + ": " + message);
  }
  throw Error(ErrorKind::kPermanent, FailureReason::kDatabase, "PostgreSQL at " + description_ + ": " + message);
}

std::string PgConnection::quote_identifier(const std::string& name) const {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += "\"\"";
    else out.push_back(c);
  }
  return out + "\"";
}

}  // namespace blobferry
