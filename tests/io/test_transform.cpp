// perfq::io::Transform read back from files that ITK itself wrote (an fMRIPrep/ANTs-style .h5
// composite: affine + displacement field; an Euler3D .txt), against points mapped by hand;
// perfq's own .txt/.mat/.h5 round trips, compose order, inverses, and the errors.
#include <perfq/errors.hpp>
#include <perfq/io/transform.hpp>

#include <gtest/gtest.h>

#include <itkAffineTransform.h>
#include <itkCompositeTransform.h>
#include <itkDisplacementFieldTransform.h>
#include <itkEuler3DTransform.h>
#include <itkHDF5TransformIOFactory.h>
#include <itkImage.h>
#include <itkTransformFactoryBase.h>
#include <itkTransformFileWriter.h>
#include <itkTxtTransformIOFactory.h>

#include <unistd.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using perfq::io::compose;
using perfq::io::read_transform;
using perfq::io::Transform;
using perfq::io::write_transform;
using Point = std::array<double, 3>;

/// A fresh folder for one test under PERFQ_TEST_TMP, removed when the test passes.
class TransformFile : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(PERFQ_TEST_TMP) / (std::string("transform-") + info->name() + "-" +
                                       std::to_string(static_cast<int>(getpid())));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    itk::TransformFactoryBase::RegisterDefaultTransforms();
    itk::TxtTransformIOFactory::RegisterOneFactory();
    itk::HDF5TransformIOFactory::RegisterOneFactory();
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  /// Writes `transform` with ITK's own writer (as ANTs and fMRIPrep do).
  template <class T>
  void itk_write(const std::string& file, const T* transform) {
    auto writer = itk::TransformFileWriterTemplate<double>::New();
    writer->SetFileName(file);
    writer->SetInput(transform);
    writer->Update();
  }
  fs::path dir_;
};

void expect_near(const Point& got, const Point& want, double tolerance, const std::string& what) {
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(got[i], want[i], tolerance) << what << " axis " << i;
}

// ---- the displacement field of the composite, and its by-hand evaluation ----------------

constexpr std::size_t kNx = 6, kNy = 7, kNz = 5;
constexpr double kSpacing[3] = {2.0, 3.0, 2.5};
constexpr double kOrigin[3] = {-5.0, -9.0, -4.0};

/// The displacement at field node (i, j, k): smooth, nonlinear, a few mm.
Point node_displacement(std::size_t i, std::size_t j, std::size_t k) {
  const double x = static_cast<double>(i), y = static_cast<double>(j), z = static_cast<double>(k);
  return {1.5 * std::sin(0.7 * x + 0.3 * z), -0.8 * std::cos(0.5 * y) + 0.1 * x * z,
          0.05 * x * y - 0.4 * z};
}

/// The displacement at physical point p (inside the field) by trilinear interpolation of the
/// nodes, as ITK's DisplacementFieldTransform computes it (identity direction).
Point hand_displacement(const Point& p) {
  double c[3];
  std::size_t n[3] = {kNx, kNy, kNz};
  std::size_t lo[3];
  double f[3];
  for (int a = 0; a < 3; ++a) {
    c[a] = (p[a] - kOrigin[a]) / kSpacing[a];
    lo[a] = static_cast<std::size_t>(std::floor(c[a]));
    if (lo[a] >= n[a] - 1) lo[a] = n[a] - 2;
    f[a] = c[a] - static_cast<double>(lo[a]);
  }
  Point d{0.0, 0.0, 0.0};
  for (int corner = 0; corner < 8; ++corner) {
    double w = 1.0;
    std::size_t idx[3];
    for (int a = 0; a < 3; ++a) {
      const bool up = (corner >> a) & 1;
      idx[a] = lo[a] + (up ? 1 : 0);
      w *= up ? f[a] : 1.0 - f[a];
    }
    const Point v = node_displacement(idx[0], idx[1], idx[2]);
    for (int a = 0; a < 3; ++a) d[a] += w * v[a];
  }
  return d;
}

/// The affine of the composite: A p + b (ITK: matrix, offset with centre 0).
constexpr double kMatrix[9] = {1.05, 0.04, -0.02, -0.03, 0.97, 0.06, 0.01, -0.05, 1.10};
constexpr double kOffset[3] = {3.5, -2.25, 7.0};

Point hand_affine(const Point& p) {
  Point q{};
  for (int r = 0; r < 3; ++r) {
    q[r] = kOffset[r];
    for (int c = 0; c < 3; ++c) q[r] += kMatrix[3 * r + c] * p[c];
  }
  return q;
}

/// The fMRIPrep/ANTs composite as ITK builds it: the affine added first, the displacement
/// field last, so that the field acts on a point first: map(p) = A (p + d(p)) + b.
itk::CompositeTransform<double, 3>::Pointer fmriprep_style_composite() {
  using Field = itk::DisplacementFieldTransform<double, 3>;
  auto field = Field::DisplacementFieldType::New();
  Field::DisplacementFieldType::RegionType region;
  Field::DisplacementFieldType::SizeType size = {{kNx, kNy, kNz}};
  region.SetSize(size);
  field->SetRegions(region);
  Field::DisplacementFieldType::SpacingType spacing;
  Field::DisplacementFieldType::PointType origin;
  for (int a = 0; a < 3; ++a) {
    spacing[a] = kSpacing[a];
    origin[a] = kOrigin[a];
  }
  field->SetSpacing(spacing);
  field->SetOrigin(origin);
  field->Allocate();
  for (std::size_t k = 0; k < kNz; ++k) {
    for (std::size_t j = 0; j < kNy; ++j) {
      for (std::size_t i = 0; i < kNx; ++i) {
        Field::DisplacementFieldType::IndexType index = {
            {static_cast<long>(i), static_cast<long>(j), static_cast<long>(k)}};
        const Point d = node_displacement(i, j, k);
        Field::OutputVectorType v;
        for (int a = 0; a < 3; ++a) v[a] = d[a];
        field->SetPixel(index, v);
      }
    }
  }
  auto warp = Field::New();
  warp->SetDisplacementField(field);

  auto affine = itk::AffineTransform<double, 3>::New();
  itk::AffineTransform<double, 3>::MatrixType m;
  itk::AffineTransform<double, 3>::OutputVectorType b;
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) m(r, c) = kMatrix[3 * r + c];
    b[r] = kOffset[r];
  }
  affine->SetMatrix(m);
  affine->SetOffset(b);

  auto composite = itk::CompositeTransform<double, 3>::New();
  composite->AddTransform(affine);
  composite->AddTransform(warp);
  return composite;
}

/// Field nodes (where the hand computation needs no interpolation) and points between them.
std::vector<Point> field_nodes() {
  std::vector<Point> points;
  for (std::size_t k : {1, 2, 3}) {
    for (std::size_t j : {1, 3, 5}) {
      for (std::size_t i : {1, 2, 4}) {
        points.push_back({kOrigin[0] + kSpacing[0] * i, kOrigin[1] + kSpacing[1] * j,
                          kOrigin[2] + kSpacing[2] * k});
      }
    }
  }
  return points;
}

const std::vector<Point> kBetween = {
    {-2.3, -4.1, -1.2}, {0.7, 2.9, 3.3}, {4.4, 6.6, 1.1}, {-1.0, 0.25, 0.0}};

TEST_F(TransformFile, FmriprepStyleH5CompositeMapsAsComputedByHand) {
  const std::string file = path("from-MNI_to-T1w_mode-image_xfm.h5");
  itk_write(file, fmriprep_style_composite().GetPointer());

  const Transform t = read_transform(file);
  EXPECT_FALSE(t.linear());
  ASSERT_EQ(t.parts().size(), 2u);
  EXPECT_EQ(t.parts()[0], "DisplacementFieldTransform_double_3_3");
  EXPECT_EQ(t.parts()[1], "AffineTransform_double_3_3");

  for (const Point& p : field_nodes()) {
    const Point d = [&] {
      const std::size_t i =
          static_cast<std::size_t>(std::lround((p[0] - kOrigin[0]) / kSpacing[0]));
      const std::size_t j =
          static_cast<std::size_t>(std::lround((p[1] - kOrigin[1]) / kSpacing[1]));
      const std::size_t k =
          static_cast<std::size_t>(std::lround((p[2] - kOrigin[2]) / kSpacing[2]));
      return node_displacement(i, j, k);
    }();
    const Point want = hand_affine({p[0] + d[0], p[1] + d[1], p[2] + d[2]});
    expect_near(t.map(p), want, 1e-9, "node");
  }
  for (const Point& p : kBetween) {
    const Point d = hand_displacement(p);
    const Point want = hand_affine({p[0] + d[0], p[1] + d[1], p[2] + d[2]});
    expect_near(t.map(p), want, 1e-9, "between nodes");
  }
  // The same file through ITK's own composite: perfq reads what ITK means.
  const auto composite = fmriprep_style_composite();
  for (const Point& p : kBetween) {
    itk::CompositeTransform<double, 3>::InputPointType q;
    for (int a = 0; a < 3; ++a) q[a] = p[a];
    const auto r = composite->TransformPoint(q);
    expect_near(t.map(p), {r[0], r[1], r[2]}, 1e-9, "ITK composite");
  }
}

TEST_F(TransformFile, FieldWrittenByPerfqAgainIsTheSame) {
  const std::string itk_file = path("itk.h5");
  itk_write(itk_file, fmriprep_style_composite().GetPointer());
  const Transform t = read_transform(itk_file);
  const std::string again = path("again.h5");
  write_transform(again, t);
  const Transform u = read_transform(again);
  EXPECT_EQ(u.parts(), t.parts());
  for (const Point& p : kBetween) expect_near(u.map(p), t.map(p), 1e-12, "round trip");
}

TEST_F(TransformFile, ItkEulerTextFileMapsAsComputedByHand) {
  const double ax = 0.1, ay = -0.2, az = 0.3;
  const Point center{10.0, -20.0, 5.0}, shift{1.5, -2.0, 3.25};
  auto euler = itk::Euler3DTransform<double>::New();
  itk::Euler3DTransform<double>::InputPointType c;
  itk::Euler3DTransform<double>::OutputVectorType v;
  for (int a = 0; a < 3; ++a) {
    c[a] = center[a];
    v[a] = shift[a];
  }
  euler->SetCenter(c);
  euler->SetRotation(ax, ay, az);
  euler->SetTranslation(v);
  const std::string file = path("rigid.txt");
  itk_write(file, euler.GetPointer());

  // ITK's Euler3D (ZXY order): R = Rz Rx Ry.
  auto mul = [](const std::array<double, 9>& a, const std::array<double, 9>& b) {
    std::array<double, 9> m{};
    for (int r = 0; r < 3; ++r)
      for (int col = 0; col < 3; ++col)
        for (int k = 0; k < 3; ++k) m[3 * r + col] += a[3 * r + k] * b[3 * k + col];
    return m;
  };
  const std::array<double, 9> rx = {
      1, 0, 0, 0, std::cos(ax), -std::sin(ax), 0, std::sin(ax), std::cos(ax)};
  const std::array<double, 9> ry = {std::cos(ay),  0, std::sin(ay), 0, 1, 0,
                                    -std::sin(ay), 0, std::cos(ay)};
  const std::array<double, 9> rz = {
      std::cos(az), -std::sin(az), 0, std::sin(az), std::cos(az), 0, 0, 0, 1};
  const std::array<double, 9> r = mul(rz, mul(rx, ry));

  const Transform t = read_transform(file);
  const Transform built = Transform::rigid({ax, ay, az}, shift, center);
  EXPECT_TRUE(t.linear());
  for (const Point& p : kBetween) {
    Point want{};
    for (int row = 0; row < 3; ++row) {
      want[row] = center[row] + shift[row];
      for (int col = 0; col < 3; ++col) want[row] += r[3 * row + col] * (p[col] - center[col]);
    }
    expect_near(t.map(p), want, 1e-9, "read");
    expect_near(built.map(p), want, 1e-9, "Transform::rigid");
  }
  const std::array<double, 16> m = t.matrix();
  for (int row = 0; row < 3; ++row) {
    for (int col = 0; col < 3; ++col) EXPECT_NEAR(m[4 * row + col], r[3 * row + col], 1e-12);
  }
  EXPECT_EQ(m[12], 0.0);
  EXPECT_EQ(m[15], 1.0);
}

TEST_F(TransformFile, TextAndMatlabRoundTrips) {
  const Transform rigid = Transform::rigid({0.05, -0.1, 0.2}, {2.0, -1.0, 4.5}, {1.0, 2.0, 3.0});
  const Transform affine =
      Transform::affine({1.1, 0.1, 0.0, -0.05, 0.9, 0.02, 0.0, 0.03, 1.2}, {-3.0, 2.0, 0.5});
  for (const std::string ext : {".txt", ".tfm", ".mat", ".h5"}) {
    for (const auto& [name, t] : {std::pair<std::string, Transform>{"rigid", rigid},
                                  std::pair<std::string, Transform>{"affine", affine}}) {
      const std::string file = path(name + ext);
      write_transform(file, t);
      const Transform u = read_transform(file);
      EXPECT_EQ(u.parts(), t.parts()) << file;
      for (const Point& p : kBetween) expect_near(u.map(p), t.map(p), 1e-9, file);
    }
  }
  // A chain is written as one ITK composite and read back as the same chain.
  const Transform chain = compose({rigid, affine});
  for (const std::string ext : {".txt", ".h5"}) {
    const std::string file = path("chain" + ext);
    write_transform(file, chain);
    const Transform u = read_transform(file);
    EXPECT_EQ(u.parts(), chain.parts()) << file;
    for (const Point& p : kBetween) expect_near(u.map(p), chain.map(p), 1e-9, file);
  }
}

TEST(Transform, ComposeAppliesTheLastStepFirst) {
  // steps[0] resamples A onto B (maps B points to A), steps[1] B onto C (C points to B).
  const Transform a_from_b = Transform::affine({1, 0, 0, 0, 1, 0, 0, 0, 1}, {10.0, 0.0, 0.0});
  const Transform b_from_c = Transform::affine({2, 0, 0, 0, 1, 0, 0, 0, 1}, {0.0, 0.0, 0.0});
  const Transform a_from_c = compose({a_from_b, b_from_c});
  // A point of C at x = 1 is at x = 2 in B, then x = 12 in A (scaled first, then shifted).
  expect_near(a_from_c.map({1.0, 5.0, -3.0}), {12.0, 5.0, -3.0}, 1e-12, "compose");
  expect_near(compose({b_from_c, a_from_b}).map({1.0, 5.0, -3.0}), {22.0, 5.0, -3.0}, 1e-12,
              "the other order");
  expect_near(compose({}).map({1.0, 2.0, 3.0}), {1.0, 2.0, 3.0}, 0.0, "empty = identity");
  EXPECT_TRUE(a_from_c.linear());
  const auto m = a_from_c.matrix();
  EXPECT_NEAR(m[0], 2.0, 1e-12);
  EXPECT_NEAR(m[3], 10.0, 1e-12);
}

TEST(Transform, InverseOfRigidAndAffineUndoesThem) {
  const Transform rigid = Transform::rigid({0.3, -0.2, 0.1}, {5.0, -4.0, 2.0}, {-10, 4, 8});
  const Transform affine =
      Transform::affine({1.2, 0.1, -0.1, 0.05, 0.8, 0.1, 0.0, -0.2, 1.1}, {1.0, 2.0, 3.0});
  for (const Transform& t : {rigid, affine, compose({rigid, affine})}) {
    const Transform inv = t.inverse();
    EXPECT_TRUE(inv.linear());
    for (const Point& p : kBetween) {
      expect_near(t.map(inv.map(p)), p, 1e-9, "map(inverse.map(p))");
      expect_near(inv.map(t.map(p)), p, 1e-9, "inverse.map(map(p))");
    }
  }
}

TEST_F(TransformFile, InverseOfADisplacementFieldIsRefused) {
  const std::string file = path("warp.h5");
  itk_write(file, fmriprep_style_composite().GetPointer());
  const Transform t = read_transform(file);
  try {
    (void)t.inverse();
    FAIL() << "expected InvalidArgument";
  } catch (const perfq::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("DisplacementFieldTransform"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("opposite direction"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)t.matrix(), perfq::InvalidArgument);
}

/// Expects read_transform(file) to throw an InputError naming the file and saying `words`.
void expect_input_error(const std::string& file, const std::string& words) {
  try {
    (void)read_transform(file);
    FAIL() << "expected InputError for " << file;
  } catch (const perfq::InputError& e) {
    EXPECT_EQ(e.file(), file);
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

TEST_F(TransformFile, BadFilesGiveErrorsNamingTheFile) {
  expect_input_error(path("missing.h5"), "does not exist");
  expect_input_error(dir_.string() + "/", "not a file");

  const std::string text = path("notes.txt");
  std::ofstream(text) << "these are not the transforms you are looking for\n";
  expect_input_error(text, "cannot be read as an ITK transform");

  const std::string image = path("image.nii.gz");
  std::ofstream(image) << "nothing";
  expect_input_error(image, "not a transform file");

  const std::string h5 = path("broken.h5");
  std::ofstream(h5) << "not HDF5";
  expect_input_error(h5, "cannot be read");

  auto flat = itk::AffineTransform<double, 2>::New();
  const std::string two_d = path("flat.txt");
  itk_write(two_d, flat.GetPointer());
  expect_input_error(two_d, "expected a 3D transform");
}

}  // namespace
