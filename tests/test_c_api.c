/* The C API from C99: single-delay CBF against hand-computed white-paper values, the
 * multi-delay fit recovering the phantom's CBF and ATT, border zones and regional statistics
 * on hand-built images, and the error paths (status, and a message naming the argument).
 * Prints one line per failed check and a summary; exits 1 when any check failed. */
#include <perfq/perfq.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_checks = 0;
static int g_failures = 0;

static void check(int ok, const char* what, int line) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    printf("FAILED (line %d): %s\n", line, what);
  }
}
#define CHECK(cond) check((cond) ? 1 : 0, #cond, __LINE__)
#define CHECK_OK(call) check(expect_status((call), PERFQ_OK, NULL), #call " == PERFQ_OK", __LINE__)
/* A call that must fail with `status` and a message containing `needle`. */
#define CHECK_FAILS(call, status, needle) \
  check(expect_status((call), (status), (needle)), #call " fails: " needle, __LINE__)

static int expect_status(perfq_status got, perfq_status expected, const char* needle) {
  if (got != expected) {
    printf("  status %d (%s), expected %d (%s); last error: %s\n", (int)got,
           perfq_status_string(got), (int)expected, perfq_status_string(expected),
           perfq_last_error());
    return 0;
  }
  if (needle != NULL && strstr(perfq_last_error(), needle) == NULL) {
    printf("  message \"%s\" does not mention \"%s\"\n", perfq_last_error(), needle);
    return 0;
  }
  return 1;
}

static int near(double a, double b, double relative) {
  return fabs(a - b) <= relative * fabs(b) + 1e-30;
}

/* White paper, PCASL: 6000 λ ΔM e^(PLD/T1b) / (2 α T1b M0 (1 − e^(−τ/T1b))). */
static double pcasl_cbf(double delta_m, double m0, double pld, double tau, double t1b,
                        double alpha) {
  return 6000.0 * 0.9 * delta_m * exp(pld / t1b) /
         (2.0 * alpha * t1b * m0 * (1.0 - exp(-tau / t1b)));
}

static void test_version(void) {
  CHECK(perfq_c_api_version() == PERFQ_C_API_VERSION);
  CHECK(strlen(perfq_version()) >= 5);
  CHECK(strcmp(perfq_status_string(PERFQ_OK), "ok") == 0);
  CHECK(strcmp(perfq_status_string(PERFQ_ERROR_BACKEND), "backend error") == 0);
  CHECK(perfq_cuda_available() == 0 || perfq_cuda_available() == 1);
}

static void test_single_delay(void) {
  /* 3 × 2 × 1 voxels: ordinary values, a zero M0, a voxel outside the mask. */
  const size_t dims[3] = {3, 2, 1};
  const double spacing[3] = {2.0, 2.0, 4.0};
  const float delta_m[6] = {10.0f, 5.0f, 12.5f, 8.0f, 3.0f, 7.0f};
  const float m0[6] = {1000.0f, 800.0f, 1200.0f, 0.0f, 950.0f, 1000.0f};
  const uint8_t mask[6] = {1, 1, 1, 1, 1, 0};
  const double pld = 1.8, tau = 1.8;
  perfq_protocol* protocol = NULL;
  perfq_execution* cpu = NULL;
  perfq_cbf_maps* maps = NULL;
  perfq_constants constants;
  int i;

  CHECK_OK(perfq_protocol_create(&protocol));
  CHECK_OK(perfq_protocol_set_delays(protocol, &pld, 1));
  CHECK_OK(perfq_protocol_set_labeling_durations(protocol, &tau, 1));
  CHECK_OK(perfq_execution_create(&cpu));
  CHECK_OK(perfq_execution_set_backend(cpu, "cpu"));
  CHECK_OK(perfq_execution_set_threads(cpu, 2));
  CHECK_OK(perfq_quantify_cbf(delta_m, dims, spacing, m0, 0.0, mask, protocol, NULL, cpu, &maps));
  if (maps != NULL) {
    const float* cbf = perfq_cbf_maps_cbf(maps);
    const uint8_t* status = perfq_cbf_maps_status(maps);
    CHECK(perfq_cbf_maps_voxel_count(maps) == 6);
    CHECK(strcmp(perfq_cbf_maps_backend(maps), "cpu") == 0);
    for (i = 0; i < 6; ++i) {
      if (i == 3) {
        CHECK(status[i] == PERFQ_VOXEL_M0_NOT_POSITIVE && cbf[i] == 0.0f);
      } else if (i == 5) {
        CHECK(status[i] == PERFQ_VOXEL_OUTSIDE_MASK && cbf[i] == 0.0f);
      } else {
        CHECK(status[i] == PERFQ_VOXEL_OK);
        CHECK(near(cbf[i], pcasl_cbf(delta_m[i], m0[i], pld, tau, 1.65, 0.85), 1e-5));
      }
    }
    /* The well-known number: ΔM/M0 = 1 % at PLD = τ = 1.8 s gives 86.30 ml/100 g/min. */
    CHECK(fabs(cbf[0] - 86.2999) < 1e-3);
    CHECK_OK(perfq_cbf_maps_constants(maps, &constants));
    CHECK(constants.blood_brain_partition == 0.9 && constants.t1_blood == 1.65);
    CHECK(constants.effective_labeling_efficiency == 0.85 && constants.m0_scale == 1.0);
  }
  perfq_cbf_maps_destroy(maps);
  maps = NULL;

  /* With a CUDA device: the same numbers from the GPU (float tolerance). */
  if (perfq_cuda_available()) {
    perfq_execution* gpu = NULL;
    perfq_cbf_maps* gpu_maps = NULL;
    CHECK_OK(perfq_execution_create(&gpu));
    CHECK_OK(perfq_execution_set_backend(gpu, "cuda"));
    CHECK_OK(
        perfq_quantify_cbf(delta_m, dims, spacing, m0, 0.0, mask, protocol, NULL, gpu, &gpu_maps));
    if (gpu_maps != NULL) {
      CHECK(strcmp(perfq_cbf_maps_backend(gpu_maps), "cuda") == 0);
      for (i = 0; i < 6; ++i) {
        CHECK(perfq_cbf_maps_status(gpu_maps)[i] == (i == 3   ? PERFQ_VOXEL_M0_NOT_POSITIVE
                                                     : i == 5 ? PERFQ_VOXEL_OUTSIDE_MASK
                                                              : 0));
        if (i != 3 && i != 5) {
          CHECK(near(perfq_cbf_maps_cbf(gpu_maps)[i],
                     pcasl_cbf(delta_m[i], m0[i], pld, tau, 1.65, 0.85), 1e-5));
        }
      }
    }
    perfq_cbf_maps_destroy(gpu_maps);
    perfq_execution_destroy(gpu);
  } else {
    printf("no CUDA device: GPU checks skipped\n");
  }

  /* One M0 value, 1.5 T (blood T1 1.35 s), background suppression with a stated factor. */
  {
    perfq_physiology* physiology = NULL;
    CHECK_OK(perfq_protocol_set_background_suppression(protocol, 4, 0.8));
    CHECK_OK(perfq_physiology_create(1.5, &physiology));
    CHECK_OK(perfq_quantify_cbf(delta_m, dims, NULL, NULL, 1000.0, NULL, protocol, physiology, cpu,
                                &maps));
    if (maps != NULL) {
      const float* cbf = perfq_cbf_maps_cbf(maps);
      for (i = 0; i < 6; ++i) {
        CHECK(near(cbf[i], pcasl_cbf(delta_m[i], 1000.0, pld, tau, 1.35, 0.85 * 0.8), 1e-5));
      }
      CHECK_OK(perfq_cbf_maps_constants(maps, &constants));
      CHECK(constants.background_suppression_factor == 0.8);
    }
    perfq_cbf_maps_destroy(maps);
    maps = NULL;
    perfq_physiology_destroy(physiology);
    CHECK_OK(perfq_protocol_set_background_suppression(protocol, 0, 0.0));
  }

  /* PASL (QUIPSS II): 6000 λ ΔM e^(TI/T1b) / (2 α TI1 M0), α 0.98. */
  {
    const double ti = 1.8, ti1 = 0.8;
    const double expected = 6000.0 * 0.9 * 10.0 * exp(ti / 1.65) / (2.0 * 0.98 * ti1 * 1000.0);
    CHECK_OK(perfq_protocol_set_labeling(protocol, PERFQ_LABELING_PASL));
    CHECK_OK(perfq_protocol_set_delays(protocol, &ti, 1));
    CHECK_OK(perfq_protocol_set_bolus_cutoff(protocol, ti1));
    CHECK_OK(perfq_quantify_cbf(delta_m, dims, spacing, m0, 0.0, NULL, protocol, NULL, cpu, &maps));
    if (maps != NULL) CHECK(near(perfq_cbf_maps_cbf(maps)[0], expected, 1e-5));
    perfq_cbf_maps_destroy(maps);
  }
  perfq_execution_destroy(cpu);
  perfq_protocol_destroy(protocol);
}

/* Mean of `values` over voxels where `where` is nonzero. */
static double masked_mean(const float* values, const uint8_t* where, size_t n) {
  double sum = 0.0;
  size_t count = 0, i;
  for (i = 0; i < n; ++i) {
    if (where[i]) {
      sum += values[i];
      ++count;
    }
  }
  return count > 0 ? sum / (double)count : 0.0;
}

static void test_multi_delay_on_phantom(void) {
  const double delays[6] = {0.25, 0.5, 0.75, 1.0, 1.25, 1.5};
  const size_t grid[3] = {32, 40, 30};
  perfq_phantom_options* options = NULL;
  perfq_phantom* phantom = NULL;
  perfq_protocol* protocol = NULL;
  perfq_prepared* prepared = NULL;
  perfq_kinetic_options* kinetic = NULL;
  perfq_kinetic_fit* fit = NULL;
  size_t dims[3], volumes = 0, delta_volumes = 0, n, i;
  double spacing[3];

  CHECK_OK(perfq_phantom_options_create(&options));
  CHECK_OK(perfq_phantom_options_set_delays(options, delays, 6, 1));
  CHECK_OK(perfq_phantom_options_set_grid(options, grid, 4.0));
  CHECK_OK(perfq_phantom_create(options, &phantom));
  perfq_phantom_options_destroy(options);
  if (phantom == NULL) return;
  CHECK_OK(perfq_phantom_geometry(phantom, dims, spacing));
  CHECK(dims[0] == 32 && dims[1] == 40 && dims[2] == 30 && spacing[2] == 4.0);
  n = dims[0] * dims[1] * dims[2];
  {
    const float* series = perfq_phantom_series(phantom, &volumes);
    const int32_t* context = perfq_phantom_context(phantom);
    CHECK(volumes == 12);
    CHECK(context[0] == PERFQ_VOLUME_CONTROL && context[1] == PERFQ_VOLUME_LABEL);
    CHECK_OK(perfq_phantom_protocol(phantom, &protocol));
    CHECK_OK(
        perfq_prepare_asl(series, volumes, dims, spacing, context, protocol, 0, NULL, &prepared));
  }
  if (prepared != NULL) {
    const float* delta_m = perfq_prepared_delta_m(prepared, &delta_volumes);
    const double* prepared_delays = perfq_prepared_delays(prepared);
    const uint8_t* brain = perfq_phantom_mask_data(phantom, PERFQ_PHANTOM_BRAIN);
    const float* m0 = perfq_phantom_map_data(phantom, PERFQ_PHANTOM_M0);
    const float* true_cbf = perfq_phantom_map_data(phantom, PERFQ_PHANTOM_CBF);
    const float* true_att = perfq_phantom_map_data(phantom, PERFQ_PHANTOM_ATT);
    CHECK(delta_volumes == 6 && prepared_delays[5] == 1.5);
    CHECK(perfq_prepared_repeats(prepared)[0] == 1 && perfq_prepared_m0(prepared) == NULL);
    CHECK_OK(perfq_protocol_set_delays(protocol, prepared_delays, delta_volumes));
    CHECK_OK(perfq_kinetic_options_create(&kinetic));
    /* The phantom decays with blood T1 only: the white-paper variant recovers it exactly. */
    CHECK_OK(perfq_kinetic_options_set_model(kinetic, "whitepaper"));
    CHECK_OK(perfq_kinetic_options_set_att_range(kinetic, 0.0, 3.0));
    CHECK_OK(perfq_fit_kinetic(delta_m, delta_volumes, dims, spacing, m0, 0.0, brain, protocol,
                               NULL, kinetic, NULL, &fit));
    if (fit != NULL) {
      const float* cbf = perfq_kinetic_fit_map(fit, PERFQ_KINETIC_CBF);
      const float* att = perfq_kinetic_fit_map(fit, PERFQ_KINETIC_ATT);
      const uint8_t* status = perfq_kinetic_fit_status(fit);
      double worst_cbf = 0.0, worst_att = 0.0;
      size_t fitted = 0, brain_voxels = 0, unmasked = 0;
      CHECK(perfq_kinetic_fit_voxel_count(fit) == n);
      CHECK(perfq_kinetic_fit_map(fit, PERFQ_KINETIC_CBF_SE) != NULL);
      CHECK(perfq_kinetic_fit_map(fit, PERFQ_KINETIC_ABV) == NULL); /* no arterial component */
      CHECK(perfq_kinetic_fit_iterations(fit) != NULL);
      CHECK(perfq_kinetic_fit_map(fit, (perfq_kinetic_map)-1) == NULL);
      CHECK(strstr(perfq_last_error(), "which") != NULL);
      for (i = 0; i < n; ++i) {
        if (!brain[i]) {
          if (status[i] != PERFQ_VOXEL_OUTSIDE_MASK) ++unmasked;
          continue;
        }
        ++brain_voxels;
        if (status[i] != PERFQ_VOXEL_OK) continue;
        ++fitted;
        if (fabs(cbf[i] - true_cbf[i]) / true_cbf[i] > worst_cbf) {
          worst_cbf = fabs(cbf[i] - true_cbf[i]) / true_cbf[i];
        }
        if (fabs(att[i] - true_att[i]) > worst_att) worst_att = fabs(att[i] - true_att[i]);
      }
      printf(
          "multi-delay phantom: %lu of %lu brain voxels fitted, worst CBF error %.2e "
          "(relative), worst ATT error %.2e s; mean CBF %.2f (truth %.2f)\n",
          (unsigned long)fitted, (unsigned long)brain_voxels, worst_cbf, worst_att,
          masked_mean(cbf, brain, n), masked_mean(true_cbf, brain, n));
      CHECK(unmasked == 0);
      CHECK(brain_voxels > 1000 && fitted > 0.99 * (double)brain_voxels);
      CHECK(worst_cbf < 1e-3);
      CHECK(worst_att < 1e-3);
    }
    perfq_kinetic_fit_destroy(fit);
    fit = NULL;

    /* Error path of the fit: weights that do not match the delays. */
    {
      const double weights[2] = {1.0, 2.0};
      CHECK_OK(perfq_kinetic_options_set_weights(kinetic, weights, 2));
      CHECK_FAILS(perfq_fit_kinetic(delta_m, delta_volumes, dims, spacing, m0, 0.0, brain, protocol,
                                    NULL, kinetic, NULL, &fit),
                  PERFQ_ERROR_INVALID_ARGUMENT, "weights");
      CHECK(fit == NULL);
      /* One ΔM volume is not multi-delay data. */
      CHECK_OK(perfq_kinetic_options_set_weights(kinetic, NULL, 0));
      CHECK_FAILS(perfq_fit_kinetic(delta_m, 1, dims, spacing, m0, 0.0, brain, protocol, NULL,
                                    kinetic, NULL, &fit),
                  PERFQ_ERROR_INVALID_ARGUMENT, "perfq_fit_kinetic");
    }
    perfq_kinetic_options_destroy(kinetic);
  }
  perfq_prepared_destroy(prepared);
  perfq_protocol_destroy(protocol);
  perfq_phantom_destroy(phantom);
}

static void test_border_zones(void) {
  /* A row of 10 voxels of 1 mm: territory 1 then 2. Width 4 mm: both territories within
   * 2 mm at x = 3 … 6. */
  const size_t dims[3] = {10, 1, 1};
  const int32_t territories[10] = {1, 1, 1, 1, 1, 2, 2, 2, 2, 2};
  const uint8_t expected[10] = {0, 0, 0, 1, 1, 1, 1, 0, 0, 0};
  uint8_t brain[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  perfq_border_zones* zones = NULL;
  size_t count = 0, i;

  CHECK_OK(perfq_border_zones_from_territories(territories, dims, NULL, NULL, 4.0, NULL, &zones));
  if (zones != NULL) {
    const uint8_t* mask = perfq_border_zones_mask(zones);
    const int32_t* pairs = perfq_border_zones_pairs(zones);
    const int32_t* labels = perfq_border_zones_territories(zones, &count);
    CHECK(perfq_border_zones_voxel_count(zones) == 10);
    CHECK(count == 2 && labels[0] == 1 && labels[1] == 2);
    for (i = 0; i < 10; ++i) {
      CHECK(mask[i] == expected[i]);
      CHECK(pairs[i] == (expected[i] ? 1002 : 0));
    }
  }
  perfq_border_zones_destroy(zones);
  zones = NULL;

  /* A brain mask restricts the zone; spacing scales the distances (2 mm voxels: x = 4, 5). */
  {
    const double spacing[3] = {2.0, 1.0, 1.0};
    brain[4] = 0;
    CHECK_OK(
        perfq_border_zones_from_territories(territories, dims, spacing, brain, 4.0, NULL, &zones));
    if (zones != NULL) {
      const uint8_t* mask = perfq_border_zones_mask(zones);
      for (i = 0; i < 10; ++i) CHECK(mask[i] == (i == 5 ? 1 : 0));
    }
    perfq_border_zones_destroy(zones);
    zones = NULL;
  }

  CHECK_FAILS(
      perfq_border_zones_from_territories(territories, dims, NULL, NULL, -1.0, NULL, &zones),
      PERFQ_ERROR_INVALID_ARGUMENT, "width_mm");
  {
    const int32_t one[10] = {1, 1, 1, 1, 1, 0, 0, 0, 0, 0};
    CHECK_FAILS(perfq_border_zones_from_territories(one, dims, NULL, NULL, 4.0, NULL, &zones),
                PERFQ_ERROR_INVALID_ARGUMENT, "territor");
  }
}

static void test_region_stats(void) {
  /* Region 1: 1, 2, 3, 4; region 2: 10 and a NaN; label 0 background; masked-out voxel 99. */
  const size_t dims[3] = {4, 2, 1};
  const double spacing[3] = {2.0, 2.0, 2.5};
  float map[8] = {1.0f, 2.0f, 3.0f, 4.0f, 10.0f, 0.0f, 5.0f, 99.0f};
  const int32_t labels[8] = {1, 1, 1, 1, 2, 2, 0, 2};
  const uint8_t mask[8] = {1, 1, 1, 1, 1, 1, 1, 0};
  const double percentiles[2] = {25.0, 50.0};
  perfq_region_table* table = NULL;
  size_t row = 99;
  double v = 0.0;

  map[5] = (float)NAN;
  CHECK_OK(perfq_region_stats(map, labels, dims, spacing, mask, percentiles, 2, NULL, &table));
  if (table != NULL) {
    CHECK(perfq_region_table_size(table) == 2);
    CHECK(perfq_region_table_percentile_count(table) == 2);
    CHECK_OK(perfq_region_table_find(table, 1, &row));
    CHECK(row == 0);
    CHECK_OK(perfq_region_table_stat(table, row, PERFQ_STAT_MEAN, &v));
    CHECK(v == 2.5);
    CHECK_OK(perfq_region_table_stat(table, row, PERFQ_STAT_SD, &v));
    CHECK(near(v, sqrt(5.0 / 3.0), 1e-12));
    CHECK_OK(perfq_region_table_stat(table, row, PERFQ_STAT_MEDIAN, &v));
    CHECK(v == 2.5);
    CHECK_OK(perfq_region_table_stat(table, row, PERFQ_STAT_VOLUME_ML, &v));
    CHECK(near(v, 4 * 10.0 / 1000.0, 1e-12));
    CHECK_OK(perfq_region_table_stat(table, row, PERFQ_STAT_SCOV, &v));
    CHECK(near(v, 100.0 * sqrt(5.0 / 3.0) / 2.5, 1e-12));
    CHECK_OK(perfq_region_table_percentile(table, row, 0, &v));
    CHECK(v == 1.75);
    CHECK_OK(perfq_region_table_find(table, 2, &row));
    CHECK_OK(perfq_region_table_stat(table, row, PERFQ_STAT_VOXELS, &v));
    CHECK(v == 2.0); /* the masked-out voxel is not counted */
    CHECK_OK(perfq_region_table_stat(table, row, PERFQ_STAT_COUNT, &v));
    CHECK(v == 1.0);
    CHECK_OK(perfq_region_table_stat(table, row, PERFQ_STAT_NONFINITE, &v));
    CHECK(v == 1.0);
    CHECK_OK(perfq_region_table_stat(table, row, PERFQ_STAT_MEAN, &v));
    CHECK(v == 10.0);
    CHECK_FAILS(perfq_region_table_find(table, 7, &row), PERFQ_ERROR_INVALID_ARGUMENT, "7");
    CHECK_FAILS(perfq_region_table_stat(table, 2, PERFQ_STAT_MEAN, &v),
                PERFQ_ERROR_INVALID_ARGUMENT, "row");
    CHECK_FAILS(perfq_region_table_percentile(table, 0, 2, &v), PERFQ_ERROR_INVALID_ARGUMENT, "k");
    CHECK_FAILS(perfq_region_table_stat(table, 0, (perfq_stat)99, &v), PERFQ_ERROR_INVALID_ARGUMENT,
                "which");
  }
  perfq_region_table_destroy(table);
  table = NULL;

  /* Defaults: percentiles 5, 25, 75, 95. */
  CHECK_OK(perfq_region_stats(map, labels, dims, NULL, NULL, NULL, 0, NULL, &table));
  CHECK(perfq_region_table_percentile_count(table) == 4);
  perfq_region_table_destroy(table);
  table = NULL;
  {
    const double bad = 101.0;
    CHECK_FAILS(perfq_region_stats(map, labels, dims, NULL, NULL, &bad, 1, NULL, &table),
                PERFQ_ERROR_INVALID_ARGUMENT, "percentile");
  }
}

static void test_errors(void) {
  const size_t dims[3] = {2, 2, 1};
  const size_t zero_dims[3] = {2, 0, 1};
  const float delta_m[4] = {1.0f, 2.0f, 3.0f, 4.0f};
  const double pld = 1.8;
  const int32_t context[3] = {PERFQ_VOLUME_CONTROL, PERFQ_VOLUME_LABEL, 9};
  perfq_protocol* protocol = NULL;
  perfq_execution* execution = NULL;
  perfq_kinetic_options* kinetic = NULL;
  perfq_prepared* prepared = NULL;
  perfq_cbf_maps* maps = (perfq_cbf_maps*)&g_checks; /* must be reset to NULL on failure */
  char saved[256];

  CHECK_OK(perfq_protocol_create(&protocol));
  CHECK_OK(perfq_protocol_set_delays(protocol, &pld, 1));
  /* No labeling duration: the message says which quantity is missing. */
  CHECK_FAILS(
      perfq_quantify_cbf(delta_m, dims, NULL, NULL, 1000.0, NULL, protocol, NULL, NULL, &maps),
      PERFQ_ERROR_INVALID_ARGUMENT, "labeling duration");
  CHECK(maps == NULL);
  CHECK(strstr(perfq_last_error(), "perfq_quantify_cbf") == perfq_last_error());
  /* NULL pointers, sizes and values name the argument. */
  CHECK_FAILS(perfq_quantify_cbf(NULL, dims, NULL, NULL, 1000.0, NULL, protocol, NULL, NULL, &maps),
              PERFQ_ERROR_INVALID_ARGUMENT, "delta_m");
  CHECK_FAILS(
      perfq_quantify_cbf(delta_m, zero_dims, NULL, NULL, 1000.0, NULL, protocol, NULL, NULL, &maps),
      PERFQ_ERROR_INVALID_ARGUMENT, "dims[1]");
  CHECK_FAILS(perfq_quantify_cbf(delta_m, dims, NULL, NULL, 0.0, NULL, protocol, NULL, NULL, &maps),
              PERFQ_ERROR_INVALID_ARGUMENT, "m0_value");
  CHECK_FAILS(perfq_quantify_cbf(delta_m, dims, NULL, NULL, 1000.0, NULL, NULL, NULL, NULL, &maps),
              PERFQ_ERROR_INVALID_ARGUMENT, "protocol");
  CHECK_FAILS(
      perfq_quantify_cbf(delta_m, dims, NULL, NULL, 1000.0, NULL, protocol, NULL, NULL, NULL),
      PERFQ_ERROR_INVALID_ARGUMENT, "out");
  {
    const double bad_spacing[3] = {1.0, -2.0, 1.0};
    CHECK_FAILS(perfq_quantify_cbf(delta_m, dims, bad_spacing, NULL, 1000.0, NULL, protocol, NULL,
                                   NULL, &maps),
                PERFQ_ERROR_INVALID_ARGUMENT, "spacing[1]");
  }
  {
    const double negative = -0.5;
    CHECK_FAILS(perfq_protocol_set_delays(protocol, &negative, 1), PERFQ_ERROR_INVALID_ARGUMENT,
                "delays[0]");
    CHECK_FAILS(perfq_protocol_set_labeling_durations(protocol, &negative, 1),
                PERFQ_ERROR_INVALID_ARGUMENT, "durations[0]");
  }
  CHECK_FAILS(perfq_protocol_set_labeling(protocol, (perfq_labeling_type)7),
              PERFQ_ERROR_INVALID_ARGUMENT, "type");
  CHECK_FAILS(perfq_protocol_set_labeling_efficiency(protocol, 1.5), PERFQ_ERROR_INVALID_ARGUMENT,
              "efficiency");
  CHECK_FAILS(perfq_protocol_set_delays(NULL, &pld, 1), PERFQ_ERROR_INVALID_ARGUMENT, "handle");
  /* Out-of-range physiology is caught when it is used. */
  {
    const double tau = 1.8;
    perfq_physiology* physiology = NULL;
    CHECK_OK(perfq_protocol_set_labeling_durations(protocol, &tau, 1));
    CHECK_OK(perfq_physiology_create(3.0, &physiology));
    CHECK_OK(perfq_physiology_set_t1_blood(physiology, -1.0));
    CHECK_FAILS(perfq_quantify_cbf(delta_m, dims, NULL, NULL, 1000.0, NULL, protocol, physiology,
                                   NULL, &maps),
                PERFQ_ERROR_INVALID_ARGUMENT, "T1");
    perfq_physiology_destroy(physiology);
  }

  CHECK_OK(perfq_execution_create(&execution));
  CHECK_FAILS(perfq_execution_set_backend(execution, "gpu"), PERFQ_ERROR_INVALID_ARGUMENT,
              "backend");
  CHECK_FAILS(perfq_execution_set_threads(execution, -1), PERFQ_ERROR_INVALID_ARGUMENT, "threads");
  if (!perfq_cuda_available()) {
    CHECK_OK(perfq_execution_set_backend(execution, "cuda"));
    CHECK_FAILS(perfq_quantify_cbf(delta_m, dims, NULL, NULL, 1000.0, NULL, protocol, NULL,
                                   execution, &maps),
                PERFQ_ERROR_BACKEND, "perfq_quantify_cbf");
  }
  perfq_execution_destroy(execution);

  CHECK_OK(perfq_kinetic_options_create(&kinetic));
  CHECK_FAILS(perfq_kinetic_options_set_model(kinetic, "fabber"), PERFQ_ERROR_INVALID_ARGUMENT,
              "model");
  CHECK_OK(perfq_kinetic_options_set_dispersion(kinetic, "gamma", 7.4, 0.1));
  CHECK_OK(perfq_kinetic_options_set_dispersion(kinetic, "none", 0.0, 0.0));
  CHECK_FAILS(perfq_kinetic_options_set_dispersion(kinetic, "gauss", 7.4, 0.1),
              PERFQ_ERROR_INVALID_ARGUMENT, "kernel");
  CHECK_FAILS(perfq_kinetic_options_set_dispersion(kinetic, "gamma", 0.0, 0.1),
              PERFQ_ERROR_INVALID_ARGUMENT, "sharpness");
  CHECK_FAILS(perfq_kinetic_options_set_dispersion(kinetic, "gamma", 50.0, 1.0),
              PERFQ_ERROR_INVALID_ARGUMENT, "time_to_peak");
  perfq_kinetic_options_destroy(kinetic);

  /* Bad volume type; then control and label counts that differ (bad input data). */
  {
    const float series[12] = {0};
    const int32_t unpaired[3] = {PERFQ_VOLUME_CONTROL, PERFQ_VOLUME_LABEL, PERFQ_VOLUME_LABEL};
    CHECK_FAILS(perfq_prepare_asl(series, 3, dims, NULL, context, protocol, 0, NULL, &prepared),
                PERFQ_ERROR_INVALID_ARGUMENT, "context[2]");
    CHECK_FAILS(perfq_prepare_asl(series, 3, dims, NULL, unpaired, protocol, 0, NULL, &prepared),
                PERFQ_ERROR_INPUT, "perfq_prepare_asl");
    CHECK(prepared == NULL);
  }
  perfq_protocol_destroy(protocol);

  /* Accessors on NULL handles return NULL (or 0) and set the message; a success leaves the
   * message of the last failure unchanged. */
  CHECK(perfq_cbf_maps_cbf(NULL) == NULL);
  CHECK(strstr(perfq_last_error(), "perfq_cbf_maps_cbf") != NULL);
  CHECK(perfq_kinetic_fit_voxel_count(NULL) == 0);
  CHECK(strcmp(perfq_cbf_maps_backend(NULL), "") == 0);
  strncpy(saved, perfq_last_error(), sizeof saved - 1);
  saved[sizeof saved - 1] = '\0';
  CHECK_OK(perfq_protocol_create(&protocol));
  CHECK(strcmp(saved, perfq_last_error()) == 0);
  perfq_protocol_destroy(protocol);
  /* Destroying NULL is allowed. */
  perfq_protocol_destroy(NULL);
  perfq_cbf_maps_destroy(NULL);
  perfq_phantom_destroy(NULL);
}

int main(void) {
  test_version();
  test_single_delay();
  test_multi_delay_on_phantom();
  test_border_zones();
  test_region_stats();
  test_errors();
  printf("perfq %s C API %d: %d checks, %d failed\n", perfq_version(), perfq_c_api_version(),
         g_checks, g_failures);
  return g_failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
