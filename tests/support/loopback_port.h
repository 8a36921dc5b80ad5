// Free TCP ports on 127.0.0.1 for servers a test starts itself.
#pragma once

namespace blobferry::testing {

// A port the kernel just handed out on 127.0.0.1. Another process may take it
// before the caller binds it, so callers retry on another port when binding fails.
// Throws std::runtime_error when no port can be had.
int free_loopback_port();

// Whether something accepts TCP connections on 127.0.0.1:port right now.
bool accepts_connections(int port);

}  // namespace blobferry::testing
