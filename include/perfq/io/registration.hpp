/// @file
/// @brief Rigid registration of one image to another (an ASL M0 or mean control image to the
/// subject's T1w) by Mattes mutual information, multi-resolution, with ITK's v4 registration
/// framework. Part of perfq::io; ITK is used inside and never appears here.
///
/// Direction (ITK's, as in transform.hpp): the result maps each point of the *fixed* image
/// (e.g. the T1w) to the point of the *moving* image (e.g. the ASL M0) that it takes its value
/// from, i.e. it resamples the moving image onto the fixed grid. Written to a file it is the
/// BIDS-derivative `…_from-asl_to-T1w_mode-image_xfm.txt` (from the moving space, to the fixed
/// one). Transform::inverse gives the other direction (T1w-space images into ASL space).
///
/// Boundary-based refinement (BBR, with a white-matter map) is not provided.
#pragma once

#include <perfq/export.hpp>
#include <perfq/image.hpp>
#include <perfq/io/transform.hpp>
#include <perfq/version.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {

/// @brief How the registration starts.
enum class RegistrationStart {
  /// The identity: both images in scanner coordinates of the same session (the usual case
  /// for an ASL series and the T1w of one visit: the head moves by millimetres, not more).
  Identity,
  /// The centres of intensity mass of both images (inside their masks) are made to coincide:
  /// images of different sessions or with arbitrary origins.
  Moments,
  /// The centres of both images' grids are made to coincide.
  Geometry,
};

/// @brief Options of register_rigid. The defaults suit an EPI M0 (2–4 mm, 5–6 mm slices)
/// against a 1 mm T1w.
struct RegistrationOptions {
  /// Restricts the metric to these voxels of the moving image (nonzero = inside); must lie on
  /// the moving image's grid. Null: the whole image.
  const Mask* moving_mask = nullptr;
  /// Restricts the metric to these voxels of the fixed image (e.g. a brain mask of the T1w);
  /// must lie on the fixed image's grid. Null: the whole image.
  const Mask* fixed_mask = nullptr;
  /// Where the search starts.
  RegistrationStart start = RegistrationStart::Identity;
  /// Resolution levels, coarse to fine: the sampled image's grid is shrunk by this factor
  /// (per axis, at most to 8 voxels along it) at each level.
  std::vector<unsigned> shrink_factors{2, 1};
  /// Gaussian smoothing σ (mm) of both images at each level (as many values as levels).
  std::vector<double> smoothing_sigmas_mm{4.0, 0.0};
  /// Bins of the joint histogram of Mattes mutual information.
  unsigned histogram_bins = 32;
  /// Fraction (0, 1] of the sampled image's voxels (inside its mask) where the metric is
  /// evaluated, on a regular grid, each point jittered within its voxel.
  double sampling_fraction = 1.0;
  /// Most iterations of the optimizer at each level.
  unsigned max_iterations = 200;
  /// First step of the optimizer at each level, mm of displacement (about; rotations are
  /// scaled by the sampled region's radius).
  double initial_step_mm = 2.0;
  /// The optimizer stops at a level when its step has been halved below this, mm.
  double min_step_mm = 0.005;
  /// Seed of the sample points' jitter: the result is deterministic for a given seed.
  std::uint64_t seed = 1;
  /// Work units (threads) of the metric; 0: ITK's default (the number of processors, or the
  /// environment's ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS). With one thread the same inputs and
  /// options give the same result bit for bit; with several, ITK's metric adds the threads'
  /// parts in the order they finish, and results agree to rounding (within 10⁻¹² mm in the
  /// tests, across runs and thread counts).
  int threads = 0;
};

/// @brief The result of register_rigid.
struct RegistrationResult {
  /// Rigid; maps points of the fixed image to points of the moving image (resamples the
  /// moving image onto the fixed grid: `from-<moving>_to-<fixed>` in BIDS naming).
  Transform transform;
  /// The transform's Euler3D parameters (Transform::rigid): rotation about x, y, z (radians).
  std::array<double, 3> angles{};
  /// The transform's translation, mm (LPS): the displacement of `center`.
  std::array<double, 3> translation{};
  /// The transform's centre of rotation, mm (LPS, a point of the fixed image's space near the
  /// middle of the sampled region).
  std::array<double, 3> center{};
  /// Mattes mutual information at the start (ITK's sign: more negative is better), evaluated
  /// on every voxel of the sampled image inside its mask, without jitter.
  double initial_metric = 0.0;
  /// The same at the end.
  double final_metric = 0.0;
  /// Optimizer iterations at each level, coarse to fine.
  std::vector<std::size_t> iterations;
  /// Why the optimizer stopped at the last level (ITK's words).
  std::string stop_condition;
  /// Which image's voxels were sampled: "moving" or "fixed" (the one with the larger voxels;
  /// the other is smoothed to its resolution first).
  std::string sampled_image;
  /// Number of sample points at the finest level.
  std::size_t samples = 0;
};

/// @brief Registers `moving` to `fixed` rigidly (6 parameters) by Mattes mutual information.
///
/// Method: the image with the larger voxels is sampled (cheap for a low-resolution EPI); the
/// other is smoothed by a Gaussian to that voxel size and resampled to half of it. Intensities
/// are clipped to their 0.5–99.5 percentiles (inside the masks) and NaNs set to 0. Each level
/// smooths both images (smoothing_sigmas_mm) and shrinks the sampled grid (shrink_factors);
/// a regular-step gradient descent over the Euler angles and translation, with parameter
/// scales that make a step of each parameter move the sampled region by about the same
/// distance, runs until its step falls below min_step_mm.
/// @param moving one volume (e.g. the ASL M0)
/// @param fixed one volume (e.g. the T1w)
/// @param options masks, levels, sampling, threads
/// @throws InvalidArgument naming the image or mask: an empty image, a 4D image (pass one
/// volume, e.g. the M0 or the mean control image), a mask off its image's grid or empty,
/// options that contradict each other (levels and sigmas of different lengths, a fraction
/// outside (0, 1], no bins), or too few sample points (fewer than 100) where the masks meet.
PERFQ_IO_API RegistrationResult register_rigid(View<const float> moving, View<const float> fixed,
                                               const RegistrationOptions& options = {});

}  // namespace io
PERFQ_NAMESPACE_END
