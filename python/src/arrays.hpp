// Private to the Python extension: NumPy arrays to and from perfq's images.
//
// perfq stores a voxel (x, y, z) of volume t at x + nx (y + ny (z + nz t)): x varies fastest.
// The Python package indexes arrays [x, y, z(, t)], as nibabel's get_fdata() does, so an image
// is a Fortran-ordered (column-major) array of shape (nx, ny, nz[, volumes]). Such an array of
// the right dtype is passed to perfq without a copy; the Python layer converts anything else
// once (numpy.asfortranarray) before it gets here.
#pragma once

#include <perfq/errors.hpp>
#include <perfq/execution.hpp>
#include <perfq/image.hpp>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace perfq_python {

namespace nb = nanobind;

/// The execution settings of a call ("auto", "cpu" or "cuda").
inline perfq::Execution execution(const std::string& backend, int device, int threads) {
  perfq::Execution e;
  e.backend = perfq::parse_backend(backend);
  e.device = device;
  e.threads = threads;
  return e;
}

/// A read-only Fortran-ordered array from Python, 3D or 4D.
template <class T>
using InArray = nb::ndarray<const T, nb::numpy, nb::f_contig, nb::device::cpu>;

/// A grid of `dims` voxels from an affine's parts as the Python layer passes them (perfq's LPS
/// origin, spacing and direction, see perfq/_geometry.py).
inline perfq::Geometry make_geometry(const std::array<std::size_t, 3>& dims,
                                     const std::array<double, 3>& spacing,
                                     const std::array<double, 3>& origin,
                                     const std::array<double, 9>& direction) {
  perfq::Geometry g;
  g.dims = dims;
  g.spacing = spacing;
  g.origin = origin;
  g.direction = direction;
  return g;
}

/// A view of `array` on `grid` (its first three dimensions must be the grid's; a fourth, if
/// any, counts volumes). `what` names the argument in errors.
template <class T>
perfq::View<const T> view_of(const InArray<T>& array, const perfq::Geometry& grid,
                             const char* what) {
  const std::size_t nd = array.ndim();
  if (nd != 3 && nd != 4) {
    throw perfq::InvalidArgument(std::string(what) + ": expected a 3D or 4D array, got " +
                                 std::to_string(nd) + " dimensions");
  }
  for (std::size_t a = 0; a < 3; ++a) {
    if (array.shape(a) != grid.dims[a]) {
      throw perfq::InvalidArgument(
          std::string(what) + ": shape (" + std::to_string(array.shape(0)) + ", " +
          std::to_string(array.shape(1)) + ", " + std::to_string(array.shape(2)) +
          ") is not the grid's (" + std::to_string(grid.dims[0]) + ", " +
          std::to_string(grid.dims[1]) + ", " + std::to_string(grid.dims[2]) + ")");
    }
  }
  perfq::View<const T> v;
  v.data = array.data();
  v.geometry = grid;
  v.volumes = nd == 4 ? array.shape(3) : 1;
  return v;
}

/// An optional view (None: nothing).
template <class T>
std::optional<perfq::View<const T>> optional_view(const std::optional<InArray<T>>& array,
                                                  const perfq::Geometry& grid, const char* what) {
  if (!array) return std::nullopt;
  return view_of(*array, grid, what);
}

/// A Fortran-ordered NumPy array of shape (nx, ny, nz[, volumes]) over `image`'s voxels, kept
/// alive by `owner` (the Python object holding the image): no copy.
template <class T>
nb::object array_of(const perfq::Image<T>& image, nb::handle owner) {
  const perfq::Geometry& g = image.geometry();
  const std::size_t shape4[4] = {g.dims[0], g.dims[1], g.dims[2], image.volumes()};
  const std::int64_t strides4[4] = {1, static_cast<std::int64_t>(g.dims[0]),
                                    static_cast<std::int64_t>(g.dims[0] * g.dims[1]),
                                    static_cast<std::int64_t>(g.voxel_count())};
  const std::size_t nd = image.volumes() > 1 ? 4 : 3;
  nb::ndarray<nb::numpy, const T> array(image.data(), nd, shape4, owner, strides4);
  return nb::cast(array, nb::rv_policy::reference);
}

/// The same for an image that Python owns from now on (moved into a capsule).
template <class T>
nb::object array_owning(perfq::Image<T>&& image) {
  auto* held = new perfq::Image<T>(std::move(image));
  nb::capsule owner(held, [](void* p) noexcept { delete static_cast<perfq::Image<T>*>(p); });
  return array_of(*held, owner);
}

}  // namespace perfq_python
