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

/** @brief A 3D grid as perfq::Geometry holds it: voxels along x, y, z; voxel size (mm); the
 * position of voxel (0,0,0) (mm, LPS); direction cosines, row-major. */
typedef struct perfq_grid {
  size_t dims[3];      /**< voxels along x, y, z */
  double spacing[3];   /**< mm */
  double origin[3];    /**< mm, LPS */
  double direction[9]; /**< row-major cosines; the identity for an axial LPS grid */
} perfq_grid;

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

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // PERFQ_PERFQ_IO_H
