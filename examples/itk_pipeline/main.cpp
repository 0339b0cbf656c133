// perfq inside an ITK pipeline: read (or synthesise) ASL data, smooth it with an ITK filter,
// quantify CBF with perfq's CBF filter, build border zones from a territory atlas with perfq's
// border-zone filter, and write NIfTI files with ITK's writer.
//
//   perfq_itk_pipeline OUT_DIR
//       the built-in phantom (single-delay PCASL): ΔM → median → CBF, territories → border zones
//   perfq_itk_pipeline OUT_DIR --deltam DM.nii.gz --m0 M0.nii.gz [--pld 1.8 --tau 1.8]
//       your mean ΔM and M0 images instead of the phantom's
//   perfq_itk_pipeline OUT_DIR --territories T.nii.gz --brain BRAIN.nii.gz [--width 10]
//       border zones from an arterial-territory atlas in the same space as the brain mask
//       (for example the JHU arterial territories atlas on MNI152 2 mm, from NITRC
//       "arterialatlas")
#include <perfq/asl_series.hpp>
#include <perfq/itk/adapters.hpp>
#include <perfq/itk/filters.hpp>
#include <perfq/phantom.hpp>

#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkMedianImageFilter.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <utility>

namespace {

using FloatImage = itk::Image<float, 3>;
using LabelImage = itk::Image<std::int32_t, 3>;
using MaskImage = itk::Image<std::uint8_t, 3>;
namespace bridge = perfq::itk_bridge;

template <class TImage>
typename TImage::Pointer read(const std::string& path) {
  auto reader = itk::ImageFileReader<TImage>::New();
  reader->SetFileName(path);
  reader->Update();
  return reader->GetOutput();
}

template <class TImage>
void write(const TImage* image, const std::string& path) {
  auto writer = itk::ImageFileWriter<TImage>::New();
  writer->SetInput(image);
  writer->SetFileName(path);
  writer->UseCompressionOn();
  writer->Update();
  std::printf("wrote %s\n", path.c_str());
}

/// Mean of `image` over the nonzero voxels of `mask` whose status is Ok.
double masked_mean(const FloatImage* image, const MaskImage* status, const MaskImage* mask) {
  const auto v = bridge::view(image);
  const auto s = bridge::view(status);
  const auto m = bridge::view(mask);
  if (!m.geometry.same_grid(v.geometry) || !s.geometry.same_grid(v.geometry)) {
    throw perfq::InvalidArgument("masked_mean: the images are on different grids");
  }
  double sum = 0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (m.data[i] != 0 && s.data[i] == 0) {
      sum += v.data[i];
      ++n;
    }
  }
  return n > 0 ? sum / n : 0.0;
}

int run(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]).rfind("--", 0) == 0) {
    std::fprintf(stderr,
                 "usage: perfq_itk_pipeline OUT_DIR [--deltam F --m0 F [--pld S --tau S]]"
                 " [--territories F --brain F [--width MM]]\n");
    return 2;
  }
  const std::string out = argv[1];
  std::filesystem::create_directories(out);
  std::map<std::string, std::string> opt;
  for (int i = 2; i + 1 < argc; i += 2) opt[argv[i]] = argv[i + 1];
  const auto get = [&](const char* key, const char* fallback) {
    const auto it = opt.find(key);
    return it == opt.end() ? std::string(fallback) : it->second;
  };

  // ---- inputs: the user's files, or the built-in phantom moved into ITK without a copy ----
  FloatImage::Pointer delta_m, m0;
  LabelImage::Pointer territories;
  MaskImage::Pointer brain;
  MaskImage::Pointer phantom_brain;
  FloatImage::Pointer phantom_cbf;  // the phantom's true CBF
  perfq::AslProtocol protocol;
  protocol.post_labeling_delay = {std::stod(get("--pld", "1.8"))};
  protocol.labeling_duration = {std::stod(get("--tau", "1.8"))};
  if (!opt.count("--deltam") || !opt.count("--territories")) {
    perfq::PhantomOptions options;
    options.snr = 5.0;
    auto phantom = perfq::make_phantom(options);
    auto prepared = perfq::prepare_asl(phantom.asl, phantom.context, phantom.protocol);
    delta_m = bridge::adopt(std::move(prepared.delta_m));
    m0 = bridge::adopt(std::move(phantom.m0));
    protocol = phantom.protocol;
    territories = bridge::adopt(std::move(phantom.territories));
    brain = phantom_brain = bridge::adopt(std::move(phantom.brain));
    phantom_cbf = bridge::adopt(std::move(phantom.cbf));
  }
  if (opt.count("--deltam")) {
    delta_m = read<FloatImage>(opt["--deltam"]);
    m0 = read<FloatImage>(get("--m0", ""));
  }
  if (opt.count("--territories")) {
    territories = read<LabelImage>(opt["--territories"]);  // labels stored as floats are cast
    brain = read<MaskImage>(get("--brain", ""));
  }

  // ---- CBF: ΔM → 3×3×3 median (an ITK filter) → perfq's CBF filter → NIfTI ----
  auto median = itk::MedianImageFilter<FloatImage, FloatImage>::New();
  median->SetInput(delta_m);
  median->SetRadius(1);
  auto cbf = bridge::CbfImageFilter::New();
  cbf->SetInput(median->GetOutput());
  cbf->SetM0Image(m0);
  cbf->SetProtocol(protocol);
  write(cbf->GetOutput(), out + "/cbf.nii.gz");  // pulls the pipeline
  write(cbf->GetStatusOutput(), out + "/cbf_status.nii.gz");
  std::printf("CBF filter ran on %s; T1 blood %.2f s, labeling efficiency %.2f\n",
              perfq::to_string(cbf->GetBackend()), cbf->GetConstants().t1_blood,
              cbf->GetConstants().effective_labeling_efficiency);
  if (!opt.count("--deltam")) {
    std::printf("mean CBF in the phantom's brain: %.1f ml/100 g/min (truth %.1f)\n",
                masked_mean(cbf->GetOutput(), cbf->GetStatusOutput(), phantom_brain),
                masked_mean(phantom_cbf, cbf->GetStatusOutput(), phantom_brain));
  }

  // ---- border zones: territory labels (+ brain mask) → perfq's border-zone filter ----
  auto zones = bridge::BorderZoneImageFilter::New();
  zones->SetInput(territories);
  zones->SetBrainMask(brain);
  zones->SetWidthMm(std::stod(get("--width", "10")));
  write(zones->GetOutput(), out + "/borderzone.nii.gz");
  write(zones->GetPairsOutput(), out + "/borderzone_pairs.nii.gz");
  const auto mask = bridge::view(zones->GetOutput());
  std::size_t inside = 0;
  for (std::size_t i = 0; i < mask.size(); ++i) inside += mask.data[i] != 0;
  std::printf("border zones: %zu voxels between %zu territories\n", inside,
              zones->GetTerritories().size());
  return inside > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const itk::ExceptionObject& e) {
    std::fprintf(stderr, "error: %s\n", e.GetDescription());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  }
  return 1;
}
