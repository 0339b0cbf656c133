// Private: SCORE and SCRUB (docs/outliers.md) on the CBF images of one delay's repeats, as
// prepare_asl hands them over: only the voxels examined, repeat by repeat.
#pragma once

#include <perfq/export.hpp>
#include <perfq/version.hpp>

#include <cstddef>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace outliers {

/// The median of `values` (the mean of the two middle values for an even count); `values`
/// must not be empty.
double median(std::vector<double> values);

/// A robust spread of a sample: its median, each value's distance from it, and the robust SD
/// 1.4826 × the median of those distances (the MAD scaled to a Gaussian's SD).
struct RobustSpread {
  double centre = 0;
  std::vector<double> deviation;  ///< |value − centre|, per value
  double sigma = 0;
};

/// The robust spread of `values` (not empty): the rule of both prepare_asl's `robust`
/// rejection and SCORE's first step.
RobustSpread robust_spread(const std::vector<double>& values);

/// The repeats' CBF over the examined voxels, with the tissue classes among them.
struct RepeatCbf {
  std::size_t repeats = 0;
  std::vector<std::size_t> voxels;  ///< the examined voxels (indices into the grid)
  std::vector<float> values;        ///< [repeat][examined voxel]
  std::vector<float> p_gm, p_wm;    ///< GM and WM probability per examined voxel
  /// Positions (into `voxels`) of the GM, WM and CSF classes (probability above the threshold).
  std::vector<std::size_t> gm, wm, csf;

  const float* of(std::size_t repeat) const { return values.data() + repeat * voxels.size(); }
};

/// What SCORE kept, and why it dropped the others.
struct ScoreResult {
  std::vector<std::size_t> kept;    ///< repeats kept, increasing
  std::vector<std::string> reason;  ///< per repeat: why it was dropped, empty when kept
  double pooled_variance = 0;       ///< of the final mean map, pooled within GM, WM and CSF
};

/// SCORE: drop repeats whose mean GM CBF is more than `threshold` robust SDs (1.4826 × MAD)
/// from the median, then, one at a time, the repeat whose removal lowers the pooled
/// within-tissue variance of the mean map most, while it lowers it (at least 2 repeats stay).
ScoreResult score(const RepeatCbf& cbf, double threshold);

/// SCRUB's outcome per examined voxel.
struct ScrubResult {
  std::vector<double> cbf;        ///< robust estimate (the kept repeats' mean where `prior` is 0)
  std::vector<double> prior;      ///< prior weight μ (0: ordinary variance, plain mean)
  double gm_coefficient = 0;      ///< the structural prior: gm_coefficient × P(GM) +
  double wm_coefficient = 0;      ///< wm_coefficient × P(WM)
  std::size_t robust_voxels = 0;  ///< voxels with μ > 0
  double variance_threshold = 0;  ///< t: the χ² quantile over its degrees of freedom
};

/// SCRUB over the repeats `kept` (at least 2).
ScrubResult scrub(const RepeatCbf& cbf, const std::vector<std::size_t>& kept);

/// The p-quantile of the χ² distribution with `dof` degrees of freedom (p in (0, 1)).
PERFQ_API double chi_square_quantile(double dof, double p);

}  // namespace outliers
PERFQ_NAMESPACE_END
