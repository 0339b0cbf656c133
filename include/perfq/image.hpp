/// @file
/// @brief Image containers: grid geometry, non-owning views and owning 3D/4D images.
///
/// Voxels are stored x fastest, then y, then z, then volume (`[t][z][y][x]`), as in NIfTI.
/// Physical coordinates follow ITK's convention (LPS): a voxel index (i, j, k) maps to
/// `origin + direction * diag(spacing) * (i, j, k)`.
#pragma once

#include <perfq/version.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

PERFQ_NAMESPACE_BEGIN

/// @brief The sampling grid of a 3D image (also of each volume of a 4D series).
struct Geometry {
  std::array<std::size_t, 3> dims{1, 1, 1};       ///< voxels along x, y, z
  std::array<double, 3> spacing{1.0, 1.0, 1.0};   ///< voxel size in mm along x, y, z
  std::array<double, 3> origin{0.0, 0.0, 0.0};    ///< position of voxel (0,0,0) in mm (LPS)
  std::array<double, 9> direction{1, 0, 0, 0, 1, 0, 0, 0, 1};  ///< row-major cosines

  /// @brief Number of voxels in one volume.
  std::size_t voxel_count() const noexcept { return dims[0] * dims[1] * dims[2]; }
  /// @brief Linear index of voxel (x, y, z).
  std::size_t index(std::size_t x, std::size_t y, std::size_t z) const noexcept {
    return x + dims[0] * (y + dims[1] * z);
  }
  /// @brief Whether two grids are the same: equal dims, and spacing, origin and direction
  /// equal within `tolerance` (relative for spacing, mm for origin, absolute for cosines).
  PERFQ_API bool same_grid(const Geometry& other, double tolerance = 1e-4) const noexcept;
};

/// @brief A non-owning view of `volumes` volumes of voxel values on one grid.
///
/// Caller memory is not copied. `T` may be const. A 3D image is a view with one volume.
template <class T>
struct View {
  T* data = nullptr;      ///< first voxel of the first volume
  Geometry geometry{};    ///< grid of every volume
  std::size_t volumes = 1;  ///< number of volumes (4th dimension)

  /// @brief Voxels in one volume.
  std::size_t voxel_count() const noexcept { return geometry.voxel_count(); }
  /// @brief Values in all volumes.
  std::size_t size() const noexcept { return voxel_count() * volumes; }
  /// @brief Whether the view has no data.
  bool empty() const noexcept { return data == nullptr || size() == 0; }
  /// @brief Pointer to the first voxel of volume `t`.
  T* volume(std::size_t t) const noexcept { return data + t * voxel_count(); }
  /// @brief Voxel (x, y, z) of volume t.
  T& at(std::size_t x, std::size_t y, std::size_t z, std::size_t t = 0) const noexcept {
    return data[geometry.index(x, y, z) + t * voxel_count()];
  }
  /// @brief The same memory as a read-only view.
  operator View<const T>() const noexcept { return View<const T>{data, geometry, volumes}; }
};

/// @brief An owning image of `volumes` volumes on one grid: a 3D volume when `volumes` is 1,
/// a 4D series otherwise.
template <class T>
class Image {
 public:
  Image() = default;
  /// @brief Allocates `volumes` volumes on `geometry`, every voxel set to `fill`.
  explicit Image(const Geometry& geometry, std::size_t volumes = 1, T fill = T{})
      : geometry_(geometry), volumes_(volumes), data_(geometry.voxel_count() * volumes, fill) {}
  /// @brief Takes ownership of `data`, which must hold `geometry.voxel_count() * volumes` values.
  Image(const Geometry& geometry, std::size_t volumes, std::vector<T> data)
      : geometry_(geometry), volumes_(volumes), data_(std::move(data)) {}

  /// @brief The grid of every volume.
  const Geometry& geometry() const noexcept { return geometry_; }
  /// @brief Number of volumes (1 for a 3D image).
  std::size_t volumes() const noexcept { return volumes_; }
  /// @brief Voxels in one volume.
  std::size_t voxel_count() const noexcept { return geometry_.voxel_count(); }
  /// @brief Values in all volumes.
  std::size_t size() const noexcept { return data_.size(); }
  /// @brief First value (`[t][z][y][x]` order).
  T* data() noexcept { return data_.data(); }
  /// @brief First value (`[t][z][y][x]` order).
  const T* data() const noexcept { return data_.data(); }
  /// @brief The values, e.g. to move them out without copying.
  std::vector<T>& values() noexcept { return data_; }
  /// @brief The values.
  const std::vector<T>& values() const noexcept { return data_; }
  /// @brief Value `i` in memory order.
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  /// @brief Value `i` in memory order.
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  /// @brief Voxel (x, y, z) of volume t.
  T& at(std::size_t x, std::size_t y, std::size_t z, std::size_t t = 0) noexcept {
    return data_[geometry_.index(x, y, z) + t * voxel_count()];
  }
  /// @brief Voxel (x, y, z) of volume t.
  const T& at(std::size_t x, std::size_t y, std::size_t z, std::size_t t = 0) const noexcept {
    return data_[geometry_.index(x, y, z) + t * voxel_count()];
  }

  /// @brief A writable view of all volumes.
  View<T> view() noexcept { return View<T>{data_.data(), geometry_, volumes_}; }
  /// @brief A read-only view of all volumes.
  View<const T> view() const noexcept { return View<const T>{data_.data(), geometry_, volumes_}; }
  /// @brief A read-only view of all volumes.
  operator View<const T>() const noexcept { return view(); }
  /// @brief A view of volume `t` alone.
  View<const T> volume(std::size_t t) const noexcept {
    return View<const T>{data_.data() + t * voxel_count(), geometry_, 1};
  }

 private:
  Geometry geometry_{};
  std::size_t volumes_ = 0;
  std::vector<T> data_;
};

/// @brief A 3D image (one volume).
template <class T>
using Volume = Image<T>;
/// @brief A 4D series (several volumes on one grid).
template <class T>
using Series = Image<T>;
/// @brief A binary mask: nonzero voxels are inside.
using Mask = Image<std::uint8_t>;

PERFQ_NAMESPACE_END
