/* Quantifies one voxel through the installed C API (perfq/perfq.h) from C99. */
#include <perfq/perfq.h>

#include <math.h>
#include <stdio.h>

int main(void) {
  const size_t dims[3] = {1, 1, 1};
  const float delta_m = 10.0f;
  const double pld = 1.8, tau = 1.8;
  perfq_protocol* protocol = NULL;
  perfq_cbf_maps* maps = NULL;
  float cbf;
  if (perfq_c_api_version() != PERFQ_C_API_VERSION) {
    printf("header C API %d but library %d\n", PERFQ_C_API_VERSION, perfq_c_api_version());
    return 1;
  }
  if (perfq_protocol_create(&protocol) != PERFQ_OK ||
      perfq_protocol_set_delays(protocol, &pld, 1) != PERFQ_OK ||
      perfq_protocol_set_labeling_durations(protocol, &tau, 1) != PERFQ_OK ||
      perfq_quantify_cbf(&delta_m, dims, NULL, NULL, 1000.0, NULL, protocol, NULL, NULL, &maps) !=
          PERFQ_OK) {
    printf("perfq: %s\n", perfq_last_error());
    perfq_protocol_destroy(protocol);
    return 1;
  }
  cbf = perfq_cbf_maps_cbf(maps)[0];
  printf("perfq %s C API: CBF %.4f ml/100 g/min\n", perfq_version(), cbf);
  perfq_cbf_maps_destroy(maps);
  perfq_protocol_destroy(protocol);
  return fabs(cbf - 86.2999) < 1e-3 ? 0 : 1;
}
