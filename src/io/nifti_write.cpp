// Writing NIfTI images (ITK's NiftiImageIO) and text files, each to a temporary name in the
// target's folder that is checked and then renamed, so that a target is replaced whole or not
// at all. ITK is confined to this translation unit: every itk::ExceptionObject is caught here
// and turned into a perfq exception that names the file.
#include <perfq/errors.hpp>
#include <perfq/io/nifti.hpp>

#include "nifti_internal.hpp"
#include "write_util.hpp"

#include "parallel.hpp"

#include <itkImage.h>
#include <itkImageFileWriter.h>
#include <itkNiftiImageIO.h>
#include <libdeflate.h>

#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <new>
#include <string>
#include <system_error>
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
namespace detail {

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

}  // namespace detail

namespace {

using detail::commit;
using detail::GzFile;
using detail::itk_message;
using detail::nifti_extension;
using detail::require_folder;
using detail::temporary_name;

/// Whether the uncompressed file `file` holds at least `bytes` bytes.
bool complete_on_disk(const fs::path& file, std::uintmax_t bytes) {
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(file, ec);
  return !ec && size >= bytes;
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

/// Writes `view` uncompressed (`temp` ends in .nii): header and voxels as NiftiImageIO writes
/// them.
template <class T, unsigned D>
void write_with_itk(View<const T> view, const fs::path& temp) {
  auto writer = itk::ImageFileWriter<itk::Image<T, D>>::New();
  writer->SetImageIO(itk::NiftiImageIO::New());
  writer->SetFileName(temp.string());
  writer->SetUseCompression(false);
  writer->SetInput(wrap<T, D>(view));
  writer->Update();
}

/// Bytes of the file's content per gzip member: small enough to share a map among threads,
/// large enough that the members' headers and restarted dictionaries cost nothing measurable.
constexpr std::size_t kMemberBytes = std::size_t{1} << 20;

/// Little-endian bytes of `value` at `out`.
void put_u16(unsigned char* out, unsigned value) {
  out[0] = static_cast<unsigned char>(value & 0xff);
  out[1] = static_cast<unsigned char>((value >> 8) & 0xff);
}
void put_u32(unsigned char* out, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<unsigned char>((value >> (8 * i)) & 0xff);
}

/// One gzip member holding `content` (RFC 1952): the header with perfq's size record
/// (detail::kMemberIndexId1/2), the raw deflate stream (libdeflate at `deflater`'s level), the
/// CRC-32 and the content's length. Empty when compression fails.
std::vector<unsigned char> indexed_member(libdeflate_compressor* deflater,
                                          const unsigned char* content, std::size_t size) {
  constexpr std::size_t header = detail::kIndexedMemberHeader, trailer = 8;
  std::vector<unsigned char> out(header + libdeflate_deflate_compress_bound(deflater, size) +
                                 trailer);
  const std::size_t packed =
      libdeflate_deflate_compress(deflater, content, size, out.data() + header, out.size());
  if (packed == 0) return {};
  const std::size_t total = header + packed + trailer;
  unsigned char* h = out.data();
  h[0] = 0x1f, h[1] = 0x8b, h[2] = 8;  // gzip, deflate
  h[3] = 0x04;                         // FLG: FEXTRA only
  put_u32(h + 4, 0);                   // MTIME: none (the bytes depend on the content alone)
  h[8] = 4;                            // XFL: fastest compression
  h[9] = 3;                            // OS: Unix
  put_u16(h + 10, 12);                 // XLEN: one subfield of 4 + 8 bytes
  h[12] = detail::kMemberIndexId1, h[13] = detail::kMemberIndexId2;
  put_u16(h + 14, 8);
  put_u32(h + 16, static_cast<std::uint32_t>(total));
  put_u32(h + 20, static_cast<std::uint32_t>(size));
  unsigned char* t = out.data() + header + packed;
  put_u32(t, libdeflate_crc32(0, content, size));
  put_u32(t + 4, static_cast<std::uint32_t>(size));
  out.resize(total);
  return out;
}

/// `data` as consecutive gzip members of kMemberBytes of content each, deflated (libdeflate,
/// level 1: maps of noisy floats hardly compress better at higher levels) on `threads`
/// threads, each member's header recording its sizes (indexed_member) so that perfq's reader
/// can inflate them on several threads too. The bytes do not depend on the thread count.
/// Every gzip reader (zlib's gzread, hence ITK and FSL; Python's gzip, hence nibabel) reads
/// the members as one stream.
std::vector<unsigned char> gzip_members(const std::vector<unsigned char>& data, int threads) {
  const std::size_t members =
      std::max<std::size_t>(1, (data.size() + kMemberBytes - 1) / kMemberBytes);
  std::vector<std::vector<unsigned char>> parts(members);
  std::vector<char> failed(members, 0);
  cpu::parallel_for(members, threads, [&](std::size_t m) {
    const std::size_t begin = m * kMemberBytes;
    const std::size_t size = std::min(kMemberBytes, data.size() - begin);
    libdeflate_compressor* deflater = libdeflate_alloc_compressor(1);
    if (deflater == nullptr) {
      failed[m] = 1;
      return;
    }
    try {  // nothing may leave the parallel loop: out of memory fails the write below
      parts[m] = indexed_member(deflater, data.data() + begin, size);
    } catch (const std::bad_alloc&) {
      parts[m].clear();
    }
    libdeflate_free_compressor(deflater);
    failed[m] = parts[m].empty();
  });
  if (std::find(failed.begin(), failed.end(), 1) != failed.end()) {
    throw std::runtime_error("compression failed (out of memory?)");
  }
  std::size_t total = 0;
  for (const auto& part : parts) total += part.size();
  std::vector<unsigned char> out;
  out.reserve(total);
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

/// Compresses the uncompressed NIfTI file `raw` into `temp` (.nii.gz) and removes `raw`. The
/// compressed bytes come from memory, so the file is complete when it holds all of them.
void compress_file(const fs::path& raw, const fs::path& temp, int threads) {
  std::vector<unsigned char> data;
  {
    std::ifstream in(raw, std::ios::binary | std::ios::ate);
    if (!in) throw std::runtime_error("cannot read back the file written");
    data.resize(static_cast<std::size_t>(in.tellg()));
    in.seekg(0);
    in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(data.size()));
    if (!in) throw std::runtime_error("cannot read back the file written");
  }
  std::error_code ignored;
  fs::remove(raw, ignored);
  const std::vector<unsigned char> packed = gzip_members(data, threads);
  std::ofstream out(temp, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot create a file in its folder");
  out.write(reinterpret_cast<const char*>(packed.data()),
            static_cast<std::streamsize>(packed.size()));
  out.close();
  std::error_code ec;
  if (!out || fs::file_size(temp, ec) != packed.size() || ec) {
    throw std::runtime_error("the file was not written completely (disk full or no permission?)");
  }
}

template <class T>
void write_image(const std::string& path, View<const T> view, int threads) {
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
  // ITK writes the header and voxels uncompressed; perfq compresses them itself, in parallel.
  const fs::path raw =
      compress ? fs::path(temp.string().substr(0, temp.string().size() - 3)) : temp;
  auto discard = [&temp, &raw]() {
    std::error_code ignored;
    fs::remove(temp, ignored);
    fs::remove(raw, ignored);
  };
  try {
    if (view.volumes > 1) {
      write_with_itk<T, 4>(view, raw);
    } else {
      write_with_itk<T, 3>(view, raw);
    }
    // niftilib reports write failures (disk full, no permission) only on stderr: check what
    // reached the disk before it is used.
    const std::uintmax_t expected = 352 + static_cast<std::uintmax_t>(view.size()) * sizeof(T);
    if (!complete_on_disk(raw, expected)) {
      throw std::runtime_error("the file was not written completely (disk full or no permission?)");
    }
    if (compress) compress_file(raw, temp, threads);
  } catch (const itk::ExceptionObject& e) {
    discard();
    throw Error(path + ": cannot write: " + itk_message(e));
  } catch (const std::exception& e) {
    discard();
    throw Error(path + ": cannot write: " + e.what());
  }

  commit(temp, path);
}

}  // namespace

namespace detail {

void write_nifti(const std::string& path, View<const float> image, int threads) {
  write_image(path, image, threads);
}

void write_nifti(const std::string& path, View<const std::uint8_t> image, int threads) {
  write_image(path, image, threads);
}

}  // namespace detail

void write_nifti(const std::string& path, View<const float> image) { write_image(path, image, 0); }

void write_nifti(const std::string& path, View<const std::uint8_t> image) {
  write_image(path, image, 0);
}

void write_nifti(const std::string& path, View<const std::int32_t> image) {
  write_image(path, image, 0);
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
