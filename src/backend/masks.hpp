// Private interface of the mask code (distance transforms, border zones): the CPU executors
// (src/distance.cpp) and the CUDA launchers (cuda/masks.cu, or their stand-ins in
// src/backend/no_cuda.cpp in builds without CUDA).
#pragma once

#include <perfq/detail/distance.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace perfq {
namespace masks {

/// A grid for the transform: voxels per axis and the weight of each axis (squared spacing in
/// mm², or 1 for voxel units).
struct EdtGrid {
  std::array<std::size_t, 3> dims{1, 1, 1};
  std::array<double, 3> weight{1.0, 1.0, 1.0};
  std::size_t voxels() const { return dims[0] * dims[1] * dims[2]; }
};

// ---- CPU (OpenMP over the lines of each pass) ---------------------------------------------

/// An uninitialised buffer: its pages are first touched by the parallel passes that fill it,
/// not zeroed by one thread beforehand.
template <class T>
std::unique_ptr<T[]> uninitialized(std::size_t count) {
  return std::unique_ptr<T[]>(new T[count]);
}

/// A box of voxels inside a grid of `full` dims: what a transform must cover when only the
/// distances near some sites matter (see cpu_box_edt).
struct Box {
  std::array<std::size_t, 3> begin{0, 0, 0};
  std::array<std::size_t, 3> size{0, 0, 0};
  std::size_t voxels() const { return size[0] * size[1] * size[2]; }
  /// The full-grid index of box voxel (x, y, z).
  std::size_t full_index(const std::array<std::size_t, 3>& full, std::size_t x, std::size_t y,
                         std::size_t z) const {
    return begin[0] + x + full[0] * (begin[1] + y + full[1] * (begin[2] + z));
  }
  /// This box grown by `margin` voxels per axis, clipped to the grid.
  Box grown(const std::array<std::size_t, 3>& margin,
            const std::array<std::size_t, 3>& full) const {
    Box b;
    for (int a = 0; a < 3; ++a) {
      b.begin[a] = begin[a] > margin[a] ? begin[a] - margin[a] : 0;
      const std::size_t end = std::min(full[a], begin[a] + size[a] + margin[a]);
      b.size[a] = end - b.begin[a];
    }
    return b;
  }
};

/// Squared distances (weighted) to the sites of `sites` into `out` (voxels() values).
void cpu_squared_edt(const detail::MaskSites& sites, const EdtGrid& grid, double* out, int threads);
void cpu_squared_edt(const detail::LabelSites& sites, const EdtGrid& grid, double* out,
                     int threads);

/// Squared distances within `box` of grid `full` to the voxels of the box that are sites
/// (sites tested by full-grid index); `sites` (box.voxels() bytes, scratch) and `out`
/// (box.voxels() values, x fastest in the box) are the caller's buffers. Exact for every box
/// voxel whose nearest site lies in the box, e.g. when the box holds every site.
void cpu_box_edt(const detail::MaskSites& is_site, const EdtGrid& full, const Box& box,
                 std::uint8_t* sites, double* out, int threads);
void cpu_box_edt(const detail::LabelSites& is_site, const EdtGrid& full, const Box& box,
                 std::uint8_t* sites, double* out, int threads);

// ---- CUDA (one thread per line per pass) ------------------------------------------------

/// Squared distances to the nonzero voxels of `mask` (host pointers), computed on `device`.
/// Throws BackendError on any CUDA error.
void cuda_squared_edt(const std::uint8_t* mask, const EdtGrid& grid, double* out, int device);

/// Signed (`is_signed`) or unsigned distance map of `mask` as float, computed on `device`.
void cuda_distance_map(const std::uint8_t* mask, const EdtGrid& grid, bool is_signed, float* out,
                       int device);

/// Border zones of `territories` (ascending, each ≥ 1) in the label image `labels`: one
/// transform per territory on `device`, folded into the two nearest; writes `mask` and `pairs`.
void cuda_border_zones(const std::int32_t* labels, const std::uint8_t* brain, const EdtGrid& grid,
                       const std::vector<std::int32_t>& territories, double radius_squared,
                       std::uint8_t* mask, std::int32_t* pairs, int device);

}  // namespace masks
}  // namespace perfq
