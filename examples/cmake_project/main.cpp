// Quantifies one voxel through the installed perfq and checks the hand-computed value.
#include <perfq/cbf.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>

int main() {
  if (std::strcmp(perfq::version(), PERFQ_VERSION_STRING) != 0) {
    std::printf("header %s but library %s\n", PERFQ_VERSION_STRING, perfq::version());
    return 1;
  }
  perfq::Geometry g;
  perfq::Volume<float> delta_m(g, 1, 10.0f);
  perfq::AslProtocol protocol;
  protocol.post_labeling_delay = {1.8};
  protocol.labeling_duration = {1.8};
  perfq::Execution cpu;
  cpu.backend = perfq::Backend::Cpu;
  const auto maps = perfq::quantify_cbf(delta_m, perfq::M0Source::from_value(1000.0), protocol,
                                        perfq::Physiology{}, std::nullopt, cpu);
  std::printf("perfq %s: CBF %.4f ml/100 g/min\n", perfq::version(), maps.cbf[0]);
  return std::abs(maps.cbf[0] - 86.2999f) < 1e-3f ? 0 : 1;
}
