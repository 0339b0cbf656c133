// Reading NIfTI images: the header (nifti_header.cpp), then the voxel block (a sound .nii.gz
// inflated whole with libdeflate; anything else, .nii.gz and plain .nii alike, streamed with
// zlib), after checking that the image fits in the memory left to
// the process. ITK's reader is not used: the niftilib inside ITK 5.2 silently sets NaN/Inf
// voxels to 0 and zero-fills a truncated data block, and perfq must report both.
#include <perfq/errors.hpp>
#include <perfq/io/nifti.hpp>

#include "nifti_internal.hpp"

#include "parallel.hpp"

#include <fcntl.h>
#include <libdeflate.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

namespace fs = std::filesystem;

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace {

using detail::DataLayout;
using detail::GzFile;
using detail::swap_bytes;

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

/// The stored values at `src` as P at `dst` (may be the same place), scaled, on `threads`
/// threads (0: OpenMP's default) in blocks; stored floats of P's type, in the machine's byte
/// order and unscaled, are P already and are not touched.
template <class P>
void convert_any(const unsigned char* src, std::size_t count, const DataLayout& d, P* dst,
                 int threads = 0);

template <class P>
void convert_block(const unsigned char* src, std::size_t count, const DataLayout& d, P* dst) {
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

template <class P>
void convert_any(const unsigned char* src, std::size_t count, const DataLayout& d, P* dst,
                 int threads) {
  const bool identity = d.type.bytes == static_cast<int>(sizeof(P)) && !d.swapped &&
                        d.slope == 1.0 && d.inter == 0.0 &&
                        ((std::is_same_v<P, float> && d.type.code == 16) ||
                         (std::is_same_v<P, double> && d.type.code == 64));
  if (identity) {
    if (src != reinterpret_cast<const unsigned char*>(dst))
      std::memcpy(dst, src, count * sizeof(P));
    return;
  }
  // Blocks never straddle: converting in place, a block's destination lies within its source
  // when the stored value is at least as wide as P, and read_raw converts in place only then.
  constexpr std::size_t kBlock = std::size_t{1} << 16;
  const std::size_t bytes = static_cast<std::size_t>(d.type.bytes);
  const std::size_t blocks = (count + kBlock - 1) / kBlock;
  const bool in_place = src == reinterpret_cast<const unsigned char*>(dst);
  if (in_place && bytes != sizeof(P)) {  // not reached (read_raw); kept safe: one thread
    convert_block(src, count, d, dst);
    return;
  }
  cpu::parallel_for(blocks, threads, [&](std::size_t b) {
    const std::size_t begin = b * kBlock, n = std::min(kBlock, count - begin);
    convert_block(src + begin * bytes, n, d, dst + begin);
  });
}

std::uint32_t get_u32(const unsigned char* in) {
  return static_cast<std::uint32_t>(in[0]) | static_cast<std::uint32_t>(in[1]) << 8 |
         static_cast<std::uint32_t>(in[2]) << 16 | static_cast<std::uint32_t>(in[3]) << 24;
}

/// The members of a gzip file as perfq writes them (detail::kMemberIndexId1/2: each header
/// records the member's length and its content's), found by reading the headers alone:
/// (offset in the file, length, offset in the content, content length) of each. Empty unless
/// every member has exactly that header, the members fill the file and their contents add up
/// to `expected` bytes.
struct IndexedMember {
  std::size_t at, size, out, out_size;
};
std::vector<IndexedMember> indexed_members(const unsigned char* in, std::size_t size,
                                           std::uint64_t expected) {
  std::vector<IndexedMember> members;
  std::size_t at = 0;
  std::uint64_t out = 0;
  while (at < size) {
    const unsigned char* h = in + at;
    if (size - at < detail::kIndexedMemberHeader + 8 || h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 ||
        h[3] != 0x04 || h[10] != 12 || h[11] != 0 || h[12] != detail::kMemberIndexId1 ||
        h[13] != detail::kMemberIndexId2 || h[14] != 8 || h[15] != 0) {
      return {};
    }
    const std::size_t length = get_u32(h + 16), content = get_u32(h + 20);
    if (length < detail::kIndexedMemberHeader + 8 || length > size - at ||
        content > expected - out) {
      return {};
    }
    members.push_back({at, length, static_cast<std::size_t>(out), content});
    at += length;
    out += content;
  }
  if (out != expected) return {};
  return members;
}

/// A gzip file's data inflated whole with libdeflate (about twice zlib's speed) into `out`
/// (room for `expected` bytes), less its first `skip` bytes (the header: out[0] is the
/// file's byte `skip`), when its members hold exactly `expected` bytes and are sound; false
/// otherwise (trailing data, a truncated or corrupt stream, not gzip), and the streaming reader
/// then reads the file and names what is wrong. The file is mapped, not copied. Members that record
/// their sizes (perfq's own files) are inflated side by side on `threads` threads (0: OpenMP's
/// default); any other gzip file one member after another.
bool inflate_whole(const std::string& path, unsigned char* out, std::uint64_t expected,
                   std::uint64_t skip, int threads) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  const bool sized = ::fstat(fd, &st) == 0 && st.st_size >= 18;
  void* mapped =
      sized ? ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0)
            : MAP_FAILED;
  ::close(fd);
  if (mapped == MAP_FAILED) return false;
  const auto size = static_cast<std::size_t>(st.st_size);
  const auto* in = static_cast<const unsigned char*>(mapped);
  bool whole = in[0] == 0x1f && in[1] == 0x8b;
  const std::vector<IndexedMember> members =
      whole ? indexed_members(in, size, expected) : std::vector<IndexedMember>();
  if (members.size() > 1) {
    std::vector<char> sound(members.size(), 0);
    cpu::parallel_for(members.size(), threads, [&](std::size_t m) {
      const IndexedMember& member = members[m];
      libdeflate_decompressor* inflater = libdeflate_alloc_decompressor();
      if (inflater == nullptr) return;
      // Straight into place, but for a member holding skipped bytes (the header): it goes
      // through a buffer of its own.
      const bool whole_member = member.out >= skip;
      std::vector<unsigned char> buffer;
      try {  // nothing may leave the parallel loop: out of memory, the streaming reader says so
        buffer.resize(whole_member ? 0 : member.out_size);
      } catch (const std::bad_alloc&) {
        libdeflate_free_decompressor(inflater);
        return;
      }
      unsigned char* target = whole_member ? out + (member.out - skip) : buffer.data();
      std::size_t used = 0, produced = 0;
      // libdeflate checks the member's CRC-32 and length; it must end where its header says.
      sound[m] =
          libdeflate_gzip_decompress_ex(inflater, in + member.at, member.size, target,
                                        member.out_size, &used, &produced) == LIBDEFLATE_SUCCESS &&
          used == member.size && produced == member.out_size;
      libdeflate_free_decompressor(inflater);
      if (sound[m] && !whole_member && member.out + member.out_size > skip) {
        const std::size_t from = static_cast<std::size_t>(skip - member.out);
        std::memcpy(out, buffer.data() + from, member.out_size - from);
      }
    });
    ::munmap(mapped, size);
    return std::find(sound.begin(), sound.end(), 0) == sound.end();
  }
  libdeflate_decompressor* inflater = whole ? libdeflate_alloc_decompressor() : nullptr;
  std::size_t read = 0, written = 0;
  while (inflater != nullptr && whole && read < size) {  // one gzip member after another
    std::size_t used = 0, produced = 0;
    whole = libdeflate_gzip_decompress_ex(inflater, in + read, size - read, out + written,
                                          static_cast<std::size_t>(expected) - written, &used,
                                          &produced) == LIBDEFLATE_SUCCESS;
    read += used;
    written += produced;
  }
  if (inflater != nullptr) libdeflate_free_decompressor(inflater);
  ::munmap(mapped, size);
  if (!(inflater != nullptr && whole && written == expected)) return false;
  std::memmove(out, out + skip, static_cast<std::size_t>(expected - skip));
  return true;
}

/// Deflate expands data at most 1032-fold: a file that cannot hold the image it claims is left
/// to the streaming reader, which takes memory only as the data come.
constexpr std::uint64_t kMaxDeflateRatio = 1032;

/// An image read as `P` (float, or double where integers must stay exact).
template <class P>
struct Raw {
  NiftiInfo info;
  std::vector<P> values;
};

template <class P>
Raw<P> read_raw(const std::string& path, bool only_3d, const char* what, int threads = 0) {
  detail::Header h = detail::read_header(path);
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
  // A sound .nii.gz inflated whole; anything else streamed below, which names the problem.
  // Stored values of the size of P are inflated into the values' own storage and converted
  // in place (no second copy of the image).
  std::error_code size_error;
  const std::uintmax_t file_size = fs::file_size(path, size_error);
  const std::uint64_t expected = d.vox_offset + static_cast<std::uint64_t>(count) * bytes;
  if (detail::nifti_extension(path) == ".nii.gz" && !size_error &&
      expected / kMaxDeflateRatio <= file_size) {
    try {
      if (bytes == sizeof(P)) {
        raw.values.resize(static_cast<std::size_t>((expected + sizeof(P) - 1) / sizeof(P)));
        auto* base = reinterpret_cast<unsigned char*>(raw.values.data());
        if (inflate_whole(path, base, expected, d.vox_offset, threads)) {
          convert_any(base, count, d, raw.values.data(), threads);
          raw.values.resize(count);
          return raw;
        }
      } else {
        std::vector<unsigned char> whole(static_cast<std::size_t>(expected));
        if (inflate_whole(path, whole.data(), expected, d.vox_offset, threads)) {
          raw.values.resize(count);
          convert_any(whole.data(), count, d, raw.values.data(), threads);
          return raw;
        }
      }
    } catch (const std::bad_alloc&) {
      throw InputError(path, "", "not enough memory to read the image");
    }
    raw.values = std::vector<P>();
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

}  // namespace

Image<float> read_nifti(const std::string& path) { return detail::read_nifti(path, 0); }

namespace detail {
Image<float> read_nifti(const std::string& path, int threads) {
  Raw<float> raw = read_raw<float>(path, false, "image", threads);
  return Image<float>(raw.info.geometry, raw.info.volumes, std::move(raw.values));
}
}  // namespace detail

Image<float> read_nifti_3d(const std::string& path, const Geometry* grid,
                           const std::string& grid_name) {
  Raw<float> raw = read_raw<float>(path, true, "image");
  if (grid != nullptr) require_same_grid(path, raw.info.geometry, *grid, grid_name);
  return Image<float>(raw.info.geometry, 1, std::move(raw.values));
}

void require_same_grid(const std::string& path, const Geometry& geometry, const Geometry& grid,
                       const std::string& grid_name) {
  if (geometry.same_grid(grid)) return;
  auto triple = [](double a, double b, double c) {
    std::ostringstream m;
    m << a << " x " << b << " x " << c;
    return m.str();
  };
  auto dims = [&](const Geometry& g) {
    return triple(double(g.dims[0]), double(g.dims[1]), double(g.dims[2]));
  };
  auto spacing = [&](const Geometry& g) {
    return triple(g.spacing[0], g.spacing[1], g.spacing[2]);
  };
  auto origin = [&](const Geometry& g) { return triple(g.origin[0], g.origin[1], g.origin[2]); };
  std::string m = "not on the grid of " + grid_name + " (";
  if (geometry.dims != grid.dims) {
    m += "dimensions " + dims(geometry) + ", not " + dims(grid);
  } else if (!Geometry{grid.dims, geometry.spacing}.same_grid(Geometry{grid.dims, grid.spacing})) {
    m += "spacing " + spacing(geometry) + " mm, not " + spacing(grid);
  } else if (!Geometry{grid.dims, grid.spacing, geometry.origin}.same_grid(
                 Geometry{grid.dims, grid.spacing, grid.origin})) {
    m += "origin " + origin(geometry) + " mm, not " + origin(grid);
  } else {
    m += "another orientation";
  }
  throw InputError(path, "", m + ")");
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

}  // namespace io
PERFQ_NAMESPACE_END
