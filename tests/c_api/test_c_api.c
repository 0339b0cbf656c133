/* The C API from C99: single-delay CBF against hand-computed white-paper values, the
 * multi-delay fit recovering the phantom's CBF and ATT, time-encoded (Hadamard) decoding of
 * hand-built encoded images and of a Hadamard-8 phantom, border zones (atlas, probabilistic,
 * timing), local CoV, distance maps and dilation, mask algebra (thresholds, Dice, territory
 * grouping, small components, periventricular caps), weighted and paired regional statistics
 * (per label and inside a mask), NAWM, lesion enrichment and partial-volume correction on
 * hand-built images, the resolved constants and the single-delay factor against the white-paper
 * formula, protocol validation (the file and BIDS field named), CUDA device discovery, and the
 * error paths (status, and a message naming the argument). Prints one line per failed check and
 * a summary; exits 1 when any check failed. */
#include <perfq/perfq.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c_checks.h"

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

/* Hadamard 4 (natural order, all-ones column dropped): rows are cycles, columns sub-boli,
 * +1 control, −1 label. */
static const int32_t kHadamard4[12] = {1, 1, 1, -1, 1, -1, 1, -1, -1, -1, -1, 1};

/* Encoded images of cycles 0 … 3 of E = kHadamard4 for 2 voxels: S_i = C − Σ_{E[i][k] = −1}
 * ΔM_k. `dm` holds ΔM_k of voxel v at [k * 2 + v]. */
static void encode_hadamard4(const float control[2], const float dm[6], float* out) {
  int i, k, v;
  for (i = 0; i < 4; ++i) {
    for (v = 0; v < 2; ++v) {
      float value = control[v];
      for (k = 0; k < 3; ++k) {
        if (kHadamard4[i * 3 + k] < 0) value -= dm[k * 2 + v];
      }
      out[i * 2 + v] = value;
    }
  }
}

static void test_time_encoded_by_hand(void) {
  /* Sub-boli τ = 0.5, 0.4, 0.3 s (labeling order) and 0.2 s after the last: PLD_k = 0.2 + the
   * durations of the later sub-boli = 0.9, 0.5, 0.2 s. */
  const double durations[3] = {0.5, 0.4, 0.3};
  const double delays[3] = {0.2 + 0.3 + 0.4, 0.2 + 0.3, 0.2};
  const size_t dims[3] = {2, 1, 1};
  const float control1[2] = {1000.0f, 500.0f}, control2[2] = {1010.0f, 490.0f};
  const float dm1[6] = {10.0f, 4.0f, 20.0f, 6.0f, 30.0f, 8.0f}; /* block 1: sub-bolus-major */
  const float dm2[6] = {14.0f, 2.0f, 22.0f, 10.0f, 26.0f, 12.0f};
  float encoded[16];
  perfq_time_encoding* encoding = NULL;
  perfq_time_encoding* given = NULL;
  perfq_prepared* decoded = NULL;
  size_t volumes = 0, i, k, v;

  CHECK_OK(perfq_time_encoding_create("Hadamard", 4, durations, 3, 0.2, &encoding));
  if (encoding == NULL) return;
  CHECK(perfq_time_encoding_cycles(encoding) == 4 && perfq_time_encoding_sub_boli(encoding) == 3);
  CHECK(strcmp(perfq_time_encoding_source(encoding), "Hadamard 4 (generated)") == 0);
  for (i = 0; i < 12; ++i) CHECK(perfq_time_encoding_matrix(encoding)[i] == kHadamard4[i]);
  for (k = 0; k < 3; ++k) {
    CHECK(perfq_time_encoding_sub_bolus_durations(encoding)[k] == durations[k]);
    CHECK(perfq_time_encoding_sub_bolus_delays(encoding)[k] == delays[k]);
  }

  /* Two blocks decoded: ΔM_k = (2/4) Σ_i E[i][k] S_i gives back every sub-bolus exactly. */
  encode_hadamard4(control1, dm1, encoded);
  encode_hadamard4(control2, dm2, encoded + 8);
  CHECK_OK(perfq_decode_time_encoded(encoded, 8, dims, NULL, encoding, &decoded));
  if (decoded != NULL) {
    const float* dm = perfq_prepared_delta_m(decoded, &volumes);
    CHECK(volumes == 6);
    for (k = 0; k < 3; ++k) {
      for (v = 0; v < 2; ++v) {
        CHECK(dm[k * 2 + v] == dm1[k * 2 + v]);
        CHECK(dm[(3 + k) * 2 + v] == dm2[k * 2 + v]);
      }
    }
    for (v = 0; v < 6; ++v) {
      CHECK(perfq_prepared_delays(decoded)[v] == delays[v % 3]);
      CHECK(perfq_prepared_labeling_durations(decoded)[v] == durations[v % 3]);
      CHECK(perfq_prepared_repeats(decoded)[v] == 1);
    }
    CHECK(perfq_prepared_m0(decoded) == NULL);
  }
  perfq_prepared_destroy(decoded);
  decoded = NULL;

  /* The same matrix given explicitly, in ExploreASL's square form (all +1 first column). */
  {
    int32_t square[16];
    for (i = 0; i < 4; ++i) {
      square[i * 4] = 1;
      for (k = 0; k < 3; ++k) square[i * 4 + 1 + k] = kHadamard4[i * 3 + k];
    }
    CHECK_OK(perfq_time_encoding_from_matrix(square, 4, 4, durations, 3, 0.2, &given));
    if (given != NULL) {
      CHECK(perfq_time_encoding_sub_boli(given) == 3);
      CHECK(strcmp(perfq_time_encoding_source(given), "TimeEncodedMatrix (given)") == 0);
      for (i = 0; i < 12; ++i) CHECK(perfq_time_encoding_matrix(given)[i] == kHadamard4[i]);
      CHECK(perfq_time_encoding_sub_bolus_delays(given)[0] == delays[0]);
    }
    perfq_time_encoding_destroy(given);
    given = NULL;
    /* Walsh 4 (sequency order): rows 0, 2, 3, 1 of the natural matrix. */
    CHECK_OK(perfq_time_encoding_create("walsh", 4, durations, 3, 0.2, &given));
    if (given != NULL) {
      const int32_t walsh[12] = {1, 1, 1, 1, -1, -1, -1, -1, 1, -1, 1, -1};
      for (i = 0; i < 12; ++i) CHECK(perfq_time_encoding_matrix(given)[i] == walsh[i]);
      CHECK(strcmp(perfq_time_encoding_source(given), "Walsh 4 (generated)") == 0);
    }
    perfq_time_encoding_destroy(given);
    given = NULL;
  }

  /* A series as acquired: m0scan, block 1, noRF, block 2 → one ΔM per sub-bolus, the mean of
   * the blocks, by increasing delay (sub-bolus 2 first). */
  {
    float series[20];
    const int32_t context[10] = {PERFQ_VOLUME_M0SCAN, PERFQ_VOLUME_CONTROL, PERFQ_VOLUME_LABEL,
                                 PERFQ_VOLUME_LABEL,  PERFQ_VOLUME_LABEL,   PERFQ_VOLUME_NORF,
                                 PERFQ_VOLUME_LABEL,  PERFQ_VOLUME_LABEL,   PERFQ_VOLUME_LABEL,
                                 PERFQ_VOLUME_LABEL};
    int32_t bad_context[10];
    perfq_protocol* protocol = NULL;
    perfq_prepared* prepared = NULL;
    series[0] = 1200.0f;
    series[1] = 1300.0f;
    memcpy(series + 2, encoded, 8 * sizeof(float));
    series[10] = series[11] = 0.0f;
    memcpy(series + 12, encoded + 8, 8 * sizeof(float));
    CHECK_OK(perfq_protocol_create(&protocol));
    CHECK_OK(perfq_prepare_time_encoded(series, 10, dims, NULL, context, protocol, encoding, 0,
                                        NULL, &prepared));
    if (prepared != NULL) {
      const float* dm = perfq_prepared_delta_m(prepared, &volumes);
      CHECK(volumes == 3);
      for (k = 0; k < 3; ++k) {
        /* Output volume j is sub-bolus 2 − j. */
        CHECK(perfq_prepared_delays(prepared)[k] == delays[2 - k]);
        CHECK(perfq_prepared_labeling_durations(prepared)[k] == durations[2 - k]);
        CHECK(perfq_prepared_repeats(prepared)[k] == 2);
        for (v = 0; v < 2; ++v) {
          CHECK(dm[k * 2 + v] == (dm1[(2 - k) * 2 + v] + dm2[(2 - k) * 2 + v]) / 2.0f);
        }
      }
      CHECK(perfq_prepared_m0(prepared) != NULL && perfq_prepared_m0(prepared)[1] == 1300.0f);
    }
    perfq_prepared_destroy(prepared);
    prepared = NULL;

    /* Refusals: an incomplete block, a deltam volume, an unknown type, PASL. */
    memcpy(bad_context, context, sizeof context);
    bad_context[9] = PERFQ_VOLUME_NORF;
    CHECK_FAILS(perfq_prepare_time_encoded(series, 10, dims, NULL, bad_context, protocol, encoding,
                                           0, NULL, &prepared),
                PERFQ_ERROR_INPUT, "not a positive multiple");
    bad_context[9] = PERFQ_VOLUME_DELTAM;
    CHECK_FAILS(perfq_prepare_time_encoded(series, 10, dims, NULL, bad_context, protocol, encoding,
                                           0, NULL, &prepared),
                PERFQ_ERROR_INPUT, "deltam");
    bad_context[9] = 9;
    CHECK_FAILS(perfq_prepare_time_encoded(series, 10, dims, NULL, bad_context, protocol, encoding,
                                           0, NULL, &prepared),
                PERFQ_ERROR_INVALID_ARGUMENT, "context[9]");
    CHECK_FAILS(perfq_prepare_time_encoded(series, 10, dims, NULL, context, protocol, NULL, 0, NULL,
                                           &prepared),
                PERFQ_ERROR_INVALID_ARGUMENT, "encoding");
    CHECK_OK(perfq_protocol_set_labeling(protocol, PERFQ_LABELING_PASL));
    CHECK_FAILS(perfq_prepare_time_encoded(series, 10, dims, NULL, context, protocol, encoding, 0,
                                           NULL, &prepared),
                PERFQ_ERROR_INPUT, "ArterialSpinLabelingType");
    CHECK(prepared == NULL);
    perfq_protocol_destroy(protocol);
  }

  /* Decoding refusals. */
  CHECK_FAILS(perfq_decode_time_encoded(encoded, 6, dims, NULL, encoding, &decoded),
              PERFQ_ERROR_INVALID_ARGUMENT, "volumes");
  CHECK_FAILS(perfq_decode_time_encoded(encoded, 8, dims, NULL, NULL, &decoded),
              PERFQ_ERROR_INVALID_ARGUMENT, "encoding");
  CHECK_FAILS(perfq_decode_time_encoded(NULL, 8, dims, NULL, encoding, &decoded),
              PERFQ_ERROR_INVALID_ARGUMENT, "encoded");
  CHECK(decoded == NULL);
  perfq_time_encoding_destroy(encoding);
  encoding = NULL;

  /* Encoding refusals: type, size, durations, delay; matrices that are not encodings. */
  CHECK_FAILS(perfq_time_encoding_create("sequency", 4, durations, 3, 0.2, &encoding),
              PERFQ_ERROR_INVALID_ARGUMENT, "matrix_type");
  CHECK_FAILS(perfq_time_encoding_create(NULL, 4, durations, 3, 0.2, &encoding),
              PERFQ_ERROR_INVALID_ARGUMENT, "matrix_type");
  CHECK_FAILS(perfq_time_encoding_create("Hadamard", 6, durations, 3, 0.2, &encoding),
              PERFQ_ERROR_INVALID_ARGUMENT, "size");
  CHECK_FAILS(perfq_time_encoding_create("Walsh", 12, durations, 3, 0.2, &encoding),
              PERFQ_ERROR_INVALID_ARGUMENT, "size");
  CHECK_FAILS(perfq_time_encoding_create("Hadamard", 4, durations, 2, 0.2, &encoding),
              PERFQ_ERROR_INVALID_ARGUMENT, "count");
  CHECK_FAILS(perfq_time_encoding_create("Hadamard", 4, NULL, 3, 0.2, &encoding),
              PERFQ_ERROR_INVALID_ARGUMENT, "durations");
  {
    const double bad[3] = {0.5, -0.4, 0.3};
    CHECK_FAILS(perfq_time_encoding_create("Hadamard", 4, bad, 3, 0.2, &encoding),
                PERFQ_ERROR_INVALID_ARGUMENT, "durations[1]");
  }
  CHECK_FAILS(perfq_time_encoding_create("Hadamard", 4, durations, 3, 0.0, &encoding),
              PERFQ_ERROR_INVALID_ARGUMENT, "final_pld");
  CHECK_FAILS(perfq_time_encoding_create("Hadamard", 4, durations, 3, 0.2, NULL),
              PERFQ_ERROR_INVALID_ARGUMENT, "out");
  {
    int32_t matrix[12];
    memcpy(matrix, kHadamard4, sizeof matrix);
    matrix[5] = 0;
    CHECK_FAILS(perfq_time_encoding_from_matrix(matrix, 4, 3, durations, 3, 0.2, &encoding),
                PERFQ_ERROR_INPUT, "TimeEncodedMatrix: row 1, column 2 is 0");
    matrix[5] = -1;
    matrix[3] = 1; /* column 0 now sums to 2: static tissue would remain */
    CHECK_FAILS(perfq_time_encoding_from_matrix(matrix, 4, 3, durations, 3, 0.2, &encoding),
                PERFQ_ERROR_INPUT, "sub-bolus column 0 sums to 2");
    matrix[3] = -1;
    matrix[4] = -1;
    matrix[7] = 1; /* rows 1 and 2 swap column 1's signs: balanced, not orthogonal */
    CHECK_FAILS(perfq_time_encoding_from_matrix(matrix, 4, 3, durations, 3, 0.2, &encoding),
                PERFQ_ERROR_INPUT, "not orthogonal");
    CHECK_FAILS(perfq_time_encoding_from_matrix(kHadamard4, 1, 3, durations, 3, 0.2, &encoding),
                PERFQ_ERROR_INVALID_ARGUMENT, "rows");
    CHECK_FAILS(perfq_time_encoding_from_matrix(kHadamard4, 4, 2, durations, 3, 0.2, &encoding),
                PERFQ_ERROR_INVALID_ARGUMENT, "columns");
    CHECK_FAILS(perfq_time_encoding_from_matrix(kHadamard4, 4, 3, durations, 4, 0.2, &encoding),
                PERFQ_ERROR_INVALID_ARGUMENT, "count");
    CHECK_FAILS(perfq_time_encoding_from_matrix(NULL, 4, 3, durations, 3, 0.2, &encoding),
                PERFQ_ERROR_INVALID_ARGUMENT, "entries");
  }
  CHECK(encoding == NULL);
  CHECK(perfq_time_encoding_cycles(NULL) == 0 && perfq_time_encoding_matrix(NULL) == NULL);
  CHECK(perfq_time_encoding_sub_bolus_delays(NULL) == NULL);
  CHECK(strcmp(perfq_time_encoding_source(NULL), "") == 0);
  perfq_time_encoding_destroy(NULL);
}

static void test_time_encoded_phantom(void) {
  /* A noise-free Hadamard-8 phantom (7 sub-boli of 0.4 s, 0.2 s after the last), decoded and
   * fitted: the white-paper model recovers its CBF and ATT. */
  const double final_pld = 0.2;
  const size_t grid[3] = {32, 40, 30};
  perfq_phantom_options* options = NULL;
  perfq_phantom* phantom = NULL;
  perfq_time_encoding* encoding = NULL;
  perfq_protocol* protocol = NULL;
  perfq_prepared* prepared = NULL;
  perfq_kinetic_options* kinetic = NULL;
  perfq_kinetic_fit* fit = NULL;
  size_t dims[3], volumes = 0, delta_volumes = 0, n, i;
  double spacing[3];

  CHECK_OK(perfq_phantom_options_create(&options));
  CHECK_OK(perfq_phantom_options_set_delays(options, &final_pld, 1, 2));
  CHECK_OK(perfq_phantom_options_set_grid(options, grid, 4.0));
  CHECK_OK(perfq_phantom_options_set_time_encoded(options, 8, "Hadamard", NULL, 0));
  /* Refusals leave the options as they were. */
  CHECK_FAILS(perfq_phantom_options_set_time_encoded(options, 6, NULL, NULL, 0),
              PERFQ_ERROR_INVALID_ARGUMENT, "size");
  CHECK_FAILS(perfq_phantom_options_set_time_encoded(options, 12, "Walsh", NULL, 0),
              PERFQ_ERROR_INVALID_ARGUMENT, "size");
  CHECK_FAILS(perfq_phantom_options_set_time_encoded(options, 8, NULL, &final_pld, 1),
              PERFQ_ERROR_INVALID_ARGUMENT, "count");
  CHECK_OK(perfq_phantom_create(options, &phantom));
  perfq_phantom_options_destroy(options);
  if (phantom == NULL) return;
  CHECK_OK(perfq_phantom_geometry(phantom, dims, spacing));
  n = dims[0] * dims[1] * dims[2];
  CHECK_OK(perfq_phantom_time_encoding(phantom, &encoding));
  if (encoding != NULL) {
    const double* delays = perfq_time_encoding_sub_bolus_delays(encoding);
    CHECK(perfq_time_encoding_cycles(encoding) == 8);
    CHECK(strcmp(perfq_time_encoding_source(encoding), "Hadamard 8 (generated)") == 0);
    CHECK(near(perfq_time_encoding_sub_bolus_durations(encoding)[0], 0.4, 1e-12));
    CHECK(near(delays[0], 0.2 + 6 * 0.4, 1e-12) && delays[6] == 0.2);
  }
  {
    const float* series = perfq_phantom_series(phantom, &volumes);
    CHECK(volumes == 16);
    CHECK(perfq_phantom_context(phantom)[0] == PERFQ_VOLUME_CONTROL);
    CHECK_OK(perfq_phantom_protocol(phantom, &protocol));
    CHECK_OK(perfq_prepare_time_encoded(series, volumes, dims, spacing,
                                        perfq_phantom_context(phantom), protocol, encoding, 0, NULL,
                                        &prepared));
  }
  if (prepared != NULL) {
    const float* delta_m = perfq_prepared_delta_m(prepared, &delta_volumes);
    const uint8_t* brain = perfq_phantom_mask_data(phantom, PERFQ_PHANTOM_BRAIN);
    const float* m0 = perfq_phantom_map_data(phantom, PERFQ_PHANTOM_M0);
    const float* true_cbf = perfq_phantom_map_data(phantom, PERFQ_PHANTOM_CBF);
    const float* true_att = perfq_phantom_map_data(phantom, PERFQ_PHANTOM_ATT);
    double weights[7];
    CHECK(delta_volumes == 7 && perfq_prepared_delays(prepared)[0] == 0.2);
    for (i = 0; i < 7 && i < delta_volumes; ++i) {
      weights[i] = (double)perfq_prepared_repeats(prepared)[i];
    }
    /* The decoded volumes' timing goes on the protocol; the blocks averaged are the weights. */
    CHECK_OK(perfq_protocol_set_delays(protocol, perfq_prepared_delays(prepared), delta_volumes));
    CHECK_OK(perfq_protocol_set_labeling_durations(
        protocol, perfq_prepared_labeling_durations(prepared), delta_volumes));
    CHECK_OK(perfq_kinetic_options_create(&kinetic));
    CHECK_OK(perfq_kinetic_options_set_model(kinetic, "whitepaper"));
    CHECK_OK(perfq_kinetic_options_set_weights(kinetic, weights, 7));
    /* Sample times inside the ATT range: a finer starting grid (as the CLI test does). */
    CHECK_OK(perfq_kinetic_options_set_solver(kinetic, 48, 20, 1e-6));
    CHECK_OK(perfq_fit_kinetic(delta_m, delta_volumes, dims, spacing, m0, 0.0, brain, protocol,
                               NULL, kinetic, NULL, &fit));
    if (fit != NULL) {
      const float* cbf = perfq_kinetic_fit_map(fit, PERFQ_KINETIC_CBF);
      const float* att = perfq_kinetic_fit_map(fit, PERFQ_KINETIC_ATT);
      double worst_cbf = 0.0, worst_att = 0.0;
      size_t brain_voxels = 0;
      for (i = 0; i < n; ++i) {
        if (!brain[i]) continue;
        ++brain_voxels;
        if (fabs(cbf[i] - true_cbf[i]) / true_cbf[i] > worst_cbf) {
          worst_cbf = fabs(cbf[i] - true_cbf[i]) / true_cbf[i];
        }
        if (fabs(att[i] - true_att[i]) / true_att[i] > worst_att) {
          worst_att = fabs(att[i] - true_att[i]) / true_att[i];
        }
      }
      printf(
          "time-encoded Hadamard-8 phantom: %lu brain voxels, worst CBF error %.2e, worst ATT "
          "error %.2e (relative); mean CBF %.2f (truth %.2f)\n",
          (unsigned long)brain_voxels, worst_cbf, worst_att, masked_mean(cbf, brain, n),
          masked_mean(true_cbf, brain, n));
      CHECK(brain_voxels > 1000);
      CHECK(worst_cbf < 0.01);
      CHECK(worst_att < 0.01);
    }
    perfq_kinetic_fit_destroy(fit);
    perfq_kinetic_options_destroy(kinetic);
  }
  perfq_prepared_destroy(prepared);
  perfq_protocol_destroy(protocol);
  perfq_time_encoding_destroy(encoding);
  perfq_phantom_destroy(phantom);

  /* A phantom that is not time-encoded has no encoding. */
  encoding = NULL;
  CHECK_OK(perfq_phantom_options_create(&options));
  CHECK_OK(perfq_phantom_options_set_grid(options, grid, 4.0));
  CHECK_OK(perfq_phantom_options_set_time_encoded(options, 4, "Walsh", NULL, 0));
  CHECK_OK(perfq_phantom_options_set_time_encoded(options, 0, NULL, NULL, 0)); /* off again */
  CHECK_OK(perfq_phantom_create(options, &phantom));
  perfq_phantom_options_destroy(options);
  CHECK_FAILS(perfq_phantom_time_encoding(phantom, &encoding), PERFQ_ERROR_INVALID_ARGUMENT,
              "not time-encoded");
  CHECK(encoding == NULL);
  perfq_phantom_destroy(phantom);
}

static void test_distances(void) {
  /* A 5 × 3 × 1 grid of 2 × 1 mm voxels, one mask voxel at (1, 1): the distance of (x, y) is
   * √((2 (x − 1))² + (y − 1)²) mm, or √((x − 1)² + (y − 1)²) voxels. */
  const size_t dims[3] = {5, 3, 1};
  const double spacing[3] = {2.0, 1.0, 1.0};
  uint8_t mask[15] = {0};
  const uint8_t empty[15] = {0};
  perfq_map* map = NULL;
  perfq_double_map* squared = NULL;
  perfq_mask* dilated = NULL;
  size_t x, y;
  mask[1 * 5 + 1] = 1;

  CHECK_OK(perfq_squared_distance_map(mask, dims, spacing, 1, NULL, &squared));
  if (squared != NULL) {
    const double* d = perfq_double_map_data(squared);
    CHECK(perfq_double_map_voxel_count(squared) == 15);
    for (y = 0; y < 3; ++y) {
      for (x = 0; x < 5; ++x) {
        const double dx = 2.0 * ((double)x - 1.0), dy = (double)y - 1.0;
        CHECK(d[y * 5 + x] == dx * dx + dy * dy); /* exact: 0, 1, 4, 5, 16, 37, … mm² */
      }
    }
    CHECK(d[2 * 5 + 4] == 37.0);
  }
  perfq_double_map_destroy(squared);
  squared = NULL;
  CHECK_OK(perfq_squared_distance_map(mask, dims, spacing, 0, NULL, &squared));
  if (squared != NULL) CHECK(perfq_double_map_data(squared)[2 * 5 + 4] == 10.0); /* 3² + 1² */
  perfq_double_map_destroy(squared);
  squared = NULL;

  CHECK_OK(perfq_distance_map(mask, dims, spacing, 0, 1, NULL, &map));
  if (map != NULL) {
    const float* d = perfq_map_data(map);
    CHECK(perfq_map_voxel_count(map) == 15);
    CHECK(d[1 * 5 + 1] == 0.0f && d[1 * 5 + 0] == 2.0f && d[0 * 5 + 1] == 1.0f);
    CHECK(near(d[0], sqrt(5.0), 1e-6) && d[1 * 5 + 3] == 4.0f);
    CHECK(near(d[2 * 5 + 4], sqrt(37.0), 1e-6));
  }
  perfq_map_destroy(map);
  map = NULL;
  CHECK_OK(perfq_distance_map(mask, dims, spacing, 0, 0, NULL, &map));
  if (map != NULL) CHECK(near(perfq_map_data(map)[2 * 5 + 4], sqrt(10.0), 1e-6));
  perfq_map_destroy(map);
  map = NULL;

  /* Signed, mask (1, 1) and (2, 1): inside, minus the distance to the nearest voxel off the
   * mask ((1, 0) at 1 mm); outside as before. */
  mask[1 * 5 + 2] = 1;
  CHECK_OK(perfq_distance_map(mask, dims, spacing, 1, 1, NULL, &map));
  if (map != NULL) {
    const float* d = perfq_map_data(map);
    CHECK(d[1 * 5 + 1] == -1.0f && d[1 * 5 + 2] == -1.0f);
    CHECK(d[1 * 5 + 0] == 2.0f && d[1 * 5 + 4] == 4.0f && near(d[0], sqrt(5.0), 1e-6));
  }
  perfq_map_destroy(map);
  map = NULL;
  mask[1 * 5 + 2] = 0;

  /* No voxel to measure to: +infinity. */
  CHECK_OK(perfq_distance_map(empty, dims, spacing, 0, 1, NULL, &map));
  if (map != NULL) CHECK(isinf(perfq_map_data(map)[7]) && perfq_map_data(map)[7] > 0);
  perfq_map_destroy(map);
  map = NULL;

  /* Dilation by 2 mm, inclusive: the voxel, (1, 0) and (1, 2) at 1 mm, (0, 1) and (2, 1) at
   * 2 mm; not the corners (√5 mm). */
  CHECK_OK(perfq_dilate(mask, dims, spacing, 2.0, NULL, &dilated));
  if (dilated != NULL) {
    const uint8_t expected[15] = {0, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0};
    CHECK(perfq_mask_voxel_count(dilated) == 15);
    CHECK(memcmp(perfq_mask_data(dilated), expected, 15) == 0);
  }
  perfq_mask_destroy(dilated);
  dilated = NULL;
  CHECK_OK(perfq_dilate(mask, dims, spacing, 0.0, NULL, &dilated));
  if (dilated != NULL) CHECK(memcmp(perfq_mask_data(dilated), mask, 15) == 0);
  perfq_mask_destroy(dilated);
  dilated = NULL;

  CHECK_FAILS(perfq_dilate(mask, dims, spacing, -1.0, NULL, &dilated), PERFQ_ERROR_INVALID_ARGUMENT,
              "radius_mm");
  CHECK_FAILS(perfq_dilate(NULL, dims, spacing, 1.0, NULL, &dilated), PERFQ_ERROR_INVALID_ARGUMENT,
              "mask");
  CHECK_FAILS(perfq_distance_map(mask, NULL, spacing, 0, 1, NULL, &map),
              PERFQ_ERROR_INVALID_ARGUMENT, "dims");
  {
    const double bad_spacing[3] = {2.0, 0.0, 1.0};
    CHECK_FAILS(perfq_squared_distance_map(mask, dims, bad_spacing, 1, NULL, &squared),
                PERFQ_ERROR_INVALID_ARGUMENT, "spacing[1]");
  }
  CHECK(map == NULL && squared == NULL && dilated == NULL);
  CHECK(perfq_double_map_data(NULL) == NULL && perfq_double_map_voxel_count(NULL) == 0);
  perfq_double_map_destroy(NULL);
}

static void test_cuda_discovery(void) {
  const int count = perfq_cuda_device_count();
  const char* reason = perfq_cuda_unavailable_reason();
  int d;
  CHECK(count >= 0);
  CHECK(reason != NULL);
  CHECK(perfq_cuda_compiled() == 0 || perfq_cuda_compiled() == 1);
  if (!perfq_cuda_compiled()) CHECK(count == 0 && strstr(reason, "without CUDA") != NULL);
  CHECK((count > 0) == (perfq_cuda_available() == 1));
  if (perfq_cuda_available()) {
    CHECK(strcmp(perfq_cuda_unavailable_reason(), "") == 0);
  } else {
    CHECK(strlen(perfq_cuda_unavailable_reason()) > 0);
  }
  for (d = 0; d < count; ++d) {
    const char* name = perfq_cuda_device_name(d);
    CHECK(name != NULL && strlen(name) > 0);
    if (name != NULL) printf("CUDA device %d: %s\n", d, name);
  }
  CHECK(perfq_cuda_device_name(count) == NULL);
  CHECK(strstr(perfq_last_error(), "perfq_cuda_device_name: device") != NULL);
  CHECK(perfq_cuda_device_name(-1) == NULL);
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

static void test_quality_indices(void) {
  /* GM voxels 0-2 (CBF 60, 40, -10), WM 3-4 (20, 30), voxel 5 outside the mask (status 1). */
  const size_t dims[3] = {6, 1, 1};
  const float cbf[6] = {60.0f, 40.0f, -10.0f, 20.0f, 30.0f, 999.0f};
  const float gm[6] = {1.0f, 0.9f, 0.8f, 0.0f, 0.1f, 1.0f};
  const float wm[6] = {0.0f, 0.1f, 0.2f, 1.0f, 0.9f, 0.0f};
  const float not_probability[6] = {0.0f, 2.0f, 3.0f, 0.0f, 0.0f, 0.0f};
  const uint8_t status[6] = {0, 0, 0, 0, 0, 1};
  perfq_quality_report* report = NULL;
  double v = -1.0;
  int defined = -1;
  size_t k = 0, names = 0;
  CHECK_OK(perfq_quality_indices(cbf, gm, wm, NULL, dims, NULL, NULL, status, 0.0, 0, &report));
  if (report != NULL) {
    names = perfq_quality_report_size(report);
    CHECK(names > 20);
    for (k = 0; k < names; ++k) CHECK(perfq_quality_report_name(report, k) != NULL);
    CHECK(perfq_quality_report_name(report, names) == NULL);
    CHECK_OK(perfq_quality_report_value(report, "gm_mean_cbf", &v, &defined));
    CHECK(near(v, 30.0, 1e-12) && defined == 1);
    CHECK_OK(perfq_quality_report_value(report, "gm_scov", &v, &defined));
    CHECK(near(v, 100.0 * sqrt(1300.0) / 30.0, 1e-9));
    CHECK_OK(perfq_quality_report_value(report, "gm_wm_ratio", &v, NULL));
    CHECK(near(v, 1.2, 1e-12));
    CHECK_OK(perfq_quality_report_value(report, "gm_negative_fraction", &v, NULL));
    CHECK(near(v, 1.0 / 3.0, 1e-12));
    CHECK_OK(perfq_quality_report_value(report, "qei", &v, &defined));
    CHECK(v == 0.0 && defined == 0);
    CHECK(strstr(perfq_quality_report_why_not(report, "qei"), "CSF") != NULL);
    CHECK(strcmp(perfq_quality_report_why_not(report, "gm_mean_cbf"), "") == 0);
    CHECK_FAILS(perfq_quality_report_value(report, "nope", &v, &defined),
                PERFQ_ERROR_INVALID_ARGUMENT, "nope");
    CHECK(perfq_quality_report_why_not(report, "nope") == NULL);
  }
  perfq_quality_report_destroy(report);
  report = NULL;
  CHECK_FAILS(perfq_quality_indices(cbf, not_probability, NULL, NULL, dims, NULL, NULL, NULL, 0.0,
                                    0, &report),
              PERFQ_ERROR_INVALID_ARGUMENT, "probabilities in [0, 1]");
  CHECK(report == NULL);
  CHECK_FAILS(perfq_quality_indices(cbf, gm, NULL, NULL, dims, NULL, NULL, NULL, 1.5, 0, &report),
              PERFQ_ERROR_INVALID_ARGUMENT, "threshold");
  CHECK(perfq_quality_report_size(NULL) == 0);
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
  CHECK_OK(perfq_kinetic_options_set_prior_noise(kinetic, "uniform"));
  CHECK_OK(perfq_kinetic_options_set_prior_noise(kinetic, "m0"));
  CHECK_FAILS(perfq_kinetic_options_set_prior_noise(kinetic, "pooled"),
              PERFQ_ERROR_INVALID_ARGUMENT, "noise");
  CHECK_FAILS(perfq_kinetic_options_set_prior_noise(kinetic, NULL), PERFQ_ERROR_INVALID_ARGUMENT,
              "noise");
  CHECK_OK(perfq_kinetic_options_set_arterial_att_prior(kinetic, 0.7, 0.4));
  CHECK_FAILS(perfq_kinetic_options_set_arterial_att_prior(kinetic, NAN, 0.4),
              PERFQ_ERROR_INVALID_ARGUMENT, "mean");
  CHECK_FAILS(perfq_kinetic_options_set_arterial_att_prior(kinetic, 0.7, 0.0),
              PERFQ_ERROR_INVALID_ARGUMENT, "sd");
  CHECK_FAILS(perfq_kinetic_options_set_arterial_att_prior(NULL, 0.7, 0.4),
              PERFQ_ERROR_INVALID_ARGUMENT, "perfq_kinetic_options_set_arterial_att_prior");
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
    /* Two labels, then a control: not an incomplete last pair. */
    const int32_t unpaired[3] = {PERFQ_VOLUME_LABEL, PERFQ_VOLUME_LABEL, PERFQ_VOLUME_CONTROL};
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

static void test_execution_limits(void) {
  /* Chunked CPU runs give the same bits as one chunk; the limits are plain settings. */
  const size_t dims[3] = {5, 1, 1};
  const float delta_m[5] = {10.0f, 5.0f, 12.5f, 8.0f, 3.0f};
  const double pld = 1.8, tau = 1.8;
  perfq_protocol* protocol = NULL;
  perfq_execution* chunked = NULL;
  perfq_cbf_maps* whole = NULL;
  perfq_cbf_maps* pieces = NULL;
  CHECK_OK(perfq_protocol_create(&protocol));
  CHECK_OK(perfq_protocol_set_delays(protocol, &pld, 1));
  CHECK_OK(perfq_protocol_set_labeling_durations(protocol, &tau, 1));
  CHECK_OK(perfq_execution_create(&chunked));
  CHECK_OK(perfq_execution_set_backend(chunked, "cpu"));
  CHECK_OK(perfq_execution_set_max_chunk_voxels(chunked, 2));
  CHECK_OK(perfq_execution_set_device_bytes_limit(chunked, (size_t)1 << 20));
  CHECK_OK(
      perfq_quantify_cbf(delta_m, dims, NULL, NULL, 1000.0, NULL, protocol, NULL, NULL, &whole));
  CHECK_OK(perfq_quantify_cbf(delta_m, dims, NULL, NULL, 1000.0, NULL, protocol, NULL, chunked,
                              &pieces));
  if (whole != NULL && pieces != NULL) {
    CHECK(memcmp(perfq_cbf_maps_cbf(whole), perfq_cbf_maps_cbf(pieces), 5 * sizeof(float)) == 0);
  }
  CHECK_OK(perfq_execution_set_max_chunk_voxels(chunked, 0));
  CHECK_FAILS(perfq_execution_set_max_chunk_voxels(NULL, 2), PERFQ_ERROR_INVALID_ARGUMENT,
              "perfq_execution_set_max_chunk_voxels: handle");
  CHECK_FAILS(perfq_execution_set_device_bytes_limit(NULL, 2), PERFQ_ERROR_INVALID_ARGUMENT,
              "perfq_execution_set_device_bytes_limit: handle");
  perfq_cbf_maps_destroy(whole);
  perfq_cbf_maps_destroy(pieces);
  perfq_execution_destroy(chunked);
  perfq_protocol_destroy(protocol);
}

static void test_probabilistic_border_zones(void) {
  /* Two territories along a row: both probabilities ≥ 0.35 at x = 1 and 2 only. */
  const size_t dims[3] = {4, 1, 1};
  const float probabilities[8] = {0.9f, 0.6f, 0.4f, 0.1f, 0.1f, 0.4f, 0.6f, 0.9f};
  const int32_t labels[2] = {3, 7};
  perfq_border_zones* zones = NULL;
  size_t count = 0, i;
  CHECK_OK(perfq_border_zones_from_probabilities(probabilities, 2, dims, NULL, NULL, 0.35, labels,
                                                 NULL, &zones));
  if (zones != NULL) {
    const uint8_t* mask = perfq_border_zones_mask(zones);
    const int32_t* pairs = perfq_border_zones_pairs(zones);
    const int32_t* used = perfq_border_zones_territories(zones, &count);
    CHECK(count == 2 && used[0] == 3 && used[1] == 7);
    for (i = 0; i < 4; ++i) {
      CHECK(mask[i] == (i == 1 || i == 2));
      CHECK(pairs[i] == ((i == 1 || i == 2) ? 3007 : 0));
    }
  }
  perfq_border_zones_destroy(zones);
  zones = NULL;
  /* Default labels 1, 2; a brain mask leaves x = 2 out. */
  {
    const uint8_t brain[4] = {1, 1, 0, 1};
    CHECK_OK(perfq_border_zones_from_probabilities(probabilities, 2, dims, NULL, brain, 0.35, NULL,
                                                   NULL, &zones));
    if (zones != NULL) {
      for (i = 0; i < 4; ++i) {
        CHECK(perfq_border_zones_mask(zones)[i] == (i == 1));
        CHECK(perfq_border_zones_pairs(zones)[i] == (i == 1 ? 1002 : 0));
      }
    }
    perfq_border_zones_destroy(zones);
    zones = NULL;
  }
  CHECK_FAILS(perfq_border_zones_from_probabilities(probabilities, 1, dims, NULL, NULL, 0.35, NULL,
                                                    NULL, &zones),
              PERFQ_ERROR_INVALID_ARGUMENT, "territory_count");
  CHECK_FAILS(perfq_border_zones_from_probabilities(probabilities, 2, dims, NULL, NULL, 0.0, NULL,
                                                    NULL, &zones),
              PERFQ_ERROR_INVALID_ARGUMENT, "threshold");
  CHECK_FAILS(
      perfq_border_zones_from_probabilities(NULL, 2, dims, NULL, NULL, 0.3, NULL, NULL, &zones),
      PERFQ_ERROR_INVALID_ARGUMENT, "probabilities");
  CHECK(zones == NULL);
}

static void test_timing_border_zones(void) {
  const size_t dims[3] = {5, 1, 1};
  const float att[5] = {0.5f, 1.0f, 1.5f, 2.0f, 2.5f};
  const uint8_t tissue[5] = {0, 1, 1, 1, 1};
  perfq_timing_options* options = NULL;
  perfq_timing_summary summary;
  perfq_mask* zones = NULL;
  size_t i;
  CHECK_OK(perfq_timing_options_create(&options));
  /* Neither threshold nor percentile yet. */
  CHECK_FAILS(perfq_timing_border_zones(att, tissue, dims, NULL, options, NULL, NULL, &zones),
              PERFQ_ERROR_INVALID_ARGUMENT, "perfq_timing_border_zones");
  CHECK_OK(perfq_timing_options_set_threshold(options, 1.5));
  CHECK_OK(perfq_timing_border_zones(att, tissue, dims, NULL, options, NULL, &summary, &zones));
  if (zones != NULL) {
    CHECK(perfq_mask_voxel_count(zones) == 5);
    for (i = 0; i < 5; ++i) CHECK(perfq_mask_data(zones)[i] == (i >= 2));
    CHECK(summary.cut == 1.5 && summary.tissue_voxels == 4);
    CHECK(summary.components_kept == 1 && summary.components_dropped == 0);
  }
  perfq_mask_destroy(zones);
  zones = NULL;
  /* Percentile 50 of 1.0, 1.5, 2.0, 2.5 (tissue only): 1.75. */
  CHECK_OK(perfq_timing_options_set_percentile(options, 50.0));
  CHECK_OK(perfq_timing_border_zones(att, tissue, dims, NULL, options, NULL, &summary, &zones));
  if (zones != NULL) {
    for (i = 0; i < 5; ++i) CHECK(perfq_mask_data(zones)[i] == (i >= 3));
    CHECK(near(summary.cut, 1.75, 1e-12));
  }
  perfq_mask_destroy(zones);
  zones = NULL;
  /* Two voxels touching by an edge: one component with 26-connectivity, two with 6. Voxels of
   * 1 mm³ = 0.001 ml; a minimum of 0.0015 ml keeps 2-voxel components only. */
  {
    const size_t square[3] = {2, 2, 1};
    const float diagonal[4] = {2.0f, 0.0f, 0.0f, 2.0f};
    const uint8_t all[4] = {1, 1, 1, 1};
    CHECK_OK(perfq_timing_options_set_threshold(options, 1.0));
    CHECK_OK(perfq_timing_options_set_min_volume(options, 0.0015));
    CHECK_OK(
        perfq_timing_border_zones(diagonal, all, square, NULL, options, NULL, &summary, &zones));
    if (zones != NULL) {
      CHECK(perfq_mask_data(zones)[0] == 1 && perfq_mask_data(zones)[3] == 1);
      CHECK(summary.components_kept == 1 && summary.components_dropped == 0);
    }
    perfq_mask_destroy(zones);
    zones = NULL;
    CHECK_OK(perfq_timing_options_set_connectivity(options, PERFQ_CONNECTIVITY_6));
    CHECK_OK(
        perfq_timing_border_zones(diagonal, all, square, NULL, options, NULL, &summary, &zones));
    if (zones != NULL) {
      for (i = 0; i < 4; ++i) CHECK(perfq_mask_data(zones)[i] == 0);
      CHECK(summary.components_kept == 0 && summary.components_dropped == 2);
      CHECK(summary.voxels_dropped == 2);
    }
    perfq_mask_destroy(zones);
    zones = NULL;
  }
  CHECK_FAILS(perfq_timing_options_set_percentile(options, 150.0), PERFQ_ERROR_INVALID_ARGUMENT,
              "percentile");
  CHECK_FAILS(perfq_timing_options_set_min_volume(options, -1.0), PERFQ_ERROR_INVALID_ARGUMENT,
              "min_volume_ml");
  CHECK_FAILS(perfq_timing_options_set_connectivity(options, (perfq_connectivity)7),
              PERFQ_ERROR_INVALID_ARGUMENT, "connectivity");
  CHECK_FAILS(perfq_timing_border_zones(att, tissue, dims, NULL, NULL, NULL, NULL, &zones),
              PERFQ_ERROR_INVALID_ARGUMENT, "options");
  CHECK(zones == NULL);
  perfq_timing_options_destroy(options);
}

static void test_local_cov_and_masks(void) {
  const size_t dims[3] = {3, 1, 1};
  const float cbf[3] = {10.0f, 20.0f, 30.0f};
  const uint8_t tissue[3] = {1, 1, 1};
  perfq_map* cov = NULL;
  /* Radius 1 mm: {10, 20}, {10, 20, 30}, {20, 30}; sample SD over mean. */
  CHECK_OK(perfq_local_cov(cbf, tissue, dims, NULL, 1.0, NULL, &cov));
  if (cov != NULL) {
    const float* v = perfq_map_data(cov);
    CHECK(perfq_map_voxel_count(cov) == 3);
    CHECK(near(v[0], sqrt(50.0) / 15.0, 1e-6));
    CHECK(near(v[1], 10.0 / 20.0, 1e-6));
    CHECK(near(v[2], sqrt(50.0) / 25.0, 1e-6));
  }
  perfq_map_destroy(cov);
  cov = NULL;
  CHECK_FAILS(perfq_local_cov(cbf, tissue, dims, NULL, 0.0, NULL, &cov),
              PERFQ_ERROR_INVALID_ARGUMENT, "radius_mm");
  CHECK(perfq_map_data(NULL) == NULL && perfq_mask_voxel_count(NULL) == 0);

  {
    const size_t row[3] = {4, 1, 1};
    const uint8_t a[4] = {1, 1, 0, 0}, b[4] = {0, 1, 1, 0};
    const uint8_t zones[4] = {1, 1, 1, 0}, wm[4] = {1, 0, 0, 1}, gm[4] = {0, 1, 0, 0};
    const uint8_t either[4] = {1, 1, 1, 0}, both[4] = {0, 1, 0, 0};
    perfq_mask* m = NULL;
    perfq_mask* internal = NULL;
    perfq_mask* external = NULL;
    CHECK_OK(perfq_combine_masks(a, b, row, NULL, PERFQ_COMBINE_UNION, &m));
    if (m != NULL) CHECK(memcmp(perfq_mask_data(m), either, 4) == 0);
    perfq_mask_destroy(m);
    CHECK_OK(perfq_combine_masks(a, b, row, NULL, PERFQ_COMBINE_INTERSECTION, &m));
    if (m != NULL) CHECK(memcmp(perfq_mask_data(m), both, 4) == 0);
    perfq_mask_destroy(m);
    CHECK_FAILS(perfq_combine_masks(a, b, row, NULL, (perfq_combination)5, &m),
                PERFQ_ERROR_INVALID_ARGUMENT, "combination");
    CHECK(m == NULL);

    CHECK_OK(perfq_split_internal_external(zones, wm, gm, row, NULL, &internal, &external));
    if (internal != NULL && external != NULL) {
      const uint8_t in[4] = {1, 0, 0, 0}, ex[4] = {0, 1, 0, 0};
      CHECK(memcmp(perfq_mask_data(internal), in, 4) == 0);
      CHECK(memcmp(perfq_mask_data(external), ex, 4) == 0);
    }
    perfq_mask_destroy(internal);
    perfq_mask_destroy(external);
    /* Without a GM mask: zone \ WM. */
    CHECK_OK(perfq_split_internal_external(zones, wm, NULL, row, NULL, &internal, &external));
    if (external != NULL) {
      const uint8_t ex[4] = {0, 1, 1, 0};
      CHECK(memcmp(perfq_mask_data(external), ex, 4) == 0);
    }
    perfq_mask_destroy(internal);
    perfq_mask_destroy(external);
    CHECK_FAILS(perfq_split_internal_external(zones, NULL, NULL, row, NULL, &internal, &external),
                PERFQ_ERROR_INVALID_ARGUMENT, "white_matter");
    CHECK(internal == NULL && external == NULL);
    CHECK_FAILS(perfq_split_internal_external(zones, wm, NULL, row, NULL, NULL, &external),
                PERFQ_ERROR_INVALID_ARGUMENT, "internal");
  }
}

static void test_threshold_and_dice(void) {
  const size_t row[3] = {4, 1, 1};
  float map[4] = {0.2f, 0.5f, 0.0f, 0.9f};
  const uint8_t a[4] = {1, 1, 1, 1}, b[4] = {1, 1, 0, 0}, none[4] = {0, 0, 0, 0};
  perfq_mask* m = NULL;
  double dice = -1.0;
  map[2] = (float)NAN;
  /* ≥ the minimum is inside, NaN is outside. */
  CHECK_OK(perfq_threshold_map(map, row, NULL, 0.5, &m));
  if (m != NULL) {
    const uint8_t expected[4] = {0, 1, 0, 1};
    CHECK(perfq_mask_voxel_count(m) == 4 && memcmp(perfq_mask_data(m), expected, 4) == 0);
  }
  perfq_mask_destroy(m);
  CHECK_FAILS(perfq_threshold_map(map, row, NULL, NAN, &m), PERFQ_ERROR_INVALID_ARGUMENT,
              "minimum");
  CHECK(m == NULL);
  CHECK_FAILS(perfq_threshold_map(NULL, row, NULL, 0.5, &m), PERFQ_ERROR_INVALID_ARGUMENT, "map");

  /* |A| 4, |B| 2, |A ∩ B| 2: 2 × 2 / 6. Two empty masks agree perfectly. */
  CHECK_OK(perfq_dice(a, b, row, NULL, &dice));
  CHECK(near(dice, 2.0 / 3.0, 1e-15));
  CHECK_OK(perfq_dice(none, none, row, NULL, &dice));
  CHECK(dice == 1.0);
  CHECK_OK(perfq_dice(none, a, row, NULL, &dice));
  CHECK(dice == 0.0);
  CHECK_FAILS(perfq_dice(a, b, row, NULL, NULL), PERFQ_ERROR_INVALID_ARGUMENT, "out");
  dice = -1.0;
  CHECK_FAILS(perfq_dice(a, NULL, row, NULL, &dice), PERFQ_ERROR_INVALID_ARGUMENT, "perfq_dice: b");
  CHECK(dice == -1.0); /* left unchanged on failure */
  {
    const size_t zero[3] = {4, 1, 0};
    CHECK_FAILS(perfq_dice(a, b, zero, NULL, &dice), PERFQ_ERROR_INVALID_ARGUMENT, "dims[2]");
  }
}

static void test_group_territories(void) {
  /* Left/right ACA (1, 4) into 1, MCA 2 stays, PCA 3 removed. */
  const size_t dims[3] = {3, 2, 1};
  const int32_t labels[6] = {0, 1, 2, 3, 4, 2};
  const int32_t from[4] = {1, 2, 3, 4}, to[4] = {1, 2, 0, 1};
  const int32_t expected[6] = {0, 1, 2, 0, 1, 2};
  perfq_label_image* grouped = NULL;
  size_t i;
  CHECK_OK(perfq_group_territories(labels, dims, NULL, from, to, 4, &grouped));
  if (grouped != NULL) {
    CHECK(perfq_label_image_voxel_count(grouped) == 6);
    for (i = 0; i < 6; ++i) CHECK(perfq_label_image_data(grouped)[i] == expected[i]);
  }
  perfq_label_image_destroy(grouped);
  grouped = NULL;

  /* Label 4 has no group; a negative group; a repeated label; a group for an empty
   * territory; NULL arrays with a count. */
  CHECK_FAILS(perfq_group_territories(labels, dims, NULL, from, to, 3, &grouped),
              PERFQ_ERROR_INVALID_ARGUMENT, "label 4");
  CHECK(grouped == NULL);
  {
    const int32_t negative[4] = {1, -2, 0, 1};
    const int32_t twice[4] = {1, 2, 2, 4};
    const int32_t extra_from[5] = {1, 2, 3, 4, 7}, extra_to[5] = {1, 2, 3, 4, 5};
    CHECK_FAILS(perfq_group_territories(labels, dims, NULL, from, negative, 4, &grouped),
                PERFQ_ERROR_INVALID_ARGUMENT, "to[1]");
    CHECK_FAILS(perfq_group_territories(labels, dims, NULL, twice, to, 4, &grouped),
                PERFQ_ERROR_INVALID_ARGUMENT, "from[2]");
    CHECK_FAILS(perfq_group_territories(labels, dims, NULL, extra_from, extra_to, 5, &grouped),
                PERFQ_ERROR_INVALID_ARGUMENT, "territory 7");
  }
  CHECK_FAILS(perfq_group_territories(labels, dims, NULL, NULL, to, 4, &grouped),
              PERFQ_ERROR_INVALID_ARGUMENT, "from");
  CHECK_FAILS(perfq_group_territories(labels, dims, NULL, from, to, 4, NULL),
              PERFQ_ERROR_INVALID_ARGUMENT, "out");
  CHECK(perfq_label_image_data(NULL) == NULL && perfq_label_image_voxel_count(NULL) == 0);
  CHECK(strstr(perfq_last_error(), "perfq_label_image_voxel_count") != NULL);
  perfq_label_image_destroy(NULL);
}

static void test_drop_small_components(void) {
  /* 1 cm voxels (1 ml): a component of 2 ml at x = 0, 1 and one of 1 ml at x = 3. */
  const size_t row[3] = {6, 1, 1};
  const double cm[3] = {10.0, 10.0, 10.0};
  const uint8_t mask[6] = {1, 1, 0, 1, 0, 0};
  /* Two voxels touching by an edge only: one component with 26-connectivity, two with 6. */
  const size_t square[3] = {2, 2, 1};
  const uint8_t diagonal[4] = {1, 0, 0, 1};
  perfq_component_summary summary = {9, 9, 9};
  perfq_mask* kept = NULL;
  CHECK_OK(perfq_drop_small_components(mask, row, cm, 1.5, PERFQ_CONNECTIVITY_26, &summary, &kept));
  if (kept != NULL) {
    const uint8_t expected[6] = {1, 1, 0, 0, 0, 0};
    CHECK(perfq_mask_voxel_count(kept) == 6 && memcmp(perfq_mask_data(kept), expected, 6) == 0);
    CHECK(summary.components_kept == 1 && summary.components_dropped == 1);
    CHECK(summary.voxels_dropped == 1);
  }
  perfq_mask_destroy(kept);
  /* The same with 1 mm voxels (0.001 ml each): everything goes; no summary asked. */
  CHECK_OK(perfq_drop_small_components(mask, row, NULL, 1.5, PERFQ_CONNECTIVITY_26, NULL, &kept));
  if (kept != NULL) {
    const uint8_t empty[6] = {0, 0, 0, 0, 0, 0};
    CHECK(memcmp(perfq_mask_data(kept), empty, 6) == 0);
  }
  perfq_mask_destroy(kept);

  /* Exactly the minimum is kept. */
  CHECK_OK(perfq_drop_small_components(diagonal, square, cm, 2.0, PERFQ_CONNECTIVITY_26, &summary,
                                       &kept));
  if (kept != NULL) {
    CHECK(memcmp(perfq_mask_data(kept), diagonal, 4) == 0);
    CHECK(summary.components_kept == 1 && summary.components_dropped == 0);
    CHECK(summary.voxels_dropped == 0);
  }
  perfq_mask_destroy(kept);
  CHECK_OK(perfq_drop_small_components(diagonal, square, cm, 1.5, PERFQ_CONNECTIVITY_6, &summary,
                                       &kept));
  if (kept != NULL) {
    const uint8_t empty[4] = {0, 0, 0, 0};
    CHECK(memcmp(perfq_mask_data(kept), empty, 4) == 0);
    CHECK(summary.components_kept == 0 && summary.components_dropped == 2);
    CHECK(summary.voxels_dropped == 2);
  }
  perfq_mask_destroy(kept);
  kept = NULL;

  summary.components_kept = 42;
  CHECK_FAILS(
      perfq_drop_small_components(mask, row, cm, -1.0, PERFQ_CONNECTIVITY_26, &summary, &kept),
      PERFQ_ERROR_INVALID_ARGUMENT, "min_volume_ml");
  CHECK(kept == NULL && summary.components_kept == 42); /* left unchanged on failure */
  CHECK_FAILS(
      perfq_drop_small_components(mask, row, cm, 1.0, (perfq_connectivity)8, &summary, &kept),
      PERFQ_ERROR_INVALID_ARGUMENT, "connectivity");
  CHECK_FAILS(
      perfq_drop_small_components(NULL, row, cm, 1.0, PERFQ_CONNECTIVITY_6, &summary, &kept),
      PERFQ_ERROR_INVALID_ARGUMENT, "perfq_drop_small_components: mask");
}

static void test_periventricular_caps(void) {
  /* 3 × 9 voxels of 1 mm, ventricles at x = 1, y = 3 … 5 (AP extent 2 mm, horns 0.5 mm).
   * Reach 2 mm: frontal where y ≤ 3.5, occipital where y ≥ 4.5; (0, 4) and (2, 4) are within
   * reach but beside the ventricles' middle, so in no cap. Rows are y, from anterior. */
  const size_t dims[3] = {3, 9, 1};
  uint8_t ventricles[27] = {0};
  uint8_t brain[27];
  const uint8_t expected[27] = {0, 0, 0, /* y 0 */
                                0, 1, 0, /* y 1 */
                                1, 1, 1, /* y 2 */
                                1, 0, 1, /* y 3: the ventricle itself is never a cap */
                                0, 0, 0, /* y 4 */
                                2, 0, 2, /* y 5 */
                                2, 2, 2, /* y 6 */
                                0, 2, 0, /* y 7 */
                                0, 0, 0};
  perfq_cap_options* options = NULL;
  perfq_mask* caps = NULL;
  size_t i;
  ventricles[3 * 3 + 1] = ventricles[4 * 3 + 1] = ventricles[5 * 3 + 1] = 1;
  for (i = 0; i < 27; ++i) brain[i] = 1;

  CHECK_OK(perfq_cap_options_create(&options));
  CHECK_OK(perfq_cap_options_set_distance(options, 2.0));
  CHECK_OK(perfq_cap_options_set_horn_fraction(options, 0.25));
  CHECK_OK(perfq_periventricular_caps(ventricles, NULL, dims, NULL, options, NULL, &caps));
  if (caps != NULL) {
    CHECK(perfq_mask_voxel_count(caps) == 27);
    for (i = 0; i < 27; ++i) CHECK(perfq_mask_data(caps)[i] == expected[i]);
    CHECK(perfq_mask_data(caps)[1 * 3 + 1] == PERFQ_CAP_FRONTAL);
    CHECK(perfq_mask_data(caps)[7 * 3 + 1] == PERFQ_CAP_OCCIPITAL);
  }
  perfq_mask_destroy(caps);
  caps = NULL;

  /* A brain mask removes (1, 1) and (2, 6). */
  brain[1 * 3 + 1] = 0;
  brain[6 * 3 + 2] = 0;
  CHECK_OK(perfq_periventricular_caps(ventricles, brain, dims, NULL, options, NULL, &caps));
  if (caps != NULL) {
    for (i = 0; i < 27; ++i) {
      CHECK(perfq_mask_data(caps)[i] == (i == 1 * 3 + 1 || i == 6 * 3 + 2 ? 0 : expected[i]));
    }
  }
  perfq_mask_destroy(caps);
  caps = NULL;

  /* NULL options: 10 mm reach (the whole grid), horns of 0.25. */
  CHECK_OK(perfq_periventricular_caps(ventricles, NULL, dims, NULL, NULL, NULL, &caps));
  if (caps != NULL) {
    CHECK(perfq_mask_data(caps)[0] == PERFQ_CAP_FRONTAL);
    CHECK(perfq_mask_data(caps)[26] == PERFQ_CAP_OCCIPITAL);
    CHECK(perfq_mask_data(caps)[4 * 3] == PERFQ_CAP_NONE);
  }
  perfq_mask_destroy(caps);
  caps = NULL;

  /* Spacing counts: with 2 mm rows (y), a 2 mm reach covers one row before and after. */
  {
    const double tall[3] = {1.0, 2.0, 1.0};
    CHECK_OK(perfq_periventricular_caps(ventricles, NULL, dims, tall, options, NULL, &caps));
    if (caps != NULL) {
      CHECK(perfq_mask_data(caps)[1 * 3 + 1] == PERFQ_CAP_NONE);
      CHECK(perfq_mask_data(caps)[2 * 3 + 1] == PERFQ_CAP_FRONTAL);
      CHECK(perfq_mask_data(caps)[6 * 3 + 1] == PERFQ_CAP_OCCIPITAL);
      CHECK(perfq_mask_data(caps)[2 * 3] == PERFQ_CAP_NONE); /* √(1 + 4) mm away */
    }
    perfq_mask_destroy(caps);
    caps = NULL;
  }

  CHECK_FAILS(perfq_cap_options_set_distance(options, -1.0), PERFQ_ERROR_INVALID_ARGUMENT,
              "distance_mm");
  CHECK_FAILS(perfq_cap_options_set_horn_fraction(options, 0.6), PERFQ_ERROR_INVALID_ARGUMENT,
              "horn_fraction");
  CHECK_FAILS(perfq_cap_options_set_horn_fraction(options, 0.0), PERFQ_ERROR_INVALID_ARGUMENT,
              "horn_fraction");
  CHECK_FAILS(perfq_cap_options_set_distance(NULL, 1.0), PERFQ_ERROR_INVALID_ARGUMENT,
              "perfq_cap_options_set_distance: handle");
  {
    const uint8_t no_ventricles[27] = {0};
    CHECK_FAILS(perfq_periventricular_caps(no_ventricles, NULL, dims, NULL, options, NULL, &caps),
                PERFQ_ERROR_INVALID_ARGUMENT, "ventricle mask is empty");
    CHECK(caps == NULL);
  }
  CHECK_FAILS(perfq_periventricular_caps(NULL, brain, dims, NULL, options, NULL, &caps),
              PERFQ_ERROR_INVALID_ARGUMENT, "ventricles");
  CHECK_FAILS(perfq_cap_options_create(NULL), PERFQ_ERROR_INVALID_ARGUMENT, "out");
  perfq_cap_options_destroy(options);
  perfq_cap_options_destroy(NULL);
}

/* One statistic of the row with `label` (NaN when missing). */
static double stat_of(const perfq_region_table* table, int32_t label, perfq_stat which) {
  size_t row = 0;
  double value = 0.0;
  if (perfq_region_table_find(table, label, &row) != PERFQ_OK) return NAN;
  if (perfq_region_table_stat(table, row, which, &value) != PERFQ_OK) return NAN;
  return value;
}

static void test_weighted_and_paired_stats(void) {
  /* Region 1: 1, 2, 3, 4 with weights 1, 1, 0.5, 0.5; region 2: 10 (w 1) and 20 (w 0, and no
   * baseline value); label 0: 5; region 3: 7. Baseline: 1 in region 1, 8 for the 10. */
  const size_t dims[3] = {4, 2, 1};
  const float map[8] = {1.0f, 2.0f, 3.0f, 4.0f, 10.0f, 20.0f, 5.0f, 7.0f};
  const int32_t labels[8] = {1, 1, 1, 1, 2, 2, 0, 3};
  const float weights[8] = {1.0f, 1.0f, 0.5f, 0.5f, 1.0f, 0.0f, 1.0f, 1.0f};
  float baseline[8] = {1.0f, 1.0f, 1.0f, 1.0f, 8.0f, 0.0f, 5.0f, 7.0f};
  const int32_t selected[3] = {2, 1, 9};
  const double median_only[1] = {50.0};
  perfq_stats_options* options = NULL;
  perfq_region_table* table = NULL;
  double value = 0.0;
  baseline[5] = NAN;

  CHECK_OK(perfq_stats_options_create(&options));
  CHECK_OK(perfq_stats_options_set_labels(options, selected, 3));
  CHECK_OK(perfq_stats_options_set_percentiles(options, median_only, 1));
  CHECK_OK(perfq_region_stats_with_options(map, labels, dims, NULL, NULL, weights, baseline,
                                           options, NULL, &table));
  if (table != NULL) {
    /* Region 1, weighted: Σw 3, Σwx 6.5, Σw² 2.5. */
    const double m = 6.5 / 3.0;
    const double ss =
        (1 - m) * (1 - m) + (2 - m) * (2 - m) + 0.5 * (3 - m) * (3 - m) + 0.5 * (4 - m) * (4 - m);
    CHECK(perfq_region_table_size(table) == 3);
    CHECK(perfq_region_table_is_weighted(table) == 1 && perfq_region_table_is_paired(table) == 1);
    CHECK(perfq_region_table_voxel_volume_ml(table) == 0.001);
    CHECK(perfq_region_table_stat(table, 0, PERFQ_STAT_LABEL, &value) == PERFQ_OK && value == 2);
    CHECK(perfq_region_table_stat(table, 2, PERFQ_STAT_LABEL, &value) == PERFQ_OK && value == 9);
    CHECK(stat_of(table, 9, PERFQ_STAT_VOXELS) == 0 && stat_of(table, 9, PERFQ_STAT_COUNT) == 0);
    CHECK(stat_of(table, 1, PERFQ_STAT_WEIGHTED_DEFINED) == 1);
    CHECK(near(stat_of(table, 1, PERFQ_STAT_WEIGHTED_WEIGHT_SUM), 3.0, 1e-12));
    CHECK(near(stat_of(table, 1, PERFQ_STAT_WEIGHTED_VOLUME_ML), 0.003, 1e-12));
    CHECK(near(stat_of(table, 1, PERFQ_STAT_WEIGHTED_EFFECTIVE_COUNT), 9.0 / 2.5, 1e-12));
    CHECK(near(stat_of(table, 1, PERFQ_STAT_WEIGHTED_MEAN), m, 1e-12));
    CHECK(near(stat_of(table, 1, PERFQ_STAT_WEIGHTED_SD), sqrt(ss / (3.0 - 2.5 / 3.0)), 1e-12));
    CHECK(near(stat_of(table, 2, PERFQ_STAT_WEIGHTED_MEAN), 10.0, 1e-12));
    CHECK(stat_of(table, 2, PERFQ_STAT_WEIGHTED_SD) == 0.0);
    CHECK(stat_of(table, 9, PERFQ_STAT_WEIGHTED_DEFINED) == 0);
    /* Region 1, change: d = 0, 1, 2, 3. */
    CHECK(stat_of(table, 1, PERFQ_STAT_CHANGE_DEFINED) == 1);
    CHECK(stat_of(table, 1, PERFQ_STAT_CHANGE_COUNT) == 4);
    CHECK(near(stat_of(table, 1, PERFQ_STAT_CHANGE_BASELINE_MEAN), 1.0, 1e-12));
    CHECK(near(stat_of(table, 1, PERFQ_STAT_CHANGE_FOLLOWUP_MEAN), 2.5, 1e-12));
    CHECK(near(stat_of(table, 1, PERFQ_STAT_CHANGE_MEAN), 1.5, 1e-12));
    CHECK(near(stat_of(table, 1, PERFQ_STAT_CHANGE_SD), sqrt(5.0 / 3.0), 1e-12));
    CHECK(stat_of(table, 1, PERFQ_STAT_CHANGE_PERCENT_DEFINED) == 1);
    CHECK(near(stat_of(table, 1, PERFQ_STAT_CHANGE_PERCENT), 150.0, 1e-12));
    /* Region 2: the voxel without a baseline value is left out of the change. */
    CHECK(stat_of(table, 2, PERFQ_STAT_CHANGE_COUNT) == 1);
    CHECK(near(stat_of(table, 2, PERFQ_STAT_CHANGE_PERCENT), 25.0, 1e-12));
    CHECK(stat_of(table, 2, PERFQ_STAT_CHANGE_SD) == 0.0);
    CHECK(stat_of(table, 9, PERFQ_STAT_CHANGE_DEFINED) == 0);
    CHECK(perfq_region_table_percentile_count(table) == 1);
    CHECK(perfq_region_table_percentile(table, 1, 0, &value) == PERFQ_OK && value == 2.5);
    CHECK_FAILS(perfq_region_table_stat(table, 0, (perfq_stat)27, &value),
                PERFQ_ERROR_INVALID_ARGUMENT, "which");
  }
  perfq_region_table_destroy(table);
  table = NULL;

  /* Every label, the background included; no weights or baseline: no extra statistics. */
  CHECK_OK(perfq_stats_options_set_labels(options, NULL, 0));
  CHECK_OK(perfq_stats_options_set_include_background(options, 1));
  CHECK_OK(perfq_region_stats_with_options(map, labels, dims, NULL, NULL, NULL, NULL, options, NULL,
                                           &table));
  if (table != NULL) {
    CHECK(perfq_region_table_size(table) == 4);
    CHECK(perfq_region_table_stat(table, 0, PERFQ_STAT_LABEL, &value) == PERFQ_OK && value == 0);
    CHECK(perfq_region_table_is_weighted(table) == 0 && perfq_region_table_is_paired(table) == 0);
    CHECK(stat_of(table, 1, PERFQ_STAT_WEIGHTED_MEAN) == 0.0);
  }
  perfq_region_table_destroy(table);
  table = NULL;

  /* NULL options: the defaults (4 percentiles, background left out). */
  CHECK_OK(perfq_region_stats_with_options(map, labels, dims, NULL, NULL, NULL, NULL, NULL, NULL,
                                           &table));
  if (table != NULL) {
    CHECK(perfq_region_table_size(table) == 3 && perfq_region_table_percentile_count(table) == 4);
  }
  perfq_region_table_destroy(table);
  table = NULL;

  {
    const int32_t twice[2] = {1, 1};
    const float bad_weights[8] = {1.5f, 1, 1, 1, 1, 1, 1, 1};
    CHECK_OK(perfq_stats_options_set_labels(options, twice, 2));
    CHECK_FAILS(perfq_region_stats_with_options(map, labels, dims, NULL, NULL, NULL, NULL, options,
                                                NULL, &table),
                PERFQ_ERROR_INVALID_ARGUMENT, "perfq_region_stats_with_options");
    CHECK_OK(perfq_stats_options_set_labels(options, NULL, 0));
    CHECK_FAILS(perfq_region_stats_with_options(map, labels, dims, NULL, NULL, bad_weights, NULL,
                                                options, NULL, &table),
                PERFQ_ERROR_INVALID_ARGUMENT, "perfq_region_stats_with_options");
    CHECK_FAILS(perfq_stats_options_set_labels(options, NULL, 2), PERFQ_ERROR_INVALID_ARGUMENT,
                "labels");
    CHECK_FAILS(perfq_region_stats_with_options(map, NULL, dims, NULL, NULL, NULL, NULL, options,
                                                NULL, &table),
                PERFQ_ERROR_INVALID_ARGUMENT, "labels");
    CHECK(table == NULL);
  }
  perfq_stats_options_destroy(options);
}

static void test_white_matter_and_lesions(void) {
  const size_t dims[3] = {5, 1, 1};
  const uint8_t wm[5] = {1, 1, 1, 1, 1};
  const uint8_t lesion[5] = {0, 0, 1, 0, 0};
  perfq_mask* nawm = NULL;
  perfq_lesion_enrichment e;
  size_t i;
  /* 1 mm around the lesion: x = 1 … 3 removed. */
  CHECK_OK(perfq_normal_appearing_white_matter(wm, lesion, dims, NULL, 1.0, NULL, &nawm));
  if (nawm != NULL) {
    for (i = 0; i < 5; ++i) CHECK(perfq_mask_data(nawm)[i] == (i == 0 || i == 4));
  }
  perfq_mask_destroy(nawm);
  CHECK_OK(perfq_normal_appearing_white_matter(wm, lesion, dims, NULL, 0.0, NULL, &nawm));
  if (nawm != NULL) {
    for (i = 0; i < 5; ++i) CHECK(perfq_mask_data(nawm)[i] == (i != 2));
  }
  perfq_mask_destroy(nawm);
  CHECK_FAILS(perfq_normal_appearing_white_matter(wm, lesion, dims, NULL, -1.0, NULL, &nawm),
              PERFQ_ERROR_INVALID_ARGUMENT, "dilation_mm");
  CHECK(nawm == NULL);

  {
    /* WM x = 0 … 7, watershed x = 4, 5, lesions x = 4 and 8 (outside WM); 2 mm³ voxels:
     * half the lesions in a quarter of WM, enrichment 2. */
    const size_t row[3] = {10, 1, 1};
    const double spacing[3] = {2.0, 1.0, 1.0};
    const uint8_t white[10] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    const uint8_t watershed[10] = {0, 0, 0, 0, 1, 1, 0, 0, 0, 0};
    const uint8_t lesions[10] = {0, 0, 0, 0, 1, 0, 0, 0, 1, 0};
    CHECK_OK(perfq_lesion_watershed_enrichment(lesions, watershed, white, row, spacing, &e));
    CHECK(e.lesion_voxels == 2 && e.lesion_in_watershed == 1);
    CHECK(e.wm_voxels == 8 && e.watershed_in_wm == 2);
    CHECK(near(e.lesion_volume_ml, 0.004, 1e-12) && near(e.lesion_in_watershed_ml, 0.002, 1e-12));
    CHECK(e.lesion_fraction == 0.5 && e.watershed_fraction == 0.25);
    CHECK(e.enrichment_defined == 1 && e.enrichment == 2.0);
    CHECK_FAILS(perfq_lesion_watershed_enrichment(lesions, watershed, white, row, spacing, NULL),
                PERFQ_ERROR_INVALID_ARGUMENT, "out");
    CHECK_FAILS(perfq_lesion_watershed_enrichment(NULL, watershed, white, row, spacing, &e),
                PERFQ_ERROR_INVALID_ARGUMENT, "lesions");
  }
}

static void test_partial_volume_correction(void) {
  /* GM fraction 0.1 … 0.9 along x, WM the rest; CBF 60 in GM and 20 in WM everywhere: the
   * regression recovers both exactly (to float rounding). */
  const size_t dims[3] = {5, 5, 1};
  float cbf[25], gm[25], wm[25];
  perfq_pvc_options* options = NULL;
  perfq_pvc_maps* maps = NULL;
  size_t x, y;
  for (y = 0; y < 5; ++y) {
    for (x = 0; x < 5; ++x) {
      const float p = 0.1f + 0.2f * (float)x;
      gm[y * 5 + x] = p;
      wm[y * 5 + x] = 1.0f - p;
      cbf[y * 5 + x] = 60.0f * p + 20.0f * (1.0f - p);
    }
  }
  CHECK_OK(perfq_pvc_options_create(&options));
  CHECK_OK(perfq_pvc_options_set_kernel(options, 3, 1));
  CHECK_OK(perfq_pvc_options_set_min_fraction(options, 0.2));
  CHECK_OK(perfq_partial_volume_correct(cbf, gm, wm, dims, NULL, NULL, options, NULL, &maps));
  if (maps != NULL) {
    const size_t centre = 2 * 5 + 2;
    CHECK(perfq_pvc_maps_voxel_count(maps) == 25);
    CHECK(perfq_pvc_maps_valid(maps)[centre] == 3);
    CHECK(near(perfq_pvc_maps_cbf_gm(maps)[centre], 60.0, 1e-4));
    CHECK(near(perfq_pvc_maps_cbf_wm(maps)[centre], 20.0, 1e-4));
    /* x = 0: GM fraction 0.1 < 0.2, so no GM value there. */
    CHECK((perfq_pvc_maps_valid(maps)[2 * 5] & 1) == 0 && perfq_pvc_maps_cbf_gm(maps)[2 * 5] == 0);
  }
  perfq_pvc_maps_destroy(maps);
  maps = NULL;
  CHECK_FAILS(perfq_pvc_options_set_kernel(options, 4, 1), PERFQ_ERROR_INVALID_ARGUMENT,
              "kernel_xy");
  CHECK_FAILS(perfq_pvc_options_set_kernel(options, 3, 0), PERFQ_ERROR_INVALID_ARGUMENT,
              "kernel_z");
  CHECK_FAILS(perfq_pvc_options_set_min_fraction(options, 0.0), PERFQ_ERROR_INVALID_ARGUMENT,
              "min_fraction");
  gm[3] = 1.5f;
  CHECK_FAILS(perfq_partial_volume_correct(cbf, gm, wm, dims, NULL, NULL, options, NULL, &maps),
              PERFQ_ERROR_INVALID_ARGUMENT, "perfq_partial_volume_correct");
  CHECK_FAILS(perfq_partial_volume_correct(cbf, NULL, wm, dims, NULL, NULL, NULL, NULL, &maps),
              PERFQ_ERROR_INVALID_ARGUMENT, "gm");
  CHECK(maps == NULL && perfq_pvc_maps_cbf_gm(NULL) == NULL);
  perfq_pvc_options_destroy(options);
}

static void test_constants_and_factor(void) {
  const double pld = 1.8, tau = 1.8, ti = 1.8, ti1 = 0.8;
  const double sentinel = -12345.0;
  perfq_protocol* protocol = NULL;
  perfq_physiology* physiology = NULL;
  perfq_constants c;
  double factor = 0.0, expected = 0.0;

  /* Defaults: PCASL at 3 T, white-paper constants, no background suppression, M0 relaxed. */
  CHECK_OK(perfq_protocol_create(&protocol));
  CHECK_OK(perfq_resolve_constants(protocol, NULL, &c));
  CHECK(c.blood_brain_partition == 0.9 && c.t1_blood == 1.65 && c.t1_tissue == 1.3);
  CHECK(c.labeling_efficiency == 0.85 && c.background_suppression_factor == 1.0);
  CHECK(c.effective_labeling_efficiency == 0.85 && c.m0_scale == 1.0);

  /* The white-paper factor: CBF = factor × ΔM/M0, so ΔM/M0 = 1 % gives 86.30 ml/100 g/min. */
  expected = 6000.0 * 0.9 * exp(pld / 1.65) / (2.0 * 0.85 * 1.65 * (1.0 - exp(-tau / 1.65)));
  CHECK_OK(perfq_single_delay_factor(PERFQ_LABELING_PCASL, pld, tau, 0.0, &c, &factor));
  CHECK(near(factor, expected, 1e-14));
  CHECK(fabs(factor * 0.01 - 86.2999) < 1e-3);
  CHECK(near(factor * 0.01, pcasl_cbf(10.0, 1000.0, pld, tau, 1.65, 0.85), 1e-14));
  /* TI1 is ignored for PCASL. */
  CHECK_OK(perfq_single_delay_factor(PERFQ_LABELING_PCASL, pld, tau, -1.0, &c, &expected));
  CHECK(expected == factor);

  /* 1.5 T physiology; 4 background-suppression pulses at 0.95 each; a stated α of 0.9; a
   * short-TR M0 (2 s): m0_scale 1 − e^(−2/1.3). */
  CHECK_OK(perfq_physiology_create(1.5, &physiology));
  CHECK_OK(perfq_protocol_set_background_suppression(protocol, 4, 0.0));
  CHECK_OK(perfq_protocol_set_labeling_efficiency(protocol, 0.9));
  CHECK_OK(perfq_protocol_set_m0_repetition_time(protocol, 2.0));
  CHECK_OK(perfq_resolve_constants(protocol, physiology, &c));
  CHECK(c.t1_blood == 1.35 && c.labeling_efficiency == 0.9);
  CHECK(near(c.background_suppression_factor, pow(0.95, 4), 1e-15));
  CHECK(near(c.effective_labeling_efficiency, 0.9 * pow(0.95, 4), 1e-15));
  CHECK(near(c.m0_scale, 1.0 - exp(-2.0 / 1.3), 1e-15));
  expected = 6000.0 * 0.9 * exp(pld / 1.35) * (1.0 - exp(-2.0 / 1.3)) /
             (2.0 * 0.9 * pow(0.95, 4) * 1.35 * (1.0 - exp(-tau / 1.35)));
  CHECK_OK(perfq_single_delay_factor(PERFQ_LABELING_PCASL, pld, tau, 0.0, &c, &factor));
  CHECK(near(factor, expected, 1e-13));
  /* A physiology override beats the stated α; a field of 1.5 T on the protocol alone picks
   * blood T1 1.35 s when no physiology is passed. */
  CHECK_OK(perfq_physiology_set_labeling_efficiency(physiology, 0.7));
  CHECK_OK(perfq_resolve_constants(protocol, physiology, &c));
  CHECK(c.labeling_efficiency == 0.7);
  CHECK_OK(perfq_protocol_set_field_strength(protocol, 1.5));
  CHECK_OK(perfq_resolve_constants(protocol, NULL, &c));
  CHECK(c.t1_blood == 1.35 && c.labeling_efficiency == 0.9);

  /* PASL: 6000 λ e^(TI/T1b) / (2 α TI1), α 0.98; CASL: α 0.68 (no stated efficiency). */
  perfq_protocol_destroy(protocol);
  protocol = NULL;
  CHECK_OK(perfq_protocol_create(&protocol));
  CHECK_OK(perfq_protocol_set_labeling(protocol, PERFQ_LABELING_PASL));
  CHECK_OK(perfq_resolve_constants(protocol, NULL, &c));
  CHECK(c.effective_labeling_efficiency == 0.98);
  CHECK_OK(perfq_single_delay_factor(PERFQ_LABELING_PASL, ti, 0.0, ti1, &c, &factor));
  CHECK(near(factor, 6000.0 * 0.9 * exp(ti / 1.65) / (2.0 * 0.98 * ti1), 1e-14));
  CHECK_OK(perfq_protocol_set_labeling(protocol, PERFQ_LABELING_CASL));
  CHECK_OK(perfq_resolve_constants(protocol, NULL, &c));
  CHECK(c.effective_labeling_efficiency == 0.68);
  CHECK_OK(perfq_single_delay_factor(PERFQ_LABELING_CASL, pld, tau, 0.0, &c, &factor));
  CHECK(near(factor,
             6000.0 * 0.9 * exp(pld / 1.65) / (2.0 * 0.68 * 1.65 * (1.0 - exp(-tau / 1.65))),
             1e-14));

  /* Errors: the argument or constant is named; outputs are left unchanged. */
  factor = sentinel;
  CHECK_FAILS(perfq_single_delay_factor(PERFQ_LABELING_PCASL, pld, 0.0, 0.0, &c, &factor),
              PERFQ_ERROR_INVALID_ARGUMENT, "labeling_duration");
  CHECK_FAILS(perfq_single_delay_factor(PERFQ_LABELING_PASL, ti, tau, 0.0, &c, &factor),
              PERFQ_ERROR_INVALID_ARGUMENT, "bolus_cutoff");
  CHECK_FAILS(perfq_single_delay_factor(PERFQ_LABELING_PCASL, -0.1, tau, 0.0, &c, &factor),
              PERFQ_ERROR_INVALID_ARGUMENT, "delay");
  CHECK_FAILS(perfq_single_delay_factor(PERFQ_LABELING_PCASL, NAN, tau, 0.0, &c, &factor),
              PERFQ_ERROR_INVALID_ARGUMENT, "delay");
  CHECK_FAILS(perfq_single_delay_factor((perfq_labeling_type)3, pld, tau, 0.0, &c, &factor),
              PERFQ_ERROR_INVALID_ARGUMENT, "type");
  /* A delay of minutes (milliseconds given for seconds) overflows single precision. */
  CHECK_FAILS(perfq_single_delay_factor(PERFQ_LABELING_PCASL, 1800.0, tau, 0.0, &c, &factor),
              PERFQ_ERROR_INVALID_ARGUMENT, "beyond single precision");
  CHECK_FAILS(perfq_single_delay_factor(PERFQ_LABELING_PCASL, pld, tau, 0.0, NULL, &factor),
              PERFQ_ERROR_INVALID_ARGUMENT, "constants");
  CHECK_FAILS(perfq_single_delay_factor(PERFQ_LABELING_PCASL, pld, tau, 0.0, &c, NULL),
              PERFQ_ERROR_INVALID_ARGUMENT, "out");
  {
    perfq_constants bad = c;
    bad.t1_blood = 0.0;
    CHECK_FAILS(perfq_single_delay_factor(PERFQ_LABELING_PCASL, pld, tau, 0.0, &bad, &factor),
                PERFQ_ERROR_INVALID_ARGUMENT, "constants->t1_blood");
    bad = c;
    bad.effective_labeling_efficiency = NAN;
    CHECK_FAILS(perfq_single_delay_factor(PERFQ_LABELING_PCASL, pld, tau, 0.0, &bad, &factor),
                PERFQ_ERROR_INVALID_ARGUMENT, "constants->effective_labeling_efficiency");
    bad = c;
    bad.m0_scale = -1.0;
    CHECK_FAILS(perfq_single_delay_factor(PERFQ_LABELING_PCASL, pld, tau, 0.0, &bad, &factor),
                PERFQ_ERROR_INVALID_ARGUMENT, "constants->m0_scale");
    bad = c;
    bad.blood_brain_partition = 0.0;
    CHECK_FAILS(perfq_single_delay_factor(PERFQ_LABELING_PCASL, pld, tau, 0.0, &bad, &factor),
                PERFQ_ERROR_INVALID_ARGUMENT, "constants->blood_brain_partition");
  }
  CHECK(factor == sentinel);
  CHECK(strstr(perfq_last_error(), "perfq_single_delay_factor: ") == perfq_last_error());

  c.t1_blood = sentinel;
  CHECK_OK(perfq_physiology_set_t1_blood(physiology, -1.0));
  CHECK_FAILS(perfq_resolve_constants(protocol, physiology, &c), PERFQ_ERROR_INVALID_ARGUMENT,
              "T1 of blood");
  CHECK(c.t1_blood == sentinel);
  CHECK_FAILS(perfq_resolve_constants(NULL, NULL, &c), PERFQ_ERROR_INVALID_ARGUMENT, "protocol");
  CHECK_FAILS(perfq_resolve_constants(protocol, NULL, NULL), PERFQ_ERROR_INVALID_ARGUMENT, "out");
  CHECK(strstr(perfq_last_error(), "perfq_resolve_constants: ") == perfq_last_error());
  perfq_physiology_destroy(physiology);
  perfq_protocol_destroy(protocol);
}

static void test_validate_protocol(void) {
  const double pld = 1.8, tau = 1.8;
  const double three[3] = {1.0, 1.5, 2.0};
  const double eight[8] = {1.0, 1.0, 1.5, 1.5, 2.0, 2.0, 2.5, 2.5};
  const double slice_times[3] = {0.0, 0.04, 0.08};
  perfq_protocol* protocol = NULL;

  CHECK_OK(perfq_protocol_create(&protocol));
  /* No delay yet: the field is named, with the file when one is given. */
  CHECK_FAILS(perfq_validate_protocol(protocol, 8, 4, "sub-01_asl.json"), PERFQ_ERROR_INPUT,
              "perfq_validate_protocol: sub-01_asl.json: PostLabelingDelay: required");
  CHECK_FAILS(perfq_validate_protocol(protocol, 8, 4, NULL), PERFQ_ERROR_INPUT,
              "perfq_validate_protocol: PostLabelingDelay: required");
  CHECK_OK(perfq_protocol_set_delays(protocol, &pld, 1));
  /* PCASL needs a labeling duration. */
  CHECK_FAILS(perfq_validate_protocol(protocol, 8, 4, "sub-01_asl.json"), PERFQ_ERROR_INPUT,
              "sub-01_asl.json: LabelingDuration: required");
  CHECK_OK(perfq_protocol_set_labeling_durations(protocol, &tau, 1));
  CHECK_OK(perfq_validate_protocol(protocol, 8, 4, "sub-01_asl.json"));
  CHECK_OK(perfq_validate_protocol(protocol, 1, 1, NULL));
  /* One value per volume, or one: 3 delays do not fit 8 volumes. */
  CHECK_OK(perfq_protocol_set_delays(protocol, eight, 8));
  CHECK_OK(perfq_validate_protocol(protocol, 8, 4, "sub-01_asl.json"));
  CHECK_FAILS(perfq_validate_protocol(protocol, 6, 4, "sub-01_asl.json"), PERFQ_ERROR_INPUT,
              "PostLabelingDelay: has 8 values; expected 1 or one per volume (6)");
  CHECK_OK(perfq_protocol_set_delays(protocol, three, 3));
  CHECK_FAILS(perfq_validate_protocol(protocol, 8, 4, "sub-01_asl.json"), PERFQ_ERROR_INPUT,
              "perfq_validate_protocol: sub-01_asl.json: PostLabelingDelay: has 3 values; "
              "expected 1 or one per volume (8)");
  CHECK_OK(perfq_validate_protocol(protocol, 3, 4, "sub-01_asl.json"));
  /* A 2D readout needs one slice time per slice. */
  CHECK_OK(perfq_protocol_set_slice_timing(protocol, slice_times, 3));
  CHECK_OK(perfq_validate_protocol(protocol, 3, 3, NULL));
  CHECK_FAILS(perfq_validate_protocol(protocol, 3, 4, "sub-01_asl.json"), PERFQ_ERROR_INPUT,
              "SliceTiming: has 3 values; expected one per slice (4)");
  CHECK_OK(perfq_protocol_set_slice_timing(protocol, NULL, 0));
  CHECK_OK(perfq_validate_protocol(protocol, 3, 4, NULL));
  /* Times are in seconds: above 30 s is taken for milliseconds and refused. */
  {
    const double in_ms = 1800.0;
    CHECK_OK(perfq_protocol_set_labeling_durations(protocol, &in_ms, 1));
    CHECK_FAILS(perfq_validate_protocol(protocol, 3, 4, "sub-01_asl.json"), PERFQ_ERROR_INPUT,
                "sub-01_asl.json: LabelingDuration: value 1800 is beyond any ASL timing");
    CHECK_OK(perfq_protocol_set_labeling_durations(protocol, &tau, 1));
  }
  /* PASL needs no labeling duration. */
  {
    perfq_protocol* pasl = NULL;
    CHECK_OK(perfq_protocol_create(&pasl));
    CHECK_OK(perfq_protocol_set_labeling(pasl, PERFQ_LABELING_PASL));
    CHECK_OK(perfq_protocol_set_delays(pasl, &pld, 1));
    CHECK_OK(perfq_protocol_set_bolus_cutoff(pasl, 0.8));
    CHECK_OK(perfq_validate_protocol(pasl, 4, 2, NULL));
    perfq_protocol_destroy(pasl);
  }
  /* M0Type Estimate takes a positive value; the others none. */
  CHECK_OK(perfq_protocol_set_m0(protocol, PERFQ_M0_ESTIMATE, 3500.5));
  CHECK_OK(perfq_validate_protocol(protocol, 3, 4, NULL));
  CHECK_FAILS(perfq_protocol_set_m0(protocol, PERFQ_M0_ESTIMATE, 0.0),
              PERFQ_ERROR_INVALID_ARGUMENT, "estimate");
  CHECK_FAILS(perfq_protocol_set_m0(protocol, PERFQ_M0_INCLUDED, 1.0),
              PERFQ_ERROR_INVALID_ARGUMENT, "estimate");
  CHECK_FAILS(perfq_protocol_set_m0(protocol, (perfq_m0_type)9, 0.0),
              PERFQ_ERROR_INVALID_ARGUMENT, "type");
  CHECK_OK(perfq_protocol_set_m0(protocol, PERFQ_M0_SEPARATE, 0.0));
  CHECK_OK(perfq_validate_protocol(protocol, 3, 4, NULL));
  /* Misuse is an invalid argument, not an input error. */
  CHECK_FAILS(perfq_validate_protocol(NULL, 8, 4, NULL), PERFQ_ERROR_INVALID_ARGUMENT, "protocol");
  CHECK_FAILS(perfq_validate_protocol(protocol, 0, 4, NULL), PERFQ_ERROR_INVALID_ARGUMENT,
              "volumes");
  CHECK_FAILS(perfq_validate_protocol(protocol, 3, 0, NULL), PERFQ_ERROR_INVALID_ARGUMENT,
              "slices");
  perfq_protocol_destroy(protocol);
}

static void test_region_stats_in_mask(void) {
  /* The region: 1, 2, 3, 4 and a NaN; voxels outside it (10, 5, 99) do not count. */
  const size_t dims[3] = {4, 2, 1};
  const double spacing[3] = {2.0, 2.0, 2.5};
  float map[8] = {1.0f, 2.0f, 3.0f, 4.0f, 10.0f, 0.0f, 5.0f, 99.0f};
  const uint8_t region[8] = {1, 1, 3, 1, 0, 1, 0, 0};
  const float weights[8] = {1.0f, 1.0f, 0.5f, 0.5f, 1.0f, 1.0f, 1.0f, 1.0f};
  const float baseline[8] = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
  const uint8_t empty[8] = {0};
  const uint8_t nan_only[8] = {0, 0, 0, 0, 0, 1, 0, 0};
  const int32_t ignored_labels[2] = {2, 3};
  const double median_only[1] = {50.0};
  perfq_stats_options* options = NULL;
  perfq_region_table* table = NULL;
  double v = 0.0;

  map[5] = (float)NAN;
  CHECK_OK(perfq_region_stats_in_mask(map, region, dims, spacing, NULL, NULL, NULL, NULL, &table));
  if (table != NULL) {
    CHECK(perfq_region_table_size(table) == 1);
    CHECK(perfq_region_table_percentile_count(table) == 4);
    CHECK(stat_of(table, 1, PERFQ_STAT_LABEL) == 1);
    CHECK(stat_of(table, 1, PERFQ_STAT_VOXELS) == 5);
    CHECK(stat_of(table, 1, PERFQ_STAT_COUNT) == 4);
    CHECK(stat_of(table, 1, PERFQ_STAT_NONFINITE) == 1);
    CHECK(near(stat_of(table, 1, PERFQ_STAT_VOLUME_ML), 5 * 10.0 / 1000.0, 1e-12));
    CHECK(stat_of(table, 1, PERFQ_STAT_MEAN) == 2.5);
    CHECK(near(stat_of(table, 1, PERFQ_STAT_SD), sqrt(5.0 / 3.0), 1e-12));
    CHECK(stat_of(table, 1, PERFQ_STAT_MEDIAN) == 2.5);
    CHECK(stat_of(table, 1, PERFQ_STAT_MIN) == 1.0 && stat_of(table, 1, PERFQ_STAT_MAX) == 4.0);
    /* numpy's linear percentile 5 of 1, 2, 3, 4: h = 0.15. */
    CHECK(perfq_region_table_percentile(table, 0, 0, &v) == PERFQ_OK && near(v, 1.15, 1e-12));
    CHECK(perfq_region_table_is_weighted(table) == 0 && perfq_region_table_is_paired(table) == 0);
  }
  perfq_region_table_destroy(table);
  table = NULL;

  /* Options: only the percentiles count (labels and background are ignored); weights and a
   * baseline add their statistics. */
  CHECK_OK(perfq_stats_options_create(&options));
  CHECK_OK(perfq_stats_options_set_percentiles(options, median_only, 1));
  CHECK_OK(perfq_stats_options_set_labels(options, ignored_labels, 2));
  CHECK_OK(perfq_stats_options_set_include_background(options, 1));
  CHECK_OK(perfq_region_stats_in_mask(map, region, dims, NULL, weights, baseline, options, NULL,
                                      &table));
  if (table != NULL) {
    /* Σw 3, Σwx 6.5 over the finite values; change d = 0, 1, 2, 3. */
    CHECK(perfq_region_table_size(table) == 1);
    CHECK(perfq_region_table_percentile_count(table) == 1);
    CHECK(perfq_region_table_percentile(table, 0, 0, &v) == PERFQ_OK && v == 2.5);
    CHECK(perfq_region_table_is_weighted(table) == 1 && perfq_region_table_is_paired(table) == 1);
    CHECK(near(stat_of(table, 1, PERFQ_STAT_WEIGHTED_WEIGHT_SUM), 3.0, 1e-12));
    CHECK(near(stat_of(table, 1, PERFQ_STAT_WEIGHTED_MEAN), 6.5 / 3.0, 1e-12));
    CHECK(stat_of(table, 1, PERFQ_STAT_CHANGE_COUNT) == 4);
    CHECK(near(stat_of(table, 1, PERFQ_STAT_CHANGE_MEAN), 1.5, 1e-12));
    CHECK(near(stat_of(table, 1, PERFQ_STAT_CHANGE_PERCENT), 150.0, 1e-12));
  }
  perfq_region_table_destroy(table);
  table = NULL;
  perfq_stats_options_destroy(options);

  /* Errors: NULL arguments named. */
  CHECK_FAILS(perfq_region_stats_in_mask(NULL, region, dims, NULL, NULL, NULL, NULL, NULL, &table),
              PERFQ_ERROR_INVALID_ARGUMENT, "map");
  CHECK_FAILS(perfq_region_stats_in_mask(map, NULL, dims, NULL, NULL, NULL, NULL, NULL, &table),
              PERFQ_ERROR_INVALID_ARGUMENT, "region");
  CHECK_FAILS(perfq_region_stats_in_mask(map, region, NULL, NULL, NULL, NULL, NULL, NULL, &table),
              PERFQ_ERROR_INVALID_ARGUMENT, "dims");
  CHECK_FAILS(perfq_region_stats_in_mask(map, region, dims, NULL, NULL, NULL, NULL, NULL, NULL),
              PERFQ_ERROR_INVALID_ARGUMENT, "out");
  /* An empty region gives an empty row; a region of non-finite values only is refused. */
  CHECK_OK(perfq_region_stats_in_mask(map, empty, dims, NULL, NULL, NULL, NULL, NULL, &table));
  if (table != NULL) {
    CHECK(perfq_region_table_size(table) == 1 && stat_of(table, 1, PERFQ_STAT_VOXELS) == 0);
    CHECK(stat_of(table, 1, PERFQ_STAT_COUNT) == 0 && stat_of(table, 1, PERFQ_STAT_MEAN) == 0);
  }
  perfq_region_table_destroy(table);
  table = NULL;
  CHECK_FAILS(perfq_region_stats_in_mask(map, nan_only, dims, NULL, NULL, NULL, NULL, NULL, &table),
              PERFQ_ERROR_INVALID_ARGUMENT, "no finite value");
  {
    const float bad_weights[8] = {1.5f, 1, 1, 1, 1, 1, 1, 1};
    CHECK_FAILS(
        perfq_region_stats_in_mask(map, region, dims, NULL, bad_weights, NULL, NULL, NULL, &table),
        PERFQ_ERROR_INVALID_ARGUMENT, "perfq_region_stats_in_mask");
  }
  CHECK(table == NULL);
}

/* Control and label swapped: 200 voxels, ΔM −1 in 180 of them and +1 in 20. */
static void test_delta_m_sign(void) {
  const size_t dims[3] = {10, 10, 2};
  float delta_m[200], m0[200];
  uint8_t positive_only[200];
  perfq_delta_m_sign sign;
  size_t i;
  for (i = 0; i < 200; ++i) {
    delta_m[i] = i < 20 ? 1.0f : -1.0f;
    m0[i] = 1000.0f;
    positive_only[i] = i < 20;
  }
  CHECK_OK(perfq_check_delta_m_sign(delta_m, 1, dims, NULL, NULL, &sign));
  CHECK(sign.voxels == 200 && sign.negative == 180);
  CHECK(fabs(sign.negative_fraction - 0.9) < 1e-12);
  CHECK(sign.inverted == 1);
  CHECK_OK(perfq_check_delta_m_sign(delta_m, 1, dims, m0, NULL, &sign));
  CHECK(sign.voxels == 200 && sign.inverted == 1);
  /* The mask chooses the region; 20 voxels are too few to decide anyway. */
  CHECK_OK(perfq_check_delta_m_sign(delta_m, 1, dims, m0, positive_only, &sign));
  CHECK(sign.voxels == 20 && sign.negative == 0 && sign.inverted == 0);
  /* Two volumes: the mean over them counts (−1 and +3: positive). */
  {
    float two[400];
    for (i = 0; i < 200; ++i) {
      two[i] = -1.0f;
      two[200 + i] = 3.0f;
    }
    CHECK_OK(perfq_check_delta_m_sign(two, 2, dims, NULL, NULL, &sign));
    CHECK(sign.negative == 0 && sign.inverted == 0);
  }
  sign.voxels = 7;
  CHECK_FAILS(perfq_check_delta_m_sign(NULL, 1, dims, NULL, NULL, &sign),
              PERFQ_ERROR_INVALID_ARGUMENT, "delta_m");
  CHECK_FAILS(perfq_check_delta_m_sign(delta_m, 0, dims, NULL, NULL, &sign),
              PERFQ_ERROR_INVALID_ARGUMENT, "volumes");
  CHECK_FAILS(perfq_check_delta_m_sign(delta_m, 1, dims, NULL, NULL, NULL),
              PERFQ_ERROR_INVALID_ARGUMENT, "out");
  CHECK(sign.voxels == 7);
}

/* Reference-region calibration and M0 smoothing, against hand-computed values. */
static void test_m0_calibration(void) {
  const size_t dims[3] = {8, 8, 4};
  float m0[256];
  uint8_t region[256];
  perfq_reference_calibration r;
  perfq_map* smooth = NULL;
  size_t i;
  for (i = 0; i < 256; ++i) {
    m0[i] = i < 16 ? 2000.0f : 1000.0f;
    region[i] = i < 16;
  }
  /* CSF, TR 4 s, TE 20 ms: 2000 / (1 − e^(−4/4.3)) / e^(−0.02/0.75) / 1.15 · e^(−0.02/0.15)
   * = 2581.46 (by hand: 0.605538, 0.973686, 0.875173). */
  CHECK_OK(perfq_reference_region_m0(m0, region, dims, PERFQ_REFERENCE_CSF, 0, 0, 0, 0, 0.02,
                                     4.0, &r));
  CHECK(r.voxels == 16);
  CHECK(fabs(r.region_mean - 2000.0) < 1e-9);
  CHECK(fabs(r.m0_blood - 2581.46) < 0.01);
  CHECK(r.t1 == 4.3 && r.t2 == 0.75 && r.partition == 1.15);
  CHECK(r.t2_blood == 0.15 && r.echo_time == 0.02 && r.repetition_time == 4.0);
  /* White matter with its λ overridden, fully relaxed, TE 0: 2000 / 0.5. */
  CHECK_OK(perfq_reference_region_m0(m0, region, dims, PERFQ_REFERENCE_WM, 0, 0, 0.5, 0, 0, 0,
                                     &r));
  CHECK(fabs(r.m0_blood - 4000.0) < 1e-9);
  r.voxels = 99;
  CHECK_FAILS(perfq_reference_region_m0(m0, NULL, dims, PERFQ_REFERENCE_CSF, 0, 0, 0, 0, 0, 0,
                                        &r),
              PERFQ_ERROR_INVALID_ARGUMENT, "region");
  CHECK_FAILS(perfq_reference_region_m0(m0, region, dims, (perfq_reference_tissue)7, 0, 0, 0, 0,
                                        0, 0, &r),
              PERFQ_ERROR_INVALID_ARGUMENT, "tissue");
  CHECK_FAILS(perfq_reference_region_m0(m0, region, dims, PERFQ_REFERENCE_CSF, -1, 0, 0, 0, 0, 0,
                                        &r),
              PERFQ_ERROR_INVALID_ARGUMENT, "T1");
  CHECK(r.voxels == 99);
  /* Smoothing within the region keeps a uniform region uniform, the rest untouched. */
  CHECK_OK(perfq_smooth_m0(m0, region, dims, NULL, 3.0, &smooth));
  {
    const float* v = perfq_map_data(smooth);
    int same = 1;
    for (i = 0; i < 256; ++i) same = same && fabsf(v[i] - m0[i]) < 1e-3f;
    CHECK(same);
  }
  perfq_map_destroy(smooth);
  smooth = NULL;
  CHECK_FAILS(perfq_smooth_m0(m0, region, dims, NULL, -2.0, &smooth),
              PERFQ_ERROR_INVALID_ARGUMENT, "FWHM");
  CHECK(smooth == NULL);
}

/* One test function by name (CTest runs each as its own test), or all of them. */
struct named_test {
  const char* name;
  void (*run)(void);
};

int main(int argc, char** argv) {
  static const struct named_test tests[] = {
    {"version", test_version},
    {"single_delay", test_single_delay},
    {"multi_delay_on_phantom", test_multi_delay_on_phantom},
    {"time_encoded_by_hand", test_time_encoded_by_hand},
    {"time_encoded_phantom", test_time_encoded_phantom},
    {"distances", test_distances},
    {"cuda_discovery", test_cuda_discovery},
    {"border_zones", test_border_zones},
    {"region_stats", test_region_stats},
    {"quality_indices", test_quality_indices},
    {"execution_limits", test_execution_limits},
    {"probabilistic_border_zones", test_probabilistic_border_zones},
    {"timing_border_zones", test_timing_border_zones},
    {"local_cov_and_masks", test_local_cov_and_masks},
    {"threshold_and_dice", test_threshold_and_dice},
    {"group_territories", test_group_territories},
    {"drop_small_components", test_drop_small_components},
    {"periventricular_caps", test_periventricular_caps},
    {"weighted_and_paired_stats", test_weighted_and_paired_stats},
    {"white_matter_and_lesions", test_white_matter_and_lesions},
    {"partial_volume_correction", test_partial_volume_correction},
    {"constants_and_factor", test_constants_and_factor},
    {"validate_protocol", test_validate_protocol},
    {"region_stats_in_mask", test_region_stats_in_mask},
    {"delta_m_sign", test_delta_m_sign},
    {"m0_calibration", test_m0_calibration},
    {"errors", test_errors},
  };
  const size_t count = sizeof tests / sizeof tests[0];
  size_t k, ran = 0;
  if (argc == 2 && strcmp(argv[1], "--list") == 0) {
    for (k = 0; k < count; ++k) printf("%s\n", tests[k].name);
    return EXIT_SUCCESS;
  }
  for (k = 0; k < count; ++k) {
    if (argc < 2 || strcmp(argv[1], tests[k].name) == 0) {
      tests[k].run();
      ++ran;
    }
  }
  if (ran == 0) {
    printf("no test named %s (--list lists them)\n", argv[1]);
    return EXIT_FAILURE;
  }
  printf("perfq %s C API %d: %d checks, %d failed\n", perfq_version(), perfq_c_api_version(),
         g_checks, g_failures);
  return g_failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
