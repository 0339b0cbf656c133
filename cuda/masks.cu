// The CUDA backend of the mask code: distance transforms with one thread per line per pass,
// and border zones folded on the device. Thin launchers of detail/distance.hpp and
// detail/watershed.hpp, the same code the CPU runs.
#include "backend/masks.hpp"
#include "cuda_util.cuh"

#include <perfq/detail/distance.hpp>
#include <perfq/detail/watershed.hpp>

#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

namespace perfq {
namespace masks {

using backend::cuda_util::blocks_for;
using backend::cuda_util::DeviceBuffer;

namespace kernels {

/// Sets every element to one value. (Kernel arguments stay out of anonymous namespaces: the
/// kernels have hidden visibility, which needs external linkage.)
template <class T>
struct Fill {
  T* data;
  T value;
  __device__ void operator()(std::size_t i) const { data[i] = value; }
};

/// One thread per voxel.
template <class Functor>
PERFQ_KERNEL void for_each_voxel(Functor functor, std::size_t count) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) functor(i);
}

/// One thread per x line: the first pass.
template <class Sites>
PERFQ_KERNEL void first_pass(Sites sites, std::size_t nx, std::size_t lines, double weight,
                             double* out) {
  const std::size_t line = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (line >= lines) return;
  const std::size_t first = line * nx;
  detail::edt_first_pass(sites, first, 1, static_cast<std::ptrdiff_t>(nx), weight,
                         detail::Strided<double>{out + first, 1});
}

/// One thread per y (axis 1) or z (axis 2) line, in place. Neighbouring threads take
/// neighbouring x, so reads and writes of the image coalesce; the scratch is laid out
/// `[k][line]` for the same reason.
PERFQ_KERNEL void envelope_pass(double* data, std::size_t nx, std::size_t ny, std::size_t n,
                                int axis, std::size_t lines, double weight,
                                const double* inverse_gap, int* site, double* value,
                                double* boundary) {
  const std::size_t line = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (line >= lines) return;
  const std::size_t first = axis == 1 ? line % nx + nx * ny * (line / nx) : line;
  const auto stride = static_cast<std::ptrdiff_t>(axis == 1 ? nx : nx * ny);
  const auto step = static_cast<std::ptrdiff_t>(lines);
  const detail::EnvelopeScratch s{
      {site + line, step}, {value + line, step}, {boundary + line, step}};
  detail::edt_envelope_pass({data + first, stride}, static_cast<std::ptrdiff_t>(n), weight,
                            inverse_gap, s);
}

}  // namespace kernels

namespace {

constexpr unsigned kThreads = 128;
using kernels::Fill;

template <class Functor>
void launch_per_voxel(const Functor& functor, std::size_t count) {
  if (count == 0) return;
  kernels::for_each_voxel<<<blocks_for(count, kThreads), kThreads>>>(functor, count);
  PERFQ_CUDA_TRY(cudaGetLastError());
}

/// Squared distance transforms on the device, with scratch for the longest set of lines.
class DeviceEdt {
 public:
  explicit DeviceEdt(const EdtGrid& grid)
      : grid_(grid),
        site_(grid.voxels()),
        value_(grid.voxels()),
        boundary_(grid.voxels() + max_lines(grid)),
        inverse_gap_(grid.dims[1] + grid.dims[2]) {
    // 1 / (weight d) per axis, as the CPU computes it: the same cuts on both backends.
    std::vector<double> inverse(grid.dims[1] + grid.dims[2], 0.0);
    for (std::size_t d = 1; d < grid.dims[1]; ++d) inverse[d] = 1.0 / (grid.weight[1] * double(d));
    for (std::size_t d = 1; d < grid.dims[2]; ++d) {
      inverse[grid.dims[1] + d] = 1.0 / (grid.weight[2] * double(d));
    }
    inverse_gap_.upload(inverse.data());
  }

  /// Squared distances to the sites into `out` (device memory, voxels() values).
  template <class Sites>
  void run(const Sites& sites, double* out) {
    const std::size_t nx = grid_.dims[0], ny = grid_.dims[1];
    const std::size_t x_lines = grid_.voxels() / nx;
    kernels::first_pass<<<blocks_for(x_lines, kThreads), kThreads>>>(sites, nx, x_lines,
                                                                     grid_.weight[0], out);
    PERFQ_CUDA_TRY(cudaGetLastError());
    for (int axis = 1; axis <= 2; ++axis) {
      const std::size_t n = grid_.dims[axis];
      if (n == 1) continue;
      const std::size_t lines = grid_.voxels() / n;
      kernels::envelope_pass<<<blocks_for(lines, kThreads), kThreads>>>(
          out, nx, ny, n, axis, lines, grid_.weight[axis],
          inverse_gap_.get() + (axis == 1 ? 0 : grid_.dims[1]), site_.get(), value_.get(),
          boundary_.get());
      PERFQ_CUDA_TRY(cudaGetLastError());
    }
  }

 private:
  static std::size_t max_lines(const EdtGrid& g) {
    std::size_t lines = 0;
    for (int axis = 1; axis <= 2; ++axis) lines = std::max(lines, g.voxels() / g.dims[axis]);
    return lines;
  }
  EdtGrid grid_;
  DeviceBuffer<int> site_;
  DeviceBuffer<double> value_;
  DeviceBuffer<double> boundary_;
  DeviceBuffer<double> inverse_gap_;
};

}  // namespace

void cuda_squared_edt(const std::uint8_t* mask, const EdtGrid& grid, double* out, int device) {
  PERFQ_CUDA_TRY(cudaSetDevice(device));
  const std::size_t count = grid.voxels();
  DeviceBuffer<std::uint8_t> d_mask(count);
  DeviceBuffer<double> d_out(count);
  d_mask.upload(mask);
  DeviceEdt edt(grid);
  edt.run(detail::MaskSites{d_mask.get(), false}, d_out.get());
  PERFQ_CUDA_TRY(cudaDeviceSynchronize());
  d_out.download(out);
}

void cuda_distance_map(const std::uint8_t* mask, const EdtGrid& grid, bool is_signed, float* out,
                       int device) {
  PERFQ_CUDA_TRY(cudaSetDevice(device));
  const std::size_t count = grid.voxels();
  DeviceBuffer<std::uint8_t> d_mask(count);
  DeviceBuffer<double> squared(count);
  DeviceBuffer<float> d_out(count);
  d_mask.upload(mask);
  DeviceEdt edt(grid);
  // As on the CPU: off the mask from the transform to the mask, on it from the transform to
  // its complement (here over the whole grid).
  edt.run(detail::MaskSites{d_mask.get(), false}, squared.get());
  launch_per_voxel(detail::UnsignedDistanceVoxel{squared.get(), d_out.get()}, count);
  if (is_signed) {
    edt.run(detail::MaskSites{d_mask.get(), true}, squared.get());
    launch_per_voxel(detail::InsideDistanceVoxel{d_mask.get(), squared.get(), d_out.get()}, count);
  }
  PERFQ_CUDA_TRY(cudaDeviceSynchronize());
  d_out.download(out);
}

void cuda_border_zones(const std::int32_t* labels, const std::uint8_t* brain, const EdtGrid& grid,
                       const std::vector<std::int32_t>& territories, double radius_squared,
                       std::uint8_t* mask, std::int32_t* pairs, int device) {
  PERFQ_CUDA_TRY(cudaSetDevice(device));
  const std::size_t count = grid.voxels();
  DeviceBuffer<std::int32_t> d_labels(count), first_label(count), second_label(count),
      d_pairs(count);
  DeviceBuffer<std::uint8_t> d_brain(brain != nullptr ? count : 0), d_mask(count);
  DeviceBuffer<double> squared(count), first(count), second(count);
  d_labels.upload(labels);
  if (brain != nullptr) d_brain.upload(brain);
  const double inf = detail::edt_infinity();
  launch_per_voxel(Fill<double>{first.get(), inf}, count);
  launch_per_voxel(Fill<double>{second.get(), inf}, count);
  launch_per_voxel(Fill<std::int32_t>{first_label.get(), 0}, count);
  launch_per_voxel(Fill<std::int32_t>{second_label.get(), 0}, count);
  DeviceEdt edt(grid);
  for (std::int32_t t : territories) {
    edt.run(detail::LabelSites{d_labels.get(), t}, squared.get());
    launch_per_voxel(detail::NearestTwoVoxel{squared.get(), t, first.get(), first_label.get(),
                                             second.get(), second_label.get()},
                     count);
  }
  launch_per_voxel(detail::BorderZoneVoxel{brain != nullptr ? d_brain.get() : nullptr, second.get(),
                                           first_label.get(), second_label.get(), radius_squared,
                                           d_mask.get(), d_pairs.get()},
                   count);
  PERFQ_CUDA_TRY(cudaDeviceSynchronize());
  d_mask.download(mask);
  d_pairs.download(pairs);
}

}  // namespace masks
}  // namespace perfq
