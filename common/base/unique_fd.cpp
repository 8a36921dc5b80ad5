// The one owner of a POSIX file descriptor: closes it exactly once, move-only.
#include "common/base/unique_fd.h"

#include <unistd.h>

namespace blobferry {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) reset(other.release());
  return *this;
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

}  // namespace blobferry
