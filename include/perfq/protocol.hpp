/// @file
/// @brief What was acquired (AslProtocol) and the physiological constants used to quantify
/// it (Physiology), with the defaults of the ASL white paper (Alsop et al. 2015, MRM 73:102).
#pragma once

#include <perfq/version.hpp>

#include <optional>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN

/// @brief Labeling scheme (BIDS `ArterialSpinLabelingType`).
enum class LabelingType { Pcasl, Pasl, Casl };
/// @brief Readout: one 3D volume at once, or 2D slices acquired one after another.
enum class Readout { ThreeD, TwoD };
/// @brief Where the equilibrium magnetisation M0 comes from (BIDS `M0Type`).
enum class M0Type {
  Separate,  ///< a separate `*_m0scan` image
  Included,  ///< `m0scan` volumes inside the ASL series
  Estimate,  ///< a single value (BIDS `M0Estimate`)
  Absent     ///< none: quantification needs an M0 from elsewhere
};

/// @brief Background suppression as acquired.
struct BackgroundSuppression {
  bool enabled = false;  ///< BIDS `BackgroundSuppression`
  int pulses = 0;        ///< BIDS `BackgroundSuppressionNumberPulses`
  /// `enabled` but the number of pulses not stated (BIDS recommends it, does not require it):
  /// resolve_constants refuses such a protocol unless `efficiency` is given, since each pulse
  /// lowers the labeling efficiency by an amount it cannot know. Set `pulses` and clear this.
  bool pulses_unknown = false;
  /// Total efficiency factor applied to the labeling efficiency, when known. When absent and
  /// `enabled`, perfq uses Physiology::background_suppression_pulse_efficiency ^ pulses.
  std::optional<double> efficiency;
};

/// @brief The acquisition of one ASL series. Timing lists follow BIDS: either a single value
/// for every volume, or one value per volume of the series (seconds).
struct AslProtocol {
  LabelingType labeling_type = LabelingType::Pcasl;  ///< BIDS `ArterialSpinLabelingType`
  /// PCASL/CASL: post-labeling delay; PASL: inversion time TI. One value, or one per volume.
  std::vector<double> post_labeling_delay;
  /// PCASL/CASL labeling duration τ. One value, or one per volume. Unused for PASL.
  std::vector<double> labeling_duration;
  /// PASL with QUIPSS II / Q2TIPS: bolus cut-off delay TI1 (s, the first value for Q2TIPS).
  std::optional<double> bolus_cutoff_delay;
  Readout readout = Readout::ThreeD;  ///< BIDS `MRAcquisitionType`
  /// 2D readouts: acquisition time of each slice (z) after the first, seconds. Empty for 3D.
  std::vector<double> slice_timing;
  /// Labeling efficiency measured or stated by the sequence (BIDS `LabelingEfficiency`).
  std::optional<double> labeling_efficiency;
  BackgroundSuppression background_suppression;  ///< pulses and their efficiency
  M0Type m0_type = M0Type::Separate;  ///< BIDS `M0Type`
  std::optional<double> m0_estimate;  ///< BIDS `M0Estimate`, for M0Type::Estimate
  /// Repetition time of the M0 acquisition (s). When shorter than 5 s, M0 is divided by
  /// `1 - exp(-TR / T1 tissue)`. Absent: M0 taken as fully relaxed.
  std::optional<double> m0_repetition_time;
  double magnetic_field_strength = 3.0;  ///< tesla

  /// @brief PLD (or TI) of volume `v`, whichever form the list has.
  PERFQ_API double pld_of(std::size_t v) const;
  /// @brief Labeling duration of volume `v` (0 when none is given).
  PERFQ_API double duration_of(std::size_t v) const;
};

/// @brief Physiological constants and modelling choices. Every value can be overridden.
struct Physiology {
  double blood_brain_partition = 0.9;  ///< λ, ml/g
  double t1_blood = 1.65;              ///< s, arterial blood T1 (3 T)
  double t1_tissue = 1.3;              ///< s, grey-matter T1 (3 T); used for short-TR M0
  double labeling_efficiency_pcasl = 0.85;  ///< α, PCASL
  double labeling_efficiency_pasl = 0.98;   ///< α, PASL
  double labeling_efficiency_casl = 0.68;   ///< α, CASL
  /// Overrides both the defaults above and the sidecar's LabelingEfficiency.
  std::optional<double> labeling_efficiency;
  /// Efficiency of each background-suppression pulse (as in ASLPrep).
  double background_suppression_pulse_efficiency = 0.95;

  /// @brief White-paper defaults for a field strength: blood T1 1.35 s below 2.25 T
  /// (i.e. 1.5 T), 1.65 s otherwise (3 T). The white paper gives no other field's values: at
  /// e.g. 7 T (blood T1 near 2.1 s) set `t1_blood` yourself (perfq cbf refuses fields outside
  /// 1–3.5 T without --t1b).
  PERFQ_API static Physiology at_field(double tesla);
};

/// @brief The plausible range of a haematocrit (a fraction of 1) for blood_t1_from_hematocrit:
/// 0.1 (severe anaemia) to 0.7 (severe polycythaemia).
inline constexpr double kMinHematocrit = 0.1;
/// @brief The upper end of that range.
inline constexpr double kMaxHematocrit = 0.7;

/// @brief Arterial blood T1 (s) at 3 T from the haematocrit, by Lu et al. 2004 (MRM 52:679,
/// bovine blood in a circulation system at 37 °C, oxygenation 92 %, Hct 0.38–0.46):
/// `1/T1 = 0.52 Hct + 0.38` (s⁻¹), e.g. 1.671 s at Hct 0.42 (the paper quotes 1664 ± 14 ms
/// from its unrounded fit). Valid at 3 T only.
/// @param hematocrit a fraction of 1, in [kMinHematocrit, kMaxHematocrit]
/// @throws InvalidArgument outside that range; a value above 1 (and at most 100) is taken for
/// a percentage and the message asks for the fraction (e.g. 0.42, not 42).
PERFQ_API double blood_t1_from_hematocrit(double hematocrit);

/// @brief The constants actually used for one quantification, after combining the protocol,
/// the physiology and any overrides. Recorded in output sidecars.
struct ResolvedConstants {
  double blood_brain_partition = 0;  ///< λ
  double t1_blood = 0;               ///< s
  double t1_tissue = 0;              ///< s
  double labeling_efficiency = 0;    ///< α before background suppression
  std::string labeling_efficiency_source;  ///< "override", "sidecar" or "default"
  double background_suppression_factor = 1;  ///< multiplies α
  std::string background_suppression_source;  ///< "none", "sidecar", "pulses"
  double effective_labeling_efficiency = 0;  ///< α × background-suppression factor
  double m0_scale = 1;  ///< M0 is divided by this (short-TR correction; 1 when none)
};

/// @brief Combines protocol and physiology into the constants used.
/// @throws InvalidArgument when a constant is out of its physical range (λ, T1 ≤ 0,
/// efficiencies outside (0, 1]), or background suppression is on with its number of pulses
/// unknown (BackgroundSuppression::pulses_unknown) and no total efficiency.
PERFQ_API ResolvedConstants resolve_constants(const AslProtocol& protocol,
                                              const Physiology& physiology);

/// @brief The longest time (s) taken for seconds: a delay, labeling duration, bolus cut-off,
/// slice time or M0 repetition time beyond it is refused as a likely value in milliseconds
/// (BIDS gives times in seconds) by validate_protocol, resolve_constants and the
/// quantifications.
constexpr double kMaxTimingSeconds = 30.0;

/// @brief The shortest labeling duration or PASL bolus cut-off time TI1 (s) perfq accepts
/// (validate_protocol): a labeling of under a millisecond labels no blood, and the
/// quantification, which divides by it, would leave single precision.
constexpr double kMinLabelingSeconds = 1e-3;

/// @brief Checks that a protocol is complete and consistent for a series of `volumes`
/// volumes with `slices` slices. `source` names the file reported in errors. Every time is in
/// seconds, as BIDS gives it: a delay, labeling duration, bolus cut-off, slice time or M0
/// repetition time above 30 s is refused as a likely value in milliseconds. A 2D readout needs
/// one slice time per slice; PASL's TI1 must come before the longest TI.
/// @throws InputError naming the BIDS field at fault.
PERFQ_API void validate_protocol(const AslProtocol& protocol, std::size_t volumes,
                                 std::size_t slices, const std::string& source = {});

/// @brief The BIDS name of a labeling type ("PCASL", "CASL", "PASL").
PERFQ_API const char* to_string(LabelingType type) noexcept;
/// @brief The BIDS name of an M0 type ("Separate", "Included", "Estimate", "Absent").
PERFQ_API const char* to_string(M0Type type) noexcept;

PERFQ_NAMESPACE_END
