// Rigid registration (include/perfq/io/registration.hpp): ITK's v4 framework (Mattes mutual
// information, Euler3D transform, regular-step gradient descent, multi-resolution).
//
// ITK's metric is evaluated at points of its *fixed* image (the virtual domain). perfq gives
// that role to the image with the larger voxels (an EPI M0 of ~30k brain voxels instead of a
// T1w of ~1.5M), smooths the other to that resolution once, and inverts the rigid result
// exactly when the roles were swapped.
#include <perfq/errors.hpp>
#include <perfq/io/registration.hpp>

#include <itkCommand.h>
#include <itkEuler3DTransform.h>
#include <itkImage.h>
#include <itkImageMaskSpatialObject.h>
#include <itkImageRegistrationMethodv4.h>
#include <itkLinearInterpolateImageFunction.h>
#include <itkMattesMutualInformationImageToImageMetricv4.h>
#include <itkRegularStepGradientDescentOptimizerv4.h>
#include <itkResampleImageFilter.h>
#include <itkSmoothingRecursiveGaussianImageFilter.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace {

using ItkImage = itk::Image<float, 3>;
using ItkMask = itk::Image<unsigned char, 3>;
using MaskObject = itk::ImageMaskSpatialObject<3>;
using Euler = itk::Euler3DTransform<double>;
using Point = std::array<double, 3>;

/// Mattes mutual information whose work units can be set: ITK sizes its threaders' partitions
/// from the processor count, and the partition decides the order of the metric's sums.
class MattesMetric : public itk::MattesMutualInformationImageToImageMetricv4<ItkImage, ItkImage> {
 public:
  using Self = MattesMetric;
  using Pointer = itk::SmartPointer<Self>;
  itkNewMacro(Self);
  void set_work_units(unsigned units) {
    this->m_DenseGetValueAndDerivativeThreader->SetNumberOfWorkUnits(units);
    this->m_SparseGetValueAndDerivativeThreader->SetNumberOfWorkUnits(units);
    this->SetMaximumNumberOfWorkUnits(units);
  }

 protected:
  MattesMetric() = default;
};

void require_volume(const View<const float>& image, const std::string& name) {
  if (image.empty()) throw InvalidArgument("register_rigid: the " + name + " image is empty");
  if (image.volumes != 1) {
    throw InvalidArgument("register_rigid: the " + name + " image has " +
                          std::to_string(image.volumes) +
                          " volumes; pass one volume (e.g. the M0 or the mean control image)");
  }
}

void require_mask(const Mask* mask, const Geometry& grid, const std::string& name) {
  if (mask == nullptr) return;
  if (mask->volumes() != 1 || !mask->geometry().same_grid(grid)) {
    throw InvalidArgument("register_rigid: the " + name + " mask does not lie on the " + name +
                          " image's grid");
  }
  if (std::none_of(mask->values().begin(), mask->values().end(),
                   [](std::uint8_t v) { return v != 0; })) {
    throw InvalidArgument("register_rigid: the " + name + " mask is empty");
  }
}

template <class ItkImageType>
void set_geometry(ItkImageType* image, const Geometry& g) {
  typename ItkImageType::SizeType size;
  typename ItkImageType::SpacingType spacing;
  typename ItkImageType::PointType origin;
  typename ItkImageType::DirectionType direction;
  for (unsigned a = 0; a < 3; ++a) {
    size[a] = g.dims[a];
    spacing[a] = g.spacing[a];
    origin[a] = g.origin[a];
    for (unsigned c = 0; c < 3; ++c) direction(a, c) = g.direction[3 * a + c];
  }
  image->SetRegions(typename ItkImageType::RegionType(size));
  image->SetSpacing(spacing);
  image->SetOrigin(origin);
  image->SetDirection(direction);
  image->Allocate();
}

Point physical(const Geometry& g, double i, double j, double k) {
  Point p{};
  const double v[3] = {i * g.spacing[0], j * g.spacing[1], k * g.spacing[2]};
  for (int r = 0; r < 3; ++r) {
    p[r] = g.origin[r] + g.direction[3 * r] * v[0] + g.direction[3 * r + 1] * v[1] +
           g.direction[3 * r + 2] * v[2];
  }
  return p;
}

/// The image as ITK's, NaNs set to 0 and values clipped to their 0.5–99.5 percentiles inside
/// the mask (as antsRegistration's --winsorize-image-intensities in fMRIPrep): a few bright
/// voxels (vessels, fat) would otherwise squeeze the tissue into a few histogram bins.
ItkImage::Pointer to_itk(const View<const float>& image, const Mask* mask) {
  const std::size_t n = image.voxel_count();
  std::vector<float> values;
  const std::size_t stride = std::max<std::size_t>(1, n / 1000000);
  for (std::size_t i = 0; i < n; i += stride) {
    if (mask != nullptr && (*mask)[i] == 0) continue;
    if (std::isfinite(image.data[i])) values.push_back(image.data[i]);
  }
  float low = 0.0f;
  float high = 0.0f;
  if (!values.empty()) {
    const auto at = [&values](double q) {
      auto k = values.begin() + static_cast<std::ptrdiff_t>(q * (values.size() - 1));
      std::nth_element(values.begin(), k, values.end());
      return *k;
    };
    low = at(0.005);
    high = at(0.995);
  }
  auto out = ItkImage::New();
  set_geometry(out.GetPointer(), image.geometry);
  float* dst = out->GetBufferPointer();
  for (std::size_t i = 0; i < n; ++i) {
    const float v = image.data[i];
    dst[i] = std::isfinite(v) ? std::min(std::max(v, low), high) : 0.0f;
  }
  return out;
}

MaskObject::Pointer to_mask_object(const Mask* mask) {
  if (mask == nullptr) return nullptr;
  auto image = ItkMask::New();
  set_geometry(image.GetPointer(), mask->geometry());
  std::copy(mask->values().begin(), mask->values().end(), image->GetBufferPointer());
  auto object = MaskObject::New();
  object->SetImage(image);
  object->Update();
  return object;
}

/// The voxels of the imaged object: inside the mask, or without one above a fifth of the
/// (clipped) maximum, which leaves out the background's noise.
std::vector<bool> object_voxels(const ItkImage* clipped, const Mask* mask, std::size_t n) {
  const float* v = clipped->GetBufferPointer();
  std::vector<bool> inside(n);
  const float high = *std::max_element(v, v + n);
  for (std::size_t i = 0; i < n; ++i) {
    inside[i] = mask != nullptr ? (*mask)[i] != 0 : (high > 0.0f && v[i] > 0.2f * high);
  }
  return inside;
}

/// Intensity-weighted centre of the object's positive voxels (the grid's centre when there
/// are none).
Point centroid(const Geometry& g, const ItkImage* clipped, const std::vector<bool>& inside) {
  const float* v = clipped->GetBufferPointer();
  double sum = 0.0;
  Point c{0.0, 0.0, 0.0};
  for (std::size_t z = 0; z < g.dims[2]; ++z) {
    for (std::size_t y = 0; y < g.dims[1]; ++y) {
      for (std::size_t x = 0; x < g.dims[0]; ++x) {
        const std::size_t i = g.index(x, y, z);
        if (v[i] <= 0.0f || !inside[i]) continue;
        const Point p = physical(g, x, y, z);
        for (int a = 0; a < 3; ++a) c[a] += v[i] * p[a];
        sum += v[i];
      }
    }
  }
  if (sum <= 0.0) {
    return physical(g, 0.5 * (g.dims[0] - 1), 0.5 * (g.dims[1] - 1), 0.5 * (g.dims[2] - 1));
  }
  for (double& a : c) a /= sum;
  return c;
}

/// The finer image smoothed to the coarser one's voxel size (the variance a box of the coarse
/// voxel's extent along each axis adds over the fine voxel's own) and resampled to half that
/// size: the metric then compares like with like, and ITK's per-level smoothing and gradient
/// run on a few million voxels instead of a whole 1 mm head.
ItkImage::Pointer match_resolution(ItkImage::Pointer fine, const Geometry& fine_grid,
                                   const Geometry& coarse_grid) {
  std::array<double, 3> extent{};  // the coarse voxel's extent along each fine axis
  double coarse_min = *std::min_element(coarse_grid.spacing.begin(), coarse_grid.spacing.end());
  itk::FixedArray<double, 3> sigma;
  bool smooth = false;
  for (int i = 0; i < 3; ++i) {
    for (int a = 0; a < 3; ++a) {
      double dot = 0.0;  // fine axis i · coarse axis a
      for (int r = 0; r < 3; ++r) {
        dot += fine_grid.direction[3 * r + i] * coarse_grid.direction[3 * r + a];
      }
      extent[i] += coarse_grid.spacing[a] * std::abs(dot);
    }
    const double s = fine_grid.spacing[i];
    sigma[i] = std::sqrt(std::max(0.0, extent[i] * extent[i] - s * s) / 12.0);
    smooth = smooth || sigma[i] > 0.05 * s;
  }
  ItkImage::Pointer image = fine;
  if (smooth) {
    using Smooth = itk::SmoothingRecursiveGaussianImageFilter<ItkImage, ItkImage>;
    auto filter = Smooth::New();
    filter->SetInput(image);
    filter->SetSigmaArray(sigma);
    filter->Update();
    image = filter->GetOutput();
    image->DisconnectPipeline();
  }
  ItkImage::SpacingType spacing;
  ItkImage::SizeType size;
  ItkImage::PointType origin = image->GetOrigin();
  bool resample = false;
  for (int i = 0; i < 3; ++i) {
    spacing[i] = std::max(fine_grid.spacing[i], 0.5 * coarse_min);
    size[i] = std::max<itk::SizeValueType>(
        1, static_cast<itk::SizeValueType>(
               std::floor(fine_grid.dims[i] * fine_grid.spacing[i] / spacing[i])));
    resample = resample || spacing[i] > 1.2 * fine_grid.spacing[i];
  }
  if (!resample) return image;
  for (int r = 0; r < 3; ++r) {  // the new grid covers the old one's extent
    for (int i = 0; i < 3; ++i) {
      origin[r] += fine_grid.direction[3 * r + i] * 0.5 * (spacing[i] - fine_grid.spacing[i]);
    }
  }
  using Resample = itk::ResampleImageFilter<ItkImage, ItkImage>;
  auto filter = Resample::New();
  filter->SetInput(image);
  filter->SetOutputSpacing(spacing);
  filter->SetOutputOrigin(origin);
  filter->SetOutputDirection(image->GetDirection());
  filter->SetSize(size);
  filter->SetDefaultPixelValue(0.0f);
  filter->Update();
  ItkImage::Pointer out = filter->GetOutput();
  out->DisconnectPipeline();
  return out;
}

/// The metric on every voxel of `fixed` inside its mask (no jitter) for `transform`.
std::pair<double, std::size_t> dense_metric(ItkImage* fixed, ItkImage* moving,
                                            MaskObject* fixed_mask, MaskObject* moving_mask,
                                            Euler* transform, unsigned bins, unsigned units) {
  auto metric = MattesMetric::New();
  metric->SetNumberOfHistogramBins(bins);
  metric->SetFixedImage(fixed);
  metric->SetMovingImage(moving);
  if (fixed_mask != nullptr) metric->SetFixedImageMask(fixed_mask);
  if (moving_mask != nullptr) metric->SetMovingImageMask(moving_mask);
  metric->SetVirtualDomainFromImage(fixed);
  metric->SetMovingTransform(transform);
  metric->SetUseFixedImageGradientFilter(false);
  metric->SetUseMovingImageGradientFilter(false);
  if (units > 0) metric->set_work_units(units);
  metric->Initialize();
  const double value = metric->GetValue();
  return {value, metric->GetNumberOfValidPoints()};
}

/// Records the optimizer's iterations and stop condition at the end of each level.
class LevelObserver : public itk::Command {
 public:
  using Self = LevelObserver;
  using Pointer = itk::SmartPointer<Self>;
  itkNewMacro(Self);
  using Optimizer = itk::RegularStepGradientDescentOptimizerv4<double>;

  void Execute(itk::Object* caller, const itk::EventObject& event) override {
    Execute(static_cast<const itk::Object*>(caller), event);
  }
  void Execute(const itk::Object*, const itk::EventObject& event) override {
    if (!itk::MultiResolutionIterationEvent().CheckEvent(&event)) return;
    if (started) finish_level();
    started = true;
  }
  void finish_level() {
    iterations.push_back(optimizer->GetCurrentIteration());
    stop = optimizer->GetStopConditionDescription();
  }

  Optimizer* optimizer = nullptr;
  bool started = false;
  std::vector<std::size_t> iterations;
  std::string stop;
};

}  // namespace

RegistrationResult register_rigid(View<const float> moving, View<const float> fixed,
                                  const RegistrationOptions& o) {
  require_volume(moving, "moving");
  require_volume(fixed, "fixed");
  require_mask(o.moving_mask, moving.geometry, "moving");
  require_mask(o.fixed_mask, fixed.geometry, "fixed");
  const std::size_t levels = o.shrink_factors.size();
  if (levels == 0 || o.smoothing_sigmas_mm.size() != levels) {
    throw InvalidArgument("register_rigid: give one smoothing sigma per level (" +
                          std::to_string(levels) + " shrink factors, " +
                          std::to_string(o.smoothing_sigmas_mm.size()) + " sigmas)");
  }
  for (std::size_t l = 0; l < levels; ++l) {
    if (o.shrink_factors[l] < 1 || !(o.smoothing_sigmas_mm[l] >= 0.0)) {
      throw InvalidArgument("register_rigid: shrink factors must be ≥ 1 and sigmas ≥ 0");
    }
  }
  if (!(o.sampling_fraction > 0.0 && o.sampling_fraction <= 1.0)) {
    throw InvalidArgument("register_rigid: sampling_fraction must be in (0, 1]");
  }
  if (o.histogram_bins < 5) throw InvalidArgument("register_rigid: histogram_bins must be ≥ 5");
  if (o.max_iterations < 1 || !(o.initial_step_mm > 0.0) || !(o.min_step_mm > 0.0)) {
    throw InvalidArgument(
        "register_rigid: max_iterations, initial_step_mm and min_step_mm must be > 0");
  }
  if (o.threads < 0) throw InvalidArgument("register_rigid: threads must be ≥ 0");

  // The image with the larger voxels is ITK's fixed image: its voxels are the sample points.
  const auto voxel_volume = [](const Geometry& g) {
    return g.spacing[0] * g.spacing[1] * g.spacing[2];
  };
  const bool sample_moving = voxel_volume(moving.geometry) >= voxel_volume(fixed.geometry);
  const View<const float>& coarse = sample_moving ? moving : fixed;
  const View<const float>& fine = sample_moving ? fixed : moving;
  const Mask* coarse_mask = sample_moving ? o.moving_mask : o.fixed_mask;
  const Mask* fine_mask = sample_moving ? o.fixed_mask : o.moving_mask;
  const unsigned units = static_cast<unsigned>(o.threads);

  try {
    ItkImage::Pointer coarse_image = to_itk(coarse, coarse_mask);
    ItkImage::Pointer fine_clipped = to_itk(fine, fine_mask);
    const std::vector<bool> coarse_object_voxels =
        object_voxels(coarse_image, coarse_mask, coarse.voxel_count());
    const Point c = centroid(coarse.geometry, coarse_image, coarse_object_voxels);
    Point shift{0.0, 0.0, 0.0};
    if (o.start == RegistrationStart::Moments) {
      const Point f = centroid(fine.geometry, fine_clipped,
                               object_voxels(fine_clipped, fine_mask, fine.voxel_count()));
      for (int a = 0; a < 3; ++a) shift[a] = f[a] - c[a];
    } else if (o.start == RegistrationStart::Geometry) {
      const auto mid = [](const Geometry& g) {
        return physical(g, 0.5 * (g.dims[0] - 1), 0.5 * (g.dims[1] - 1), 0.5 * (g.dims[2] - 1));
      };
      const Point f = mid(fine.geometry);
      const Point m = mid(coarse.geometry);
      for (int a = 0; a < 3; ++a) shift[a] = f[a] - m[a];
    }
    ItkImage::Pointer fine_image = match_resolution(fine_clipped, fine.geometry, coarse.geometry);
    fine_clipped = nullptr;
    MaskObject::Pointer coarse_object = to_mask_object(coarse_mask);
    MaskObject::Pointer fine_object = to_mask_object(fine_mask);

    // Parameter scales (as ITK's RegistrationParameterScalesFromPhysicalShift, but averaged
    // over the object rather than its farthest corner): a rotation about axis k moves the
    // object's voxels by their distance from that axis per radian, so its scale is the mean
    // squared distance; a translation's is 1.
    std::array<double, 3> spread{0.0, 0.0, 0.0};
    std::size_t count = 0;
    const Geometry& cg = coarse.geometry;
    for (std::size_t z = 0; z < cg.dims[2]; ++z) {
      for (std::size_t y = 0; y < cg.dims[1]; ++y) {
        for (std::size_t x = 0; x < cg.dims[0]; ++x) {
          if (!coarse_object_voxels[cg.index(x, y, z)]) continue;
          const Point p = physical(cg, x, y, z);
          const double d[3] = {p[0] - c[0], p[1] - c[1], p[2] - c[2]};
          spread[0] += d[1] * d[1] + d[2] * d[2];
          spread[1] += d[0] * d[0] + d[2] * d[2];
          spread[2] += d[0] * d[0] + d[1] * d[1];
          ++count;
        }
      }
    }
    for (double& s2 : spread) s2 = count > 0 ? std::max(1.0, s2 / count) : 1.0;
    // The mean squared distance, times 0.3: steps in rotation three times larger than the
    // average voxel's shift warrants (the metric's gradient comes from the object's edges, far
    // from its centre); tuned on the synthetic tests, where it halved the rotation error left
    // when the step had shrunk below min_step_mm.
    constexpr double kRotationScale = 0.3;

    auto initial = Euler::New();
    Euler::InputPointType center;
    Euler::OutputVectorType translation;
    for (int a = 0; a < 3; ++a) {
      center[a] = c[a];
      translation[a] = shift[a];
    }
    initial->SetCenter(center);
    initial->SetTranslation(translation);
    auto start = Euler::New();
    start->SetFixedParameters(initial->GetFixedParameters());
    start->SetParameters(initial->GetParameters());

    auto metric = MattesMetric::New();
    metric->SetNumberOfHistogramBins(o.histogram_bins);
    metric->SetUseFixedImageGradientFilter(false);
    if (coarse_object) metric->SetFixedImageMask(coarse_object);
    if (fine_object) metric->SetMovingImageMask(fine_object);
    if (units > 0) metric->set_work_units(units);

    using Optimizer = itk::RegularStepGradientDescentOptimizerv4<double>;
    auto optimizer = Optimizer::New();
    optimizer->SetLearningRate(o.initial_step_mm);
    optimizer->SetMinimumStepLength(o.min_step_mm);
    optimizer->SetRelaxationFactor(0.6);
    optimizer->SetNumberOfIterations(o.max_iterations);
    optimizer->SetGradientMagnitudeTolerance(1e-8);
    optimizer->SetDoEstimateLearningRateOnce(false);
    optimizer->SetDoEstimateLearningRateAtEachIteration(false);
    Optimizer::ScalesType scales(6);
    for (int a = 0; a < 3; ++a) {
      scales[a] = kRotationScale * spread[a];
      scales[3 + a] = 1.0;
    }
    optimizer->SetScales(scales);
    if (units > 0) optimizer->SetNumberOfWorkUnits(units);

    using Registration = itk::ImageRegistrationMethodv4<ItkImage, ItkImage, Euler>;
    auto registration = Registration::New();
    registration->SetFixedImage(coarse_image);
    registration->SetMovingImage(fine_image);
    registration->SetMetric(metric);
    registration->SetOptimizer(optimizer);
    registration->SetInitialTransform(initial);
    registration->InPlaceOn();
    registration->SetNumberOfLevels(static_cast<unsigned>(levels));
    Registration::SmoothingSigmasArrayType sigmas(static_cast<unsigned>(levels));
    for (std::size_t l = 0; l < levels; ++l) {
      Registration::ShrinkFactorsPerDimensionContainerType factors;
      for (unsigned a = 0; a < 3; ++a) {  // at least 8 voxels along each axis
        const auto most = std::max<std::size_t>(1, cg.dims[a] / 8);
        factors[a] = static_cast<unsigned>(std::min<std::size_t>(o.shrink_factors[l], most));
      }
      registration->SetShrinkFactorsPerDimension(static_cast<unsigned>(l), factors);
      sigmas[static_cast<unsigned>(l)] = o.smoothing_sigmas_mm[l];
    }
    registration->SetSmoothingSigmasPerLevel(sigmas);
    registration->SmoothingSigmasAreSpecifiedInPhysicalUnitsOn();
    registration->SetMetricSamplingStrategy(Registration::MetricSamplingStrategyEnum::REGULAR);
    registration->SetMetricSamplingPercentage(o.sampling_fraction);
    registration->MetricSamplingReinitializeSeed(static_cast<int>(o.seed % 2147483647u));
    if (units > 0) registration->SetNumberOfWorkUnits(units);

    auto observer = LevelObserver::New();
    observer->optimizer = optimizer;
    registration->AddObserver(itk::MultiResolutionIterationEvent(), observer);
    registration->Update();
    observer->finish_level();

    Euler* found = registration->GetModifiableTransform();
    RegistrationResult result;
    result.iterations = observer->iterations;
    result.stop_condition = observer->stop;
    result.sampled_image = sample_moving ? "moving" : "fixed";
    const auto before = dense_metric(coarse_image, fine_image, coarse_object, fine_object, start,
                                     o.histogram_bins, units);
    const auto after = dense_metric(coarse_image, fine_image, coarse_object, fine_object, found,
                                    o.histogram_bins, units);
    result.initial_metric = before.first;
    result.final_metric = after.first;
    result.samples = after.second;
    if (result.samples < 100) {
      throw InvalidArgument("register_rigid: only " + std::to_string(result.samples) +
                            " sample points where the images (and their masks) overlap");
    }

    // ITK's transform maps coarse points to fine ones; perfq's maps fixed to moving points.
    auto out = Euler::New();
    if (!sample_moving) {
      out->SetFixedParameters(found->GetFixedParameters());
      out->SetParameters(found->GetParameters());
    } else {
      // Inverse of R (p − c) + c + t about c' = c + t: Rᵀ (q − c') + c' − t.
      Euler::InputPointType inverse_center;
      Euler::OutputVectorType inverse_translation;
      for (int a = 0; a < 3; ++a) {
        inverse_center[a] = found->GetCenter()[a] + found->GetTranslation()[a];
        inverse_translation[a] = -found->GetTranslation()[a];
      }
      out->SetCenter(inverse_center);
      out->SetMatrix(Euler::MatrixType(found->GetMatrix().GetTranspose()));
      out->SetTranslation(inverse_translation);
    }
    result.angles = {out->GetAngleX(), out->GetAngleY(), out->GetAngleZ()};
    for (int a = 0; a < 3; ++a) {
      result.translation[a] = out->GetTranslation()[a];
      result.center[a] = out->GetCenter()[a];
    }
    result.transform = Transform::rigid(result.angles, result.translation, result.center);
    return result;
  } catch (const itk::ExceptionObject& e) {
    throw Error(std::string("register_rigid: ITK failed: ") + e.GetDescription());
  }
}

}  // namespace io
PERFQ_NAMESPACE_END
