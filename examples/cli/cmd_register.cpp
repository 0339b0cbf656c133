// perfq register: rigid registration of an ASL image (its M0, or a series' mean) to the
// subject's T1w (perfq::io::register_rigid), written as an ITK transform with a JSON sidecar.
#include "cli_util.hpp"
#include "commands.hpp"
#include "registration_figure.hpp"

#include <perfq/io/nifti.hpp>
#include <perfq/io/registration.hpp>
#include <perfq/io/transform.hpp>
#include <perfq/version.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace perfq_cli {
namespace {

const char* const kRegisterHelp =
    "usage: perfq register <moving> <fixed> -o <transform> [options]\n"
    "\n"
    "Registers <moving> (an ASL M0, or an ASL series: the mean of its volumes) rigidly to\n"
    "<fixed> (the subject's T1w, preferably brain-masked or with --fixed-mask) by Mattes\n"
    "mutual information, and writes the ITK transform that resamples <moving> onto <fixed>\n"
    "(it maps points of <fixed> to points of <moving>). Name it as a BIDS derivative:\n"
    "  sub-X_from-asl_to-T1w_mode-image_xfm.txt\n"
    "A JSON sidecar beside it (the same name with .json) records the final metric, the\n"
    "iterations, the Euler parameters and the inputs.\n"
    "\n"
    "  -o FILE              the transform: .txt/.tfm (ITK text), .mat or .h5\n"
    "  --moving-mask M      restrict the metric to these voxels of <moving> (its grid)\n"
    "  --fixed-mask F       restrict the metric to these voxels of <fixed> (its grid)\n"
    "  --volume N           use volume N (from 0) of a 4D <moving> instead of the mean\n"
    "  --start S            identity (default: both in the scanner's coordinates of one\n"
    "                       session), moments (centres of mass) or geometry (grid centres)\n"
    "  --threads N          threads of the metric (0: all processors); 1 gives the same\n"
    "                       result bit for bit on every run\n"
    "  --figure PNG         a checkerboard of <fixed> and the registered <moving> (axial,\n"
    "                       coronal, sagittal) to check the alignment by eye\n"
    "  --overwrite          replace an existing transform (and sidecar, figure)\n"
    "\n"
    "Exit status: 0 done, 1 an input or registration error, 2 a usage error.\n";

/// The sidecar's name: the transform's with its extension replaced by .json.
std::string sidecar_path(const std::string& transform) {
  return fs::path(transform).replace_extension(".json").string();
}

perfq::io::RegistrationStart parse_start(const std::string& s) {
  if (s == "identity") return perfq::io::RegistrationStart::Identity;
  if (s == "moments") return perfq::io::RegistrationStart::Moments;
  if (s == "geometry") return perfq::io::RegistrationStart::Geometry;
  throw UsageError{"--start: expected identity, moments or geometry, got '" + s + "'"};
}

}  // namespace

int run_register(const std::vector<std::string>& raw, std::ostream& out, std::ostream& /*err*/) {
  if (wants_help(raw)) {
    out << kRegisterHelp;
    return 0;
  }
  const Args args(
      raw, {"-o", "--moving-mask", "--fixed-mask", "--volume", "--start", "--threads", "--figure"},
      {"--overwrite"}, {});
  if (args.positional().size() != 2) {
    throw UsageError{"expected <moving> and <fixed>, got " +
                     std::to_string(args.positional().size()) + " arguments"};
  }
  const auto output = args.text("-o");
  if (!output) throw UsageError{"-o <transform> is required"};
  const std::string ext = fs::path(*output).extension().string();
  if (ext != ".txt" && ext != ".tfm" && ext != ".mat" && ext != ".h5") {
    throw UsageError{"-o: expected a .txt, .tfm, .mat or .h5 file, got '" + *output + "'"};
  }
  perfq::io::RegistrationOptions options;
  if (auto s = args.text("--start")) options.start = parse_start(*s);
  options.threads = parse_execution(args).threads;
  const auto volume = args.integer("--volume");
  const auto figure = args.text("--figure");
  const bool overwrite = args.flag("--overwrite");
  for (const std::string& path : {*output, sidecar_path(*output), figure.value_or("")}) {
    if (!path.empty() && !overwrite && fs::exists(path)) {
      throw perfq::InputError(path, "", "exists; give --overwrite to replace it");
    }
  }

  const std::string& moving_path = args.positional()[0];
  const std::string& fixed_path = args.positional()[1];
  const perfq::Volume<float> moving =
      registration_volume(perfq::io::read_nifti(moving_path), volume, moving_path);
  const perfq::Image<float> fixed = perfq::io::read_nifti_3d(fixed_path);
  std::optional<perfq::Mask> moving_mask;
  std::optional<perfq::Mask> fixed_mask;
  if (auto m = args.text("--moving-mask")) {
    moving_mask = perfq::io::read_nifti_mask(*m);
    perfq::io::require_same_grid(*m, moving_mask->geometry(), moving.geometry(), moving_path);
    options.moving_mask = &*moving_mask;
  }
  if (auto f = args.text("--fixed-mask")) {
    fixed_mask = perfq::io::read_nifti_mask(*f);
    perfq::io::require_same_grid(*f, fixed_mask->geometry(), fixed.geometry(), fixed_path);
    options.fixed_mask = &*fixed_mask;
  }

  const auto t0 = std::chrono::steady_clock::now();
  const perfq::io::RegistrationResult r = perfq::io::register_rigid(moving, fixed, options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  perfq::io::write_transform(*output, r.transform);
  constexpr double kDeg = 180.0 / M_PI;
  nlohmann::ordered_json j;
  j["Description"] =
      "Rigid transform from the moving image's space to the fixed image's "
      "(ITK convention: maps fixed-space points to moving-space points)";
  j["GeneratedBy"] = {{"Name", "perfq"}, {"Version", perfq::version()}};
  j["Sources"] = {moving_path, fixed_path};
  j["MovingImage"] = moving_path;
  j["FixedImage"] = fixed_path;
  if (volume) {
    j["MovingVolume"] = *volume;
  } else {
    j["MovingVolume"] = "mean";
  }
  if (moving_mask) j["MovingMask"] = *args.text("--moving-mask");
  if (fixed_mask) j["FixedMask"] = *args.text("--fixed-mask");
  j["TransformType"] = "Euler3DTransform_double_3_3";
  j["Metric"] = "MattesMutualInformation";
  j["HistogramBins"] = options.histogram_bins;
  j["InitialMetric"] = r.initial_metric;
  j["FinalMetric"] = r.final_metric;
  j["MetricSamples"] = r.samples;
  j["SampledImage"] = r.sampled_image;
  j["Iterations"] = r.iterations;
  j["StopCondition"] = r.stop_condition;
  j["AnglesRadians"] = r.angles;
  j["AnglesDegrees"] = {r.angles[0] * kDeg, r.angles[1] * kDeg, r.angles[2] * kDeg};
  j["TranslationMm"] = r.translation;
  j["CenterMm"] = r.center;
  j["Seconds"] = seconds;
  perfq::io::write_text_atomic(sidecar_path(*output), j.dump(2) + "\n");
  if (figure) {
    report::write_png(*figure, registration_checkerboard(moving, fixed, r.transform));
  }

  out << "metric (Mattes MI) " << r.initial_metric << " -> " << r.final_metric << " (" << r.samples
      << " samples), iterations";
  for (std::size_t n : r.iterations) out << " " << n;
  out << ", " << seconds << " s\n";
  out << "rotation (deg) " << r.angles[0] * kDeg << " " << r.angles[1] * kDeg << " "
      << r.angles[2] * kDeg << ", translation (mm) " << r.translation[0] << " " << r.translation[1]
      << " " << r.translation[2] << "\n";
  out << "wrote " << *output << " and " << sidecar_path(*output);
  if (figure) out << " and " << *figure;
  out << "\n";
  return 0;
}

}  // namespace perfq_cli
