/* perfq_io.h from C99: an ASL-BIDS series quantified through the C API gives perfq cbf's
 * files byte for byte (maps, status, provenance) with the same options, and the error paths (an unknown option, a value out of range, a missing series, a map the
 * series does not have) give their status and a message naming the option or file.
 *
 * usage: perfq_c_api_io_test <sub-01_asl.nii.gz> <perfq cbf's output folder> <scratch folder>
 *        [perfq cbf options…]
 * (CTest runs perfq phantom and perfq cbf, with the same options, first: single-delay,
 * multi-delay with --att-prior --arterial, time-encoded, PASL and reference-calibrated
 * series.) Prints one line per failed check and a summary; exits 1 when any check failed. */
#include <perfq/perfq_io.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c_checks.h"

/* A call that must end with `status` (and, when not NULL, a message mentioning `needle`). */
#define CHECK_STATUS(call, status, needle) \
  check(expect_status((call), (status), (needle)), #call, __LINE__)

/* The bytes of a file (NUL-terminated; *size set), or NULL. */
static char* slurp(const char* path, long* size) {
  FILE* f = fopen(path, "rb");
  char* data;
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  *size = ftell(f);
  fseek(f, 0, SEEK_SET);
  data = (char*)malloc((size_t)*size + 1);
  if (data != NULL && fread(data, 1, (size_t)*size, f) != (size_t)*size) {
    free(data);
    data = NULL;
  }
  if (data != NULL) data[*size] = '\0';
  fclose(f);
  return data;
}

/* Whether folder a's file `name` has the same bytes as folder b's. */
static int same_file(const char* a, const char* b, const char* name) {
  char path_a[8192], path_b[8192];
  long size_a = 0, size_b = 0;
  char *data_a, *data_b;
  int same;
  snprintf(path_a, sizeof path_a, "%s/%s", a, name);
  snprintf(path_b, sizeof path_b, "%s/%s", b, name);
  data_a = slurp(path_a, &size_a);
  data_b = slurp(path_b, &size_b);
  same = data_a != NULL && data_b != NULL && size_a == size_b &&
         memcmp(data_a, data_b, (size_t)size_a) == 0;
  if (!same) printf("  %s differs from %s\n", path_a, path_b);
  free(data_a);
  free(data_b);
  return same;
}

int main(int argc, char** argv) {
  const char* asl;
  const char* tool_out;
  char own_out[4096], json_path[4096];
  perfq_series_request* request = NULL;
  perfq_series_maps* maps = NULL;
  perfq_execution* cpu = NULL;
  size_t dims[3] = {0, 0, 0};
  double spacing[3] = {0, 0, 0};
  long json_size = 0;
  char* json;
  int k;
  if (argc < 4) {
    fprintf(stderr, "usage: perfq_c_api_io_test <asl> <perfq cbf output> <scratch> [options]\n");
    return 2;
  }
  asl = argv[1];
  tool_out = argv[2];
  snprintf(own_out, sizeof own_out, "%s/c-api", argv[3]);

  /* The same request as the tool's, on the CPU: an option followed by a value that does not
   * start with "--" takes it (perfq cbf's options here have no negative values). */
  CHECK_STATUS(perfq_series_request_create(&request), PERFQ_OK, NULL);
  for (k = 4; k < argc; ++k) {
    const char* value = k + 1 < argc && strncmp(argv[k + 1], "--", 2) != 0 ? argv[k + 1] : NULL;
    CHECK_STATUS(perfq_series_request_set(request, argv[k], value), PERFQ_OK, NULL);
    if (value != NULL) ++k;
  }
  CHECK_STATUS(perfq_execution_create(&cpu), PERFQ_OK, NULL);
  CHECK_STATUS(perfq_execution_set_backend(cpu, "cpu"), PERFQ_OK, NULL);
  CHECK_STATUS(perfq_quantify_series(asl, request, cpu, &maps), PERFQ_OK, NULL);
  if (maps == NULL) {
    printf("FAILED: no maps; %d checks, %d failed\n", g_checks, g_failures + 1);
    return 1;
  }
  CHECK(perfq_series_maps_delays(maps) >= 1);
  CHECK_STATUS(perfq_series_maps_grid(maps, dims, spacing), PERFQ_OK, NULL);
  CHECK(dims[0] == 60 && dims[1] == 72 && dims[2] == 56);
  CHECK(spacing[0] == 3.0);
  CHECK(perfq_series_maps_map(maps, PERFQ_SERIES_CBF) != NULL);
  CHECK((perfq_series_maps_map(maps, PERFQ_SERIES_ATT) != NULL) ==
        (perfq_series_maps_delays(maps) > 1));
  CHECK(perfq_series_maps_status(maps) != NULL);
  CHECK(perfq_series_maps_map(maps, PERFQ_SERIES_CBF_GM) == NULL);  /* no PVC asked */
  CHECK(strstr(perfq_last_error(), "perfq_series_maps_map: which") != NULL);
  CHECK(perfq_series_maps_warning(maps, perfq_series_maps_warning_count(maps)) == NULL);

  /* perfq cbf's files, byte for byte (each one the tool wrote), and the provenance. */
  CHECK_STATUS(perfq_series_maps_write(maps, own_out), PERFQ_OK, NULL);
  {
    const char* names[] = {"sub-01_cbf.nii.gz",       "sub-01_att.nii.gz",   "sub-01_cbf_se.nii.gz",
                           "sub-01_att_se.nii.gz",    "sub-01_fitstatus.nii.gz",
                           "sub-01_abv.nii.gz",       "sub-01_abv_se.nii.gz", "sub-01_aatt.nii.gz",
                           "sub-01_cbf_gm.nii.gz",    "sub-01_cbf_wm.nii.gz", "sub-01_cbf.json",
                           "sub-01_desc-scanner_cbf.nii.gz"};
    size_t n, compared = 0;
    for (n = 0; n < sizeof names / sizeof names[0]; ++n) {
      char path[8192];
      long size = 0;
      char* data;
      snprintf(path, sizeof path, "%s/%s", tool_out, names[n]);
      data = slurp(path, &size);
      if (data == NULL) continue; /* not an output of this series */
      free(data);
      CHECK(same_file(own_out, tool_out, names[n]));
      ++compared;
    }
    CHECK(compared >= 3);
    printf("%u files compared with perfq cbf's\n", (unsigned)compared);
  }
  /* Uncompressed: the same files as .nii. */
  {
    char nii_out[8192], nii_path[8320];
    long nii_size = 0;
    char* nii;
    snprintf(nii_out, sizeof nii_out, "%s-nii", own_out);
    CHECK_STATUS(perfq_series_maps_write_uncompressed(maps, nii_out), PERFQ_OK, NULL);
    snprintf(nii_path, sizeof nii_path, "%s/sub-01_cbf.nii", nii_out);
    nii = slurp(nii_path, &nii_size);
    CHECK(nii != NULL && nii_size > 352);
    free(nii);
    CHECK_STATUS(perfq_series_maps_write_uncompressed(NULL, nii_out),
                 PERFQ_ERROR_INVALID_ARGUMENT, "maps: null pointer");
  }
  snprintf(json_path, sizeof json_path, "%s/sub-01_cbf.json", tool_out);
  json = slurp(json_path, &json_size);
  CHECK(json != NULL && strcmp(json, perfq_series_maps_provenance(maps)) == 0);
  free(json);
  /* The quality table: the same text as perfq cbf's file. */
  snprintf(json_path, sizeof json_path, "%s/sub-01_desc-qualitycontrol_cbf.tsv", tool_out);
  json = slurp(json_path, &json_size);
  CHECK(json != NULL && strcmp(json, perfq_series_maps_quality_table(maps)) == 0);
  CHECK(strncmp(perfq_series_maps_quality_table(maps), "brain_voxels\t", 13) == 0);
  free(json);
  CHECK(strstr(perfq_series_maps_quality_sidecar(maps), "\"NotDefined\"") != NULL);
  CHECK(perfq_series_maps_quality_table(NULL) == NULL);

  /* Errors: the option or the file named. */
  CHECK_STATUS(perfq_series_request_set(request, "--frobnicate", "1"),
               PERFQ_ERROR_INVALID_ARGUMENT, "unknown option '--frobnicate'");
  CHECK_STATUS(perfq_series_request_set(request, "--lambda", "7"), PERFQ_ERROR_INVALID_ARGUMENT,
               "--lambda: expected a value in (0, 2]");
  CHECK_STATUS(perfq_series_request_set(request, "--mask", NULL), PERFQ_ERROR_INVALID_ARGUMENT,
               "--mask needs a value");
  CHECK_STATUS(perfq_series_request_set(NULL, "--att-prior", NULL), PERFQ_ERROR_INVALID_ARGUMENT,
               "request: null pointer");
  perfq_series_maps_destroy(maps);
  maps = NULL;
  CHECK_STATUS(perfq_quantify_series("/nonexistent/sub-01_asl.nii.gz", request, cpu, &maps),
               PERFQ_ERROR_INPUT, "/nonexistent/sub-01_asl.nii.gz: file not found");
  CHECK(maps == NULL);
  perfq_series_request_destroy(request);
  request = NULL;
  CHECK_STATUS(perfq_series_request_create(&request), PERFQ_OK, NULL);
  CHECK_STATUS(perfq_series_request_set(request, "--ref-tissue", "csf"), PERFQ_OK, NULL);
  CHECK_STATUS(perfq_quantify_series(asl, request, cpu, &maps), PERFQ_ERROR_INVALID_ARGUMENT,
               "--ref-tissue needs --ref-mask");
  CHECK(perfq_series_maps_provenance(NULL) == NULL);
  CHECK(perfq_series_maps_delays(NULL) == 0);
  CHECK(strcmp(perfq_status_string(PERFQ_ERROR_IO), "i/o error") == 0);

  perfq_series_request_destroy(request);
  perfq_execution_destroy(cpu);
  perfq_series_maps_destroy(NULL);
  printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
