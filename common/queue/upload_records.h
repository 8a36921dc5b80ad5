// The open multipart uploads of a migration's giant objects, kept in Redis beside its queue: upload id, plan, parts done.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace blobferry {

class JobQueue;
class RedisClient;

// One object being copied as part jobs. Written once when the upload is
// created; its parts are recorded beside it.
struct UploadRecord {
  std::string target_key;  // the record's name: one open upload per target key
  std::string upload_id;
  std::string source;  // service names, never credentials
  std::string target;
  std::string source_key;
  std::uint64_t size = 0;
  std::uint64_t part_size = 0;
  int part_count = 0;
  std::string source_etag;  // the version every part is read from
  std::string md5;          // base64 MD5 the whole object must have

  bool operator==(const UploadRecord&) const = default;
};

// A part whose UploadPart succeeded with its Content-MD5.
struct RecordedPart {
  std::string etag;
  std::string md5;  // base64
};

// What status and cancel show of an upload.
struct UploadProgress {
  UploadRecord record;
  int parts_done = 0;
  int part_uploads = 0;  // UploadPart requests sent, redone ones included
};

// Keys: bf:{<migration>}:uploads (hash target key -> record JSON) and
// bf:{<migration>}:upload:<upload id> (hash: p:<n> -> "etag md5", a:<n> ->
// UploadPart requests sent for part n, done -> parts recorded, pushed -> 1
// once the part jobs are queued). Every change that depends on the record
// is one Lua script that first checks the record still names that upload,
// so a stale part job (its upload restarted or completed) changes nothing.
// Thread-safe like RedisClient; calls throw Error (kTransient when Redis is away).
class UploadRecords {
 public:
  UploadRecords(std::shared_ptr<RedisClient> client, const std::string& migration);
  // The records of a queue, or nullptr when it is not a RedisQueue (the
  // embedded migrate keeps its single-job multipart path).
  static std::unique_ptr<UploadRecords> of(JobQueue& queue);

  // Records a new upload for record.target_key; false (nothing written) when
  // one is recorded already: two coordinators of one object, one wins.
  bool open(const UploadRecord& record);
  std::optional<UploadRecord> find(const std::string& target_key);
  // Every open upload with its progress, sorted by target key.
  std::vector<UploadProgress> all();

  // Marks the part jobs of the upload queued; false when the record is stale.
  bool mark_pushed(const UploadRecord& record);
  bool pushed(const UploadRecord& record);
  // Counts one UploadPart request for part `number`; returns the count so far.
  int note_upload(const UploadRecord& record, int number);
  int uploads_of(const UploadRecord& record, int number);
  bool has_part(const UploadRecord& record, int number);

  struct Recorded {
    bool fresh = false;  // this call recorded the part (it was not recorded yet)
    int done = 0;        // parts recorded now
  };
  // Records part `number`; nullopt when the record no longer names this upload.
  std::optional<Recorded> record_part(const UploadRecord& record, int number, const RecordedPart& part);
  // Forgets part `number` (ListParts did not show it); false when stale.
  bool forget_part(const UploadRecord& record, int number);
  std::map<int, RecordedPart> parts(const UploadRecord& record);

  // Drops the record and its parts if it still names this upload; true when
  // this call dropped it (exactly one caller wins).
  bool close(const UploadRecord& record);
  // Drops every record of the migration (cancel --purge, after aborting them).
  void purge();

  // The record's JSON form (tests, and the stored value).
  static std::string encode(const UploadRecord& record);
  // Throws Error(kPermanent, "malformed_job") naming what is wrong.
  static UploadRecord decode(const std::string& target_key, const std::string& json);

 private:
  std::string parts_key(const std::string& upload_id) const;

  std::shared_ptr<RedisClient> client_;
  std::string prefix_;  // "bf:{<migration>}:"
};

}  // namespace blobferry
