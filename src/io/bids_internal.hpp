// Internal to perfq::io: what the ASL-BIDS readers and writers share (text helpers, typed
// JSON field access naming file and field, the sidecar parser, BIDS inheritance).
//
// Choices where BIDS leaves room (documented here, tested in tests/io/test_bids.cpp):
// - Field names are case-sensitive as in BIDS; enumerated values (PCASL, Separate, 3D, ...)
//   are accepted in any letter case.
// - MRAcquisitionType absent: 2D when SliceTiming is given, else 3D.
// - SliceTiming is kept for 2D readouts only, in slice (third-axis) order: reversed when
//   SliceEncodingDirection is "k-"; "i"/"j" (slices along another axis) are refused. A 2D
//   readout without SliceTiming is stored with an empty list; validate_protocol refuses it.
// - PASL: BolusCutOffDelayTime is required (its first value is TI1; Q2TIPS gives two) and
//   BolusCutOffFlag false is refused: quantification needs the bolus duration TI1.
//   LabelingDuration is ignored for PASL (it has no labeling duration), with a warning.
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
// - BackgroundSuppression true without BackgroundSuppressionNumberPulses: the count is the
//   number of BackgroundSuppressionPulseTime values when that list is given (recorded as the
//   count's source), else read with `pulses_unknown` set (quantification refuses it unless
//   the count is stated elsewhere, e.g. perfq cbf --bs-pulses); pulses with
//   BackgroundSuppression false or absent are refused as contradictory.
// - LabelingDuration given for PASL is ignored with a warning (AslDataset::warnings): TI is
//   PostLabelingDelay, which a simulator writing LabelingDuration may have written as TI − TI1.
// - BackgroundSuppression absent: none, and MagneticFieldStrength absent: the AslProtocol
//   default (3 T); both BIDS-required fields are listed in AslDataset::defaulted, of which
//   quantify_series warns unless an option states the value.
// - RepetitionTimePreparation beyond 30 s in the ASL sidecar (milliseconds) is refused, as
//   in an m0scan sidecar, whatever the M0Type.
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
#pragma once

#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>

#include "file_checks.hpp"
#include "text_util.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace detail {

using json = nlohmann::json;

// ---- text helpers -------------------------------------------------------------------------

using strings::ends_with;
using strings::format_number;
using strings::lower;
using strings::trim;

/// The cells of one line of a BIDS .tsv file, each trimmed.
inline std::vector<std::string> tab_cells(const std::string& line) {
  std::vector<std::string> cells;
  std::size_t start = 0;
  while (true) {
    const auto tab = line.find('\t', start);
    cells.push_back(trim(line.substr(start, tab - start)));
    if (tab == std::string::npos) break;
    start = tab + 1;
  }
  return cells;
}

/// A short rendering of a JSON value for error messages.
inline std::string describe(const json& value) {
  if (value.is_null()) return "null";
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return std::string(value.type_name()) + " " + text;
}

inline std::string read_text_file(const std::string& path, const std::string& what) {
  require_regular_file(path, what, what + " not found");
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
  bool background_suppression_given = false;        ///< BackgroundSuppression present
  bool field_strength_given = false;                ///< MagneticFieldStrength present
  /// BackgroundSuppressionNumberPulses absent: the count taken from the number of
  /// BackgroundSuppressionPulseTime values.
  bool pulses_from_pulse_time = false;
  /// Metadata read one way that may mean another (e.g. LabelingDuration for PASL), each
  /// message naming the sidecar and the fields: AslDataset::warnings.
  std::vector<std::string> warnings;
};

/// The one echo time of an M0 (s) from `values` (EchoTime: one value or one per volume, of
/// which `used` are the M0's), into `d.m0_echo_time`; when it cannot serve (different values,
/// e.g. a multi-echo M0, or milliseconds) `d.m0_echo_time_issue` says why instead. Not an
/// error here: only reference-region calibration uses it.
void take_m0_echo_time(AslDataset& d, const std::string& source, const std::vector<double>& values,
                       const std::vector<std::size_t>& used);

/// The JSON object in `text`; InputError naming `source` for invalid JSON, another type, or
/// a key given twice at the top level (the parser keeps the last silently; a hand-edited
/// sidecar may mean the first).
json parse_json_object(const std::string& text, const std::string& source);

/// The protocol in an ASL sidecar's JSON `text` (parse_asl_sidecar's work); `extras`, when
/// given, gets the fields that need the rest of the dataset to be used.
AslProtocol parse_sidecar(const std::string& text, const std::string& source,
                          SidecarExtras* extras);

/// The M0 repetition time from an m0scan sidecar: RepetitionTimePreparation, else
/// RepetitionTime; absent when neither is given.
std::optional<double> m0_repetition_time(const json& root, const std::string& path);

/// The aslcontext name of a volume type ("control", "m0scan", "noRF", ...).
std::string bids_volume_type(VolumeType type);

// ---- BIDS inheritance (bids_inheritance.cpp) -----------------------------------------------

/// The entities of a BIDS file name's stem without its suffix ("sub-01_ses-1" → sub: 01,
/// ses: 1; "" → none); nothing when a part is not key-value.
std::optional<std::map<std::string, std::string>> entities_of(const std::string& stem);

/// The folders whose metadata may apply to a data file in `folder` (BIDS inheritance): from
/// the dataset root (the nearest folder with dataset_description.json, `folder` included)
/// down to `folder`, which keeps the caller's spelling; only `folder` without a dataset root.
std::vector<std::filesystem::path> metadata_levels(const std::filesystem::path& folder);

/// The metadata files named `*<suffix>` (e.g. "_asl.json") that apply to the data file
/// `<prefix>_…` by the BIDS inheritance principle: in one of `levels` (metadata_levels: root
/// first, the data file's folder last), with entities that are a subset of the data file's (a
/// prefix that is not key-value: only its own file, in the last level). Ordered from the root
/// down (the last is the nearest).
/// @throws InputError when two files of one folder apply (BIDS allows one per level)
std::vector<std::string> applicable_files(const std::vector<std::filesystem::path>& levels,
                                          const std::string& prefix, const std::string& suffix);

/// The JSON metadata of `files` (applicable_files' order) merged as BIDS inheritance does: a
/// key of a nearer file replaces the same key of a farther one. `origin` gets the file each
/// key came from.
json merged_metadata(const std::vector<std::string>& files, const std::string& what,
                     std::map<std::string, std::string>& origin);

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
std::filesystem::path nifti_beside(const std::filesystem::path& folder, const std::string& stem);

/// The m0scan image in `folder` whose sidecar's IntendedFor (a string or a list) names the
/// series `asl`; empty when none does. `m0_prefix` gets its name before `_m0scan`.
/// @throws InputError when several do (which one is meant is then unclear)
std::filesystem::path m0scan_intended_for(const std::filesystem::path& folder,
                                          const std::filesystem::path& asl, std::string& m0_prefix);

}  // namespace detail
}  // namespace io
PERFQ_NAMESPACE_END
