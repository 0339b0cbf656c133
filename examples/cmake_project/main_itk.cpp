// perfq's CBF filter on an itk::Image through the installed perfq::itk component.
#include <perfq/itk/filters.hpp>

#include <cmath>
#include <cstdio>

int main() {
  auto delta_m = itk::Image<float, 3>::New();
  itk::Image<float, 3>::RegionType region;
  region.SetSize({{4, 4, 2}});
  delta_m->SetRegions(region);
  delta_m->Allocate();
  delta_m->FillBuffer(10.0f);

  perfq::AslProtocol protocol;
  protocol.post_labeling_delay = {1.8};
  protocol.labeling_duration = {1.8};
  auto filter = perfq::itk_bridge::CbfImageFilter::New();
  filter->SetInput(delta_m);
  filter->SetM0Value(1000.0);
  filter->SetProtocol(protocol);
  filter->Update();
  const float cbf = filter->GetOutput()->GetPixel({{1, 2, 1}});
  std::printf("CBF through an ITK pipeline: %.4f ml/100 g/min\n", cbf);
  return std::abs(cbf - 86.2999f) < 1e-3f ? 0 : 1;
}
