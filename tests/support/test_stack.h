// Real Redis, PostgreSQL and S3 servers for integration tests, started on free
// loopback ports through the same ops/dev-stack.sh a developer uses, and
// stopped (by pid) when the stack is destroyed.
#pragma once

#include <map>
#include <string>

namespace blobferry::testing {

struct StackOptions {
  bool redis = false;
  bool postgres = false;
  bool s3 = false;  // two s3rver instances: "source" (bucket `source`) and "target" (bucket `target`)
  // Ceph RADOS Gateway (ceph-mon, ceph-osd on memstore, radosgw): buckets
  // `rgw-source` and `rgw-target`, env RGW_ENDPOINT, RGW_ACCESS_KEY_ID,
  // RGW_SECRET_ACCESS_KEY, storage.yml services rgw_source and rgw_target.
  bool rgw = false;
  bool redis_aof = false;  // Redis with append-only-file persistence (appendfsync everysec)
};

class TestStack {
 public:
  // Starts what options asks for in a fresh scratch folder; throws
  // std::runtime_error naming the server that failed to start.
  explicit TestStack(StackOptions options);
  ~TestStack();  // stops exactly what it started
  TestStack(const TestStack&) = delete;
  TestStack& operator=(const TestStack&) = delete;

  // The environment dev-stack.sh printed: REDIS_URL, DATABASE_URL,
  // S3_SOURCE_ENDPOINT, S3_TARGET_ENDPOINT, S3_SOURCE_DIR, S3_TARGET_DIR,
  // BLOBFERRY_STORAGE_CONFIG, …; empty string when absent.
  std::string env(const std::string& name) const;
  std::string redis_url() const { return env("REDIS_URL"); }
  std::string database_url() const { return env("DATABASE_URL"); }
  // storage.yml with services `source` and `target` (S3, path style, key and
  // secret S3RVER) and `local` (Disk under the scratch folder).
  std::string storage_config() const { return env("BLOBFERRY_STORAGE_CONFIG"); }
  const std::string& dir() const { return dir_; }

  // Stops one server ("redis", "postgres", "s3-source", "s3-target", "rgw") as
  // `down` would, keeping its data; start_service brings it back on the same
  // port, so every URL above stays valid. Both throw std::runtime_error with
  // dev-stack.sh's last lines when it fails.
  void stop_service(const std::string& name);
  void start_service(const std::string& name);

 private:
  std::string dir_;
  std::map<std::string, std::string> env_;
};

}  // namespace blobferry::testing
