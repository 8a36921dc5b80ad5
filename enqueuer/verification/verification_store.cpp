// Which blobs `validate` proved are on the target: the only table blobferry
// writes, its own, beside the application's (never inside them).
#include "enqueuer/verification/verification_store.h"

#include <cstdlib>

#include "common/base/error.h"
#include "common/db/pg_array.h"
#include "enqueuer/sources/blobs/blob_table.h"

namespace blobferry {

std::string VerificationStore::create_statement() {
  return std::string("CREATE TABLE IF NOT EXISTS ") + kTable +
         " (migration text NOT NULL, blob_id text NOT NULL, verified_at timestamptz NOT NULL DEFAULT now(),"
         " PRIMARY KEY (migration, blob_id))";
}

VerificationStore::VerificationStore(PgConnection& db) : db_(db) {
  try {
    db_.exec(create_statement());
  } catch (const Error& e) {
    throw config_error(std::string("cannot create ") + kTable + " in " + db_.describe() + " (" + e.what() +
                       "): grant CREATE to this user, or have an administrator run: " + create_statement());
  }
}

void VerificationStore::mark(const std::string& migration, const std::vector<std::string>& blob_ids) {
  if (blob_ids.empty()) return;
  db_.exec(std::string("INSERT INTO ") + kTable +
               " (migration, blob_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
           {migration, pg_array_literal(blob_ids)});
}

long long VerificationStore::forget(const std::string& migration) {
  return db_.exec(std::string("DELETE FROM ") + kTable + " WHERE migration = $1", {migration}).affected();
}

long long VerificationStore::count(const std::string& migration) { return count_rows(db_, migration); }

long long VerificationStore::count_if_created(PgConnection& db, const std::string& migration) {
  if (db.exec("SELECT to_regclass($1) IS NOT NULL", {kTable}).value(0, 0) != "t") return 0;
  return count_rows(db, migration);
}

long long VerificationStore::count_rows(PgConnection& db, const std::string& migration) {
  PgResult r = db.exec(std::string("SELECT count(*) FROM ") + kTable + " WHERE migration = $1", {migration});
  return std::atoll(r.value(0, 0).c_str());
}

}  // namespace blobferry
