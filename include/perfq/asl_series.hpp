/// @file
/// @brief From an acquired ASL series to perfusion-weighted (ΔM) images: volume types
/// (BIDS `aslcontext`), control/label pairing, averaging of repeats and outlier rejection.
#pragma once

#include <perfq/image.hpp>
#include <perfq/protocol.hpp>
#include <perfq/quality.hpp>

#include <optional>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN

/// @brief What each volume of an ASL series holds (BIDS `aslcontext.tsv`).
enum class VolumeType { Control, Label, M0Scan, DeltaM, Cbf, NoRf };

/// @brief Parses a BIDS volume_type ("control", "label", "m0scan", "deltam", "cbf", "noRF").
/// @throws InvalidArgument for any other text.
PERFQ_API VolumeType parse_volume_type(const std::string& text);
/// @brief The BIDS name of a volume type.
PERFQ_API const char* to_string(VolumeType type) noexcept;

/// @brief How outlier repeats are handled before the repeats of a delay are combined (the
/// rules in docs/outliers.md).
enum class OutlierRejection {
  None,    ///< every repeat is averaged (unless AveragingOptions::robust is set)
  Robust,  ///< the rule of AveragingOptions::robust (the same as setting it)
  /// SCORE, structural correlation-based outlier rejection (Dolui et al. 2017, J Magn Reson
  /// Imaging 45:1786):
  /// repeats whose mean grey-matter CBF is more than `score_threshold` robust SDs from the
  /// median are dropped, then, one at a time, the repeat whose removal most lowers the
  /// variance of the mean CBF map pooled within GM, WM and CSF, while it lowers it. The kept
  /// repeats are averaged as usual. Single-delay series; needs `tissue` (GM, WM and CSF).
  Score,
  /// SCORE, then SCRUB, structural correlation with robust Bayesian estimation (Dolui et al., Proc.
  /// ISMRM 2016): each voxel's CBF is a Tukey-bisquare M-estimate over the repeats
  /// SCORE kept, pulled towards a structural prior (a·GM + b·WM, fitted to the mean map) in
  /// proportion to how far the voxel's variance across repeats exceeds grey matter's; voxels
  /// of ordinary variance keep the plain mean. The result, divided by `cbf_scale`, replaces
  /// the mean ΔM. Same conditions as Score.
  Scrub
};

/// @brief The name of an outlier method: "none", "robust", "score" or "scrub".
PERFQ_API const char* to_string(OutlierRejection method) noexcept;

/// @brief Parses "none", "robust", "score" or "scrub".
/// @throws InvalidArgument for any other text.
PERFQ_API OutlierRejection parse_outlier_rejection(const std::string& text);

/// @brief How repeats are combined.
struct AveragingOptions {
  /// Drop outlier repeats before averaging. Rule: within each delay, each repeat's ΔM image is
  /// summarised by its mean over the mask (over all finite voxels without a mask); a repeat
  /// whose mean lies more than `outlier_threshold` robust standard deviations
  /// (1.4826 × median absolute deviation) from the median of the repeats is dropped. Needs at
  /// least 3 repeats; at most half of them are ever dropped (the farthest first).
  bool robust = false;
  double outlier_threshold = 3.0;  ///< robust SDs from the median beyond which a repeat drops
  std::optional<View<const std::uint8_t>> mask;  ///< summary region for the rule above
  /// SCORE or SCRUB (OutlierRejection::Robust is the same as `robust`; None leaves `robust` to
  /// decide). Score and Scrub exclude `robust` and need a single delay. `mask`, when given,
  /// limits the voxels they examine.
  OutlierRejection outliers = OutlierRejection::None;
  /// Score and Scrub: GM, WM and CSF probability maps on the series' grid (all three; binary
  /// masks serve). A voxel belongs to a class when its probability is above
  /// `tissue_threshold`.
  TissueMaps tissue;
  double tissue_threshold = 0.7;  ///< Score and Scrub: tissue class threshold (ASLPrep's 0.7)
  /// Score and Scrub: robust SDs of the repeats' mean GM CBF from their median beyond which a
  /// repeat is dropped at once (2.5, as ASLPrep's SCORE).
  double score_threshold = 2.5;
  /// Score and Scrub: the factor turning one repeat's ΔM into CBF voxel by voxel (what
  /// quantify_cbf gives for ΔM = 1, i.e. single_delay_factor / M0); voxels where it is not
  /// finite and positive are not examined. Absent: ΔM is used as it is (a uniform scale
  /// changes nothing; a voxelwise M0 does).
  std::optional<View<const float>> cbf_scale;
};

/// @brief The volumes of one repeat of a series, as prepare_asl paired them.
struct RepeatVolumes {
  std::size_t control = 0;  ///< the control volume's index (a deltam volume's, for a deltam repeat)
  std::optional<std::size_t> label;  ///< the label volume's index; absent for a deltam volume
  /// Why the repeat was dropped (e.g. "mean GM CBF 3.1 robust SDs from the median"); empty for
  /// a kept repeat.
  std::string reason;
};

/// @brief ΔM images, one per distinct delay, with what went into them.
struct PreparedAsl {
  Series<float> delta_m;  ///< one volume per delay, mean of control − label (or deltam)
  std::vector<double> post_labeling_delay;  ///< s, per volume of delta_m (TI for PASL)
  std::vector<double> labeling_duration;    ///< s, per volume of delta_m (0 for PASL)
  std::vector<std::size_t> repeats;         ///< repeats averaged, per volume of delta_m
  std::vector<std::size_t> rejected;        ///< repeats dropped as outliers, per volume
  /// Per volume of delta_m: the repeats averaged, in the order they were paired.
  std::vector<std::vector<RepeatVolumes>> kept_volumes;
  /// Per volume of delta_m: the repeats dropped as outliers, with the reason of each.
  std::vector<std::vector<RepeatVolumes>> rejected_volumes;
  std::optional<Volume<float>> m0;           ///< mean of the series' m0scan volumes, if any
  std::optional<Volume<float>> scanner_cbf;  ///< mean of scanner-made cbf volumes, if any
  std::vector<std::string> notes;            ///< human-readable remarks (e.g. noRF ignored)
  /// The protocol of `delta_m`, ready for quantify_cbf and fit_kinetic: the series' protocol
  /// with one PLD (TI) and labeling duration per ΔM volume (none for PASL, whose bolus is
  /// TI1); a time-encoded series' sub-bolus timing. Everything else (readout, slice timing,
  /// efficiency, M0) as the series' protocol states it.
  AslProtocol protocol;
};

/// @brief Pairs and averages an ASL series.
///
/// Control and label volumes are paired in order of appearance (the k-th control with the
/// k-th label, either order in time); a series that ends in an incomplete pair (its last
/// control or label volume without a partner) has that volume left out, with a note; `deltam`
/// volumes are used as they are; `m0scan` volumes are averaged into `m0`; `noRF` volumes are
/// ignored; `cbf` volumes are averaged into `scanner_cbf` and passed through. Repeats with the same
/// (PLD, labeling duration) are averaged into one ΔM volume, in order of increasing delay.
/// @param series the 4D series; `context.size()` must equal its number of volumes
/// @param context the type of each volume (BIDS aslcontext)
/// @param protocol timing per volume (PLD/TI, labeling duration) used to group repeats
/// @param options averaging and outlier rejection
/// @param source file name used in error messages
/// @throws InputError when the context does not match the series (field "volume_type"), when
/// control and label counts differ or paired volumes have different delays, or when no
/// perfusion-weighted volume exists; with SCORE or SCRUB, when the series has several delays
/// (field "PostLabelingDelay") or fewer than 3 repeats (field "volume_type").
/// @throws InvalidArgument with SCORE or SCRUB: `robust` set too, a tissue map or the scale
/// missing from where it is needed or not one volume on the series' grid, a probability not
/// finite, no GM or no WM voxel above the threshold among the voxels examined, or a
/// threshold out of range.
PERFQ_API PreparedAsl prepare_asl(View<const float> series, const std::vector<VolumeType>& context,
                                  const AslProtocol& protocol, const AveragingOptions& options = {},
                                  const std::string& source = {});

/// @brief A rough brain region from an M0 image: the voxels whose M0 is finite and at least
/// half the 98th percentile of its positive values (grey and white matter and CSF in a
/// typical M0 scan; background noise left out). Every voxel is 0 when no M0 is positive.
PERFQ_API Mask m0_brain_region(View<const float> m0);

/// @brief The brain mask perfq computes when none is given, from an M0 image or, without one,
/// the mean control image: m0_brain_region(image) (finite and at least half the 98th
/// percentile of the positive values), then only its largest connected part (6-connected:
/// skull, eyes and ghosts that touch no brain voxel left out), then the holes of each slice
/// filled (background enclosed in the slice's plane, e.g. dark CSF or a lesion). Every voxel
/// is 0 when no value is positive.
/// @throws InvalidArgument when `image` is not one volume
PERFQ_API Mask brain_mask(View<const float> image);

/// @brief How many voxels of the brain have negative perfusion weighting: a check for
/// control and label swapped (an aslcontext in the wrong order, or deltam volumes stored as
/// label − control), which would otherwise give a CBF map of negative values.
struct DeltaMSign {
  std::size_t voxels = 0;        ///< voxels examined
  std::size_t negative = 0;      ///< of them, with a negative mean ΔM over the volumes
  double negative_fraction = 0;  ///< negative / voxels (0 when none was examined)
  bool inverted = false;         ///< ΔM looks sign-inverted (rule in check_delta_m_sign)
};

/// @brief Counts the voxels whose mean ΔM over the volumes is negative, in a region: `mask`
/// when given; else, with an M0 image, m0_brain_region(m0) (background, whose ΔM is noise
/// around 0, left out); else every voxel. Voxels with a non-finite mean ΔM, or a mean of
/// exactly 0, are skipped (and, without a mask, those whose M0 is not finite).
///
/// Perfusion makes control − label positive, and noise alone leaves half the voxels negative.
/// `inverted` is set when at least 100 voxels were examined, at least 60 % of them are
/// negative, and that excess over one half is beyond chance (more than 4 binomial standard
/// deviations). Swapped data with a per-voxel SNR of 0.25 have ~60 % negative voxels, of 1
/// ~84 %; data in the right order have fewer than half at any SNR.
/// @param delta_m ΔM images (one or more volumes, e.g. PreparedAsl::delta_m)
/// @param m0 voxelwise M0 on the same grid, if any
/// @param mask region, on the same grid, if any
/// @throws InvalidArgument when M0 or the mask is not one volume on the grid of `delta_m`
PERFQ_API DeltaMSign
check_delta_m_sign(View<const float> delta_m, std::optional<View<const float>> m0 = std::nullopt,
                   std::optional<View<const std::uint8_t>> mask = std::nullopt);

PERFQ_NAMESPACE_END
