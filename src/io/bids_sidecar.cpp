// ASL-BIDS sidecars: the protocol, the time encoding and the M0 repetition time from their
// JSON; the choices where BIDS leaves room are listed in bids_internal.hpp.
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/time_encoded.hpp>

#include "bids_internal.hpp"
#include "protocol_checks.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace detail {

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
  std::optional<std::vector<double>> pasl_duration;  // LabelingDuration given for PASL

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
    // BIDS defines LabelingDuration for PCASL/CASL only; a simulator that writes it for PASL
    // writes PostLabelingDelay as TI − TI1 beside it. perfq reads TI from PostLabelingDelay:
    // warned of, below, once the field strength (the blood T1 of the size of the error) is
    // known.
    if (f.has("LabelingDuration")) pasl_duration = f.numbers("LabelingDuration");
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
  // Each suppression pulse lowers the labeling efficiency. Without the count, the list of the
  // pulses' times gives it (one time per pulse); with neither, an unknown number is recorded
  // (not refused here: BIDS only recommends the fields, and perfq cbf --bs-pulses can state
  // it); resolve_constants refuses to quantify with it.
  if (p.background_suppression.enabled && !f.has("BackgroundSuppressionNumberPulses")) {
    if (const auto times = f.numbers("BackgroundSuppressionPulseTime")) {
      if (times->size() > 100) {
        f.fail("BackgroundSuppressionPulseTime",
               std::to_string(times->size()) + " pulse times: expected at most 100 pulses");
      }
      p.background_suppression.pulses = static_cast<int>(times->size());
      if (extras) extras->pulses_from_pulse_time = true;
    } else {
      p.background_suppression.pulses_unknown = true;
    }
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
  if (extras) {
    extras->background_suppression_given = f.has("BackgroundSuppression");
    extras->field_strength_given = f.has("MagneticFieldStrength");
  }
  if (auto te = f.numbers("EchoTime"); extras && te) extras->echo_time = std::move(*te);

  if (const auto field = f.number("MagneticFieldStrength")) {
    if (!(*field > 0.0)) {
      f.fail("MagneticFieldStrength", "must be positive (tesla), found " + format_number(*field));
    }
    p.magnetic_field_strength = *field;
  }
  if (pasl_duration && extras) {
    const double ld = *std::max_element(pasl_duration->begin(), pasl_duration->end());
    double ti = 0.0;  // the first TI of a label or control volume (m0scan rows have 0)
    for (double v : p.post_labeling_delay) {
      if (ti == 0.0 && v > 0.0) ti = v;
    }
    const double t1b = Physiology::at_field(p.magnetic_field_strength).t1_blood;
    const long low = std::lround(100.0 * (1.0 - std::exp(-ld / t1b)));
    extras->warnings.push_back(
        source + ": LabelingDuration: " + format_number(ld) +
        " s given for PASL, where BIDS defines no labeling duration (it belongs to "
        "PCASL/CASL); perfq ignores it and quantifies with TI = PostLabelingDelay (" +
        format_number(ti) + (p.post_labeling_delay.size() > 1 ? " s, the first TI" : " s") +
        ") and TI1 = BolusCutOffDelayTime (" + format_number(*p.bolus_cutoff_delay) +
        " s). If PostLabelingDelay holds TI − TI1 (as a simulator that writes LabelingDuration "
        "for PASL does), the inversion time is PostLabelingDelay + LabelingDuration and CBF "
        "comes out " +
        std::to_string(low) + " % too low (e^(−" + format_number(ld) + "/T1b), T1b " +
        format_number(t1b) + " s): give TI in PostLabelingDelay and remove LabelingDuration");
  }
  return p;
}

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
      f.fail(key, checks::not_seconds(values->front()));
    }
    return values->front();
  }
  return std::nullopt;
}

}  // namespace detail

namespace {

using detail::describe;
using detail::Fields;
using detail::format_number;
using detail::json;
using detail::lower;

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

/// Time-encoding fields of a parsed sidecar (see the notes in bids_internal.hpp).
std::optional<TimeEncoding> time_encoding_from(const json& root, const Fields& f,
                                               const std::vector<VolumeType>& context,
                                               const std::string& source) {
  const char* kType = "TimeEncodedMatrixType";
  const char* kSize = "TimeEncodedMatrixSize";
  const char* kMatrix = "TimeEncodedMatrix";
  if (!f.has(kType) && !f.has(kSize) && !f.has(kMatrix)) return std::nullopt;

  const auto labeling = f.string("ArterialSpinLabelingType");
  if (labeling && lower(*labeling) == "pasl") {
    f.fail("ArterialSpinLabelingType",
           "time encoding (" + std::string(kSize) + ") is supported for PCASL and CASL, not PASL");
  }
  std::optional<std::size_t> size;
  if (const auto n = f.number(kSize)) {
    if (*n != std::floor(*n) || *n < 2 || *n > 64) {
      f.fail(kSize,
             "expected a whole number of encoding cycles (4, 8 or 12), found " + format_number(*n));
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
               "or one per volume (" +
               std::to_string(volumes) + ")");
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

std::optional<TimeEncoding> parse_time_encoding(const std::string& json_text,
                                                const std::vector<VolumeType>& context,
                                                const std::string& source) {
  const json root = detail::parse_json_object(json_text, source);
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
  return detail::parse_sidecar(json_text, source, nullptr);
}

}  // namespace io
PERFQ_NAMESPACE_END
