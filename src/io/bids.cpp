// Reading one ASL-BIDS series with its M0: the metadata (inherited where BIDS allows), what
// the headers say, then the voxels, each step refusing what it cannot use. The choices where
// BIDS leaves room are listed in bids_internal.hpp.
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>

#include "bids_internal.hpp"
#include "nifti_internal.hpp"
#include "protocol_checks.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace {

using detail::format_number;
using detail::json;

std::string describe_grid(const Geometry& g) {
  std::ostringstream s;
  s << g.dims[0] << "x" << g.dims[1] << "x" << g.dims[2] << " voxels of " << g.spacing[0] << "x"
    << g.spacing[1] << "x" << g.spacing[2] << " mm, origin (" << g.origin[0] << ", " << g.origin[1]
    << ", " << g.origin[2] << ")";
  return s.str();
}

bool any_finite(const std::vector<float>& values) {
  return std::any_of(values.begin(), values.end(), [](float v) { return std::isfinite(v); });
}

/// What reading the metadata leaves for the later steps.
struct Metadata {
  std::vector<fs::path> levels;               ///< metadata_levels of the series' folder
  std::map<std::string, std::string> origin;  ///< sidecar key → the file it came from
  detail::SidecarExtras extras;               ///< sidecar fields used with the images
  std::string sidecar_text;                   ///< the (merged) sidecar JSON

  /// The file a sidecar field came from (the series' own sidecar when not inherited).
  const std::string& file_of(const std::string& key, const std::string& own) const {
    const auto from = origin.find(key);
    return from != origin.end() ? from->second : own;
  }
};

/// The sidecar (the applicable *_asl.json files from the dataset root down, merged key by
/// key), the nearest applicable aslcontext and the time encoding, into `d`.
Metadata read_metadata(AslDataset& d, const fs::path& folder) {
  Metadata m;
  m.levels = detail::metadata_levels(folder);
  d.sidecar_paths = detail::applicable_files(m.levels, d.prefix, "_asl.json");
  if (d.sidecar_paths.size() <= 1) {  // as written (a missing one is reported here)
    if (!d.sidecar_paths.empty()) d.sidecar_path = d.sidecar_paths.back();
    m.sidecar_text = detail::read_text_file(d.sidecar_path, "ASL sidecar (.json)");
  } else {
    d.sidecar_path = d.sidecar_paths.back();
    m.sidecar_text =
        detail::merged_metadata(d.sidecar_paths, "ASL sidecar (.json)", m.origin).dump();
  }
  d.protocol = detail::naming_origin(d.sidecar_path, m.origin, [&] {
    return detail::parse_sidecar(m.sidecar_text, d.sidecar_path, &m.extras);
  });
  const auto contexts = detail::applicable_files(m.levels, d.prefix, "_aslcontext.tsv");
  if (!contexts.empty()) d.context_path = contexts.back();
  d.context =
      parse_aslcontext(detail::read_text_file(d.context_path, "aslcontext (.tsv)"), d.context_path);
  d.time_encoding = detail::naming_origin(d.sidecar_path, m.origin, [&] {
    return parse_time_encoding(m.sidecar_text, d.context, d.sidecar_path);
  });
  if (d.time_encoding) {
    const std::size_t n = d.time_encoding->matrix.cycles;
    const std::size_t encoded = static_cast<std::size_t>(std::count_if(
        d.context.begin(), d.context.end(),
        [](VolumeType t) { return t == VolumeType::Control || t == VolumeType::Label; }));
    if (encoded == 0 || encoded % n != 0) {
      throw InputError(d.context_path, "volume_type",
                       std::to_string(encoded) +
                           " encoded (control/label) rows is not a positive multiple of "
                           "TimeEncodedMatrixSize (" +
                           std::to_string(n) + ", " + d.sidecar_path + ")");
    }
    // The protocol describes each encoded volume: the whole labeling train, then the delay
    // after the last sub-bolus. Sub-bolus timing is in d.time_encoding.
    double total = 0.0;
    for (double t : d.time_encoding->sub_bolus_duration) total += t;
    d.protocol.labeling_duration = {total};
    d.protocol.post_labeling_delay = {d.time_encoding->sub_bolus_pld.back()};
  }
  return m;
}

/// A separate M0 (header only): the series' own <prefix>_m0scan, else the one m0scan of the
/// folder whose sidecar's IntendedFor names the series (BIDS links them so when their
/// entities differ, e.g. dir-); on the series' grid. Sets d.m0_path; returns its prefix.
/// The m0scan of the series (folder, file, prefix) and that m0scan's prefix; empty if none.
fs::path m0scan_of(const fs::path& folder, const fs::path& asl, const std::string& prefix,
                   std::string& m0_prefix) {
  m0_prefix = prefix;
  const fs::path m0 = detail::nifti_beside(folder, m0_prefix + "_m0scan");
  return m0.empty() ? detail::m0scan_intended_for(folder, asl, m0_prefix) : m0;
}

std::string find_separate_m0(AslDataset& d, const fs::path& folder, const fs::path& asl,
                             const Geometry& asl_grid) {
  std::string m0_prefix;
  const fs::path m0 = m0scan_of(folder, asl, d.prefix, m0_prefix);
  if (m0.empty()) {
    throw InputError(d.sidecar_path, "M0Type",
                     "Separate, but " + d.prefix + "_m0scan.nii[.gz] was not found in " +
                         (folder.empty() ? std::string(".") : folder.string()) +
                         ", nor an m0scan whose sidecar's IntendedFor names " +
                         asl.filename().string());
  }
  d.m0_path = m0.string();
  const NiftiInfo info = read_nifti_info(d.m0_path);
  if (!info.geometry.same_grid(asl_grid)) {
    throw InputError(d.m0_path, "",
                     "not on the grid of the ASL series: " + describe_grid(info.geometry) + " vs " +
                         describe_grid(asl_grid));
  }
  return m0_prefix;
}

/// Refuses a volume of `image` (from `path`) that is all 0 or has no finite voxel: a dropped
/// or empty acquisition, not a signal. Paired or averaged, it would give a plausible-looking
/// but wrong ΔM, or make every voxel non-finite and the map all 0 (status 3). `what` names
/// the volumes ("volume", "M0 volume"); volumes of which `skip` says true are not checked.
template <class Skip>
void refuse_empty_volumes(const Volume<float>& image, const std::string& path,
                          const std::string& what, Skip skip) {
  const std::size_t n = image.voxel_count();
  for (std::size_t v = 0; v < image.volumes(); ++v) {
    if (skip(v)) continue;
    const float* first = image.values().data() + v * n;
    if (std::all_of(first, first + n, [](float x) { return x == 0.0f; })) {
      throw InputError(path, "volume " + std::to_string(v),
                       "every voxel is 0 (an empty or dropped " + what + ")");
    }
    if (std::none_of(first, first + n, [](float x) { return std::isfinite(x); })) {
      throw InputError(path, "volume " + std::to_string(v),
                       "no voxel has a finite value (an empty or dropped " + what + ")");
    }
  }
}

/// RepetitionTimePreparation has one value or one per volume, and every slice of a 2D
/// readout is read within the shortest repetition time: a later slice time is in
/// milliseconds (which the 30 s bound misses when there are few slices) or belongs to
/// another series.
void check_repetition_times(const AslDataset& d, const Metadata& m, std::size_t volumes) {
  const auto& tr = m.extras.repetition_time_preparation;
  const std::string& tr_file = m.file_of("RepetitionTimePreparation", d.sidecar_path);
  for (double t : tr) {  // the m0scan sidecar's bound (m0_repetition_time), whatever the M0
    if (t > kMaxTimingSeconds) {
      throw InputError(tr_file, "RepetitionTimePreparation", checks::not_seconds(t));
    }
  }
  if (tr.size() > 1 && tr.size() != volumes) {
    throw InputError(tr_file, "RepetitionTimePreparation",
                     "has " + std::to_string(tr.size()) +
                         " values; expected 1 or one per volume (" + std::to_string(volumes) + ")");
  }
  double shortest_tr = 0.0;
  for (double t : tr) {
    if (t > 0.0 && (shortest_tr == 0.0 || t < shortest_tr)) shortest_tr = t;
  }
  if (d.protocol.readout == Readout::TwoD && shortest_tr > 0.0 &&
      !d.protocol.slice_timing.empty()) {
    const double last =
        *std::max_element(d.protocol.slice_timing.begin(), d.protocol.slice_timing.end());
    if (last >= shortest_tr) {
      throw InputError(m.file_of("SliceTiming", d.sidecar_path), "SliceTiming",
                       "a slice is read at " + format_number(last) +
                           " s, not within the repetition time (RepetitionTimePreparation " +
                           format_number(shortest_tr) +
                           " s); BIDS gives times in seconds — was it written in milliseconds?");
    }
  }
}

/// M0Type Included: the m0scan rows' repetition time (required: without it the short-TR
/// correction of M0, up to a factor 1.3 at TR 2 s, would be silently skipped) and echo time.
void take_included_m0(AslDataset& d, const Metadata& m, std::size_t volumes) {
  std::vector<std::size_t> m0_volumes;
  for (std::size_t v = 0; v < volumes; ++v) {
    if (d.context[v] == VolumeType::M0Scan) m0_volumes.push_back(v);
  }
  if (m0_volumes.empty()) {
    throw InputError(d.context_path, "volume_type", "M0Type is Included but no row is m0scan");
  }
  d.protocol.m0_repetition_time.reset();
  const auto& tr = m.extras.repetition_time_preparation;
  if (tr.empty()) {
    throw InputError(d.sidecar_path, "RepetitionTimePreparation",
                     "required (BIDS) for M0Type Included, not found: the repetition time "
                     "of the m0scan volumes decides the short-TR M0 correction");
  }
  const double first = tr.size() == 1 ? tr[0] : tr[m0_volumes.front()];
  for (std::size_t v : m0_volumes) {
    const double value = tr.size() == 1 ? tr[0] : tr[v];
    if (value != first) {
      throw InputError(d.sidecar_path, "RepetitionTimePreparation",
                       "the m0scan volumes have different values (" + format_number(first) +
                           " and " + format_number(value) + " s); they cannot be averaged");
    }
  }
  if (!(first > 0.0)) {
    throw InputError(d.sidecar_path, "RepetitionTimePreparation",
                     "is 0 at the m0scan volumes; expected their repetition time (s)");
  }
  d.protocol.m0_repetition_time = first;
  const auto& te = m.extras.echo_time;
  if (te.empty()) return;
  const std::string& file = m.file_of("EchoTime", d.sidecar_path);
  if (te.size() != 1 && te.size() != volumes) {
    d.m0_echo_time_file = file;
    d.m0_echo_time_issue = "has " + std::to_string(te.size()) +
                           " values; expected 1 or one per volume (" + std::to_string(volumes) +
                           ")";
  } else {
    detail::take_m0_echo_time(d, file, te, m0_volumes);
  }
}

/// M0Type Separate: the image (a 4D m0scan is a series of M0 images, averaged voxel by voxel
/// as the m0scan rows of an Included M0 are; a voxel not finite in some volume stays so and
/// the fit then skips it) and, from its sidecar (inherited too), the repetition and echo time.
void read_separate_m0(AslDataset& d, const Metadata& m, const fs::path& folder,
                      const std::string& m0_prefix, int threads) {
  // Found and checked by find_separate_m0.
  Volume<float> image = detail::read_nifti(d.m0_path, threads);
  if (!any_finite(image.values())) throw InputError(d.m0_path, "", "no voxel has a finite value");
  d.m0_volumes = image.volumes();
  if (image.volumes() > 1) {
    refuse_empty_volumes(image, d.m0_path, "M0 volume", [](std::size_t) { return false; });
    const std::size_t n = image.voxel_count();
    Volume<float> mean(image.geometry(), 1, 0.0f);
    for (std::size_t v = 0; v < image.volumes(); ++v) {
      const float* first = image.values().data() + v * n;
      for (std::size_t i = 0; i < n; ++i) mean[i] += first[i];
    }
    const float count = static_cast<float>(image.volumes());
    for (std::size_t i = 0; i < n; ++i) mean[i] /= count;
    image = std::move(mean);
  }
  if (std::none_of(image.values().begin(), image.values().end(),
                   [](float x) { return x > 0.0f; })) {
    throw InputError(d.m0_path, "", "no voxel is positive (an empty M0 image)");
  }
  d.m0 = std::move(image);

  std::vector<std::string> sidecars = detail::applicable_files(m.levels, m0_prefix, "_m0scan.json");
  if (sidecars.empty()) {  // reading it reports it missing
    sidecars.push_back((folder / (m0_prefix + "_m0scan.json")).string());
  }
  std::map<std::string, std::string> origin;
  const json sidecar = detail::merged_metadata(sidecars, "m0scan sidecar", origin);
  d.protocol.m0_repetition_time = detail::naming_origin(sidecars.back(), origin, [&] {
    return detail::m0_repetition_time(sidecar, sidecars.back());
  });
  const auto te_from = origin.find("EchoTime");
  const std::string te_file = te_from != origin.end() ? te_from->second : sidecars.back();
  if (auto te = detail::Fields(sidecar, te_file).numbers("EchoTime")) {
    std::vector<std::size_t> all(te->size());
    for (std::size_t k = 0; k < all.size(); ++k) all[k] = k;
    detail::take_m0_echo_time(d, te_file, *te, all);
  }
  if (!d.protocol.m0_repetition_time) {  // the short-TR correction would be skipped
    throw InputError(sidecars.back(), "RepetitionTimePreparation",
                     "required (BIDS), not found (nor RepetitionTime): the M0 repetition "
                     "time decides the short-TR M0 correction");
  }
}

}  // namespace

std::string find_m0scan(const std::string& asl_path) {
  const fs::path asl(asl_path);
  const std::string name = asl.filename().string();
  std::string prefix;
  for (const char* suffix : {"_asl.nii.gz", "_asl.nii"}) {
    if (prefix.empty() && detail::ends_with(name, suffix)) {
      prefix = name.substr(0, name.size() - std::string(suffix).size());
    }
  }
  if (prefix.empty()) {
    throw InputError(asl_path, "", "expected an ASL-BIDS file named *_asl.nii or *_asl.nii.gz");
  }
  std::string m0_prefix;
  return m0scan_of(asl.parent_path(), asl, prefix, m0_prefix).string();
}

AslDataset read_asl_bids(const std::string& asl_path) { return read_asl_bids(asl_path, 0); }

AslDataset read_asl_bids(const std::string& asl_path, int threads) {
  const fs::path asl(asl_path);
  const std::string name = asl.filename().string();
  std::string extension;
  if (detail::ends_with(name, "_asl.nii.gz")) {
    extension = ".nii.gz";
  } else if (detail::ends_with(name, "_asl.nii")) {
    extension = ".nii";
  } else {
    throw InputError(asl_path, "", "expected an ASL-BIDS file named *_asl.nii or *_asl.nii.gz");
  }
  AslDataset d;
  d.asl_path = asl_path;
  d.prefix = name.substr(0, name.size() - std::string("_asl").size() - extension.size());
  const fs::path folder = asl.parent_path();
  d.sidecar_path = (folder / (d.prefix + "_asl.json")).string();
  d.context_path = (folder / (d.prefix + "_aslcontext.tsv")).string();

  detail::require_regular_file(asl_path, "ASL series (.nii or .nii.gz)", "file not found");
  // Metadata first: it is cheap and most errors are there.
  const Metadata m = read_metadata(d, folder);

  // What the headers tell is checked before any voxel is read: a series can be gigabytes.
  const NiftiInfo asl_info = read_nifti_info(asl_path);
  const std::size_t volumes = asl_info.volumes;
  if (d.context.size() != volumes) {
    throw InputError(d.context_path, "volume_type",
                     std::to_string(d.context.size()) + " rows but " + name + " has " +
                         std::to_string(volumes) + " volumes");
  }
  std::string m0_prefix;
  if (d.protocol.m0_type == M0Type::Separate) {
    m0_prefix = find_separate_m0(d, folder, asl, asl_info.geometry);
  }

  d.asl = detail::read_nifti(asl_path, threads);
  if (!any_finite(d.asl.values())) throw InputError(asl_path, "", "no voxel has a finite value");
  refuse_empty_volumes(d.asl, asl_path, "volume", [&](std::size_t v) {  // noRF, cbf: unused
    return d.context[v] == VolumeType::NoRf || d.context[v] == VolumeType::Cbf;
  });
  check_repetition_times(d, m, volumes);

  switch (d.protocol.m0_type) {
    case M0Type::Included:
      take_included_m0(d, m, volumes);
      break;
    case M0Type::Separate:
      read_separate_m0(d, m, folder, m0_prefix, threads);
      break;
    case M0Type::Estimate:
    case M0Type::Absent:
      break;
  }

  if (d.protocol.background_suppression.enabled &&
      !d.protocol.background_suppression.pulses_unknown) {
    d.background_suppression_pulses_source =
        m.extras.pulses_from_pulse_time ? "BackgroundSuppressionPulseTime (the number of its times)"
                                        : "BackgroundSuppressionNumberPulses";
  }
  d.warnings = m.extras.warnings;
  if (!m.extras.background_suppression_given) {
    d.defaulted.push_back({d.sidecar_path, "BackgroundSuppression",
                           "not given (BIDS requires it): read as no background suppression; "
                           "each pulse used lowers the labeling efficiency (by a factor 0.95), "
                           "so if there were any, CBF is too high by 1/0.95 per pulse"});
  }
  if (!m.extras.field_strength_given) {
    d.defaulted.push_back({d.sidecar_path, "MagneticFieldStrength",
                           "not given (BIDS requires it): 3 T assumed, with its blood T1 "
                           "(1.65 s); at 1.5 T (1.35 s) CBF would differ"});
  }

  // An error in an inherited field names the file it came from.
  detail::naming_origin(d.sidecar_path, m.origin, [&] {
    validate_protocol(d.protocol, volumes, d.asl.geometry().dims[2], d.sidecar_path);
    return 0;
  });
  return d;
}

}  // namespace io
PERFQ_NAMESPACE_END
