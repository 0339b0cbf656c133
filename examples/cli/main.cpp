// perfq: quantitative ASL perfusion from the command line.
#include "commands.hpp"

#include <perfq/version.hpp>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace {

const char* const kUsage =
    "usage: perfq <command> [options]\n"
    "\n"
    "commands:\n"
    "  cbf <sub-X_asl.nii.gz> -o <outdir>   quantify CBF from an ASL-BIDS series\n"
    "  phantom -o <dir>                     write the synthetic ASL-BIDS phantom\n"
    "  watershed ... -o <mask.nii.gz>       border-zone (watershed) masks\n"
    "  stats <map.nii.gz> --labels L -o T   regional statistics table\n"
    "  bids <bids_dir> <out_dir> participant|group   BIDS-App over a whole dataset\n"
    "  report <prefix_cbf.nii.gz>           visual report (HTML + PNG montages)\n"
    "  check <series or folder>             what a series needs before perfq cbf\n"
    "  register <moving> <fixed> -o <xfm>   rigid registration (ASL M0 to T1w)\n"
    "  resample <image> --reference R -o O  an image through transforms onto R's grid\n"
    "  info                                 version, backends and CUDA devices\n"
    "\n"
    "'perfq <command> --help' describes a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  if (std::strcmp(argv[1], "--version") == 0) {
    std::cout << "perfq " << perfq::version() << "\n";
    return 0;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (const auto status = perfq_cli::run_command(command, args, std::cout, std::cerr)) {
    return *status;
  }
  std::cerr << "perfq: unknown command '" << command << "'\n\n" << kUsage;
  return 2;
}
