// Exact Euclidean distance transforms: the CPU executor of the line passes of
// detail/distance.hpp, the public entry points, and dilation.
#include <perfq/distance.hpp>
#include <perfq/errors.hpp>

#include <perfq/detail/distance.hpp>

#include "backend/masks.hpp"
#include "dispatch.hpp"
#include "parallel.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace perfq {
namespace masks {
namespace {

/// Lines processed together by the envelope passes: their values are gathered into an
/// L1-resident block laid out [k][line], so that each voxel row fetched from memory is used
/// whole (one cache line holds 8 doubles of neighbouring lines).
constexpr std::size_t kBlock = 8;

/// Per-thread scratch of the envelope passes, allocated before the parallel region so that
/// nothing inside it can throw.
struct LineScratch {
  explicit LineScratch(std::size_t n) : block(n * kBlock), site(n), value(n), boundary(n + 1) {}
  std::vector<double> block;
  std::vector<int> site;
  std::vector<double> value;
  std::vector<double> boundary;
  detail::EnvelopeScratch view() {
    return {{site.data(), 1}, {value.data(), 1}, {boundary.data(), 1}};
  }
};

/// The inverse gaps of one axis: 1 / (weight d), d = 0 … n − 1 (entry 0 unused).
std::vector<double> inverse_gaps(std::size_t n, double weight) {
  std::vector<double> inverse(n, 0.0);
  for (std::size_t d = 1; d < n; ++d) inverse[d] = 1.0 / (weight * static_cast<double>(d));
  return inverse;
}

/// Envelope pass over `width` ≤ kBlock neighbouring lines of `n` values, `stride` apart
/// along the line, starting at `first`: gathered into the block, transformed, scattered.
void envelope_block(double* first, std::size_t stride, std::size_t n, std::size_t width,
                    double weight, const double* inverse_gap, LineScratch& scratch) {
  double* block = scratch.block.data();
  for (std::size_t k = 0; k < n; ++k) {
    for (std::size_t l = 0; l < width; ++l) block[k * kBlock + l] = first[k * stride + l];
  }
  const detail::EnvelopeScratch s = scratch.view();
  for (std::size_t l = 0; l < width; ++l) {
    detail::edt_envelope_pass({block + l, static_cast<std::ptrdiff_t>(kBlock)},
                              static_cast<std::ptrdiff_t>(n), weight, inverse_gap, s);
  }
  for (std::size_t k = 0; k < n; ++k) {
    for (std::size_t l = 0; l < width; ++l) first[k * stride + l] = block[k * kBlock + l];
  }
}

/// Passes along x and y, one z slice per task: the slice (nx·ny values) stays in cache
/// between the two, so the image crosses the memory bus once for both.
template <class Sites>
void slice_passes(const Sites& sites, const EdtGrid& g, double* out, int team) {
  const std::size_t nx = g.dims[0], ny = g.dims[1];
  const auto slices = static_cast<std::ptrdiff_t>(g.dims[2]);
  const std::vector<double> inverse = inverse_gaps(ny, g.weight[1]);
  std::vector<LineScratch> scratch(static_cast<std::size_t>(team), LineScratch(ny));
#pragma omp parallel num_threads(team)
  {
    LineScratch& mine = scratch[static_cast<std::size_t>(omp_get_thread_num())];
#pragma omp for schedule(static)
    for (std::ptrdiff_t z = 0; z < slices; ++z) {
      const std::size_t slice = static_cast<std::size_t>(z) * nx * ny;
      for (std::size_t y = 0; y < ny; ++y) {
        const std::size_t first = slice + y * nx;
        detail::edt_first_pass(sites, first, 1, static_cast<std::ptrdiff_t>(nx), g.weight[0],
                               detail::Strided<double>{out + first, 1});
      }
      if (ny == 1) continue;
      for (std::size_t x0 = 0; x0 < nx; x0 += kBlock) {
        envelope_block(out + slice + x0, nx, ny, std::min(kBlock, nx - x0), g.weight[1],
                       inverse.data(), mine);
      }
    }
  }
}

/// Pass along z, in place, over blocks of kBlock lines neighbouring in x.
void z_pass(double* data, const EdtGrid& g, int team) {
  const std::size_t nx = g.dims[0], ny = g.dims[1], nz = g.dims[2];
  if (nz == 1) return;  // a single voxel is its own envelope
  const std::size_t blocks_per_row = (nx + kBlock - 1) / kBlock;
  const auto blocks = static_cast<std::ptrdiff_t>(ny * blocks_per_row);
  const std::vector<double> inverse = inverse_gaps(nz, g.weight[2]);
  std::vector<LineScratch> scratch(static_cast<std::size_t>(team), LineScratch(nz));
#pragma omp parallel num_threads(team)
  {
    LineScratch& mine = scratch[static_cast<std::size_t>(omp_get_thread_num())];
#pragma omp for schedule(static)
    for (std::ptrdiff_t b = 0; b < blocks; ++b) {
      const std::size_t y = static_cast<std::size_t>(b) / blocks_per_row;
      const std::size_t x0 = (static_cast<std::size_t>(b) % blocks_per_row) * kBlock;
      envelope_block(data + y * nx + x0, nx * ny, nz, std::min(kBlock, nx - x0), g.weight[2],
                     inverse.data(), mine);
    }
  }
}

template <class Sites>
void run_cpu(const Sites& sites, const EdtGrid& grid, double* out, int threads) {
  const int team = cpu::team_size(threads);
  slice_passes(sites, grid, out, team);
  z_pass(out, grid, team);
}

/// A transform over a box: its sites copied into a compact mask first.
template <class IsSite>
void box_edt(const IsSite& is_site, const EdtGrid& full, const Box& box, std::uint8_t* sites,
             double* out, int threads) {
  const std::size_t nx = box.size[0], ny = box.size[1];
  cpu::parallel_for(ny * box.size[2], threads, [&](std::size_t row) {
    const std::size_t first = box.full_index(full.dims, 0, row % ny, row / ny);
    std::uint8_t* line = sites + nx * row;
    for (std::size_t x = 0; x < nx; ++x) line[x] = is_site(first + x) ? 1 : 0;
  });
  EdtGrid grid = full;
  grid.dims = box.size;
  run_cpu(detail::MaskSites{sites, false}, grid, out, threads);
}

}  // namespace

void cpu_squared_edt(const detail::MaskSites& sites, const EdtGrid& grid, double* out,
                     int threads) {
  run_cpu(sites, grid, out, threads);
}

void cpu_box_edt(const detail::MaskSites& is_site, const EdtGrid& full, const Box& box,
                 std::uint8_t* sites, double* out, int threads) {
  box_edt(is_site, full, box, sites, out, threads);
}

void cpu_box_edt(const detail::LabelSites& is_site, const EdtGrid& full, const Box& box,
                 std::uint8_t* sites, double* out, int threads) {
  box_edt(is_site, full, box, sites, out, threads);
}

void cpu_squared_edt(const detail::LabelSites& sites, const EdtGrid& grid, double* out,
                     int threads) {
  run_cpu(sites, grid, out, threads);
}

}  // namespace masks
}  // namespace perfq

PERFQ_NAMESPACE_BEGIN

namespace {

masks::EdtGrid edt_grid(const Geometry& g, bool use_spacing) {
  masks::EdtGrid grid;
  grid.dims = g.dims;
  for (int a = 0; a < 3; ++a) grid.weight[a] = use_spacing ? g.spacing[a] * g.spacing[a] : 1.0;
  return grid;
}

void check_mask(View<const std::uint8_t> mask, const char* function) {
  if (mask.empty()) throw InvalidArgument(std::string(function) + ": the mask is empty");
  if (mask.volumes != 1) {
    throw InvalidArgument(std::string(function) + ": the mask must be one volume, got " +
                          std::to_string(mask.volumes));
  }
  for (double s : mask.geometry.spacing) {
    if (!(std::isfinite(s) && s > 0.0)) {
      throw InvalidArgument(std::string(function) + ": voxel spacing must be positive");
    }
  }
}

/// The bounding box of the mask's voxels (empty without any).
masks::Box bounding_box(View<const std::uint8_t> mask) {
  const auto& dims = mask.geometry.dims;
  std::array<std::size_t, 3> low = dims, high{0, 0, 0};
  std::size_t i = 0;
  for (std::size_t z = 0; z < dims[2]; ++z) {
    for (std::size_t y = 0; y < dims[1]; ++y) {
      for (std::size_t x = 0; x < dims[0]; ++x, ++i) {
        if (mask.data[i] == 0) continue;
        const std::size_t at[3] = {x, y, z};
        for (int a = 0; a < 3; ++a) {
          low[a] = std::min(low[a], at[a]);
          high[a] = std::max(high[a], at[a]);
        }
      }
    }
  }
  masks::Box box;
  if (low[0] == dims[0]) return box;
  for (int a = 0; a < 3; ++a) {
    box.begin[a] = low[a];
    box.size[a] = high[a] - low[a] + 1;
  }
  return box;
}

}  // namespace

Volume<double> squared_distance_map(View<const std::uint8_t> mask, bool use_spacing,
                                    const Execution& execution) {
  check_mask(mask, "squared_distance_map");
  const Backend backend = resolve_backend(execution);
  const masks::EdtGrid grid = edt_grid(mask.geometry, use_spacing);
  Volume<double> out(mask.geometry);
  dispatch::run(
      backend, execution,
      [&] { masks::cuda_squared_edt(mask.data, grid, out.data(), execution.device); },
      [&] {
        masks::cpu_squared_edt(detail::MaskSites{mask.data, false}, grid, out.data(),
                               execution.threads);
      });
  return out;
}

Volume<float> distance_map(View<const std::uint8_t> mask, const DistanceOptions& options,
                           const Execution& execution) {
  check_mask(mask, "distance_map");
  const Backend backend = resolve_backend(execution);
  const masks::EdtGrid grid = edt_grid(mask.geometry, options.use_spacing);
  Volume<float> out(mask.geometry);
  // The CPU path follows; it overwrites whatever a failed CUDA run left in `out`.
  const Backend ran = dispatch::run(
      backend, execution,
      [&] {
        masks::cuda_distance_map(mask.data, grid, options.signed_distance, out.data(),
                                 execution.device);
      },
      [] {});
  if (ran == Backend::Cuda) return out;
  // One buffer serves both halves of a signed map: off the mask from the first transform,
  // on it from the second.
  const std::size_t count = mask.voxel_count();
  const auto squared = masks::uninitialized<double>(count);
  masks::cpu_squared_edt(detail::MaskSites{mask.data, false}, grid, squared.get(),
                         execution.threads);
  cpu::parallel_for(count, execution.threads,
                    detail::UnsignedDistanceVoxel{squared.get(), out.data()});
  if (!options.signed_distance) return out;
  // Inside: the nearest voxel off the mask of a voxel on it lies within the mask's bounding
  // box grown by one voxel, so the second transform covers that box only.
  masks::Box box = bounding_box(mask);
  if (box.voxels() == 0) return out;  // no voxel on the mask: +inf everywhere already
  box = box.grown({1, 1, 1}, grid.dims);
  std::vector<std::uint8_t> sites(box.voxels());
  masks::cpu_box_edt(detail::MaskSites{mask.data, true}, grid, box, sites.data(), squared.get(),
                     execution.threads);
  const std::size_t nx = box.size[0], ny = box.size[1];
  const detail::InsideDistanceVoxel inside{mask.data, nullptr, out.data()};
  cpu::parallel_for(ny * box.size[2], execution.threads, [&](std::size_t row) {
    const std::size_t first = box.full_index(grid.dims, 0, row % ny, row / ny);
    for (std::size_t x = 0; x < nx; ++x) inside.set(first + x, squared[row * nx + x]);
  });
  return out;
}

Mask dilate(View<const std::uint8_t> mask, double radius_mm, const Execution& execution) {
  if (!(std::isfinite(radius_mm) && radius_mm >= 0.0)) {
    throw InvalidArgument("dilate: the radius must be finite and >= 0, got " +
                          std::to_string(radius_mm));
  }
  const Volume<double> squared = squared_distance_map(mask, true, execution);
  // Inclusive, allowing for the rounding of squared sums of non-integer spacings.
  const double limit = radius_mm * radius_mm * (1.0 + 1e-12);
  Mask out(mask.geometry);
  const double* d = squared.data();
  std::uint8_t* o = out.data();
  cpu::parallel_for(out.size(), execution.threads,
                    [d, o, limit](std::size_t i) { o[i] = d[i] <= limit ? 1 : 0; });
  return out;
}

PERFQ_NAMESPACE_END
