// The NIfTI-1 and NIfTI-2 header, read and checked by perfq's own code (ITK 5.2 cannot read
// NIfTI-2, and the niftilib inside it prefers the qform over a disagreeing sform and prints
// its complaints about a bad header to stderr). Each refusal names the header field; the
// geometry follows one rule (header_geometry): the sform when sform_code > 0, else the qform
// when qform_code > 0, else pixdim alone, then RAS to LPS — the NIfTI standard as nibabel
// applies it.
#include <perfq/errors.hpp>
#include <perfq/io/nifti.hpp>

#include "file_checks.hpp"
#include "nifti_internal.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace {

using detail::DataLayout;
using detail::GzFile;
using detail::StoredType;
using detail::swap_bytes;

constexpr StoredType kStoredTypes[] = {
    {2, "uint8", 1},       {4, "int16", 2},         {8, "int32", 4},    {16, "float32", 4},
    {32, "complex64", 0},  {64, "float64", 8},      {128, "rgb24", 0},  {256, "int8", 1},
    {512, "uint16", 2},    {768, "uint32", 4},      {1024, "int64", 8}, {1280, "uint64", 8},
    {1536, "float128", 0}, {1792, "complex128", 0}, {2304, "rgba32", 0}};

StoredType stored_type(int code) {
  for (const StoredType& t : kStoredTypes) {
    if (t.code == code) return t;
  }
  return {code, nullptr, 0};
}

template <class T>
T field(const unsigned char* header, std::size_t offset, bool swapped) {
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, header + offset, sizeof(T));
  if (swapped) swap_bytes(bytes, sizeof(T));
  T value;
  std::memcpy(&value, bytes, sizeof(T));
  return value;
}

/// A header value as messages show it (6 significant digits; "NaN", "inf").
std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  std::ostringstream s;
  s << v;
  return s.str();
}

/// Scaling as NIfTI defines it: scl_slope 0 (or not finite) means "no scaling".
void set_scaling(DataLayout& d, double slope, double inter) {
  if (std::isfinite(slope) && slope != 0.0) {
    d.slope = slope;
    d.inter = std::isfinite(inter) ? inter : 0.0;
  }
}

/// The NIfTI-1 header fields (348 bytes, layout of nifti1.h). Single-file only ("n+1").
void read_nifti1_fields(const std::string& path, const unsigned char* h, DataLayout& d) {
  if (std::memcmp(h + 344, "n+1", 4) != 0) {
    const bool two_file = std::memcmp(h + 344, "ni1", 4) == 0;
    throw InputError(path, "",
                     two_file ? "header of a two-file NIfTI (.hdr/.img); expected a single .nii"
                              : "no NIfTI magic 'n+1' (an Analyze 7.5 file?); expected NIfTI-1");
  }
  for (int i = 0; i < 8; ++i) d.dim[i] = field<std::int16_t>(h, 40 + 2 * i, d.swapped);
  d.type = stored_type(field<std::int16_t>(h, 70, d.swapped));
  for (int i = 0; i < 8; ++i) d.pixdim[i] = field<float>(h, 76 + 4 * i, d.swapped);
  const float offset = field<float>(h, 108, d.swapped);
  if (!(offset >= 348.0f && offset < 1e15f) || offset != std::floor(offset)) {
    throw InputError(path, "vox_offset",
                     "is " + number(offset) +
                         "; expected a whole number ≥ 348 (the voxel data follow the header)");
  }
  d.vox_offset = static_cast<std::uint64_t>(offset);
  set_scaling(d, field<float>(h, 112, d.swapped), field<float>(h, 116, d.swapped));
  d.space_unit = field<std::uint8_t>(h, 123, d.swapped) & 7;
  d.qform_code = field<std::int16_t>(h, 252, d.swapped);
  d.sform_code = field<std::int16_t>(h, 254, d.swapped);
  for (int i = 0; i < 6; ++i) d.quatern[i] = field<float>(h, 256 + 4 * i, d.swapped);
  for (int i = 0; i < 12; ++i) d.srow[i] = field<float>(h, 280 + 4 * i, d.swapped);
}

/// The NIfTI-2 header fields (540 bytes, layout of nifti2.h: 64-bit dims and offsets, double
/// geometry). Single-file only ("n+2").
void read_nifti2_fields(const std::string& path, const unsigned char* h, DataLayout& d) {
  if (std::memcmp(h + 4, "n+2\0\r\n\032\n", 8) != 0) {
    const bool two_file = std::memcmp(h + 4, "ni2", 4) == 0;
    throw InputError(path, "",
                     two_file ? "header of a two-file NIfTI-2 (.hdr/.img); expected a single .nii"
                              : "no NIfTI-2 magic 'n+2' in a 540-byte header");
  }
  d.type = stored_type(field<std::int16_t>(h, 12, d.swapped));
  for (int i = 0; i < 8; ++i) d.dim[i] = field<std::int64_t>(h, 16 + 8 * i, d.swapped);
  for (int i = 0; i < 8; ++i) d.pixdim[i] = field<double>(h, 104 + 8 * i, d.swapped);
  const std::int64_t offset = field<std::int64_t>(h, 168, d.swapped);
  if (offset < 540) {
    throw InputError(path, "vox_offset",
                     "is " + std::to_string(offset) +
                         "; expected ≥ 540 (the voxel data follow the 540-byte header)");
  }
  d.vox_offset = static_cast<std::uint64_t>(offset);
  set_scaling(d, field<double>(h, 176, d.swapped), field<double>(h, 184, d.swapped));
  d.qform_code = field<std::int32_t>(h, 344, d.swapped);
  d.sform_code = field<std::int32_t>(h, 348, d.swapped);
  for (int i = 0; i < 6; ++i) d.quatern[i] = field<double>(h, 352 + 8 * i, d.swapped);
  for (int i = 0; i < 12; ++i) d.srow[i] = field<double>(h, 400 + 8 * i, d.swapped);
  d.space_unit = field<std::int32_t>(h, 500, d.swapped) & 7;
}

/// Reads the header bytes and refuses files that are not single-file NIfTI-1 or NIfTI-2,
/// saying what they are when it can tell.
DataLayout read_layout(const std::string& path) {
  GzFile file(path);
  if (!file.is_open()) throw InputError(path, "", "cannot be opened for reading");
  unsigned char h[540];
  const long long got = file.read(h, sizeof h);
  if (got < 0) throw InputError(path, "", "corrupt compressed data: " + file.error());
  if (got < 4) {
    throw InputError(path, "", "not a NIfTI file: too short for a header (or unreadable)");
  }
  const std::int32_t size = field<std::int32_t>(h, 0, false);
  const std::int32_t swapped_size = field<std::int32_t>(h, 0, true);
  DataLayout d;
  if (size == 540 || swapped_size == 540) {
    d.swapped = size != 540;
    if (got < 540) throw InputError(path, "", "truncated: the file ends inside the NIfTI-2 header");
    read_nifti2_fields(path, h, d);
  } else if (size == 348 || swapped_size == 348) {
    d.swapped = size != 348;
    if (got < 348) {
      throw InputError(path, "", "truncated: the file ends inside the 348-byte header");
    }
    read_nifti1_fields(path, h, d);
  } else {
    throw InputError(path, "",
                     "not a NIfTI file (expected a 348-byte NIfTI-1 or 540-byte NIfTI-2 header)");
  }
  return d;
}

/// The largest value a geometry field may hold, in its unit: a kilometre in mm. Also keeps
/// every product below of a sane size.
constexpr double kMaxGeometryValue = 1e6;

/// Refuses a geometry field that is not finite or implausibly large.
void check_geometry_field(const std::string& path, const std::string& name, double value) {
  if (!std::isfinite(value) || std::abs(value) > kMaxGeometryValue) {
    throw InputError(path, name,
                     "is " + number(value) + "; expected a finite number of magnitude ≤ 1e6");
  }
}

/// Geometry by the NIfTI standard's rule, as nibabel applies it, for NIfTI-1 and NIfTI-2 alike:
/// the sform when sform_code > 0; else the qform when qform_code > 0 (quaternion, qfac from the
/// sign of pixdim[0], voxel sizes |pixdim[1..3]|, 1 where 0); else pixdim alone (same voxel
/// sizes, axes along x, y, z, origin 0). Coordinates in metres or micrometres (xyzt_units) are
/// converted to millimetres; then RAS (as stored) becomes LPS (as ITK and perfq use): x and y
/// negated. Spacing is the length of each column of the chosen matrix, direction the column
/// divided by it, origin the translation. perfq holds grids with perpendicular axes only: an
/// sform whose axes are not perpendicular (cosine above 1e-4, ITK's tolerance) is refused,
/// not orthogonalised.
void header_geometry(const std::string& path, const DataLayout& d, Geometry& g) {
  static const char* const kSrow[3] = {"srow_x", "srow_y", "srow_z"};
  static const char* const kQuatern[6] = {"quatern_b", "quatern_c", "quatern_d",
                                          "qoffset_x", "qoffset_y", "qoffset_z"};
  double m[3][4] = {};  // RAS affine: voxel index → position
  if (d.sform_code > 0) {
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 4; ++c) {
        check_geometry_field(path, std::string(kSrow[r]) + "[" + std::to_string(c) + "]",
                             d.srow[4 * r + c]);
        m[r][c] = d.srow[4 * r + c];
      }
    }
  } else {
    double size[3];
    for (int k = 0; k < 3; ++k) {
      check_geometry_field(path, "pixdim[" + std::to_string(k + 1) + "]", d.pixdim[k + 1]);
      size[k] = d.pixdim[k + 1] != 0.0 ? std::abs(d.pixdim[k + 1]) : 1.0;
    }
    if (d.qform_code > 0) {
      for (int i = 0; i < 6; ++i) check_geometry_field(path, kQuatern[i], d.quatern[i]);
      double b = d.quatern[0], c = d.quatern[1], q = d.quatern[2];
      double a = 1.0 - (b * b + c * c + q * q);
      if (a < 1e-7) {  // (b, c, d) of length 1 or more: a 180° rotation about it (niftilib)
        const double n = std::sqrt(b * b + c * c + q * q);
        if (!(n > 0.0)) throw InputError(path, "quatern_b/c/d", "is not a rotation");
        b /= n;
        c /= n;
        q /= n;
        a = 0.0;
      } else {
        a = std::sqrt(a);
      }
      const double rot[3][3] = {
          {a * a + b * b - c * c - q * q, 2 * (b * c - a * q), 2 * (b * q + a * c)},
          {2 * (b * c + a * q), a * a + c * c - b * b - q * q, 2 * (c * q - a * b)},
          {2 * (b * q - a * c), 2 * (c * q + a * b), a * a + q * q - c * c - b * b}};
      if (d.pixdim[0] < 0) size[2] = -size[2];  // qfac −1: a left-handed grid
      for (int r = 0; r < 3; ++r) {
        for (int k = 0; k < 3; ++k) m[r][k] = rot[r][k] * size[k];
        m[r][3] = d.quatern[3 + r];
      }
    } else {
      for (int k = 0; k < 3; ++k) m[k][k] = size[k];
    }
  }
  const double unit = d.space_unit == 1 ? 1e3 : d.space_unit == 3 ? 1e-3 : 1.0;
  const double flip[3] = {-1.0, -1.0, 1.0};
  for (int a = 0; a < 3; ++a) {
    const double length =
        unit * std::sqrt(m[0][a] * m[0][a] + m[1][a] * m[1][a] + m[2][a] * m[2][a]);
    if (!(length > 0.0)) {
      throw InputError(path, d.sform_code > 0 ? "srow_x/y/z" : "pixdim",
                       "axis " + std::to_string(a + 1) + " of the grid has length 0");
    }
    g.spacing[a] = length;
    for (int r = 0; r < 3; ++r) g.direction[3 * r + a] = flip[r] * unit * m[r][a] / length;
  }
  for (int r = 0; r < 3; ++r) g.origin[r] = flip[r] * unit * m[r][3];
  for (int a = 0; a < 3; ++a) {
    for (int b = a + 1; b < 3; ++b) {
      double cosine = 0.0;
      for (int r = 0; r < 3; ++r) cosine += g.direction[3 * r + a] * g.direction[3 * r + b];
      if (std::abs(cosine) > 1e-4) {
        std::ostringstream angle;
        angle << std::fixed << std::setprecision(2)
              << std::acos(std::clamp(cosine, -1.0, 1.0)) * 180.0 / 3.14159265358979323846;
        throw InputError(path, "srow_x/y/z",
                         "the sform's axes " + std::to_string(a + 1) + " and " +
                             std::to_string(b + 1) + " are not perpendicular (" + angle.str() +
                             "° apart): a sheared grid, which perfq cannot represent");
      }
    }
  }
}

std::string type_name(const StoredType& t) {
  return t.name ? std::string(t.name) : "datatype " + std::to_string(t.code);
}

}  // namespace

detail::Header detail::read_header(const std::string& path) {
  detail::require_regular_file(path, "NIfTI image (.nii or .nii.gz)", "file not found");
  if (nifti_extension(path).empty()) {
    throw InputError(path, "", "expected a NIfTI file name ending in .nii or .nii.gz");
  }
  detail::Header h;
  h.layout = read_layout(path);
  const DataLayout& d = h.layout;
  h.info.stored_type = type_name(d.type);
  if (d.type.bytes == 0) {
    throw InputError(path, "datatype",
                     "unsupported voxel type " + h.info.stored_type +
                         "; expected one real number per voxel (integer or float)");
  }
  const auto& dim = d.dim;
  if (dim[0] < 1 || dim[0] > 7) {
    throw InputError(
        path, "dim[0]",
        "is " + std::to_string(dim[0]) + "; expected 1 to 7 (the number of dimensions)");
  }
  // The product of the dimensions (times 8 bytes) must not wrap around (found by fuzzing,
  // tests/fuzz: a wrapped product read as an empty image on a huge grid).
  constexpr std::uint64_t kMaxVoxels = std::uint64_t{1} << 59;
  std::uint64_t total = 1;
  for (long long i = 1; i <= dim[0]; ++i) {
    const std::string name = "dim[" + std::to_string(i) + "]";
    if (dim[i] < 1) throw InputError(path, name, "is " + std::to_string(dim[i]) + "; expected ≥ 1");
    if (i > 4 && dim[i] > 1) {
      throw InputError(path, name,
                       "is " + std::to_string(dim[i]) + ": the image has " +
                           std::to_string(dim[0]) + " dimensions; expected a 3D or 4D image");
    }
    if (static_cast<std::uint64_t>(dim[i]) > kMaxVoxels / total) {
      throw InputError(path, "dim", "has too many voxels (more than 2^59)");
    }
    total *= static_cast<std::uint64_t>(dim[i]);
  }
  Geometry& g = h.info.geometry;
  for (int a = 0; a < 3; ++a)
    g.dims[a] = a + 1 <= dim[0] ? static_cast<std::size_t>(dim[a + 1]) : 1;
  h.info.volumes = dim[0] >= 4 ? static_cast<std::size_t>(dim[4]) : 1;
  header_geometry(path, d, g);
  return h;
}

NiftiInfo read_nifti_info(const std::string& path) { return detail::read_header(path).info; }

}  // namespace io
PERFQ_NAMESPACE_END
