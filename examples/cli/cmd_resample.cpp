// perfq resample: an image (a map, a label atlas, a mask) through transforms onto another
// image's grid (perfq::io::resample, resample_labels, resample_mask).
#include "cli_util.hpp"
#include "commands.hpp"

#include <perfq/errors.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/resample.hpp>
#include <perfq/io/transform.hpp>

#include <array>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

namespace perfq_cli {
namespace {

const char* const kResampleHelp =
    "usage: perfq resample <image.nii[.gz]> --reference <image on the target grid>\n"
    "                      [--transform T[,T2...]] -o <out.nii[.gz]> [options]\n"
    "\n"
    "Resamples an image onto the grid of the reference image (its first volume's grid; the\n"
    "reference may be 4D) through the transforms given, in one interpolation. Each target\n"
    "voxel is sampled at sub-points spread over its footprint (--footprint), so that a\n"
    "coarse grid receives partial-volume averages (maps), majority votes (--labels) or the\n"
    "fraction inside (--mask), not a single point.\n"
    "\n"
    "Transforms are ITK files (.txt, .tfm, .mat, .h5) as ITK, ANTs, fMRIPrep and perfq\n"
    "register write them, listed in image-mode order: the first takes the image's space A to\n"
    "a space B, the next B to C, ..., the last ends in the reference's space. A file named\n"
    "from-A_to-B_mode-image_xfm resamples an image of A onto a grid of B. An item written\n"
    "inverse:FILE uses the inverse of a linear (rigid or affine) transform file: it goes\n"
    "from B to A. Without --transform the image and the reference share one space.\n"
    "\n"
    "Example: an MNI atlas into ASL space, with fMRIPrep's MNI-to-T1w transform and perfq\n"
    "register's ASL-to-T1w transform (inverted: T1w to ASL):\n"
    "  perfq resample atlas_space-MNI152NLin6Asym.nii.gz --reference sub-01_asl.nii.gz \\\n"
    "    --transform sub-01_from-MNI152NLin6Asym_to-T1w_mode-image_xfm.h5,"
    "inverse:sub-01_from-asl_to-T1w_mode-image_xfm.txt \\\n"
    "    --labels -o sub-01_space-asl_atlas.nii.gz\n"
    "\n"
    "options:\n"
    "  --reference FILE        the image whose grid is resampled onto (3D or 4D)\n"
    "  --transform LIST        comma-separated transform files, each FILE or inverse:FILE\n"
    "  -o, --output FILE       the resampled image, .nii or .nii.gz (float32; int32 with\n"
    "                          --labels, uint8 with --mask); written atomically\n"
    "  --overwrite             replace the output if it exists (default: refuse)\n"
    "  --labels                the image holds integer labels: majority vote over each\n"
    "                          voxel's sub-points (ties: the label at the voxel centre when\n"
    "                          tied, else the smallest); with --interpolation nearest, the\n"
    "                          label at the centre\n"
    "  --mask                  the image is a mask (nonzero inside): a voxel is inside when\n"
    "                          at least --min-fraction of it is inside\n"
    "  --min-fraction F        with --mask: the fraction, in (0, 1] (default 0.5)\n"
    "  --interpolation linear|nearest\n"
    "                          how values are read between voxels (default linear; labels:\n"
    "                          nearest selects the centre's label instead of the vote)\n"
    "  --footprint N           sub-points per axis over each voxel: 0 chooses about one per\n"
    "                          source voxel spanned (default), 1 the centre alone, at most 8\n"
    "  --outside V             value of points outside the image (default 0; maps only;\n"
    "                          labels outside are 0, masks outside)\n"
    "  --threads N             CPU threads (default 0: all)\n"
    "\n"
    "Exit status: 0 written, 1 an input error (the message names the file), 2 a usage error.\n";

/// The transforms of --transform, in the order given, each read (and inverted) here.
perfq::io::Transform read_chain(const std::string& list) {
  std::vector<perfq::io::Transform> steps;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = list.find(',', start);
    std::string item = list.substr(start, comma == std::string::npos ? comma : comma - start);
    if (item.empty()) throw UsageError{"--transform: an empty item in '" + list + "'"};
    const std::string prefix = "inverse:";
    const bool invert = item.compare(0, prefix.size(), prefix) == 0;
    if (invert) item = item.substr(prefix.size());
    if (item.empty()) throw UsageError{"--transform: inverse: needs a file"};
    perfq::io::Transform t = perfq::io::read_transform(item);
    if (invert) {
      try {
        t = t.inverse();
      } catch (const perfq::InvalidArgument& e) {
        throw perfq::InputError(item, "", std::string("cannot be inverted: ") + e.what());
      }
    }
    steps.push_back(std::move(t));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return perfq::io::compose(steps);
}

bool nifti_name(const std::string& path) {
  return (ends_with(path, ".nii") && path.size() > 4) ||
         (ends_with(path, ".nii.gz") && path.size() > 7);
}

}  // namespace

int run_resample(const std::vector<std::string>& raw, std::ostream& out, std::ostream& /*err*/) {
  if (wants_help(raw)) {
    out << kResampleHelp;
    return 0;
  }
  const Args args(raw,
                  {"--output", "--reference", "--transform", "--interpolation", "--footprint",
                   "--min-fraction", "--outside", "--threads"},
                  {"--labels", "--mask", "--overwrite"}, {{"-o", "--output"}});
  if (args.positional().size() != 1) {
    throw UsageError{"expected exactly one image, got " + std::to_string(args.positional().size())};
  }
  const auto out_path = args.text("--output");
  if (!out_path) throw UsageError{"-o/--output is required"};
  if (!nifti_name(*out_path)) {
    throw UsageError{"-o/--output must name a .nii or .nii.gz file, got '" + *out_path + "'"};
  }
  const auto reference = args.text("--reference");
  if (!reference) throw UsageError{"--reference is required (an image on the target grid)"};
  const bool labels = args.flag("--labels"), mask = args.flag("--mask");
  if (labels && mask) throw UsageError{"--labels and --mask exclude each other"};

  perfq::io::ResampleOptions options;
  perfq::io::LabelRule rule = perfq::io::LabelRule::Majority;
  if (const auto interpolation = args.text("--interpolation")) {
    if (*interpolation != "linear" && *interpolation != "nearest") {
      throw UsageError{"--interpolation: expected linear or nearest, got '" + *interpolation + "'"};
    }
    if (mask) throw UsageError{"--interpolation does not apply to --mask (a fraction inside)"};
    if (labels && *interpolation == "linear") {
      throw UsageError{
          "--interpolation linear does not apply to --labels (majority vote, or "
          "nearest)"};
    }
    const bool nearest = *interpolation == "nearest";
    options.interpolation =
        nearest ? perfq::io::Interpolation::Nearest : perfq::io::Interpolation::Linear;
    if (labels && nearest) rule = perfq::io::LabelRule::Nearest;
  }
  if (const auto n = args.integer("--footprint")) {
    if (*n < 0 || *n > static_cast<long>(perfq::io::kMaxFootprint)) {
      throw UsageError{"--footprint: expected 0 to " + std::to_string(perfq::io::kMaxFootprint) +
                       ", got " + *args.text("--footprint")};
    }
    options.footprint = static_cast<std::size_t>(*n);
  }
  double min_fraction = 0.5;
  if (const auto f = args.number("--min-fraction")) {
    if (!mask) throw UsageError{"--min-fraction applies to --mask only"};
    if (!(*f > 0.0 && *f <= 1.0)) {
      throw UsageError{"--min-fraction: expected a fraction in (0, 1], got " +
                       *args.text("--min-fraction")};
    }
    min_fraction = *f;
  }
  if (const auto v = args.number("--outside")) {
    if (labels || mask) throw UsageError{"--outside applies to maps only (not --labels, --mask)"};
    options.outside = static_cast<float>(*v);
  }
  options.threads = parse_execution(args).threads;
  const fs::path target_path(*out_path);
  refuse_existing(target_path.has_parent_path() ? target_path.parent_path() : fs::path("."),
                  {target_path.filename().string()}, args.flag("--overwrite"));

  const perfq::io::Transform transform =
      args.text("--transform") ? read_chain(*args.text("--transform")) : perfq::io::Transform();
  const perfq::Geometry target = perfq::io::read_nifti_info(*reference).geometry;
  const std::string& image_path = args.positional()[0];
  if (target_path.has_parent_path()) fs::create_directories(target_path.parent_path());
  std::string what;
  perfq::Geometry source;
  if (labels) {
    const perfq::Image<std::int32_t> image = perfq::io::read_nifti_labels(image_path);
    source = image.geometry();
    const auto result = perfq::io::resample_labels(image, target, transform, rule, options);
    perfq::io::write_nifti(*out_path, result.view());
    what = rule == perfq::io::LabelRule::Nearest ? "labels, nearest neighbour"
                                                 : "labels, majority vote";
  } else if (mask) {
    const perfq::Mask image = perfq::io::read_nifti_mask(image_path);
    source = image.geometry();
    const auto result = perfq::io::resample_mask(image, target, transform, min_fraction, options);
    perfq::io::write_nifti(*out_path, result.view());
    std::ostringstream m;
    m << "mask, at least " << min_fraction << " of a voxel inside";
    what = m.str();
  } else {
    const perfq::Image<float> image = perfq::io::read_nifti(image_path);
    source = image.geometry();
    const auto result = perfq::io::resample(image, target, transform, options);
    perfq::io::write_nifti(*out_path, result.view());
    what =
        options.interpolation == perfq::io::Interpolation::Nearest ? "nearest neighbour" : "linear";
    if (image.volumes() > 1) what += ", " + std::to_string(image.volumes()) + " volumes";
  }
  const auto n = rule == perfq::io::LabelRule::Nearest
                     ? std::array<std::size_t, 3>{1, 1, 1}
                     : perfq::io::resample_footprint(source, target, transform, options.footprint);
  out << "perfq resample: " << image_path << " onto the grid of " << *reference << " ("
      << target.dims[0] << "x" << target.dims[1] << "x" << target.dims[2] << "; " << what << "; "
      << n[0] << "x" << n[1] << "x" << n[2] << " sub-points per voxel)\n";
  out << "  wrote " << *out_path << "\n";
  return 0;
}

}  // namespace perfq_cli
