// Uses only the installed public headers and library.
#include <cstdio>
#include <string>

#include <carrel/id.h>

int main() {
  const std::string want = "c012dbc7a89195dce46f41d5df184c2e";
  const std::string got = carrel::id_from_name("Workspace", "acme").to_hex();
  if (got != want) {
    std::fprintf(stderr, "id_from_name(Workspace, acme) = %s, want %s\n", got.c_str(), want.c_str());
    return 1;
  }
  std::printf("carrel consumer ok: %s\n", got.c_str());
  return 0;
}
