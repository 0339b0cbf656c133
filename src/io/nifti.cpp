// NIfTI reading and writing, and atomic file replacement.
//
// Reading is perfq's own, for NIfTI-1 and NIfTI-2 alike (ITK 5.2 cannot read NIfTI-2): the
// header is read and checked here, each refusal naming the header field; the geometry follows
// one rule (header_geometry): the sform when sform_code > 0, else the qform when
// qform_code > 0, else pixdim alone, then RAS to LPS — the NIfTI standard as nibabel applies
// it. The voxel block is read with zlib (.nii.gz and plain .nii alike), after checking that
// the image fits in the memory left to the process. ITK's reader is not used: the niftilib
// inside ITK 5.2 prefers the qform over a disagreeing sform, prints its complaints about a
// bad header to stderr, silently sets NaN/Inf voxels to 0 and zero-fills a truncated data
// block, and perfq must report the last two (DESIGN §5).
// Writing: ITK's NiftiImageIO, to a temporary name that is then renamed.
//
// ITK is confined to this translation unit. Every itk::ExceptionObject is caught here and
// turned into a perfq exception that names the file.
#include <perfq/errors.hpp>
#include <perfq/io/nifti.hpp>

#include "file_checks.hpp"

#include <itkImage.h>
#include <itkImageFileWriter.h>
#include <itkNiftiImageIO.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#ifdef _WIN32
#include <process.h>
#define PERFQ_GETPID _getpid
#else
#include <unistd.h>
#define PERFQ_GETPID getpid
#endif

namespace fs = std::filesystem;

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace {

// ---- small helpers ----------------------------------------------------------------------

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// The NIfTI extension of `path` (".nii.gz" or ".nii"), or empty for anything else.
std::string nifti_extension(const std::string& path) {
  if (ends_with(path, ".nii.gz")) return ".nii.gz";
  if (ends_with(path, ".nii")) return ".nii";
  return {};
}

/// An ITK exception's description without ITK's decoration: "ITK ERROR: " and the throwing
/// object's class and address ("NiftiImageIO(0x55d...): "), which mean nothing to a user.
std::string itk_message(const itk::ExceptionObject& e) {
  std::string text = e.GetDescription() ? e.GetDescription() : "";
  const std::string prefix = "ITK ERROR: ";
  if (text.compare(0, prefix.size(), prefix) == 0) text.erase(0, prefix.size());
  for (std::size_t at = text.find("(0x"); at != std::string::npos; at = text.find("(0x", at)) {
    std::size_t end = at + 3;
    while (end < text.size() && std::isxdigit(static_cast<unsigned char>(text[end]))) ++end;
    if (end >= text.size() || text[end] != ')') {
      at = end;
      continue;
    }
    std::size_t begin = at;  // the class name before the address goes too
    while (begin > 0 && (std::isalnum(static_cast<unsigned char>(text[begin - 1])) ||
                         text[begin - 1] == '_' || text[begin - 1] == ':')) {
      --begin;
    }
    ++end;
    if (text.compare(end, 2, ": ") == 0) end += 2;
    text.erase(begin, end - begin);
    at = begin;
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text.empty() ? std::string("unknown ITK error") : text;
}

// ---- the header ----------------------------------------------------------------------------

/// A stored voxel type (nifti1.h datatype codes).
struct StoredType {
  int code;
  const char* name;
  int bytes;  ///< 0: not a scalar type perfq reads
};

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

void swap_bytes(unsigned char* p, int size) { std::reverse(p, p + size); }

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

/// Header facts, checked: what read_nifti_info returns and what the voxel reader needs.
struct Header {
  NiftiInfo info;
  DataLayout layout;
};

/// Opens `path` and reads its header. Refuses what read_nifti cannot represent, naming the
/// header field at fault. Nothing else reads the header: no library prints to stderr.
Header read_header(const std::string& path) {
  detail::require_regular_file(path, "NIfTI image (.nii or .nii.gz)", "file not found");
  if (nifti_extension(path).empty()) {
    throw InputError(path, "", "expected a NIfTI file name ending in .nii or .nii.gz");
  }
  Header h;
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

/// Bytes of memory this process can still take: the smaller of the system's available memory
/// (/proc/meminfo MemAvailable) and what its memory cgroup leaves (v2: memory.max less
/// memory.current; v1: memory.limit_in_bytes less memory.usage_in_bytes; in both, page cache
/// it can drop, inactive_file, counts as free). A cgroup without a limit ("max", or one above
/// 2^60 bytes) leaves all. Empty when nothing can be read (not Linux): then nothing is refused.
std::optional<std::uint64_t> available_memory() {
  auto read_number = [](const std::string& file) -> std::optional<std::uint64_t> {
    std::ifstream in(file);
    std::string text;
    if (!(in >> text) || text.empty() ||
        text.find_first_not_of("0123456789") != std::string::npos || text.size() > 19) {
      return std::nullopt;  // absent, "max", or not a number
    }
    return std::stoull(text);
  };
  auto read_key = [](const std::string& file, const std::string& key) -> std::uint64_t {
    std::ifstream in(file);
    std::string name;
    std::uint64_t value = 0;
    while (in >> name >> value) {
      if (name == key) return value;
    }
    return 0;
  };
  std::optional<std::uint64_t> available;
  {
    std::ifstream in("/proc/meminfo");
    std::string name, unit;
    std::uint64_t kib = 0;
    while (in >> name >> kib) {
      std::getline(in, unit);
      if (name == "MemAvailable:") {
        available = kib * 1024;
        break;
      }
    }
  }
  // This process's cgroup, as /proc/self/cgroup names it ("0::/path" for v2, "N:memory:/path"
  // or "N:...,memory,...:/path" for v1); inside a container the root is its own.
  std::string v2_path, v1_path;
  {
    std::ifstream in("/proc/self/cgroup");
    std::string line;
    while (std::getline(in, line)) {
      const std::size_t first = line.find(':');
      const std::size_t second = first == std::string::npos ? first : line.find(':', first + 1);
      if (second == std::string::npos) continue;
      const std::string controllers = "," + line.substr(first + 1, second - first - 1) + ",";
      const std::string where = line.substr(second + 1);
      if (line.compare(0, 3, "0::") == 0) v2_path = where;
      if (controllers.find(",memory,") != std::string::npos) v1_path = where;
    }
  }
  struct Layout {
    std::string folder, limit, usage, inactive;
  };
  const Layout layouts[] = {
      {"/sys/fs/cgroup" + v2_path, "memory.max", "memory.current", "inactive_file"},
      {"/sys/fs/cgroup", "memory.max", "memory.current", "inactive_file"},
      {"/sys/fs/cgroup/memory" + v1_path, "memory.limit_in_bytes", "memory.usage_in_bytes",
       "total_inactive_file"},
      {"/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes",
       "total_inactive_file"}};
  for (const Layout& l : layouts) {
    std::error_code ec;
    if (!fs::exists(l.folder + "/" + l.limit, ec)) continue;
    const std::optional<std::uint64_t> limit = read_number(l.folder + "/" + l.limit);
    const std::optional<std::uint64_t> usage = read_number(l.folder + "/" + l.usage);
    if (limit && usage && *limit < (std::uint64_t{1} << 60)) {
      const std::uint64_t inactive = read_key(l.folder + "/memory.stat", l.inactive);
      const std::uint64_t used = *usage > inactive ? *usage - inactive : 0;
      const std::uint64_t left = *limit > used ? *limit - used : 0;
      available = available ? std::min(*available, left) : left;
    }
    break;  // the first cgroup found is this process's
  }
  return available;
}

/// `bytes` for a message: "1.5 GiB", or "300.0 MiB" below a GiB.
std::string memory_size(double bytes) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1);
  if (bytes >= 1024.0 * 1024.0 * 1024.0) {
    s << bytes / (1024.0 * 1024.0 * 1024.0) << " GiB";
  } else {
    s << bytes / (1024.0 * 1024.0) << " MiB";
  }
  return s.str();
}

/// Converts `count` stored values to P, with byte swapping and scaling.
template <class P, class S>
void convert(const unsigned char* src, std::size_t count, const DataLayout& d, P* dst) {
  const bool scale = d.slope != 1.0 || d.inter != 0.0;
  for (std::size_t i = 0; i < count; ++i) {
    unsigned char bytes[sizeof(S)];
    std::memcpy(bytes, src + i * sizeof(S), sizeof(S));
    if (d.swapped) swap_bytes(bytes, sizeof(S));
    S value;
    std::memcpy(&value, bytes, sizeof(S));
    if constexpr (std::is_same_v<S, P>) {
      dst[i] = scale ? static_cast<P>(d.slope * static_cast<double>(value) + d.inter) : value;
    } else {
      const double v = static_cast<double>(value);
      dst[i] = static_cast<P>(scale ? d.slope * v + d.inter : v);
    }
  }
}

template <class P>
void convert_any(const unsigned char* src, std::size_t count, const DataLayout& d, P* dst) {
  switch (d.type.code) {
    case 2:
      return convert<P, std::uint8_t>(src, count, d, dst);
    case 4:
      return convert<P, std::int16_t>(src, count, d, dst);
    case 8:
      return convert<P, std::int32_t>(src, count, d, dst);
    case 16:
      return convert<P, float>(src, count, d, dst);
    case 64:
      return convert<P, double>(src, count, d, dst);
    case 256:
      return convert<P, std::int8_t>(src, count, d, dst);
    case 512:
      return convert<P, std::uint16_t>(src, count, d, dst);
    case 768:
      return convert<P, std::uint32_t>(src, count, d, dst);
    case 1024:
      return convert<P, std::int64_t>(src, count, d, dst);
    case 1280:
      return convert<P, std::uint64_t>(src, count, d, dst);
    default:
      break;
  }
}

/// An image read as `P` (float, or double where integers must stay exact).
template <class P>
struct Raw {
  NiftiInfo info;
  std::vector<P> values;
};

template <class P>
Raw<P> read_raw(const std::string& path, bool only_3d, const char* what) {
  Header h = read_header(path);
  if (only_3d && h.info.volumes > 1) {
    throw InputError(path, "",
                     std::string("expected a 3D ") + what + ", found a 4D image with " +
                         std::to_string(h.info.volumes) + " volumes");
  }
  const DataLayout& d = h.layout;
  const std::size_t count = h.info.geometry.voxel_count() * h.info.volumes;
  const std::size_t bytes = static_cast<std::size_t>(d.type.bytes);
  Raw<P> raw;
  raw.info = h.info;
  auto truncated = [&](std::size_t found) {
    return InputError(path, "",
                      "truncated: the header describes " + std::to_string(count) +
                          " voxels but the file holds " + std::to_string(found));
  };

  // Memory first: a header can claim more voxels than the process can hold (a small hostile
  // .nii.gz would otherwise be decompressed until the process is killed).
  if (const std::optional<std::uint64_t> available = available_memory()) {
    const double needed = static_cast<double>(count) * sizeof(P);
    if (needed > static_cast<double>(*available)) {
      throw InputError(path, "",
                       "holds " + std::to_string(count) + " voxels (" + memory_size(needed) +
                           " as " + std::to_string(8 * sizeof(P)) + "-bit floats), more than the " +
                           memory_size(static_cast<double>(*available)) + " of memory available");
    }
  }
  GzFile file(path);
  if (!file.is_open()) throw InputError(path, "", "cannot be opened for reading");
  // A header can claim far more voxels than a (broken or hostile) file holds: memory is never
  // taken for more than is there. Uncompressed: the file's size tells before reading; gzip:
  // the values grow with the data decompressed (found by fuzzing, tests/fuzz).
  const bool compressed = file.compressed();
  if (!compressed) {
    std::error_code ec;
    const std::uintmax_t size = fs::file_size(path, ec);
    if (!ec && size < d.vox_offset) {
      throw InputError(path, "", "truncated: the file ends before its voxel data");
    }
    if (!ec && (size - d.vox_offset) / bytes < count) {
      throw truncated(static_cast<std::size_t>((size - d.vox_offset) / bytes));
    }
  }
  try {
    if (compressed) {
      raw.values.reserve(std::min<std::size_t>(count, std::size_t{1} << 24));
    } else {
      raw.values.resize(count);
    }
  } catch (const std::bad_alloc&) {
    throw InputError(path, "", "not enough memory to read the image");
  }
  // Skip header and extensions (in pieces: vox_offset comes from the file), then read and
  // convert the voxel block in pieces.
  std::vector<unsigned char> buffer(1 << 20);
  for (std::uint64_t skipped = 0; skipped < d.vox_offset;) {
    const std::size_t piece =
        static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), d.vox_offset - skipped));
    if (file.read(buffer.data(), piece) != static_cast<long long>(piece)) {
      throw InputError(path, "", "truncated: the file ends before its voxel data");
    }
    skipped += piece;
  }
  const std::size_t per_piece = buffer.size() / bytes;
  std::size_t done = 0;
  while (done < count) {
    const std::size_t n = std::min(per_piece, count - done);
    const long long got = file.read(buffer.data(), n * bytes);
    if (got < 0) {
      throw InputError(path, "", "corrupt compressed data: " + file.error());
    }
    if (static_cast<std::size_t>(got) != n * bytes) {
      throw truncated(done + static_cast<std::size_t>(got) / bytes);
    }
    if (raw.values.size() < done + n) {
      try {
        raw.values.resize(done + n);  // compressed: grows geometrically with the data
      } catch (const std::bad_alloc&) {
        throw InputError(path, "", "not enough memory to read the image");
      }
    }
    convert_any(buffer.data(), n, d, raw.values.data() + done);
    done += n;
  }
  // Nothing beyond vox_offset plus the voxel block is asked for. Reading one byte past it
  // makes zlib check the gzip trailer (CRC and length) when the stream ends there; data that
  // follow are decompressed at most one zlib buffer (256 KiB) far, and ignored.
  if (file.compressed()) {
    unsigned char extra;
    if (file.read(&extra, 1) < 0) {
      throw InputError(path, "", "corrupt compressed data: " + file.error());
    }
  }
  return raw;
}

std::string voxel_name(const Geometry& g, std::size_t i) {
  const std::size_t x = i % g.dims[0];
  const std::size_t y = (i / g.dims[0]) % g.dims[1];
  const std::size_t z = i / (g.dims[0] * g.dims[1]);
  return "voxel (" + std::to_string(x) + ", " + std::to_string(y) + ", " + std::to_string(z) + ")";
}

// ---- writing ------------------------------------------------------------------------------

/// A name in the folder of `path` for writing before the rename; it keeps the extension so
/// that writers that choose the format (and compression) by name behave as for `path`.
fs::path temporary_name(const fs::path& path, const std::string& extension) {
  static std::atomic<unsigned long> counter{0};
  const std::string name = path.filename().string();
  const std::string stem = name.substr(0, name.size() - extension.size());
  const std::string temp = "." + stem + ".tmp-" + std::to_string(PERFQ_GETPID()) + "-" +
                           std::to_string(counter.fetch_add(1)) + extension;
  return path.parent_path() / temp;
}

/// The folder `path` will be written in; throws when it does not exist.
void require_folder(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) return;  // current directory
  std::error_code ec;
  if (!fs::is_directory(parent, ec)) {
    throw Error(path + ": cannot write: folder " + parent.string() + " does not exist");
  }
}

/// Renames `temp` onto `path`, or removes it and throws.
void commit(const fs::path& temp, const std::string& path) {
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw Error(path + ": cannot write: renaming the temporary file failed: " + ec.message());
  }
}

/// Whether `file` holds at least `bytes` bytes of content; a compressed file is decompressed
/// to check it is whole (a cut gzip stream can be longer than the data it still holds).
bool complete_on_disk(const fs::path& file, std::uintmax_t bytes, bool compressed) {
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(file, ec);
  if (ec || size == 0) return false;
  if (!compressed) return size >= bytes;
  GzFile in(file.string());
  if (!in.is_open() || !in.compressed()) return false;
  std::vector<unsigned char> buffer(1 << 20);
  std::uintmax_t total = 0;
  while (true) {
    const long long got = in.read(buffer.data(), buffer.size());
    if (got < 0) return false;  // corrupt or cut short
    if (got == 0) break;
    total += static_cast<std::uintmax_t>(got);
  }
  return total >= bytes;
}

template <class T, unsigned D>
typename itk::Image<T, D>::Pointer wrap(View<const T> view) {
  using ImageType = itk::Image<T, D>;
  auto image = ImageType::New();
  typename ImageType::SizeType size;
  typename ImageType::SpacingType spacing;
  typename ImageType::PointType origin;
  typename ImageType::DirectionType direction;
  direction.SetIdentity();
  const Geometry& g = view.geometry;
  for (unsigned a = 0; a < 3; ++a) {
    size[a] = g.dims[a];
    spacing[a] = g.spacing[a];
    origin[a] = g.origin[a];
    for (unsigned r = 0; r < 3; ++r) direction[r][a] = g.direction[3 * r + a];
  }
  if constexpr (D == 4) {
    size[3] = view.volumes;
    spacing[3] = 1.0;  // the API carries no repetition time
    origin[3] = 0.0;
  }
  typename ImageType::RegionType region;
  region.SetSize(size);
  image->SetRegions(region);
  image->SetSpacing(spacing);
  image->SetOrigin(origin);
  image->SetDirection(direction);
  // The writer only reads the buffer; importing avoids copying a whole series.
  image->GetPixelContainer()->SetImportPointer(const_cast<T*>(view.data), view.size(), false);
  return image;
}

template <class T, unsigned D>
void write_with_itk(View<const T> view, const fs::path& temp, bool compress) {
  auto writer = itk::ImageFileWriter<itk::Image<T, D>>::New();
  auto io = itk::NiftiImageIO::New();
  // Fast compression: maps of noisy floats hardly compress better at higher levels, and
  // level 6 (zlib's default) made writing the largest cost of a whole run.
  io->SetCompressionLevel(1);
  writer->SetImageIO(io);
  writer->SetFileName(temp.string());
  writer->SetUseCompression(compress);
  writer->SetInput(wrap<T, D>(view));
  writer->Update();
}

template <class T>
void write_image(const std::string& path, View<const T> view) {
  const std::string extension = nifti_extension(path);
  if (extension.empty()) {
    throw Error(path + ": cannot write: expected a file name ending in .nii or .nii.gz");
  }
  if (view.empty()) throw Error(path + ": cannot write: the image is empty");
  for (unsigned a = 0; a < 3; ++a) {
    if (!(view.geometry.spacing[a] > 0.0) || !std::isfinite(view.geometry.spacing[a])) {
      throw Error(path + ": cannot write: voxel spacing must be positive and finite");
    }
  }
  for (unsigned a = 0; a < 3; ++a) {
    // NIfTI-1 stores each dimension as a signed 16-bit integer.
    if (view.geometry.dims[a] > 32767) {
      throw Error(path + ": cannot write: dimension larger than 32767 (NIfTI-1 limit)");
    }
  }
  if (view.volumes > 32767) {
    throw Error(path + ": cannot write: more than 32767 volumes (NIfTI-1 limit)");
  }
  require_folder(path);

  const fs::path temp = temporary_name(fs::path(path), extension);
  const bool compress = extension == ".nii.gz";
  auto discard = [&temp]() {
    std::error_code ignored;
    fs::remove(temp, ignored);
  };
  try {
    if (view.volumes > 1) {
      write_with_itk<T, 4>(view, temp, compress);
    } else {
      write_with_itk<T, 3>(view, temp, compress);
    }
  } catch (const itk::ExceptionObject& e) {
    discard();
    throw Error(path + ": cannot write: " + itk_message(e));
  } catch (const std::exception& e) {
    discard();
    throw Error(path + ": cannot write: " + e.what());
  }

  // niftilib reports write failures (disk full, no permission) only on stderr: check what
  // reached the disk before it replaces anything.
  const std::uintmax_t expected = 352 + static_cast<std::uintmax_t>(view.size()) * sizeof(T);
  if (!complete_on_disk(temp, expected, compress)) {
    discard();
    throw Error(path +
                ": cannot write: the file was not written completely (disk full or "
                "no permission?)");
  }
  commit(temp, path);
}

}  // namespace

// ---- public API -----------------------------------------------------------------------------

NiftiInfo read_nifti_info(const std::string& path) { return read_header(path).info; }

Image<float> read_nifti(const std::string& path) {
  Raw<float> raw = read_raw<float>(path, false, "image");
  return Image<float>(raw.info.geometry, raw.info.volumes, std::move(raw.values));
}

Mask read_nifti_mask(const std::string& path) {
  Raw<float> raw = read_raw<float>(path, true, "mask");
  std::vector<std::uint8_t> inside(raw.values.size());
  std::transform(raw.values.begin(), raw.values.end(), inside.begin(), [](float v) {
    return static_cast<std::uint8_t>(std::isfinite(v) && v != 0.0f ? 1 : 0);
  });
  return Mask(raw.info.geometry, 1, std::move(inside));
}

Image<std::int32_t> read_nifti_labels(const std::string& path) {
  // Doubles keep int32 labels exact (floats do not above 2^24).
  Raw<double> raw = read_raw<double>(path, true, "label image");
  std::vector<std::int32_t> labels(raw.values.size());
  for (std::size_t i = 0; i < raw.values.size(); ++i) {
    const double v = raw.values[i];
    if (!std::isfinite(v) || v != std::floor(v)) {
      std::ostringstream m;
      m << voxel_name(raw.info.geometry, i) << " has value " << v
        << "; a label image must hold integers";
      throw InputError(path, "", m.str());
    }
    if (v < std::numeric_limits<std::int32_t>::min() ||
        v > std::numeric_limits<std::int32_t>::max()) {
      std::ostringstream m;
      m << voxel_name(raw.info.geometry, i) << " has value " << v
        << ", outside the 32-bit integer range";
      throw InputError(path, "", m.str());
    }
    labels[i] = static_cast<std::int32_t>(v);
  }
  return Image<std::int32_t>(raw.info.geometry, 1, std::move(labels));
}

void write_nifti(const std::string& path, View<const float> image) { write_image(path, image); }

void write_nifti(const std::string& path, View<const std::uint8_t> image) {
  write_image(path, image);
}

void write_nifti(const std::string& path, View<const std::int32_t> image) {
  write_image(path, image);
}

void write_text_atomic(const std::string& path, const std::string& text) {
  const fs::path target(path);
  if (target.filename().empty()) throw Error(path + ": cannot write: not a file name");
  require_folder(path);
  const fs::path temp = temporary_name(target, "");
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot write: cannot create a file in its folder");
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) {
      std::error_code ignored;
      fs::remove(temp, ignored);
      throw Error(path + ": cannot write: writing failed (disk full?)");
    }
  }
  commit(temp, path);
}

}  // namespace io
PERFQ_NAMESPACE_END
