/// @file
/// @brief Resampling images through transforms (perfq::io::Transform) onto another grid: maps
/// (linear interpolation, partial-volume averaged over each target voxel), label atlases
/// (majority vote or nearest neighbour) and masks (fraction inside). Part of perfq::io; ITK is
/// not used for the interpolation, only inside Transform::map.
///
/// The rules, shared by every function here:
/// - **Direction.** Each target voxel's points are taken through `transform.map` (a point of
///   the target grid's space to the point of the source image's space whose value it takes, as
///   ITK and fMRIPrep's `from-A_to-B_mode-image_xfm` files do: A = source, B = target).
/// - **Footprint.** A target voxel is sampled at n_x × n_y × n_z sub-points spread evenly over
///   its footprint (the box of its spacing around its centre): along axis a at index
///   `i + (s + 0.5) / n_a − 0.5`, s = 0 … n_a − 1. One sub-point per axis is the voxel centre
///   alone. resample_footprint() chooses n when asked for 0.
/// - **Edges.** A source image covers the boxes of its voxels: continuous indices from −0.5 to
///   n − 0.5 along each axis (as ITK's interpolators). Points inside take a value (linear
///   interpolation uses the edge voxel's value for its missing neighbours there); points
///   outside take the `outside` value (label 0 for labels; outside for masks).
/// - **Rounding.** A continuous index within 1e-6 of a whole or half voxel is taken as on it,
///   so that grids that match up to rounding resample exactly; a point exactly halfway between
///   two voxels takes the upper one in nearest-neighbour lookups.
/// - **Threads.** Results do not depend on the number of threads.
#pragma once

#include <perfq/export.hpp>
#include <perfq/image.hpp>
#include <perfq/io/transform.hpp>

#include <array>
#include <cstddef>
#include <cstdint>

PERFQ_NAMESPACE_BEGIN
namespace io {

/// @brief How a map's value is read between source voxels.
enum class Interpolation {
  Linear,   ///< trilinear between the 8 nearest voxel centres
  Nearest,  ///< the value of the voxel whose box holds the point
};

/// @brief How a label image's value is chosen for a target voxel.
enum class LabelRule {
  /// The label found most often among the footprint's sub-points (each a nearest-neighbour
  /// lookup; points outside the source count as label 0). Ties: the label at the voxel's
  /// centre when it is among the tied labels, else the smallest tied label.
  Majority,
  /// The label at the voxel's centre (nearest neighbour; the footprint is not used).
  Nearest,
};

/// @brief Options shared by resample(), resample_labels() and resample_mask().
struct ResampleOptions {
  /// Interpolation of each sub-point (resample() only; labels use nearest-neighbour lookups,
  /// masks linear interpolation of 0/1).
  Interpolation interpolation = Interpolation::Linear;
  /// Sub-points per axis over each target voxel's footprint (partial-volume averaging): 0 =
  /// chosen per axis by resample_footprint() (about one per source voxel the target voxel
  /// spans), 1 = the voxel centre only, N = N per axis (at most kMaxFootprint).
  std::size_t footprint = 0;
  /// Value of sub-points outside the source image (resample() only). A voxel partly outside
  /// averages it in; NaN marks every voxel not wholly inside.
  float outside = 0.0f;
  /// CPU threads; 0 = all (OpenMP's default), never more than the processors available.
  int threads = 0;
};

/// @brief The most sub-points per axis of a footprint (8 × 8 × 8 = 512 per voxel).
inline constexpr std::size_t kMaxFootprint = 8;

/// @brief The sub-points per axis that resample() uses for `footprint` (ResampleOptions).
///
/// For 0: along each target axis, the number of source voxels the target voxel's edge spans
/// (the largest of its extents along the source axes, in source voxels, through the linear
/// part of the transform; for a displacement field, the linear part of the transform is taken
/// as the identity), rounded up, at least 1 and at most kMaxFootprint. A 3 mm grid over a 1 mm
/// image gets 3 × 3 × 3; a grid finer than the source gets 1 × 1 × 1.
/// @param source the grid of the image resampled
/// @param target the grid resampled onto
/// @param transform maps target points to source points
/// @param footprint 0 (choose) or the sub-points per axis wanted
/// @throws InvalidArgument when footprint exceeds kMaxFootprint or a grid is invalid.
PERFQ_IO_API std::array<std::size_t, 3> resample_footprint(const Geometry& source,
                                                           const Geometry& target,
                                                           const Transform& transform,
                                                           std::size_t footprint = 0);

/// @brief Resamples an image of values (a map, a probability map, a 4D series: each volume)
/// onto `target`: each target voxel is the mean of its footprint's sub-points, each
/// interpolated in the source (linear: the partial-volume average of a probability map).
/// @param image the source image (3D, or 4D: every volume on the same points)
/// @param target the grid resampled onto (its spacing defines each voxel's footprint)
/// @param transform maps target points to source points (Transform::map; e.g. compose())
/// @param options interpolation, footprint, outside value, threads
/// @return an image on `target` with as many volumes as `image`
/// @throws InvalidArgument for an empty image, an invalid grid (a zero or non-finite size or
/// spacing, a singular or non-finite direction) or a footprint above kMaxFootprint.
PERFQ_IO_API Image<float> resample(View<const float> image, const Geometry& target,
                                   const Transform& transform, const ResampleOptions& options = {});

/// @brief Resamples a label image (an atlas, a segmentation) onto `target` by `rule`
/// (majority vote over the footprint by default; see LabelRule).
/// @param labels the source labels (3D)
/// @param target the grid resampled onto
/// @param transform maps target points to source points
/// @param rule majority vote over the footprint or nearest neighbour at the centre
/// @param options footprint and threads (interpolation and outside are not used: points
/// outside the source are label 0)
/// @return labels on `target`
/// @throws InvalidArgument as resample(), and for a 4D label image.
PERFQ_IO_API Image<std::int32_t> resample_labels(View<const std::int32_t> labels,
                                                 const Geometry& target, const Transform& transform,
                                                 LabelRule rule = LabelRule::Majority,
                                                 const ResampleOptions& options = {});

/// @brief Resamples a mask onto `target`: a target voxel is inside when the fraction of it
/// inside the mask — the mean over its footprint's sub-points of the mask's 0/1 values
/// linearly interpolated — is at least `min_fraction` (points outside the source are
/// outside).
/// @param mask the source mask (3D; nonzero = inside)
/// @param target the grid resampled onto
/// @param transform maps target points to source points
/// @param min_fraction the fraction of a voxel that must be inside, in (0, 1]
/// @param options footprint and threads (interpolation and outside are not used)
/// @return a mask on `target` (1 inside, 0 outside)
/// @throws InvalidArgument as resample(), for a 4D mask, and for min_fraction outside (0, 1].
PERFQ_IO_API Mask resample_mask(View<const std::uint8_t> mask, const Geometry& target,
                                const Transform& transform, double min_fraction = 0.5,
                                const ResampleOptions& options = {});

}  // namespace io
PERFQ_NAMESPACE_END
