/* perfq_io.h's transforms and resampling from C99: an ITK text transform written here read
 * back and mapped, composed and inverted; an image, labels and a mask shifted by whole voxels
 * onto another grid; and the error paths (a missing file, a field that cannot be inverted, a
 * NULL argument) with their status and message.
 *
 * usage: perfq_c_api_transform_test <scratch folder> */
#include <perfq/perfq_io.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "c_checks.h"

static int near(double a, double b) { return fabs(a - b) < 1e-9; }

static perfq_grid grid_of(size_t nx, size_t ny, size_t nz, double spacing, double x0) {
  perfq_grid g;
  memset(&g, 0, sizeof g);
  g.dims[0] = nx;
  g.dims[1] = ny;
  g.dims[2] = nz;
  g.spacing[0] = g.spacing[1] = g.spacing[2] = spacing;
  g.origin[0] = x0;
  g.direction[0] = g.direction[4] = g.direction[8] = 1.0;
  return g;
}

int main(int argc, char** argv) {
  char affine_path[4096], field_path[4096], missing[4096];
  FILE* f;
  perfq_transform* shift = NULL;
  perfq_transform* scale = NULL;
  perfq_transform* chain = NULL;
  perfq_transform* inverse = NULL;
  perfq_transform* field = NULL;
  perfq_transform* nothing = NULL;
  const perfq_transform* steps[2];
  double point[3] = {1.0, 2.0, 3.0}, mapped[3], m[16];
  static const double doubling[9] = {2, 0, 0, 0, 1, 0, 0, 0, 1};
  static const double no_offset[3] = {0, 0, 0};
  float image[8 * 3 * 2 * 2], out[8 * 3 * 2 * 2];
  int32_t labels[8 * 3 * 2], out_labels[6 * 3 * 2];
  uint8_t mask[8 * 3 * 2], out_mask[6 * 3 * 2];
  perfq_grid source = grid_of(8, 3, 2, 2.0, 0.0), target = grid_of(6, 3, 2, 2.0, 0.0);
  size_t i;
  int k;
  if (argc < 2) {
    fprintf(stderr, "usage: perfq_c_api_transform_test <scratch folder>\n");
    return 2;
  }
  snprintf(affine_path, sizeof affine_path, "%s/shift.txt", argv[1]);
  snprintf(field_path, sizeof field_path, "%s/field.txt", argv[1]);
  snprintf(missing, sizeof missing, "%s/missing.h5", argv[1]);

  /* ITK's text format: an affine that adds 4 mm along x (2 voxels of the grids here). */
  f = fopen(affine_path, "w");
  if (f == NULL) {
    printf("FAILED: cannot write %s\n", affine_path);
    return 1;
  }
  fputs(
      "#Insight Transform File V1.0\n#Transform 0\nTransform: AffineTransform_double_3_3\n"
      "Parameters: 1 0 0 0 1 0 0 0 1 4 0 0\nFixedParameters: 0 0 0\n",
      f);
  fclose(f);
  CHECK_OK(perfq_transform_read(affine_path, &shift));
  CHECK(perfq_transform_is_linear(shift) == 1);
  CHECK_OK(perfq_transform_map(shift, point, 1, mapped));
  CHECK(near(mapped[0], 5.0) && near(mapped[1], 2.0) && near(mapped[2], 3.0));
  CHECK_OK(perfq_transform_matrix(shift, m));
  CHECK(near(m[0], 1.0) && near(m[3], 4.0) && near(m[15], 1.0));

  /* Image-mode order: steps[0] = shift (A onto B), steps[1] = scale (B onto C): a point of C
   * is scaled first, then shifted. */
  CHECK_OK(perfq_transform_affine(doubling, no_offset, &scale));
  steps[0] = shift;
  steps[1] = scale;
  CHECK_OK(perfq_transform_compose(steps, 2, &chain));
  CHECK_OK(perfq_transform_map(chain, point, 1, mapped));
  CHECK(near(mapped[0], 6.0));
  CHECK_OK(perfq_transform_inverse(chain, &inverse));
  CHECK_OK(perfq_transform_map(inverse, mapped, 1, mapped)); /* in place */
  CHECK(near(mapped[0], 1.0) && near(mapped[1], 2.0) && near(mapped[2], 3.0));

  /* Resampling through the shift: target voxel i takes source voxel i + 2. */
  for (i = 0; i < 8 * 3 * 2 * 2; ++i) image[i] = (float)(i * 3 + 1);
  for (i = 0; i < 8 * 3 * 2; ++i) {
    labels[i] = (int32_t)(i % 5);
    mask[i] = (uint8_t)(i % 2);
  }
  CHECK_OK(perfq_resample(image, 1, &source, &target, shift, PERFQ_INTERPOLATION_LINEAR, 1, -1.0f,
                          NULL, out));
  CHECK_OK(perfq_resample_labels(labels, &source, &target, shift, PERFQ_LABEL_MAJORITY, 0, NULL,
                                 out_labels));
  CHECK_OK(perfq_resample_mask(mask, &source, &target, shift, 0.5, 0, NULL, out_mask));
  k = 1;
  for (i = 0; i < 6 * 3 * 2; ++i) {
    const size_t x = i % 6, rest = i / 6, from = x + 2 + 8 * rest;
    k = k && out[i] == image[from] && out_labels[i] == labels[from] && out_mask[i] == mask[from];
  }
  CHECK(k);
  /* No transform: the identity; two volumes at once. */
  CHECK_OK(perfq_resample(image, 2, &source, &source, NULL, PERFQ_INTERPOLATION_NEAREST, 0, 0.0f,
                          NULL, out));
  CHECK(memcmp(out, image, sizeof out) == 0);

  /* Errors. */
  CHECK_FAILS(perfq_transform_read(missing, &nothing), PERFQ_ERROR_INPUT, "missing.h5");
  CHECK(nothing == NULL);
  f = fopen(field_path, "w");
  if (f != NULL) {
    fputs(
        "#Insight Transform File V1.0\n#Transform 0\n"
        "Transform: DisplacementFieldTransform_double_3_3\n"
        "Parameters: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        "FixedParameters: 2 2 2 0 0 0 1 1 1 1 0 0 0 1 0 0 0 1\n",
        f);
    fclose(f);
  }
  CHECK_OK(perfq_transform_read(field_path, &field));
  CHECK(perfq_transform_is_linear(field) == 0);
  CHECK_FAILS(perfq_transform_inverse(field, &nothing), PERFQ_ERROR_INVALID_ARGUMENT,
              "opposite direction");
  CHECK_FAILS(perfq_transform_matrix(field, m), PERFQ_ERROR_INVALID_ARGUMENT, "not linear");
  CHECK_FAILS(perfq_resample(NULL, 1, &source, &target, NULL, PERFQ_INTERPOLATION_LINEAR, 0, 0.0f,
                             NULL, out),
              PERFQ_ERROR_INVALID_ARGUMENT, "image");
  CHECK_FAILS(perfq_resample(image, 1, &source, &target, NULL, PERFQ_INTERPOLATION_LINEAR, 9, 0.0f,
                             NULL, out),
              PERFQ_ERROR_INVALID_ARGUMENT, "footprint");
  CHECK_FAILS(perfq_resample_mask(mask, &source, NULL, NULL, 0.5, 0, NULL, out_mask),
              PERFQ_ERROR_INVALID_ARGUMENT, "target");
  CHECK_FAILS(perfq_transform_read(affine_path, NULL), PERFQ_ERROR_INVALID_ARGUMENT, "out");

  perfq_transform_destroy(shift);
  perfq_transform_destroy(scale);
  perfq_transform_destroy(chain);
  perfq_transform_destroy(inverse);
  perfq_transform_destroy(field);
  perfq_transform_destroy(NULL);
  printf("%d checks, %d failed\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
