// perfq: quantitative ASL perfusion from the command line.
#include "cli_util.hpp"
#include "commands.hpp"

#include <perfq/errors.hpp>
#include <perfq/version.hpp>

#include <cstring>
#include <exception>
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
  try {
    if (command == "cbf") return perfq_cli::run_cbf(args);
    if (command == "phantom") return perfq_cli::run_phantom(args);
    if (command == "info") return perfq_cli::run_info(args);
    if (command == "watershed") return perfq_cli::run_watershed(args);
    if (command == "stats") return perfq_cli::run_stats(args);
    if (command == "bids") return perfq_cli::run_bids(args);
    if (command == "report") return perfq_cli::run_report(args);
    std::cerr << "perfq: unknown command '" << command << "'\n\n" << kUsage;
    return 2;
  } catch (const perfq_cli::UsageError& e) {
    std::cerr << "perfq " << command << ": " << e.message << "\n";
    std::cerr << "(see 'perfq " << command << " --help')\n";
    return 2;
  } catch (const perfq::Error& e) {
    std::cerr << "perfq " << command << ": error: " << perfq_cli::name_final_outputs(e.what())
              << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "perfq " << command
              << ": unexpected error: " << perfq_cli::name_final_outputs(e.what()) << "\n";
    return 1;
  }
}
