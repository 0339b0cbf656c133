/**
 * @file
 * @brief The C ABI of perfq::io: an ASL-BIDS series to calibrated maps in one call, as
 * `perfq cbf` computes them (perfq/io/pipeline.hpp), for C programs and other languages.
 *
 * Link libperfq_io (and libperfq). The conventions of perfq.h hold: functions return a
 * ::perfq_status, the message of a failure is read with perfq_last_error(), handles are
 * released by their `*_destroy` function (which accepts NULL), accessors return pointers
 * into the handle, valid until it is destroyed. Options are given by perfq cbf's names and
 * checked as the tool checks them; the maps equal perfq cbf's bit for bit.
 *
 * @code
 * perfq_series_request* request = NULL;
 * perfq_series_maps* maps = NULL;
 * perfq_series_request_create(&request);
 * perfq_series_request_set(request, "--att-prior", NULL);
 * perfq_series_request_set(request, "--lambda", "0.9");
 * if (perfq_quantify_series("bids/sub-01/perf/sub-01_asl.nii.gz", request, NULL, &maps) !=
 * PERFQ_OK) fprintf(stderr, "%s\n", perfq_last_error()); const float* cbf =
 * perfq_series_maps_map(maps, PERFQ_SERIES_CBF); perfq_series_maps_write(maps, "out");   // perfq
 * cbf's files perfq_series_maps_destroy(maps); perfq_series_request_destroy(request);
 * @endcode
 */
#ifndef PERFQ_PERFQ_IO_H
#define PERFQ_PERFQ_IO_H

#include <perfq/perfq.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief The options of a series' quantification (perfq::io::SeriesRequest). */
typedef struct perfq_series_request perfq_series_request;

/** @brief The maps of a quantified series and their provenance (perfq::io::SeriesMaps). */
typedef struct perfq_series_maps perfq_series_maps;

/** @brief Creates a request with perfq cbf's defaults.
 * @param[out] out the new handle (release with perfq_series_request_destroy) */
PERFQ_IO_API perfq_status perfq_series_request_create(perfq_series_request** out);

/** @brief Releases a request (NULL is accepted). */
PERFQ_IO_API void perfq_series_request_destroy(perfq_series_request* request);

/** @brief Sets one option by perfq cbf's name, e.g. ("--lambda", "0.9"), ("--att-prior",
 * NULL), ("--ref-tissue", "csf"), ("--mask", path): every option of perfq cbf but `-o`,
 * `--overwrite` and the execution ones (use a ::perfq_execution). The value is checked as
 * perfq cbf checks it; files are opened only when the series is quantified.
 * @param request the request to change
 * @param option the option's name, with its dashes
 * @param value its value as text; NULL (or "") for a flag
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT naming the option: unknown, a value missing, given
 * to a flag, or out of range */
PERFQ_IO_API perfq_status perfq_series_request_set(perfq_series_request* request,
                                                   const char* option, const char* value);

/** @brief Quantifies the ASL-BIDS series at `asl_path` (its sidecars, aslcontext and m0scan
 * found beside it, BIDS inheritance included), as perfq cbf does.
 * @param asl_path the `*_asl.nii[.gz]` file
 * @param request the options (NULL: the defaults)
 * @param execution where to compute (NULL: automatic backend, every CPU thread)
 * @param[out] out the maps (release with perfq_series_maps_destroy)
 * @return ::PERFQ_ERROR_INPUT for bad data or metadata (the message names the file and
 * field), ::PERFQ_ERROR_INVALID_ARGUMENT for a bad combination of options,
 * ::PERFQ_ERROR_BACKEND when the backend asked for is unavailable */
PERFQ_IO_API perfq_status perfq_quantify_series(const char* asl_path,
                                                const perfq_series_request* request,
                                                const perfq_execution* execution,
                                                perfq_series_maps** out);

/** @brief Releases the maps of a series (NULL is accepted). */
PERFQ_IO_API void perfq_series_maps_destroy(perfq_series_maps* maps);

/** @brief The maps of a quantified series. */
typedef enum perfq_series_map PERFQ_C_ENUM_BASE {
  PERFQ_SERIES_CBF = 0,          /**< CBF, ml/100 g/min (always there) */
  PERFQ_SERIES_ATT = 1,          /**< arterial transit time, s (several delays) */
  PERFQ_SERIES_CBF_SE = 2,       /**< standard error of CBF (several delays) */
  PERFQ_SERIES_ATT_SE = 3,       /**< standard error of ATT, s (several delays) */
  PERFQ_SERIES_ABV = 4,          /**< arterial blood volume, % (`--arterial`) */
  PERFQ_SERIES_ABV_SE = 5,       /**< its standard error, % (`--arterial`) */
  PERFQ_SERIES_ARTERIAL_ATT = 6, /**< arterial arrival time, s (`--arterial`) */
  PERFQ_SERIES_CBF_GM = 7,       /**< grey-matter CBF (`--pvc-gm`/`--pvc-wm`) */
  PERFQ_SERIES_CBF_WM = 8,       /**< white-matter CBF (`--pvc-gm`/`--pvc-wm`) */
  PERFQ_SERIES_SCANNER_CBF = 9   /**< the series' scanner-made CBF volumes, averaged */
} perfq_series_map;

/** @brief The grid of the maps.
 * @param maps the maps
 * @param[out] dims the 3 sizes
 * @param[out] spacing the 3 voxel sizes, mm (may be NULL) */
PERFQ_IO_API perfq_status perfq_series_maps_grid(const perfq_series_maps* maps, size_t dims[3],
                                                 double spacing[3]);

/** @brief One map (dims[0]·dims[1]·dims[2] values, x fastest); NULL, with the message set,
 * when this series has no such map (e.g. ATT of a single-delay series) or `which` is unknown. */
PERFQ_IO_API const float* perfq_series_maps_map(const perfq_series_maps* maps,
                                                perfq_series_map which);

/** @brief The per-voxel status codes (::perfq_voxel_status values). */
PERFQ_IO_API const uint8_t* perfq_series_maps_status(const perfq_series_maps* maps);

/** @brief The number of ΔM volumes quantified (1: single delay; sub-boli when time-encoded);
 * 0 for a NULL handle. */
PERFQ_IO_API size_t perfq_series_maps_delays(const perfq_series_maps* maps);

/** @brief The provenance record perfq cbf writes as `<prefix>_cbf.json` (JSON text): every
 * constant, option, input check and warning. */
PERFQ_IO_API const char* perfq_series_maps_provenance(const perfq_series_maps* maps);

/** @brief The quality indices of the CBF map as perfq cbf writes them,
 * `<prefix>_desc-qualitycontrol_cbf.tsv` (a header of index names and one row; `n/a` for an
 * index not defined), and its JSON sidecar (every column described, why an index is n/a).
 * The GM/WM indices and the QEI need `--gm-probseg`, `--wm-probseg`, `--csf-probseg`. */
PERFQ_IO_API const char* perfq_series_maps_quality_table(const perfq_series_maps* maps);
/** @brief The sidecar of perfq_series_maps_quality_table (JSON text). */
PERFQ_IO_API const char* perfq_series_maps_quality_sidecar(const perfq_series_maps* maps);

/** @brief The number of warnings (e.g. an implausible median CBF); 0 for a NULL handle. */
PERFQ_IO_API size_t perfq_series_maps_warning_count(const perfq_series_maps* maps);

/** @brief Warning `k` (0-based); NULL, with the message set, when `k` is out of range. */
PERFQ_IO_API const char* perfq_series_maps_warning(const perfq_series_maps* maps, size_t k);

/** @brief Writes perfq cbf's files for these maps into `out_dir` (created when missing):
 * `<prefix>_cbf.nii.gz`, `_fitstatus.nii.gz`, `_cbf.json`, and the other maps there are,
 * all together or not at all (perfq::io::write_series_outputs); existing files are
 * replaced, a folder in the place of one is refused.
 * @return ::PERFQ_ERROR_IO naming the output that could not be written (nothing is left) */
PERFQ_IO_API perfq_status perfq_series_maps_write(const perfq_series_maps* maps,
                                                  const char* out_dir);

/** @brief As perfq_series_maps_write, the images written uncompressed (`<prefix>_cbf.nii`,
 * …; perfq cbf --uncompressed): the same header and voxel values, faster to write, larger.
 * @return ::PERFQ_ERROR_IO naming the output that could not be written (nothing is left) */
PERFQ_IO_API perfq_status perfq_series_maps_write_uncompressed(const perfq_series_maps* maps,
                                                               const char* out_dir);

/* ---- transforms and resampling (perfq/io/transform.hpp, perfq/io/resample.hpp) ---------- */

/** @brief A spatial transform or a chain of them (perfq::io::Transform), read from the files
 * ITK, ANTs, fMRIPrep and perfq register write. Its map takes a point of the target space
 * (the grid resampled onto) to the point of the source space whose value it takes (LPS, mm),
 * as ITK's transforms and fMRIPrep's `from-A_to-B_mode-image_xfm` files do (A: source). */
typedef struct perfq_transform perfq_transform;

/** @brief An image grid (perfq::Geometry): a voxel index (i, j, k) lies at
 * `origin + direction · diag(spacing) · (i, j, k)` (LPS, mm). */
typedef struct perfq_grid {
  size_t dims[3];      /**< voxels along x, y, z */
  double spacing[3];   /**< voxel size, mm */
  double origin[3];    /**< position of voxel (0, 0, 0), mm (LPS) */
  double direction[9]; /**< direction cosines, row-major */
} perfq_grid;

/** @brief How values are read between voxels (perfq::io::Interpolation). */
typedef enum perfq_interpolation PERFQ_C_ENUM_BASE {
  PERFQ_INTERPOLATION_LINEAR = 0, /**< trilinear */
  PERFQ_INTERPOLATION_NEAREST = 1 /**< the voxel whose box holds the point */
} perfq_interpolation;

/** @brief How a label image's value is chosen (perfq::io::LabelRule). */
typedef enum perfq_label_rule PERFQ_C_ENUM_BASE {
  PERFQ_LABEL_MAJORITY = 0, /**< majority vote over the footprint (ties: the centre's label
                                 when tied, else the smallest) */
  PERFQ_LABEL_NEAREST = 1   /**< the label at the voxel's centre */
} perfq_label_rule;

/** @brief Reads a transform file (`.txt`, `.tfm`, `.mat`, `.h5`; an ITK composite becomes one
 * chain).
 * @param path the file
 * @param[out] out the transform (release with perfq_transform_destroy)
 * @return ::PERFQ_ERROR_INPUT naming the file when it is missing, unreadable or not a 3D
 * transform */
PERFQ_IO_API perfq_status perfq_transform_read(const char* path, perfq_transform** out);

/** @brief An affine transform `map(p) = A p + b` (LPS, mm).
 * @param matrix A, row-major (9 values)
 * @param offset b (3 values)
 * @param[out] out the transform (release with perfq_transform_destroy) */
PERFQ_IO_API perfq_status perfq_transform_affine(const double matrix[9], const double offset[3],
                                                 perfq_transform** out);

/** @brief Releases a transform (NULL is accepted). */
PERFQ_IO_API void perfq_transform_destroy(perfq_transform* transform);

/** @brief Maps `count` points (x, y, z triples, LPS mm) through the transform.
 * @param transform the transform (NULL: the identity)
 * @param points 3·count values
 * @param count the number of points
 * @param[out] out 3·count values (may be `points` itself) */
PERFQ_IO_API perfq_status perfq_transform_map(const perfq_transform* transform,
                                              const double* points, size_t count, double* out);

/** @brief 1 when every part is linear (rigid or affine), 0 otherwise or for a NULL handle. */
PERFQ_IO_API int perfq_transform_is_linear(const perfq_transform* transform);

/** @brief The 4 × 4 homogeneous matrix of a linear transform, row-major (LPS).
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for a transform that is not linear */
PERFQ_IO_API perfq_status perfq_transform_matrix(const perfq_transform* transform, double out[16]);

/** @brief The inverse of a linear transform (the opposite direction).
 * @param transform the transform
 * @param[out] out the inverse (release with perfq_transform_destroy)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for a displacement field or a singular matrix */
PERFQ_IO_API perfq_status perfq_transform_inverse(const perfq_transform* transform,
                                                  perfq_transform** out);

/** @brief Chains transforms in image-mode order (perfq::io::compose): `steps[0]` resamples
 * space A onto B, `steps[1]` B onto C, …; the result resamples A onto the last space.
 * @param steps `count` transforms (none NULL)
 * @param count the number of steps (0: the identity)
 * @param[out] out the chain (release with perfq_transform_destroy) */
PERFQ_IO_API perfq_status perfq_transform_compose(const perfq_transform* const* steps, size_t count,
                                                  perfq_transform** out);

/** @brief Resamples an image (`volumes` volumes on `source`) onto `target` through the
 * transform (perfq::io::resample): each target voxel the mean of `footprint`³ sub-points
 * (0: chosen per axis from the spacings; 1: the centre), each interpolated.
 * @param image the source values
 * @param volumes the number of volumes (at least 1)
 * @param source the source grid
 * @param target the grid resampled onto
 * @param transform target points to source points (NULL: the identity)
 * @param interpolation linear or nearest
 * @param footprint sub-points per axis, 0 to 8
 * @param outside the value of points outside the source
 * @param execution NULL: every CPU thread (only `threads` is used)
 * @param[out] out target voxels × `volumes` values, caller memory */
PERFQ_IO_API perfq_status perfq_resample(const float* image, size_t volumes,
                                         const perfq_grid* source, const perfq_grid* target,
                                         const perfq_transform* transform,
                                         perfq_interpolation interpolation, size_t footprint,
                                         float outside, const perfq_execution* execution,
                                         float* out);

/** @brief Resamples a label image onto `target` (perfq::io::resample_labels); points outside
 * the source are label 0.
 * @param labels the source labels (one volume)
 * @param source the source grid
 * @param target the grid resampled onto
 * @param transform target points to source points (NULL: the identity)
 * @param rule majority vote or nearest neighbour
 * @param footprint sub-points per axis for the vote, 0 (chosen) to 8
 * @param execution NULL: every CPU thread
 * @param[out] out target voxels, caller memory */
PERFQ_IO_API perfq_status perfq_resample_labels(const int32_t* labels, const perfq_grid* source,
                                                const perfq_grid* target,
                                                const perfq_transform* transform,
                                                perfq_label_rule rule, size_t footprint,
                                                const perfq_execution* execution, int32_t* out);

/** @brief Resamples a mask onto `target` (perfq::io::resample_mask): 1 where at least
 * `min_fraction` of the voxel is inside.
 * @param mask the source mask (nonzero inside)
 * @param source the source grid
 * @param target the grid resampled onto
 * @param transform target points to source points (NULL: the identity)
 * @param min_fraction in (0, 1]
 * @param footprint sub-points per axis, 0 (chosen) to 8
 * @param execution NULL: every CPU thread
 * @param[out] out target voxels (1 inside, 0 outside), caller memory */
PERFQ_IO_API perfq_status perfq_resample_mask(const uint8_t* mask, const perfq_grid* source,
                                              const perfq_grid* target,
                                              const perfq_transform* transform, double min_fraction,
                                              size_t footprint, const perfq_execution* execution,
                                              uint8_t* out);

/** @brief The result of perfq_register_rigid (perfq::io::RegistrationResult). */
typedef struct perfq_rigid_registration perfq_rigid_registration;

/** @brief Registers `moving` to `fixed` rigidly by Mattes mutual information with the
 * defaults of perfq::io::register_rigid (perfq register). Images are one volume each, x
 * fastest.
 * @param moving the moving image's voxels (e.g. an ASL M0) on `moving_grid`
 * @param moving_grid the moving image's grid
 * @param fixed the fixed image's voxels (e.g. a T1w) on `fixed_grid`
 * @param fixed_grid the fixed image's grid
 * @param moving_mask NULL, or a mask on `moving_grid` (nonzero inside) restricting the metric
 * @param fixed_mask NULL, or a mask on `fixed_grid`
 * @param threads threads of the metric (0: all processors; 1: the same result bit for bit)
 * @param[out] out the result (release with perfq_rigid_registration_destroy)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT naming what is wrong (a null pointer, an empty grid,
 * an empty mask, too few overlapping voxels) */
PERFQ_IO_API perfq_status perfq_register_rigid(const float* moving, const perfq_grid* moving_grid,
                                               const float* fixed, const perfq_grid* fixed_grid,
                                               const uint8_t* moving_mask,
                                               const uint8_t* fixed_mask, int threads,
                                               perfq_rigid_registration** out);

/** @brief Releases a registration result (NULL is accepted). */
PERFQ_IO_API void perfq_rigid_registration_destroy(perfq_rigid_registration* result);

/** @brief The result's Euler3D parameters (ITK's `Euler3DTransform`: map(p) = R (p − center)
 * + center + translation, R = Rz·Rx·Ry; it maps fixed-image points to moving-image points)
 * and the metric before and after. Any output pointer may be NULL.
 * @param result the result
 * @param[out] angles rotation about x, y, z (radians)
 * @param[out] translation mm (LPS)
 * @param[out] center mm (LPS)
 * @param[out] initial_metric Mattes MI at the start (more negative is better)
 * @param[out] final_metric Mattes MI at the end */
PERFQ_IO_API perfq_status perfq_rigid_registration_parameters(
    const perfq_rigid_registration* result, double angles[3], double translation[3],
    double center[3], double* initial_metric, double* final_metric);

/** @brief Writes the result's transform as ITK does (`.txt`/`.tfm`, `.mat` or `.h5`, from the
 * extension), atomically; name it `…_from-asl_to-T1w_mode-image_xfm.txt`.
 * @return ::PERFQ_ERROR_IO naming the file when it cannot be written */
PERFQ_IO_API perfq_status perfq_rigid_registration_write(const perfq_rigid_registration* result,
                                                         const char* path);

/** @brief The result's transform as a handle (for perfq_resample and the other transform
 * functions; e.g. its inverse brings T1w-space maps onto the moving image's grid).
 * @param result the result
 * @param[out] out the transform (release with perfq_transform_destroy) */
PERFQ_IO_API perfq_status perfq_rigid_registration_transform(
    const perfq_rigid_registration* result, perfq_transform** out);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // PERFQ_PERFQ_IO_H
