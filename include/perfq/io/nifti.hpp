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
  Geometry geometry;        ///< grid of one volume (LPS, as ITK reports it)
  std::size_t volumes = 1;  ///< size of the 4th dimension (1 for 3D)
  std::string stored_type;  ///< e.g. "int16", "float32", "float64", "uint8"
};

/// @brief Reads the header only.
/// @throws InputError naming the file when it is missing, unreadable or not NIfTI, or has
/// more than 4 dimensions.
PERFQ_IO_API NiftiInfo read_nifti_info(const std::string& path);

/// @brief Reads a 3D or 4D NIfTI-1 or NIfTI-2 image of any real stored type as float, with
/// `scl_slope`/`scl_inter` applied.
/// @throws InputError naming the file (unreadable, truncated, unsupported type, > 4D).
PERFQ_IO_API Image<float> read_nifti(const std::string& path);

/// @brief Reads a mask: voxels that are nonzero (and finite) become 1, others 0. 3D only.
/// @throws InputError as read_nifti, and for a 4D image.
PERFQ_IO_API Mask read_nifti_mask(const std::string& path);

/// @brief Reads a label image stored as integers or floats. 3D only.
/// @throws InputError when a value is not an integer (or NaN), or the image is 4D.
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
