// Internal to perfq::io: what the NIfTI header reader (nifti_header.cpp), the voxel reader
// (nifti.cpp) and the writer (nifti_write.cpp) share.
#pragma once

#include <perfq/errors.hpp>
#include <perfq/io/nifti.hpp>

#include "text_util.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace detail {

using strings::ends_with;

/// The NIfTI extension of `path` (".nii.gz" or ".nii"), or empty for anything else.
inline std::string nifti_extension(const std::string& path) {
  if (ends_with(path, ".nii.gz")) return ".nii.gz";
  if (ends_with(path, ".nii")) return ".nii";
  return {};
}

/// The gzip members perfq writes (nifti_write.cpp) carry their own sizes in the header's extra
/// field (RFC 1952, FEXTRA), so that a reader can find every member without inflating any and
/// inflate them side by side (nifti.cpp). One subfield, ID 'P' 'Q', 8 bytes: the member's
/// length in the file and the length of its content, both unsigned 32-bit little-endian.
/// Other gzip readers skip the field, as RFC 1952 asks of them.
constexpr unsigned char kMemberIndexId1 = 'P';
constexpr unsigned char kMemberIndexId2 = 'Q';
/// Header bytes of such a member: 10 fixed, XLEN (2), subfield ID (2), LEN (2), 8 of data.
constexpr std::size_t kIndexedMemberHeader = 24;

/// read_nifti, inflating a .nii.gz written by perfq on `threads` threads (0: OpenMP's default).
Image<float> read_nifti(const std::string& path, int threads);

/// zlib file handle; zlib reads uncompressed files transparently.
class GzFile {
 public:
  explicit GzFile(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb")) {
    if (file_) gzbuffer(file_, 1 << 17);
  }
  ~GzFile() {
    if (file_) gzclose(file_);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;
  bool is_open() const { return file_ != nullptr; }
  bool compressed() const { return gzdirect(file_) == 0; }
  /// Reads up to `size` bytes; returns how many were read, or -1 on a zlib error.
  long long read(void* buffer, std::size_t size) {
    std::size_t done = 0;
    while (done < size) {
      const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(size - done, 1u << 30));
      const int got = gzread(file_, static_cast<char*>(buffer) + done, chunk);
      if (got < 0) return -1;
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    return static_cast<long long>(done);
  }
  std::string error() const {
    int code = Z_OK;
    const char* text = gzerror(file_, &code);
    if (code == Z_OK || text == nullptr) return "unknown zlib error";
    std::string message(text);
    // zlib prefixes the file name; the InputError names it already.
    if (message.rfind(path_ + ": ", 0) == 0) message.erase(0, path_.size() + 2);
    return message;
  }

 private:
  std::string path_;
  gzFile file_;
};

inline void swap_bytes(unsigned char* p, int size) { std::reverse(p, p + size); }

/// A stored voxel type (nifti1.h datatype codes).
struct StoredType {
  int code;
  const char* name;
  int bytes;  ///< 0: not a scalar type perfq reads
};

/// The header fields perfq uses, read without ITK from a NIfTI-1 or a NIfTI-2 header (kept in
/// NIfTI-2's wider types).
struct DataLayout {
  bool swapped = false;  ///< file byte order differs from this machine's
  std::array<long long, 8> dim{};
  StoredType type{0, nullptr, 0};
  std::uint64_t vox_offset = 352;
  double slope = 1.0, inter = 0.0;  ///< scl_slope/scl_inter, identity when absent
  std::array<double, 8> pixdim{};
  int qform_code = 0, sform_code = 0;
  std::array<double, 6> quatern{};  ///< quatern_b, _c, _d, qoffset_x, _y, _z
  std::array<double, 12> srow{};    ///< srow_x, srow_y, srow_z
  int space_unit = 0;               ///< xyzt_units & 7: 1 metre, 2 mm, 3 µm, 0 unknown
};

/// Header facts, checked: what read_nifti_info returns and what the voxel reader needs.
struct Header {
  NiftiInfo info;     ///< what read_nifti_info returns
  DataLayout layout;  ///< how the voxels are stored
};

/// Opens `path` and reads its header. Refuses what read_nifti cannot represent, naming the
/// header field at fault. Nothing else reads the header: no library prints to stderr.
Header read_header(const std::string& path);

}  // namespace detail
}  // namespace io
PERFQ_NAMESPACE_END
