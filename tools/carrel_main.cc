// carrel: the operator's command line (tools/cli/).
namespace carrel::cli {
int run_main(int argc, char** argv);
}

int main(int argc, char** argv) {
  return carrel::cli::run_main(argc, argv);
}
