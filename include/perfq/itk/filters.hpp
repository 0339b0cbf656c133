/// @file
/// @brief perfq as ITK pipeline filters: single-delay CBF, the multi-delay fit and border zones.
///
/// Header-only, outside the core API (link `perfq::itk`; see perfq/itk/adapters.hpp). Each
/// filter computes the whole image at once (perfq's algorithms are not streamed): it requests
/// the largest possible region of every input and produces the largest possible region of
/// every output. Inputs are read in place and outputs take over perfq's result buffers, so no
/// voxel is copied on the way in or out.
///
/// Errors: perfq's exceptions (perfq::InvalidArgument, perfq::BackendError, ...) reach an ITK
/// pipeline as `itk::ExceptionObject` whose description starts with the filter's name and
/// carries perfq's message, so ITK code handles them as it handles any filter's failure.
/// Inputs of one filter must lie on one grid (ITK checks the physical space of inputs of
/// the same dimension; perfq checks the rest).
#pragma once

#include <perfq/cbf.hpp>
#include <perfq/itk/adapters.hpp>
#include <perfq/kinetic.hpp>
#include <perfq/watershed.hpp>

#include <itkImageToImageFilter.h>

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <utility>

PERFQ_NAMESPACE_BEGIN
namespace itk_bridge {

namespace detail {

/// Runs `body`, turning any non-ITK exception into an itk::ExceptionObject named after the
/// filter.
template <class Body>
void run_as_itk(const char* filter, Body&& body) {
  try {
    body();
  } catch (const ::itk::ExceptionObject&) {
    throw;
  } catch (const std::exception& e) {
    throw ::itk::ExceptionObject(__FILE__, __LINE__, std::string(filter) + ": " + e.what(),
                                 filter);
  }
}

/// Every input of `filter` at its largest possible region.
inline void request_whole_inputs(::itk::ProcessObject& filter) {
  for (auto& input : filter.GetInputs()) {
    if (input) input->SetRequestedRegionToLargestPossibleRegion();
  }
}

/// Hands `values` to `output` as its pixel buffer (no copy), over its largest region.
template <class TImage, class T>
void install(TImage* output, Image<T>&& values) {
  if (output->GetLargestPossibleRegion().GetNumberOfPixels() != values.size()) {
    throw InvalidArgument("itk_bridge: result size does not match the output region");
  }
  auto container = VectorPixelContainer<T>::New();
  container->adopt(std::move(values.values()));
  values = Image<T>();
  output->SetBufferedRegion(output->GetLargestPossibleRegion());
  output->SetPixelContainer(container);
}

/// An optional perfq view of an optional ITK input.
template <class T, unsigned D>
std::optional<View<const T>> optional_view(const ::itk::Image<T, D>* image) {
  if (image == nullptr) return std::nullopt;
  return view(image);
}

}  // namespace detail

/// @brief Base of perfq's ITK filters: every input read whole, every output produced whole
/// (perfq's algorithms are not streamed).
template <class TInputImage, class TOutputImage>
class WholeImageFilter : public ::itk::ImageToImageFilter<TInputImage, TOutputImage> {
 protected:
  /// @cond ITK_BOILERPLATE
  void GenerateInputRequestedRegion() override { detail::request_whole_inputs(*this); }
  void EnlargeOutputRequestedRegion(::itk::DataObject*) override {
    for (auto& out : this->GetOutputs()) out->SetRequestedRegionToLargestPossibleRegion();
  }
  /// @endcond
};

/// @brief Base of the quantification filters (CbfImageFilter, KineticFitImageFilter): the M0
/// and mask inputs, the acquisition and constants, the backend, and what the last Update()
/// used. Outputs are 3D float maps (plus whatever a filter adds).
template <class TInputImage>
class QuantificationFilter : public WholeImageFilter<TInputImage, ::itk::Image<float, 3>> {
 public:
  using ImageType = ::itk::Image<float, 3>;              ///< 3D float image
  using MaskImageType = ::itk::Image<std::uint8_t, 3>;   ///< 3D uint8 mask
  using StatusImageType = ::itk::Image<std::uint8_t, 3>;  ///< uint8 perfq::VoxelStatus map

  /// @brief Voxelwise M0 on the input's (spatial) grid (optional).
  itkSetInputMacro(M0Image, ImageType);
  /// @brief The M0Image input (nullptr when not set).
  itkGetInputMacro(M0Image, ImageType);
  /// @brief Mask, nonzero inside (optional).
  itkSetInputMacro(MaskImage, MaskImageType);
  /// @brief The MaskImage input (nullptr when not set).
  itkGetInputMacro(MaskImage, MaskImageType);

  /// @brief One M0 value for every voxel, used when no M0 image is set.
  void SetM0Value(double m0) {
    m0_value_ = m0;
    this->Modified();
  }
  /// @brief Labeling and timing (see perfq::AslProtocol); for the multi-delay fit one PLD
  /// (TI) per volume of the series.
  void SetProtocol(const AslProtocol& protocol) {
    protocol_ = protocol;
    this->Modified();
  }
  /// @brief Constants (see perfq::Physiology); the defaults are the white paper's at 3 T.
  void SetPhysiology(const Physiology& physiology) {
    physiology_ = physiology;
    this->Modified();
  }
  /// @brief Backend and threads.
  void SetExecution(const Execution& execution) {
    execution_ = execution;
    this->Modified();
  }
  /// @brief Constants used by the last Update().
  const ResolvedConstants& GetConstants() const { return constants_; }
  /// @brief Backend that ran the last Update().
  Backend GetBackend() const { return backend_; }

 protected:
  /// @cond ITK_BOILERPLATE
  M0Source m0_source() const {
    const auto image = detail::optional_view(this->GetM0Image());
    return image ? M0Source::from_image(*image) : M0Source::from_value(m0_value_);
  }
  std::optional<View<const std::uint8_t>> mask() const {
    return detail::optional_view(this->GetMaskImage());
  }

  AslProtocol protocol_{};
  Physiology physiology_{};
  Execution execution_{};
  ResolvedConstants constants_{};
  Backend backend_ = Backend::Cpu;
  /// @endcond

 private:
  double m0_value_ = 0.0;
};

/// @brief Single-delay CBF (perfq::quantify_cbf) as an ITK filter.
///
/// Input 0: mean ΔM (control − label), float. Optional inputs: `M0Image` (else SetM0Value()),
/// `MaskImage` (uint8, nonzero inside). Output 0: CBF in ml/100 g/min; output 1
/// (GetStatusOutput()): perfq::VoxelStatus per voxel.
class CbfImageFilter : public QuantificationFilter<::itk::Image<float, 3>> {
 public:
  /// @cond ITK_BOILERPLATE
  ITK_DISALLOW_COPY_AND_MOVE(CbfImageFilter);
  /// @endcond
  using Self = CbfImageFilter;  ///< this class
  /// the base class (an itk::ImageToImageFilter)
  using Superclass = QuantificationFilter<::itk::Image<float, 3>>;
  using Pointer = ::itk::SmartPointer<Self>;  ///< smart pointer (ITK)
  using ConstPointer = ::itk::SmartPointer<const Self>;  ///< smart pointer to const (ITK)
  /// @cond ITK_BOILERPLATE
  itkNewMacro(Self);
  itkTypeMacro(CbfImageFilter, ImageToImageFilter);
  /// @endcond

  /// @brief The status map (valid after Update()).
  StatusImageType* GetStatusOutput() {
    return static_cast<StatusImageType*>(this->ProcessObject::GetOutput(1));
  }

  /// @cond ITK_BOILERPLATE
  using Superclass::MakeOutput;
  /// @endcond
  /// @brief Output 1 is the uint8 status map.
  ::itk::DataObject::Pointer MakeOutput(DataObjectPointerArraySizeType index) override {
    if (index == 1) return StatusImageType::New().GetPointer();
    return Superclass::MakeOutput(index);
  }

 protected:
  /// @cond ITK_BOILERPLATE
  CbfImageFilter() {
    this->SetNumberOfRequiredOutputs(2);
    this->SetNthOutput(1, this->MakeOutput(1));
  }
  ~CbfImageFilter() override = default;

  void GenerateData() override {
    detail::run_as_itk("perfq::itk_bridge::CbfImageFilter", [this] {
      CbfMaps maps = quantify_cbf(view(this->GetInput()), m0_source(), protocol_, physiology_,
                                  mask(), execution_);
      constants_ = maps.constants;
      backend_ = maps.backend;
      detail::install(this->GetOutput(), std::move(maps.cbf));
      detail::install(this->GetStatusOutput(), std::move(maps.status));
    });
  }

  /// @endcond
};

/// @brief The multi-delay fit (perfq::fit_kinetic) as an ITK filter: a 4D ΔM series (one volume
/// per delay) in, 3D maps out.
///
/// Optional inputs: `M0Image` (3D, else SetM0Value()), `MaskImage` (3D uint8). Outputs:
/// 0 CBF (ml/100 g/min), 1 ATT (s), 2 CBF standard error, 3 ATT standard error (float), 4
/// perfq::VoxelStatus (uint8); each on the series' spatial grid.
class KineticFitImageFilter : public QuantificationFilter<::itk::Image<float, 4>> {
 public:
  /// @cond ITK_BOILERPLATE
  ITK_DISALLOW_COPY_AND_MOVE(KineticFitImageFilter);
  /// @endcond
  using Self = KineticFitImageFilter;  ///< this class
  /// the base class (an itk::ImageToImageFilter)
  using Superclass = QuantificationFilter<::itk::Image<float, 4>>;
  using Pointer = ::itk::SmartPointer<Self>;  ///< smart pointer (ITK)
  using ConstPointer = ::itk::SmartPointer<const Self>;  ///< smart pointer to const (ITK)
  using SeriesType = ::itk::Image<float, 4>;  ///< 4D float series (one volume per delay)
  /// @cond ITK_BOILERPLATE
  itkNewMacro(Self);
  itkTypeMacro(KineticFitImageFilter, ImageToImageFilter);
  /// @endcond

  /// @brief Output indices.
  enum OutputIndex : unsigned { kCbf = 0, kAtt = 1, kCbfSe = 2, kAttSe = 3, kStatus = 4 };

  /// @brief Fit options (see perfq::KineticOptions); the arterial component's maps are not
  /// outputs of this filter.
  void SetOptions(const KineticOptions& options) {
    options_ = options;
    this->Modified();
  }
  /// @brief A float map output: kCbf, kAtt, kCbfSe or kAttSe.
  ImageType* GetMapOutput(OutputIndex index) {
    if (index == kStatus) return nullptr;
    return static_cast<ImageType*>(this->ProcessObject::GetOutput(index));
  }
  /// @brief The status map.
  StatusImageType* GetStatusOutput() {
    return static_cast<StatusImageType*>(this->ProcessObject::GetOutput(kStatus));
  }

  /// @cond ITK_BOILERPLATE
  using Superclass::MakeOutput;
  /// @endcond
  /// @brief Outputs 0–3 are float maps, output 4 the uint8 status map.
  ::itk::DataObject::Pointer MakeOutput(DataObjectPointerArraySizeType index) override {
    if (index == kStatus) return StatusImageType::New().GetPointer();
    return ImageType::New().GetPointer();
  }

 protected:
  /// @cond ITK_BOILERPLATE
  KineticFitImageFilter() {
    this->SetNumberOfRequiredOutputs(5);
    for (unsigned i = 1; i < 5; ++i) this->SetNthOutput(i, this->MakeOutput(i));
  }
  ~KineticFitImageFilter() override = default;

  /// The outputs take the series' first three axes (ITK cannot copy 4D information to 3D).
  void GenerateOutputInformation() override {
    const SeriesType* series = this->GetInput();
    if (series == nullptr) itkExceptionMacro(<< "no input series");
    const auto in_region = series->GetLargestPossibleRegion();
    ::itk::ImageRegion<3> region;
    ::itk::Vector<double, 3> spacing;
    ::itk::Point<double, 3> origin;
    ::itk::Matrix<double, 3, 3> direction;
    for (unsigned a = 0; a < 3; ++a) {
      region.SetIndex(a, in_region.GetIndex(a));
      region.SetSize(a, in_region.GetSize(a));
      spacing[a] = series->GetSpacing()[a];
      origin[a] = series->GetOrigin()[a];
      for (unsigned c = 0; c < 3; ++c) direction[a][c] = series->GetDirection()[a][c];
    }
    for (auto& out : this->GetOutputs()) {
      auto* image = dynamic_cast<::itk::ImageBase<3>*>(out.GetPointer());
      if (image == nullptr) continue;
      image->SetLargestPossibleRegion(region);
      image->SetSpacing(spacing);
      image->SetOrigin(origin);
      image->SetDirection(direction);
    }
  }
  void GenerateData() override {
    detail::run_as_itk("perfq::itk_bridge::KineticFitImageFilter", [this] {
      KineticFit fit = fit_kinetic(view(this->GetInput()), m0_source(), protocol_, physiology_,
                                   options_, mask(), execution_);
      constants_ = fit.constants;
      backend_ = fit.backend;
      detail::install(GetMapOutput(kCbf), std::move(fit.cbf));
      detail::install(GetMapOutput(kAtt), std::move(fit.att));
      detail::install(GetMapOutput(kCbfSe), std::move(fit.cbf_se));
      detail::install(GetMapOutput(kAttSe), std::move(fit.att_se));
      detail::install(GetStatusOutput(), std::move(fit.status));
    });
  }

  /// @endcond

 private:
  KineticOptions options_{};
};

/// @brief Border zones from a territory label image (perfq::border_zones) as an ITK filter.
///
/// Input 0: territory labels (int32, 0 background, 1 … 999). Optional input `BrainMask`
/// (uint8). Output 0: the border-zone mask (uint8, 1 inside); output 1 (GetPairsOutput()):
/// the pair code of the two nearest territories (perfq::pair_code), 0 outside.
class BorderZoneImageFilter
    : public WholeImageFilter<::itk::Image<std::int32_t, 3>, ::itk::Image<std::uint8_t, 3>> {
 public:
  /// @cond ITK_BOILERPLATE
  ITK_DISALLOW_COPY_AND_MOVE(BorderZoneImageFilter);
  /// @endcond
  using Self = BorderZoneImageFilter;  ///< this class
  /// the base class (an itk::ImageToImageFilter)
  using Superclass =
      WholeImageFilter<::itk::Image<std::int32_t, 3>, ::itk::Image<std::uint8_t, 3>>;
  using Pointer = ::itk::SmartPointer<Self>;  ///< smart pointer (ITK)
  using ConstPointer = ::itk::SmartPointer<const Self>;  ///< smart pointer to const (ITK)
  using LabelImageType = ::itk::Image<std::int32_t, 3>;  ///< 3D int32 label image
  using MaskImageType = ::itk::Image<std::uint8_t, 3>;  ///< 3D uint8 mask
  /// @cond ITK_BOILERPLATE
  itkNewMacro(Self);
  itkTypeMacro(BorderZoneImageFilter, ImageToImageFilter);
  /// @endcond

  /// @brief Brain mask, nonzero inside (optional).
  itkSetInputMacro(BrainMask, MaskImageType);
  /// @brief The BrainMask input (nullptr when not set).
  itkGetInputMacro(BrainMask, MaskImageType);

  /// @brief Border-zone width w in mm: voxels within w/2 of two territories (default 10 mm).
  void SetWidthMm(double width_mm) {
    width_mm_ = width_mm;
    this->Modified();
  }
  /// @brief The border-zone width (mm).
  double GetWidthMm() const { return width_mm_; }
  /// @brief Backend and threads.
  void SetExecution(const Execution& execution) {
    execution_ = execution;
    this->Modified();
  }
  /// @brief The territory pair of each border-zone voxel.
  LabelImageType* GetPairsOutput() {
    return static_cast<LabelImageType*>(this->ProcessObject::GetOutput(1));
  }
  /// @brief Territory labels found by the last Update(), ascending.
  const std::vector<std::int32_t>& GetTerritories() const { return territories_; }
  /// @brief Backend that ran the last Update().
  Backend GetBackend() const { return backend_; }

  /// @cond ITK_BOILERPLATE
  using Superclass::MakeOutput;
  /// @endcond
  /// @brief Output 1 is the int32 pair map.
  ::itk::DataObject::Pointer MakeOutput(DataObjectPointerArraySizeType index) override {
    if (index == 1) return LabelImageType::New().GetPointer();
    return Superclass::MakeOutput(index);
  }

 protected:
  /// @cond ITK_BOILERPLATE
  BorderZoneImageFilter() {
    this->SetNumberOfRequiredOutputs(2);
    this->SetNthOutput(1, this->MakeOutput(1));
  }
  ~BorderZoneImageFilter() override = default;

  void GenerateData() override {
    detail::run_as_itk("perfq::itk_bridge::BorderZoneImageFilter", [this] {
      BorderZones zones = border_zones(view(this->GetInput()),
                                       detail::optional_view(this->GetBrainMask()), width_mm_,
                                       execution_);
      territories_ = zones.territories;
      backend_ = zones.backend;
      detail::install(this->GetOutput(), std::move(zones.mask));
      detail::install(GetPairsOutput(), std::move(zones.pairs));
    });
  }

  /// @endcond

 private:
  double width_mm_ = 10.0;
  Execution execution_{};
  std::vector<std::int32_t> territories_;
  Backend backend_ = Backend::Cpu;
};

}  // namespace itk_bridge
PERFQ_NAMESPACE_END
