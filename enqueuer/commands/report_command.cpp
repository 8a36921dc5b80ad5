// `blobferry report`: every failed or dead key of a migration, and the success totals, as CSV or JSONL.
#include "enqueuer/commands/report_command.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/base/error.h"
#include "common/queue/job.h"
#include "enqueuer/commands/status_command.h"

namespace blobferry {
namespace {

using Json = nlohmann::json;

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

template <typename T>
std::string text_or_empty(const std::optional<T>& value) {
  return value ? std::to_string(*value) : std::string();
}

template <typename T>
Json json_or_null(const std::optional<T>& value) {
  return value ? Json(*value) : Json(nullptr);
}

Error write_error(const std::string& call, const std::string& path) {
  return Error(ErrorKind::kPermanent, FailureReason::kIo, call + " " + path + ": " + std::strerror(errno));
}

// Streams rows to `out` as they are read from Redis, so memory stays flat
// however many keys failed. Returns how many rows it wrote.
std::size_t write_report(std::FILE* out, JobQueue& queue, bool csv, bool failed_only) {
  return stream_report(queue, csv, failed_only, [out](std::string_view line) {
    std::fwrite(line.data(), 1, line.size(), out);
  });
}

// Through a temporary file in the same folder renamed at the end, so FILE is
// either the whole report or untouched, never half-written.
std::size_t write_report_file(const std::string& path, JobQueue& queue, bool csv, bool failed_only) {
  const std::string temp = path + ".tmp-" + std::to_string(getpid());
  FilePtr file(std::fopen(temp.c_str(), "wb"));
  if (!file) {
    throw config_error("cannot create report " + temp + ": " + std::strerror(errno) +
                       "; check that --output names a writable folder");
  }
  try {
    const std::size_t rows = write_report(file.get(), queue, csv, failed_only);
    if (std::fflush(file.get()) != 0 || std::ferror(file.get()) || fsync(fileno(file.get())) != 0) {
      throw write_error("write", temp);
    }
    if (std::fclose(file.release()) != 0) throw write_error("close", temp);
    if (std::rename(temp.c_str(), path.c_str()) != 0) throw write_error("rename to " + path + " of", temp);
    return rows;
  } catch (...) {
    file.reset();
    std::remove(temp.c_str());
    throw;
  }
}

}  // namespace

std::size_t stream_report(JobQueue& queue, bool csv, bool failed_only,
                          const std::function<void(std::string_view)>& write) {
  std::size_t rows = 0;
  auto emit = [&](const ReportRow& row) {
    write(csv ? csv_line(row) : jsonl_line(row));
    ++rows;
  };
  const Counts counts = queue.counts();
  if (csv) write(csv_header());
  queue.for_each_failure([&](const FailureRecord& record) { emit(row_of_failure(record)); });
  queue.for_each_dead([&](const DeadEntry& entry) {
    // A poison job's keys each have a failure record already (reported above).
    if (entry.reason != to_string(FailureReason::kPoison)) emit(row_of_dead(entry));
  });
  if (!failed_only) {
    for (const ReportRow& row : summary_rows(counts)) emit(row);
  }
  return rows;
}

ReportRow row_of_failure(const FailureRecord& record) {
  ReportRow row;
  row.key = record.key;
  row.blob_id = record.blob_id;
  row.status = record.reason == to_string(FailureReason::kPoison) ? "dead" : "failed";
  row.reason = record.reason;
  row.message = record.message;
  // A Paperclip file's key says little to a user: name its record too.
  try {
    const Job job = decode_job(record.job_payload);
    if (job.objects.size() == 1 && !job.objects.front().record.empty()) {
      row.message = "record " + job.objects.front().record + ": " + row.message;
    }
  } catch (const Error&) {
  }
  row.attempts = record.attempts;
  row.time = record.time;
  return row;
}

ReportRow row_of_dead(const DeadEntry& entry) {
  ReportRow row;
  row.status = "dead";
  row.reason = entry.reason.empty() ? std::string(to_string(FailureReason::kMalformed)) : entry.reason;
  row.message = entry.error;
  row.time = entry.time;
  return row;
}

std::vector<ReportRow> summary_rows(const Counts& counts) {
  ReportRow copied, skipped;
  copied.status = "copied";
  copied.objects = counts.copied;
  copied.bytes = counts.bytes_copied;
  skipped.status = "skipped";
  skipped.objects = counts.skipped;
  skipped.bytes = counts.bytes_skipped;
  return {copied, skipped};
}

std::string csv_field(std::string_view value) {
  if (value.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(value);
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + '"';
}

const std::string& csv_header() {
  static const std::string header = "key,blob_id,status,reason,message,attempts,time,objects,bytes\r\n";
  return header;
}

std::string csv_line(const ReportRow& row) {
  return csv_field(row.key.value_or("")) + ',' + text_or_empty(row.blob_id) + ',' + csv_field(row.status) + ',' +
         csv_field(row.reason) + ',' + csv_field(row.message) + ',' + text_or_empty(row.attempts) + ',' +
         csv_field(row.time) + ',' + std::to_string(row.objects) + ',' + text_or_empty(row.bytes) + "\r\n";
}

std::string jsonl_line(const ReportRow& row) {
  const Json json{{"key", json_or_null(row.key)},   {"blob_id", json_or_null(row.blob_id)},
                  {"status", row.status},           {"reason", row.reason},
                  {"message", row.message},         {"attempts", json_or_null(row.attempts)},
                  {"time", row.time},               {"objects", row.objects},
                  {"bytes", json_or_null(row.bytes)}};
  // Keys are bytes, not always UTF-8: replace what JSON cannot carry rather than fail.
  return json.dump(-1, ' ', false, Json::error_handler_t::replace) + '\n';
}

void ReportCommand::define(CLI::App& sub) {
  sub.add_option("--migration", migration_, "migration name (as given to enqueue)")->required();
  sub.add_option("--format", format_, "csv (RFC 4180, with a header row) or jsonl (one object per line)")
      ->check(CLI::IsMember({"csv", "jsonl"}))
      ->capture_default_str();
  sub.add_flag("--failed", failed_only_, "only the failed and dead entries, without the success totals");
  sub.add_option("--output", output_, "write to FILE (whole or not at all) instead of standard output");
  sub.footer(
      "Columns: key, blob_id, status, reason, message, attempts, time, objects, bytes. Successes are kept as "
      "counters only, by design (memory stays flat at any scale), so failed and dead entries are listed one key "
      "per row (objects = 1) and successes as one total row per status, copied and skipped (no key; objects and "
      "bytes are the totals). Status dead: a malformed payload (no key) or a key whose job kept killing workers "
      "(reason poison).");
}

int ReportCommand::run(const GlobalOptions& global) {
  auto queue = open_existing_migration(global.redis_url, migration_);
  const bool csv = format_ == "csv";
  if (output_.empty()) {
    write_report(stdout, *queue, csv, failed_only_);
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) throw write_error("write", "standard output");
    return 0;
  }
  const std::size_t rows = write_report_file(output_, *queue, csv, failed_only_);
  std::fprintf(stderr, "wrote %zu rows to %s\n", rows, output_.c_str());
  return 0;
}

}  // namespace blobferry
