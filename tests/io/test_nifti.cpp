// NIfTI reading and writing: exact geometry and values, stored types, scaling, errors and
// atomic writes. Files with stored types perfq does not write (int16 with scaling, float64,
// NIfTI-2) and hostile headers are crafted byte by byte here, which also checks perfq's
// reading of the geometry against headers written independently of it (and of ITK, which
// writes the round-trip files).
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/phantom.hpp>

#include <gtest/gtest.h>
#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkNiftiImageIO.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#ifdef _WIN32
#include <process.h>
#else
#include <unistd.h>
#endif

namespace fs = std::filesystem;
using perfq::Geometry;
using perfq::Image;

namespace {

/// A fresh folder for one test under PERFQ_TEST_TMP, removed when the test passes.
class NiftiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
#ifdef _WIN32
    const int pid = _getpid();
#else
    const int pid = static_cast<int>(getpid());
#endif
    dir_ = fs::path(PERFQ_TEST_TMP) /
           (std::string("nifti-") + info->name() + "-" + std::to_string(pid));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  fs::path dir_;
};

/// Row-major rotation R = Rz(c) Ry(b) Rx(a).
std::array<double, 9> rotation(double a, double b, double c) {
  const double ca = std::cos(a), sa = std::sin(a), cb = std::cos(b), sb = std::sin(b),
               cc = std::cos(c), sc = std::sin(c);
  return {cc * cb,
          cc * sb * sa - sc * ca,
          cc * sb * ca + sc * sa,
          sc * cb,
          sc * sb * sa + cc * ca,
          sc * sb * ca - cc * sa,
          -sb,
          cb * sa,
          cb * ca};
}

/// Anisotropic, oblique, off-centre: what a tilted clinical acquisition looks like.
Geometry oblique_geometry() {
  Geometry g;
  g.dims = {7, 6, 5};
  g.spacing = {1.5, 2.25, 3.5};
  g.origin = {-91.25, 12.5, 40.75};
  g.direction = rotation(0.21, -0.13, 0.37);
  return g;
}

void expect_same_geometry(const Geometry& a, const Geometry& b, double tol = 1e-5) {
  EXPECT_EQ(a.dims, b.dims);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(a.spacing[i], b.spacing[i], tol) << "spacing " << i;
    EXPECT_NEAR(a.origin[i], b.origin[i], tol) << "origin " << i;
  }
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(a.direction[i], b.direction[i], tol) << "direction " << i;
}

template <class T>
Image<T> ramp(const Geometry& g, std::size_t volumes, double scale, double offset) {
  Image<T> image(g, volumes);
  for (std::size_t i = 0; i < image.size(); ++i) {
    image[i] = static_cast<T>(offset + scale * static_cast<double>(i % 251) +
                              static_cast<double>(i / 251));
  }
  return image;
}

// ---- a NIfTI header written by hand (layouts from nifti1.h / nifti2.h) -------------------

class Bytes {
 public:
  explicit Bytes(std::size_t size, bool swap = false) : data_(size, 0), swap_(swap) {}
  /// Stores `value` at `offset`, byte-reversed when the file is of the other byte order.
  template <class T>
  void put(std::size_t offset, T value) {
    std::memcpy(data_.data() + offset, &value, sizeof(T));
    if (swap_) std::reverse(data_.begin() + offset, data_.begin() + offset + sizeof(T));
  }
  void put_text(std::size_t offset, const char* text, std::size_t size) {
    std::memcpy(data_.data() + offset, text, size);
  }
  template <class T>
  T get(std::size_t offset) const {
    T value;
    std::memcpy(&value, data_.data() + offset, sizeof(T));
    return value;
  }
  template <class T>
  void append(const std::vector<T>& values) {
    const std::size_t at = data_.size();
    data_.resize(at + values.size() * sizeof(T));
    for (std::size_t i = 0; i < values.size(); ++i) put<T>(at + i * sizeof(T), values[i]);
  }
  void save(const std::string& path) const {
    std::ofstream out(path, std::ios::binary);
    out.write(data_.data(), static_cast<std::streamsize>(data_.size()));
  }
  static Bytes load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Bytes b(0);
    b.data_ = std::move(data);
    return b;
  }
  std::size_t size() const { return data_.size(); }
  void flip_byte(std::size_t offset) { data_[offset] = static_cast<char>(data_[offset] ^ 0x5a); }

 private:
  std::vector<char> data_;
  bool swap_ = false;
};

/// A NIfTI-1 single-file header (352 bytes including the empty extension flag).
struct Nifti1Header {
  std::array<int16_t, 8> dim{3, 1, 1, 1, 1, 1, 1, 1};
  int16_t datatype = 16;
  int16_t bitpix = 32;
  std::array<float, 8> pixdim{1, 1, 1, 1, 1, 1, 1, 1};
  float scl_slope = 0, scl_inter = 0;
  int16_t qform_code = 0, sform_code = 0;
  std::array<float, 6> quatern{0, 0, 0, 0, 0, 0};  // b, c, d, qoffset x, y, z
  std::array<float, 12> srow{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};

  /// The header; `big_endian` writes it (and data appended later) in the other byte order.
  Bytes bytes(bool big_endian = false) const {
    Bytes b(352, big_endian);
    b.put<int32_t>(0, 348);
    for (int i = 0; i < 8; ++i) b.put<int16_t>(40 + 2 * i, dim[i]);
    b.put<int16_t>(70, datatype);
    b.put<int16_t>(72, bitpix);
    for (int i = 0; i < 8; ++i) b.put<float>(76 + 4 * i, pixdim[i]);
    b.put<float>(108, 352.0f);  // vox_offset
    b.put<float>(112, scl_slope);
    b.put<float>(116, scl_inter);
    b.put<char>(123, 2 | 8);  // xyzt_units: mm, s
    b.put<int16_t>(252, qform_code);
    b.put<int16_t>(254, sform_code);
    for (int i = 0; i < 6; ++i) b.put<float>(256 + 4 * i, quatern[i]);
    for (int i = 0; i < 12; ++i) b.put<float>(280 + 4 * i, srow[i]);
    b.put_text(344, "n+1\0", 4);
    return b;
  }
};

/// Sets an sform (RAS, as stored) from an ITK-style LPS geometry.
void set_sform_from_lps(Nifti1Header& h, const Geometry& g) {
  const double flip[3] = {-1, -1, 1};  // LPS <-> RAS
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) {
      h.srow[4 * r + c] = static_cast<float>(flip[r] * g.direction[3 * r + c] * g.spacing[c]);
    }
    h.srow[4 * r + 3] = static_cast<float>(flip[r] * g.origin[r]);
  }
  h.sform_code = 1;
  for (int a = 0; a < 3; ++a) {
    h.dim[a + 1] = static_cast<int16_t>(g.dims[a]);
    h.pixdim[a + 1] = static_cast<float>(g.spacing[a]);
  }
}

/// qform rotation (row-major, RAS) and qfac-scaled spacing decoded from a NIfTI-1 header.
std::array<double, 12> qform_matrix(const Bytes& b) {
  const double qb = b.get<float>(256), qc = b.get<float>(260), qd = b.get<float>(264);
  const double qa = std::sqrt(std::max(0.0, 1.0 - (qb * qb + qc * qc + qd * qd)));
  const double r[9] = {qa * qa + qb * qb - qc * qc - qd * qd,
                       2 * (qb * qc - qa * qd),
                       2 * (qb * qd + qa * qc),
                       2 * (qb * qc + qa * qd),
                       qa * qa + qc * qc - qb * qb - qd * qd,
                       2 * (qc * qd - qa * qb),
                       2 * (qb * qd - qa * qc),
                       2 * (qc * qd + qa * qb),
                       qa * qa + qd * qd - qc * qc - qb * qb};
  const double qfac = b.get<float>(76) < 0 ? -1.0 : 1.0;
  const double s[3] = {b.get<float>(80), b.get<float>(84), qfac * b.get<float>(88)};
  std::array<double, 12> m{};
  for (int row = 0; row < 3; ++row) {
    for (int c = 0; c < 3; ++c) m[4 * row + c] = r[3 * row + c] * s[c];
    m[4 * row + 3] = b.get<float>(268 + 4 * row);
  }
  return m;
}

void expect_input_error(const std::string& file, const std::string& needle) {
  try {
    perfq::io::read_nifti(file);
    FAIL() << file << " was read";
  } catch (const perfq::InputError& e) {
    EXPECT_EQ(e.file(), file);
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    FAIL() << "not an InputError: " << e.what();
  }
}

// ---- round trips ---------------------------------------------------------------------------

TEST_F(NiftiTest, RoundTripFloat3dObliqueGeometry) {
  const Geometry g = oblique_geometry();
  const auto image = ramp<float>(g, 1, 0.37, -12.0);
  for (const char* name : {"vol.nii", "vol.nii.gz"}) {
    SCOPED_TRACE(name);
    perfq::io::write_nifti(path(name), image);
    const auto info = perfq::io::read_nifti_info(path(name));
    EXPECT_EQ(info.volumes, 1u);
    EXPECT_EQ(info.stored_type, "float32");
    expect_same_geometry(info.geometry, g);
    const auto back = perfq::io::read_nifti(path(name));
    EXPECT_EQ(back.volumes(), 1u);
    expect_same_geometry(back.geometry(), g);
    EXPECT_EQ(back.values(), image.values());  // float32 stored: bit-exact
  }
}

TEST_F(NiftiTest, RoundTripFloat4dObliqueGeometry) {
  Geometry g = oblique_geometry();
  g.direction = rotation(-0.4, 0.25, 1.1);
  const auto series = ramp<float>(g, 9, -1.25, 1000.0);
  perfq::io::write_nifti(path("series.nii.gz"), series);
  const auto info = perfq::io::read_nifti_info(path("series.nii.gz"));
  EXPECT_EQ(info.volumes, 9u);
  expect_same_geometry(info.geometry, g);
  const auto back = perfq::io::read_nifti(path("series.nii.gz"));
  ASSERT_EQ(back.volumes(), 9u);
  expect_same_geometry(back.geometry(), g);
  EXPECT_EQ(back.values(), series.values());
  EXPECT_FLOAT_EQ(back.at(3, 2, 4, 7), series.at(3, 2, 4, 7));
}

TEST_F(NiftiTest, LeftHandedDirectionRoundTrips) {
  Geometry g = oblique_geometry();
  // Flip the third axis: determinant -1, as in many radiological-order acquisitions.
  for (int r = 0; r < 3; ++r) g.direction[3 * r + 2] = -g.direction[3 * r + 2];
  const auto image = ramp<float>(g, 1, 1.0, 0.0);
  perfq::io::write_nifti(path("left.nii"), image);
  const auto back = perfq::io::read_nifti(path("left.nii"));
  expect_same_geometry(back.geometry(), g);
  EXPECT_EQ(back.values(), image.values());
}

TEST_F(NiftiTest, WrittenQformAndSformAgree) {
  const Geometry g = oblique_geometry();
  perfq::io::write_nifti(path("qs.nii"), ramp<float>(g, 1, 1.0, 0.0));
  const Bytes b = Bytes::load(path("qs.nii"));
  ASSERT_GE(b.size(), 352u);
  EXPECT_EQ(b.get<int32_t>(0), 348);
  EXPECT_GT(b.get<int16_t>(252), 0) << "qform_code";
  EXPECT_GT(b.get<int16_t>(254), 0) << "sform_code";
  const auto q = qform_matrix(b);
  const double flip[3] = {-1, -1, 1};
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 4; ++c) {
      const double s = b.get<float>(280 + 16 * r + 4 * c);
      EXPECT_NEAR(q[4 * r + c], s, 1e-5) << "row " << r << " column " << c;
      // And both say what the geometry says (RAS on disk, LPS in memory).
      const double expected =
          c < 3 ? flip[r] * g.direction[3 * r + c] * g.spacing[c] : flip[r] * g.origin[r];
      EXPECT_NEAR(s, expected, 1e-5) << "row " << r << " column " << c;
    }
  }
}

TEST_F(NiftiTest, CompressedWhenNameEndsInGz) {
  perfq::io::write_nifti(path("a.nii.gz"), ramp<float>(oblique_geometry(), 1, 1.0, 0.0));
  const Bytes b = Bytes::load(path("a.nii.gz"));
  ASSERT_GE(b.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(b.get<char>(0)), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(b.get<char>(1)), 0x8b);
}

TEST_F(NiftiTest, WrittenGzipIsIndependentMembersHoldingTheUncompressedFile) {
  // perfq compresses 1 MiB of the file per gzip member, in parallel: zlib's own inflater
  // (as gzread in ITK and FSL, and Python's gzip in nibabel) must read the members one after
  // another, each complete and checked (CRC and length), and together give the .nii's bytes.
  perfq::Geometry g = oblique_geometry();
  g.dims = {96, 80, 50};  // 1.5 MiB of floats: two members
  const auto image = ramp<float>(g, 1, 0.25, -3.0);
  perfq::io::write_nifti(path("big.nii"), image);
  perfq::io::write_nifti(path("big.nii.gz"), image);
  std::ifstream plain_in(path("big.nii"), std::ios::binary);
  const std::string plain((std::istreambuf_iterator<char>(plain_in)),
                          std::istreambuf_iterator<char>());
  std::ifstream gz_in(path("big.nii.gz"), std::ios::binary);
  const std::string gz((std::istreambuf_iterator<char>(gz_in)), std::istreambuf_iterator<char>());
  std::string inflated;
  std::size_t members = 0, at = 0;
  while (at < gz.size()) {
    z_stream z{};
    ASSERT_EQ(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);  // gzip only, one member
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data() + at));
    z.avail_in = static_cast<uInt>(gz.size() - at);
    std::vector<char> out(1 << 16);
    int rc = Z_OK;
    while (rc == Z_OK) {
      z.next_out = reinterpret_cast<Bytef*>(out.data());
      z.avail_out = static_cast<uInt>(out.size());
      rc = inflate(&z, Z_NO_FLUSH);
      inflated.append(out.data(), out.size() - z.avail_out);
    }
    ASSERT_EQ(rc, Z_STREAM_END) << "member " << members;  // CRC and length checked
    at = gz.size() - z.avail_in;
    inflateEnd(&z);
    ++members;
  }
  EXPECT_EQ(members, (plain.size() + (1u << 20) - 1) >> 20);
  EXPECT_EQ(inflated, plain);  // header and voxels, byte for byte
  // And perfq's reader: whole (libdeflate) and as a stream give the image.
  const auto read = perfq::io::read_nifti(path("big.nii.gz"));
  ASSERT_EQ(read.size(), image.size());
  for (std::size_t i = 0; i < image.size(); ++i) ASSERT_EQ(read[i], image[i]) << i;
  // And ITK's own NIfTI reader (niftilib through znzlib's gzread), as other tools read it.
  using ItkImage = itk::Image<float, 3>;
  auto reader = itk::ImageFileReader<ItkImage>::New();
  reader->SetImageIO(itk::NiftiImageIO::New());
  reader->SetFileName(path("big.nii.gz"));
  reader->Update();
  const ItkImage* itk_image = reader->GetOutput();
  const auto size = itk_image->GetLargestPossibleRegion().GetSize();
  ASSERT_EQ(size[0] * size[1] * size[2], image.size());
  const float* values = itk_image->GetBufferPointer();
  for (std::size_t i = 0; i < image.size(); ++i) ASSERT_EQ(values[i], image[i]) << i;
}

TEST_F(NiftiTest, WrittenMembersRecordTheirSizesAndAreReadAlikeOnAnyThreadCount) {
  // Each member's header carries RFC 1952's extra field with one subfield 'P' 'Q' of 8 bytes:
  // the member's length in the file and its content's, so that perfq's reader finds every
  // member without inflating any and inflates them side by side.
  perfq::Geometry g = oblique_geometry();
  g.dims = {96, 80, 50};  // 1.5 MiB of floats: two members
  const auto image = ramp<float>(g, 1, 0.25, -3.0);
  perfq::io::write_nifti(path("big.nii"), image);
  perfq::io::write_nifti(path("big.nii.gz"), image);
  const std::uintmax_t plain_size = fs::file_size(path("big.nii"));
  auto read_file = [](const std::string& name) {
    std::ifstream in(name, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string gz = read_file(path("big.nii.gz"));
  auto byte = [&](std::size_t i) {
    return static_cast<unsigned>(static_cast<unsigned char>(gz[i]));
  };
  auto u16 = [&](std::size_t i) { return byte(i) | byte(i + 1) << 8; };
  auto u32 = [&](std::size_t i) { return u16(i) | u16(i + 2) << 16; };
  std::size_t at = 0, content = 0, members = 0;
  std::vector<std::size_t> starts;
  while (at < gz.size()) {
    SCOPED_TRACE("member " + std::to_string(members));
    ASSERT_LE(at + 24, gz.size());
    EXPECT_EQ(byte(at), 0x1fu);
    EXPECT_EQ(byte(at + 1), 0x8bu);
    EXPECT_EQ(byte(at + 2), 8u);     // deflate
    EXPECT_EQ(byte(at + 3), 0x04u);  // FEXTRA, nothing else
    EXPECT_EQ(u16(at + 10), 12u);    // XLEN
    EXPECT_EQ(byte(at + 12), unsigned('P'));
    EXPECT_EQ(byte(at + 13), unsigned('Q'));
    EXPECT_EQ(u16(at + 14), 8u);  // the subfield's length
    const std::size_t length = u32(at + 16), size = u32(at + 20);
    ASSERT_LE(at + length, gz.size());
    EXPECT_EQ(u32(at + length - 4), size);  // ISIZE, the trailer's content length
    EXPECT_LE(size, 1u << 20);
    starts.push_back(at);
    at += length;
    content += size;
    ++members;
  }
  EXPECT_EQ(at, gz.size());
  EXPECT_EQ(content, plain_size);
  ASSERT_EQ(members, 2u);

  // Read on 1, 2 and 3 threads (the ASL series and its M0 of an ASL-BIDS dataset): the same
  // values, those the phantom wrote.
  perfq::PhantomOptions o;
  o.dims = {64, 64, 24};
  o.delays = {0.5, 1.0, 1.5};
  o.repeats = 2;  // 12 volumes: 4.7 MB, five members
  o.snr = 5;
  const perfq::Phantom phantom = perfq::make_phantom(o);
  const std::string asl = perfq::io::write_phantom_bids(phantom, path("ds"));
  for (int threads : {1, 2, 3}) {
    SCOPED_TRACE(std::to_string(threads) + " threads");
    const perfq::io::AslDataset d = perfq::io::read_asl_bids(asl, threads);
    ASSERT_EQ(d.asl.values().size(), phantom.asl.values().size());
    EXPECT_TRUE(
        std::equal(d.asl.values().begin(), d.asl.values().end(), phantom.asl.values().begin()));
    ASSERT_TRUE(d.m0.has_value());
    EXPECT_TRUE(
        std::equal(d.m0->values().begin(), d.m0->values().end(), phantom.m0.values().begin()));
  }

  // A size record that does not match its member: the file is still a sound gzip stream,
  // read one member after another, with the same values.
  std::string wrong = gz;
  wrong[starts[0] + 16] = static_cast<char>(byte(starts[0] + 16) ^ 0x01);
  std::ofstream(path("wrong-size.nii.gz"), std::ios::binary) << wrong;
  const auto read = perfq::io::read_nifti(path("wrong-size.nii.gz"));
  ASSERT_EQ(read.size(), image.size());
  for (std::size_t i = 0; i < image.size(); ++i) ASSERT_EQ(read[i], image[i]) << i;
  // A damaged member (a byte of its deflated data changed): refused, naming the file.
  std::string damaged = gz;
  const std::size_t inside = starts[1] + (gz.size() - starts[1]) / 2;
  damaged[inside] = static_cast<char>(byte(inside) ^ 0x5a);
  std::ofstream(path("damaged.nii.gz"), std::ios::binary) << damaged;
  try {
    perfq::io::read_nifti(path("damaged.nii.gz"));
    FAIL() << "a damaged member was read";
  } catch (const perfq::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("damaged.nii.gz"), std::string::npos) << e.what();
  }
}

TEST_F(NiftiTest, MultiMemberGzipAndTrailingDataAreReadLikeOneMember) {
  // A .nii.gz is read whole (libdeflate) when its gzip members hold exactly the image; other
  // layouts take the streaming reader: both give the same image. Members: as `gzip -c a b`
  // or a parallel compressor writes them.
  const auto image = ramp<float>(oblique_geometry(), 3, 0.5, -2.0);
  perfq::io::write_nifti(path("plain.nii"), image);
  std::ifstream in(path("plain.nii"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto write_members = [&](const std::string& name, const std::vector<std::string>& parts) {
    bool first = true;
    for (const std::string& part : parts) {
      gzFile f = gzopen(path(name).c_str(), first ? "wb" : "ab");
      ASSERT_NE(f, nullptr);
      ASSERT_EQ(gzwrite(f, part.data(), static_cast<unsigned>(part.size())),
                static_cast<int>(part.size()));
      gzclose(f);
      first = false;
    }
  };
  const std::size_t third = bytes.size() / 3;
  write_members("members.nii.gz",
                {bytes.substr(0, third), bytes.substr(third, third), bytes.substr(2 * third)});
  write_members("trailing.nii.gz", {bytes + std::string(100, '\0')});
  write_members("one.nii.gz", {bytes});
  for (const char* name : {"members.nii.gz", "trailing.nii.gz", "one.nii.gz"}) {
    SCOPED_TRACE(name);
    const auto read = perfq::io::read_nifti(path(name));
    ASSERT_EQ(read.size(), image.size());
    for (std::size_t i = 0; i < image.size(); ++i) ASSERT_EQ(read[i], image[i]) << i;
    expect_same_geometry(read.geometry(), image.geometry());
  }
  // A member cut short is still refused as truncated.
  write_members("cut.nii.gz", {bytes.substr(0, bytes.size() - 40)});
  EXPECT_THROW(perfq::io::read_nifti(path("cut.nii.gz")), perfq::InputError);
}

TEST_F(NiftiTest, Uint8RoundTripAndMask) {
  const Geometry g = oblique_geometry();
  Image<std::uint8_t> mask(g, 1);
  for (std::size_t i = 0; i < mask.size(); ++i)
    mask[i] = static_cast<std::uint8_t>(i % 7 == 0 ? 0 : i % 256);
  perfq::io::write_nifti(path("mask.nii.gz"), mask);
  EXPECT_EQ(perfq::io::read_nifti_info(path("mask.nii.gz")).stored_type, "uint8");
  const auto as_float = perfq::io::read_nifti(path("mask.nii.gz"));
  expect_same_geometry(as_float.geometry(), g);
  for (std::size_t i = 0; i < mask.size(); ++i) ASSERT_EQ(as_float[i], static_cast<float>(mask[i]));
  const auto back = perfq::io::read_nifti_mask(path("mask.nii.gz"));
  expect_same_geometry(back.geometry(), g);
  for (std::size_t i = 0; i < mask.size(); ++i) ASSERT_EQ(back[i], mask[i] != 0 ? 1 : 0) << i;
}

TEST_F(NiftiTest, Int32RoundTripKeepsLargeLabelsExact) {
  const Geometry g = oblique_geometry();
  Image<std::int32_t> labels(g, 1);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    labels[i] = static_cast<std::int32_t>(i % 5) - 2;
  }
  labels[3] = 16777217;  // 2^24 + 1: not representable as float
  labels[4] = -2000000001;
  perfq::io::write_nifti(path("labels.nii.gz"), labels);
  EXPECT_EQ(perfq::io::read_nifti_info(path("labels.nii.gz")).stored_type, "int32");
  const auto back = perfq::io::read_nifti_labels(path("labels.nii.gz"));
  expect_same_geometry(back.geometry(), g);
  EXPECT_EQ(back.values(), labels.values());
}

TEST_F(NiftiTest, MaskTreatsNanAsOutside) {
  Geometry g;
  g.dims = {4, 1, 1};
  Image<float> v(g, 1, std::vector<float>{0.0f, 2.5f, std::nanf(""), -1.0f});
  perfq::io::write_nifti(path("m.nii"), v);
  const auto mask = perfq::io::read_nifti_mask(path("m.nii"));
  EXPECT_EQ(mask.values(), (std::vector<std::uint8_t>{0, 1, 0, 1}));
}

TEST_F(NiftiTest, NanAndInfAreKept) {
  // niftilib (inside ITK) would turn them into 0; perfq must see them to report them.
  Geometry g;
  g.dims = {4, 1, 1};
  const float inf = std::numeric_limits<float>::infinity();
  Image<float> v(g, 1, std::vector<float>{1.0f, std::nanf(""), inf, -inf});
  perfq::io::write_nifti(path("nan.nii.gz"), v);
  const auto back = perfq::io::read_nifti(path("nan.nii.gz"));
  EXPECT_EQ(back[0], 1.0f);
  EXPECT_TRUE(std::isnan(back[1]));
  EXPECT_EQ(back[2], inf);
  EXPECT_EQ(back[3], -inf);
}

// ---- stored types written by hand ----------------------------------------------------------

TEST_F(NiftiTest, Int16WithSlopeAndInterceptFromHandWrittenSform) {
  Geometry g = oblique_geometry();
  g.dims = {3, 4, 2};
  Nifti1Header h;
  h.datatype = 4;  // int16
  h.bitpix = 16;
  h.scl_slope = 2.5f;
  h.scl_inter = -10.0f;
  set_sform_from_lps(h, g);
  std::vector<int16_t> stored(g.voxel_count());
  for (std::size_t i = 0; i < stored.size(); ++i)
    stored[i] = static_cast<int16_t>(100 * static_cast<int>(i) - 700);
  Bytes b = h.bytes();
  b.append(stored);
  b.save(path("scaled.nii"));

  const auto info = perfq::io::read_nifti_info(path("scaled.nii"));
  EXPECT_EQ(info.stored_type, "int16");
  EXPECT_EQ(info.volumes, 1u);
  const auto image = perfq::io::read_nifti(path("scaled.nii"));
  expect_same_geometry(image.geometry(), g, 1e-5);
  ASSERT_EQ(image.size(), stored.size());
  for (std::size_t i = 0; i < stored.size(); ++i) {
    EXPECT_FLOAT_EQ(image[i], 2.5f * stored[i] - 10.0f) << i;
  }
}

/// A big-endian int16 image with scl_slope 0.5 and scl_inter 3 holding `stored`.
Bytes big_endian_scaled_int16(const Geometry& g, const std::vector<int16_t>& stored) {
  Nifti1Header h;
  h.datatype = 4;
  h.bitpix = 16;
  h.scl_slope = 0.5f;
  h.scl_inter = 3.0f;
  set_sform_from_lps(h, g);
  Bytes b = h.bytes(/*big_endian=*/true);
  b.append(stored);
  return b;
}

TEST_F(NiftiTest, LargeScaledImagesCompressedAreConvertedAlike) {
  // Above 65,536 values the conversion runs in blocks side by side: big-endian int16 with
  // scaling (a buffer of its own) and float32 with a slope (converted in place), .nii.gz.
  Geometry g = oblique_geometry();
  g.dims = {64, 48, 40};
  auto gzip = [&](const Bytes& b, const std::string& name) {
    b.save(path(name + ".nii"));
    std::ifstream in(path(name + ".nii"), std::ios::binary);
    const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    gzFile f = gzopen(path(name + ".nii.gz").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(gzwrite(f, raw.data(), static_cast<unsigned>(raw.size())),
              static_cast<int>(raw.size()));
    gzclose(f);
  };
  std::vector<int16_t> stored(g.voxel_count());
  for (std::size_t i = 0; i < stored.size(); ++i)
    stored[i] = static_cast<int16_t>(static_cast<int>(i % 20011) - 10000);
  gzip(big_endian_scaled_int16(g, stored), "int16");
  const auto image = perfq::io::read_nifti(path("int16.nii.gz"));
  ASSERT_EQ(image.size(), stored.size());
  for (std::size_t i = 0; i < stored.size(); ++i) {
    ASSERT_FLOAT_EQ(image[i], 0.5f * static_cast<float>(stored[i]) + 3.0f) << i;
  }
  Nifti1Header f;
  f.scl_slope = 2.0f;
  f.scl_inter = 0.0f;
  set_sform_from_lps(f, g);
  Bytes fb = f.bytes();
  std::vector<float> values(g.voxel_count());
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = 0.25f * static_cast<float>(i % 977);
  fb.append(values);
  gzip(fb, "float");
  const auto scaled = perfq::io::read_nifti(path("float.nii.gz"));
  ASSERT_EQ(scaled.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) ASSERT_EQ(scaled[i], 2.0f * values[i]) << i;
}

TEST_F(NiftiTest, BigEndianInt16WithScaling) {
  Geometry g = oblique_geometry();
  g.dims = {3, 2, 2};
  std::vector<int16_t> stored(12);
  for (std::size_t i = 0; i < stored.size(); ++i)
    stored[i] = static_cast<int16_t>(-300 + 77 * static_cast<int>(i));
  big_endian_scaled_int16(g, stored).save(path("big.nii"));
  const auto image = perfq::io::read_nifti(path("big.nii"));
  expect_same_geometry(image.geometry(), g);
  for (std::size_t i = 0; i < stored.size(); ++i)
    EXPECT_FLOAT_EQ(image[i], 0.5f * stored[i] + 3.0f);
}

TEST_F(NiftiTest, QformOnlyHeaderWithNegativeQfac) {
  // Rotation of 30 degrees about z, third axis flipped through qfac = -1 (pixdim[0]).
  Nifti1Header h;
  h.dim = {3, 4, 3, 2, 1, 1, 1, 1};
  h.datatype = 2;  // uint8
  h.bitpix = 8;
  h.pixdim = {-1, 2.0f, 3.0f, 4.0f, 1, 1, 1, 1};
  h.qform_code = 1;
  const double half = 15.0 * std::acos(-1.0) / 180.0;
  h.quatern = {0, 0, static_cast<float>(std::sin(half)), 10.0f, -20.0f, 30.0f};
  Bytes b = h.bytes();
  std::vector<std::uint8_t> stored(24);
  for (std::size_t i = 0; i < stored.size(); ++i) stored[i] = static_cast<std::uint8_t>(i);
  b.append(stored);
  b.save(path("q.nii"));

  const auto image = perfq::io::read_nifti(path("q.nii"));
  const double c = std::cos(2 * half), s = std::sin(2 * half);
  Geometry expected;
  expected.dims = {4, 3, 2};
  expected.spacing = {2, 3, 4};
  expected.origin = {-10, 20, 30};  // RAS -> LPS
  // RAS rotation [[c,-s,0],[s,c,0],[0,0,1]] with column 3 negated, then rows x, y negated.
  expected.direction = {-c, s, 0, -s, -c, 0, 0, 0, -1};
  expect_same_geometry(image.geometry(), expected, 1e-5);
  EXPECT_FLOAT_EQ(image.at(3, 2, 1), 23.0f);
}

TEST_F(NiftiTest, Float64IsReadAsFloat) {
  Geometry g = oblique_geometry();
  g.dims = {2, 3, 2};
  Nifti1Header h;
  h.dim = {4, 2, 3, 2, 2, 1, 1, 1};  // 4D, two volumes
  h.datatype = 64;
  h.bitpix = 64;
  set_sform_from_lps(h, g);
  std::vector<double> stored(24);
  for (std::size_t i = 0; i < stored.size(); ++i) stored[i] = 0.125 * static_cast<double>(i) - 1.0;
  Bytes b = h.bytes();
  b.append(stored);
  b.save(path("double.nii"));
  const auto info = perfq::io::read_nifti_info(path("double.nii"));
  EXPECT_EQ(info.stored_type, "float64");
  EXPECT_EQ(info.volumes, 2u);
  const auto image = perfq::io::read_nifti(path("double.nii"));
  EXPECT_EQ(image.volumes(), 2u);
  expect_same_geometry(image.geometry(), g);
  for (std::size_t i = 0; i < stored.size(); ++i)
    EXPECT_FLOAT_EQ(image[i], static_cast<float>(stored[i]));
}

/// The NIfTI-2 form (nifti2.h: 540 bytes, 64-bit dims and offset, double geometry, magic
/// "n+2\0\r\n\032\n") of a NIfTI-1 header description, data starting at byte 544.
Bytes nifti2_bytes(const Nifti1Header& h, bool big_endian = false) {
  Bytes b(544, big_endian);
  b.put<int32_t>(0, 540);
  b.put_text(4, "n+2\0\r\n\032\n", 8);
  b.put<int16_t>(12, h.datatype);
  b.put<int16_t>(14, h.bitpix);
  for (int i = 0; i < 8; ++i) b.put<int64_t>(16 + 8 * i, h.dim[i]);
  for (int i = 0; i < 8; ++i) b.put<double>(104 + 8 * i, h.pixdim[i]);
  b.put<int64_t>(168, 544);  // vox_offset
  b.put<double>(176, h.scl_slope);
  b.put<double>(184, h.scl_inter);
  b.put<int32_t>(344, h.qform_code);
  b.put<int32_t>(348, h.sform_code);
  for (int i = 0; i < 6; ++i) b.put<double>(352 + 8 * i, h.quatern[i]);
  for (int i = 0; i < 12; ++i) b.put<double>(400 + 8 * i, h.srow[i]);
  b.put<int32_t>(500, 2 | 8);  // xyzt_units: mm, s
  return b;
}

TEST_F(NiftiTest, Nifti2WithSformReadsLikeNifti1) {
  Geometry g = oblique_geometry();
  g.dims = {3, 4, 2};
  Nifti1Header h;
  h.datatype = 4;  // int16 with scaling, big-endian: every conversion at once
  h.bitpix = 16;
  h.scl_slope = 2.5f;
  h.scl_inter = -10.0f;
  set_sform_from_lps(h, g);
  std::vector<int16_t> stored(g.voxel_count());
  for (std::size_t i = 0; i < stored.size(); ++i) stored[i] = static_cast<int16_t>(37 * i - 300);
  for (bool big_endian : {false, true}) {
    Bytes two = nifti2_bytes(h, big_endian);
    two.append(stored);
    two.save(path("two.nii"));
    const auto info = perfq::io::read_nifti_info(path("two.nii"));
    EXPECT_EQ(info.stored_type, "int16");
    const auto image = perfq::io::read_nifti(path("two.nii"));
    expect_same_geometry(image.geometry(), g, 1e-6);  // the sform was stored as float
    for (std::size_t i = 0; i < stored.size(); ++i) {
      ASSERT_FLOAT_EQ(image[i], 2.5f * stored[i] - 10.0f) << i;
    }
  }
}

TEST_F(NiftiTest, Nifti2WithQformReadsLikeNifti1) {
  // A qform-only header with qfac −1 and a rotation, as NIfTI-1 and as NIfTI-2: both give the
  // geometry of the test's own decoding of the qform (qform_matrix, RAS → LPS).
  Nifti1Header h;
  h.dim = {4, 3, 2, 2, 2, 1, 1, 1};
  h.pixdim = {-1, 2.0f, 3.0f, 4.5f, 1, 1, 1, 1};
  h.qform_code = 1;
  const double angle = 0.3;  // rotation about z: quaternion (cos, 0, 0, sin) of angle/2
  h.quatern = {0.0f, 0.0f, static_cast<float>(std::sin(angle / 2)), -12.5f, 30.0f, 7.25f};
  const std::vector<float> values{1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12,
                                  13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24};
  Bytes one = h.bytes();
  one.append(values);
  one.save(path("one.nii"));
  Bytes two = nifti2_bytes(h);
  two.append(values);
  two.save(path("two.nii"));
  const auto a = perfq::io::read_nifti(path("one.nii"));
  const auto b = perfq::io::read_nifti(path("two.nii"));
  EXPECT_EQ(b.volumes(), 2u);
  expect_same_geometry(b.geometry(), a.geometry(), 1e-5);
  EXPECT_EQ(a.values(), b.values());
  const auto q = qform_matrix(one);
  Geometry expected;
  expected.dims = {3, 2, 2};
  const double flip[3] = {-1, -1, 1};
  for (int c = 0; c < 3; ++c) {
    expected.spacing[c] = std::sqrt(q[c] * q[c] + q[4 + c] * q[4 + c] + q[8 + c] * q[8 + c]);
    for (int r = 0; r < 3; ++r) {
      expected.direction[3 * r + c] = flip[r] * q[4 * r + c] / expected.spacing[c];
    }
    expected.origin[c] = flip[c] * q[4 * c + 3];
  }
  expect_same_geometry(a.geometry(), expected, 1e-6);
}

TEST_F(NiftiTest, Nifti2HostileHeadersAreRefused) {
  Nifti1Header h;
  h.dim = {3, 2, 2, 2, 1, 1, 1, 1};
  h.sform_code = 1;
  Bytes bad_magic = nifti2_bytes(h);
  bad_magic.put_text(4, "n+1\0\0\0\0\0", 8);
  bad_magic.append(std::vector<float>(8, 1.0f));
  bad_magic.save(path("magic.nii"));
  EXPECT_THROW(perfq::io::read_nifti(path("magic.nii")), perfq::InputError);
  Bytes huge_offset = nifti2_bytes(h);
  huge_offset.put<int64_t>(168, int64_t(1) << 60);  // must not allocate or seek forever
  huge_offset.append(std::vector<float>(8, 1.0f));
  huge_offset.save(path("offset.nii"));
  EXPECT_THROW(perfq::io::read_nifti(path("offset.nii")), perfq::InputError);
  Bytes five_d = nifti2_bytes(h);
  const int64_t dims[8] = {5, 2, 2, 2, 1, 2, 1, 1};
  for (int i = 0; i < 8; ++i) five_d.put<int64_t>(16 + 8 * i, dims[i]);
  five_d.append(std::vector<float>(16, 1.0f));
  five_d.save(path("five.nii"));
  EXPECT_THROW(perfq::io::read_nifti(path("five.nii")), perfq::InputError);
  Bytes cut = nifti2_bytes(h);
  cut.save(path("cut.nii"));  // header only
  EXPECT_THROW(perfq::io::read_nifti(path("cut.nii")), perfq::InputError);
}

TEST_F(NiftiTest, MoreThanFourDimensionsRefused) {
  Nifti1Header h;
  h.dim = {5, 2, 2, 2, 1, 2, 1, 1};  // e.g. a displacement field: vector along dim 5
  Bytes b = h.bytes();
  b.append(std::vector<float>(16, 1.0f));
  b.save(path("five.nii"));
  expect_input_error(path("five.nii"), "dimensions");
  // Trailing dimensions of size 1 are harmless: this is a 3D image.
  h.dim = {5, 2, 2, 2, 1, 1, 1, 1};
  Bytes c = h.bytes();
  c.append(std::vector<float>(8, 2.0f));
  c.save(path("padded.nii"));
  const auto image = perfq::io::read_nifti(path("padded.nii"));
  EXPECT_EQ(image.volumes(), 1u);
  EXPECT_EQ(image.size(), 8u);
}

/// The geometry rule, NIfTI standard as nibabel applies it: the sform when sform_code > 0
/// (whatever the qform says), RAS → LPS. Here the two disagree in voxel size, rotation and
/// origin; the expectation is written out by hand from the sform.
TEST_F(NiftiTest, SformWinsOverDisagreeingQformInNifti1AndNifti2) {
  Nifti1Header h;
  h.dim = {3, 4, 3, 2, 1, 1, 1, 1};
  // sform (RAS): axis i along +y at 2 mm, axis j along −x at 2.5 mm, axis k along +z at 3 mm.
  h.srow = {0, -2.5f, 0, 10, 2, 0, 0, 20, 0, 0, 3, 30};
  // qform: identity rotation, 3 mm voxels (pixdim), another origin.
  h.pixdim = {1, 3, 3, 3, 1, 1, 1, 1};
  h.qform_code = 1;
  h.quatern = {0, 0, 0, 5, 6, 7};
  Geometry expected;
  expected.dims = {4, 3, 2};
  expected.spacing = {2, 2.5, 3};
  // Columns of the sform normalised, rows x and y negated: i → (0, −1, 0), j → (1, 0, 0).
  expected.direction = {0, 1, 0, -1, 0, 0, 0, 0, 1};
  expected.origin = {-10, -20, 30};
  const std::vector<float> values(24, 1.5f);
  for (int16_t sform_code : {1, 2, 4}) {  // scanner, aligned, MNI: the code's value does not matter
    SCOPED_TRACE("sform_code " + std::to_string(sform_code));
    h.sform_code = sform_code;
    Bytes one = h.bytes();
    one.append(values);
    one.save(path("one.nii"));
    Bytes two = nifti2_bytes(h);
    two.append(values);
    two.save(path("two.nii"));
    const Geometry a = perfq::io::read_nifti(path("one.nii")).geometry();
    const Geometry b = perfq::io::read_nifti(path("two.nii")).geometry();
    expect_same_geometry(a, expected, 1e-12);
    expect_same_geometry(b, expected, 1e-12);
    expect_same_geometry(perfq::io::read_nifti_info(path("one.nii")).geometry, expected, 1e-12);
  }
}

TEST_F(NiftiTest, ShearedSformIsRefusedNamingTheSform) {
  Nifti1Header h;
  h.dim = {3, 2, 2, 2, 1, 1, 1, 1};
  h.sform_code = 1;
  h.srow = {2, 1, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0};  // axis j leans towards x: not a grid perfq holds
  h.qform_code = 1;                               // a valid qform does not rescue it
  for (bool version2 : {false, true}) {
    Bytes b = version2 ? nifti2_bytes(h) : h.bytes();
    b.append(std::vector<float>(8, 1.0f));
    b.save(path("shear.nii"));
    expect_input_error(path("shear.nii"), "sform");
    expect_input_error(path("shear.nii"), "not perpendicular");
  }
}

TEST_F(NiftiTest, SpatialUnitsOtherThanMillimetresAreConverted) {
  // xyzt_units: metres (1) and micrometres (3); perfq's geometry is in millimetres.
  Nifti1Header h;
  h.dim = {3, 2, 2, 2, 1, 1, 1, 1};
  h.sform_code = 1;
  h.srow = {0.002f, 0, 0, 0.1f, 0, 0.002f, 0, -0.2f, 0, 0, 0.003f, 0.05f};
  for (bool version2 : {false, true}) {
    Bytes b = version2 ? nifti2_bytes(h) : h.bytes();
    if (version2) {
      b.put<int32_t>(500, 1 | 8);
    } else {
      b.put<char>(123, 1 | 8);
    }
    b.append(std::vector<float>(8, 1.0f));
    b.save(path("metres.nii"));
    const Geometry g = perfq::io::read_nifti(path("metres.nii")).geometry();
    EXPECT_NEAR(g.spacing[0], 2.0, 1e-4);
    EXPECT_NEAR(g.spacing[2], 3.0, 1e-4);
    EXPECT_NEAR(g.origin[0], -100.0, 1e-3);
    EXPECT_NEAR(g.origin[1], 200.0, 1e-3);
    EXPECT_NEAR(g.origin[2], 50.0, 1e-3);
  }
  h.sform_code = 0;
  h.pixdim = {1, 2000, 2000, 4000, 1, 1, 1, 1};
  Bytes microns = h.bytes();
  microns.put<char>(123, 3 | 8);
  microns.append(std::vector<float>(8, 1.0f));
  microns.save(path("microns.nii"));
  const Geometry g = perfq::io::read_nifti(path("microns.nii")).geometry();
  EXPECT_NEAR(g.spacing[0], 2.0, 1e-9);
  EXPECT_NEAR(g.spacing[2], 4.0, 1e-9);
}

/// Reads `file` with stderr captured; expects an InputError naming the file and `field`, and
/// nothing printed.
void expect_quiet_refusal(const std::string& file, const std::string& field) {
  for (bool info_only : {true, false}) {
    ::testing::internal::CaptureStderr();
    std::string what;
    try {
      if (info_only) {
        perfq::io::read_nifti_info(file);
      } else {
        perfq::io::read_nifti(file);
      }
    } catch (const perfq::InputError& e) {
      what = e.what();
    } catch (const std::exception& e) {
      what = std::string("not an InputError: ") + e.what();
    }
    const std::string printed = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(printed, "") << file;
    EXPECT_NE(what.find(file), std::string::npos) << what;
    EXPECT_NE(what.find(field), std::string::npos) << what;
    EXPECT_EQ(what.find("0x"), std::string::npos) << what;  // no object address
    EXPECT_EQ(what.find("ITK"), std::string::npos) << what;
  }
}

TEST_F(NiftiTest, BadHeaderFieldGivesOneMessageAndNothingOnStderr) {
  struct Case {
    const char* name;
    std::array<int16_t, 8> dim;
    const char* field;
  };
  const Case cases[] = {
      {"dim0_zero.nii", {0, 2, 2, 2, 1, 1, 1, 1}, "dim[0]: is 0; expected 1 to 7"},
      {"dim0_nine.nii", {9, 2, 2, 2, 1, 1, 1, 1}, "dim[0]: is 9; expected 1 to 7"},
      {"dim2_zero.nii", {3, 2, 0, 2, 1, 1, 1, 1}, "dim[2]: is 0; expected ≥ 1"},
      {"dim2_negative.nii", {3, 2, -4, 2, 1, 1, 1, 1}, "dim[2]: is -4; expected ≥ 1"},
      {"dim4_zero.nii", {4, 2, 2, 2, 0, 1, 1, 1}, "dim[4]: is 0; expected ≥ 1"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Nifti1Header h;
    h.dim = c.dim;
    h.sform_code = 1;
    for (bool version2 : {false, true}) {
      Bytes b = version2 ? nifti2_bytes(h) : h.bytes();
      b.append(std::vector<float>(8, 1.0f));
      b.save(path(c.name));
      expect_quiet_refusal(path(c.name), c.field);
    }
  }
  Nifti1Header h;
  h.dim = {3, 2, 2, 2, 1, 1, 1, 1};
  h.datatype = 99;  // no such NIfTI type
  Bytes type = h.bytes();
  type.append(std::vector<float>(8, 1.0f));
  type.save(path("datatype.nii"));
  expect_quiet_refusal(path("datatype.nii"), "datatype 99");
  h.datatype = 16;
  Bytes offset = h.bytes();
  offset.put<float>(108, 100.0f);  // inside the header
  offset.append(std::vector<float>(8, 1.0f));
  offset.save(path("offset.nii"));
  expect_quiet_refusal(path("offset.nii"), "vox_offset: is 100");
  Bytes nan_sform = h.bytes();
  nan_sform.put<int16_t>(254, 1);
  nan_sform.put<float>(300, std::nanf(""));  // srow_y[1]
  nan_sform.append(std::vector<float>(8, 1.0f));
  nan_sform.save(path("nan_sform.nii"));
  expect_quiet_refusal(path("nan_sform.nii"), "srow_y[1]");
}

/// `data` as a gzip stream of stored (uncompressed) deflate blocks: a valid .nii.gz.
std::vector<char> gzip_stored(const std::vector<char>& data) {
  std::vector<char> out = {'\x1f', '\x8b', 8, 0, 0, 0, 0, 0, 0, '\xff'};
  std::size_t at = 0;
  do {
    const std::size_t n = std::min<std::size_t>(data.size() - at, 65535);
    const bool last = at + n == data.size();
    out.push_back(last ? 1 : 0);
    const char len[4] = {static_cast<char>(n & 0xff), static_cast<char>(n >> 8),
                         static_cast<char>(~n & 0xff), static_cast<char>((~n >> 8) & 0xff)};
    out.insert(out.end(), len, len + 4);
    out.insert(out.end(), data.begin() + at, data.begin() + at + n);
    at += n;
  } while (at < data.size());
  std::uint32_t crc = 0xffffffffu;
  for (char ch : data) {
    crc ^= static_cast<unsigned char>(ch);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  crc = ~crc;
  const std::uint32_t size = static_cast<std::uint32_t>(data.size());
  for (std::uint32_t v : {crc, size}) {
    for (int k = 0; k < 4; ++k) out.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
  }
  return out;
}

TEST_F(NiftiTest, HeaderClaimingMoreThanTheMemoryIsRefusedBeforeReading) {
  if (!fs::exists("/proc/meminfo")) GTEST_SKIP() << "no /proc/meminfo: memory not known";
  // 4096³ voxels × 4 volumes = 2^38 voxels, 1 TiB as floats, in a file of a few hundred bytes.
  Nifti1Header h;
  h.dim = {4, 4096, 4096, 4096, 4, 1, 1, 1};
  h.sform_code = 1;
  Bytes b = h.bytes();
  b.append(std::vector<float>(16, 1.0f));
  b.save(path("huge.nii"));
  {
    const Bytes plain = Bytes::load(path("huge.nii"));
    std::vector<char> raw(plain.size());
    for (std::size_t i = 0; i < raw.size(); ++i) raw[i] = plain.get<char>(i);
    const std::vector<char> gz = gzip_stored(raw);
    std::ofstream(path("huge.nii.gz"), std::ios::binary)
        .write(gz.data(), static_cast<std::streamsize>(gz.size()));
  }
  for (const char* name : {"huge.nii", "huge.nii.gz"}) {
    SCOPED_TRACE(name);
    const auto start = std::chrono::steady_clock::now();
    expect_input_error(path(name), "holds 274877906944 voxels (1024.0 GiB as 32-bit floats)");
    expect_input_error(path(name), "GiB of memory available");
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_LT(seconds, 2.0);
  }
  // The header alone is read: the grid is reported, the memory not needed.
  EXPECT_EQ(perfq::io::read_nifti_info(path("huge.nii.gz")).volumes, 4u);
  // Labels are read as doubles: 64-bit in the message.
  h.dim = {3, 4096, 4096, 4096, 1, 1, 1, 1};
  Bytes labels = h.bytes();
  labels.append(std::vector<float>(16, 1.0f));
  labels.save(path("labels.nii"));
  try {
    perfq::io::read_nifti_labels(path("labels.nii"));
    FAIL() << "read";
  } catch (const perfq::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("(512.0 GiB as 64-bit floats)"), std::string::npos)
        << e.what();
  }
}

// ---- labels -------------------------------------------------------------------------------

TEST_F(NiftiTest, LabelsAcceptIntegerValuedFloats) {
  Geometry g;
  g.dims = {3, 2, 2};
  Image<float> v(g, 1);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 4) - 1.0f;
  perfq::io::write_nifti(path("l.nii.gz"), v);
  const auto labels = perfq::io::read_nifti_labels(path("l.nii.gz"));
  for (std::size_t i = 0; i < v.size(); ++i) EXPECT_EQ(labels[i], static_cast<int>(v[i]));
}

TEST_F(NiftiTest, LabelsRejectNonIntegerNamingVoxelAndValue) {
  Geometry g;
  g.dims = {3, 2, 2};
  Image<float> v(g, 1, 2.0f);
  v.at(2, 1, 0) = 1.5f;
  perfq::io::write_nifti(path("bad_labels.nii.gz"), v);
  try {
    perfq::io::read_nifti_labels(path("bad_labels.nii.gz"));
    FAIL() << "1.5 accepted as a label";
  } catch (const perfq::InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("bad_labels.nii.gz"), std::string::npos) << what;
    EXPECT_NE(what.find("(2, 1, 0)"), std::string::npos) << what;
    EXPECT_NE(what.find("1.5"), std::string::npos) << what;
  }
  v.at(2, 1, 0) = std::nanf("");
  perfq::io::write_nifti(path("nan_labels.nii"), v);
  EXPECT_THROW(perfq::io::read_nifti_labels(path("nan_labels.nii")), perfq::InputError);
}

TEST_F(NiftiTest, LabelsAndMaskRefuse4d) {
  Geometry g;
  g.dims = {2, 2, 2};
  perfq::io::write_nifti(path("four.nii"), Image<float>(g, 3, 1.0f));
  try {
    perfq::io::read_nifti_labels(path("four.nii"));
    FAIL();
  } catch (const perfq::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("expected a 3D"), std::string::npos) << e.what();
  }
  EXPECT_THROW(perfq::io::read_nifti_mask(path("four.nii")), perfq::InputError);
}

// ---- errors -------------------------------------------------------------------------------

TEST_F(NiftiTest, MissingFile) {
  expect_input_error(path("absent.nii.gz"), "not found");
  EXPECT_THROW(perfq::io::read_nifti_info(path("absent.nii")), perfq::InputError);
}

TEST_F(NiftiTest, NotANiftiFile) {
  std::ofstream(path("text.nii")) << "this is not an image, just some words long enough to fill "
                                     "a header-sized read if the reader tried one";
  expect_input_error(path("text.nii"), "NIfTI");
  std::ofstream(path("empty.nii.gz")).close();
  expect_input_error(path("empty.nii.gz"), "NIfTI");
  std::ofstream(path("image.png")) << "png";
  expect_input_error(path("image.png"), ".nii");
}

TEST_F(NiftiTest, TruncatedFiles) {
  Geometry g;
  g.dims = {16, 16, 8};
  Image<float> noise(g, 4);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(100.0f, 20.0f);
  for (auto& v : noise.values()) v = normal(rng);  // random: gzip cannot shrink it much
  for (const char* name : {"cut.nii.gz", "cut.nii"}) {
    SCOPED_TRACE(name);
    perfq::io::write_nifti(path(name), noise);
    fs::resize_file(path(name), fs::file_size(path(name)) / 2);
    expect_input_error(path(name), "truncated");
  }
}

TEST_F(NiftiTest, CorruptCompressedData) {
  Geometry g;
  g.dims = {16, 16, 8};
  Image<float> noise(g, 2);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (auto& v : noise.values()) v = uniform(rng);
  perfq::io::write_nifti(path("flip.nii.gz"), noise);
  Bytes b = Bytes::load(path("flip.nii.gz"));
  b.flip_byte(b.size() / 2);  // inside the deflate stream, far from the header
  b.save(path("flip.nii.gz"));
  expect_input_error(path("flip.nii.gz"), "corrupt");
}

TEST_F(NiftiTest, HeaderCutShort) {
  Nifti1Header h;
  Bytes b = h.bytes();
  b.save(path("short.nii"));
  fs::resize_file(path("short.nii"), 200);
  expect_input_error(path("short.nii"), "truncated");
}

TEST_F(NiftiTest, WriteToMissingFolderThrowsAndLeavesNothing) {
  Geometry g;
  g.dims = {2, 2, 2};
  const std::string target = path("no/such/folder/out.nii.gz");
  try {
    perfq::io::write_nifti(target, Image<float>(g, 1, 1.0f));
    FAIL() << "write succeeded";
  } catch (const perfq::Error& e) {
    EXPECT_NE(std::string(e.what()).find(target), std::string::npos) << e.what();
  }
  EXPECT_TRUE(listing().empty());
  EXPECT_THROW(perfq::io::write_text_atomic(path("no/such.txt"), "x"), perfq::Error);
  EXPECT_TRUE(listing().empty());
}

TEST_F(NiftiTest, FailedRenameRemovesTheTemporaryFile) {
  // The target is a non-empty folder: writing the temporary succeeds, the rename fails.
  fs::create_directories(dir_ / "occupied.nii.gz" / "inside");
  Geometry g;
  g.dims = {2, 2, 2};
  EXPECT_THROW(perfq::io::write_nifti(path("occupied.nii.gz"), Image<float>(g, 1, 1.0f)),
               perfq::Error);
  EXPECT_EQ(listing(), std::vector<std::string>{"occupied.nii.gz"});
  fs::create_directories(dir_ / "notes.txt" / "inside");
  EXPECT_THROW(perfq::io::write_text_atomic(path("notes.txt"), "hello"), perfq::Error);
  EXPECT_EQ(listing(), (std::vector<std::string>{"notes.txt", "occupied.nii.gz"}));
}

TEST_F(NiftiTest, OverwriteIsAtomicAndLeavesNoTemporaries) {
  Geometry g;
  g.dims = {3, 3, 3};
  perfq::io::write_nifti(path("x.nii.gz"), Image<float>(g, 1, 1.0f));
  perfq::io::write_nifti(path("x.nii.gz"), Image<float>(g, 2, 7.0f));
  const auto back = perfq::io::read_nifti(path("x.nii.gz"));
  EXPECT_EQ(back.volumes(), 2u);
  EXPECT_EQ(back[0], 7.0f);
  perfq::io::write_text_atomic(path("t.json"), "{}\n");
  perfq::io::write_text_atomic(path("t.json"), "{\"a\": 1}\n");
  std::ifstream in(path("t.json"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "{\"a\": 1}\n");
  EXPECT_EQ(listing(), (std::vector<std::string>{"t.json", "x.nii.gz"}));
}

TEST_F(NiftiTest, WriteRefusesOtherExtensionsAndEmptyImages) {
  Geometry g;
  g.dims = {2, 2, 2};
  EXPECT_THROW(perfq::io::write_nifti(path("x.hdr"), Image<float>(g, 1, 1.0f)), perfq::Error);
  EXPECT_THROW(perfq::io::write_nifti(path("y.nii"), perfq::View<const float>{}), perfq::Error);
  EXPECT_TRUE(listing().empty());
}

TEST_F(NiftiTest, Read3dRefusesAFourDImageAndAnImageOffTheGrid) {
  Geometry g;
  g.dims = {4, 3, 2};
  g.spacing = {2.0, 2.0, 3.0};
  g.origin = {-4.0, 1.0, 7.5};
  Image<float> one(g, 1, 5.0f);
  perfq::io::write_nifti(path("one.nii.gz"), one);
  perfq::io::write_nifti(path("two.nii.gz"), Image<float>(g, 2, 1.0f));

  const Image<float> back = perfq::io::read_nifti_3d(path("one.nii.gz"), &g, "the reference");
  EXPECT_EQ(back.volumes(), 1u);
  EXPECT_EQ(back[0], 5.0f);
  auto message = [](const std::function<void()>& read) {
    try {
      read();
    } catch (const perfq::InputError& e) {
      return std::string(e.what());
    }
    return std::string("not refused");
  };
  EXPECT_EQ(message([&] { perfq::io::read_nifti_3d(path("two.nii.gz")); }),
            path("two.nii.gz") + ": expected a 3D image, found a 4D image with 2 volumes");

  Geometry wider = g, finer = g, moved = g;
  wider.dims = {5, 3, 2};
  finer.spacing = {1.0, 2.0, 3.0};
  moved.origin = {0.0, 1.0, 7.5};
  EXPECT_EQ(
      message([&] { perfq::io::read_nifti_3d(path("one.nii.gz"), &wider, "the map m"); }),
      path("one.nii.gz") + ": not on the grid of the map m (dimensions 4 x 3 x 2, not 5 x 3 x 2)");
  EXPECT_EQ(message([&] { perfq::io::require_same_grid("f", g, finer, "r"); }),
            "f: not on the grid of r (spacing 2 x 2 x 3 mm, not 1 x 2 x 3)");
  EXPECT_EQ(message([&] { perfq::io::require_same_grid("f", g, moved, "r"); }),
            "f: not on the grid of r (origin -4 x 1 x 7.5 mm, not 0 x 1 x 7.5)");
  Geometry turned = g;
  turned.direction = {-1, 0, 0, 0, 1, 0, 0, 0, 1};
  EXPECT_EQ(message([&] { perfq::io::require_same_grid("f", g, turned, "r"); }),
            "f: not on the grid of r (another orientation)");
  EXPECT_NO_THROW(perfq::io::require_same_grid("f", g, g, "r"));
}

}  // namespace
