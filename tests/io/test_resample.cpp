// perfq::io::resample, resample_labels and resample_mask: exact cases (identity, whole-voxel
// shifts), values computed by hand (trilinear, affine, footprint averages, majority votes and
// their ties, mask fractions), 4D, thread counts, a displacement field, bad input, and the
// JHU arterial-territory atlas through a rigid transform onto a coarse grid.
#include <perfq/errors.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/resample.hpp>
#include <perfq/io/transform.hpp>

#include <gtest/gtest.h>

#include <itkDisplacementFieldTransform.h>
#include <itkHDF5TransformIOFactory.h>
#include <itkImage.h>
#include <itkTransformFactoryBase.h>
#include <itkTransformFileWriter.h>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using perfq::Geometry;
using perfq::Image;
using perfq::View;
using perfq::io::Interpolation;
using perfq::io::LabelRule;
using perfq::io::resample;
using perfq::io::resample_footprint;
using perfq::io::resample_labels;
using perfq::io::resample_mask;
using perfq::io::ResampleOptions;
using perfq::io::Transform;
using Point = std::array<double, 3>;

const Transform kIdentity;

Geometry grid(std::array<std::size_t, 3> dims, std::array<double, 3> spacing,
              std::array<double, 3> origin = {0.0, 0.0, 0.0}) {
  Geometry g;
  g.dims = dims;
  g.spacing = spacing;
  g.origin = origin;
  return g;
}

/// An oblique grid (rotated about z by 30°, anisotropic).
Geometry oblique() {
  Geometry g = grid({7, 6, 5}, {1.5, 2.0, 3.0}, {-10.0, 4.0, 2.5});
  const double c = std::cos(0.5235987755982988), s = std::sin(0.5235987755982988);
  g.direction = {c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0};
  return g;
}

/// Physical point of voxel index (i, j, k).
Point physical(const Geometry& g, double i, double j, double k) {
  const double idx[3] = {i, j, k};
  Point p = g.origin;
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) p[r] += g.direction[3 * r + c] * g.spacing[c] * idx[c];
  }
  return p;
}

Image<float> pattern(const Geometry& g, std::size_t volumes = 1) {
  Image<float> image(g, volumes);
  for (std::size_t i = 0; i < image.size(); ++i) {
    image[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)) * 100.0 + i % 7);
  }
  return image;
}

ResampleOptions footprint(std::size_t n) {
  ResampleOptions o;
  o.footprint = n;
  return o;
}

TEST(Resample, IdentityOntoTheSameGridIsExact) {
  for (const Geometry& g : {grid({5, 4, 3}, {2.0, 2.0, 2.0}), oblique()}) {
    const Image<float> image = pattern(g);
    for (std::size_t n : {0, 1}) {
      const Image<float> out = resample(image, g, kIdentity, footprint(n));
      ASSERT_EQ(out.size(), image.size());
      for (std::size_t i = 0; i < image.size(); ++i) ASSERT_EQ(out[i], image[i]) << i;
      ResampleOptions nearest = footprint(n);
      nearest.interpolation = Interpolation::Nearest;
      EXPECT_EQ(resample(image, g, kIdentity, nearest).values(), image.values());
    }
    EXPECT_EQ(resample_footprint(g, g, kIdentity), (std::array<std::size_t, 3>{1, 1, 1}));
  }
}

TEST(Resample, WholeVoxelTranslationShiftsExactly) {
  const Geometry g = oblique();
  const Image<float> image = pattern(g);
  // Target point p takes the source value at p + 2 voxels along the grid's first axis.
  const Point step = physical(g, 2.0, 0.0, 0.0);
  const Transform shift =
      Transform::affine({1, 0, 0, 0, 1, 0, 0, 0, 1},
                        {step[0] - g.origin[0], step[1] - g.origin[1], step[2] - g.origin[2]});
  ResampleOptions o = footprint(1);
  o.outside = -1.0f;
  const Image<float> out = resample(image, g, shift, o);
  for (std::size_t k = 0; k < g.dims[2]; ++k) {
    for (std::size_t j = 0; j < g.dims[1]; ++j) {
      for (std::size_t i = 0; i < g.dims[0]; ++i) {
        const float want = i + 2 < g.dims[0] ? image.at(i + 2, j, k) : -1.0f;
        ASSERT_EQ(out.at(i, j, k), want) << i << "," << j << "," << k;
      }
    }
  }
  const auto labels = [&] {
    Image<std::int32_t> l(g);
    for (std::size_t i = 0; i < l.size(); ++i) l[i] = static_cast<std::int32_t>(i % 11);
    return l;
  }();
  const Image<std::int32_t> moved = resample_labels(labels, g, shift, LabelRule::Nearest);
  EXPECT_EQ(moved.at(0, 3, 2), labels.at(2, 3, 2));
  EXPECT_EQ(moved.at(g.dims[0] - 1, 3, 2), 0);  // outside: label 0
}

TEST(Resample, TrilinearValueByHand) {
  // 2 × 2 × 2 source, a target of one voxel whose centre is at index (0.25, 0.5, 0.75).
  const Geometry g = grid({2, 2, 2}, {2.0, 2.0, 2.0});
  Image<float> image(g);
  const float v[8] = {1, 2, 3, 5, 7, 11, 13, 17};
  for (std::size_t i = 0; i < 8; ++i) image[i] = v[i];
  const Geometry target = grid({1, 1, 1}, {0.5, 0.5, 0.5}, {0.5, 1.0, 1.5});
  const double fx = 0.25, fy = 0.5, fz = 0.75;
  double want = 0.0;
  for (int c = 0; c < 8; ++c) {
    const int x = c & 1, y = (c >> 1) & 1, z = (c >> 2) & 1;
    want += (x ? fx : 1 - fx) * (y ? fy : 1 - fy) * (z ? fz : 1 - fz) * v[c];
  }
  EXPECT_NEAR(resample(image, target, kIdentity)[0], want, 1e-5);
  // Nearest: index (0.25, 0.5, 0.75) rounds to (0, 1, 1) (halfway takes the upper voxel).
  ResampleOptions nearest;
  nearest.interpolation = Interpolation::Nearest;
  EXPECT_EQ(resample(image, target, kIdentity, nearest)[0], image.at(0, 1, 1));
}

TEST(Resample, AffineAgainstAnIndependentComputation) {
  // Trilinear interpolation reproduces a linear function of position: f(q) = a·q + b in the
  // source; through an affine, target voxel p takes f(A p + t), computed here directly.
  const Geometry source = grid({40, 40, 30}, {1.0, 1.25, 1.5}, {-20.0, -25.0, -20.0});
  const Point a{0.5, -1.25, 2.0};
  const double b = 3.0;
  Image<float> image(source);
  for (std::size_t k = 0; k < source.dims[2]; ++k) {
    for (std::size_t j = 0; j < source.dims[1]; ++j) {
      for (std::size_t i = 0; i < source.dims[0]; ++i) {
        const Point q = physical(source, i, j, k);
        image.at(i, j, k) = static_cast<float>(a[0] * q[0] + a[1] * q[1] + a[2] * q[2] + b);
      }
    }
  }
  const std::array<double, 9> m = {0.9, 0.1, -0.05, -0.08, 1.05, 0.12, 0.03, -0.1, 0.95};
  const Point t{1.3, -0.7, 2.1};
  const Transform affine = Transform::affine(m, t);
  const Geometry target = oblique();
  const Image<float> out = resample(image, target, affine, footprint(1));
  for (std::size_t k = 0; k < target.dims[2]; ++k) {
    for (std::size_t j = 0; j < target.dims[1]; ++j) {
      for (std::size_t i = 0; i < target.dims[0]; ++i) {
        const Point p = physical(target, i, j, k);
        double want = b;
        for (int r = 0; r < 3; ++r) {
          double q = t[r];
          for (int c = 0; c < 3; ++c) q += m[3 * r + c] * p[c];
          want += a[r] * q;
        }
        ASSERT_NEAR(out.at(i, j, k), want, 1e-3) << i << "," << j << "," << k;
      }
    }
  }
}

TEST(Resample, FootprintAveragesAHalfSpaceToOneHalf) {
  // A binary map: 1 for x < 3 mm, 0 beyond (1 mm voxels, centres at 0 … 7). A 4 mm target
  // voxel centred at x = 2.5 mm spans source voxels 1 … 4: half of it is inside.
  const Geometry source = grid({8, 4, 4}, {1.0, 1.0, 1.0});
  Image<float> map(source);
  for (std::size_t k = 0; k < 4; ++k)
    for (std::size_t j = 0; j < 4; ++j)
      for (std::size_t i = 0; i < 8; ++i) map.at(i, j, k) = i < 3 ? 1.0f : 0.0f;
  const Geometry target = grid({1, 1, 1}, {4.0, 2.0, 2.0}, {2.5, 1.5, 1.5});
  EXPECT_EQ(resample_footprint(source, target, kIdentity), (std::array<std::size_t, 3>{4, 2, 2}));
  EXPECT_FLOAT_EQ(resample(map, target, kIdentity)[0], 0.5f);  // sub-points on source centres
  EXPECT_FLOAT_EQ(resample(map, target, kIdentity, footprint(2))[0], 0.5f);  // between them
  EXPECT_FLOAT_EQ(resample(map, target, kIdentity, footprint(1))[0], 0.5f);  // centre: 2.5 mm
  // Moved 1 mm towards the inside: 3 of the 4 source voxels are 1.
  const Transform back = Transform::affine({1, 0, 0, 0, 1, 0, 0, 0, 1}, {-1.0, 0.0, 0.0});
  EXPECT_FLOAT_EQ(resample(map, target, back)[0], 0.75f);
}

TEST(Resample, SubPointsOutsideTakeTheOutsideValue) {
  const Geometry source = grid({4, 4, 4}, {1.0, 1.0, 1.0});
  const Image<float> ones(source, 1, 1.0f);
  // A 2 mm voxel centred on the last voxel's edge (x = 3.5): half inside.
  const Geometry target = grid({1, 1, 1}, {2.0, 1.0, 1.0}, {3.5, 1.0, 1.0});
  EXPECT_FLOAT_EQ(resample(ones, target, kIdentity, footprint(2))[0], 0.5f);
  ResampleOptions o = footprint(2);
  o.outside = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(resample(ones, target, kIdentity, o)[0]));
  // Wholly outside.
  const Geometry far = grid({1, 1, 1}, {1.0, 1.0, 1.0}, {40.0, 0.0, 0.0});
  o.outside = -7.0f;
  EXPECT_EQ(resample(ones, far, kIdentity, o)[0], -7.0f);
}

TEST(Resample, MajorityVoteWorkedExample) {
  // Source labels along x: 4 4 9 | 9 9 2 (1 mm). A 3 mm target voxel over the first three
  // holds 2/3 label 4 and 1/3 label 9: 4. The second holds 9 9 2: 9.
  const Geometry source = grid({6, 1, 1}, {1.0, 1.0, 1.0});
  Image<std::int32_t> labels(source);
  const std::int32_t row[6] = {4, 4, 9, 9, 9, 2};
  for (std::size_t i = 0; i < 6; ++i) labels[i] = row[i];
  const Geometry target = grid({2, 1, 1}, {3.0, 1.0, 1.0}, {1.0, 0.0, 0.0});
  const Image<std::int32_t> out = resample_labels(labels, target, kIdentity);
  EXPECT_EQ(out[0], 4);
  EXPECT_EQ(out[1], 9);
  // Nearest neighbour takes the centre's label: source voxels 1 and 4.
  const Image<std::int32_t> nearest =
      resample_labels(labels, target, kIdentity, LabelRule::Nearest);
  EXPECT_EQ(nearest[0], 4);
  EXPECT_EQ(nearest[1], 9);
}

TEST(Resample, MajorityTiesTakeTheCentreThenTheSmallestLabel) {
  // Source 7 2 9 4 (1 mm); a 4 mm target voxel centred at index 1.5, footprint 2: sub-points at
  // indices 0.5 and 2.5, taken (halfway: upper voxel) as voxels 1 and 3: labels 2 and 4, a tie.
  // The centre (1.5 → voxel 2) has label 9, not among them: the smaller, 2.
  const Geometry source = grid({4, 1, 1}, {1.0, 1.0, 1.0});
  Image<std::int32_t> labels(source);
  const std::int32_t row[4] = {7, 2, 9, 4};
  for (std::size_t i = 0; i < 4; ++i) labels[i] = row[i];
  const Geometry target = grid({1, 1, 1}, {4.0, 1.0, 1.0}, {1.5, 0.0, 0.0});
  EXPECT_EQ(resample_labels(labels, target, kIdentity, LabelRule::Majority, footprint(2))[0], 2);
  // Sub-points 3 and 8 tie; the centre has 8: 8 (not the smaller 3).
  const std::int32_t centre_wins[4] = {5, 3, 8, 8};
  for (std::size_t i = 0; i < 4; ++i) labels[i] = centre_wins[i];
  EXPECT_EQ(resample_labels(labels, target, kIdentity, LabelRule::Majority, footprint(2))[0], 8);
  const std::int32_t smallest[4] = {5, 8, 1, 3};  // sub-points: 8 and 3; centre 1: smallest
  for (std::size_t i = 0; i < 4; ++i) labels[i] = smallest[i];
  EXPECT_EQ(resample_labels(labels, target, kIdentity, LabelRule::Majority, footprint(2))[0], 3);
}

TEST(Resample, MaskFractionOfTheVoxelInside) {
  // 3 mm target voxels over 1 mm masks: 27 source voxels each, k of them inside.
  const Geometry source = grid({3, 3, 3}, {1.0, 1.0, 1.0});
  const Geometry target = grid({1, 1, 1}, {3.0, 3.0, 3.0}, {1.0, 1.0, 1.0});
  for (std::size_t inside : {0, 9, 13, 14, 20, 27}) {
    perfq::Mask mask(source);
    for (std::size_t i = 0; i < inside; ++i) mask[i] = 1;
    EXPECT_EQ(resample_mask(mask, target, kIdentity)[0], inside >= 14 ? 1 : 0) << inside;
    EXPECT_EQ(resample_mask(mask, target, kIdentity, 1.0 / 3.0)[0], inside >= 9 ? 1 : 0) << inside;
    EXPECT_EQ(resample_mask(mask, target, kIdentity, 1.0)[0], inside == 27 ? 1 : 0) << inside;
  }
  perfq::Mask mask(source, 1, 3);  // nonzero is inside
  EXPECT_EQ(resample_mask(mask, target, kIdentity)[0], 1);
  // The same grid: the mask itself.
  for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = (i * 7) % 3 == 0;
  EXPECT_EQ(resample_mask(mask, source, kIdentity).values(), mask.values());
}

TEST(Resample, FourDimensionalSeriesResamplesEachVolume) {
  const Geometry source = grid({9, 8, 7}, {2.0, 2.0, 2.0});
  Image<float> series(source, 3);
  const Image<float> first = pattern(source);
  for (std::size_t t = 0; t < 3; ++t) {
    for (std::size_t i = 0; i < first.size(); ++i) {
      series[t * first.size() + i] = first[i] * static_cast<float>(t + 1);
    }
  }
  const Transform rigid = Transform::rigid({0.1, 0.0, -0.05}, {1.0, 0.5, -0.5}, {8, 7, 6});
  const Geometry target = grid({6, 5, 4}, {3.0, 3.0, 3.5}, {1.0, 2.0, 1.0});
  const Image<float> out = resample(series, target, rigid);
  const Image<float> one = resample(first, target, rigid);
  ASSERT_EQ(out.volumes(), 3u);
  // (a scaling, so that voxels partly outside, which average in 0, scale too)
  for (std::size_t t = 0; t < 3; ++t) {
    for (std::size_t i = 0; i < one.size(); ++i) {
      ASSERT_NEAR(out[t * one.size() + i], one[i] * (t + 1), 1e-3) << t << " " << i;
    }
  }
}

TEST(Resample, ResultsDoNotDependOnThreads) {
  const Geometry source = grid({30, 28, 26}, {1.0, 1.0, 1.0}, {-15, -14, -13});
  const Image<float> image = pattern(source, 2);
  Image<std::int32_t> labels(source);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i / 97 % 5);
  const Transform rigid = Transform::rigid({0.2, -0.1, 0.3}, {1.5, -2.0, 0.7});
  const Geometry target = grid({11, 10, 7}, {2.5, 2.5, 3.0}, {-12, -11, -9});
  ResampleOptions o;
  o.threads = 1;
  const Image<float> a = resample(image, target, rigid, o);
  const Image<std::int32_t> la = resample_labels(labels, target, rigid, LabelRule::Majority, o);
  for (int threads : {2, 3, 0}) {
    o.threads = threads;
    EXPECT_EQ(resample(image, target, rigid, o).values(), a.values()) << threads;
    EXPECT_EQ(resample_labels(labels, target, rigid, LabelRule::Majority, o).values(), la.values())
        << threads;
  }
}

TEST(Resample, DisplacementFieldPathAgreesWithTheSameShiftAsAnAffine) {
  // A constant field of +3 mm along y read from an .h5 (the non-linear path: Transform::map
  // per point) against the affine of the same shift (the linear path).
  itk::TransformFactoryBase::RegisterDefaultTransforms();
  itk::HDF5TransformIOFactory::RegisterOneFactory();
  using Field = itk::DisplacementFieldTransform<double, 3>;
  auto field = Field::DisplacementFieldType::New();
  Field::DisplacementFieldType::RegionType region;
  region.SetSize({{30, 30, 30}});
  field->SetRegions(region);
  field->SetOrigin(itk::Point<double, 3>(-10.0));  // covers −10 … 19 mm
  field->Allocate();
  Field::OutputVectorType v;
  v[0] = 0.0;
  v[1] = 3.0;
  v[2] = 0.0;
  field->FillBuffer(v);
  auto warp = Field::New();
  warp->SetDisplacementField(field);
  const fs::path dir = fs::path(PERFQ_TEST_TMP) / ("resample-field-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string file = (dir / "warp.h5").string();
  auto writer = itk::TransformFileWriterTemplate<double>::New();
  writer->SetFileName(file);
  writer->SetInput(warp);
  writer->Update();
  const Transform from_file = perfq::io::read_transform(file);
  ASSERT_FALSE(from_file.linear());
  const Transform affine = Transform::affine({1, 0, 0, 0, 1, 0, 0, 0, 1}, {0.0, 3.0, 0.0});

  const Geometry source = grid({12, 12, 10}, {1.0, 1.0, 1.0});
  const Image<float> image = pattern(source);
  const Geometry target = grid({5, 4, 4}, {2.0, 2.0, 2.0}, {0.5, 0.5, 0.5});
  const Image<float> a = resample(image, target, from_file);
  const Image<float> b = resample(image, target, affine);
  for (std::size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-4) << i;
  fs::remove_all(dir);
}

TEST(Resample, BadInputIsRefused) {
  const Geometry g = grid({4, 4, 4}, {1.0, 1.0, 1.0});
  const Image<float> image(g, 1, 1.0f);
  EXPECT_THROW(resample(View<const float>{}, g, kIdentity), perfq::InvalidArgument);
  Geometry bad = g;
  bad.spacing[1] = 0.0;
  EXPECT_THROW(resample(image, bad, kIdentity), perfq::InvalidArgument);
  bad = g;
  bad.origin[2] = std::nan("");
  EXPECT_THROW(resample(image, bad, kIdentity), perfq::InvalidArgument);
  bad = g;
  bad.direction = {1, 0, 0, 1, 0, 0, 0, 0, 1};
  EXPECT_THROW(resample(image, bad, kIdentity), perfq::InvalidArgument);
  bad = g;
  bad.dims[0] = 0;
  EXPECT_THROW(resample(image, bad, kIdentity), perfq::InvalidArgument);
  EXPECT_THROW(resample(View<const float>{image.data(), bad, 1}, g, kIdentity),
               perfq::InvalidArgument);
  EXPECT_THROW(resample(image, g, kIdentity, footprint(perfq::io::kMaxFootprint + 1)),
               perfq::InvalidArgument);
  const Image<std::int32_t> labels4d(g, 2);
  EXPECT_THROW(resample_labels(labels4d, g, kIdentity), perfq::InvalidArgument);
  const perfq::Mask mask(g, 1, 1);
  EXPECT_THROW(resample_mask(mask, g, kIdentity, 0.0), perfq::InvalidArgument);
  EXPECT_THROW(resample_mask(mask, g, kIdentity, 1.5), perfq::InvalidArgument);
  EXPECT_THROW(resample_mask(mask, g, kIdentity, std::nan("")), perfq::InvalidArgument);
}

// ---- the JHU arterial-territory atlas (MNI152 2 mm) onto a coarse grid ------------------

TEST(ResampleAtlas, TerritoryVolumesSurviveARigidMoveOntoA3x3x6Grid) {
  const std::string path = std::string(PERFQ_SHARED_DATA) +
                           "/mni152-2mm/JHU-ArterialTerritoriesNoVent-LVL2_space-"
                           "MNI152NLin6Asym_2mm.nii.gz";
  if (!fs::exists(path)) GTEST_SKIP() << path << " is absent";
  const Image<std::int32_t> atlas = perfq::io::read_nifti_labels(path);
  const Geometry& s = atlas.geometry();
  const Point centre =
      physical(s, (s.dims[0] - 1) / 2.0, (s.dims[1] - 1) / 2.0, (s.dims[2] - 1) / 2.0);
  // Target points are rotated (0.1, −0.05, 0.15 rad) about the atlas centre and moved 4 mm.
  const Transform rigid = Transform::rigid({0.1, -0.05, 0.15}, {4.0, -3.0, 2.0}, centre);
  Geometry target;
  target.dims = {72, 84, 38};
  target.spacing = {3.0, 3.0, 6.0};
  for (int a = 0; a < 3; ++a) {
    target.origin[a] = centre[a] - target.spacing[a] * (target.dims[a] - 1) / 2.0;
  }
  const auto start = std::chrono::steady_clock::now();
  const Image<std::int32_t> out = resample_labels(atlas, target, rigid);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "atlas " << s.dims[0] << "x" << s.dims[1] << "x" << s.dims[2] << " onto "
            << target.dims[0] << "x" << target.dims[1] << "x" << target.dims[2]
            << " (3x3x6 mm, majority vote, footprint " << resample_footprint(s, target, rigid)[0]
            << "x" << resample_footprint(s, target, rigid)[1] << "x"
            << resample_footprint(s, target, rigid)[2] << "): " << seconds * 1000 << " ms\n";
  EXPECT_LT(seconds, 2.0);

  std::map<std::int32_t, double> before, after;
  for (std::int32_t v : atlas.values()) {
    if (v != 0) before[v] += 8.0;  // mm³
  }
  for (std::int32_t v : out.values()) {
    if (v != 0) after[v] += 54.0;
  }
  ASSERT_EQ(before.size(), 8u);
  for (const auto& [label, volume] : before) {
    ASSERT_TRUE(after.count(label)) << "label " << label << " lost";
    EXPECT_NEAR(after[label] / volume, 1.0, 0.03) << "label " << label;
    std::cout << "label " << label << ": " << volume << " -> " << after[label] << " mm3\n";
  }
  EXPECT_EQ(after.size(), before.size());
}

}  // namespace
