/// @file
/// @brief Multi-delay quantification: voxelwise CBF and arterial transit time (ATT) with
/// standard errors, from ΔM at several post-labeling delays (PCASL/CASL) or inversion times
/// (PASL), on CPU or CUDA.
///
/// Model: the Buxton general kinetic model (docs/physics.md). For each voxel the fit
/// (1) searches the ATT over [att_min, att_max] on a grid, refined by a parabola through the
/// best grid point and its neighbours, with the flow solved exactly by linear least squares at
/// each ATT (the model is linear in flow);
/// (2) polishes flow and ATT together with Levenberg–Marquardt using exact derivatives, again
/// from beyond a kink of the model when it stops next to one or on a plateau (docs/physics.md),
/// and again from other local minima of the search (KineticOptions::max_starts), keeping the
/// lowest cost;
/// (3) reports standard errors from `σ² (JᵀWJ)⁻¹`, σ² the weighted residual variance
/// RSS / (n − P) with P the parameters fitted (2, or 3 with the arterial component), or the
/// pooled noise variance with the ATT prior. Where JᵀWJ is singular (VoxelStatus::Singular:
/// e.g. an ATT the delays cannot tell, every delay after the whole bolus has arrived with
/// T1app = T1b) CBF's standard error is the one conditional on the other parameters held at
/// their values, from the one-parameter Fisher information `σ² / Σ w (∂S/∂f)²` (same σ²), and
/// the others are 0. It does not depend on a starting point.
#pragma once

#include <perfq/cbf.hpp>
#include <perfq/execution.hpp>
#include <perfq/image.hpp>
#include <perfq/protocol.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN

/// @brief Which apparent tissue T1 (T1app) the model uses after the label arrives.
enum class KineticVariant {
  /// `1/T1app = 1/T1 tissue + f/λ` with f the voxel's own flow (fabber's form).
  Buxton,
  /// As Buxton with a fixed f of `KineticOptions::fixed_flow` (BASIL's compatible choice).
  BuxtonFixedFlow,
  /// `T1app = T1 blood` (the white-paper / 2024 multi-delay consensus form).
  WhitePaper
};
/// @brief "buxton", "buxton-fixed-flow" or "whitepaper".
PERFQ_API const char* to_string(KineticVariant variant) noexcept;
/// @throws InvalidArgument for names other than "buxton", "buxton-fixed-flow", "whitepaper"
PERFQ_API KineticVariant parse_kinetic_variant(const std::string& text);

/// @brief Bolus dispersion: how the labelled bolus spreads in time on its way to the voxel.
enum class Dispersion {
  /// The undispersed (boxcar) arterial input of the Buxton model.
  None,
  /// The boxcar convolved with a gamma kernel of the extra arrival delay τd ≥ 0
  /// (Chappell et al. 2010, MRM 63:1357; BASIL/fabber's "gamma" dispersion):
  /// `k(τd) = s^(1+sp) τd^(sp) e^(−s τd) / Γ(1+sp)`, sharpness s (1/s), time to peak p (s).
  Gamma
};
/// @brief "none" or "gamma".
PERFQ_API const char* to_string(Dispersion dispersion) noexcept;
/// @throws InvalidArgument for names other than "none" and "gamma"
PERFQ_API Dispersion parse_dispersion(const std::string& text);

/// @brief How the noise variance that weighs the ATT prior varies between voxels.
enum class PriorNoise {
  /// Homogeneous in ΔM (the images' thermal noise), so in the fitted ΔM/M0 a voxel's
  /// variance is σ²_ref (M0_ref / M0)²: pooled over the image in those units and converted
  /// per voxel with its own M0. M0_ref is the median M0 of the fitted voxels.
  M0Scaled,
  /// The same variance in ΔM/M0 in every voxel (perfq's behaviour before PriorNoise).
  Uniform
};
/// @brief "m0" or "uniform".
PERFQ_API const char* to_string(PriorNoise noise) noexcept;
/// @throws InvalidArgument for names other than "m0" and "uniform"
PERFQ_API PriorNoise parse_prior_noise(const std::string& text);

/// @brief Median of the χ² distribution with `dof` degrees of freedom (e.g. 3.3567 for 4):
/// the pooled noise variance divides the median of RSS/(n − p) by median(χ²_ν)/ν.
/// @throws InvalidArgument for dof < 1
PERFQ_API double chi_square_median(int dof);

/// @brief Options of the multi-delay fit.
struct KineticOptions {
  KineticVariant variant = KineticVariant::Buxton;  ///< apparent tissue T1 model
  double fixed_flow = 0.01;  ///< ml/g/s, for BuxtonFixedFlow (BASIL uses 0.01)
  double att_min = 0.0;      ///< s, lower bound of the ATT search
  double att_max = 3.0;      ///< s, upper bound of the ATT search
  int grid_points = 24;      ///< ATT values tried before refinement
  int max_iterations = 20;   ///< Levenberg–Marquardt iteration limit
  double tolerance = 1e-6;   ///< relative cost decrease that ends the polishing
  /// Polishing runs per voxel at most, 1 to 8. The cost has several local minima in ATT (the
  /// model's kinks, where a delay's bolus begins or ends arriving, split it into smooth
  /// pieces); after the run from the search's best grid point, the polishing runs again from
  /// the lowest grid point of up to `max_starts − 1` other regions of the grid (split at the
  /// kinks and at local maxima of the grid cost) whose grid cost is at most 1.1 × the cost
  /// found so far, and the lowest cost wins (docs/physics.md). 1: a single start, as before
  /// this option. With the arterial component, at the arterial arrival the search found.
  int max_starts = 3;
  /// Gaussian prior on the ATT (maximum a posteriori). The data term is weighted by a noise
  /// variance pooled over the image from a first fit without the prior: the median of the
  /// voxels' residual variances RSS/(n − p) (with `prior_noise` M0Scaled each first
  /// multiplied by (M0/M0_ref)², i.e. expressed at the reference M0), divided by
  /// median(χ²_ν)/ν, ν = n − p, which makes the median an unbiased estimate of the variance
  /// for Gaussian noise (0.84 for 6 delays and 2 parameters). Assumes Gaussian noise of one
  /// level over the image (in ΔM with M0Scaled), and that most voxels fit the model; the
  /// median keeps the misfitting ones from inflating it. Voxels with little signal then stay
  /// near the prior mean instead of running to a bound.
  bool att_prior = false;
  /// How the prior's noise variance varies between voxels (see PriorNoise). Default M0Scaled:
  /// where M0 is lower, ΔM/M0 is noisier and the prior weighs more.
  PriorNoise prior_noise = PriorNoise::M0Scaled;
  /// Prior mean (s); when absent, 1.3 s for PCASL/CASL and 0.7 s for PASL (BASIL's defaults).
  std::optional<double> att_prior_mean;
  double att_prior_sd = 1.0;  ///< prior standard deviation (s)
  /// With `att_prior` and `arterial`: the mean (s) of a Gaussian prior on the arterial
  /// arrival Δt_a, weighted like the ATT prior. When absent, the ATT prior mean − 0.3 s
  /// (BASIL's default: the arteries fill before the tissue). The data fix Δt_a only to an
  /// interval between sample times (see `arterial`); the prior picks the grid arrival within
  /// it nearest its mean, and pulls weakly supported arrivals towards it.
  std::optional<double> arterial_att_prior_mean;
  /// Its standard deviation (s); when absent, `att_prior_sd` (BASIL's default).
  std::optional<double> arterial_att_prior_sd;
  /// Add the macrovascular (arterial) component: labelled blood still in arteries, no
  /// exchange, `2 α M0b aBV e^(−Δt_a/T1b)` (PCASL; PASL `e^(−t/T1b)`) while the bolus passes
  /// (Δt_a ≤ t < Δt_a + τ). Its arrival Δt_a is searched on the ATT grid with Δt_a ≤ ATT
  /// (the signal is a box in time, so the fit cannot resolve Δt_a finer than the grid or the
  /// spacing of the delays); aBV enters linearly and is polished with flow and ATT. Each
  /// voxel is also fitted without it, and the arterial fit is kept only when the Bayesian
  /// information criterion favours it (n·ln(RSS_tissue/RSS_both) > 2 ln n, for its two extra
  /// parameters); otherwise aBV and its arrival are 0.
  bool arterial = false;
  /// Bolus dispersion of the tissue signal (off by default). With Dispersion::Gamma the
  /// tissue ΔM is `∫ k(τd) ΔM_Buxton(t; ATT + τd) dτd`, evaluated in closed form (incomplete
  /// gamma functions) with exact derivatives; the extra delay also decays with blood T1
  /// (PCASL). ATT is then the arrival of the leading edge of the bolus. The kernel is fixed,
  /// not fitted. The arterial component, when on, stays undispersed (a box).
  Dispersion dispersion = Dispersion::None;
  /// Sharpness s of the gamma kernel, 1/s: (0, 100]. Default 7.4, BASIL's prior mean
  /// (fabber aslrest: ln s = 2).
  double dispersion_sharpness = 7.4;
  /// Time to peak p of the gamma kernel, s: [0, 5] with s·p ≤ 10 (fabber's cap). Default
  /// 0.1, BASIL's prior mean (fabber aslrest: ln(s·p) = −0.3). The mean extra delay is
  /// (1 + s p)/s: 0.24 s with the defaults.
  double dispersion_time_to_peak = 0.1;
  /// Weight of each ΔM volume (inverse relative variance); empty = 1 each. Give the number of
  /// repeats averaged per delay to make the fit of averages equal to a joint fit of repeats.
  std::vector<double> weights;
  /// Tissue T1 per voxel (s), on the ΔM grid, in the kinetic model instead of the
  /// physiology's one value (which the short-TR M0 correction keeps using): e.g.
  /// a measured T1 map, or one weighted by grey- and white-matter fractions (white matter's
  /// T1 is about two thirds of grey matter's at 3 T, and fitting it with grey matter's biases
  /// CBF). Each voxel is fitted with its own value rounded to 1 ms (voxels sharing a value
  /// share the ATT search's precomputed tables); a value outside (0, 10] s in a voxel that is
  /// fitted is refused. Only the Buxton variants use tissue T1 (KineticVariant::WhitePaper
  /// does not).
  std::optional<View<const float>> t1_tissue_map;
  /// Spatially regularised fit (off by default; docs/physics.md, "Spatial prior"): after the
  /// voxelwise fit (with the ATT prior when on), every voxel is fitted again, maximum a
  /// posteriori, with a Gaussian prior on its CBF centred on the mean of its in-mask
  /// 6-neighbours' with precision φ × their count (the conditional of a Laplacian Markov
  /// random field, as fabber's "M" prior), the data weighted by the pooled noise variance (as
  /// for the ATT prior, which keeps its own role). The voxels are updated in red–black order
  /// (x + y + z even, then odd: each half from the other's latest values, so that results do
  /// not depend on the thread count), then φ is re-estimated from the data (variational
  /// Bayes: E[Σ over neighbour pairs (f_i − f_j)²] with the posterior variances, vague Gamma
  /// hyperprior); until `spatial_tolerance` or `spatial_max_iterations`. The maps are the
  /// posterior means, cbf_se/att_se the posterior standard deviations (local curvature of
  /// data and priors). Runs on the CPU whatever the backend (the voxelwise fit before it on
  /// the backend chosen). Voxels whose voxelwise fit is not finite take no part.
  bool spatial = false;
  /// With `spatial`: the same prior on the ATT too (its own precision, estimated alike),
  /// combined with the ATT prior when that is on. Off by default (BASIL's choice: CBF only).
  bool spatial_att = false;
  /// With `spatial`: most update sweeps (each: every voxel once, then the precisions), 1–1000.
  int spatial_max_iterations = 100;
  /// With `spatial`: the sweeps stop once, in one sweep, every precision changed by less
  /// than this (relative) and the voxels' CBF by less than this × the median |CBF| of the
  /// voxels taking part (root mean square of the changes). In (0, 1).
  double spatial_tolerance = 1e-3;
};

/// @brief Result of a multi-delay fit. Maps hold 0 where status is 1–4 (perfq::io's
/// pipeline also sets 8, M0 too low, with maps 0).
struct KineticFit {
  Volume<float> cbf;                ///< ml/100 g/min
  Volume<float> att;                ///< s
  Volume<float> cbf_se;             ///< standard error of CBF, ml/100 g/min
  Volume<float> att_se;             ///< standard error of ATT, s
  Volume<float> residual_rms;       ///< weighted RMS of the residuals, scanner units (ΔM)
  Volume<std::uint8_t> iterations;  ///< Levenberg–Marquardt iterations used
  Volume<float> abv;                ///< with `arterial`: arterial blood volume, % (ml/100 ml)
  Volume<float> abv_se;             ///< with `arterial`: its standard error, %
  Volume<float> arterial_att;       ///< with `arterial`: arterial arrival time, s (grid resolution)
  Volume<std::uint8_t> status;      ///< VoxelStatus per voxel
  ResolvedConstants constants;      ///< constants used
  /// Pooled (ΔM/M0)² variance of one unit-weight observation used by the prior (0 if none),
  /// at M0 = noise_reference_m0; a voxel's is noise_variance × (noise_reference_m0 / M0)²
  /// with PriorNoise::M0Scaled, noise_variance everywhere with Uniform.
  double noise_variance = 0;
  /// M0 (input units) at which noise_variance holds, with the prior and PriorNoise::M0Scaled:
  /// the median M0 of the fitted voxels; 0 otherwise.
  double noise_reference_m0 = 0;
  double att_prior_mean = 0;  ///< prior mean used (s), when att_prior
  /// Arterial arrival prior used (s), when att_prior and arterial; 0 otherwise.
  double arterial_att_prior_mean = 0;
  double arterial_att_prior_sd = 0;  ///< its standard deviation (s), likewise
  Backend backend = Backend::Cpu;    ///< backend that ran
  /// With `spatial`: the estimated spatial precision φ of CBF, (ml/100 g/min)⁻² (the
  /// prior's conditional SD of a voxel given n neighbours is 1/√(φ n)); 0 otherwise.
  double spatial_precision_cbf = 0;
  /// With `spatial` and `spatial_att`: the estimated spatial precision of ATT, s⁻²; else 0.
  double spatial_precision_att = 0;
  /// With `spatial`: the update sweeps made (0 without).
  int spatial_iterations = 0;
  /// With `spatial`: whether the stopping rule was met before `spatial_max_iterations`.
  bool spatial_converged = false;
};

/// @brief Fits CBF and ATT voxel by voxel.
/// @param delta_m one ΔM volume per delay (mean over repeats), at least 2 volumes
/// @param m0 voxelwise image on the same grid, or one value
/// @param protocol labeling type; post_labeling_delay (TI for PASL) and labeling_duration
///        with one value per volume of `delta_m` (or one for all); bolus_cutoff_delay for PASL;
///        slice timing for 2D readouts; efficiencies; M0 repetition time
/// @param physiology constants
/// @param options model variant, ATT range and prior, arterial component, weights
/// @param mask optional; voxels outside get status OutsideMask
/// @param execution backend and threads
/// @throws InvalidArgument for grid mismatches, fewer than 2 or more than 64 delays, timing
///         lists of the wrong length, non-positive durations, PASL without TI1, a time above
///         30 s (delays, durations, TI1 and slice times are in seconds), bad options
/// @throws BackendError when the requested backend cannot run
PERFQ_API KineticFit fit_kinetic(View<const float> delta_m, const M0Source& m0,
                                 const AslProtocol& protocol, const Physiology& physiology,
                                 const KineticOptions& options = {},
                                 std::optional<View<const std::uint8_t>> mask = std::nullopt,
                                 const Execution& execution = {});

PERFQ_NAMESPACE_END
