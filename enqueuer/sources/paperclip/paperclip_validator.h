// Proves each planned Paperclip file is on the target under its new key, and
// records its size and MD5 for the blob row, by listing the target once per
// key partition.
#pragma once

#include <atomic>
#include <optional>

#include "common/db/pg_connection.h"
#include "common/storage/storage.h"
#include "enqueuer/planning/migration_plan.h"
#include "enqueuer/sources/paperclip/paperclip_store.h"
#include "enqueuer/verification/validator.h"

namespace blobferry {

class PaperclipValidator {
 public:
  PaperclipValidator(MigrationPlan plan, Storage& target, ValidateOptions options, Validator::ProblemSink on_problem);

  // Checks the entries not yet verified (all of them with recheck) and stores
  // what it proved in the bookkeeping table.
  ValidationResult validate(PgConnection& db, bool recheck, const std::atomic<bool>& stop);

 private:
  // The proof for one entry, or nullopt (counted and reported). listed may be null.
  std::optional<PaperclipProof> prove(const PaperclipEntry& entry, const ObjectInfo* listed, ValidationResult& result);
  std::optional<std::string> md5_on_target(const PaperclipEntry& entry, const ObjectInfo& listed,
                                           ValidationResult& result);
  void report(const PaperclipEntry& entry, const std::string& what);

  MigrationPlan plan_;
  Storage& target_;
  ValidateOptions options_;
  Validator::ProblemSink on_problem_;
};

}  // namespace blobferry
