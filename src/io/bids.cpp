// ASL-BIDS: sidecar and aslcontext parsing, reading a series with its M0, and writing the
// phantom as a dataset.
//
// Choices where BIDS leaves room (documented here, tested in tests/test_bids.cpp):
// - Field names are case-sensitive as in BIDS; enumerated values (PCASL, Separate, 3D, ...)
//   are accepted in any letter case.
// - MRAcquisitionType absent: 2D when SliceTiming is given, else 3D.
// - SliceTiming is kept for 2D readouts only, in slice (third-axis) order: reversed when
//   SliceEncodingDirection is "k-"; "i"/"j" (slices along another axis) are refused. A 2D
//   readout without SliceTiming is stored with an empty list; validate_protocol refuses it.
// - PASL: BolusCutOffDelayTime is required (its first value is TI1; Q2TIPS gives two) and
//   BolusCutOffFlag false is refused: quantification needs the bolus duration TI1.
//   LabelingDuration is ignored for PASL (it has no labeling duration).
// - RepetitionTimePreparation sets the M0 repetition time only where it describes the M0:
//   for M0Type Included (the value at the m0scan volumes; read_asl_bids picks them from the
//   aslcontext, parse_asl_sidecar keeps a list only when all its values agree), and for
//   Separate from the m0scan sidecar (falling back to RepetitionTime); for both it is
//   required (without it the short-TR M0 correction would be skipped). For Estimate and
//   Absent it is not used. M0 volumes with different repetition times are refused: they are
//   averaged into one image.
// - M0Type Separate requires `<prefix>_m0scan.nii[.gz]` (on the ASL grid; 4D: its volumes are
//   averaged) and its `_m0scan.json` (BIDS requires it; without it the M0 repetition time
//   would be guessed).
// - BackgroundSuppression true without BackgroundSuppressionNumberPulses is read with
//   `pulses_unknown` set (quantification refuses it unless the count is stated elsewhere, e.g.
//   perfq cbf --bs-pulses); pulses with BackgroundSuppression false or absent are refused as
//   contradictory.
// - MagneticFieldStrength absent: the AslProtocol default (3 T).
// - LookLocker true is refused (not modelled); SliceTiming follows SliceEncodingDirection
//   (k- reversed, i/j refused).
// - Time-encoded PCASL (ExploreASL's fields): a series is time-encoded when the sidecar has
//   TimeEncodedMatrixType, TimeEncodedMatrixSize or TimeEncodedMatrix. The matrix is the given
//   TimeEncodedMatrix (N x N-1, or N x N with an all +1 first column), else generated from
//   TimeEncodedMatrixType (required then) and TimeEncodedMatrixSize (4, 8 or 12). Timing:
//   LabelingDuration with one value per sub-bolus (labeling order) or one per volume;
//   PostLabelingDelay one value (the delay after the last sub-bolus) or one per volume. In the
//   per-volume form (ExploreASL's) sub-bolus k takes the value of the (k+1)-th encoded volume
//   of each block, which must agree between blocks. Encoded volumes are the aslcontext's
//   control and label rows, in order (their type is not used). See time_encoded.hpp.
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/time_encoded.hpp>

#include "file_checks.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using json = nlohmann::json;

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace {

// ---- text helpers -------------------------------------------------------------------------

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string trim(const std::string& text) {
  const char* space = " \t\r\n\v\f";
  const auto first = text.find_first_not_of(space);
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(space);
  return text.substr(first, last - first + 1);
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string format_number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

/// A short rendering of a JSON value for error messages.
std::string describe(const json& value) {
  if (value.is_null()) return "null";
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return std::string(value.type_name()) + " " + text;
}

std::string read_text_file(const std::string& path, const std::string& what) {
  detail::require_regular_file(path, what, what + " not found");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "", "cannot be opened for reading");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw InputError(path, "", "cannot be read");
  return text.str();
}

// ---- JSON field access with errors naming file and field ---------------------------------

/// Reads typed fields of one JSON object; every error names `source` and the field.
class Fields {
 public:
  Fields(const json& root, std::string source) : root_(root), source_(std::move(source)) {}

  bool has(const char* key) const { return root_.contains(key) && !root_.at(key).is_null(); }

  [[noreturn]] void fail(const char* key, const std::string& problem) const {
    throw InputError(source_, key, problem);
  }

  std::optional<std::string> string(const char* key) const {
    if (!has(key)) return std::nullopt;
    const json& v = root_.at(key);
    if (!v.is_string()) fail(key, "expected a string, found " + describe(v));
    return v.get<std::string>();
  }

  std::optional<bool> boolean(const char* key) const {
    if (!has(key)) return std::nullopt;
    const json& v = root_.at(key);
    if (!v.is_boolean()) fail(key, "expected true or false, found " + describe(v));
    return v.get<bool>();
  }

  std::optional<double> number(const char* key) const {
    if (!has(key)) return std::nullopt;
    const json& v = root_.at(key);
    if (!v.is_number()) fail(key, "expected a number, found " + describe(v));
    const double d = v.get<double>();
    if (!std::isfinite(d)) fail(key, "expected a finite number");
    return d;
  }

  /// A BIDS "number or array of numbers" field; a number gives a list of one.
  std::optional<std::vector<double>> numbers(const char* key) const {
    if (!has(key)) return std::nullopt;
    const json& v = root_.at(key);
    if (v.is_number()) return std::vector<double>{*number(key)};
    if (!v.is_array()) fail(key, "expected a number or an array of numbers, found " + describe(v));
    if (v.empty()) fail(key, "expected a number or an array of numbers, found an empty array");
    std::vector<double> out;
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      const json& e = v[i];
      if (!e.is_number() || !std::isfinite(e.get<double>())) {
        fail(key, "element " + std::to_string(i) + " is not a number: " + describe(e));
      }
      out.push_back(e.get<double>());
    }
    return out;
  }

  /// Times in seconds: a single value must be positive; in a list (one per volume) zeros
  /// are allowed because BIDS gives m0scan volumes a delay and duration of 0.
  std::optional<std::vector<double>> times(const char* key) const {
    auto values = numbers(key);
    if (!values) return values;
    const json& v = root_.at(key);
    for (std::size_t i = 0; i < values->size(); ++i) {
      const double t = (*values)[i];
      if (t < 0.0) {
        fail(key,
             (v.is_array() ? "element " + std::to_string(i) + " is negative (" : "is negative (") +
                 format_number(t) + " s)");
      }
      if (!v.is_array() && t == 0.0) fail(key, "must be positive (found 0)");
    }
    return values;
  }

 private:
  const json& root_;
  std::string source_;
};

/// Sidecar facts that need the rest of the dataset to be used.
struct SidecarExtras {
  std::vector<double> repetition_time_preparation;  ///< as given (one value, or per volume)
  std::vector<double> echo_time;                    ///< as given (one value, or per volume)
};

/// The one echo time of an M0 (s) from `values` (EchoTime: one value or one per volume, of
/// which `used` are the M0's), into `d.m0_echo_time`; when it cannot serve (different values,
/// e.g. a multi-echo M0, or milliseconds) `d.m0_echo_time_issue` says why instead. Not an
/// error here: only reference-region calibration uses it.
void take_m0_echo_time(AslDataset& d, const std::string& source, const std::vector<double>& values,
                       const std::vector<std::size_t>& used) {
  if (values.empty()) return;
  d.m0_echo_time_file = source;
  const double first = values.size() == 1 || used.empty() ? values[0] : values[used.front()];
  for (std::size_t v : used) {
    const double value = values.size() == 1 ? values[0] : values[v];
    if (value != first) {
      d.m0_echo_time_issue = "the M0 volumes have different echo times";
      return;
    }
  }
  if (!(std::isfinite(first) && first >= 0.0)) {
    d.m0_echo_time_issue = "must be >= 0 seconds, found " + format_number(first);
  } else if (first > 1.0) {
    d.m0_echo_time_issue = "value " + format_number(first) +
                           " is beyond any echo time (at most 1 s); BIDS gives times in seconds "
                           "— was it written in milliseconds?";
  } else {
    d.m0_echo_time = first;
  }
}

/// The JSON object in `text`; InputError naming `source` for invalid JSON, another type, or
/// a key given twice at the top level (the parser keeps the last silently; a hand-edited
/// sidecar may mean the first).
json parse_json_object(const std::string& text, const std::string& source) {
  check_json_nesting(text, source);
  json root;
  std::set<std::string> keys;
  std::string duplicate;
  const json::parser_callback_t check = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string() &&
        !keys.insert(parsed.get<std::string>()).second && duplicate.empty()) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  try {
    root = json::parse(text, check);
  } catch (const json::exception& e) {
    // Syntax errors are parse_error; a number beyond double's range is out_of_range (406).
    // e.what() starts with "[json.exception.parse_error.101] "; keep the human part.
    std::string message = e.what();
    const auto bracket = message.find("] ");
    if (bracket != std::string::npos) message = message.substr(bracket + 2);
    throw InputError(source, "", "invalid JSON: " + message);
  }
  if (!root.is_object()) {
    throw InputError(source, "", "expected a JSON object, found " + describe(root));
  }
  if (!duplicate.empty()) {
    throw InputError(source, duplicate, "given twice; which value is meant is unclear (keep one)");
  }
  return root;
}

AslProtocol parse_sidecar(const std::string& text, const std::string& source,
                          SidecarExtras* extras) {
  const json root = parse_json_object(text, source);
  const Fields f(root, source);
  AslProtocol p;

  // Labeling.
  const auto type = f.string("ArterialSpinLabelingType");
  if (!type) f.fail("ArterialSpinLabelingType", "required, not found");
  const std::string t = lower(*type);
  if (t == "pcasl") {
    p.labeling_type = LabelingType::Pcasl;
  } else if (t == "pasl") {
    p.labeling_type = LabelingType::Pasl;
  } else if (t == "casl") {
    p.labeling_type = LabelingType::Casl;
  } else {
    f.fail("ArterialSpinLabelingType",
           "unknown value '" + *type + "' (expected PCASL, PASL or CASL)");
  }

  auto pld = f.times("PostLabelingDelay");
  if (!pld) f.fail("PostLabelingDelay", "required, not found");
  p.post_labeling_delay = std::move(*pld);

  if (p.labeling_type == LabelingType::Pasl) {
    auto delay = f.numbers("BolusCutOffDelayTime");
    const auto flag = f.boolean("BolusCutOffFlag");
    // PASL is quantified with the bolus duration TI1 (single delay and kinetic model alike):
    // without a bolus cut-off it is unknown.
    if (flag && !*flag) {
      f.fail("BolusCutOffFlag",
             "is false: PASL without a bolus cut-off (QUIPSS II / Q2TIPS) has no known bolus "
             "duration TI1, which quantification needs");
    }
    if (!delay) {
      f.fail("BolusCutOffDelayTime",
             flag ? "required when BolusCutOffFlag is true, not found"
                  : "required for PASL (TI1, the bolus duration), not found");
    }
    // QUIPSS II gives one value; Q2TIPS gives [start, end] of the saturation train and
    // TI1 is its start.
    if (!(delay->front() > 0.0)) {
      f.fail("BolusCutOffDelayTime",
             "must be positive (found " + format_number(delay->front()) + " s)");
    }
    // BIDS: the pulse times increase. A list in another order would make a later pulse TI1.
    if (!std::is_sorted(delay->begin(), delay->end())) {
      f.fail("BolusCutOffDelayTime",
             "the times of the saturation pulses must increase (the first is TI1); found " +
                 describe(root.at("BolusCutOffDelayTime")));
    }
    p.bolus_cutoff_delay = delay->front();
  } else {
    auto duration = f.times("LabelingDuration");
    if (!duration) {
      f.fail("LabelingDuration",
             std::string("required for ") + to_string(p.labeling_type) + ", not found");
    }
    p.labeling_duration = std::move(*duration);
  }

  if (const auto efficiency = f.number("LabelingEfficiency")) {
    if (!(*efficiency > 0.0 && *efficiency <= 1.0)) {
      f.fail("LabelingEfficiency", "must be in (0, 1], found " + format_number(*efficiency));
    }
    p.labeling_efficiency = efficiency;
  }

  // Readout.
  if (f.boolean("LookLocker").value_or(false)) {
    // Each readout pulse of a Look-Locker train also saturates the label: its apparent T1
    // shortens by −ln(cos FlipAngle)/ΔTI, which perfq's models leave out (CBF and ATT biased).
    f.fail("LookLocker",
           "true: Look-Locker readouts are not modelled by perfq (each readout pulse also "
           "decays the label, so CBF and ATT would be biased); not supported in this version");
  }
  const auto acquisition = f.string("MRAcquisitionType");
  auto slice_timing = f.numbers("SliceTiming");
  if (acquisition) {
    const std::string a = lower(*acquisition);
    if (a == "2d") {
      p.readout = Readout::TwoD;
    } else if (a == "3d") {
      p.readout = Readout::ThreeD;
    } else {
      f.fail("MRAcquisitionType", "unknown value '" + *acquisition + "' (expected 2D or 3D)");
    }
  } else {
    p.readout = slice_timing ? Readout::TwoD : Readout::ThreeD;
  }
  if (p.readout == Readout::TwoD && slice_timing) {
    for (double s : *slice_timing) {
      if (s < 0.0) f.fail("SliceTiming", "values must be >= 0 seconds, found " + format_number(s));
    }
    // BIDS: SliceTiming runs along SliceEncodingDirection; "k-" lists the slices from the
    // last (highest index) to the first. perfq's slice z is the third axis, first index first.
    if (const auto direction = f.string("SliceEncodingDirection")) {
      if (*direction == "k-") {
        std::reverse(slice_timing->begin(), slice_timing->end());
      } else if (*direction != "k") {
        const std::string& d = *direction;
        const bool other_axis = d == "i" || d == "i-" || d == "j" || d == "j-";
        f.fail("SliceEncodingDirection",
               other_axis ? "'" + d +
                                "': slices along the first or second image axis are not "
                                "supported (perfq takes slices along the third: k or k-)"
                          : "unknown value '" + d + "' (expected i, j or k, with an optional -)");
      }
    }
    p.slice_timing = std::move(*slice_timing);
  }

  // Background suppression.
  if (const auto bs = f.boolean("BackgroundSuppression")) p.background_suppression.enabled = *bs;
  if (const auto pulses = f.number("BackgroundSuppressionNumberPulses")) {
    if (*pulses < 0.0 || *pulses != std::floor(*pulses) || *pulses > 100.0) {
      f.fail("BackgroundSuppressionNumberPulses",
             "expected a whole number of pulses >= 0, found " + format_number(*pulses));
    }
    p.background_suppression.pulses = static_cast<int>(*pulses);
  }
  // Each suppression pulse lowers the labeling efficiency: an unknown number is recorded (not
  // refused here: BIDS only recommends the field, and perfq cbf --bs-pulses can state it);
  // resolve_constants refuses to quantify with it.
  if (p.background_suppression.enabled && !f.has("BackgroundSuppressionNumberPulses")) {
    p.background_suppression.pulses_unknown = true;
  }
  if (!p.background_suppression.enabled && p.background_suppression.pulses > 0) {
    f.fail("BackgroundSuppressionNumberPulses",
           std::to_string(p.background_suppression.pulses) + " pulses, but BackgroundSuppression " +
               (f.has("BackgroundSuppression") ? "is false" : "is not given") +
               "; the two disagree");
  }

  // M0.
  const auto m0_type = f.string("M0Type");
  if (!m0_type) f.fail("M0Type", "required, not found");
  const std::string m = lower(*m0_type);
  if (m == "separate") {
    p.m0_type = M0Type::Separate;
  } else if (m == "included") {
    p.m0_type = M0Type::Included;
  } else if (m == "estimate") {
    p.m0_type = M0Type::Estimate;
  } else if (m == "absent") {
    p.m0_type = M0Type::Absent;
  } else {
    f.fail("M0Type",
           "unknown value '" + *m0_type + "' (expected Separate, Included, Estimate or Absent)");
  }
  if (p.m0_type == M0Type::Estimate) {
    const auto estimate = f.number("M0Estimate");
    if (!estimate) f.fail("M0Estimate", "required when M0Type is Estimate, not found");
    if (!(*estimate > 0.0)) {
      f.fail("M0Estimate", "must be positive, found " + format_number(*estimate));
    }
    p.m0_estimate = estimate;
  }

  auto tr = f.times("RepetitionTimePreparation");
  if (tr && p.m0_type == M0Type::Included) {
    const bool uniform =
        std::all_of(tr->begin(), tr->end(), [&](double v) { return v == tr->front(); });
    if (uniform && tr->front() > 0.0) p.m0_repetition_time = tr->front();
  }
  if (extras && tr) extras->repetition_time_preparation = std::move(*tr);
  if (auto te = f.numbers("EchoTime"); extras && te) extras->echo_time = std::move(*te);

  if (const auto field = f.number("MagneticFieldStrength")) {
    if (!(*field > 0.0)) {
      f.fail("MagneticFieldStrength", "must be positive (tesla), found " + format_number(*field));
    }
    p.magnetic_field_strength = *field;
  }
  return p;
}

// ---- dataset helpers ----------------------------------------------------------------------

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

// ---- BIDS inheritance ----------------------------------------------------------------------

/// The entities of a BIDS file name's stem without its suffix ("sub-01_ses-1" → sub: 01,
/// ses: 1; "" → none); nothing when a part is not key-value.
std::optional<std::map<std::string, std::string>> entities_of(const std::string& stem) {
  std::map<std::string, std::string> entities;
  std::size_t start = 0;
  while (start < stem.size()) {
    std::size_t end = stem.find('_', start);
    if (end == std::string::npos) end = stem.size();
    const std::string part = stem.substr(start, end - start);
    const std::size_t dash = part.find('-');
    if (dash == 0 || dash == std::string::npos || dash + 1 == part.size()) return std::nullopt;
    entities[part.substr(0, dash)] = part.substr(dash + 1);
    start = end + 1;
  }
  return entities;
}

/// The folders whose metadata may apply to a data file in `folder` (BIDS inheritance): from
/// the dataset root (the nearest folder with dataset_description.json, `folder` included)
/// down to `folder`, which keeps the caller's spelling; only `folder` without a dataset root.
std::vector<fs::path> metadata_levels(const fs::path& folder) {
  std::error_code ec;
  fs::path at = fs::absolute(folder.empty() ? fs::path(".") : folder, ec).lexically_normal();
  std::vector<fs::path> above;  // the folders above `folder`, nearest first
  for (int depth = 0; !ec && depth < 64 && !at.empty(); ++depth) {
    std::error_code missing;  // set when the file is absent
    if (fs::is_regular_file(at / "dataset_description.json", missing)) {
      std::vector<fs::path> levels(above.rbegin(), above.rend());
      levels.push_back(folder);
      return levels;
    }
    if (at == at.parent_path()) break;
    at = at.parent_path();
    above.push_back(at);
  }
  return {folder};
}

/// The metadata files named `*<suffix>` (e.g. "_asl.json") that apply to the data file
/// `<prefix>_…` by the BIDS inheritance principle: in one of `levels` (metadata_levels: root
/// first, the data file's folder last), with entities that are a subset of the data file's (a
/// prefix that is not key-value: only its own file, in the last level). Ordered from the root
/// down (the last is the nearest).
/// @throws InputError when two files of one folder apply (BIDS allows one per level)
std::vector<std::string> applicable_files(const std::vector<fs::path>& levels,
                                          const std::string& prefix, const std::string& suffix) {
  const auto own = entities_of(prefix);
  std::vector<std::string> found;
  for (const fs::path& level : levels) {
    if (!own && &level != &levels.back()) continue;
    std::vector<std::string> here;
    std::error_code ec;
    for (fs::directory_iterator it(level.empty() ? fs::path(".") : level, ec), end;
         !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!ends_with(name, suffix) && name != suffix.substr(1)) continue;
      const std::string stem =
          name.size() > suffix.size() ? name.substr(0, name.size() - suffix.size()) : "";
      if (name == prefix + suffix) {  // the data file's own (also without a dataset root)
        here.push_back((level / name).string());
        continue;
      }
      if (!own) continue;
      const auto theirs = entities_of(stem);
      if (!theirs) continue;
      std::error_code file_ec;
      if (!fs::is_regular_file(it->path(), file_ec)) continue;
      const bool subset = std::all_of(theirs->begin(), theirs->end(), [&](const auto& entity) {
        const auto match = own->find(entity.first);
        return match != own->end() && match->second == entity.second;
      });
      if (subset) here.push_back((level / name).string());
    }
    std::sort(here.begin(), here.end());
    if (here.size() > 1) {
      throw InputError(here[0], "",
                       "more than one *" + suffix + " in one folder applies to " + prefix +
                           " (BIDS inheritance allows one per folder): " + here[0] + ", " +
                           here[1]);
    }
    found.insert(found.end(), here.begin(), here.end());
  }
  return found;
}

/// The JSON metadata of `files` (applicable_files' order) merged as BIDS inheritance does: a
/// key of a nearer file replaces the same key of a farther one. `origin` gets the file each
/// key came from.
json merged_metadata(const std::vector<std::string>& files, const std::string& what,
                     std::map<std::string, std::string>& origin) {
  json merged = json::object();
  for (const std::string& file : files) {
    const json one = parse_json_object(read_text_file(file, what), file);
    for (auto item = one.begin(); item != one.end(); ++item) {
      merged[item.key()] = item.value();
      origin[item.key()] = file;
    }
  }
  return merged;
}

/// Runs `parse`; an InputError about a field that came from another file than `source`
/// (inherited) is re-thrown naming that file.
template <class Parse>
auto naming_origin(const std::string& source, const std::map<std::string, std::string>& origin,
                   Parse parse) -> decltype(parse()) {
  try {
    return parse();
  } catch (const InputError& e) {
    const auto from = origin.find(e.field());
    if (e.file() != source || from == origin.end() || from->second == source) throw;
    std::string problem = e.what();
    const std::string prefix = e.file() + ": " + e.field() + ": ";
    if (problem.rfind(prefix, 0) == 0) problem = problem.substr(prefix.size());
    throw InputError(from->second, e.field(), problem);
  }
}

/// `<folder>/<stem>.nii.gz` or `.nii`, the one that exists; else empty.
/// @throws InputError when both exist (which one is meant is unclear)
fs::path nifti_beside(const fs::path& folder, const std::string& stem) {
  std::vector<fs::path> found;
  for (const char* ext : {".nii.gz", ".nii"}) {
    const fs::path candidate = folder / (stem + ext);
    std::error_code ec;
    // Anything by that name (reading it says what it is when it is no file).
    if (fs::exists(fs::symlink_status(candidate, ec))) found.push_back(candidate);
  }
  if (found.size() > 1) {
    throw InputError(found[1].string(), "",
                     "is also " + found[0].filename().string() + " in the same folder; keep one");
  }
  return found.empty() ? fs::path() : found[0];
}

/// Whether an IntendedFor entry names `data`: a path relative to the subject folder
/// ("perf/sub-01_asl.nii.gz") or a BIDS URI relative to the dataset ("bids::sub-01/perf/…"),
/// matched against the end of `data`'s absolute path, folder by folder.
bool names_file(std::string entry, const fs::path& data) {
  if (entry.rfind("bids::", 0) == 0) entry = entry.substr(6);
  if (entry.empty()) return false;
  std::error_code ec;
  const fs::path full = fs::absolute(data, ec).lexically_normal();
  if (ec) return false;
  std::vector<fs::path> want, have;
  for (const auto& part : fs::path(entry).lexically_normal()) want.push_back(part);
  for (const auto& part : full) have.push_back(part);
  if (want.empty() || want.size() > have.size()) return false;
  return std::equal(want.rbegin(), want.rend(), have.rbegin());
}

/// The m0scan image in `folder` whose sidecar's IntendedFor (a string or a list) names the
/// series `asl`; empty when none does. `m0_prefix` gets its name before `_m0scan`.
/// @throws InputError when several do (which one is meant is then unclear)
fs::path m0scan_intended_for(const fs::path& folder, const fs::path& asl, std::string& m0_prefix) {
  std::vector<std::pair<fs::path, std::string>> found;
  std::error_code ec;
  for (fs::directory_iterator it(folder.empty() ? fs::path(".") : folder, ec), end;
       !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!ends_with(name, "_m0scan.json")) continue;
    const std::string stem = name.substr(0, name.size() - std::string("_m0scan.json").size());
    json sidecar;
    try {
      const std::string path = (folder / name).string();
      const std::string text = read_text_file(path, "m0scan sidecar");
      check_json_nesting(text, path);
      sidecar = json::parse(text);
    } catch (const json::exception&) {
      continue;  // not this one: its own reading reports a broken sidecar
    }
    if (!sidecar.is_object() || !sidecar.contains("IntendedFor")) continue;
    const json& intended = sidecar["IntendedFor"];
    bool names = false;
    if (intended.is_string()) names = names_file(intended.get<std::string>(), asl);
    if (intended.is_array()) {
      for (const json& entry : intended) {
        names = names || (entry.is_string() && names_file(entry.get<std::string>(), asl));
      }
    }
    if (!names) continue;
    const fs::path image = nifti_beside(folder, stem + "_m0scan");
    if (!image.empty()) found.emplace_back(image, stem);
  }
  std::sort(found.begin(), found.end());
  if (found.size() > 1) {
    throw InputError(found[0].first.string(), "IntendedFor",
                     "two m0scans name " + asl.filename().string() + ": " +
                         found[0].first.filename().string() + " and " +
                         found[1].first.filename().string() + "; keep one");
  }
  if (found.empty()) return {};
  m0_prefix = found[0].second;
  return found[0].first;
}

/// The M0 repetition time from an m0scan sidecar: RepetitionTimePreparation, else
/// RepetitionTime; absent when neither is given.
std::optional<double> m0_repetition_time(const json& root, const std::string& path) {
  const Fields f(root, path);
  for (const char* key : {"RepetitionTimePreparation", "RepetitionTime"}) {
    const auto values = f.times(key);
    if (!values) continue;
    // An M0 series is averaged into one image: its repetition times must agree.
    for (double v : *values) {
      if (v != values->front()) f.fail(key, "the m0scan volumes have different values");
    }
    // The same bound as validate_protocol's, but naming the m0scan sidecar.
    if (values->front() > kMaxTimingSeconds) {
      f.fail(key, "value " + format_number(values->front()) +
                      " is beyond any ASL timing (at most 30 s); BIDS gives times in seconds "
                      "— was it written in milliseconds?");
    }
    return values->front();
  }
  return std::nullopt;
}

std::string bids_volume_type(VolumeType type) {
  switch (type) {
    case VolumeType::Control:
      return "control";
    case VolumeType::Label:
      return "label";
    case VolumeType::M0Scan:
      return "m0scan";
    case VolumeType::DeltaM:
      return "deltam";
    case VolumeType::Cbf:
      return "cbf";
    case VolumeType::NoRf:
      return "noRF";
  }
  return "control";
}

void write_json(const fs::path& path, const json& value) {
  write_text_atomic(path.string(), value.dump(2) + "\n");
}

/// Rows of a JSON array of arrays of numbers (TimeEncodedMatrix).
std::vector<std::vector<double>> matrix_rows(const json& v, const Fields& f, const char* key) {
  if (!v.is_array() || v.empty()) {
    f.fail(key, "expected an array of rows (arrays of +1/-1), found " + describe(v));
  }
  std::vector<std::vector<double>> rows;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const json& row = v[i];
    if (!row.is_array()) {
      f.fail(key, "row " + std::to_string(i) + " is not an array: " + describe(row));
    }
    rows.emplace_back();
    for (std::size_t j = 0; j < row.size(); ++j) {
      if (!row[j].is_number()) {
        f.fail(key, "row " + std::to_string(i) + ", column " + std::to_string(j) +
                        " is not a number: " + describe(row[j]));
      }
      rows.back().push_back(row[j].get<double>());
    }
  }
  return rows;
}

/// Time-encoding fields of a parsed sidecar (see the notes at the top of this file).
std::optional<TimeEncoding> time_encoding_from(const json& root, const Fields& f,
                                               const std::vector<VolumeType>& context,
                                               const std::string& source) {
  const char* kType = "TimeEncodedMatrixType";
  const char* kSize = "TimeEncodedMatrixSize";
  const char* kMatrix = "TimeEncodedMatrix";
  if (!f.has(kType) && !f.has(kSize) && !f.has(kMatrix)) return std::nullopt;

  const auto labeling = f.string("ArterialSpinLabelingType");
  if (labeling && lower(*labeling) == "pasl") {
    f.fail("ArterialSpinLabelingType", "time encoding (" + std::string(kSize) +
                                           ") is supported for PCASL and CASL, not PASL");
  }
  std::optional<std::size_t> size;
  if (const auto n = f.number(kSize)) {
    if (*n != std::floor(*n) || *n < 2 || *n > 64) {
      f.fail(kSize, "expected a whole number of encoding cycles (4, 8 or 12), found " +
                        format_number(*n));
    }
    size = static_cast<std::size_t>(*n);
  }
  std::optional<TimeEncodedMatrixType> type;
  if (const auto t = f.string(kType)) {
    try {
      type = parse_time_encoded_matrix_type(*t);
    } catch (const InvalidArgument&) {
      f.fail(kType, "unknown value '" + *t + "' (expected Hadamard, Natural or Walsh)");
    }
  }

  TimeEncoding e;
  if (f.has(kMatrix)) {
    e.matrix =
        encoding_matrix_from_rows(matrix_rows(root.at(kMatrix), f, kMatrix), source, kMatrix);
    e.matrix_source = std::string(kMatrix) + " (given)";
    if (size && *size != e.matrix.cycles) {
      f.fail(kSize, "is " + std::to_string(*size) + " but TimeEncodedMatrix has " +
                        std::to_string(e.matrix.cycles) + " rows");
    }
    if (type && (e.matrix.cycles == 4 || e.matrix.cycles == 8 ||
                 (e.matrix.cycles == 12 && *type == TimeEncodedMatrixType::Hadamard))) {
      if (encoding_matrix(*type, e.matrix.cycles).entries != e.matrix.entries) {
        e.matrix_source += std::string(", differs from the generated ") + to_string(*type) + " " +
                           std::to_string(e.matrix.cycles) + "; the given matrix is used";
      }
    }
  } else {
    if (!size) f.fail(kSize, "required for a time-encoded series without TimeEncodedMatrix");
    if (!type) f.fail(kType, "required for a time-encoded series without TimeEncodedMatrix");
    try {
      e.matrix = encoding_matrix(*type, *size);
    } catch (const InvalidArgument& error) {
      std::string message = error.what();
      const std::string prefix = std::string(kSize) + ": ";
      if (message.rfind(prefix, 0) == 0) message = message.substr(prefix.size());
      f.fail(kSize, message);
    }
    e.matrix_source = std::string(to_string(*type)) + " " + std::to_string(*size) + " (generated)";
  }
  const std::size_t n = e.matrix.cycles, k = e.matrix.sub_boli();

  // Encoded volumes and their blocks (for the per-volume timing form).
  std::vector<std::size_t> encoded;
  for (std::size_t v = 0; v < context.size(); ++v) {
    if (context[v] == VolumeType::Control || context[v] == VolumeType::Label) encoded.push_back(v);
  }
  const std::size_t volumes = context.size();
  auto per_sub_bolus = [&](const std::vector<double>& values, const char* key) {
    // Per-volume form: sub-bolus j takes the value of the (j+1)-th encoded volume per block.
    if (encoded.empty() || encoded.size() % n != 0) {
      f.fail(key, "one value per volume needs whole blocks of " + std::to_string(n) +
                      " encoded volumes; the aslcontext lists " + std::to_string(encoded.size()));
    }
    std::vector<double> out(k);
    for (std::size_t j = 0; j < k; ++j) {
      out[j] = values[encoded[j + 1]];
      for (std::size_t b = 1; b < encoded.size() / n; ++b) {
        const double other = values[encoded[b * n + j + 1]];
        if (std::abs(other - out[j]) > 1e-6) {
          f.fail(key, "sub-bolus " + std::to_string(j) + " has " + format_number(out[j]) +
                          " s in the first block but " + format_number(other) + " s in block " +
                          std::to_string(b) + "; the blocks must repeat the same timing");
        }
      }
      if (!(out[j] > 0.0)) {
        f.fail(key, "sub-bolus " + std::to_string(j) + " (volume " +
                        std::to_string(encoded[j + 1]) + ") has " + format_number(out[j]) +
                        " s; expected > 0");
      }
    }
    return out;
  };

  const auto durations = f.times("LabelingDuration");
  if (!durations) f.fail("LabelingDuration", "required for a time-encoded series, not found");
  std::vector<double> tau;
  if (durations->size() == k) {
    tau = *durations;
  } else if (durations->size() == volumes) {
    tau = per_sub_bolus(*durations, "LabelingDuration");
  } else {
    f.fail("LabelingDuration",
           "has " + std::to_string(durations->size()) + " values; a time-encoded series with " +
               std::to_string(n) + " encoding cycles needs one duration per sub-bolus (" +
               std::to_string(k) + ") or one per volume (" + std::to_string(volumes) + ")");
  }
  const auto delays = f.times("PostLabelingDelay");
  if (!delays) f.fail("PostLabelingDelay", "required, not found");
  if (delays->size() == 1) {
    TimeEncoding out = make_time_encoding(std::move(e.matrix), tau, delays->front(), source);
    out.matrix_source = e.matrix_source;
    return out;
  }
  if (delays->size() != volumes) {
    f.fail("PostLabelingDelay",
           "has " + std::to_string(delays->size()) +
               " values; a time-encoded series takes one (the delay after the last sub-bolus) "
               "or one per volume (" + std::to_string(volumes) + ")");
  }
  for (std::size_t j = 0; j < k; ++j) {
    if (!(tau[j] > 0.0)) {
      f.fail("LabelingDuration", "sub-bolus " + std::to_string(j) + " has a duration of " +
                                     format_number(tau[j]) + " s; expected > 0");
    }
  }
  e.sub_bolus_duration = tau;
  e.sub_bolus_pld = per_sub_bolus(*delays, "PostLabelingDelay");
  return e;
}

}  // namespace

// ---- public API -----------------------------------------------------------------------------

std::optional<TimeEncoding> parse_time_encoding(const std::string& json_text,
                                                const std::vector<VolumeType>& context,
                                                const std::string& source) {
  const json root = parse_json_object(json_text, source);
  return time_encoding_from(root, Fields(root, source), context, source);
}

void check_json_nesting(const std::string& json_text, const std::string& source) {
  // Brackets count outside strings only; a string ends at an unescaped quote.
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < json_text.size(); ++i) {
    const char c = json_text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonNesting) {
        throw InputError(source, "",
                         "invalid JSON: arrays and objects nested more than " +
                             std::to_string(kMaxJsonNesting) + " levels deep (at byte " +
                             std::to_string(i) + "); metadata nests a few levels at most");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

AslProtocol parse_asl_sidecar(const std::string& json_text, const std::string& source) {
  return parse_sidecar(json_text, source, nullptr);
}

std::vector<VolumeType> parse_aslcontext(const std::string& tsv_text, const std::string& source) {
  std::vector<std::string> lines;
  {
    std::string text = tsv_text;
    if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // UTF-8 byte-order mark
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.push_back(line);
    }
  }
  while (!lines.empty() && trim(lines.back()).empty()) lines.pop_back();
  if (lines.empty()) throw InputError(source, "volume_type", "empty file; expected a header");

  auto split = [](const std::string& line) {
    std::vector<std::string> cells;
    std::size_t start = 0;
    while (true) {
      const auto tab = line.find('\t', start);
      cells.push_back(trim(line.substr(start, tab - start)));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    return cells;
  };
  const std::vector<std::string> header = split(lines.front());
  const auto column = std::find(header.begin(), header.end(), "volume_type");
  if (column == header.end()) {
    throw InputError(source, "volume_type",
                     "header line is '" + trim(lines.front()) + "'; expected 'volume_type'");
  }
  const std::size_t index = static_cast<std::size_t>(column - header.begin());

  std::vector<VolumeType> types;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::string row = "row " + std::to_string(i) + " (line " + std::to_string(i + 1) + ")";
    const std::vector<std::string> cells = split(lines[i]);
    if (index >= cells.size() || cells[index].empty()) {
      throw InputError(source, "volume_type", row + " is empty");
    }
    try {
      types.push_back(parse_volume_type(cells[index]));
    } catch (const InvalidArgument&) {
      throw InputError(source, "volume_type",
                       row + ": unknown volume type '" + cells[index] +
                           "' (expected control, label, m0scan, deltam, cbf or noRF)");
    }
  }
  if (types.empty()) throw InputError(source, "volume_type", "no rows after the header");
  return types;
}

AslDataset read_asl_bids(const std::string& asl_path) {
  const fs::path asl(asl_path);
  const std::string name = asl.filename().string();
  std::string extension;
  if (ends_with(name, "_asl.nii.gz")) {
    extension = ".nii.gz";
  } else if (ends_with(name, "_asl.nii")) {
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
  // Metadata first: it is cheap and most errors are there. The sidecar may be inherited
  // (BIDS): the applicable *_asl.json files from the dataset root down, merged key by key;
  // the aslcontext is the nearest applicable one.
  SidecarExtras extras;
  const std::vector<fs::path> levels = metadata_levels(folder);
  d.sidecar_paths = applicable_files(levels, d.prefix, "_asl.json");
  std::map<std::string, std::string> origin;
  std::string sidecar_text;
  if (d.sidecar_paths.size() <= 1) {  // as written (a missing one is reported here)
    if (!d.sidecar_paths.empty()) d.sidecar_path = d.sidecar_paths.back();
    sidecar_text = read_text_file(d.sidecar_path, "ASL sidecar (.json)");
  } else {
    d.sidecar_path = d.sidecar_paths.back();
    sidecar_text = merged_metadata(d.sidecar_paths, "ASL sidecar (.json)", origin).dump();
  }
  d.protocol = naming_origin(d.sidecar_path, origin,
                             [&] { return parse_sidecar(sidecar_text, d.sidecar_path, &extras); });
  const auto contexts = applicable_files(levels, d.prefix, "_aslcontext.tsv");
  if (!contexts.empty()) d.context_path = contexts.back();
  d.context = parse_aslcontext(read_text_file(d.context_path, "aslcontext (.tsv)"), d.context_path);
  d.time_encoding = naming_origin(d.sidecar_path, origin, [&] {
    return parse_time_encoding(sidecar_text, d.context, d.sidecar_path);
  });
  if (d.time_encoding) {
    const std::size_t n = d.time_encoding->matrix.cycles;
    const std::size_t encoded = static_cast<std::size_t>(
        std::count_if(d.context.begin(), d.context.end(), [](VolumeType t) {
          return t == VolumeType::Control || t == VolumeType::Label;
        }));
    if (encoded == 0 || encoded % n != 0) {
      throw InputError(d.context_path, "volume_type",
                       std::to_string(encoded) +
                           " encoded (control/label) rows is not a positive multiple of "
                           "TimeEncodedMatrixSize (" + std::to_string(n) + ", " +
                           d.sidecar_path + ")");
    }
    // The protocol describes each encoded volume: the whole labeling train, then the delay
    // after the last sub-bolus. Sub-bolus timing is in d.time_encoding.
    double total = 0.0;
    for (double t : d.time_encoding->sub_bolus_duration) total += t;
    d.protocol.labeling_duration = {total};
    d.protocol.post_labeling_delay = {d.time_encoding->sub_bolus_pld.back()};
  }

  // What the headers tell is checked before any voxel is read: a series can be gigabytes.
  const NiftiInfo asl_info = read_nifti_info(asl_path);
  const std::size_t volumes = asl_info.volumes;
  if (d.context.size() != volumes) {
    throw InputError(d.context_path, "volume_type",
                     std::to_string(d.context.size()) + " rows but " + name + " has " +
                         std::to_string(volumes) + " volumes");
  }
  // A separate M0: the series' own <prefix>_m0scan, else the one m0scan of the folder whose
  // sidecar's IntendedFor names the series (BIDS links them so when their entities differ,
  // e.g. dir-); on the series' grid.
  std::string m0_prefix = d.prefix;
  if (d.protocol.m0_type == M0Type::Separate) {
    fs::path m0 = nifti_beside(folder, m0_prefix + "_m0scan");
    if (m0.empty()) m0 = m0scan_intended_for(folder, asl, m0_prefix);
    if (m0.empty()) {
      throw InputError(d.sidecar_path, "M0Type",
                       "Separate, but " + d.prefix + "_m0scan.nii[.gz] was not found in " +
                           (folder.empty() ? std::string(".") : folder.string()) +
                           ", nor an m0scan whose sidecar's IntendedFor names " + name);
    }
    d.m0_path = m0.string();
    const NiftiInfo info = read_nifti_info(d.m0_path);
    if (!info.geometry.same_grid(asl_info.geometry)) {
      throw InputError(d.m0_path, "",
                       "not on the grid of the ASL series: " + describe_grid(info.geometry) +
                           " vs " + describe_grid(asl_info.geometry));
    }
  }
  d.asl = read_nifti(asl_path);
  if (!any_finite(d.asl.values())) throw InputError(asl_path, "", "no voxel has a finite value");
  // An all-zero (or all-NaN) volume is a dropped or empty acquisition, not a signal: pairing
  // it would give a plausible-looking but wrong ΔM.
  for (std::size_t v = 0; v < volumes; ++v) {
    if (d.context[v] == VolumeType::NoRf || d.context[v] == VolumeType::Cbf) continue;  // unused
    const float* first = d.asl.values().data() + v * d.asl.voxel_count();
    if (std::all_of(first, first + d.asl.voxel_count(), [](float x) { return x == 0.0f; })) {
      throw InputError(asl_path, "volume " + std::to_string(v),
                       "every voxel is 0 (an empty or dropped volume)");
    }
    // The same as a NaN fill: paired or averaged, it would make every voxel non-finite and
    // the map all 0 (status 3).
    if (std::none_of(first, first + d.asl.voxel_count(),
                     [](float x) { return std::isfinite(x); })) {
      throw InputError(asl_path, "volume " + std::to_string(v),
                       "no voxel has a finite value (an empty or dropped volume)");
    }
  }

  const auto& tr = extras.repetition_time_preparation;
  if (tr.size() > 1 && tr.size() != volumes) {
    const auto from = origin.find("RepetitionTimePreparation");
    throw InputError(from != origin.end() ? from->second : d.sidecar_path,
                     "RepetitionTimePreparation",
                     "has " + std::to_string(tr.size()) +
                         " values; expected 1 or one per volume (" + std::to_string(volumes) + ")");
  }
  // Every slice is read within the repetition time: a later slice time is in milliseconds
  // (which the 30 s bound misses when there are few slices) or belongs to another series.
  double shortest_tr = 0.0;
  for (double t : tr) {
    if (t > 0.0 && (shortest_tr == 0.0 || t < shortest_tr)) shortest_tr = t;
  }
  if (d.protocol.readout == Readout::TwoD && shortest_tr > 0.0 && !d.protocol.slice_timing.empty()) {
    const double last =
        *std::max_element(d.protocol.slice_timing.begin(), d.protocol.slice_timing.end());
    if (last >= shortest_tr) {
      const auto from = origin.find("SliceTiming");
      throw InputError(from != origin.end() ? from->second : d.sidecar_path, "SliceTiming",
                       "a slice is read at " + format_number(last) +
                           " s, not within the repetition time (RepetitionTimePreparation " +
                           format_number(shortest_tr) +
                           " s); BIDS gives times in seconds — was it written in milliseconds?");
    }
  }

  switch (d.protocol.m0_type) {
    case M0Type::Included: {
      std::vector<std::size_t> m0_volumes;
      for (std::size_t v = 0; v < volumes; ++v) {
        if (d.context[v] == VolumeType::M0Scan) m0_volumes.push_back(v);
      }
      if (m0_volumes.empty()) {
        throw InputError(d.context_path, "volume_type", "M0Type is Included but no row is m0scan");
      }
      d.protocol.m0_repetition_time.reset();
      // Without it the short-TR correction of M0 (up to a factor 1.3 at TR 2 s) would be
      // silently skipped.
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
      if (!extras.echo_time.empty()) {
        const auto from = origin.find("EchoTime");
        const std::string file = from != origin.end() ? from->second : d.sidecar_path;
        if (extras.echo_time.size() != 1 && extras.echo_time.size() != volumes) {
          d.m0_echo_time_file = file;
          d.m0_echo_time_issue = "has " + std::to_string(extras.echo_time.size()) +
                                 " values; expected 1 or one per volume (" +
                                 std::to_string(volumes) + ")";
        } else {
          take_m0_echo_time(d, file, extras.echo_time, m0_volumes);
        }
      }
      break;
    }
    case M0Type::Separate: {
      Volume<float> image = read_nifti(d.m0_path);  // found and checked above
      if (!any_finite(image.values())) {
        throw InputError(d.m0_path, "", "no voxel has a finite value");
      }
      // A 4D m0scan is a series of M0 images (repeats): averaged voxel by voxel, as the
      // m0scan rows of an Included M0 are. A voxel not finite in some volume stays so (the
      // fit then skips it); an all-zero volume is a dropped acquisition and is refused.
      d.m0_volumes = image.volumes();
      if (image.volumes() > 1) {
        const std::size_t n = image.voxel_count();
        Volume<float> mean(image.geometry(), 1, 0.0f);
        for (std::size_t v = 0; v < image.volumes(); ++v) {
          const float* first = image.values().data() + v * n;
          if (std::all_of(first, first + n, [](float x) { return x == 0.0f; })) {
            throw InputError(d.m0_path, "volume " + std::to_string(v),
                             "every voxel is 0 (an empty or dropped M0 volume)");
          }
          if (std::none_of(first, first + n, [](float x) { return std::isfinite(x); })) {
            throw InputError(d.m0_path, "volume " + std::to_string(v),
                             "no voxel has a finite value (an empty or dropped M0 volume)");
          }
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
      // Its sidecar may be inherited too.
      std::vector<std::string> m0_sidecars = applicable_files(levels, m0_prefix, "_m0scan.json");
      if (m0_sidecars.empty()) {  // reading it reports it missing
        m0_sidecars.push_back((folder / (m0_prefix + "_m0scan.json")).string());
      }
      std::map<std::string, std::string> m0_origin;
      const json m0_sidecar = merged_metadata(m0_sidecars, "m0scan sidecar", m0_origin);
      d.protocol.m0_repetition_time = naming_origin(m0_sidecars.back(), m0_origin, [&] {
        return m0_repetition_time(m0_sidecar, m0_sidecars.back());
      });
      const auto te_from = m0_origin.find("EchoTime");
      const std::string te_file = te_from != m0_origin.end() ? te_from->second : m0_sidecars.back();
      if (auto te = Fields(m0_sidecar, te_file).numbers("EchoTime")) {
        std::vector<std::size_t> all(te->size());
        for (std::size_t k = 0; k < all.size(); ++k) all[k] = k;
        take_m0_echo_time(d, te_file, *te, all);
      }
      if (!d.protocol.m0_repetition_time) {  // the short-TR correction would be skipped
        throw InputError(m0_sidecars.back(), "RepetitionTimePreparation",
                         "required (BIDS), not found (nor RepetitionTime): the M0 repetition "
                         "time decides the short-TR M0 correction");
      }
      break;
    }
    case M0Type::Estimate:
    case M0Type::Absent:
      break;
  }

  // An error in an inherited field names the file it came from.
  naming_origin(d.sidecar_path, origin, [&] {
    validate_protocol(d.protocol, volumes, d.asl.geometry().dims[2], d.sidecar_path);
    return 0;
  });
  return d;
}

std::string write_phantom_bids(const Phantom& phantom, const std::string& root,
                               const std::string& subject) {
  std::string label = subject.rfind("sub-", 0) == 0 ? subject.substr(4) : subject;
  if (label.empty() ||
      !std::all_of(label.begin(), label.end(), [](unsigned char c) { return std::isalnum(c); })) {
    throw InvalidArgument("subject label '" + subject + "' must be alphanumeric (BIDS)");
  }
  const std::size_t volumes = phantom.asl.volumes();
  if (volumes == 0 || phantom.context.size() != volumes) {
    throw InvalidArgument("phantom: the context does not match the ASL series");
  }
  const std::string sub = "sub-" + label;
  const fs::path base(root);
  const fs::path perf = base / sub / "perf";
  const fs::path truth = base / "derivatives" / "truth" / sub / "perf";
  try {
    fs::create_directories(perf);
    fs::create_directories(truth);
  } catch (const fs::filesystem_error& e) {
    throw Error(root + ": cannot create the dataset folders: " + e.code().message());
  }

  write_json(
      base / "dataset_description.json",
      {{"Name", "perfq phantom"},
       {"BIDSVersion", "1.9.0"},
       {"DatasetType", "raw"},
       {"GeneratedBy", json::array({{{"Name", "perfq"}, {"Version", PERFQ_VERSION_STRING}}})}});

  // The ASL series and its metadata.
  const AslProtocol& p = phantom.protocol;
  const bool pasl = p.labeling_type == LabelingType::Pasl;
  const fs::path asl = perf / (sub + "_asl.nii.gz");
  write_nifti(asl.string(), phantom.asl);

  json plds = json::array();
  json durations = json::array();
  double longest = 0.0;
  std::size_t pairs = 0;
  for (std::size_t v = 0; v < volumes; ++v) {
    plds.push_back(p.pld_of(v));
    durations.push_back(p.duration_of(v));
    longest = std::max(longest, p.pld_of(v) + (pasl ? 0.0 : p.duration_of(v)));
    if (phantom.context[v] == VolumeType::Control) ++pairs;
  }
  json sidecar = {{"ArterialSpinLabelingType", to_string(p.labeling_type)},
                  {"PostLabelingDelay", plds},
                  {"MRAcquisitionType", "3D"},
                  {"M0Type", "Separate"},
                  {"BackgroundSuppression", false},
                  {"MagneticFieldStrength", p.magnetic_field_strength},
                  // Labeling plus delay plus a readout of about a second, to 0.1 s.
                  {"RepetitionTimePreparation", std::ceil((longest + 1.0) * 10.0) / 10.0},
                  {"TotalAcquiredPairs", pairs}};
  if (phantom.time_encoding) {
    // ExploreASL's time-encoded fields; the form with one duration per sub-bolus and the
    // delay after the last one (see parse_time_encoding).
    const TimeEncoding& te = *phantom.time_encoding;
    sidecar["PostLabelingDelay"] = te.sub_bolus_pld.back();
    sidecar["LabelingDuration"] = te.sub_bolus_duration;
    sidecar["TimeEncodedMatrixType"] = to_string(phantom.time_encoded_type);
    sidecar["TimeEncodedMatrixSize"] = te.matrix.cycles;
    sidecar.erase("TotalAcquiredPairs");
  } else if (pasl) {
    sidecar["BolusCutOffFlag"] = p.bolus_cutoff_delay.has_value();
    if (p.bolus_cutoff_delay) {
      sidecar["BolusCutOffDelayTime"] = *p.bolus_cutoff_delay;
      sidecar["BolusCutOffTechnique"] = "QUIPSSII";
    }
  } else {
    sidecar["LabelingDuration"] = durations;
  }
  write_json(perf / (sub + "_asl.json"), sidecar);

  std::string context = "volume_type\n";
  for (VolumeType type : phantom.context) context += bids_volume_type(type) + "\n";
  write_text_atomic((perf / (sub + "_aslcontext.tsv")).string(), context);

  write_nifti((perf / (sub + "_m0scan.nii.gz")).string(), phantom.m0);
  write_json(perf / (sub + "_m0scan.json"),
             {{"RepetitionTimePreparation", 6.0},
              {"MRAcquisitionType", "3D"},
              {"IntendedFor", "bids::" + sub + "/perf/" + sub + "_asl.nii.gz"}});

  // Ground truth, as a derivative dataset.
  write_json(
      base / "derivatives" / "truth" / "dataset_description.json",
      {{"Name", "perfq phantom ground truth"},
       {"BIDSVersion", "1.9.0"},
       {"DatasetType", "derivative"},
       {"GeneratedBy", json::array({{{"Name", "perfq"}, {"Version", PERFQ_VERSION_STRING}}})}});
  const std::string t = sub + "_";
  write_nifti((truth / (t + "cbf.nii.gz")).string(), phantom.cbf);
  write_json(truth / (t + "cbf.json"), {{"Units", "mL/100 g/min"}});
  write_nifti((truth / (t + "att.nii.gz")).string(), phantom.att);
  write_json(truth / (t + "att.json"), {{"Units", "s"}});
  write_nifti((truth / (t + "dseg.nii.gz")).string(), phantom.tissue);
  write_text_atomic((truth / (t + "dseg.tsv")).string(), "index\tname\n1\tCSF\n2\tGM\n3\tWM\n");
  write_nifti((truth / (t + "territories.nii.gz")).string(), phantom.territories);
  write_text_atomic((truth / (t + "territories.tsv")).string(),
                    "index\tname\n1\tACA\n2\tMCA\n3\tPCA\n");
  write_nifti((truth / (t + "mask.nii.gz")).string(), phantom.brain);
  write_nifti((truth / (t + "borderdistance.nii.gz")).string(), phantom.border_distance);
  write_json(truth / (t + "borderdistance.json"), {{"Units", "mm"}});
  // Masks for the watershed tools: tissue classes, ventricles, designed border zones, lesions.
  Mask grey(phantom.tissue.geometry()), white(phantom.tissue.geometry());
  for (std::size_t i = 0; i < grey.size(); ++i) {
    grey[i] = phantom.tissue[i] == kGreyMatter ? 1 : 0;
    white[i] = phantom.tissue[i] == kWhiteMatter ? 1 : 0;
  }
  write_nifti((truth / (t + "label-GM_mask.nii.gz")).string(), grey);
  write_nifti((truth / (t + "label-WM_mask.nii.gz")).string(), white);
  if (phantom.ventricles.size() == grey.size()) {
    write_nifti((truth / (t + "label-ventricles_mask.nii.gz")).string(), phantom.ventricles);
  }
  if (phantom.border_zone.size() == grey.size()) {
    write_nifti((truth / (t + "label-borderzone_mask.nii.gz")).string(), phantom.border_zone);
    write_json(truth / (t + "label-borderzone_mask.json"),
               {{"Description",
                 "designed border zones: brain voxels within HalfWidth of a territory border"},
                {"HalfWidth", kPhantomBorderZoneMm},
                {"Units", "mm"}});
  }
  if (phantom.lesions.size() == grey.size() &&
      std::any_of(phantom.lesions.values().begin(), phantom.lesions.values().end(),
                  [](std::uint8_t v) { return v != 0; })) {
    write_nifti((truth / (t + "label-lesion_mask.nii.gz")).string(), phantom.lesions);
  }
  return asl.string();
}

}  // namespace io
PERFQ_NAMESPACE_END
