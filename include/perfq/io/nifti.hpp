/// @file
/// @brief NIfTI-1/2 reading and writing (`.nii`, `.nii.gz`) with exact geometry.
/// Part of perfq::io (link `perfq::io`); ITK is used inside and never appears here.
#pragma once

#include <perfq/image.hpp>

#include <cstdint>
#include <string>

PERFQ_NAMESPACE_BEGIN
namespace io {

/// @brief Header facts of a NIfTI file.
struct NiftiInfo {
  Geometry geometry;        ///< grid of one volume (LPS, as ITK uses; millimetres)
  std::size_t volumes = 1;  ///< size of the 4th dimension (1 for 3D)
  std::string stored_type;  ///< e.g. "int16", "float32", "float64", "uint8"
};

/// @brief Reads the header only (NIfTI-1 or NIfTI-2, single file).
///
/// The geometry follows one rule for both versions, the NIfTI standard's as nibabel applies
/// it: the sform when `sform_code > 0` (whatever the qform says); else the qform (quaternion,
/// qfac from the sign of `pixdim[0]`, voxel sizes `|pixdim[1..3]|`, 1 where 0) when
/// `qform_code > 0`; else those voxel sizes alone, axes along x, y, z, origin 0. Metres or
/// micrometres (`xyzt_units`) are converted to millimetres, then RAS (as stored) to LPS (x and
/// y negated). Spacing is the length of each column of the chosen matrix, direction the
/// column divided by it, origin its translation. An sform whose axes are not perpendicular
/// (a sheared grid) is refused, not orthogonalised.
/// @throws InputError naming the file, and the header field where there is one (e.g.
/// `dim[2]: is 0; expected ≥ 1`), when it is missing, unreadable or not NIfTI, has an invalid
/// dimension, voxel type or vox_offset, a non-finite or implausible (beyond 1e6) geometry
/// field, a sheared sform, or more than 4 dimensions. Nothing is printed.
PERFQ_IO_API NiftiInfo read_nifti_info(const std::string& path);

/// @brief Reads a 3D or 4D NIfTI-1 or NIfTI-2 image of any real stored type as float, with
/// `scl_slope`/`scl_inter` applied; geometry as read_nifti_info. NaN and Inf are kept.
///
/// Before any voxel is read, the image's size in memory (voxels × 4 bytes) is compared with
/// the memory the process can still take (the smaller of `MemAvailable` and what its cgroup's
/// limit leaves; not checked where neither can be read).
/// @throws InputError naming the file: as read_nifti_info; an image larger than the memory
/// available (`holds N voxels (X GiB as 32-bit floats), more than the Y GiB of memory
/// available`); truncated or corrupt data; an unsupported type.
PERFQ_IO_API Image<float> read_nifti(const std::string& path);

/// @brief Reads a mask: voxels that are nonzero (and finite) become 1, others 0. 3D only.
/// @throws InputError as read_nifti, and for a 4D image.
PERFQ_IO_API Mask read_nifti_mask(const std::string& path);

/// @brief Reads one 3D image; a 4D one is refused from its header, before its voxels are
/// read. With `grid`, the image must also lie on it (require_same_grid, naming `grid_name`,
/// the file the grid came from).
/// @throws InputError as read_nifti, for a 4D image, and for an image off `grid`.
PERFQ_IO_API Image<float> read_nifti_3d(const std::string& path, const Geometry* grid = nullptr,
                                        const std::string& grid_name = {});

/// @brief Throws InputError naming `path` unless `geometry` (of the image read from `path`)
/// is on `grid`, saying what differs: "not on the grid of <grid_name> (dimensions 4 x 4 x 4,
/// not 5 x 5 x 5)", likewise for the spacing, the origin, or "another orientation".
PERFQ_IO_API void require_same_grid(const std::string& path, const Geometry& geometry,
                                    const Geometry& grid, const std::string& grid_name);

/// @brief Reads a label image stored as integers or floats. 3D only.
/// @throws InputError as read_nifti (memory counted at 8 bytes a voxel: values are read as
/// doubles), when a value is not an integer (or NaN), or the image is 4D.
PERFQ_IO_API Image<std::int32_t> read_nifti_labels(const std::string& path);

/// @brief Writes float32 (3D, or 4D when `image.volumes > 1`). The file appears complete or
/// not at all: it is written under a temporary name in the same folder, then renamed.
/// @throws Error naming the file when it cannot be written.
PERFQ_IO_API void write_nifti(const std::string& path, View<const float> image);
/// @brief Writes uint8 (masks, status maps); same guarantees.
PERFQ_IO_API void write_nifti(const std::string& path, View<const std::uint8_t> image);
/// @brief Writes int32 (label images); same guarantees.
PERFQ_IO_API void write_nifti(const std::string& path, View<const std::int32_t> image);

/// @brief Writes a text file atomically (temporary name in the same folder, then rename).
/// @throws Error naming the file when it cannot be written.
PERFQ_IO_API void write_text_atomic(const std::string& path, const std::string& text);

}  // namespace io
PERFQ_NAMESPACE_END
