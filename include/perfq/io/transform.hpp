/// @file
/// @brief Spatial transforms between a subject's spaces (ASL, T1w, a template), read and written
/// as ITK writes them (`.txt`/`.tfm`, `.mat`, `.h5`, as ANTs and fMRIPrep write them).
/// Part of perfq::io; ITK is used inside and never appears here.
///
/// Convention (ITK's, and that of the BIDS-derivative names `from-A_to-B_mode-image_xfm`): a
/// transform that resamples an image of space A onto a grid of space B maps each *point of B*
/// (LPS, mm) to the point of A whose value it takes. Transform::map goes that way.
#pragma once

#include <perfq/export.hpp>
#include <perfq/version.hpp>

#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {

/// @brief One transform or a chain of them (an ITK composite): an immutable value, cheap to copy
/// (copies share the read-only data), safe to use from several threads at once.
///
/// A default-constructed Transform is the identity.
class PERFQ_IO_API Transform {
 public:
  /// @brief The identity.
  Transform();

  /// @brief A rigid transform in ITK's `Euler3DTransform` parametrisation:
  /// `map(p) = R (p − center) + center + translation`, R = Rz · Rx · Ry (angles in radians
  /// about the LPS axes).
  /// @param angles rotation about x, y and z (radians)
  /// @param translation mm (LPS)
  /// @param center the centre of rotation, mm (LPS)
  static Transform rigid(const std::array<double, 3>& angles,
                         const std::array<double, 3>& translation,
                         const std::array<double, 3>& center = {0.0, 0.0, 0.0});

  /// @brief An affine transform `map(p) = A p + b`.
  /// @param matrix A, row-major
  /// @param offset b, mm (LPS)
  static Transform affine(const std::array<double, 9>& matrix, const std::array<double, 3>& offset);

  /// @brief The point of the source space that `point` (of the target space) takes its value
  /// from (LPS, mm). Thread-safe.
  std::array<double, 3> map(const std::array<double, 3>& point) const;

  /// @brief Whether every part is linear (rigid or affine), so that the whole is one matrix.
  bool linear() const noexcept;

  /// @brief A linear transform as a 4 × 4 homogeneous matrix, row-major (last row 0 0 0 1).
  /// @throws InvalidArgument when the transform is not linear (a displacement field).
  std::array<double, 16> matrix() const;

  /// @brief The inverse of a linear transform: the transform of the opposite direction
  /// (`from-B_to-A` of a `from-A_to-B`).
  /// @throws InvalidArgument when the transform is not linear (a displacement field has no
  /// exact inverse here: use the file of the other direction, which fMRIPrep writes too), or
  /// its matrix is singular.
  Transform inverse() const;

  /// @brief The ITK class name of each part in the order map() applies them, e.g.
  /// `{"AffineTransform_double_3_3", "DisplacementFieldTransform_double_3_3"}`; empty for the
  /// identity.
  std::vector<std::string> parts() const;

  /// @brief The implementation (opaque).
  struct Impl;
  /// @brief Wraps an implementation (used inside perfq::io).
  explicit Transform(std::shared_ptr<const Impl> impl);
  /// @brief The implementation (used inside perfq::io).
  const std::shared_ptr<const Impl>& impl() const noexcept { return impl_; }

 private:
  std::shared_ptr<const Impl> impl_;
};

/// @brief Chains transforms given in the order in which one would resample an image through
/// them: `steps[0]` from space A to B, `steps[1]` from B to C, … The result resamples an image
/// of A onto a grid of the last space, in one interpolation: its map applies the last step
/// first (`map(p) = steps[0].map(steps[1].map(…(p)))`). An empty list gives the identity.
PERFQ_IO_API Transform compose(const std::vector<Transform>& steps);

/// @brief Reads a transform file as ITK writes it: text (`.txt`, `.tfm`), Matlab (`.mat`, as
/// ANTs writes its affine transforms) or HDF5 (`.h5`, as ANTs and fMRIPrep write composite
/// transforms: an affine and a displacement field). A file of several transforms (an ITK
/// composite) becomes one chain, in the order ITK applies them.
/// @throws InputError naming the file when it is missing, unreadable, not a transform file, or
/// holds a transform that is not 3D or not of double precision.
PERFQ_IO_API Transform read_transform(const std::string& path);

/// @brief Writes a transform as ITK does (the format from the extension: `.txt`/`.tfm`, `.mat`
/// or `.h5`), atomically (a temporary name in the same folder, then renamed): the file appears
/// complete or not at all. A chain is written as an ITK composite transform.
/// @throws Error naming the file when it cannot be written; InvalidArgument for another
/// extension.
PERFQ_IO_API void write_transform(const std::string& path, const Transform& transform);

}  // namespace io
PERFQ_NAMESPACE_END
