// blobferry: one binary, subcommands for the control plane and the data plane.
#include <cstdio>

int main() {
  std::puts("blobferry: not yet");
  return 0;
}
