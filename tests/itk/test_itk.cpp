// perfq ⇄ ITK: the adapters keep geometry exactly and copy no voxel; the ITK filters give what
// the perfq calls give (bitwise), inside a pipeline, and report perfq's errors as ITK
// exceptions.
#include <perfq/asl_series.hpp>
#include <perfq/cbf.hpp>
#include <perfq/itk/adapters.hpp>
#include <perfq/itk/filters.hpp>
#include <perfq/kinetic.hpp>
#include <perfq/phantom.hpp>
#include <perfq/watershed.hpp>

#include <gtest/gtest.h>
#include <itkImageRegionConstIterator.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace {

namespace bridge = perfq::itk_bridge;
using FloatImage = itk::Image<float, 3>;

perfq::Execution cpu() {
  perfq::Execution e;
  e.backend = perfq::Backend::Cpu;
  return e;
}

/// An oblique, anisotropic grid with a non-trivial origin.
perfq::Geometry oblique_grid() {
  perfq::Geometry g;
  g.dims = {5, 4, 3};
  g.spacing = {1.5, 2.0, 3.25};
  g.origin = {-10.5, 20.25, 3.0};
  const double c = std::cos(0.3), s = std::sin(0.3);
  g.direction = {c, -s, 0, s, c, 0, 0, 0, 1};
  return g;
}

template <class T>
bool bitwise_equal(const T* a, const T* b, std::size_t n) {
  return std::memcmp(a, b, n * sizeof(T)) == 0;
}

TEST(ItkAdapters, GeometryRoundTripsExactly) {
  const auto g = oblique_grid();
  perfq::Volume<float> volume(g, 1, 2.5f);
  const auto image = bridge::to_itk(volume.view());
  // ITK sees the same physical position for a voxel as perfq's documented mapping.
  FloatImage::IndexType index{{3, 2, 1}};
  FloatImage::PointType p;
  image->TransformIndexToPhysicalPoint(index, p);
  for (int a = 0; a < 3; ++a) {
    double expected = g.origin[a];
    for (int c = 0; c < 3; ++c) expected += g.direction[3 * a + c] * g.spacing[c] * index[c];
    EXPECT_NEAR(p[a], expected, 1e-12) << "axis " << a;
  }
  const auto back = bridge::view(image.GetPointer());
  EXPECT_EQ(back.geometry.dims, g.dims);
  EXPECT_EQ(back.geometry.spacing, g.spacing);
  EXPECT_EQ(back.geometry.origin, g.origin);
  EXPECT_EQ(back.geometry.direction, g.direction);
  EXPECT_EQ(back.volumes, 1u);
}

TEST(ItkAdapters, RegionStartingAwayFromZeroMapsToThePhysicalFirstVoxel) {
  auto image = FloatImage::New();
  FloatImage::RegionType region;
  region.SetIndex({{2, -1, 4}});
  region.SetSize({{3, 3, 2}});
  image->SetRegions(region);
  FloatImage::SpacingType spacing;
  spacing.Fill(2.0);
  image->SetSpacing(spacing);
  image->Allocate();
  FloatImage::PointType first;
  image->TransformIndexToPhysicalPoint(region.GetIndex(), first);
  const auto v = bridge::view(image.GetPointer());
  EXPECT_EQ(v.geometry.origin[0], first[0]);
  EXPECT_EQ(v.geometry.origin[1], first[1]);
  EXPECT_EQ(v.geometry.origin[2], first[2]);
  EXPECT_EQ(v.geometry.origin[0], 4.0);
  EXPECT_EQ(v.geometry.origin[1], -2.0);
}

TEST(ItkAdapters, ViewWrapAndAdoptCopyNoVoxel) {
  const auto g = oblique_grid();
  perfq::Volume<float> volume(g, 1, 0.0f);
  for (std::size_t i = 0; i < volume.size(); ++i) volume[i] = static_cast<float>(i);

  // wrap: ITK over perfq memory; writes through ITK land in perfq's buffer.
  const auto wrapped = bridge::wrap(volume.view());
  EXPECT_EQ(wrapped->GetBufferPointer(), volume.data());
  wrapped->SetPixel({{1, 1, 1}}, -7.0f);
  EXPECT_EQ(volume.at(1, 1, 1), -7.0f);

  // view: perfq over ITK memory.
  const auto v = bridge::view(wrapped.GetPointer());
  EXPECT_EQ(v.data, volume.data());

  // adopt: ITK takes the buffer itself; the perfq image is left empty.
  const float* buffer = volume.data();
  const auto adopted = bridge::adopt(std::move(volume));
  EXPECT_EQ(adopted->GetBufferPointer(), buffer);
  EXPECT_EQ(volume.size(), 0u);  // NOLINT(bugprone-use-after-move): documented state
  EXPECT_EQ(adopted->GetPixel({{4, 3, 2}}), static_cast<float>(g.index(4, 3, 2)));
  EXPECT_EQ(adopted->GetPixel({{1, 1, 1}}), -7.0f);
}

TEST(ItkAdapters, SeriesMapTo4DImages) {
  auto g = oblique_grid();
  perfq::Series<float> series(g, 6, 0.0f);
  for (std::size_t i = 0; i < series.size(); ++i) series[i] = 0.5f * static_cast<float>(i);
  const auto image = bridge::to_itk<4>(series.view());
  EXPECT_EQ(image->GetLargestPossibleRegion().GetSize(3), 6u);
  EXPECT_EQ(image->GetPixel({{2, 1, 0, 4}}), series.at(2, 1, 0, 4));
  const auto v = bridge::view(image.GetPointer());
  EXPECT_EQ(v.volumes, 6u);
  EXPECT_TRUE(v.geometry.same_grid(g, 0.0));
  EXPECT_TRUE(bitwise_equal(v.data, series.data(), series.size()));
  // A series does not fit a 3D ITK image.
  EXPECT_THROW(bridge::to_itk<3>(series.view()), perfq::InvalidArgument);
}

TEST(ItkAdapters, RefusesAStreamedPiece) {
  auto image = FloatImage::New();
  FloatImage::RegionType whole;
  whole.SetSize({{8, 8, 8}});
  image->SetLargestPossibleRegion(whole);
  FloatImage::RegionType piece;
  piece.SetSize({{8, 8, 2}});
  image->SetBufferedRegion(piece);
  image->Allocate();
  try {
    (void)bridge::view(image.GetPointer());
    FAIL() << "a streamed piece was viewed";
  } catch (const perfq::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("largest possible region"), std::string::npos) << e.what();
  }
  EXPECT_THROW(bridge::view(static_cast<const FloatImage*>(nullptr)), perfq::InvalidArgument);
}

TEST(ItkFilters, CbfFilterGivesTheWhitePaperValue) {
  // ΔM 10, M0 1000, PCASL PLD 1.8 s, τ 1.8 s: 86.2999 ml/100 g/min (hand-computed, as in
  // tests/core/test_single_delay.cpp).
  perfq::Geometry g;
  g.dims = {3, 2, 2};
  perfq::Volume<float> delta_m(g, 1, 10.0f);
  delta_m[5] = std::nanf("");
  perfq::AslProtocol protocol;
  protocol.post_labeling_delay = {1.8};
  protocol.labeling_duration = {1.8};
  auto filter = bridge::CbfImageFilter::New();
  filter->SetInput(bridge::to_itk(delta_m.view()));
  filter->SetM0Value(1000.0);
  filter->SetProtocol(protocol);
  filter->SetExecution(cpu());
  filter->Update();
  const auto* cbf = filter->GetOutput();
  EXPECT_NEAR(cbf->GetPixel({{0, 0, 0}}), 86.2999f, 1e-3f);
  EXPECT_EQ(filter->GetStatusOutput()->GetPixel({{2, 1, 0}}),
            static_cast<std::uint8_t>(perfq::VoxelStatus::NonFiniteInput));
  EXPECT_EQ(cbf->GetPixel({{2, 1, 0}}), 0.0f);
  EXPECT_EQ(filter->GetBackend(), perfq::Backend::Cpu);
  EXPECT_NEAR(filter->GetConstants().t1_blood, 1.65, 1e-12);
}

struct PhantomInputs {
  perfq::Phantom phantom;
  perfq::PreparedAsl prepared;
};

PhantomInputs phantom_inputs(std::vector<double> delays) {
  perfq::PhantomOptions options;
  options.dims = {24, 28, 20};
  options.voxel_mm = 6.0;
  options.delays = std::move(delays);
  options.repeats = 1;
  options.snr = 20;
  PhantomInputs in{perfq::make_phantom(options), {}};
  in.prepared = perfq::prepare_asl(in.phantom.asl, in.phantom.context, in.phantom.protocol);
  return in;
}

TEST(ItkFilters, CbfFilterInAPipelineEqualsQuantifyCbf) {
  const auto in = phantom_inputs({1.8});
  const auto direct = perfq::quantify_cbf(in.prepared.delta_m, perfq::M0Source::from_image(
                                          in.phantom.m0), in.phantom.protocol,
                                          in.phantom.physiology, in.phantom.brain.view(), cpu());
  auto filter = bridge::CbfImageFilter::New();
  filter->SetInput(bridge::to_itk(in.prepared.delta_m.view()));
  filter->SetM0Image(bridge::to_itk(in.phantom.m0.view()));
  filter->SetMaskImage(bridge::to_itk(in.phantom.brain.view()));
  filter->SetProtocol(in.phantom.protocol);
  filter->SetPhysiology(in.phantom.physiology);
  filter->SetExecution(cpu());
  // Downstream of the filter, as any ITK consumer would pull it.
  auto status = filter->GetStatusOutput();
  status->Update();
  const auto cbf = bridge::view(filter->GetOutput());
  EXPECT_TRUE(cbf.geometry.same_grid(direct.cbf.geometry(), 0.0));
  EXPECT_TRUE(bitwise_equal(cbf.data, direct.cbf.data(), direct.cbf.size()));
  EXPECT_TRUE(bitwise_equal(bridge::view(status).data, direct.status.data(), direct.status.size()));
  // Re-running without changes does not recompute; changing a parameter does.
  const float* before = filter->GetOutput()->GetBufferPointer();
  filter->Update();
  EXPECT_EQ(filter->GetOutput()->GetBufferPointer(), before);
  filter->SetM0Value(1.0);  // no effect on the result (the M0 image wins) but marks Modified
  filter->Update();
  EXPECT_TRUE(bitwise_equal(filter->GetOutput()->GetBufferPointer(), direct.cbf.data(),
                            direct.cbf.size()));
}

TEST(ItkFilters, KineticFilterEqualsFitKinetic) {
  const auto in = phantom_inputs({0.5, 1.0, 1.5, 2.0, 2.5});
  perfq::KineticOptions options;
  options.variant = perfq::KineticVariant::WhitePaper;
  const auto& protocol = in.prepared.protocol;
  const auto direct = perfq::fit_kinetic(in.prepared.delta_m, perfq::M0Source::from_image(
                                         in.phantom.m0), protocol, in.phantom.physiology, options,
                                         in.phantom.brain.view(), cpu());
  auto filter = bridge::KineticFitImageFilter::New();
  filter->SetInput(bridge::to_itk<4>(in.prepared.delta_m.view()));
  filter->SetM0Image(bridge::to_itk(in.phantom.m0.view()));
  filter->SetMaskImage(bridge::to_itk(in.phantom.brain.view()));
  filter->SetProtocol(protocol);
  filter->SetPhysiology(in.phantom.physiology);
  filter->SetOptions(options);
  filter->SetExecution(cpu());
  filter->Update();
  using K = bridge::KineticFitImageFilter;
  const auto n = direct.cbf.size();
  const auto cbf = bridge::view(filter->GetMapOutput(K::kCbf));
  EXPECT_EQ(cbf.volumes, 1u);
  EXPECT_TRUE(cbf.geometry.same_grid(direct.cbf.geometry(), 0.0));
  EXPECT_TRUE(bitwise_equal(cbf.data, direct.cbf.data(), n));
  EXPECT_TRUE(bitwise_equal(bridge::view(filter->GetMapOutput(K::kAtt)).data, direct.att.data(), n));
  EXPECT_TRUE(
      bitwise_equal(bridge::view(filter->GetMapOutput(K::kCbfSe)).data, direct.cbf_se.data(), n));
  EXPECT_TRUE(
      bitwise_equal(bridge::view(filter->GetMapOutput(K::kAttSe)).data, direct.att_se.data(), n));
  EXPECT_TRUE(bitwise_equal(bridge::view(filter->GetStatusOutput()).data, direct.status.data(), n));
  EXPECT_EQ(filter->GetMapOutput(K::kStatus), nullptr);
  // And the fit is the phantom's truth where the tissue is: median CBF error in GM < 10 %.
  std::vector<double> errors;
  for (std::size_t i = 0; i < n; ++i) {
    if (in.phantom.tissue[i] == perfq::kGreyMatter && in.phantom.cbf[i] > 0) {
      errors.push_back(std::abs(cbf.data[i] - in.phantom.cbf[i]) / in.phantom.cbf[i]);
    }
  }
  ASSERT_FALSE(errors.empty());
  std::nth_element(errors.begin(), errors.begin() + errors.size() / 2, errors.end());
  EXPECT_LT(errors[errors.size() / 2], 0.10);
}

TEST(ItkFilters, BorderZoneFilterEqualsBorderZones) {
  const auto in = phantom_inputs({1.8});
  const auto direct = perfq::border_zones(in.phantom.territories.view(), in.phantom.brain.view(),
                                          12.0, cpu());
  auto filter = bridge::BorderZoneImageFilter::New();
  filter->SetInput(bridge::to_itk(in.phantom.territories.view()));
  filter->SetBrainMask(bridge::to_itk(in.phantom.brain.view()));
  filter->SetWidthMm(12.0);
  filter->SetExecution(cpu());
  filter->Update();
  const auto n = direct.mask.size();
  EXPECT_TRUE(bitwise_equal(bridge::view(filter->GetOutput()).data, direct.mask.data(), n));
  EXPECT_TRUE(bitwise_equal(bridge::view(filter->GetPairsOutput()).data, direct.pairs.data(), n));
  EXPECT_EQ(filter->GetTerritories(), direct.territories);
  std::size_t inside = 0;
  for (std::size_t i = 0; i < n; ++i) inside += direct.mask[i];
  EXPECT_GT(inside, 0u);
}

TEST(ItkFilters, PerfqErrorsReachThePipelineAsItkExceptions) {
  perfq::Geometry g;
  g.dims = {4, 4, 4};
  perfq::Volume<float> delta_m(g, 1, 1.0f);
  perfq::AslProtocol protocol;
  protocol.post_labeling_delay = {1.8};
  protocol.labeling_duration = {1.8};
  auto filter = bridge::CbfImageFilter::New();
  filter->SetInput(bridge::to_itk(delta_m.view()));
  filter->SetProtocol(protocol);
  filter->SetExecution(cpu());
  // No M0 image and no M0 value: perfq refuses a non-positive M0.
  try {
    filter->Update();
    FAIL() << "no exception";
  } catch (const itk::ExceptionObject& e) {
    const std::string what = e.GetDescription();
    EXPECT_NE(what.find("CbfImageFilter"), std::string::npos) << what;
    EXPECT_NE(what.find("M0"), std::string::npos) << what;
  }
  // An M0 image on another grid: ITK's own physical-space check, also an ITK exception.
  auto other = g;
  other.spacing = {2.0, 2.0, 2.0};
  perfq::Volume<float> m0(other, 1, 1000.0f);
  filter->SetM0Image(bridge::to_itk(m0.view()));
  EXPECT_THROW(filter->Update(), itk::ExceptionObject);
  // Fewer than two territories.
  perfq::Volume<std::int32_t> one(g, 1, 1);
  auto zones = bridge::BorderZoneImageFilter::New();
  zones->SetInput(bridge::to_itk(one.view()));
  EXPECT_THROW(zones->Update(), itk::ExceptionObject);
}

}  // namespace
