// Quantifies an ASL-BIDS series in process with perfq's pipeline (perfq/io/pipeline.hpp) and
// writes the files perfq cbf writes: what a program linking perfq calls instead of running
// the perfq tool. Options are perfq cbf's, checked as it checks them.
//
//   perfq_quantify_series <path/sub-X_asl.nii[.gz]> <out_dir> [perfq cbf options…]
//   perfq_quantify_series --phantom <bids_dir> <out_dir>   (writes the phantom first)
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/phantom.hpp>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: perfq_quantify_series <sub-X_asl.nii[.gz]> <out_dir> [options]\n"
                 "       perfq_quantify_series --phantom <bids_dir> <out_dir>\n";
    return 2;
  }
  try {
    std::string asl = argv[1];
    std::string out = argv[2];
    int first_option = 3;
    if (std::strcmp(argv[1], "--phantom") == 0) {
      if (argc < 4) {
        std::cerr << "--phantom needs a dataset folder and an output folder\n";
        return 2;
      }
      perfq::PhantomOptions phantom;
      phantom.dims = {40, 48, 32};
      asl = perfq::io::write_phantom_bids(perfq::make_phantom(phantom), argv[2]);
      out = argv[3];
      first_option = 4;
    }
    perfq::io::SeriesRequest request = perfq::io::parse_series_options(
        std::vector<std::string>(argv + first_option, argv + argc));
    request.execution.backend = perfq::Backend::Cpu;

    const perfq::io::SeriesMaps maps = perfq::io::quantify_series(asl, request);
    perfq::io::write_series_outputs(maps, out, /*overwrite=*/true);  // all or nothing
    std::cout << maps.asl_path << ": " << maps.delays << (maps.delays == 1 ? " delay" : " delays")
              << " on " << perfq::to_string(maps.backend) << ", median CBF " << maps.median_cbf
              << " ml/100 g/min";
    if (maps.att) std::cout << ", median ATT " << maps.median_att << " s";
    std::cout << "\n";
    for (const auto& warning : maps.warnings) std::cerr << "warning: " << warning << "\n";
    return 0;
  } catch (const perfq::InvalidArgument& e) {
    std::cerr << "usage: " << e.what() << "\n";
    return 2;
  } catch (const perfq::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
