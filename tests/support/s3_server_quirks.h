// What the test S3 server does differently from Amazon S3, found by asking it directly.
#pragma once

#include <string>

namespace blobferry::testing {

// s3rver 3.7.1, the pinned test server, departs from S3 in these ways. Each is
// probed with plain unsigned HTTP (which s3rver accepts), never through a
// blobferry backend, so a suite can skip exactly the checks the server cannot
// support and runs them again on a server that behaves.
struct S3ServerQuirks {
  bool ignores_content_md5 = false;            // stores a body whose Content-MD5 is wrong (S3: 400 BadDigest)
  bool range_ending_at_zero_is_ignored = false;  // "bytes=0-0" returns the whole object
  bool no_abort_multipart = false;             // DELETE ?uploadId= answers 405 (S3: 204 or 404 NoSuchUpload)
  bool multipart_etag_without_part_count = false;  // completed etag is the MD5 of the whole, no "-N"
  bool lists_out_of_byte_order = false;        // "p/a/b" listed before "p/a-b", and pages repeat keys
  bool rejects_double_slash = false;           // a key with "//" in the path answers 404
};

// Probes the server behind bucket_url (e.g. "http://127.0.0.1:PORT/source")
// with objects under "quirk-probe/". Throws std::runtime_error when the server
// does not answer at all.
S3ServerQuirks probe_s3_server_quirks(const std::string& bucket_url);

}  // namespace blobferry::testing
