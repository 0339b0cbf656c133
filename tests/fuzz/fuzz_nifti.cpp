// libFuzzer target: NIfTI header (and voxel) reading. perfq::io reads files only, so each
// input is written to a private temporary file (`.nii.gz` when it starts with the gzip
// magic, else `.nii`) and read with read_nifti_info, read_nifti and read_nifti_labels
// (NIfTI-1 and NIfTI-2 alike by perfq's own header code).
// Contract checked: only perfq::InputError escapes; no crash, leak, UB or huge allocation
// for a small file.
#include <perfq/errors.hpp>
#include <perfq/io/nifti.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

namespace {

std::string temp_path(bool gzip) {
  const std::string dir = std::filesystem::temp_directory_path().string();
  return dir + "/perfq-fuzz-nifti-" + std::to_string(getpid()) + (gzip ? ".nii.gz" : ".nii");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const bool gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  const std::string path = temp_path(gzip);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) {
      std::fprintf(stderr, "fuzz_nifti: cannot write %s\n", path.c_str());
      std::abort();
    }
  }
  try {
    const perfq::io::NiftiInfo info = perfq::io::read_nifti_info(path);
    const perfq::Image<float> image = perfq::io::read_nifti(path);
    if (image.volumes() != info.volumes || image.geometry().dims != info.geometry.dims) {
      std::fprintf(stderr, "fuzz_nifti: read_nifti and read_nifti_info disagree\n");
      std::abort();
    }
    // The image must hold exactly the voxels its grid describes (no wrapped products).
    const auto& dims = info.geometry.dims;
    if (dims[0] == 0 || dims[1] == 0 || dims[2] == 0 || info.volumes == 0 ||
        image.size() / dims[0] / dims[1] / dims[2] != info.volumes ||
        image.size() != dims[0] * dims[1] * dims[2] * info.volumes) {
      std::fprintf(stderr, "fuzz_nifti: %zu values for %zux%zux%zu voxels x %zu volumes\n",
                   image.size(), dims[0], dims[1], dims[2], info.volumes);
      std::abort();
    }
    if (info.volumes == 1) (void)perfq::io::read_nifti_labels(path);
  } catch (const perfq::InputError&) {
  }
  std::remove(path.c_str());
  return 0;
}
