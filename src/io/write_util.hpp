// Internal to perfq::io: writing a file under a temporary name in its folder, then renaming it
// (nifti_write.cpp), and ITK's exception text for users; shared by the NIfTI and transform
// writers.
#pragma once

#include <perfq/image.hpp>
#include <perfq/version.hpp>

#include <cstdint>

#include <filesystem>
#include <string>

namespace itk {
class ExceptionObject;
}

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace detail {

/// An ITK exception's description without ITK's decoration ("ITK ERROR: ", the throwing
/// object's class and address), which mean nothing to a user.
std::string itk_message(const itk::ExceptionObject& e);

/// A name in the folder of `path` for writing before the rename; it keeps `extension` so that
/// writers that choose the format by name behave as for `path`.
std::filesystem::path temporary_name(const std::filesystem::path& path,
                                     const std::string& extension);

/// Throws Error naming `path` when the folder it will be written in does not exist.
void require_folder(const std::string& path);

/// Renames `temp` onto `path`, or removes it and throws Error naming `path`.
void commit(const std::filesystem::path& temp, const std::string& path);

/// write_nifti with `threads` compressing a .nii.gz (0: OpenMP's default).
void write_nifti(const std::string& path, View<const float> image, int threads);
/// write_nifti with `threads` compressing a .nii.gz (0: OpenMP's default).
void write_nifti(const std::string& path, View<const std::uint8_t> image, int threads);

}  // namespace detail
}  // namespace io
PERFQ_NAMESPACE_END
