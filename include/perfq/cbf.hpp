/// @file
/// @brief Single-delay CBF quantification (ASL white paper), on CPU or CUDA.
///
/// PCASL/CASL: `CBF = 6000 λ ΔM e^(PLD/T1b) / (2 α T1b M0 (1 − e^(−τ/T1b)))`
/// PASL (QUIPSS II / Q2TIPS): `CBF = 6000 λ ΔM e^(TI/T1b) / (2 α TI1 M0)`
/// with CBF in ml/100 g/min, α including background suppression, M0 divided by the
/// short-TR factor, and for 2D readouts PLD (TI) + the slice's acquisition time.
#pragma once

#include <perfq/detail/status.hpp>
#include <perfq/execution.hpp>
#include <perfq/image.hpp>
#include <perfq/protocol.hpp>

#include <cstdint>
#include <optional>

PERFQ_NAMESPACE_BEGIN

/// @brief Per-voxel outcome of a quantification. Output values are 0 for codes 1–4 and 8;
/// codes 5–7 flag multi-delay fits whose values are kept.
enum class VoxelStatus : std::uint8_t {
  Ok = detail::kStatusOk,                            ///< 0: computed normally
  OutsideMask = detail::kStatusOutsideMask,          ///< 1: not computed: outside the mask
  M0NotPositive = detail::kStatusM0NotPositive,      ///< 2: M0 is zero or negative
  NonFiniteInput = detail::kStatusNonFiniteInput,    ///< 3: ΔM or M0 is NaN or infinite
  NonFiniteResult = detail::kStatusNonFiniteResult,  ///< 4: the arithmetic overflowed
  /// 5: multi-delay fit: stopped at the iteration limit (values kept)
  MaxIterations = detail::kStatusMaxIterations,
  /// 6: multi-delay fit: parameters not identifiable (e.g. no signal, or an ATT the delays
  /// cannot tell); values kept; the standard error of CBF is the one with the other
  /// parameters held at their values (0 without signal), the others 0
  Singular = detail::kStatusSingular,
  /// 7: multi-delay fit: arrival time at a bound of its range (values kept)
  AttAtBound = detail::kStatusAtBound,
  /// 8: M0 far below the brain's (below a fraction, 1 % by default, of its median M0): the
  /// background of a resampled or spiral acquisition, where ΔM/M0 explodes; values 0. Set by
  /// perfq::io::quantify_series (SeriesRequest::min_m0_fraction), not by quantify_cbf or
  /// fit_kinetic, which take M0 as given.
  M0TooLow = detail::kStatusM0TooLow
};
/// @brief A short name of a status code (e.g. "ok", "outside mask").
PERFQ_API const char* to_string(VoxelStatus status) noexcept;

/// @brief The M0 used for calibration: an image on the ΔM grid, or one value for all voxels.
struct M0Source {
  std::optional<View<const float>> image;  ///< voxelwise M0 (one volume)
  double value = 0;                        ///< used when `image` is empty
  /// The M0 is already corrected to full relaxation (reference-region calibration's
  /// λ·M0 of arterial blood): the short-TR correction for the protocol's M0 repetition time
  /// is not applied again (the constants' m0_scale is 1).
  bool fully_relaxed = false;
  /// @brief Voxelwise M0.
  static M0Source from_image(View<const float> m0) { return M0Source{m0, 0.0, false}; }
  /// @brief One M0 value for all voxels.
  static M0Source from_value(double m0) { return M0Source{std::nullopt, m0, false}; }
  /// @brief One M0 value for all voxels, already corrected to full relaxation.
  static M0Source relaxed_value(double m0) { return M0Source{std::nullopt, m0, true}; }
};

/// @brief Result of a single-delay quantification.
struct CbfMaps {
  Volume<float> cbf;               ///< ml/100 g/min; 0 where status is not Ok
  Volume<std::uint8_t> status;     ///< VoxelStatus per voxel
  ResolvedConstants constants;     ///< constants used
  Backend backend = Backend::Cpu;  ///< backend that ran
};

/// @brief Quantifies CBF from one mean ΔM image.
/// @param delta_m mean control − label, one volume
/// @param m0 voxelwise image on the same grid, or one value
/// @param protocol labeling type, PLD/TI (one distinct value), τ (PCASL/CASL) or TI1 (PASL),
///        slice timing for 2D readouts, efficiencies, M0 repetition time
/// @param physiology constants (λ, T1 of blood, labeling efficiency defaults)
/// @param mask optional; voxels outside get status OutsideMask
/// @param execution backend and threads
/// @throws InvalidArgument for grid mismatches, several distinct delays, missing τ or TI1,
///         a non-positive single M0 value, out-of-range constants, or a delay, τ or TI1
///         above 30 s (times are in seconds; such a value is taken for milliseconds)
/// @throws BackendError when the requested backend cannot run
PERFQ_API CbfMaps quantify_cbf(View<const float> delta_m, const M0Source& m0,
                               const AslProtocol& protocol, const Physiology& physiology,
                               std::optional<View<const std::uint8_t>> mask = std::nullopt,
                               const Execution& execution = {});

/// @brief The factor that turns ΔM/M0 into CBF for one delay (double precision), i.e.
/// `CBF = factor × ΔM / M0`. Exposed for tools that quantify elsewhere and for tests.
/// @param type labeling type
/// @param delay PLD (PCASL/CASL) or TI (PASL), already including any slice offset
/// @param labeling_duration τ (s, PCASL/CASL)
/// @param bolus_cutoff TI1 (s, PASL)
/// @param constants the resolved constants (resolve_constants())
/// @throws InvalidArgument when τ (PCASL/CASL) or TI1 (PASL) is not positive, or when the
/// factor is not finite or beyond single precision (e.g. a delay given in milliseconds)
PERFQ_API double single_delay_factor(LabelingType type, double delay, double labeling_duration,
                                     double bolus_cutoff, const ResolvedConstants& constants);

PERFQ_NAMESPACE_END
