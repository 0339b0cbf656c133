/// @file
/// @brief The whole path from an ASL-BIDS series to calibrated maps, in process: what
/// `perfq cbf` runs, for programs that link perfq. Part of perfq::io.
///
/// quantify_series() chooses the M0 (an explicit value, else what `M0Type` says),
/// calibrates it (scale, smoothing, reference region), checks the sign of ΔM, quantifies
/// (single delay: the white paper's formula; several delays or time-encoded: the kinetic
/// fit), corrects partial volumes when asked, checks the CBF range, and returns the maps with
/// their provenance (the `<prefix>_cbf.json` record). Nothing is printed and nothing is
/// written: warnings are returned; series_outputs() and write_series_output() give the files
/// perfq cbf writes, by its names.
#pragma once

#include <perfq/asl_series.hpp>
#include <perfq/calibration.hpp>
#include <perfq/execution.hpp>
#include <perfq/image.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/kinetic.hpp>
#include <perfq/protocol.hpp>
#include <perfq/pvc.hpp>
#include <perfq/quality.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {

/// @brief Every choice of a series' quantification: the options of `perfq cbf`. Error
/// messages name these choices by perfq cbf's options (e.g. `--bs-pulses`).
struct SeriesRequest {
  std::optional<std::string> mask_path;         ///< compute inside this mask only (series' grid)
  std::optional<double> blood_brain_partition;  ///< ml/g (default 0.9; --lambda)
  std::optional<double> t1_blood;               ///< arterial blood T1, s (default by field; --t1b)
  /// Haematocrit (a fraction, --hct): arterial blood T1 from it by blood_t1_from_hematocrit
  /// (Lu et al. 2004, 3 T only), unless `t1_blood` is given, which beats it (with a note).
  std::optional<double> hematocrit;
  std::optional<double> t1_tissue;  ///< tissue T1, s (default 1.3; --t1t)
  /// Labeling efficiency; overrides the sidecar's and the defaults (--alpha).
  std::optional<double> labeling_efficiency;
  std::optional<double> bs_pulse_efficiency;  ///< efficiency per background-suppression pulse
  std::optional<int> bs_pulses;    ///< background-suppression pulses (beats the sidecar's)
  std::optional<double> m0_value;  ///< one M0 for every voxel (overrides M0Type)
  std::optional<double> m0_scale;  ///< factor applied to the M0 first (default 1)
  double m0_smooth_fwhm = 0.0;     ///< Gaussian smoothing of a voxelwise M0 image, mm
  /// Reference-region calibration: one M0 of arterial blood from the mean M0 in
  /// `reference_mask` (needs an M0 image). `reference.tissue` is taken from here;
  /// `reference.repetition_time` and `echo_time` are filled from the series unless given.
  std::optional<ReferenceTissue> reference_tissue;
  std::optional<std::string> reference_mask;  ///< the reference region (0/1, series' grid)
  ReferenceCalibrationOptions reference;      ///< the tissue's constants, when overridden
  std::optional<double> echo_time;  ///< TE of the M0 scan (default: its sidecar's EchoTime)
  /// T2 of arterial blood, s (default: ReferenceCalibrationOptions's; --t2-blood).
  std::optional<double> blood_t2;
  /// Voxels whose M0 is below this fraction of the brain region's median M0 (the mask, else
  /// the automatic brain mask) get status 8 (VoxelStatus::M0TooLow) and maps 0: the
  /// background of a resampled or spiral acquisition (M0 ~1e-14) would otherwise give CBF of
  /// ±1e9. In [0, 0.5]; 0 turns the rule off (--min-m0-fraction). Only with an M0 image.
  double min_m0_fraction = 0.01;
  /// Averaging of repeats (its mask is set from mask_path). With `outliers` Score or Scrub
  /// (`--outliers score|scrub`; single-delay series, GM, WM and CSF maps needed, not with
  /// `robust`), its tissue maps and threshold are set from the probseg maps and
  /// `tissue_threshold`, and its CBF scale from the M0 and constants chosen.
  AveragingOptions averaging;
  bool check_sign = true;  ///< refuse ΔM negative in most of the brain (control/label swapped)
  KineticOptions kinetic;  ///< the multi-delay fit (its weights are set from the repeats)
  /// Partial-volume correction from grey/white-matter fraction images (both or neither).
  std::optional<std::string> pvc_grey;
  std::optional<std::string> pvc_white;  ///< the white-matter fraction image
  PvcOptions pvc;                        ///< the correction's kernel and threshold
  /// Tissue probability maps on the series' grid (values in [0, 1]; 0/1 masks serve), e.g.
  /// `<prefix>_label-GM_probseg.nii.gz`: the GM and WM indices and the QEI of the quality
  /// control (`--gm-probseg`, `--wm-probseg`, `--csf-probseg`). Any may be absent.
  std::optional<std::string> gm_probseg;
  std::optional<std::string> wm_probseg;   ///< white matter (`--wm-probseg`)
  std::optional<std::string> csf_probseg;  ///< cerebrospinal fluid (`--csf-probseg`)
  /// Tissue T1 per voxel for the kinetic fit (s, the series' grid; `--t1t-map`):
  /// KineticOptions::t1_tissue_map. Not with `t1_tissue_partial_volume`.
  std::optional<std::string> t1_tissue_map;
  /// Tissue T1 per voxel weighted by the GM and WM probability maps (`--t1t-pv`; needs
  /// `gm_probseg` and `wm_probseg`): (p_GM T1_GM + p_WM T1_WM) / (p_GM + p_WM), T1_GM the
  /// tissue T1 (`t1_tissue`, 1.3 s), T1_WM `t1_white_matter`; the tissue T1 where
  /// p_GM + p_WM < 0.05.
  bool t1_tissue_partial_volume = false;
  /// White matter's T1 for `t1_tissue_partial_volume` (s; `--t1t-wm`; default 1.1 s, BASIL's).
  std::optional<double> t1_white_matter;
  /// The probability above which a voxel counts as GM, WM or CSF in the quality indices
  /// (QualityOptions::tissue_threshold; `--tissue-threshold`).
  double tissue_threshold = 0.7;
  Execution execution;  ///< backend, device, threads
  /// Provenance only: a JSON object's text recorded as `Configuration` in the `_cbf.json`
  /// (configure_series sets it to what a configuration file applied); empty: not recorded.
  std::string configuration;
};

/// @brief The plausibility check of a CBF map: its median over the fitted voxels (status 0)
/// of the brain region (the mask, else the bright part of the M0 image) against 10–150
/// ml/100 g/min, the range of any adult or child brain's mix of grey and white matter.
/// Outside it, a calibration error is the likeliest cause: a warning, not an error.
struct CbfRangeCheck {
  bool checked = false;     ///< false: no region, or no fitted voxel in it (see `why_not`)
  std::string why_not;      ///< why it was not checked
  std::string region;       ///< "mask", "M0 >= half its 98th percentile" or "all voxels"
  std::size_t voxels = 0;   ///< fitted voxels of the region
  double median_cbf = 0.0;  ///< their median, ml/100 g/min
  double low = 10.0;        ///< the plausible range's lower end, ml/100 g/min
  double high = 150.0;      ///< its upper end
  bool plausible = true;    ///< median within [low, high]
};

/// @brief The maps of one series and how they were made.
struct SeriesMaps {
  std::string asl_path;  ///< the series quantified
  std::string prefix;    ///< its name before `_asl` (e.g. "sub-01_ses-1"): output names
  LabelingType labeling_type = LabelingType::Pcasl;  ///< the series' labeling
  std::size_t delays = 1;  ///< ΔM volumes quantified (sub-boli for time-encoded series)
  /// The time-encoding matrix's source (TimeEncoding::matrix_source); empty when the series
  /// is not time-encoded.
  std::string time_encoding;
  Backend backend = Backend::Cpu;  ///< where the quantification ran

  /// ml/100 g/min; with `relative_cbf`, relative to the brain's median (1 there, unitless).
  Volume<float> cbf;
  Volume<std::uint8_t> status;  ///< VoxelStatus codes
  /// True when the series has no M0 (M0Type Absent) and no `m0_value` was given: `cbf` and
  /// `cbf_se` (and the PVC maps) are CBF divided by its median over the brain region's voxels
  /// of status 0, free of the M0's scale; files `<prefix>_desc-relative_cbf*.nii.gz`. ATT is
  /// absolute as always.
  bool relative_cbf = false;
  /// The brain mask computed when the request gives none (brain_mask of the M0 image, else
  /// of the mean control image): the region of every check and summary, written as
  /// `<prefix>_desc-brain_mask.nii.gz`. Absent with a mask given, or when the series has
  /// neither an M0 nor control images.
  std::optional<Mask> brain_mask;
  /// Multi-delay (and time-encoded) series: arterial transit time (s).
  std::optional<Volume<float>> att;
  std::optional<Volume<float>> cbf_se;  ///< standard error of CBF (multi-delay)
  std::optional<Volume<float>> att_se;  ///< standard error of ATT, s (multi-delay)
  /// With KineticOptions::arterial: arterial blood volume (%).
  std::optional<Volume<float>> abv;
  std::optional<Volume<float>> abv_se;        ///< its standard error (%)
  std::optional<Volume<float>> arterial_att;  ///< arterial arrival time, s
  /// With partial-volume correction: grey-matter CBF.
  std::optional<Volume<float>> cbf_grey;
  std::optional<Volume<float>> cbf_white;  ///< white-matter CBF
  /// Scanner-made CBF volumes of the series (averaged), kept for comparison.
  std::optional<Volume<float>> scanner_cbf;

  ResolvedConstants constants;  ///< the constants the quantification used
  DeltaMSign sign_check;        ///< the control/label sign check
  std::string check_region;     ///< the brain region of both checks (CbfRangeCheck::region)
  CbfRangeCheck range_check;    ///< the CBF-range check
  /// Over the voxels of status 0 in the brain region (`check_region`: the mask, else the
  /// automatic brain mask, else every voxel); 0 when none. 1 with `relative_cbf`.
  double median_cbf = 0.0;
  double median_att = 0.0;         ///< likewise, multi-delay series only
  std::vector<std::string> notes;  ///< remarks of the preparation (e.g. noRF ignored)
  /// Per ΔM volume: the repeats dropped as outliers (`--robust`, `--outliers`), each with its
  /// volumes in the series and the reason (PreparedAsl::rejected_volumes).
  std::vector<std::vector<RepeatVolumes>> rejected_volumes;
  std::vector<std::string> warnings;  ///< e.g. an implausible median CBF
  /// The quality indices of the CBF map (quality_indices over the brain region and the
  /// request's tissue maps; the voxels with a value by `status`).
  QualityReport quality;
  /// `quality` as perfq cbf writes it: `<prefix>_desc-qualitycontrol_cbf.tsv` (a header and
  /// one row, `n/a` for an index not defined) and its JSON sidecar describing every column.
  std::string quality_tsv;
  std::string quality_json;  ///< the sidecar `<prefix>_desc-qualitycontrol_cbf.json`
  /// The provenance record written as `<prefix>_cbf.json`: every constant, option, input
  /// check and warning (JSON text, 2-space indented, ending in a newline).
  std::string provenance_json;
};

/// @brief One option of a request, by perfq cbf's name.
struct SeriesOption {
  std::string name;          ///< e.g. "--lambda", "--att-prior"
  bool takes_value = false;  ///< "--lambda 0.9" takes one; a flag ("--att-prior") none
  bool names_file = false;   ///< its value is a file name ("--mask", "--ref-mask", "--pvc-gm")
};

/// @brief Every option set_series_option knows: perfq cbf's options but for the output
/// (`-o`, `--overwrite`) and execution (`--backend`, `--device`, `--threads`) ones, in the
/// order they are checked.
PERFQ_IO_API std::vector<SeriesOption> series_options();

/// @brief Sets one option of `request` by perfq cbf's name from its text, checked against the
/// range the quantification accepts (e.g. `--lambda` in (0, 2] ml/g, `--grid-points` in
/// [3, 1000]). A flag takes an empty value. Files named are not opened here.
/// @throws InvalidArgument naming the option: unknown, a value missing or out of range.
PERFQ_IO_API void set_series_option(SeriesRequest& request, const std::string& name,
                                    const std::string& value = {});

/// @brief Checks the combination of a request's options (e.g. `--ref-tissue` needs
/// `--ref-mask`, `--att-min` below `--att-max`, both PVC images or neither); quantify_series
/// checks it too.
/// @throws InvalidArgument naming the options.
PERFQ_IO_API void check_series_request(const SeriesRequest& request);

/// @brief A request from perfq cbf's options, e.g. {"--att-prior", "--lambda", "0.9"}: each
/// set with set_series_option (in series_options' order, whatever the order given), then
/// checked with check_series_request.
/// @throws InvalidArgument naming the option: unknown, given twice, a value missing or out of
/// range, a bad combination.
PERFQ_IO_API SeriesRequest parse_series_options(const std::vector<std::string>& options);

/// @brief Quantifies the ASL-BIDS series at `asl_path` (read with read_asl_bids, BIDS
/// inheritance included).
/// @throws InputError naming the file and field for bad data or metadata; InvalidArgument for
/// a bad request; BackendError when the requested backend is unavailable.
PERFQ_IO_API SeriesMaps quantify_series(const std::string& asl_path, const SeriesRequest& request);

/// @brief The same for a series already read.
PERFQ_IO_API SeriesMaps quantify_series(const AslDataset& data, const SeriesRequest& request);

/// @brief The constants a request quantifies `protocol` with: Physiology::at_field of its
/// field strength, then the request's overrides (`--lambda`, `--t1b` or else `--hct`,
/// `--t1t`, `--alpha`, `--bs-pulse-efficiency`). `sidecar` names the file the protocol came
/// from in errors.
/// @throws InputError naming `sidecar` and MagneticFieldStrength for a field without default
/// blood T1 (outside 1–3.5 T) when the request gives none, or, with `--hct` and no `--t1b`,
/// a field other than 3 T (2.25–3.5 T), where the haematocrit relation was not measured.
/// @throws InvalidArgument for a haematocrit outside blood_t1_from_hematocrit's range.
PERFQ_IO_API Physiology series_physiology(const AslProtocol& protocol, const SeriesRequest& request,
                                          const std::string& sidecar);

/// @brief One file of a quantified series: its name (in the output folder) and content.
struct SeriesOutput {
  std::string name;                             ///< e.g. "sub-01_cbf.nii.gz"
  const Volume<float>* map = nullptr;           ///< a map, or
  const Volume<std::uint8_t>* codes = nullptr;  ///< the status codes or a mask (0/1), or
  const std::string* text = nullptr;            ///< the provenance record
  /// Threads compressing an image (`.nii.gz`): 0 = OpenMP's default (OMP_NUM_THREADS, else
  /// every core); SeriesOutputOptions::threads. The file's content does not depend on it.
  int threads = 0;
};

/// @brief How the files of a series are written: perfq cbf's output options.
struct SeriesOutputOptions {
  /// True (the default): images as `.nii.gz` (gzip level 1); false: as uncompressed `.nii`
  /// (perfq cbf --uncompressed), the same header and voxel values, faster to write and read
  /// but larger (4-6 times for a phantom's maps, zero outside the brain). BIDS allows both;
  /// the JSON sidecars are the same either way.
  bool compressed = true;
  /// Threads compressing the images, each cut into 1 MiB gzip members deflated side by side
  /// (0 = OpenMP's default; perfq cbf passes its --threads). The files' bytes do not depend
  /// on it.
  int threads = 0;
};

/// @brief The files perfq cbf writes for `maps`, in its order: `<prefix>_cbf.nii.gz`, the
/// multi-delay maps, `_fitstatus.nii.gz`, the arterial and PVC maps, `_cbf.json`,
/// `_desc-scanner_cbf.nii.gz`, `_desc-brain_mask.nii.gz` (the automatic brain mask) and the
/// quality indices `_desc-qualitycontrol_cbf.tsv` with its `.json` (perfq/io/quality.hpp). With
/// relative CBF, `_desc-relative_cbf.nii.gz` and `_desc-relative_cbf_se.nii.gz` in place of
/// `_cbf.nii.gz` and `_cbf_se.nii.gz`. The pointers refer into `maps`.
PERFQ_IO_API std::vector<SeriesOutput> series_outputs(const SeriesMaps& maps);

/// @brief The same, the images named `.nii` instead of `.nii.gz` unless `options.compressed`
/// (the `_cbf.json` unchanged).
PERFQ_IO_API std::vector<SeriesOutput> series_outputs(const SeriesMaps& maps,
                                                      const SeriesOutputOptions& options);

/// @brief The names of the files perfq cbf may write for a series of `prefix` whatever its
/// kind (to refuse existing outputs before any work): `_cbf.nii.gz`, `_cbf.json`,
/// `_fitstatus.nii.gz`.
PERFQ_IO_API std::vector<std::string> series_output_names(const std::string& prefix);

/// @brief The same for the extension `options` chooses (`_cbf.nii`, `_fitstatus.nii`
/// uncompressed).
PERFQ_IO_API std::vector<std::string> series_output_names(const std::string& prefix,
                                                          const SeriesOutputOptions& options);

/// @brief The status map perfq cbf writes beside a map: `<prefix>_fitstatus.nii.gz` (else
/// `.nii`) in the folder of `map_path` when that is named as perfq cbf names its maps,
/// `<prefix>_<map>.nii[.gz]` with `<map>` one of `cbf`, `att`, `cbf_se`, `att_se`, `abv`,
/// `abv_se`, `aatt`, `cbf_gm`, `cbf_wm`, `desc-relative_cbf`, `desc-relative_cbf_se`
/// (`desc-scanner_cbf`, made by the scanner, has none).
/// @return its path, or nothing when the map is named otherwise or no status map is there.
PERFQ_IO_API std::optional<std::string> find_status_map(const std::string& map_path);

/// @brief Reads a status map (VoxelStatus codes, e.g. `<prefix>_fitstatus.nii.gz`). 3D only.
/// @throws InputError as read_nifti_labels, and naming the file for a code outside 0–255.
PERFQ_IO_API Volume<std::uint8_t> read_status_map(const std::string& path);

/// @brief Writes one output to `path` (NIfTI or JSON text, atomically: a temporary file then
/// renamed).
PERFQ_IO_API void write_series_output(const SeriesOutput& output, const std::string& path);

/// @brief Writes perfq cbf's files for `maps` into `out_dir` (created when missing), all
/// together or not at all, as perfq cbf does (StagedOutputs, perfq/io/outputs.hpp).
/// @param maps the maps to write
/// @param out_dir the output folder
/// @param overwrite replace existing outputs; otherwise they are refused before any is
/// written
/// @return the final paths, in series_outputs' order
/// @throws Error naming the output (not the staging folder): one that exists without
/// `overwrite`, a folder in its place, a failed write (a full disk); nothing is left then.
PERFQ_IO_API std::vector<std::string> write_series_outputs(const SeriesMaps& maps,
                                                           const std::string& out_dir,
                                                           bool overwrite);

/// @brief The same, the images compressed or not as `options` says (series_outputs(maps,
/// options)): uncompressed `.nii` files skip deflating on writing and the inflating that
/// checks a written `.nii.gz` is whole.
/// @param maps the maps to write
/// @param out_dir the output folder
/// @param overwrite replace existing outputs; otherwise they are refused before any is
/// written
/// @param options the images' format
/// @return the final paths, in series_outputs' order
/// @throws Error as write_series_outputs(maps, out_dir, overwrite).
PERFQ_IO_API std::vector<std::string> write_series_outputs(const SeriesMaps& maps,
                                                           const std::string& out_dir,
                                                           bool overwrite,
                                                           const SeriesOutputOptions& options);

}  // namespace io
PERFQ_NAMESPACE_END
