// NIfTI reading and writing, and atomic file replacement.
//
// Reading: ITK's NiftiImageIO interprets NIfTI-1 headers (qform/sform → LPS geometry,
// dimensions); NIfTI-2 headers, which ITK 5.2 cannot read, are interpreted here;
// the voxel block is read here with zlib. Why not let ITK read the voxels too: the niftilib
// inside ITK 5.2 silently sets NaN/Inf voxels to 0 and zero-fills a truncated data block, and
// perfq must report both (DESIGN §5). zlib reads .nii.gz and plain .nii alike.
// Writing: ITK's NiftiImageIO, to a temporary name that is then renamed.
//
// ITK is confined to this translation unit. Every itk::ExceptionObject is caught here and
// turned into a perfq exception that names the file.
#include <perfq/errors.hpp>
#include <perfq/io/nifti.hpp>

#include <itkImage.h>
#include <itkImageFileWriter.h>
#include <itkNiftiImageIO.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
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

/// ITK descriptions carry the source file and line of ITK itself; keep only the message.
std::string itk_message(const itk::ExceptionObject& e) {
  std::string text = e.GetDescription() ? e.GetDescription() : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text.empty() ? std::string("unknown ITK error") : text;
}

itk::NiftiImageIO::Pointer make_nifti_io() {
  auto io = itk::NiftiImageIO::New();
  // Analyze 7.5 files have no reliable orientation: refuse them rather than guess.
  io->SetLegacyAnalyze75Mode(itk::NiftiImageIOEnums::Analyze75Flavor::AnalyzeReject);
  return io;
}

// ---- the NIfTI-1 header fields that describe the voxel block ------------------------------

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

/// What the voxel reader needs from the header, read without ITK.
struct DataLayout {
  int version = 1;       ///< NIfTI-1 or NIfTI-2
  bool swapped = false;  ///< file byte order differs from this machine's
  std::array<long long, 8> dim{};
  StoredType type{0, nullptr, 0};
  std::uint64_t vox_offset = 352;
  double slope = 1.0, inter = 0.0;  ///< scl_slope/scl_inter, identity when absent
  /// NIfTI-2 only (ITK 5.2 cannot read it): the geometry fields, interpreted here.
  std::array<double, 8> pixdim{};
  int qform_code = 0, sform_code = 0;
  std::array<double, 6> quatern{};  ///< b, c, d, qoffset x, y, z
  std::array<double, 12> srow{};    ///< srow_x, srow_y, srow_z
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

/// Scaling as NIfTI defines it: scl_slope 0 (or not finite) means "no scaling".
void set_scaling(DataLayout& d, double slope, double inter) {
  if (std::isfinite(slope) && slope != 0.0) {
    d.slope = slope;
    d.inter = std::isfinite(inter) ? inter : 0.0;
  }
}

/// The NIfTI-2 header (540 bytes, layout of nifti2.h: 64-bit dims and offsets, double
/// geometry). Single-file only ("n+2").
void read_nifti2_fields(const std::string& path, const unsigned char* h, DataLayout& d) {
  if (std::memcmp(h + 4, "n+2\0\r\n\032\n", 8) != 0) {
    const bool two_file = std::memcmp(h + 4, "ni2", 4) == 0;
    throw InputError(path, "",
                     two_file ? "header of a two-file NIfTI-2 (.hdr/.img); expected a single .nii"
                              : "no NIfTI-2 magic 'n+2' in a 540-byte header");
  }
  d.version = 2;
  d.type = stored_type(field<std::int16_t>(h, 12, d.swapped));
  for (int i = 0; i < 8; ++i) d.dim[i] = field<std::int64_t>(h, 16 + 8 * i, d.swapped);
  for (int i = 0; i < 8; ++i) d.pixdim[i] = field<double>(h, 104 + 8 * i, d.swapped);
  const std::int64_t offset = field<std::int64_t>(h, 168, d.swapped);
  if (offset < 540) throw InputError(path, "", "invalid vox_offset in the NIfTI-2 header");
  d.vox_offset = static_cast<std::uint64_t>(offset);
  set_scaling(d, field<double>(h, 176, d.swapped), field<double>(h, 184, d.swapped));
  d.qform_code = field<std::int32_t>(h, 344, d.swapped);
  d.sform_code = field<std::int32_t>(h, 348, d.swapped);
  for (int i = 0; i < 6; ++i) d.quatern[i] = field<double>(h, 352 + 8 * i, d.swapped);
  for (int i = 0; i < 12; ++i) d.srow[i] = field<double>(h, 400 + 8 * i, d.swapped);
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
  DataLayout d;
  if (size == 540 || field<std::int32_t>(h, 0, true) == 540) {
    d.swapped = size != 540;
    if (got < 540) throw InputError(path, "", "truncated: the file ends inside the NIfTI-2 header");
    read_nifti2_fields(path, h, d);
    return d;
  }
  if (size == 348) {
    d.swapped = false;
  } else if (field<std::int32_t>(h, 0, true) == 348) {
    d.swapped = true;
  } else {
    throw InputError(path, "",
                     "not a NIfTI file (expected a 348-byte NIfTI-1 or 540-byte NIfTI-2 header)");
  }
  if (got < 348) {
    throw InputError(path, "", "truncated: the file ends inside the 348-byte header");
  }
  if (std::memcmp(h + 344, "n+1", 4) != 0) {
    const bool two_file = std::memcmp(h + 344, "ni1", 4) == 0;
    throw InputError(path, "",
                     two_file ? "header of a two-file NIfTI (.hdr/.img); expected a single .nii"
                              : "no NIfTI magic 'n+1' (an Analyze 7.5 file?); expected NIfTI-1");
  }
  for (int i = 0; i < 8; ++i) d.dim[i] = field<std::int16_t>(h, 40 + 2 * i, d.swapped);
  // Geometry fields must be finite and of plausible size (|v| <= 1e6, i.e. a kilometre)
  // before ITK sees them: its matrix code (VNL) calls abort() on a NaN, and its SVD of the
  // orientation never returns for huge values (both found by fuzzing, tests/fuzz).
  auto finite = [&](std::size_t offset, int count, const char* what) {
    for (int i = 0; i < count; ++i) {
      const float v = field<float>(h, offset + 4 * i, d.swapped);
      if (!std::isfinite(v) || std::abs(v) > 1e6f) {
        throw InputError(path, "", std::string("non-finite or implausibly large ") + what +
                                       " in the header");
      }
    }
  };
  finite(76 + 4, static_cast<int>(std::clamp<long long>(d.dim[0], 0, 7)), "pixdim (voxel size)");
  if (field<std::int16_t>(h, 252, d.swapped) > 0) finite(256, 6, "qform (quatern/qoffset)");
  if (field<std::int16_t>(h, 254, d.swapped) > 0) finite(280, 12, "sform (srow_x/y/z)");
  d.type = stored_type(field<std::int16_t>(h, 70, d.swapped));
  const float offset = field<float>(h, 108, d.swapped);
  if (!(offset >= 348.0f && offset < 1e15f) || offset != std::floor(offset)) {
    throw InputError(path, "", "invalid vox_offset in the header");
  }
  d.vox_offset = static_cast<std::uint64_t>(offset);
  set_scaling(d, field<float>(h, 112, d.swapped), field<float>(h, 116, d.swapped));
  return d;
}

/// Geometry of a NIfTI-2 header, by the NIfTI rules: the sform when sform_code > 0, else the
/// qform (quaternion, qfac from pixdim[0]) when qform_code > 0, else pixdim alone; then RAS
/// (as stored) to LPS (as ITK and perfq use).
void nifti2_geometry(const std::string& path, const DataLayout& d, Geometry& g) {
  double m[3][4] = {};  // RAS affine: index → mm
  if (d.sform_code > 0) {
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 4; ++c) m[r][c] = d.srow[4 * r + c];
    }
  } else if (d.qform_code > 0) {
    const double b = d.quatern[0], c = d.quatern[1], q = d.quatern[2];
    const double a = std::sqrt(std::max(0.0, 1.0 - (b * b + c * c + q * q)));
    const double rot[3][3] = {{a * a + b * b - c * c - q * q, 2 * (b * c - a * q), 2 * (b * q + a * c)},
                              {2 * (b * c + a * q), a * a + c * c - b * b - q * q, 2 * (c * q - a * b)},
                              {2 * (b * q - a * c), 2 * (c * q + a * b), a * a + q * q - c * c - b * b}};
    const double qfac = d.pixdim[0] < 0 ? -1.0 : 1.0;
    const double scale[3] = {d.pixdim[1], d.pixdim[2], qfac * d.pixdim[3]};
    for (int r = 0; r < 3; ++r) {
      for (int k = 0; k < 3; ++k) m[r][k] = rot[r][k] * scale[k];
      m[r][3] = d.quatern[3 + r];
    }
  } else {
    for (int k = 0; k < 3; ++k) m[k][k] = d.pixdim[k + 1] != 0.0 ? std::abs(d.pixdim[k + 1]) : 1.0;
  }
  const double flip[3] = {-1.0, -1.0, 1.0};
  for (int a = 0; a < 3; ++a) {
    const double length = std::sqrt(m[0][a] * m[0][a] + m[1][a] * m[1][a] + m[2][a] * m[2][a]);
    if (!(length > 0.0) || !std::isfinite(length)) {
      throw InputError(path, "", "the NIfTI-2 orientation has a zero or invalid axis");
    }
    g.spacing[a] = length;
    for (int r = 0; r < 3; ++r) g.direction[3 * r + a] = flip[r] * m[r][a] / length;
  }
  for (int r = 0; r < 3; ++r) {
    g.origin[r] = flip[r] * m[r][3];
    if (!std::isfinite(g.origin[r])) {
      throw InputError(path, "", "the NIfTI-2 orientation has a non-finite origin");
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

/// Opens `path` and reads its header. Refuses what read_nifti cannot represent.
Header read_header(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(path, "", "file not found");
  if (fs::is_directory(path, ec)) throw InputError(path, "", "is a directory, expected a file");
  if (nifti_extension(path).empty()) {
    throw InputError(path, "", "expected a NIfTI file name ending in .nii or .nii.gz");
  }
  Header h;
  h.layout = read_layout(path);
  h.info.stored_type = type_name(h.layout.type);
  if (h.layout.type.bytes == 0) {
    throw InputError(path, "",
                     "unsupported voxel type " + h.info.stored_type +
                         "; expected one real number per voxel (integer or float)");
  }

  if (h.layout.version == 2) {
    // ITK 5.2 reads NIfTI-1 only: dimensions and geometry come from the header read here.
    const auto& dim = h.layout.dim;
    if (dim[0] < 1 || dim[0] > 7) throw InputError(path, "", "invalid dim[0] in the NIfTI-2 header");
    // 64-bit dimensions: their product (times 8 bytes) must not wrap around (found by fuzzing,
    // tests/fuzz: a wrapped product read as an empty image on a huge grid).
    constexpr std::uint64_t kMaxVoxels = std::uint64_t{1} << 59;
    std::uint64_t total = 1;
    for (long long i = 1; i <= dim[0]; ++i) {
      if (dim[i] < 1) throw InputError(path, "", "has a zero-sized or negative dimension");
      if (i > 4 && dim[i] > 1) {
        throw InputError(path, "", "has " + std::to_string(dim[0]) +
                                       " dimensions; expected a 3D or 4D image");
      }
      if (static_cast<std::uint64_t>(dim[i]) > kMaxVoxels / total) {
        throw InputError(path, "", "has too many voxels (the product of its dimensions overflows)");
      }
      total *= static_cast<std::uint64_t>(dim[i]);
    }
    Geometry& g = h.info.geometry;
    for (int a = 0; a < 3; ++a) g.dims[a] = a + 1 <= dim[0] ? static_cast<std::size_t>(dim[a + 1]) : 1;
    h.info.volumes = dim[0] >= 4 ? static_cast<std::size_t>(dim[4]) : 1;
    nifti2_geometry(path, h.layout, g);
    return h;
  }

  auto io = make_nifti_io();
  try {
    io->SetFileName(path);
    io->ReadImageInformation();
  } catch (const itk::ExceptionObject& e) {
    throw InputError(path, "", "cannot read the NIfTI header: " + itk_message(e));
  } catch (const std::exception& e) {
    throw InputError(path, "", std::string("cannot read the NIfTI header: ") + e.what());
  }
  const unsigned dims = io->GetNumberOfDimensions();
  if (io->GetNumberOfComponents() != 1) {
    throw InputError(path, "",
                     "has " + std::to_string(io->GetNumberOfComponents()) +
                         " components per voxel (vector intent); expected one");
  }
  if (dims > 4) {
    throw InputError(path, "",
                     "has " + std::to_string(dims) + " dimensions; expected a 3D or 4D image");
  }
  if (dims < 1) throw InputError(path, "", "has no dimensions");

  Geometry& g = h.info.geometry;
  for (unsigned a = 0; a < 3; ++a) {
    if (a < dims) {
      g.dims[a] = io->GetDimensions(a);
      g.spacing[a] = io->GetSpacing(a);
      g.origin[a] = io->GetOrigin(a);
      const std::vector<double> axis = io->GetDirection(a);  // column a of the direction
      for (unsigned r = 0; r < 3; ++r) g.direction[3 * r + a] = r < axis.size() ? axis[r] : 0.0;
    } else {
      g.dims[a] = 1;  // a 1D/2D file: unit spacing, axis along itself
      g.spacing[a] = 1.0;
      g.origin[a] = 0.0;
      for (unsigned r = 0; r < 3; ++r) g.direction[3 * r + a] = r == a ? 1.0 : 0.0;
    }
  }
  h.info.volumes = dims == 4 ? io->GetDimensions(3) : 1;
  if (g.voxel_count() == 0 || h.info.volumes == 0) {
    throw InputError(path, "", "has a zero-sized dimension");
  }
  // The voxel block holds every dimension the header lists; ITK only dropped trailing 1s.
  // Multiplied with a bound, so that no header makes the product overflow (undefined).
  const long long expected = static_cast<long long>(g.voxel_count() * h.info.volumes);
  const long long rank = h.layout.dim[0];
  long long stored = 1;
  bool consistent = rank >= 1 && rank <= 7;
  for (long long i = 1; consistent && i <= rank; ++i) {
    const long long n = h.layout.dim[i];
    consistent = n >= 1 && stored <= expected / n;
    if (consistent) stored *= n;
  }
  if (!consistent || stored != expected) {
    throw InputError(path, "", "inconsistent dimensions in the header");
  }
  return h;
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
  // Reading past the data makes zlib check the gzip trailer (CRC and length).
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
  auto io = make_nifti_io();
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
