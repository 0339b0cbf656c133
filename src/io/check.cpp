// The ASL-BIDS doctor (include/perfq/io/check.hpp): every rule reads the sidecar as JSON,
// leniently (one finding per problem, never the first error only), so that a converter's
// output can be checked before it is valid.
#include <perfq/asl_series.hpp>
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/check.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/outputs.hpp>
#include <perfq/protocol.hpp>

#include "bids_internal.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace {

using detail::ends_with;
using detail::format_number;
using detail::json;
using detail::lower;

/// Where the files of a series are (or would be, named as BIDS has them).
struct Layout {
  fs::path image;
  bool bids = false;  ///< named <prefix>_asl.nii[.gz]
  std::string stem;   ///< the image's path without .nii[.gz] (and without _asl when BIDS)
  fs::path sidecar, context, m0_sidecar;
};

Layout locate(const std::string& asl_path) {
  Layout l;
  l.image = asl_path;
  std::string path = asl_path;
  for (const char* ext : {".nii.gz", ".nii"}) {
    if (ends_with(path, ext)) {
      path.erase(path.size() - std::string(ext).size());
      break;
    }
  }
  l.bids = ends_with(path, "_asl");
  if (l.bids) {
    l.stem = path.substr(0, path.size() - 4);
    l.sidecar = l.stem + "_asl.json";
  } else {
    l.stem = path;
    l.sidecar = l.stem + ".json";
  }
  l.context = l.stem + "_aslcontext.tsv";
  l.m0_sidecar = l.stem + "_m0scan.json";
  return l;
}

/// Collects findings.
class Findings {
 public:
  explicit Findings(SeriesCheck& out) : out_(out) {}
  void add(CheckSeverity s, const fs::path& file, const std::string& field,
           const std::string& problem, const std::string& fix, const std::string& proposed = {}) {
    out_.findings.push_back({s, file.string(), field, problem, fix, proposed});
  }
  void error(const fs::path& file, const std::string& field, const std::string& problem,
             const std::string& fix, const std::string& proposed = {}) {
    add(CheckSeverity::Error, file, field, problem, fix, proposed);
  }
  void warning(const fs::path& file, const std::string& field, const std::string& problem,
               const std::string& fix, const std::string& proposed = {}) {
    add(CheckSeverity::Warning, file, field, problem, fix, proposed);
  }

 private:
  SeriesCheck& out_;
};

/// The sidecar's JSON object, or nothing (a finding says why).
std::optional<json> read_sidecar(const fs::path& path, Findings& f, const char* what) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    f.error(path, "", std::string("the ") + what + " sidecar is missing",
            "write it beside the image (dcm2niix: -b y)");
    return std::nullopt;
  }
  try {
    return detail::parse_json_object(detail::read_text_file(path.string(), what), path.string());
  } catch (const InputError& e) {
    f.error(path, e.field(), e.what(), "repair the JSON");
    return std::nullopt;
  }
}

bool has(const json& j, const char* key) { return j.contains(key) && !j.at(key).is_null(); }

/// The numbers of a field (one or a list); empty when absent or not numbers.
std::vector<double> numbers(const json& j, const char* key) {
  std::vector<double> out;
  if (!has(j, key)) return out;
  const json& v = j.at(key);
  if (v.is_number()) return {v.get<double>()};
  if (v.is_array()) {
    for (const json& e : v) {
      if (!e.is_number()) return {};
      out.push_back(e.get<double>());
    }
  }
  return out;
}

/// `values` divided by 1000, as the JSON the field would hold (one number or a list).
std::string in_seconds(const json& original) {
  if (original.is_number()) return json(original.get<double>() / 1000.0).dump();
  json out = json::array();
  for (const json& e : original) out.push_back(e.get<double>() / 1000.0);
  return out.dump();
}

/// A segmented 3D readout (GRASE, several shots per volume): the time of all k segments of a
/// volume, k × RepetitionTimeExcitation, where each segment has its own preparation (labeling,
/// background suppression, and for an M0 its recovery) every RepetitionTimeExcitation.
/// Returns k ≥ 2, or 0 when `seconds` is no such multiple.
int segments_in(const json& j, double seconds) {
  const std::vector<double> excitation = numbers(j, "RepetitionTimeExcitation");
  if (excitation.size() != 1 || !(excitation[0] > 0.5) || !(excitation[0] < kMaxTimingSeconds)) {
    return 0;  // not a preparation's repetition time (a GRE's TR is milliseconds)
  }
  if (!has(j, "MRAcquisitionType") || j.at("MRAcquisitionType") != "3D") return 0;
  const double k = std::round(seconds / excitation[0]);
  return k >= 2 && std::abs(seconds - k * excitation[0]) < 0.01 * seconds ? static_cast<int>(k) : 0;
}

/// Times beyond 30 s: milliseconds. A 3D readout's RepetitionTimePreparation that spans all
/// its segments.
void check_units(const json& j, const fs::path& file, Findings& f) {
  for (const char* key : {"RepetitionTimePreparation", "PostLabelingDelay", "LabelingDuration",
                          "BolusCutOffDelayTime", "InitialPostLabelDelay", "InversionTime",
                          "BolusDuration", "TagDuration"}) {
    const std::vector<double> v = numbers(j, key);
    const auto largest = std::max_element(v.begin(), v.end());
    if (largest == v.end()) continue;
    const bool milliseconds = *largest > kMaxTimingSeconds;
    const bool preparation = std::string(key) == "RepetitionTimePreparation" && v.size() == 1;
    const int segments = preparation ? segments_in(j, milliseconds ? v[0] / 1000.0 : v[0]) : 0;
    if (segments > 0) {
      f.error(file, key,
              "value " + format_number(v[0]) + (milliseconds ? " (milliseconds)" : "") + " is " +
                  std::to_string(segments) + " × RepetitionTimeExcitation (" +
                  j.at("RepetitionTimeExcitation").dump() +
                  " s): the time of all the segments of a segmented 3D readout (dcm2niix), "
                  "where each segment is prepared anew; the M0's recovery time, what this "
                  "field is for, is one segment's",
              "give RepetitionTimeExcitation's value (check the protocol's TR)",
              j.at("RepetitionTimeExcitation").dump());
      continue;
    }
    if (!milliseconds) continue;
    f.error(file, key,
            "value " + format_number(*largest) +
                " is beyond any ASL timing (at most 30 s): milliseconds, where BIDS gives "
                "seconds (a known dcm2niix quirk for RepetitionTimePreparation)",
            "divide by 1000", in_seconds(j.at(key)));
  }
}

/// The labeling of D. J. Wang's PCASL sequences (ep2d_pcasl, tgse_pcasl) lasts NumRFBlocks
/// blocks of 18.4 ms (dcm2niix computes LabelingDuration so for the 2D sequence); for the 3D
/// GRASE sequence dcm2niix writes the post-labeling delay into LabelingDuration instead and no
/// PostLabelingDelay. Returns true when it found that quirk.
constexpr double kWangRfBlockSeconds = 0.0184;

bool check_wang_labeling(const json& j, const std::string& labeling, const fs::path& file,
                         Findings& f) {
  const std::vector<double> blocks = numbers(j, "NumRFBlocks");
  const std::vector<double> duration = numbers(j, "LabelingDuration");
  if (labeling != "pcasl" || blocks.size() != 1 || duration.size() != 1 ||
      has(j, "PostLabelingDelay") || !(blocks[0] > 0)) {
    return false;
  }
  const double train = blocks[0] * kWangRfBlockSeconds;
  if (std::abs(duration[0] - train) <= 0.01 * train) return false;
  const std::string evidence = "this sequence's labeling is NumRFBlocks " +
                               format_number(blocks[0]) + " × 18.4 ms = " + format_number(train) +
                               " s, and there is no PostLabelingDelay";
  f.error(file, "PostLabelingDelay",
          "required, not found: LabelingDuration holds it (" + format_number(duration[0]) + " s; " +
              evidence + "; dcm2niix writes the PLD of the 3D GRASE PCASL there)",
          "give the protocol's post-labeling delay", json(duration[0]).dump());
  f.error(file, "LabelingDuration",
          "holds the post-labeling delay, not the labeling (" + evidence + ")",
          "give the labeling duration (check it against the protocol)", json(train).dump());
  return true;
}

/// Vendor names that are not BIDS, and what they stand for.
void check_vendor_names(const json& j, const std::string& labeling, const fs::path& file,
                        Findings& f) {
  const bool pasl = labeling == "pasl";
  auto value_of = [&](const char* key) { return j.at(key).dump(); };
  if (has(j, "InversionTime")) {
    if (pasl) {
      f.warning(file, "InversionTime",
                "a vendor name, not BIDS: for PASL the inversion time TI is PostLabelingDelay",
                "give it as PostLabelingDelay (one per volume, or one value)",
                value_of("InversionTime"));
    } else {
      f.warning(file, "InversionTime",
                "a vendor name, not BIDS, and not a PCASL/CASL timing (perfq does not read it)",
                "leave it, or remove it; the delays are PostLabelingDelay");
    }
  }
  if (has(j, "BolusDuration")) {
    if (pasl) {
      f.warning(file, "BolusDuration",
                "a vendor name, not BIDS: for PASL the bolus duration TI1 is "
                "BolusCutOffDelayTime (with BolusCutOffFlag true)",
                "give it as BolusCutOffDelayTime", value_of("BolusDuration"));
    } else {
      f.warning(file, "BolusDuration",
                "a vendor name, not BIDS; for PCASL/CASL the labeling duration is "
                "LabelingDuration, which this value need not be (read it from the protocol)",
                "give LabelingDuration from the protocol");
    }
  }
  for (const auto& [vendor, bids] :
       {std::pair{"TagDuration", "LabelingDuration"}, std::pair{"Tag0", "LabelingDuration"},
        std::pair{"InitialPostLabelDelay", "PostLabelingDelay"},
        std::pair{"PostLabelDelay", "PostLabelingDelay"}}) {
    if (!has(j, vendor)) continue;
    f.warning(file, vendor, std::string("a vendor name, not BIDS: it is ") + bids,
              std::string("give it as ") + bids, value_of(vendor));
  }
}

/// What the volumes' brightness says: M0 volumes stand out (no labeling, no background
/// suppression), and in each control/label pair the control is the brighter (by the
/// perfusion signal, about 1 %).
/// Each volume's mean over the head: the voxels brighter than the mean image's average.
std::vector<double> head_means(const Image<float>& image) {
  const std::size_t n = image.voxel_count(), volumes = image.volumes();
  std::vector<double> mean_image(n, 0.0);
  for (std::size_t v = 0; v < volumes; ++v) {
    for (std::size_t i = 0; i < n; ++i) {
      const float x = image[v * n + i];
      if (std::isfinite(x)) mean_image[i] += x / static_cast<double>(volumes);
    }
  }
  double overall = 0.0;
  for (double x : mean_image) overall += x / static_cast<double>(n);
  std::vector<double> means(volumes, 0.0);  // over the bright half: the head
  for (std::size_t v = 0; v < volumes; ++v) {
    double sum = 0.0;
    std::size_t count = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const float x = image[v * n + i];
      if (mean_image[i] > overall && std::isfinite(x)) {
        sum += x;
        ++count;
      }
    }
    means[v] = count > 0 ? sum / static_cast<double>(count) : 0.0;
  }
  return means;
}

std::vector<std::string> suggest_context(const Image<float>& image, std::string& evidence) {
  const std::size_t volumes = image.volumes();
  const std::vector<double> means = head_means(image);
  // M0 volumes: a run of volumes of like brightness (each within 10 % of the next) at the start
  // or the end of the series (where vendors put them) that is brighter by a quarter than the
  // volume next to it. Not a threshold on the whole series: in a multi-delay series with
  // background suppression the shortest delays are the brightest pairs.
  std::vector<std::string> context(volumes);
  std::ostringstream e;
  e << std::setprecision(3);
  for (std::size_t start = 0; start < volumes;) {
    std::size_t end = start + 1;
    while (end < volumes && std::abs(means[end] - means[end - 1]) <= 0.1 * means[end - 1]) ++end;
    double run = 0.0;
    for (std::size_t v = start; v < end; ++v) run += means[v] / static_cast<double>(end - start);
    const bool below = start > 0, above = end < volumes;
    const bool brighter = (below != above) &&  // at the start or the end of the series
                          (!below || run > 1.25 * means[start - 1]) &&
                          (!above || run > 1.25 * means[end]);
    if (brighter) {
      for (std::size_t v = start; v < end; ++v) context[v] = "m0scan";
      e << (end - start == 1 ? "volume " + std::to_string(start)
                             : "volumes " + std::to_string(start) + "-" + std::to_string(end - 1))
        << " stand" << (end - start == 1 ? "s" : "") << " out ("
        << run / means[below ? start - 1 : end] << " times as bright as the next): M0; ";
    }
    start = end;
  }
  std::vector<std::size_t> rest;
  for (std::size_t v = 0; v < volumes; ++v) {
    if (context[v].empty()) rest.push_back(v);
  }
  if (rest.size() < 2) {
    evidence = e.str() + "no control/label pairs";
    return {};
  }
  // An odd volume out (e.g. a last control without its label) is left for the end.
  std::optional<std::size_t> unpaired;
  if (rest.size() % 2 != 0) {
    unpaired = rest.back();
    rest.pop_back();
  }
  std::size_t first_brighter = 0;
  double difference = 0.0;
  const std::size_t pairs = rest.size() / 2;
  for (std::size_t p = 0; p < pairs; ++p) {
    const double a = means[rest[2 * p]], b = means[rest[2 * p + 1]];
    if (a > b) ++first_brighter;
    difference += (a - b) / (0.5 * (a + b)) / static_cast<double>(pairs);
  }
  const bool control_first = first_brighter * 2 > pairs;
  const std::size_t agree = control_first ? first_brighter : pairs - first_brighter;
  e << "of the " << pairs << " pairs of the other volumes, the "
    << (control_first ? "first" : "second") << " is the brighter in " << agree << " (by "
    << std::abs(100.0 * difference) << " % on average), as a control is";
  if (agree * 4 < pairs * 3) {  // under 75 %: no clear order
    evidence = e.str();
    return {};
  }
  double control_mean = 0.0, label_mean = 0.0;
  for (std::size_t p = 0; p < pairs; ++p) {
    const std::size_t control = rest[2 * p + (control_first ? 0 : 1)];
    const std::size_t label = rest[2 * p + (control_first ? 1 : 0)];
    context[control] = "control";
    context[label] = "label";
    control_mean += means[control] / static_cast<double>(pairs);
    label_mean += means[label] / static_cast<double>(pairs);
  }
  if (unpaired) {
    const double x = means[*unpaired];
    context[*unpaired] =
        std::abs(x - control_mean) < std::abs(x - label_mean) ? "control" : "label";
    e << "; volume " << *unpaired << " has no partner and is as bright as a " << context[*unpaired]
      << " (check it against the protocol)";
  }
  evidence = e.str();
  return context;
}

/// GE stores ΔM summed over its excitations and amplified by 32 against its M0 (PD) image:
/// ΔM/M0 in the brain far beyond what perfusion gives (at most a few per cent).
constexpr double kMaxPerfusionFraction = 0.05;

void check_ge_scale(const json& j, const Layout& l, const std::string& asl_path,
                    const std::vector<VolumeType>& types, Findings& f) {
  const std::string maker = has(j, "Manufacturer") && j.at("Manufacturer").is_string()
                                ? lower(j.at("Manufacturer").get<std::string>())
                                : "";
  if (maker.rfind("ge", 0) != 0) return;
  if (std::count(types.begin(), types.end(), VolumeType::DeltaM) == 0) return;
  try {
    const Image<float> image = read_nifti(asl_path);
    const std::size_t n = image.voxel_count();
    if (types.size() != image.volumes()) return;  // a finding of its own
    std::vector<double> delta_m(n, 0.0), m0(n, 0.0);
    std::size_t deltas = 0, m0s = 0;
    for (std::size_t v = 0; v < types.size(); ++v) {
      std::vector<double>* sum = types[v] == VolumeType::DeltaM   ? &delta_m
                                 : types[v] == VolumeType::M0Scan ? &m0
                                                                  : nullptr;
      if (sum == nullptr) continue;
      (types[v] == VolumeType::DeltaM ? deltas : m0s) += 1;
      for (std::size_t i = 0; i < n; ++i) (*sum)[i] += image[v * n + i];
    }
    Volume<float> m0_image(image.geometry());
    fs::path m0_path;
    if (m0s > 0) {
      for (std::size_t i = 0; i < n; ++i) m0_image[i] = static_cast<float>(m0[i] / m0s);
    } else {
      for (const char* ext : {".nii.gz", ".nii"}) {
        std::error_code ec;
        if (fs::is_regular_file(l.stem + "_m0scan" + ext, ec)) m0_path = l.stem + "_m0scan" + ext;
      }
      if (m0_path.empty()) return;
      m0_image = read_nifti_3d(m0_path.string(), &image.geometry(), asl_path);
    }
    const Mask brain = brain_mask(m0_image.view());
    std::vector<double> ratios;
    for (std::size_t i = 0; i < n; ++i) {
      if (brain[i] != 0 && m0_image[i] > 0) ratios.push_back(delta_m[i] / deltas / m0_image[i]);
    }
    if (ratios.size() < 10) return;
    std::nth_element(ratios.begin(), ratios.begin() + ratios.size() / 2, ratios.end());
    const double ratio = ratios[ratios.size() / 2];
    if (!(ratio > kMaxPerfusionFraction)) return;
    std::optional<double> nex;
    for (const char* key : {"NumberOfExcitations", "NumberOfAverages", "NEX"}) {
      const std::vector<double> v = numbers(j, key);
      if (v.size() == 1 && v[0] >= 1) {
        nex = v[0];
        break;
      }
    }
    std::ostringstream problem, fix;
    problem << "the median ΔM/M0 in the brain is " << std::setprecision(3) << 100.0 * ratio
            << " %, beyond what perfusion gives (at most a few per cent): GE stores ΔM summed "
               "over the excitations and amplified by 32 relative to its M0 image (ΔM/M0 here "
               "is about 32 × NEX times the physical ratio";
    if (nex) problem << "; NEX " << format_number(*nex) << " gives " << 32.0 * *nex;
    problem << ")";
    fix << "quantify with perfq cbf --m0-scale "
        << (nex ? format_number(32.0 * *nex) : std::string("<32 × NEX, NEX from the protocol>"))
        << " (or m0_scale in a perfq bids --config entry for the GE series)";
    f.error(asl_path, "deltam", problem.str(), fix.str());
  } catch (const Error&) {
    // Unreadable images are findings of their own.
  }
}

/// A list of L delays given once for a series of P pairs, each delay repeated P/L times: in
/// the order of acquisition, cycled pair by pair (d0 d1 … d0 d1 …) or in blocks (d0 d0 … d1
/// d1 …)? Background suppression is timed per delay, so the pairs of one delay are alike in
/// brightness: the grouping whose pairs vary least within a group (under a quarter of the
/// pairs' variance, and a quarter of the other grouping's) is the order. The PLD of each volume
/// (0 for M0 volumes), or nothing when the images cannot tell.
std::optional<json> expand_delays(const std::vector<double>& plds, const Image<float>& image,
                                  const std::vector<bool>& m0, std::string& evidence) {
  const std::vector<double> means = head_means(image);
  std::vector<double> pairs;
  std::vector<std::size_t> rest;
  for (std::size_t v = 0; v < means.size(); ++v) {
    if (!m0[v]) rest.push_back(v);
  }
  const std::size_t L = plds.size();
  if (rest.size() % 2 != 0 || rest.size() / 2 < 2 * L || (rest.size() / 2) % L != 0) {
    evidence = "the pairs are not a whole number of repeats of the delays";
    return std::nullopt;
  }
  const std::size_t P = rest.size() / 2, repeats = P / L;
  for (std::size_t p = 0; p < P; ++p)
    pairs.push_back(0.5 * (means[rest[2 * p]] + means[rest[2 * p + 1]]));
  auto within = [&](bool cycled) {  // the share of the pairs' variance within the groups
    std::vector<double> sum(L, 0.0);
    for (std::size_t p = 0; p < P; ++p) sum[cycled ? p % L : p / repeats] += pairs[p];
    double w = 0.0, t = 0.0, mean = 0.0;
    for (double x : pairs) mean += x / static_cast<double>(P);
    for (std::size_t p = 0; p < P; ++p) {
      const double g = sum[cycled ? p % L : p / repeats] / static_cast<double>(repeats);
      w += (pairs[p] - g) * (pairs[p] - g);
      t += (pairs[p] - mean) * (pairs[p] - mean);
    }
    return t > 0.0 ? w / t : 1.0;
  };
  const double cycled = within(true), blocked = within(false);
  std::ostringstream e;
  e << std::setprecision(2) << "the pairs' brightness varies " << 100.0 * cycled
    << " % within groups of one delay if the delays cycle pair by pair, " << 100.0 * blocked
    << " % if each is repeated in a block";
  evidence = e.str();
  const bool is_cycled = cycled < 0.25 && cycled < 0.25 * blocked;
  const bool is_blocked = blocked < 0.25 && blocked < 0.25 * cycled;
  if (!is_cycled && !is_blocked) return std::nullopt;
  evidence += is_cycled ? ": cycled" : ": in blocks";
  json out = json::array();
  std::size_t pair_volume = 0;
  for (std::size_t v = 0; v < means.size(); ++v) {
    if (m0[v]) {
      out.push_back(0.0);
      continue;
    }
    const std::size_t p = pair_volume++ / 2;
    out.push_back(plds[is_cycled ? p % L : p / repeats]);
  }
  return out;
}

std::string description_of(const json& j);

/// A one-volume series beside `l.image` (same folder, same grid) whose description is this
/// series' own followed by something with "m0" (dcm2niix: `pcasl_2d` and `pcasl_2d_m0`).
std::string find_m0_candidate(const Layout& l, const std::string& description,
                              const NiftiInfo& info) {
  if (description.empty()) return {};
  std::error_code ec;
  const fs::path folder = l.image.parent_path().empty() ? fs::path(".") : l.image.parent_path();
  std::vector<std::string> found;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string path = it->path().string();
    if (!(ends_with(path, ".nii.gz") || ends_with(path, ".nii")) || it->path() == l.image) continue;
    const Layout other = locate(path);
    try {
      const json j = detail::parse_json_object(
          detail::read_text_file(other.sidecar.string(), "sidecar"), other.sidecar.string());
      const std::string d = description_of(j);
      if (d.size() <= description.size() || d.compare(0, description.size(), description) != 0 ||
          lower(d.substr(description.size())).find("m0") == std::string::npos) {
        continue;
      }
      const NiftiInfo m0 = read_nifti_info(path);
      if (m0.volumes == 1 && m0.geometry.same_grid(info.geometry)) found.push_back(path);
    } catch (const Error&) {
      continue;  // not a series with a readable sidecar
    }
  }
  std::sort(found.begin(), found.end());
  return found.size() == 1 ? found.front() : std::string();
}

std::string description_of(const json& j) {
  for (const char* key : {"SeriesDescription", "ProtocolName"}) {
    if (has(j, key) && j.at(key).is_string()) return j.at(key).get<std::string>();
  }
  return {};
}

}  // namespace

const char* to_string(CheckSeverity severity) noexcept {
  return severity == CheckSeverity::Error ? "error" : "warning";
}

bool SeriesCheck::ready() const noexcept {
  return std::none_of(findings.begin(), findings.end(),
                      [](const CheckFinding& f) { return f.severity == CheckSeverity::Error; });
}

SeriesCheck check_series(const std::string& asl_path) {
  SeriesCheck out;
  out.asl_path = asl_path;
  Findings f(out);
  const Layout l = locate(asl_path);
  out.sidecar_path = l.sidecar.string();
  NiftiInfo info;
  try {
    info = read_nifti_info(asl_path);
  } catch (const InputError& e) {
    f.error(asl_path, e.field(), e.what(), "give the series' NIfTI image");
    return out;
  }
  const std::optional<json> sidecar = read_sidecar(l.sidecar, f, "ASL");
  if (!sidecar) return out;
  const json& j = *sidecar;
  const std::string description = description_of(j);
  const std::string labeling =
      has(j, "ArterialSpinLabelingType") && j.at("ArterialSpinLabelingType").is_string()
          ? lower(j.at("ArterialSpinLabelingType").get<std::string>())
          : "";

  if (info.volumes == 1) {  // an M0 scan written as an ASL series (dcm2niix)
    const bool m0_like = lower(description).find("m0") != std::string::npos || has(j, "M0Type");
    f.error(asl_path, "",
            "one volume: no control/label pair" +
                (m0_like ? ", and its sidecar says M0 (" +
                               (description.empty() ? "M0Type" : "'" + description + "'") +
                               "): an M0 scan"
                         : std::string()),
            m0_like ? "name it <prefix>_m0scan.nii.gz beside its ASL series <prefix>_asl.nii.gz, "
                      "whose sidecar gets M0Type Separate"
                    : "check that this is the ASL series");
    if (has(j, "M0Type")) {
      f.warning(l.sidecar, "M0Type",
                "M0Type is a field of the ASL series' sidecar, not of an M0 scan's (dcm2niix "
                "writes it into both)",
                "remove it from the M0 scan's sidecar; the ASL series' says Separate");
    }
    check_units(j, l.sidecar, f);
    return out;
  }

  if (!l.bids) {
    f.warning(asl_path, "", "not named as ASL-BIDS (<prefix>_asl.nii[.gz])",
              "rename it " + fs::path(l.stem).filename().string() + "_asl.nii.gz, with " +
                  fs::path(l.stem).filename().string() + "_asl.json and _aslcontext.tsv beside it");
  }
  check_vendor_names(j, labeling, l.sidecar, f);
  check_units(j, l.sidecar, f);

  // The aslcontext, or what the images suggest in its place.
  std::vector<std::string> context;
  std::vector<VolumeType> types;
  std::error_code ec;
  if (fs::is_regular_file(l.context, ec)) {
    try {
      types = parse_aslcontext(detail::read_text_file(l.context.string(), "aslcontext"),
                               l.context.string());
      for (VolumeType t : types) context.push_back(t == VolumeType::M0Scan ? "m0scan" : "other");
      if (context.size() != info.volumes) {
        f.error(l.context, "volume_type",
                std::to_string(context.size()) + " rows for " + std::to_string(info.volumes) +
                    " volumes",
                "one row per volume, in order");
      }
    } catch (const InputError& e) {
      f.error(l.context, e.field(), e.what(), "repair the aslcontext");
    }
  } else {
    std::string evidence;
    try {
      out.suggested_context = suggest_context(read_nifti(asl_path), evidence);
    } catch (const InputError& e) {
      evidence = std::string("the images could not be read: ") + e.what();
    }
    context = out.suggested_context;
    f.error(l.context, "",
            "missing: which volume is a control, a label or an M0 is not in the "
            "NIfTI header. The images suggest: " +
                evidence,
            out.suggested_context.empty()
                ? "write it from the protocol (volume_type per row)"
                : "write it (the suggestion, checked against the protocol)");
  }
  const bool has_m0_volumes = std::count(context.begin(), context.end(), "m0scan") > 0;

  // Required fields (BIDS), with what perfq cbf does without them.
  if (labeling.empty()) {
    f.error(l.sidecar, "ArterialSpinLabelingType", "required, not found",
            "PCASL, PASL or CASL, from the protocol");
  }
  const bool wang_quirk = check_wang_labeling(j, labeling, l.sidecar, f);
  if (wang_quirk) {
    // Found above, with both fields' values.
  } else {
    // A list of delays shorter than the volumes (once per delay, as the protocol lists
    // them): the per-volume list in the order the images suggest, from the aslcontext (or
    // its suggestion).
    const char* from = has(j, "PostLabelingDelay")                     ? "PostLabelingDelay"
                       : labeling == "pasl" && has(j, "InversionTime") ? "InversionTime"
                       : has(j, "InitialPostLabelDelay")               ? "InitialPostLabelDelay"
                       : has(j, "PostLabelDelay")                      ? "PostLabelDelay"
                                                                       : nullptr;
    const std::vector<double> plds = from ? numbers(j, from) : std::vector<double>{};
    std::optional<json> expanded;
    std::string evidence;
    const bool short_list = plds.size() > 1 && plds.size() != info.volumes;
    if (short_list && context.size() == info.volumes) {
      std::vector<bool> m0(context.size());
      for (std::size_t v = 0; v < context.size(); ++v) m0[v] = context[v] == "m0scan";
      try {
        expanded = expand_delays(plds, read_nifti(asl_path), m0, evidence);
      } catch (const InputError& e) {
        evidence = std::string("the images could not be read: ") + e.what();
      }
    }
    const std::string order =
        short_list ? std::to_string(plds.size()) + " values for " + std::to_string(info.volumes) +
                         " volumes: BIDS gives one per volume (0 for M0 volumes), or one for all" +
                         (evidence.empty() ? "" : "; " + evidence)
                   : "";
    const std::string fix = expanded     ? "one value per volume, in the order acquired: the "
                                           "images' order, checked against the protocol"
                            : short_list ? "one value per volume, in the order acquired (read the "
                                           "order of the delays from the protocol)"
                                         : "the delay of each volume (s), or one value";
    const std::string proposed = expanded ? expanded->dump() : from ? j.at(from).dump() : "";
    if (from == nullptr || std::string(from) != "PostLabelingDelay") {
      f.error(l.sidecar, "PostLabelingDelay",
              std::string("required, not found") +
                  (from ? std::string(" (") + from + " holds it" +
                              (short_list ? ": " + order : std::string()) + ")"
                        : std::string()),
              fix, proposed);
    } else if (short_list) {
      f.error(l.sidecar, "PostLabelingDelay", order, fix, expanded ? expanded->dump() : "");
    }
  }
  if (labeling == "pasl") {
    if (has(j, "LabelingDuration")) {
      // BIDS defines it for PCASL/CASL only; a simulator that writes it for PASL writes
      // PostLabelingDelay as TI − TI1 beside it, and perfq reads TI from PostLabelingDelay.
      f.warning(l.sidecar, "LabelingDuration",
                "given for PASL, where BIDS defines no labeling duration: perfq cbf ignores it "
                "and takes the inversion time TI from PostLabelingDelay" +
                    (has(j, "PostLabelingDelay") ? " (" + j.at("PostLabelingDelay").dump() + ")"
                                                 : std::string()) +
                    " and TI1 from BolusCutOffDelayTime; if PostLabelingDelay holds TI − TI1 "
                    "(as a simulator writing LabelingDuration for PASL does), CBF comes out too "
                    "low by e^(−LabelingDuration/T1b) (38 % for 0.8 s at 3 T)",
                "give the inversion time TI in PostLabelingDelay and remove LabelingDuration");
    }
    if (!has(j, "BolusCutOffDelayTime")) {
      f.error(l.sidecar, "BolusCutOffDelayTime",
              std::string("required for PASL (TI1, the bolus duration), not found") +
                  (has(j, "BolusDuration") ? " (BolusDuration holds it)" : ""),
              "TI1 in seconds, with BolusCutOffFlag true",
              has(j, "BolusDuration") ? j.at("BolusDuration").dump() : "");
    }
  } else if (!labeling.empty() && !wang_quirk && !has(j, "LabelingDuration")) {
    f.error(l.sidecar, "LabelingDuration",
            std::string("required for PCASL/CASL, not found") +
                (has(j, "TagDuration") ? " (TagDuration holds it)"
                 : has(j, "Tag0")      ? " (Tag0, the first tag duration, holds it)"
                                       : ""),
            "the labeling duration (s), from the protocol",
            has(j, "TagDuration") ? j.at("TagDuration").dump()
            : has(j, "Tag0")      ? j.at("Tag0").dump()
                                  : "");
  }
  if (!has(j, "M0Type")) {
    std::string why = has_m0_volumes ? " (the series has M0 volumes)" : "", proposed;
    if (has_m0_volumes) {
      proposed = "\"Included\"";
    } else if (fs::exists(l.m0_sidecar, ec)) {
      why = " (an _m0scan is beside it)";
      proposed = "\"Separate\"";
    } else if (!context.empty()) {
      out.m0_candidate = find_m0_candidate(l, description, info);
      if (!out.m0_candidate.empty()) {
        why = " (no M0 volume in the series; " + out.m0_candidate +
              ", one volume on its grid, is described as its M0)";
        proposed = "\"Separate\"";
      } else {
        why =
            " (no M0 volume in the series, and no M0 scan beside it: Absent gives ATT and "
            "relative CBF; if an M0 scan exists, name it <prefix>_m0scan and say Separate)";
        proposed = "\"Absent\"";
      }
    }
    f.error(l.sidecar, "M0Type", "required, not found" + why,
            "Included (M0 volumes in the series), Separate (an _m0scan beside it), Estimate or "
            "Absent",
            proposed);
  } else if (j.at("M0Type").is_string() && lower(j.at("M0Type").get<std::string>()) == "included" &&
             !context.empty() && !has_m0_volumes) {
    f.error(l.sidecar, "M0Type", "Included, but no volume is an M0 (aslcontext)",
            "mark the M0 volumes as m0scan, or correct M0Type");
  }
  if (!has(j, "BackgroundSuppression")) {
    f.warning(l.sidecar, "BackgroundSuppression",
              "required (BIDS), not found: perfq cbf reads it as none; each pulse used lowers "
              "the labeling efficiency, so CBF is too high by 1/0.95 per pulse if there were any",
              "give BackgroundSuppression (and BackgroundSuppressionNumberPulses) from the "
              "protocol, or perfq cbf --bs-pulses N");
  }
  if (!has(j, "MagneticFieldStrength")) {
    f.warning(l.sidecar, "MagneticFieldStrength",
              "required (BIDS), not found: perfq cbf assumes 3 T (blood T1 1.65 s)",
              "give it (tesla)");
  }
  if (!has(j, "RepetitionTimePreparation")) {
    const bool needed = has_m0_volumes;
    f.add(needed ? CheckSeverity::Error : CheckSeverity::Warning, l.sidecar,
          "RepetitionTimePreparation",
          std::string("required (BIDS), not found") +
              (needed ? ": the repetition time of the M0 volumes decides the short-TR M0 "
                        "correction"
                      : "") +
              (has(j, "RepetitionTime")
                   ? " (RepetitionTime holds " + j.at("RepetitionTime").dump() + ")"
                   : ""),
          "the repetition time of the preparation (s)",
          has(j, "RepetitionTime") ? j.at("RepetitionTime").dump() : "");
  }
  if (!has(j, "MRAcquisitionType")) {
    f.warning(l.sidecar, "MRAcquisitionType", "not found: perfq reads 2D when SliceTiming is given",
              "2D or 3D");
  }

  check_ge_scale(j, l, asl_path, types, f);

  // A separate M0's sidecar.
  if (fs::is_regular_file(l.m0_sidecar, ec)) {
    if (const std::optional<json> m0 = read_sidecar(l.m0_sidecar, f, "m0scan")) {
      if (has(*m0, "M0Type")) {
        f.warning(l.m0_sidecar, "M0Type",
                  "M0Type is a field of the ASL series' sidecar, not of an m0scan's (dcm2niix "
                  "writes it into both)",
                  "remove it here");
      }
      check_units(*m0, l.m0_sidecar, f);
    }
  }
  return out;
}

Proposal write_proposal(const SeriesCheck& check, const std::string& out_dir, bool overwrite) {
  const Layout l = locate(check.asl_path);
  const NiftiInfo info = read_nifti_info(check.asl_path);
  if (info.volumes == 1) {
    throw InvalidArgument(check.asl_path + ": one volume (an M0 scan?): no ASL series to propose");
  }
  json sidecar = detail::parse_json_object(
      detail::read_text_file(l.sidecar.string(), "ASL sidecar"), l.sidecar.string());
  Proposal out;
  json supplied = json::object();
  auto supply = [&](const std::string& field, const json& value, const std::string& why) {
    sidecar[field] = value;
    supplied[field] = why;
    out.supplied.push_back(field + ": " + value.dump() + " (" + why + ")");
  };
  const fs::path sidecar_file = fs::path(check.sidecar_path);
  for (const CheckFinding& f : check.findings) {
    if (f.proposed.empty() || f.field.empty() || f.file != sidecar_file.string()) continue;
    const json value = json::parse(f.proposed);
    // A vendor name's finding proposes its value for the BIDS field (that field's own finding
    // supplies it).
    if (has(sidecar, f.field.c_str()) && sidecar.at(f.field) == value) continue;
    supply(f.field, value, f.problem);
    if (f.field == "BolusCutOffDelayTime" && !has(sidecar, "BolusCutOffFlag")) {
      supply("BolusCutOffFlag", true, "BolusCutOffDelayTime supplied");
    }
  }
  sidecar["PerfqProposed"] = supplied;

  const std::string name = fs::path(l.stem).filename().string();
  const std::string extension = ends_with(check.asl_path, ".nii.gz") ? ".nii.gz" : ".nii";
  StagedOutputs staged(out_dir, overwrite);
  std::error_code ec;
  const fs::path image = fs::absolute(check.asl_path, ec);
  const std::string link = staged.stage(name + "_asl" + extension);
  fs::create_symlink(ec ? fs::path(check.asl_path) : image, link, ec);
  if (ec) throw Error(link + ": cannot link to " + check.asl_path + ": " + ec.message());
  write_text_atomic(staged.stage(name + "_asl.json"), sidecar.dump(2) + "\n");
  if (!check.m0_candidate.empty()) {
    // The converter's M0 series as the _m0scan: its own check's proposals, M0Type removed.
    const SeriesCheck m0 = check_series(check.m0_candidate);
    const Layout ml = locate(check.m0_candidate);
    json m0_sidecar = detail::parse_json_object(
        detail::read_text_file(ml.sidecar.string(), "m0scan sidecar"), ml.sidecar.string());
    json m0_supplied = json::object();
    for (const CheckFinding& f : m0.findings) {
      if (f.proposed.empty() || f.field.empty() || f.file != ml.sidecar.string()) continue;
      m0_sidecar[f.field] = json::parse(f.proposed);
      m0_supplied[f.field] = f.problem;
    }
    if (m0_sidecar.contains("M0Type")) {
      m0_sidecar.erase("M0Type");
      m0_supplied["M0Type"] = "removed: a field of the ASL series' sidecar";
    }
    m0_sidecar["PerfqProposed"] = m0_supplied;
    const std::string m0_extension = ends_with(check.m0_candidate, ".nii.gz") ? ".nii.gz" : ".nii";
    const std::string m0_link = staged.stage(name + "_m0scan" + m0_extension);
    const fs::path m0_image = fs::absolute(check.m0_candidate, ec);
    fs::create_symlink(ec ? fs::path(check.m0_candidate) : m0_image, m0_link, ec);
    if (ec) throw Error(m0_link + ": cannot link to " + check.m0_candidate + ": " + ec.message());
    write_text_atomic(staged.stage(name + "_m0scan.json"), m0_sidecar.dump(2) + "\n");
    out.supplied.push_back("m0scan: " + check.m0_candidate +
                           " (its sidecar as its check proposes)");
  }
  if (!check.suggested_context.empty()) {
    std::string tsv = "volume_type\n";
    for (const std::string& t : check.suggested_context) tsv += t + "\n";
    write_text_atomic(staged.stage(name + "_aslcontext.tsv"), tsv);
    out.supplied.push_back("aslcontext: the images' suggestion (see perfq check)");
  }
  out.files = staged.commit();
  out.asl_path = (fs::path(out_dir) / (name + "_asl" + extension)).string();
  return out;
}

std::vector<std::string> find_asl_series(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return {path};
  std::vector<std::string> found;
  for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!it->is_regular_file(ec) || !(ends_with(name, ".nii.gz") || ends_with(name, ".nii"))) {
      continue;
    }
    const Layout l = locate(it->path().string());
    if (l.bids) {
      found.push_back(it->path().string());
      continue;
    }
    if (ends_with(l.stem, "_m0scan") || !fs::is_regular_file(l.sidecar, ec)) continue;
    try {
      const json j = detail::parse_json_object(
          detail::read_text_file(l.sidecar.string(), "sidecar"), l.sidecar.string());
      if (has(j, "ArterialSpinLabelingType")) found.push_back(it->path().string());
    } catch (const InputError&) {
      found.push_back(it->path().string());  // check_series reports the broken sidecar
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace io
PERFQ_NAMESPACE_END
