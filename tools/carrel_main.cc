// carrel: the operator's command line (tools/cli/).
#include "tools/cli/process_guard.h"

namespace carrel::cli {
int run_main(int argc, char** argv);
}

int main(int argc, char** argv) {
  carrel::cli::install_process_guards();
  return carrel::cli::run_main(argc, argv);
}
