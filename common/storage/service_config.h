// One service of storage.yml, as blobferry understands it.
#pragma once

#include <string>
#include <vector>

#include "common/storage/storage.h"

namespace blobferry {

enum class ServiceKind { kS3, kDisk, kMirror, kUnsupported };

enum class DiskLayout {
  kActiveStorage,  // root/ab/cd/abcd… as ActiveStorage's DiskService writes it
  kPlain,          // root/<key>, for Paperclip folders and other trees
};

struct ServiceConfig {
  std::string name;
  ServiceKind kind = ServiceKind::kUnsupported;
  std::string service_type;  // the `service:` value as written (S3, Disk, Mirror, GCS, …)

  // S3-compatible
  std::string bucket;
  std::string region = "us-east-1";
  std::string endpoint;  // empty means AWS (https://s3.<region>.amazonaws.com)
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  std::string provider;  // `provider:` as written (aws, r2, …); empty: inferred from the endpoint
  bool force_path_style = false;
  bool public_acl = false;     // `public: true`: uploads get x-amz-acl: public-read
  bool verify_tls = true;      // `ssl_verify_peer: false` turns it off
  std::string ca_bundle;       // `ssl_ca_bundle:` PEM file for private CAs
  Metadata upload_headers;     // `upload:` options as headers (cache_control -> cache-control)
  std::vector<std::string> warnings;  // accepted but ignored settings (an unknown `upload:` key), one line each
  int http_open_timeout = 10;  // seconds to connect (the AWS SDK option of that name)
  int http_read_timeout = 60;  // seconds without a byte before a transfer counts as stalled

  // Fleet-wide budget of this service, per direction (common/budget/); 0: none
  double max_requests_per_second = 0;  // `max_requests_per_second: 500`
  double max_bandwidth = 0;            // bytes per second; `max_bandwidth: 100MB/s`

  // Disk
  std::string root;
  DiskLayout layout = DiskLayout::kActiveStorage;

  // Mirror: read and explained, never a copy target
  std::string primary;
  std::vector<std::string> mirrors;
};

}  // namespace blobferry
