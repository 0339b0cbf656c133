/// @file
/// @brief ASL-BIDS input (`*_asl.nii[.gz]`, its JSON sidecar, `*_aslcontext.tsv`,
/// `*_m0scan.nii[.gz]` with its sidecar) and the phantom written as an ASL-BIDS dataset.
/// Part of perfq::io.
#pragma once

#include <perfq/asl_series.hpp>
#include <perfq/image.hpp>
#include <perfq/phantom.hpp>
#include <perfq/protocol.hpp>
#include <perfq/time_encoded.hpp>

#include <optional>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {

/// @brief The deepest nesting of JSON arrays and objects that perfq reads. BIDS sidecars and
/// perfq's own JSON outputs nest a few levels; a deeper file is refused before it is parsed,
/// so that no file can exhaust the stack of a JSON reader.
inline constexpr int kMaxJsonNesting = 64;

/// @brief Checks that `json_text` nests arrays and objects at most kMaxJsonNesting levels
/// deep (brackets inside strings do not count). Every JSON reader of perfq::io calls it
/// before parsing; a program reading JSON files with a recursive reader can call it too.
/// @param json_text the JSON text, as read from the file
/// @param source the file name used in error messages
/// @throws InputError naming `source` when the text nests deeper.
PERFQ_IO_API void check_json_nesting(const std::string& json_text, const std::string& source = {});

/// @brief Parses an ASL sidecar's JSON text into a protocol. Fields read:
/// `ArterialSpinLabelingType`, `PostLabelingDelay`, `LabelingDuration`, `BolusCutOffFlag`,
/// `BolusCutOffDelayTime`, `MRAcquisitionType`, `SliceTiming`, `LabelingEfficiency`,
/// `BackgroundSuppression`, `BackgroundSuppressionNumberPulses` (else the number of
/// `BackgroundSuppressionPulseTime` values), `M0Type`, `M0Estimate`,
/// `RepetitionTimePreparation`, `MagneticFieldStrength`. `LabelingDuration` is ignored for
/// PASL (read_asl_bids warns of it in AslDataset::warnings).
/// @param json_text the sidecar's contents
/// @param source the file name used in error messages
/// @throws InputError naming `source` and the field: invalid JSON, a missing required field,
/// a value of the wrong type, an unknown labeling or M0 type, non-positive times.
PERFQ_IO_API AslProtocol parse_asl_sidecar(const std::string& json_text,
                                           const std::string& source = {});

/// @brief Parses `*_aslcontext.tsv` text (header `volume_type`, one row per volume).
/// @throws InputError naming `source`, field "volume_type" and the row for unknown types.
PERFQ_IO_API std::vector<VolumeType> parse_aslcontext(const std::string& tsv_text,
                                                      const std::string& source = {});

/// @brief Reads the time-encoding fields of an ASL sidecar (ExploreASL's convention).
///
/// A series is time-encoded when the sidecar has any of `TimeEncodedMatrixType`,
/// `TimeEncodedMatrixSize` or `TimeEncodedMatrix`. What perfq supports:
/// - **matrix**: `TimeEncodedMatrix` when given — N rows (encoding cycles, in acquisition order)
///   of N − 1 entries (sub-boli, labeling order), or of N entries whose first column is all +1
///   (dropped); +1 control, −1 label (time_encoded.hpp) — checked for ±1 entries, balanced and
///   orthogonal columns. Otherwise generated from `TimeEncodedMatrixType` ("Hadamard"/"Natural"
///   or "Walsh", required then) and `TimeEncodedMatrixSize` (4 or 8; 12 for Hadamard). When
///   both are given the explicit matrix wins (the difference is noted in `matrix_source`); a
///   size that contradicts the matrix is an error.
/// - **timing**, either form: `LabelingDuration` with one value per sub-bolus (N − 1, labeling
///   order) and `PostLabelingDelay` one value, the delay after the last sub-bolus (each
///   sub-bolus's PLD is computed: sub_bolus_delays); or (ExploreASL's form) one value per
///   volume in either field, where sub-bolus k takes the value of the (k+1)-th encoded volume
///   of every block (blocks must agree; the first volume of a block carries no sub-bolus).
/// - **volumes**: the aslcontext's `control` and `label` rows are the encoded volumes, in order,
///   whatever their type; blocks of N consecutive encoded volumes are decoded together.
///   `m0scan` and `noRF` rows may be mixed in; `deltam` and `cbf` rows are refused when the
///   series is prepared (prepare_time_encoded).
/// @param json_text the sidecar's contents
/// @param context the series' volume types (for the per-volume timing form)
/// @param source the file name used in error messages
/// @return the encoding, or nothing when the sidecar is not time-encoded
/// @throws InputError naming `source` and the field: an unsupported size (e.g. 5), an unknown
/// type, a non-Hadamard or malformed matrix, a size that contradicts the matrix, a number of
/// durations or delays that fits neither form, PASL, non-positive times.
PERFQ_IO_API std::optional<TimeEncoding> parse_time_encoding(
    const std::string& json_text, const std::vector<VolumeType>& context,
    const std::string& source = {});

/// @brief A field the sidecar leaves out and the default read in its place.
struct DefaultedField {
  std::string file;     ///< the sidecar (the nearest applicable one)
  std::string field;    ///< e.g. "BackgroundSuppression"
  std::string assumed;  ///< what was read instead, and what it changes if wrong
};

/// @brief One ASL series with everything next to it.
struct AslDataset {
  std::string asl_path;      ///< the `*_asl.nii[.gz]` file
  std::string sidecar_path;  ///< its `.json`: the nearest applicable one (BIDS inheritance)
  /// Every `*_asl.json` applied, from the dataset root down (BIDS inheritance: a key of a
  /// nearer file replaces the same key of a farther one); `sidecar_path` is the last.
  std::vector<std::string> sidecar_paths;
  std::string context_path;  ///< `*_aslcontext.tsv`, the nearest applicable one
  std::string m0_path;       ///< `*_m0scan.nii[.gz]` when M0Type is Separate, else empty
  std::string prefix;        ///< the file name before `_asl` (e.g. "sub-01_ses-1"), for outputs
  Series<float> asl;                ///< the series as stored (scaled to float)
  std::vector<VolumeType> context;  ///< the type of each volume
  AslProtocol protocol;      ///< M0 repetition time taken from the m0scan sidecar if separate
  /// The separate M0 image (3D), when M0Type is Separate: a 4D m0scan's volumes averaged.
  std::optional<Volume<float>> m0;
  std::size_t m0_volumes = 0;  ///< volumes of the m0scan averaged into `m0` (Separate), else 0
  /// EchoTime of the M0 (s): from the m0scan sidecar (Separate) or at the series' m0scan
  /// volumes (Included); absent when not given or unusable. Used by reference-region
  /// calibration only, so an unusable one is not an error when reading: see
  /// `m0_echo_time_issue`.
  std::optional<double> m0_echo_time;
  std::string m0_echo_time_file;   ///< the sidecar that gave EchoTime, when one did
  /// Why EchoTime cannot serve (in milliseconds, different for the M0 volumes as in a
  /// multi-echo M0, a list of the wrong length); empty when it can or is absent.
  std::string m0_echo_time_issue;
  /// Time-encoded series (parse_time_encoding): the encoding, whose sub-bolus timing is the
  /// one to use; `protocol` then holds the whole labeling train (the sum of the sub-bolus
  /// durations) and the delay after the last sub-bolus. Quantify through prepare_time_encoded,
  /// not prepare_asl (which would pair the encoded volumes as control/label).
  std::optional<TimeEncoding> time_encoding;
  /// Fields BIDS requires that the sidecar leaves out and for which perfq read a default
  /// (BackgroundSuppression: none; MagneticFieldStrength: 3 T). quantify_series warns of each
  /// unless an option states the value (`--bs-pulses`; `--t1b`).
  std::vector<DefaultedField> defaulted;
  /// Where the number of background-suppression pulses came from when BackgroundSuppression
  /// is true: "BackgroundSuppressionNumberPulses", or "BackgroundSuppressionPulseTime (the
  /// number of its times)" when only the pulses' times are given; empty otherwise.
  std::string background_suppression_pulses_source;
  /// Metadata read one way that may mean another, each message naming the sidecar and the
  /// fields (e.g. LabelingDuration given for PASL, ignored); quantify_series warns of each.
  std::vector<std::string> warnings;
};

/// @brief A participant's haematocrit from the dataset's `participants.tsv` (column
/// `hematocrit`, `haematocrit`, `Hct`, `hct` or `HCT`, a fraction of 1), for the arterial
/// blood T1 (blood_t1_from_hematocrit; perfq bids passes it to perfq cbf as `--hct`).
/// @param bids_dir the dataset's root folder
/// @param participant the label, with or without `sub-`
/// @return the value; nothing when there is no participants.tsv, no such column, no row for
/// the participant, or the value is empty or `n/a`
/// @throws InputError naming participants.tsv and the column: no `participant_id` column, two
/// haematocrit columns, or the participant's value not a number, a percentage (e.g. 42) or
/// outside [0.1, 0.7].
PERFQ_IO_API std::optional<double> participant_hematocrit(const std::string& bids_dir,
                                                          const std::string& participant);

/// @brief The separate M0 image of the ASL series at `asl_path`, found as read_asl_bids finds
/// it for M0Type Separate: `<prefix>_m0scan.nii[.gz]` beside the series, else the one
/// m0scan of its folder whose sidecar's IntendedFor names the series (BIDS links them so
/// when their entities differ, e.g. `dir-`). Reads no image and not the series' sidecar.
/// @return the path; empty when there is none
/// @throws InputError naming the file: a name that is not `*_asl.nii[.gz]`, or two m0scans
/// whose IntendedFor name the series.
PERFQ_IO_API std::string find_m0scan(const std::string& asl_path);

/// @brief Reads and validates an ASL-BIDS series given the path of its `*_asl.nii[.gz]`.
/// @throws InputError naming the file and field on anything missing or contradictory: a
/// timing list whose length is not the number of volumes, no LabelingDuration for PCASL,
/// aslcontext rows ≠ volumes, a missing m0scan for M0Type Separate, ASL and M0 on
/// different grids, an m0scan volume that is all 0, NaN-only or unreadable images; for time-encoded series every
/// refusal of parse_time_encoding, and an encoded volume count that is not a multiple of N.
PERFQ_IO_API AslDataset read_asl_bids(const std::string& asl_path);

/// @brief read_asl_bids, inflating the images on `threads` CPU threads (0: OpenMP's default,
/// as the one-argument form). Only a `.nii.gz` whose gzip members record their sizes (as
/// perfq writes them) is inflated on several threads; one gzip stream (as converters write
/// them) is inflated on one. The dataset read does not depend on `threads`.
PERFQ_IO_API AslDataset read_asl_bids(const std::string& asl_path, int threads);

/// @brief Writes a phantom as an ASL-BIDS dataset under `root`: `dataset_description.json`,
/// `sub-<label>/perf/sub-<label>_{asl.nii.gz,asl.json,aslcontext.tsv,m0scan.nii.gz,m0scan.json}`
/// and the truth under `derivatives/truth/sub-<label>/perf/`: `_cbf`, `_att`, `_dseg`,
/// `_territories`, `_mask`, `_borderdistance` images, the masks
/// `_label-{GM,WM,ventricles,borderzone}_mask` (and `_label-lesion_mask` when the phantom has
/// lesions), and the tables `_dseg.tsv`/`_territories.tsv`.
/// @return the path of the written `*_asl.nii.gz`
PERFQ_IO_API std::string write_phantom_bids(const Phantom& phantom, const std::string& root,
                                            const std::string& subject = "01");

}  // namespace io
PERFQ_NAMESPACE_END
