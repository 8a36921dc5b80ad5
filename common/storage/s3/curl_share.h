// The process's libcurl share handle: one DNS cache and one TLS session cache for every request of every thread.
#pragma once

#include <curl/curl.h>

namespace blobferry {

// Without it each easy handle resolves names and negotiates TLS sessions on
// its own: a pool of 16 handles to one endpoint made 16 full handshakes, and
// so did every fresh handle of the event loop. Connections themselves are not
// shared here: a blocking handle keeps its own, and the event loop's multi
// handle pools those of its transfers (transfer_loop.h).
class CurlShare {
 public:
  // The one instance; made on first use, never destroyed (handles made on
  // any thread point to it until the process exits).
  static CURLSH* handle();
};

}  // namespace blobferry
