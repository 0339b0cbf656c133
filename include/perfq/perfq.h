/**
 * @file
 * @brief perfq's C ABI: protocol checks and the resolved constants, single- and multi-delay
 * CBF quantification (and the single-delay factor), time-encoded (Hadamard) PCASL decoding,
 * border zones (atlas, probabilistic and timing-based) with the mask operations around them
 * (territory grouping, small-component removal, periventricular caps, Dice overlap), distance
 * transforms and dilation, regional statistics (per label or in a mask, weighted, paired),
 * white-matter lesion measures, partial-volume correction, CUDA device discovery and the
 * synthetic phantom, for C programs and for other languages (Python ctypes, Julia, R, MATLAB)
 * through a plain C interface.
 *
 * Conventions (every function follows them):
 * - **Status.** Functions that can fail return a ::perfq_status. On failure the message is
 *   kept in a per-thread buffer read with perfq_last_error(); it names the function and the
 *   argument or field at fault (for example
 *   `perfq_quantify_cbf: protocol: PCASL/CASL quantification needs a labeling duration > 0`).
 *   A successful call leaves the message of the last failure unchanged. No C++ exception ever
 *   crosses this interface.
 * - **Handles.** State lives in opaque handles created by `perfq_*_create` (or returned
 *   through an `out` argument by a computation) and released by the matching
 *   `perfq_*_destroy`, which accepts NULL. A handle may be used by one thread at a time;
 *   different handles, and const use of one handle, are safe from several threads.
 * - **Outputs.** A computation returns a result handle that owns its arrays; accessors
 *   return pointers into it, valid until the handle is destroyed (copy them to keep them). On
 *   failure `*out` is set to NULL.
 * - **Images.** An image is a pointer to `dims[0] * dims[1] * dims[2]` values, x fastest, then
 *   y, then z (then volume for 4D series: `[t][z][y][x]`), as in NIfTI. `dims` is an array of
 *   3 sizes; `spacing` an array of 3 voxel sizes in mm (NULL: 1 mm). Images passed to one
 *   call share that grid. Caller memory is read, never kept and never written.
 * - **Masks** are `uint8_t` images, nonzero inside; label images are `int32_t`.
 * - **Execution.** Functions that compute take a ::perfq_execution handle (NULL: automatic
 *   backend, every CPU thread). Backend "cuda" on a machine without a usable device fails with
 *   ::PERFQ_ERROR_BACKEND; it never falls back silently.
 *
 * The definitions behind each computation (formulas, per-voxel status codes, statistics) are
 * those of the C++ headers named in each section; this interface adds no arithmetic of its
 * own, so its results equal the C++ API's bit for bit.
 */
#ifndef PERFQ_PERFQ_H
#define PERFQ_PERFQ_H

#include <perfq/export.hpp> /* PERFQ_API: preprocessor only, valid C */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @def PERFQ_C_ENUM_BASE
 * @brief The underlying type of this header's enums: `: int` in C++, nothing in C (where an
 * enum's values are ints already). Every int is then a valid value of these enums in C++ as
 * in C (C++ code must not see an out-of-range value, e.g. from a foreign caller, as undefined
 * behaviour: each function checks and rejects such values instead). */
#ifdef __cplusplus
#define PERFQ_C_ENUM_BASE : int
#else
#define PERFQ_C_ENUM_BASE
#endif

/** @brief Version of this C interface. It grows by one with every incompatible change of a
 * signature, an enum value or a documented behaviour; additions keep it. */
#define PERFQ_C_API_VERSION 1

/* ---- status, errors and version ------------------------------------------------------- */

/** @brief Outcome of a call. */
typedef enum perfq_status PERFQ_C_ENUM_BASE {
  PERFQ_OK = 0,                     /**< success */
  PERFQ_ERROR_INVALID_ARGUMENT = 1, /**< misuse: NULL pointer, bad size, option out of range */
  PERFQ_ERROR_INPUT = 2,            /**< bad input data or metadata (an inconsistent protocol) */
  PERFQ_ERROR_BACKEND = 3,          /**< the requested backend is unavailable or failed */
  PERFQ_ERROR_OUT_OF_MEMORY = 4,    /**< an allocation failed */
  PERFQ_ERROR_INTERNAL = 5,         /**< anything else (a bug: please report it) */
  PERFQ_ERROR_IO = 6                /**< a file could not be written (a full disk, no permission) */
} perfq_status;

/** @brief The message of the last call that failed on the calling thread ("" if none).
 * The pointer stays valid until the next failing call on this thread. Never NULL. */
PERFQ_API const char* perfq_last_error(void);

/** @brief The name of a status ("ok", "invalid argument", "input error", "backend error",
 * "out of memory", "internal error", "i/o error"; "unknown status" for other values). Never
 * NULL. */
PERFQ_API const char* perfq_status_string(perfq_status status);

/** @brief The library's version string, "major.minor.patch" (PERFQ_VERSION_STRING). */
PERFQ_API const char* perfq_version(void);

/** @brief The PERFQ_C_API_VERSION the library was built with: compare it with the header's
 * to detect a header/library mismatch at run time. */
PERFQ_API int perfq_c_api_version(void);

/* ---- execution (execution.hpp) -------------------------------------------------------- */

/** @brief Where computations run: backend, CPU threads, CUDA device. */
typedef struct perfq_execution perfq_execution;

/** @brief Creates execution settings with the defaults: backend "auto", every CPU thread,
 * device 0.
 * @param[out] out the new handle (release with perfq_execution_destroy) */
PERFQ_API perfq_status perfq_execution_create(perfq_execution** out);
/** @brief Releases execution settings (NULL is accepted). */
PERFQ_API void perfq_execution_destroy(perfq_execution* execution);
/** @brief Sets the backend: "auto" (CUDA when a device exists, else CPU), "cpu" or "cuda".
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for any other name */
PERFQ_API perfq_status perfq_execution_set_backend(perfq_execution* execution, const char* backend);
/** @brief Sets the number of CPU threads (0: OpenMP's default, every core).
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT when negative */
PERFQ_API perfq_status perfq_execution_set_threads(perfq_execution* execution, int threads);
/** @brief Sets the CUDA device ordinal (checked when a computation runs).
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT when negative */
PERFQ_API perfq_status perfq_execution_set_device(perfq_execution* execution, int device);

/** @brief Caps the device memory a CUDA computation may use, in bytes (0: the free memory,
 * the default); larger jobs then run in chunks. Results do not depend on it. */
PERFQ_API perfq_status perfq_execution_set_device_bytes_limit(perfq_execution* execution,
                                                              size_t bytes);
/** @brief Sets the most voxels one chunk holds (0, the default: as many as device memory
 * allows, or the environment variable PERFQ_MAX_CHUNK_VOXELS when set). A forced size also
 * makes the CPU backend run in chunks of that size; results are bitwise identical whatever
 * the chunk size. */
PERFQ_API perfq_status perfq_execution_set_max_chunk_voxels(perfq_execution* execution,
                                                            size_t voxels);

/** @brief 1 when the CUDA backend is compiled in and a usable device exists, else 0. */
PERFQ_API int perfq_cuda_available(void);
/** @brief 1 when this build of perfq contains the CUDA backend (perfq::cuda_compiled), whether
 * or not a device exists, else 0. */
PERFQ_API int perfq_cuda_compiled(void);
/** @brief Number of usable CUDA devices (perfq::cuda_device_count): 0 when none, or when CUDA
 * is not compiled in. Valid ordinals for perfq_execution_set_device() are 0 … count − 1. */
PERFQ_API int perfq_cuda_device_count(void);
/** @brief The name of usable CUDA device `device` (perfq::cuda_device_names), e.g.
 * "NVIDIA H100 80GB HBM3".
 * @param device the ordinal, 0 … perfq_cuda_device_count() − 1
 * @return the name, kept in a per-thread buffer valid until the next call of this function
 *         on the calling thread (copy it to keep it); NULL, with the message set, for an
 *         ordinal out of range (always, without a device) */
PERFQ_API const char* perfq_cuda_device_name(int device);
/** @brief Why the CUDA backend cannot run (perfq::cuda_unavailable_reason): "" when
 * perfq_cuda_available() is 1, else a sentence such as "perfq was built without CUDA" or the
 * CUDA runtime's error. Kept in a per-thread buffer valid until the next call of this
 * function on the calling thread. Never NULL. */
PERFQ_API const char* perfq_cuda_unavailable_reason(void);

/* ---- acquisition protocol (protocol.hpp) ---------------------------------------------- */

/** @brief Labeling scheme (BIDS ArterialSpinLabelingType). */
typedef enum perfq_labeling_type PERFQ_C_ENUM_BASE {
  PERFQ_LABELING_PCASL = 0, /**< pseudo-continuous labeling (BIDS "PCASL"), the default */
  PERFQ_LABELING_PASL = 1,  /**< pulsed labeling (BIDS "PASL"): delays are inversion times TI */
  PERFQ_LABELING_CASL = 2   /**< continuous labeling (BIDS "CASL") */
} perfq_labeling_type;

/** @brief The acquisition of an ASL series: labeling, timing, efficiencies, M0 timing. */
typedef struct perfq_protocol perfq_protocol;

/** @brief Creates a protocol: PCASL, 3 T, 3D readout, no delays or durations yet (set them),
 * no background suppression, M0 taken as fully relaxed.
 * @param[out] out the new handle (release with perfq_protocol_destroy) */
PERFQ_API perfq_status perfq_protocol_create(perfq_protocol** out);
/** @brief Releases a protocol (NULL is accepted). */
PERFQ_API void perfq_protocol_destroy(perfq_protocol* protocol);
/** @brief Sets the labeling scheme.
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for a value outside ::perfq_labeling_type */
PERFQ_API perfq_status perfq_protocol_set_labeling(perfq_protocol* protocol,
                                                   perfq_labeling_type type);
/** @brief Sets the post-labeling delays (PCASL/CASL) or inversion times TI (PASL), seconds
 * (BIDS PostLabelingDelay): one value for every volume, or one per volume of the images
 * quantified.
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for NULL with count > 0, count 0, or a negative or
 *         non-finite value */
PERFQ_API perfq_status perfq_protocol_set_delays(perfq_protocol* protocol, const double* delays,
                                                 size_t count);
/** @brief Sets the labeling durations τ of PCASL/CASL, seconds (BIDS LabelingDuration): one
 * value, or one per volume. Unused for PASL.
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for NULL with count > 0, count 0, or a value that is
 *         not positive and finite */
PERFQ_API perfq_status perfq_protocol_set_labeling_durations(perfq_protocol* protocol,
                                                             const double* durations, size_t count);
/** @brief Sets the PASL bolus cut-off time TI1, seconds (BIDS BolusCutOffDelayTime).
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT when not positive and finite */
PERFQ_API perfq_status perfq_protocol_set_bolus_cutoff(perfq_protocol* protocol, double ti1);
/** @brief Sets a 2D multi-slice readout with the acquisition time of each slice (z) after the
 * first, seconds (BIDS SliceTiming); count 0 restores a 3D readout.
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for NULL with count > 0, or a negative or non-finite
 *         value (the count is checked against the image when quantifying) */
PERFQ_API perfq_status perfq_protocol_set_slice_timing(perfq_protocol* protocol,
                                                       const double* slice_times, size_t count);
/** @brief Sets the labeling efficiency stated by the sequence (BIDS LabelingEfficiency); a
 * physiology override (perfq_physiology_set_labeling_efficiency) still beats it.
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT outside (0, 1] */
PERFQ_API perfq_status perfq_protocol_set_labeling_efficiency(perfq_protocol* protocol,
                                                              double efficiency);
/** @brief Declares background suppression with `pulses` pulses. Its total efficiency factor
 * is `efficiency` when in (0, 1], or, when `efficiency` is 0, the physiology's per-pulse
 * efficiency to the power `pulses`. `pulses` 0 with `efficiency` 0 turns it off.
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for negative pulses or an efficiency outside
 *         {0} ∪ (0, 1] */
PERFQ_API perfq_status perfq_protocol_set_background_suppression(perfq_protocol* protocol,
                                                                 int pulses, double efficiency);
/** @brief Sets the repetition time of the M0 scan, seconds: below 5 s, M0 is divided by
 * `1 − e^(−TR/T1 tissue)`. 0 restores "fully relaxed".
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT when negative or non-finite */
PERFQ_API perfq_status perfq_protocol_set_m0_repetition_time(perfq_protocol* protocol,
                                                             double repetition_time);
/** @brief Sets the magnetic field strength in tesla (3 by default); it chooses the default
 * blood T1 when no physiology handle is passed.
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT when not positive and finite */
PERFQ_API perfq_status perfq_protocol_set_field_strength(perfq_protocol* protocol, double tesla);

/** @brief Where M0 comes from (BIDS M0Type; perfq::M0Type). */
typedef enum perfq_m0_type PERFQ_C_ENUM_BASE {
  PERFQ_M0_SEPARATE = 0, /**< a separate m0scan image (the default) */
  PERFQ_M0_INCLUDED = 1, /**< m0scan volumes inside the ASL series */
  PERFQ_M0_ESTIMATE = 2, /**< one value (BIDS M0Estimate) */
  PERFQ_M0_ABSENT = 3    /**< none */
} perfq_m0_type;

/** @brief Sets where M0 comes from and, for ::PERFQ_M0_ESTIMATE, its value (BIDS M0Type and
 * M0Estimate). perfq_validate_protocol() then checks them as for a BIDS sidecar; the
 * quantification functions take the M0 image or value they are given.
 * @param protocol the protocol to change (not NULL)
 * @param type where M0 comes from
 * @param estimate the M0 value for ::PERFQ_M0_ESTIMATE (positive and finite); 0 otherwise
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for a type outside ::perfq_m0_type, an estimate that
 *         is not positive and finite for ::PERFQ_M0_ESTIMATE, or a nonzero one otherwise */
PERFQ_API perfq_status perfq_protocol_set_m0(perfq_protocol* protocol, perfq_m0_type type,
                                             double estimate);

/* ---- physiology (protocol.hpp) -------------------------------------------------------- */

/** @brief Physiological constants (λ, T1s, labeling efficiencies). Functions that take one
 * accept NULL for the white-paper defaults at the protocol's field strength. */
typedef struct perfq_physiology perfq_physiology;

/** @brief Creates the white-paper constants for a field strength: λ 0.9 ml/g, blood T1
 * 1.65 s (1.35 s below 2.25 T), tissue T1 1.3 s, α 0.85 PCASL / 0.98 PASL / 0.68 CASL,
 * 0.95 per background-suppression pulse. Only 1.5 and 3 T have white-paper values: at other
 * fields (e.g. 7 T) set the blood T1 with perfq_physiology_set_t1_blood().
 * @param tesla field strength, > 0
 * @param[out] out the new handle (release with perfq_physiology_destroy) */
PERFQ_API perfq_status perfq_physiology_create(double tesla, perfq_physiology** out);
/** @brief Releases physiology constants (NULL is accepted). */
PERFQ_API void perfq_physiology_destroy(perfq_physiology* physiology);
/** @brief Sets the blood–brain partition coefficient λ, ml/g (range checked when used). */
PERFQ_API perfq_status perfq_physiology_set_partition_coefficient(perfq_physiology* physiology,
                                                                  double lambda);
/** @brief Sets the arterial blood T1, seconds (range checked when used). */
PERFQ_API perfq_status perfq_physiology_set_t1_blood(perfq_physiology* physiology, double t1);
/** @brief Sets the tissue T1 used by the short-TR M0 correction, seconds. */
PERFQ_API perfq_status perfq_physiology_set_t1_tissue(perfq_physiology* physiology, double t1);
/** @brief Overrides the labeling efficiency α (beats the protocol's and the defaults). */
PERFQ_API perfq_status perfq_physiology_set_labeling_efficiency(perfq_physiology* physiology,
                                                                double alpha);
/** @brief Sets the efficiency of each background-suppression pulse. */
PERFQ_API perfq_status perfq_physiology_set_bs_pulse_efficiency(perfq_physiology* physiology,
                                                                double efficiency);

/** @brief The constants a quantification used (ResolvedConstants in protocol.hpp). */
typedef struct perfq_constants {
  double blood_brain_partition;         /**< λ, ml/g */
  double t1_blood;                      /**< s */
  double t1_tissue;                     /**< s */
  double labeling_efficiency;           /**< α before background suppression */
  double background_suppression_factor; /**< multiplies α */
  double effective_labeling_efficiency; /**< α × background-suppression factor */
  double m0_scale;                      /**< M0 was divided by this (1: no correction) */
} perfq_constants;

/** @brief The constants a quantification with `protocol` and `physiology` uses
 * (perfq::resolve_constants): λ and the T1s from the physiology; α from the physiology's
 * override, else the protocol's stated efficiency, else the physiology's default for the
 * labeling type; the background-suppression factor stated, or the pulse efficiency to the
 * power of the pulses, or 1; `m0_scale` `1 − e^(−TR/T1 tissue)` for an M0 repetition time
 * below 5 s, else 1. These are the values perfq_cbf_maps_constants() reports after a
 * quantification; pass them to perfq_single_delay_factor().
 * @param protocol the acquisition (not NULL); its delays and durations are not used
 * @param physiology NULL: white-paper defaults at the protocol's field strength
 * @param[out] out the constants (left unchanged on failure)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for a NULL argument or a constant outside its
 *         physical range (λ outside (0, 2], a T1 outside (0, 10] s, an efficiency outside
 *         (0, 1]), the message naming it */
PERFQ_API perfq_status perfq_resolve_constants(const perfq_protocol* protocol,
                                               const perfq_physiology* physiology,
                                               perfq_constants* out);

/** @brief Checks that a protocol is complete and consistent for a series of `volumes`
 * volumes and `slices` slices (perfq::validate_protocol), e.g. before reading the images:
 * delays are set (and labeling durations for PCASL/CASL), each list has one value or one per
 * volume, a 2D readout's slice timing has one value per slice, and no time is above 30 s
 * (times are in seconds; a larger value is taken for milliseconds and refused).
 * @param protocol the protocol to check (not NULL)
 * @param volumes volumes of the series, at least 1
 * @param slices slices (z size) of the series, at least 1
 * @param source the file named in the message (e.g. the BIDS sidecar), or NULL for none
 * @return ::PERFQ_OK when consistent; ::PERFQ_ERROR_INPUT otherwise, with a message naming
 *         the file, the BIDS field and what was expected, e.g.
 *         `perfq_validate_protocol: sub-01_asl.json: PostLabelingDelay: has 3 values; expected
 *         1 or one per volume (8)`; ::PERFQ_ERROR_INVALID_ARGUMENT for a NULL protocol or a
 *         zero count */
PERFQ_API perfq_status perfq_validate_protocol(const perfq_protocol* protocol, size_t volumes,
                                               size_t slices, const char* source);

/* ---- from an acquired series to ΔM (asl_series.hpp) ----------------------------------- */

/** @brief What a volume of an ASL series holds (BIDS aslcontext volume_type). */
typedef enum perfq_volume_type PERFQ_C_ENUM_BASE {
  PERFQ_VOLUME_CONTROL = 0, /**< "control": paired, in order, with the label volumes */
  PERFQ_VOLUME_LABEL = 1,   /**< "label": paired, in order, with the control volumes */
  PERFQ_VOLUME_M0SCAN = 2,  /**< "m0scan": averaged into the series' M0 */
  PERFQ_VOLUME_DELTAM = 3,  /**< "deltam": a control − label image, used as it is */
  PERFQ_VOLUME_CBF = 4,     /**< "cbf": a scanner-made CBF map, not used for ΔM */
  PERFQ_VOLUME_NORF = 5     /**< "noRF": acquired without labeling RF, ignored */
} perfq_volume_type;

/** @brief ΔM images with the timing of each: one per distinct delay (perfq_prepare_asl), one
 * per sub-bolus (perfq_prepare_time_encoded), or one per sub-bolus and block
 * (perfq_decode_time_encoded). Its delays and durations, set on a protocol, fit the ΔM images
 * with perfq_fit_kinetic(). */
typedef struct perfq_prepared perfq_prepared;

/** @brief Pairs control and label volumes and averages repeats into one ΔM volume per
 * distinct (delay, labeling duration), in order of increasing delay (perfq::prepare_asl).
 * @param series `volumes` volumes on the grid `dims`
 * @param volumes number of volumes of `series` (and of values in `context`), at least 1
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param context one ::perfq_volume_type value per volume
 * @param protocol delays (and durations) with one value, or one per volume of the series
 * @param robust nonzero: drop outlier repeats first (robust z-score of each repeat's mean
 *        over `mask`, threshold 3)
 * @param mask optional region for the outlier rule (NULL: all finite voxels)
 * @param[out] out the ΔM images (release with perfq_prepared_destroy)
 * @return ::PERFQ_ERROR_INPUT when the context does not fit the series, control and label
 *         counts differ, or no perfusion-weighted volume exists */
PERFQ_API perfq_status perfq_prepare_asl(const float* series, size_t volumes, const size_t dims[3],
                                         const double spacing[3], const int32_t* context,
                                         const perfq_protocol* protocol, int robust,
                                         const uint8_t* mask, perfq_prepared** out);
/** @brief Releases prepared ΔM images (NULL is accepted). */
PERFQ_API void perfq_prepared_destroy(perfq_prepared* prepared);
/** @brief The ΔM series (`*volumes` volumes on the input grid); NULL for a NULL handle. */
PERFQ_API const float* perfq_prepared_delta_m(const perfq_prepared* prepared, size_t* volumes);
/** @brief Delay (PLD, or TI for PASL) of each ΔM volume, seconds. */
PERFQ_API const double* perfq_prepared_delays(const perfq_prepared* prepared);
/** @brief Labeling duration of each ΔM volume, seconds (0 for PASL). */
PERFQ_API const double* perfq_prepared_labeling_durations(const perfq_prepared* prepared);
/** @brief Repeats (control/label pairs, or time-encoded blocks) averaged into each ΔM volume
 * (1 for each volume of perfq_decode_time_encoded()). */
PERFQ_API const size_t* perfq_prepared_repeats(const perfq_prepared* prepared);
/** @brief Mean of the series' m0scan volumes, or NULL when it has none. */
PERFQ_API const float* perfq_prepared_m0(const perfq_prepared* prepared);

/** @brief Voxels with negative perfusion weighting (perfq::DeltaMSign). */
typedef struct perfq_delta_m_sign {
  size_t voxels;            /**< voxels examined */
  size_t negative;          /**< of them, with a negative mean ΔM over the volumes */
  double negative_fraction; /**< negative / voxels (0 when none was examined) */
  int inverted;             /**< 1: ΔM looks sign-inverted (control and label swapped) */
} perfq_delta_m_sign;

/** @brief Checks ΔM for control and label swapped (perfq::check_delta_m_sign): counts the
 * voxels whose mean ΔM over the volumes is negative, in `mask` when given, else where M0 is at
 * least half its 98th percentile, else everywhere (non-finite ΔM or M0 and a mean of exactly
 * 0 skipped; without a mask also those with a non-finite M0). `inverted` is 1 when at least 100 voxels were examined, at least 60 % are
 * negative, and the excess over one half is more than 4 binomial standard deviations.
 * @param delta_m `volumes` ΔM volumes on the grid `dims` (e.g. perfq_prepared_delta_m())
 * @param volumes at least 1
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param m0 optional voxelwise M0 on the grid (NULL: none)
 * @param mask optional region on the grid (NULL: none)
 * @param[out] out the counts (left unchanged on failure)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for a NULL delta_m or out, or zero volumes */
PERFQ_API perfq_status perfq_check_delta_m_sign(const float* delta_m, size_t volumes,
                                                const size_t dims[3], const float* m0,
                                                const uint8_t* mask, perfq_delta_m_sign* out);

/* ---- time-encoded (Hadamard) PCASL (time_encoded.hpp) --------------------------------- */

/** @brief A time-encoded PCASL acquisition (perfq::TimeEncoding): its encoding matrix and the
 * timing of each sub-bolus.
 *
 * The labeling train is split into K = N − 1 sub-boli; each of N encoding cycles labels some
 * of them. The matrix E has N rows (encoding cycles, in acquisition order within a block of N
 * volumes) and N − 1 columns (sub-boli in labeling order: column 0 is labelled first, so it
 * has the longest delay); **E[i][k] = +1: sub-bolus k is in control in cycle i; −1: it is
 * labelled** (ExploreASL's sign for Siemens data). Decoding gives
 * `ΔM_k = (2 / N) Σ_i E[i][k] S_i` (control − label, positive; the static signal cancels).
 * Sub-bolus k of duration τ_k has the effective delay `PLD_k = final_pld + Σ_{j > k} τ_j`. */
typedef struct perfq_time_encoding perfq_time_encoding;

/** @brief A generated encoding (perfq::encoding_matrix, perfq::make_time_encoding); cycle 0 is
 * all control.
 * @param matrix_type "Hadamard" (or "natural"; Sylvester order for N = 4 and 8, Paley's
 *        construction for 12) or "Walsh" (sequency order, N = 4 and 8), any letter case, as in
 *        a BIDS sidecar's TimeEncodedMatrixType
 * @param size N, the encoding cycles of one block: 4, 8 or 12 (Walsh: 4 or 8)
 * @param durations the N − 1 sub-bolus durations τ_k in labeling order, seconds, each > 0
 * @param count number of values in `durations`: N − 1
 * @param final_pld delay after the last sub-bolus, seconds, > 0
 * @param[out] out the encoding (release with perfq_time_encoding_destroy)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for an unknown type, an unsupported size, a count
 *         other than N − 1 or a time that is not positive and finite */
PERFQ_API perfq_status perfq_time_encoding_create(const char* matrix_type, size_t size,
                                                  const double* durations, size_t count,
                                                  double final_pld, perfq_time_encoding** out);
/** @brief An encoding from an explicit matrix (perfq::encoding_matrix_from_rows), e.g. a BIDS
 * sidecar's TimeEncodedMatrix.
 * @param entries `rows × columns` values, row after row, each +1 (control) or −1 (label)
 * @param rows N, the encoding cycles, 2 … 64
 * @param columns N − 1 (one per sub-bolus), or N when the first column is all +1 (the full
 *        normalised Hadamard matrix, as ExploreASL stores it): that column is dropped
 * @param durations the N − 1 sub-bolus durations τ_k in labeling order, seconds, each > 0
 * @param count number of values in `durations`: N − 1
 * @param final_pld delay after the last sub-bolus, seconds, > 0
 * @param[out] out the encoding (release with perfq_time_encoding_destroy)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for NULL entries, rows outside 2 … 64, columns other
 *         than N − 1 or N, a count other than N − 1 or a time that is not positive and finite;
 *         ::PERFQ_ERROR_INPUT (naming TimeEncodedMatrix, the row and the column) for an entry
 *         other than ±1, a square matrix whose first column is not all +1, or columns that do
 *         not sum to 0 or are not orthogonal (Eᵀ E = N I) */
PERFQ_API perfq_status perfq_time_encoding_from_matrix(const int32_t* entries, size_t rows,
                                                       size_t columns, const double* durations,
                                                       size_t count, double final_pld,
                                                       perfq_time_encoding** out);
/** @brief Releases an encoding (NULL is accepted). */
PERFQ_API void perfq_time_encoding_destroy(perfq_time_encoding* encoding);
/** @brief N, the encoded volumes of one block. 0 for a NULL handle. */
PERFQ_API size_t perfq_time_encoding_cycles(const perfq_time_encoding* encoding);
/** @brief N − 1, the sub-boli. 0 for a NULL handle. */
PERFQ_API size_t perfq_time_encoding_sub_boli(const perfq_time_encoding* encoding);
/** @brief The matrix E, N rows of N − 1 entries (+1 control, −1 label), row after row: entry
 * (cycle i, sub-bolus k) at `i (N − 1) + k`. NULL for a NULL handle. */
PERFQ_API const int32_t* perfq_time_encoding_matrix(const perfq_time_encoding* encoding);
/** @brief The duration τ_k of each sub-bolus, seconds, in labeling order (N − 1 values). NULL
 * for a NULL handle. */
PERFQ_API const double* perfq_time_encoding_sub_bolus_durations(
    const perfq_time_encoding* encoding);
/** @brief The effective delay `PLD_k = final_pld + Σ_{j > k} τ_j` of each sub-bolus, seconds,
 * in labeling order (N − 1 values, decreasing). NULL for a NULL handle. */
PERFQ_API const double* perfq_time_encoding_sub_bolus_delays(const perfq_time_encoding* encoding);
/** @brief Where the matrix came from: e.g. "Hadamard 8 (generated)", "Walsh 4 (generated)" or
 * "TimeEncodedMatrix (given)". "" for a NULL handle. */
PERFQ_API const char* perfq_time_encoding_source(const perfq_time_encoding* encoding);

/** @brief Decodes blocks of N encoded volumes into sub-bolus ΔM volumes, block by block, with
 * no averaging (perfq::decode_time_encoded): volume `b (N − 1) + k` of the result is
 * `(2 / N) Σ_i E[i][k] encoded[b N + i]` (sums in double), sub-bolus k of block b in labeling
 * order. Each volume carries its sub-bolus's timing (perfq_prepared_delays: PLD_k,
 * perfq_prepared_labeling_durations: τ_k; repeats 1, no M0), so that a protocol with those
 * delays and durations fits every block with perfq_fit_kinetic(). perfq_prepare_time_encoded()
 * does the whole preparation of an acquired series instead (volume types, M0, averaging).
 * @param encoded the encoded volumes only, N per block, blocks one after another, on the grid
 *        `dims`
 * @param volumes number of volumes of `encoded`: a positive multiple of N
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param encoding the matrix and timing (not NULL)
 * @param[out] out the ΔM volumes (release with perfq_prepared_destroy)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT when `volumes` is not a positive multiple of N */
PERFQ_API perfq_status perfq_decode_time_encoded(const float* encoded, size_t volumes,
                                                 const size_t dims[3], const double spacing[3],
                                                 const perfq_time_encoding* encoding,
                                                 perfq_prepared** out);

/** @brief From an acquired time-encoded series to one averaged ΔM volume per sub-bolus
 * (perfq::prepare_time_encoded), in order of increasing delay (the last-labelled sub-bolus
 * first), each with its own delay and duration; fit them with perfq_fit_kinetic() after
 * setting those on the protocol (and, as the command-line tool does, the repeats as weights).
 *
 * Volume types: every ::PERFQ_VOLUME_CONTROL or ::PERFQ_VOLUME_LABEL volume is an encoded
 * volume (its type is not used); in series order they form blocks of N, the i-th volume of a
 * block being encoding cycle i. ::PERFQ_VOLUME_M0SCAN volumes are averaged into M0
 * (perfq_prepared_m0) and ::PERFQ_VOLUME_NORF volumes ignored; deltam and cbf volumes are
 * refused. The blocks are the repeats of each sub-bolus, averaged.
 * @param series `volumes` volumes on the grid `dims`
 * @param volumes number of volumes of `series` (and of values in `context`), at least 1
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param context one ::perfq_volume_type value per volume
 * @param protocol labeling type (PCASL or CASL); its delays and durations are not used
 * @param encoding the matrix and the timing of each sub-bolus (not NULL)
 * @param robust nonzero: drop outlier blocks per sub-bolus first (robust z-score of each
 *        block's mean over `mask`, threshold 3), as perfq_prepare_asl() does for repeats
 * @param mask optional region for the outlier rule (NULL: all finite voxels)
 * @param[out] out the ΔM images (release with perfq_prepared_destroy)
 * @return ::PERFQ_ERROR_INPUT for PASL, deltam or cbf volumes, or an encoded volume count that
 *         is not a positive multiple of N */
PERFQ_API perfq_status perfq_prepare_time_encoded(const float* series, size_t volumes,
                                                  const size_t dims[3], const double spacing[3],
                                                  const int32_t* context,
                                                  const perfq_protocol* protocol,
                                                  const perfq_time_encoding* encoding, int robust,
                                                  const uint8_t* mask, perfq_prepared** out);

/* ---- per-voxel status (cbf.hpp) -------------------------------------------------------- */

/** @brief Per-voxel outcome in status maps (perfq::VoxelStatus). Values are 0 in the maps for
 * codes 1–4 and 8; codes 5–7 flag multi-delay fits whose values are kept. */
typedef enum perfq_voxel_status PERFQ_C_ENUM_BASE {
  PERFQ_VOXEL_OK = 0,               /**< computed normally */
  PERFQ_VOXEL_OUTSIDE_MASK = 1,     /**< not computed: outside the mask */
  PERFQ_VOXEL_M0_NOT_POSITIVE = 2,  /**< M0 is zero or negative */
  PERFQ_VOXEL_NONFINITE_INPUT = 3,  /**< ΔM or M0 is NaN or infinite */
  PERFQ_VOXEL_NONFINITE_RESULT = 4, /**< the arithmetic overflowed */
  PERFQ_VOXEL_MAX_ITERATIONS = 5,   /**< multi-delay fit: stopped at the iteration limit (values
                                         kept) */
  PERFQ_VOXEL_SINGULAR = 6,         /**< multi-delay fit: parameters not identifiable (e.g. no
                                         signal); values kept; CBF's standard error is the one
                                         with ATT (and aBV) held, the others 0 */
  PERFQ_VOXEL_ATT_AT_BOUND = 7,     /**< multi-delay fit: arrival time at a bound of its range
                                         (values kept) */
  PERFQ_VOXEL_M0_TOO_LOW = 8        /**< M0 below a fraction (1 % by default) of the brain's
                                         median M0, e.g. the background of a resampled
                                         acquisition; set by the series pipeline
                                         (perfq_quantify_series), values 0 */
} perfq_voxel_status;

/* ---- single-delay quantification (cbf.hpp) -------------------------------------------- */

/** @brief A CBF map with its status map (result of perfq_quantify_cbf). */
typedef struct perfq_cbf_maps perfq_cbf_maps;

/** @brief Quantifies CBF from one mean ΔM image with the white-paper formula (PCASL/CASL:
 * `6000 λ ΔM e^(PLD/T1b) / (2 α T1b M0 (1 − e^(−τ/T1b)))`; PASL:
 * `6000 λ ΔM e^(TI/T1b) / (2 α TI1 M0)`), in ml/100 g/min.
 * @param delta_m one volume on the grid `dims`
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param m0 voxelwise M0 on the same grid, or NULL to use `m0_value` for every voxel
 * @param m0_value M0 when `m0` is NULL (must then be > 0); ignored otherwise
 * @param mask optional: voxels where it is 0 get status ::PERFQ_VOXEL_OUTSIDE_MASK
 * @param protocol one distinct delay; τ (PCASL/CASL) or TI1 (PASL)
 * @param physiology NULL: defaults at the protocol's field strength
 * @param execution NULL: defaults
 * @param[out] out the maps (release with perfq_cbf_maps_destroy) */
PERFQ_API perfq_status perfq_quantify_cbf(const float* delta_m, const size_t dims[3],
                                          const double spacing[3], const float* m0, double m0_value,
                                          const uint8_t* mask, const perfq_protocol* protocol,
                                          const perfq_physiology* physiology,
                                          const perfq_execution* execution, perfq_cbf_maps** out);
/** @brief Releases CBF maps (NULL is accepted). */
PERFQ_API void perfq_cbf_maps_destroy(perfq_cbf_maps* maps);
/** @brief Number of voxels of each map. 0 for a NULL handle. */
PERFQ_API size_t perfq_cbf_maps_voxel_count(const perfq_cbf_maps* maps);
/** @brief CBF, ml/100 g/min; 0 where the status is 1–4. NULL for a NULL handle. */
PERFQ_API const float* perfq_cbf_maps_cbf(const perfq_cbf_maps* maps);
/** @brief ::perfq_voxel_status code per voxel. NULL for a NULL handle. */
PERFQ_API const uint8_t* perfq_cbf_maps_status(const perfq_cbf_maps* maps);
/** @brief The constants used.
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for a NULL argument */
PERFQ_API perfq_status perfq_cbf_maps_constants(const perfq_cbf_maps* maps, perfq_constants* out);
/** @brief The backend that ran: "cpu" or "cuda" ("" for a NULL handle). */
PERFQ_API const char* perfq_cbf_maps_backend(const perfq_cbf_maps* maps);

/** @brief The factor that turns ΔM/M0 into CBF for one delay, `CBF = factor × ΔM / M0` in
 * ml/100 g/min (perfq::single_delay_factor, double precision; perfq_quantify_cbf() applies it
 * per slice). PCASL/CASL: `6000 λ e^(PLD/T1b) m0_scale / (2 α T1b (1 − e^(−τ/T1b)))`; PASL:
 * `6000 λ e^(TI/T1b) m0_scale / (2 α TI1)`, with λ, T1b, α (the effective labeling
 * efficiency) and m0_scale from `constants`.
 * @param type the labeling scheme
 * @param delay PLD (PCASL/CASL) or TI (PASL), seconds, including any slice offset; finite
 *        and ≥ 0
 * @param labeling_duration τ, seconds, > 0 (PCASL/CASL; ignored for PASL)
 * @param bolus_cutoff TI1, seconds, > 0 (PASL; ignored for PCASL/CASL)
 * @param constants the constants, e.g. from perfq_resolve_constants(): its
 *        blood_brain_partition, t1_blood, effective_labeling_efficiency and m0_scale are used,
 *        each positive and finite (not NULL)
 * @param[out] out the factor (left unchanged on failure)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for a NULL pointer, a type outside
 *         ::perfq_labeling_type, a value out of range, or a factor that is not finite or
 *         beyond single precision (a delay of minutes: milliseconds given for seconds), the
 *         message naming it */
PERFQ_API perfq_status perfq_single_delay_factor(perfq_labeling_type type, double delay,
                                                 double labeling_duration, double bolus_cutoff,
                                                 const perfq_constants* constants, double* out);

/* ---- multi-delay fit (kinetic.hpp) ----------------------------------------------------- */

/** @brief Options of the multi-delay fit (perfq::KineticOptions). */
typedef struct perfq_kinetic_options perfq_kinetic_options;

/** @brief Creates the default options: model "buxton", ATT searched in [0, 3] s on 24 grid
 * points, 20 Levenberg–Marquardt iterations, tolerance 1e-6, no prior, no arterial component,
 * equal weights.
 * @param[out] out the new handle (release with perfq_kinetic_options_destroy) */
PERFQ_API perfq_status perfq_kinetic_options_create(perfq_kinetic_options** out);
/** @brief Releases kinetic options (NULL is accepted). */
PERFQ_API void perfq_kinetic_options_destroy(perfq_kinetic_options* options);
/** @brief Sets the model variant: "buxton" (T1app from the voxel's own flow),
 * "buxton-fixed-flow" (BASIL's fixed flow, see perfq_kinetic_options_set_fixed_flow) or
 * "whitepaper" (T1app = blood T1).
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for any other name */
PERFQ_API perfq_status perfq_kinetic_options_set_model(perfq_kinetic_options* options,
                                                       const char* model);
/** @brief Sets the flow (ml/g/s) of the "buxton-fixed-flow" model (0.01 by default). */
PERFQ_API perfq_status perfq_kinetic_options_set_fixed_flow(perfq_kinetic_options* options,
                                                            double flow);
/** @brief Sets the range of the ATT search, seconds (checked when fitting: 0 ≤ min < max). */
PERFQ_API perfq_status perfq_kinetic_options_set_att_range(perfq_kinetic_options* options,
                                                           double att_min, double att_max);
/** @brief Sets the ATT grid points, iteration limit and stopping tolerance (checked when
 * fitting). */
PERFQ_API perfq_status perfq_kinetic_options_set_solver(perfq_kinetic_options* options,
                                                        int grid_points, int max_iterations,
                                                        double tolerance);
/** @brief Sets the most polishing runs per voxel (perfq::KineticOptions::max_starts; 3 by
 * default): after the run from the search's best grid point, runs from the lowest grid points
 * of other regions of the ATT grid, the lowest cost kept. 1: a single start.
 * @param options the options to change
 * @param max_starts 1 to 8 (checked when fitting) */
PERFQ_API perfq_status perfq_kinetic_options_set_max_starts(perfq_kinetic_options* options,
                                                            int max_starts);
/** @brief Turns the Gaussian prior on ATT on (nonzero) or off, with its SD in seconds (1 by
 * default). The mean is 1.3 s (PCASL/CASL) or 0.7 s (PASL) unless set with
 * perfq_kinetic_options_set_att_prior_mean. */
PERFQ_API perfq_status perfq_kinetic_options_set_att_prior(perfq_kinetic_options* options,
                                                           int enabled, double sd);
/** @brief Sets the mean of the ATT prior, seconds (takes effect when the prior is on). */
PERFQ_API perfq_status perfq_kinetic_options_set_att_prior_mean(perfq_kinetic_options* options,
                                                                double mean);
/** @brief Sets the Gaussian prior on the arterial arrival (perfq::KineticOptions::
 * arterial_att_prior_mean and arterial_att_prior_sd), used when both the ATT prior and the
 * arterial component are on. Unset, the mean is the ATT prior's mean − 0.3 s and the SD the
 * ATT prior's (BASIL's defaults).
 * @param options the options to change
 * @param mean prior mean, seconds (finite)
 * @param sd prior standard deviation, seconds (> 0)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for a non-finite mean or an SD ≤ 0 */
PERFQ_API perfq_status perfq_kinetic_options_set_arterial_att_prior(perfq_kinetic_options* options,
                                                                    double mean, double sd);
/** @brief Sets how the ATT prior's noise variance varies between voxels (perfq::PriorNoise).
 * @param options the options to change
 * @param noise "m0" (the default: noise homogeneous in ΔM, so a voxel's variance in ΔM/M0
 *        scales as (M0_ref / M0)², M0_ref the median M0 of the fitted voxels) or "uniform"
 *        (one variance in ΔM/M0 for every voxel)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for any other name */
PERFQ_API perfq_status perfq_kinetic_options_set_prior_noise(perfq_kinetic_options* options,
                                                             const char* noise);
/** @brief Adds (nonzero) or removes the macrovascular (arterial blood volume) component,
 * kept per voxel only where the Bayesian information criterion favours it. */
PERFQ_API perfq_status perfq_kinetic_options_set_arterial(perfq_kinetic_options* options,
                                                          int enabled);
/** @brief Sets the bolus dispersion of the tissue signal (perfq::Dispersion; off by default).
 * @param options the options to change
 * @param kernel "none" or "gamma" (the boxcar input convolved with a gamma kernel of the
 *        extra arrival delay, Chappell et al. 2010; the arterial component stays undispersed)
 * @param sharpness gamma kernel sharpness s, 1/s, in (0, 100] (BASIL's prior mean: 7.4)
 * @param time_to_peak gamma kernel time to peak p, s, in [0, 5] with s·p ≤ 10 (BASIL: 0.1)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for another kernel name or values out of range
 *         (the numbers are checked for "gamma" only) */
PERFQ_API perfq_status perfq_kinetic_options_set_dispersion(perfq_kinetic_options* options,
                                                            const char* kernel, double sharpness,
                                                            double time_to_peak);
/** @brief Turns the spatial prior on or off (perfq::KineticOptions::spatial and spatial_att:
 * a Laplacian Markov random field on CBF, and on ATT with `on_att`, over the in-mask
 * 6-neighbourhood, its precision estimated from the data; docs/physics.md "Spatial prior").
 * @param options the options to change
 * @param enabled nonzero: the spatial fit on CBF
 * @param on_att nonzero: on ATT too (only with `enabled`)
 * @param max_iterations sweeps at most, 1 to 1000 (the default is 100)
 * @param tolerance the stopping rule's relative change, in (0, 1) (the default is 1e-3)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for `on_att` without `enabled` or values out of range */
PERFQ_API perfq_status perfq_kinetic_options_set_spatial(perfq_kinetic_options* options,
                                                         int enabled, int on_att,
                                                         int max_iterations, double tolerance);
/** @brief Sets the weight of each ΔM volume (e.g. the repeats averaged per delay); count 0
 * restores equal weights. The count must equal the ΔM volumes when fitting. */
PERFQ_API perfq_status perfq_kinetic_options_set_weights(perfq_kinetic_options* options,
                                                         const double* weights, size_t count);

/** @brief The float maps of a multi-delay fit. */
typedef enum perfq_kinetic_map PERFQ_C_ENUM_BASE {
  PERFQ_KINETIC_CBF = 0,          /**< ml/100 g/min */
  PERFQ_KINETIC_ATT = 1,          /**< arterial transit time, s */
  PERFQ_KINETIC_CBF_SE = 2,       /**< standard error of CBF, ml/100 g/min */
  PERFQ_KINETIC_ATT_SE = 3,       /**< standard error of ATT, s */
  PERFQ_KINETIC_RESIDUAL_RMS = 4, /**< weighted residual RMS, ΔM units */
  PERFQ_KINETIC_ABV = 5,          /**< arterial blood volume, % (arterial option; else NULL) */
  PERFQ_KINETIC_ABV_SE = 6,       /**< its standard error, % (arterial option; else NULL) */
  PERFQ_KINETIC_ARTERIAL_ATT = 7  /**< arterial arrival, s (arterial option; else NULL) */
} perfq_kinetic_map;

/** @brief Result of a multi-delay fit. */
typedef struct perfq_kinetic_fit perfq_kinetic_fit;

/** @brief Fits CBF and ATT voxel by voxel with the Buxton kinetic model (perfq::fit_kinetic).
 * @param delta_m `volumes` ΔM volumes (one per delay, at least 2) on the grid `dims`
 * @param volumes number of ΔM volumes in `delta_m`
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param m0 voxelwise M0 on the same grid, or NULL to use `m0_value`
 * @param m0_value M0 for every voxel when `m0` is NULL (must then be > 0); ignored otherwise
 * @param mask optional: voxels where it is 0 get status ::PERFQ_VOXEL_OUTSIDE_MASK
 * @param protocol delays and durations with one value per ΔM volume (or one for all); TI1
 *        for PASL
 * @param physiology, options, execution NULL: defaults
 * @param[out] out the fit (release with perfq_kinetic_fit_destroy) */
PERFQ_API perfq_status perfq_fit_kinetic(const float* delta_m, size_t volumes, const size_t dims[3],
                                         const double spacing[3], const float* m0, double m0_value,
                                         const uint8_t* mask, const perfq_protocol* protocol,
                                         const perfq_physiology* physiology,
                                         const perfq_kinetic_options* options,
                                         const perfq_execution* execution, perfq_kinetic_fit** out);
/** @brief Releases a fit (NULL is accepted). */
PERFQ_API void perfq_kinetic_fit_destroy(perfq_kinetic_fit* fit);
/** @brief Number of voxels of each map. 0 for a NULL handle. */
PERFQ_API size_t perfq_kinetic_fit_voxel_count(const perfq_kinetic_fit* fit);
/** @brief One float map; NULL for a NULL handle, an unknown map, or an arterial map of a fit
 * without the arterial component. */
PERFQ_API const float* perfq_kinetic_fit_map(const perfq_kinetic_fit* fit, perfq_kinetic_map which);
/** @brief ::perfq_voxel_status code per voxel. */
PERFQ_API const uint8_t* perfq_kinetic_fit_status(const perfq_kinetic_fit* fit);
/** @brief Levenberg–Marquardt iterations used per voxel. */
PERFQ_API const uint8_t* perfq_kinetic_fit_iterations(const perfq_kinetic_fit* fit);
/** @brief The constants used. */
PERFQ_API perfq_status perfq_kinetic_fit_constants(const perfq_kinetic_fit* fit,
                                                   perfq_constants* out);
/** @brief The backend that ran: "cpu" or "cuda" ("" for a NULL handle). */
PERFQ_API const char* perfq_kinetic_fit_backend(const perfq_kinetic_fit* fit);
/** @brief What the spatial prior found (perfq::KineticFit): any output pointer may be NULL;
 * all 0 for a fit without it.
 * @param fit the fit
 * @param[out] precision_cbf the spatial precision of CBF, (ml/100 g/min)⁻²
 * @param[out] precision_att that of ATT (with the prior on ATT), s⁻²
 * @param[out] iterations the sweeps done
 * @param[out] converged 1 when the stopping rule was met, 0 when the limit ended the sweeps */
PERFQ_API perfq_status perfq_kinetic_fit_spatial(const perfq_kinetic_fit* fit,
                                                 double* precision_cbf, double* precision_att,
                                                 int* iterations, int* converged);

/* ---- border zones (watershed.hpp) ------------------------------------------------------ */

/** @brief Border-zone mask and territory pairs (result of perfq_border_zones). */
typedef struct perfq_border_zones perfq_border_zones;

/** @brief Border zones from a territory label image: voxels of `brain` (every voxel when
 * NULL) with at least two territories within `width_mm / 2`, centre to centre (exact
 * Euclidean distance transforms; perfq::border_zones).
 * @param territories labels 0 (none) or 1 … 999 on the grid `dims`
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm: distances are measured
 *        with them
 * @param brain optional brain mask on the same grid
 * @param width_mm border-zone width, > 0
 * @param execution NULL: defaults
 * @param[out] out the zones (release with perfq_border_zones_destroy) */
PERFQ_API perfq_status perfq_border_zones_from_territories(
    const int32_t* territories, const size_t dims[3], const double spacing[3], const uint8_t* brain,
    double width_mm, const perfq_execution* execution, perfq_border_zones** out);
/** @brief Releases border zones (NULL is accepted). */
PERFQ_API void perfq_border_zones_destroy(perfq_border_zones* zones);
/** @brief Number of voxels of the mask. 0 for a NULL handle. */
PERFQ_API size_t perfq_border_zones_voxel_count(const perfq_border_zones* zones);
/** @brief 1 in the border zone, 0 elsewhere. */
PERFQ_API const uint8_t* perfq_border_zones_mask(const perfq_border_zones* zones);
/** @brief Per voxel, the code `a × 1000 + b` (a < b) of the two nearest territories that meet
 * there; 0 outside the zone. */
PERFQ_API const int32_t* perfq_border_zones_pairs(const perfq_border_zones* zones);
/** @brief The territory labels used, ascending; `*count` receives their number. */
PERFQ_API const int32_t* perfq_border_zones_territories(const perfq_border_zones* zones,
                                                        size_t* count);

/** @brief Border zones from probabilistic territories: voxels of `brain` (every voxel when
 * NULL) where the two largest probabilities are both ≥ `threshold`
 * (perfq::border_zones_from_probabilities; always on the CPU).
 * @param probabilities `territory_count` volumes on the grid `dims`, one per territory
 * @param territory_count number of volumes, at least 2
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param brain optional brain mask on the same grid
 * @param threshold the smallest probability both territories must reach, > 0
 * @param labels the territory label (1 … 999, distinct) of each volume, `territory_count` of
 *        them, or NULL for 1, 2, 3, …
 * @param execution NULL: defaults (CPU threads)
 * @param[out] out the zones (release with perfq_border_zones_destroy): pair codes name the two
 *        most probable territories */
PERFQ_API perfq_status perfq_border_zones_from_probabilities(
    const float* probabilities, size_t territory_count, const size_t dims[3],
    const double spacing[3], const uint8_t* brain, double threshold, const int32_t* labels,
    const perfq_execution* execution, perfq_border_zones** out);

/* ---- masks and maps made by computations (watershed.hpp, stats.hpp) -------------------- */

/** @brief A mask computed by perfq (uint8 image: 1 inside, 0 outside), owning its array; from
 * perfq_periventricular_caps(), a ::perfq_cap code per voxel instead. */
typedef struct perfq_mask perfq_mask;
/** @brief Releases a mask (NULL is accepted). */
PERFQ_API void perfq_mask_destroy(perfq_mask* mask);
/** @brief Number of voxels of the mask. 0 for a NULL handle. */
PERFQ_API size_t perfq_mask_voxel_count(const perfq_mask* mask);
/** @brief The voxels (1 inside, 0 outside); NULL for a NULL handle. */
PERFQ_API const uint8_t* perfq_mask_data(const perfq_mask* mask);

/** @brief A float map computed by perfq, owning its array. */
typedef struct perfq_map perfq_map;
/** @brief Releases a map (NULL is accepted). */
PERFQ_API void perfq_map_destroy(perfq_map* map);
/** @brief Number of voxels of the map. 0 for a NULL handle. */
PERFQ_API size_t perfq_map_voxel_count(const perfq_map* map);
/** @brief The values; NULL for a NULL handle. */
PERFQ_API const float* perfq_map_data(const perfq_map* map);

/** @brief An integer label image computed by perfq (e.g. grouped territories), owning its
 * array. */
typedef struct perfq_label_image perfq_label_image;
/** @brief Releases a label image (NULL is accepted). */
PERFQ_API void perfq_label_image_destroy(perfq_label_image* image);
/** @brief Number of voxels of the label image. 0 for a NULL handle. */
PERFQ_API size_t perfq_label_image_voxel_count(const perfq_label_image* image);
/** @brief The labels; NULL for a NULL handle. */
PERFQ_API const int32_t* perfq_label_image_data(const perfq_label_image* image);

/* ---- distance transforms and dilation (distance.hpp) ---------------------------------- */

/** @brief A double-precision map computed by perfq (perfq_squared_distance_map), owning its
 * array. */
typedef struct perfq_double_map perfq_double_map;
/** @brief Releases a double map (NULL is accepted). */
PERFQ_API void perfq_double_map_destroy(perfq_double_map* map);
/** @brief Number of voxels of the map. 0 for a NULL handle. */
PERFQ_API size_t perfq_double_map_voxel_count(const perfq_double_map* map);
/** @brief The values; NULL for a NULL handle. */
PERFQ_API const double* perfq_double_map_data(const perfq_double_map* map);

/** @brief Exact Euclidean distance map of a mask (perfq::distance_map; linear-time and
 * separable, no chamfer approximation). Where no voxel to measure to exists the value is
 * infinite: +infinity everywhere for a mask with no nonzero voxel; for a signed map of a mask
 * with no zero voxel, −infinity on the mask.
 * @param mask the mask (nonzero inside) on the grid `dims`
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param signed_distance zero: each voxel gets the distance from its centre to the nearest
 *        centre of a mask voxel (0 on the mask); nonzero: voxels off the mask get that distance
 *        (positive) and voxels on the mask minus the distance to the nearest voxel off it
 * @param use_spacing nonzero: millimetres, with `spacing`; zero: voxel units
 * @param execution NULL: defaults
 * @param[out] out the distances (release with perfq_map_destroy) */
PERFQ_API perfq_status perfq_distance_map(const uint8_t* mask, const size_t dims[3],
                                          const double spacing[3], int signed_distance,
                                          int use_spacing, const perfq_execution* execution,
                                          perfq_map** out);

/** @brief Exact squared distances to the mask, unsigned, in double precision
 * (perfq::squared_distance_map): mm² with `spacing`, or whole numbers of voxel units without
 * (exact, for comparisons). +infinity everywhere for a mask with no nonzero voxel.
 * @param mask the mask (nonzero inside) on the grid `dims`
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param use_spacing nonzero: mm², with `spacing`; zero: squared voxel units
 * @param execution NULL: defaults
 * @param[out] out the squared distances (release with perfq_double_map_destroy) */
PERFQ_API perfq_status perfq_squared_distance_map(const uint8_t* mask, const size_t dims[3],
                                                  const double spacing[3], int use_spacing,
                                                  const perfq_execution* execution,
                                                  perfq_double_map** out);

/** @brief Dilation by a radius (perfq::dilate): the voxels within `radius_mm` of the mask,
 * centre to centre, inclusive (Euclidean, with `spacing`).
 * @param mask the mask (nonzero inside) on the grid `dims`
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param radius_mm the radius, ≥ 0 and finite (0: the mask itself, as 0/1)
 * @param execution NULL: defaults
 * @param[out] out the dilated mask (release with perfq_mask_destroy)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for a negative or non-finite radius */
PERFQ_API perfq_status perfq_dilate(const uint8_t* mask, const size_t dims[3],
                                    const double spacing[3], double radius_mm,
                                    const perfq_execution* execution, perfq_mask** out);

/* ---- border zones from perfusion timing (watershed.hpp) -------------------------------- */

/** @brief Which neighbours make voxels connected (perfq::Connectivity). */
typedef enum perfq_connectivity PERFQ_C_ENUM_BASE {
  PERFQ_CONNECTIVITY_6 = 6,  /**< the 6 neighbours sharing a face */
  PERFQ_CONNECTIVITY_26 = 26 /**< the 26 sharing a face, an edge or a corner (the default) */
} perfq_connectivity;

/** @brief Options of perfq_timing_border_zones() (perfq::TimingOptions): a threshold or a
 * percentile (exactly one), a minimum component volume and a connectivity. */
typedef struct perfq_timing_options perfq_timing_options;

/** @brief Creates timing options with neither threshold nor percentile (set one), no
 * minimum volume and 26-connectivity.
 * @param[out] out the new handle (release with perfq_timing_options_destroy) */
PERFQ_API perfq_status perfq_timing_options_create(perfq_timing_options** out);
/** @brief Releases timing options (NULL is accepted). */
PERFQ_API void perfq_timing_options_destroy(perfq_timing_options* options);
/** @brief Keeps voxels whose value is ≥ `threshold` (e.g. ATT in s); clears a percentile.
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT when not finite */
PERFQ_API perfq_status perfq_timing_options_set_threshold(perfq_timing_options* options,
                                                          double threshold);
/** @brief Keeps voxels at or above this percentile (0 … 100, numpy's linear definition) of the
 * values inside the tissue mask; clears a threshold.
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT outside [0, 100] */
PERFQ_API perfq_status perfq_timing_options_set_percentile(perfq_timing_options* options,
                                                           double percentile);
/** @brief Then drops connected components smaller than `min_volume_ml` millilitres (0: none).
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT when negative or not finite */
PERFQ_API perfq_status perfq_timing_options_set_min_volume(perfq_timing_options* options,
                                                           double min_volume_ml);
/** @brief Sets the connectivity of the components.
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for a value outside ::perfq_connectivity */
PERFQ_API perfq_status perfq_timing_options_set_connectivity(perfq_timing_options* options,
                                                             perfq_connectivity connectivity);

/** @brief What perfq_timing_border_zones() applied (perfq::TimingZones). */
typedef struct perfq_timing_summary {
  double cut;                /**< the value applied: the threshold, or the percentile's value */
  size_t tissue_voxels;      /**< voxels of the tissue mask */
  size_t components_kept;    /**< connected components kept */
  size_t components_dropped; /**< connected components below the minimum volume */
  size_t voxels_dropped;     /**< voxels of the dropped components */
} perfq_timing_summary;

/** @brief Border zones from a timing map (ATT, or perfq_local_cov() of CBF): voxels of
 * `tissue` whose value is ≥ the threshold or the percentile, then small connected components
 * dropped (perfq::timing_border_zones).
 * @param timing one volume on the grid `dims`; finite inside `tissue`
 * @param tissue tissue mask on the same grid (not empty)
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm: they give component volumes
 * @param options threshold or percentile (not NULL: one of them is required)
 * @param execution NULL: defaults
 * @param[out] summary optional (NULL: not reported): what was applied
 * @param[out] out the border-zone mask (release with perfq_mask_destroy) */
PERFQ_API perfq_status perfq_timing_border_zones(const float* timing, const uint8_t* tissue,
                                                 const size_t dims[3], const double spacing[3],
                                                 const perfq_timing_options* options,
                                                 const perfq_execution* execution,
                                                 perfq_timing_summary* summary, perfq_mask** out);

/** @brief Local spatial coefficient of variation of CBF, a single-delay surrogate of arrival
 * time (perfq::local_cov): for each voxel of `tissue`, SD / mean (sample SD, a ratio) of the
 * CBF of the tissue voxels within `radius_mm`, centre to centre; 0 outside the tissue mask,
 * where fewer than 2 voxels are in reach or where the mean is ≤ 0. Runs on the CPU.
 * @param cbf one volume on the grid `dims`; finite inside `tissue`
 * @param tissue tissue mask on the same grid (not empty)
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param radius_mm radius of the neighbourhood, > 0
 * @param execution NULL: defaults (CPU threads)
 * @param[out] out the CoV map (release with perfq_map_destroy) */
PERFQ_API perfq_status perfq_local_cov(const float* cbf, const uint8_t* tissue,
                                       const size_t dims[3], const double spacing[3],
                                       double radius_mm, const perfq_execution* execution,
                                       perfq_map** out);

/* ---- M0 calibration (calibration.hpp) ------------------------------------------------ */

/** @brief Smooths a voxelwise M0 image (perfq::smooth_m0): a Gaussian of full width at half
 * maximum `fwhm_mm`, normalised within `region` (each region voxel becomes the weighted mean
 * of the region's voxels around it; voxels outside, and non-finite ones, keep their value).
 * @param m0 one volume on the grid `dims`
 * @param region optional region on the same grid (NULL: where M0 is at least half its 98th
 *        percentile)
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param fwhm_mm ≥ 0 (0: a copy)
 * @param[out] out the smoothed M0 (release with perfq_map_destroy)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for a NULL m0 or a negative or non-finite FWHM */
PERFQ_API perfq_status perfq_smooth_m0(const float* m0, const uint8_t* region,
                                       const size_t dims[3], const double spacing[3],
                                       double fwhm_mm, perfq_map** out);

/** @brief The tissue of a calibration reference region (perfq::ReferenceTissue). */
typedef enum perfq_reference_tissue PERFQ_C_ENUM_BASE {
  PERFQ_REFERENCE_CSF = 0, /**< CSF: T1 4.3 s, T2 0.75 s, λ 1.15 */
  PERFQ_REFERENCE_WM = 1,  /**< white matter: 1.0 s, 0.05 s, 0.82 */
  PERFQ_REFERENCE_GM = 2   /**< grey matter: 1.3 s, 0.1 s, 0.98 */
} perfq_reference_tissue;

/** @brief The result of reference-region calibration (perfq::ReferenceCalibration). */
typedef struct perfq_reference_calibration {
  size_t voxels;          /**< region voxels with a finite M0 */
  double region_mean;     /**< mean M0 over them */
  double m0_reference;    /**< corrected to full relaxation and TE 0 */
  double m0_blood;        /**< arterial blood's M0: quantify with the single M0 λ·m0_blood and
                               no M0 repetition time (the recovery is in it already) */
  double t1;              /**< the reference tissue's T1 used, s */
  double t2;              /**< its T2 used, s */
  double partition;       /**< its partition coefficient used, ml/g */
  double t2_blood;        /**< blood's T2 used, s */
  double echo_time;       /**< TE used, s */
  double repetition_time; /**< TR used, s (0: fully relaxed) */
} perfq_reference_calibration;

/** @brief Arterial blood's M0 from the mean M0 in a region of one tissue
 * (perfq::reference_region_m0): `mean / (1 − e^(−TR/T1)) / e^(−TE/T2) / λ_ref ·
 * e^(−TE/T2_blood)`, with the tissue's default T1, T2 and λ_ref where the overrides are 0.
 * @param m0 one volume on the grid `dims`
 * @param region the reference region on the same grid (not NULL)
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param tissue the region's tissue
 * @param t1, t2, partition overrides of the tissue's defaults; 0 keeps a default
 * @param t2_blood T2 of arterial blood, s (0: 0.15 s)
 * @param echo_time TE of the M0 scan, s (0: no T2 correction)
 * @param repetition_time TR of the M0 scan, s (0: fully relaxed)
 * @param[out] out the result (left unchanged on failure)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for a NULL pointer, a tissue outside
 *         ::perfq_reference_tissue, a negative value, a region without a voxel of finite M0
 *         or a non-positive mean */
PERFQ_API perfq_status perfq_reference_region_m0(const float* m0, const uint8_t* region,
                                                 const size_t dims[3],
                                                 perfq_reference_tissue tissue, double t1,
                                                 double t2, double partition, double t2_blood,
                                                 double echo_time, double repetition_time,
                                                 perfq_reference_calibration* out);

/** @brief How two masks combine (perfq::Combination). */
typedef enum perfq_combination PERFQ_C_ENUM_BASE {
  PERFQ_COMBINE_UNION = 0,       /**< inside either mask */
  PERFQ_COMBINE_INTERSECTION = 1 /**< inside both masks */
} perfq_combination;

/** @brief Union or intersection of two masks on one grid (perfq::combine_masks), e.g. border
 * zones from the atlas and from timing.
 * @param a, b masks on the grid `dims`
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param combination ::PERFQ_COMBINE_UNION or ::PERFQ_COMBINE_INTERSECTION
 * @param[out] out the combined mask (release with perfq_mask_destroy) */
PERFQ_API perfq_status perfq_combine_masks(const uint8_t* a, const uint8_t* b, const size_t dims[3],
                                           const double spacing[3], perfq_combination combination,
                                           perfq_mask** out);

/** @brief Splits border zones into internal (zone ∩ WM) and external (zone ∩ GM \ WM, or
 * zone \ WM without a GM mask) parts (perfq::split_internal_external).
 * @param zones border-zone mask on the grid `dims`
 * @param white_matter white-matter mask on the same grid
 * @param grey_matter optional grey-matter mask on the same grid (NULL: none)
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param[out] internal the internal zone (release with perfq_mask_destroy)
 * @param[out] external the external zone (release with perfq_mask_destroy); on failure both
 *        are set to NULL */
PERFQ_API perfq_status perfq_split_internal_external(const uint8_t* zones,
                                                     const uint8_t* white_matter,
                                                     const uint8_t* grey_matter,
                                                     const size_t dims[3], const double spacing[3],
                                                     perfq_mask** internal, perfq_mask** external);

/** @brief A mask from a map: voxels whose value is ≥ `minimum`, NaN outside
 * (perfq::threshold_map), e.g. white matter from a WM probability map.
 * @param map one volume on the grid `dims`
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param minimum the smallest value inside the mask, finite
 * @param[out] out the mask (release with perfq_mask_destroy) */
PERFQ_API perfq_status perfq_threshold_map(const float* map, const size_t dims[3],
                                           const double spacing[3], double minimum,
                                           perfq_mask** out);

/* ---- territories, components, periventricular caps, overlap (watershed.hpp) ----------- */

/** @brief Relabels territories by group (perfq::group_territories), e.g. left and right ACA
 * into one ACA before perfq_border_zones_from_territories(): territory `from[k]` becomes
 * `to[k]`; group 0 removes a territory (it becomes background); label 0 stays 0.
 * @param labels territory labels on the grid `dims`
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param from the territory labels grouped, `count` distinct values; every nonzero label of
 *        the image must be among them, and each must have a voxel in the image
 * @param to the group of each, ≥ 0 (0: background)
 * @param count number of values in `from` and in `to`
 * @param[out] out the grouped labels (release with perfq_label_image_destroy)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for NULL arrays with count > 0, a label repeated in
 *         `from`, a negative group, a nonzero label of the image without a group, or a label of
 *         `from` with no voxel in the image */
PERFQ_API perfq_status perfq_group_territories(const int32_t* labels, const size_t dims[3],
                                               const double spacing[3], const int32_t* from,
                                               const int32_t* to, size_t count,
                                               perfq_label_image** out);

/** @brief What perfq_drop_small_components() kept and dropped (perfq::CleanedMask). */
typedef struct perfq_component_summary {
  size_t components_kept;    /**< connected components kept */
  size_t components_dropped; /**< connected components below the minimum volume */
  size_t voxels_dropped;     /**< voxels of the dropped components */
} perfq_component_summary;

/** @brief Drops the connected components of a mask whose volume (voxels × voxel volume) is
 * below `min_volume_ml` millilitres (perfq::drop_small_components; 1 ml = 1000 mm³), e.g. to
 * clean a combined border-zone mask. A component of exactly the minimum is kept.
 * @param mask the mask on the grid `dims`
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm: they give component volumes
 * @param min_volume_ml the smallest volume kept, ≥ 0 and finite (0 keeps every component)
 * @param connectivity ::PERFQ_CONNECTIVITY_6 or ::PERFQ_CONNECTIVITY_26
 * @param[out] summary optional (NULL: not reported): the components kept and dropped (left
 *             unchanged on failure)
 * @param[out] out the mask of the components kept (release with perfq_mask_destroy) */
PERFQ_API perfq_status perfq_drop_small_components(const uint8_t* mask, const size_t dims[3],
                                                   const double spacing[3], double min_volume_ml,
                                                   perfq_connectivity connectivity,
                                                   perfq_component_summary* summary,
                                                   perfq_mask** out);

/** @brief Codes of perfq_periventricular_caps() (perfq::PeriventricularCap). */
typedef enum perfq_cap PERFQ_C_ENUM_BASE {
  PERFQ_CAP_NONE = 0,     /**< not in a cap */
  PERFQ_CAP_FRONTAL = 1,  /**< in front of the frontal horns */
  PERFQ_CAP_OCCIPITAL = 2 /**< behind the occipital horns */
} perfq_cap;

/** @brief Options of perfq_periventricular_caps() (perfq::CapOptions). */
typedef struct perfq_cap_options perfq_cap_options;

/** @brief Creates the default options: a reach of 10 mm, horns of 0.25 of the ventricles'
 * anterior–posterior extent.
 * @param[out] out the new handle (release with perfq_cap_options_destroy) */
PERFQ_API perfq_status perfq_cap_options_create(perfq_cap_options** out);
/** @brief Releases cap options (NULL is accepted). */
PERFQ_API void perfq_cap_options_destroy(perfq_cap_options* options);
/** @brief Sets the reach from the ventricles, mm, centre to centre, inclusive.
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT when negative or not finite */
PERFQ_API perfq_status perfq_cap_options_set_distance(perfq_cap_options* options,
                                                      double distance_mm);
/** @brief Sets the share of the ventricles' anterior–posterior extent taken by each horn.
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT outside (0, 0.5] */
PERFQ_API perfq_status perfq_cap_options_set_horn_fraction(perfq_cap_options* options,
                                                           double horn_fraction);

/** @brief Periventricular caps (perfq::periventricular_caps): voxels within the reach of the
 * ventricles, in front of the frontal horns or behind the occipital horns; never a ventricle
 * voxel, and only inside `brain` when given.
 *
 * Rule: with y = (index along y) × spacing[1] (grids of this interface carry no direction
 * cosines: y is taken to grow from anterior to posterior, as in LPS and in the phantom) and
 * [y0, y1] the ventricle voxels' extent, a voxel within reach is ::PERFQ_CAP_FRONTAL when
 * y ≤ y0 + f (y1 − y0), else ::PERFQ_CAP_OCCIPITAL when y ≥ y1 − f (y1 − y0), f the horn
 * fraction.
 * @param ventricles ventricle mask on the grid `dims` (not empty)
 * @param brain optional brain mask on the same grid
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param options NULL: defaults
 * @param execution NULL: defaults (the backend of the dilation)
 * @param[out] out a ::perfq_cap code per voxel (release with perfq_mask_destroy) */
PERFQ_API perfq_status perfq_periventricular_caps(const uint8_t* ventricles, const uint8_t* brain,
                                                  const size_t dims[3], const double spacing[3],
                                                  const perfq_cap_options* options,
                                                  const perfq_execution* execution,
                                                  perfq_mask** out);

/** @brief Dice coefficient 2|A ∩ B| / (|A| + |B|) of two masks on one grid (perfq::dice; 1 when
 * both are empty), e.g. border zones from an atlas against those from timing.
 * @param a, b masks on the grid `dims`
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param[out] out the coefficient, in [0, 1] (left unchanged on failure) */
PERFQ_API perfq_status perfq_dice(const uint8_t* a, const uint8_t* b, const size_t dims[3],
                                  const double spacing[3], double* out);

/* ---- regional statistics (stats.hpp) --------------------------------------------------- */

/** @brief Statistics of a map per region (result of perfq_region_stats). */
typedef struct perfq_region_table perfq_region_table;

/** @brief The statistics of one region (definitions in stats.hpp: sample SD, numpy's linear
 * percentiles, non-finite values left out and counted). */
typedef enum perfq_stat PERFQ_C_ENUM_BASE {
  PERFQ_STAT_LABEL = 0,        /**< the region's label */
  PERFQ_STAT_VOXELS = 1,       /**< voxels of the region (inside the mask) */
  PERFQ_STAT_COUNT = 2,        /**< voxels with a finite value: the sample */
  PERFQ_STAT_NONFINITE = 3,    /**< voxels with NaN or ±Inf, left out */
  PERFQ_STAT_VOLUME_ML = 4,    /**< voxels × voxel volume, ml */
  PERFQ_STAT_MEAN = 5,         /**< mean of the finite values */
  PERFQ_STAT_SD = 6,           /**< sample standard deviation (n − 1) */
  PERFQ_STAT_MEDIAN = 7,       /**< median: percentile 50 */
  PERFQ_STAT_MIN = 8,          /**< smallest finite value */
  PERFQ_STAT_MAX = 9,          /**< largest finite value */
  PERFQ_STAT_COV_DEFINED = 10, /**< 1 when count > 0 and mean ≠ 0, else 0 */
  PERFQ_STAT_COV = 11,         /**< SD / mean (0 when undefined) */
  PERFQ_STAT_SCOV = 12,        /**< spatial CoV, 100 × SD / mean, % (0 when undefined) */
  /* Partial-volume-weighted statistics (perfq::WeightedStats): 0 unless the table was
     computed with weights (perfq_region_stats_with_options). */
  PERFQ_STAT_WEIGHTED_DEFINED = 13,         /**< 1 when Σw > 0, else 0 */
  PERFQ_STAT_WEIGHTED_WEIGHT_SUM = 14,      /**< Σw: the region's partial volume, voxels */
  PERFQ_STAT_WEIGHTED_VOLUME_ML = 15,       /**< Σw × voxel volume, ml */
  PERFQ_STAT_WEIGHTED_EFFECTIVE_COUNT = 16, /**< (Σw)² / Σw² */
  PERFQ_STAT_WEIGHTED_MEAN = 17,            /**< Σwx / Σw */
  PERFQ_STAT_WEIGHTED_SD = 18,              /**< weighted SD (reliability weights) */
  /* Paired change follow-up − baseline (perfq::PairedChange): 0 unless the table was computed
     with a baseline (perfq_region_stats_with_options). */
  PERFQ_STAT_CHANGE_DEFINED = 19,         /**< 1 when some voxel is finite in both sessions */
  PERFQ_STAT_CHANGE_COUNT = 20,           /**< voxels finite in both sessions */
  PERFQ_STAT_CHANGE_BASELINE_MEAN = 21,   /**< mean baseline value over those voxels */
  PERFQ_STAT_CHANGE_FOLLOWUP_MEAN = 22,   /**< mean follow-up value over those voxels */
  PERFQ_STAT_CHANGE_MEAN = 23,            /**< mean of the voxelwise difference */
  PERFQ_STAT_CHANGE_SD = 24,              /**< sample SD of the difference */
  PERFQ_STAT_CHANGE_PERCENT_DEFINED = 25, /**< 1 when the baseline mean ≠ 0 */
  PERFQ_STAT_CHANGE_PERCENT = 26          /**< 100 × change mean / baseline mean, % */
} perfq_stat;

/** @brief Statistics of `map` in each region of `labels` (perfq::region_stats).
 * @param map one volume of values on the grid `dims`
 * @param labels the region of each voxel; every distinct nonzero value is a region, reported
 *        in ascending order (label 0 is background)
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm: they give the voxel volume
 *        of ::PERFQ_STAT_VOLUME_ML
 * @param mask optional: voxels where it is 0 are ignored
 * @param percentiles percentiles to report (each in [0, 100]), or NULL with count 0 for the
 *        defaults 5, 25, 75, 95
 * @param percentile_count number of values in `percentiles` (0: the defaults, with
 *        `percentiles` NULL)
 * @param execution NULL: defaults
 * @param[out] out the table (release with perfq_region_table_destroy) */
PERFQ_API perfq_status perfq_region_stats(const float* map, const int32_t* labels,
                                          const size_t dims[3], const double spacing[3],
                                          const uint8_t* mask, const double* percentiles,
                                          size_t percentile_count, const perfq_execution* execution,
                                          perfq_region_table** out);
/** @brief Releases a table (NULL is accepted). */
PERFQ_API void perfq_region_table_destroy(perfq_region_table* table);
/** @brief Number of regions (rows). 0 for a NULL handle. */
PERFQ_API size_t perfq_region_table_size(const perfq_region_table* table);
/** @brief The row of the region with this label.
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT when no region has it */
PERFQ_API perfq_status perfq_region_table_find(const perfq_region_table* table, int32_t label,
                                               size_t* row);
/** @brief One statistic of row `row` (counts and labels as exact doubles).
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for a row out of range or an unknown statistic */
PERFQ_API perfq_status perfq_region_table_stat(const perfq_region_table* table, size_t row,
                                               perfq_stat which, double* value);
/** @brief Number of percentiles reported per region. 0 for a NULL handle. */
PERFQ_API size_t perfq_region_table_percentile_count(const perfq_region_table* table);
/** @brief Percentile `k` (in the order requested) of row `row`.
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for a row or k out of range */
PERFQ_API perfq_status perfq_region_table_percentile(const perfq_region_table* table, size_t row,
                                                     size_t k, double* value);
/** @brief 1 when the table has partial-volume-weighted statistics, else 0 (also for NULL). */
PERFQ_API int perfq_region_table_is_weighted(const perfq_region_table* table);
/** @brief 1 when the table has the paired change against a baseline, else 0 (also for NULL). */
PERFQ_API int perfq_region_table_is_paired(const perfq_region_table* table);
/** @brief Volume of one voxel, ml (0 for a NULL handle). */
PERFQ_API double perfq_region_table_voxel_volume_ml(const perfq_region_table* table);

/** @brief Options of perfq_region_stats_with_options() (perfq::StatsOptions): percentiles,
 * the labels reported, and whether the background is a region. */
typedef struct perfq_stats_options perfq_stats_options;

/** @brief Creates the default options: percentiles 5, 25, 75, 95; every nonzero label present,
 * ascending.
 * @param[out] out the new handle (release with perfq_stats_options_destroy) */
PERFQ_API perfq_status perfq_stats_options_create(perfq_stats_options** out);
/** @brief Releases statistics options (NULL is accepted). */
PERFQ_API void perfq_stats_options_destroy(perfq_stats_options* options);
/** @brief Sets the percentiles to report, in this order (each in [0, 100], checked when
 * computing); count 0 reports none.
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for NULL with count > 0 */
PERFQ_API perfq_status perfq_stats_options_set_percentiles(perfq_stats_options* options,
                                                           const double* percentiles, size_t count);
/** @brief Selects the labels reported, in this order (a label absent from the image gets an
 * empty row; repeats are rejected when computing); count 0 restores "every label present".
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for NULL with count > 0 */
PERFQ_API perfq_status perfq_stats_options_set_labels(perfq_stats_options* options,
                                                      const int32_t* labels, size_t count);
/** @brief Whether label 0 counts as a region (nonzero) when no labels are selected. */
PERFQ_API perfq_status perfq_stats_options_set_include_background(perfq_stats_options* options,
                                                                  int include);

/** @brief Statistics of `map` per region with options, partial-volume weights and a baseline
 * (perfq::region_stats with StatsOptions).
 * @param map one volume on the grid `dims` (the follow-up when `baseline` is given)
 * @param labels the region of each voxel
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param mask optional: voxels where it is 0 are ignored
 * @param weights optional partial-volume weights in [0, 1] (e.g. a GM probability map): adds
 *        the ::PERFQ_STAT_WEIGHTED_MEAN … statistics
 * @param baseline optional: the same quantity at baseline: adds the paired change
 *        (::PERFQ_STAT_CHANGE_MEAN …)
 * @param options NULL: defaults
 * @param execution NULL: defaults
 * @param[out] out the table (release with perfq_region_table_destroy) */
PERFQ_API perfq_status perfq_region_stats_with_options(
    const float* map, const int32_t* labels, const size_t dims[3], const double spacing[3],
    const uint8_t* mask, const float* weights, const float* baseline,
    const perfq_stats_options* options, const perfq_execution* execution, perfq_region_table** out);

/** @brief Statistics of `map` inside a mask (perfq::region_stats with a mask): a table of one
 * row, label 1, over the voxels where `region` is nonzero; read it with the accessors above.
 * @param map one volume on the grid `dims` (the follow-up when `baseline` is given)
 * @param region the mask of the region on the same grid
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param weights optional partial-volume weights in [0, 1]: adds the
 *        ::PERFQ_STAT_WEIGHTED_MEAN … statistics
 * @param baseline optional: the same quantity at baseline: adds the paired change
 *        (::PERFQ_STAT_CHANGE_MEAN …)
 * @param options NULL: defaults; only its percentiles are used (its labels and background
 *        setting are ignored)
 * @param execution NULL: defaults
 * @param[out] out the table (release with perfq_region_table_destroy); an empty region gives
 *        a row with no voxel and every statistic 0
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for a NULL map or region, a region whose values are
 *         all NaN or infinite, a percentile outside [0, 100] or a weight outside [0, 1] */
PERFQ_API perfq_status perfq_region_stats_in_mask(const float* map, const uint8_t* region,
                                                  const size_t dims[3], const double spacing[3],
                                                  const float* weights, const float* baseline,
                                                  const perfq_stats_options* options,
                                                  const perfq_execution* execution,
                                                  perfq_region_table** out);

/* ---- white matter and lesions (stats.hpp) ---------------------------------------------- */

/** @brief Normal-appearing white matter: white-matter voxels farther than `dilation_mm`
 * (centre to centre) from every lesion voxel (perfq::normal_appearing_white_matter).
 * @param white_matter WM mask on the grid `dims`
 * @param lesions lesion mask on the same grid
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param dilation_mm lesion dilation radius, ≥ 0 (0 removes the lesions alone)
 * @param execution NULL: defaults
 * @param[out] out the NAWM mask (release with perfq_mask_destroy) */
PERFQ_API perfq_status perfq_normal_appearing_white_matter(
    const uint8_t* white_matter, const uint8_t* lesions, const size_t dims[3],
    const double spacing[3], double dilation_mm, const perfq_execution* execution,
    perfq_mask** out);

/** @brief Where lesions lie relative to the watershed mask (perfq::LesionEnrichment). */
typedef struct perfq_lesion_enrichment {
  size_t lesion_voxels;          /**< |L|: every lesion voxel (WM or not) */
  size_t lesion_in_watershed;    /**< |L ∩ W| */
  size_t wm_voxels;              /**< |WM| */
  size_t watershed_in_wm;        /**< |W ∩ WM| */
  double lesion_volume_ml;       /**< |L| × voxel volume */
  double lesion_in_watershed_ml; /**< |L ∩ W| × voxel volume */
  double lesion_fraction;        /**< |L ∩ W| / |L| (0 without lesions) */
  double watershed_fraction;     /**< |W ∩ WM| / |WM| (0 when WM is empty) */
  int enrichment_defined;        /**< 1 when both fractions' denominators and |W ∩ WM| are > 0 */
  double enrichment;             /**< lesion_fraction / watershed_fraction (0 when undefined) */
} perfq_lesion_enrichment;

/** @brief Lesion-in-watershed enrichment (perfq::lesion_watershed_enrichment): the fraction
 * of the lesion volume inside the watershed mask over the watershed's fraction of WM.
 * @param lesions lesion mask on the grid `dims` (taken as given, not intersected with WM)
 * @param watershed border-zone mask on the same grid
 * @param white_matter WM mask on the same grid
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param[out] out the counts and fractions (left unchanged on failure) */
PERFQ_API perfq_status perfq_lesion_watershed_enrichment(
    const uint8_t* lesions, const uint8_t* watershed, const uint8_t* white_matter,
    const size_t dims[3], const double spacing[3], perfq_lesion_enrichment* out);

/* ---- partial-volume correction (pvc.hpp) ----------------------------------------------- */

/** @brief Options of the local linear regression (perfq::PvcOptions). */
typedef struct perfq_pvc_options perfq_pvc_options;

/** @brief Creates the default options: a 5 × 5 × 1 neighbourhood, minimum fraction 0.1.
 * @param[out] out the new handle (release with perfq_pvc_options_destroy) */
PERFQ_API perfq_status perfq_pvc_options_create(perfq_pvc_options** out);
/** @brief Releases PVC options (NULL is accepted). */
PERFQ_API void perfq_pvc_options_destroy(perfq_pvc_options* options);
/** @brief Sets the neighbourhood: `kernel_xy` voxels in x and y, `kernel_z` in z (odd,
 * positive).
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for an even or non-positive size */
PERFQ_API perfq_status perfq_pvc_options_set_kernel(perfq_pvc_options* options, int kernel_xy,
                                                    int kernel_z);
/** @brief A voxel gets a GM (WM) value only when its own GM (WM) fraction is at least this.
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT outside (0, 1] */
PERFQ_API perfq_status perfq_pvc_options_set_min_fraction(perfq_pvc_options* options,
                                                          double min_fraction);

/** @brief Grey- and white-matter CBF maps (result of perfq_partial_volume_correct). */
typedef struct perfq_pvc_maps perfq_pvc_maps;

/** @brief Partial-volume correction by local linear regression (Asllani et al. 2008;
 * perfq::partial_volume_correct): in each neighbourhood, `CBF = p_gm CBF_gm + p_wm CBF_wm`
 * solved by least squares.
 * @param cbf the map to correct, one volume on the grid `dims`
 * @param gm, wm grey- and white-matter fractions in [0, 1] on the same grid
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm
 * @param usable optional: only voxels where it is nonzero enter the regressions (e.g. fit
 *        status 0); non-finite CBF values never do
 * @param options NULL: defaults
 * @param execution NULL: defaults
 * @param[out] out the maps (release with perfq_pvc_maps_destroy) */
PERFQ_API perfq_status perfq_partial_volume_correct(const float* cbf, const float* gm,
                                                    const float* wm, const size_t dims[3],
                                                    const double spacing[3], const uint8_t* usable,
                                                    const perfq_pvc_options* options,
                                                    const perfq_execution* execution,
                                                    perfq_pvc_maps** out);
/** @brief Releases PVC maps (NULL is accepted). */
PERFQ_API void perfq_pvc_maps_destroy(perfq_pvc_maps* maps);
/** @brief Number of voxels of each map. 0 for a NULL handle. */
PERFQ_API size_t perfq_pvc_maps_voxel_count(const perfq_pvc_maps* maps);
/** @brief Grey-matter CBF (input units); 0 where not valid. NULL for a NULL handle. */
PERFQ_API const float* perfq_pvc_maps_cbf_gm(const perfq_pvc_maps* maps);
/** @brief White-matter CBF (input units); 0 where not valid. NULL for a NULL handle. */
PERFQ_API const float* perfq_pvc_maps_cbf_wm(const perfq_pvc_maps* maps);
/** @brief Per voxel: bit 0 set when the GM value is valid, bit 1 when the WM value is. */
PERFQ_API const uint8_t* perfq_pvc_maps_valid(const perfq_pvc_maps* maps);

/* ---- synthetic phantom (phantom.hpp) --------------------------------------------------- */

/** @brief Options of the phantom (perfq::PhantomOptions). */
typedef struct perfq_phantom_options perfq_phantom_options;

/** @brief Creates the default phantom options: PCASL, one PLD of 1.8 s, τ 1.8 s, 4 pairs per
 * delay, noise-free, seed 1, 60 × 72 × 56 voxels of 3 mm, no lesions, not time-encoded.
 * @param[out] out the new handle (release with perfq_phantom_options_destroy) */
PERFQ_API perfq_status perfq_phantom_options_create(perfq_phantom_options** out);
/** @brief Releases phantom options (NULL is accepted). */
PERFQ_API void perfq_phantom_options_destroy(perfq_phantom_options* options);
/** @brief Sets the delays (PLDs, or TIs for PASL), seconds, each with `repeats` pairs. */
PERFQ_API perfq_status perfq_phantom_options_set_delays(perfq_phantom_options* options,
                                                        const double* delays, size_t count,
                                                        size_t repeats);
/** @brief Sets the grid (each axis ≥ 16 voxels) and the isotropic voxel size in mm. */
PERFQ_API perfq_status perfq_phantom_options_set_grid(perfq_phantom_options* options,
                                                      const size_t dims[3], double voxel_mm);
/** @brief Sets the SNR of one control−label pair in grey matter (0: noise-free; time-encoded:
 * the first-labelled sub-bolus's mean grey-matter ΔM over the SD of a pair's ΔM noise) and the
 * noise seed. */
PERFQ_API perfq_status perfq_phantom_options_set_noise(perfq_phantom_options* options, double snr,
                                                       uint64_t seed);
/** @brief PASL (QUIPSS II) with bolus cut-off TI1 (nonzero `pasl`), or PCASL with labeling
 * duration `duration` (zero `pasl`), seconds. */
PERFQ_API perfq_status perfq_phantom_options_set_labeling(perfq_phantom_options* options, int pasl,
                                                          double duration);
/** @brief Sets the number of white-matter lesions (mostly inside the border zones). */
PERFQ_API perfq_status perfq_phantom_options_set_lesions(perfq_phantom_options* options,
                                                         size_t lesions);
/** @brief Makes the phantom time-encoded PCASL (perfq::PhantomOptions::time_encoded): its
 * series then holds `repeats` blocks of `size` encoded volumes (cycle 0 listed as control,
 * the others as label), each cycle the control signal minus the ΔM of every sub-bolus it
 * labels; the one delay set with perfq_phantom_options_set_delays() is the delay after the
 * last sub-bolus. Read the encoding back with perfq_phantom_time_encoding().
 * @param options the options to change
 * @param size N: 4, 8 or 12 (Walsh: 4 or 8); 0 turns time encoding off (the other arguments
 *        are then ignored)
 * @param matrix_type "Hadamard" or "Walsh" (as perfq_time_encoding_create()); NULL: Hadamard
 * @param durations the N − 1 sub-bolus durations in labeling order, seconds, each > 0; NULL
 *        with `count` 0: N − 1 equal sub-boli making a 2.8 s labeling train
 * @param count number of values in `durations`: 0 or N − 1
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for an unsupported size or type or wrong durations
 *         (PASL and several delays are refused when building) */
PERFQ_API perfq_status perfq_phantom_options_set_time_encoded(perfq_phantom_options* options,
                                                              size_t size, const char* matrix_type,
                                                              const double* durations,
                                                              size_t count);

/** @brief A synthetic ASL dataset with its ground truth. */
typedef struct perfq_phantom perfq_phantom;

/** @brief The float images of a phantom. */
typedef enum perfq_phantom_map PERFQ_C_ENUM_BASE {
  PERFQ_PHANTOM_M0 = 0,             /**< fully relaxed M0 (separate scan) */
  PERFQ_PHANTOM_CBF = 1,            /**< true CBF, ml/100 g/min */
  PERFQ_PHANTOM_ATT = 2,            /**< true ATT, s */
  PERFQ_PHANTOM_BORDER_DISTANCE = 3 /**< mm to the nearest territory border (brain voxels) */
} perfq_phantom_map;

/** @brief The uint8 images of a phantom. */
typedef enum perfq_phantom_mask PERFQ_C_ENUM_BASE {
  PERFQ_PHANTOM_TISSUE = 0,      /**< 0 background, 1 CSF, 2 grey matter, 3 white matter */
  PERFQ_PHANTOM_BRAIN = 1,       /**< grey or white matter */
  PERFQ_PHANTOM_BORDER_ZONE = 2, /**< designed border zones */
  PERFQ_PHANTOM_VENTRICLES = 3,  /**< lateral ventricles */
  PERFQ_PHANTOM_LESIONS = 4      /**< white-matter lesions (all 0 unless requested) */
} perfq_phantom_mask;

/** @brief Builds the phantom (perfq::make_phantom).
 * @param options NULL: defaults
 * @param[out] out the phantom (release with perfq_phantom_destroy) */
PERFQ_API perfq_status perfq_phantom_create(const perfq_phantom_options* options,
                                            perfq_phantom** out);
/** @brief Releases a phantom (NULL is accepted). */
PERFQ_API void perfq_phantom_destroy(perfq_phantom* phantom);
/** @brief The grid: `dims` receives 3 sizes, `spacing` (may be NULL) 3 voxel sizes in mm. */
PERFQ_API perfq_status perfq_phantom_geometry(const perfq_phantom* phantom, size_t dims[3],
                                              double spacing[3]);
/** @brief The acquired series: control/label pairs, `*volumes` volumes. */
PERFQ_API const float* perfq_phantom_series(const perfq_phantom* phantom, size_t* volumes);
/** @brief The ::perfq_volume_type of each volume of the series. */
PERFQ_API const int32_t* perfq_phantom_context(const perfq_phantom* phantom);
/** @brief A copy of the series' protocol (one delay per volume).
 * @param phantom the phantom (not NULL)
 * @param[out] out the new handle (release with perfq_protocol_destroy) */
PERFQ_API perfq_status perfq_phantom_protocol(const perfq_phantom* phantom, perfq_protocol** out);
/** @brief One float image (NULL for an unknown one). */
PERFQ_API const float* perfq_phantom_map_data(const perfq_phantom* phantom,
                                              perfq_phantom_map which);
/** @brief One uint8 image (NULL for an unknown one). */
PERFQ_API const uint8_t* perfq_phantom_mask_data(const perfq_phantom* phantom,
                                                 perfq_phantom_mask which);
/** @brief Territories: 1 ACA, 2 MCA, 3 PCA within grey and white matter, 0 elsewhere. */
PERFQ_API const int32_t* perfq_phantom_territories(const perfq_phantom* phantom);
/** @brief A copy of a time-encoded phantom's encoding (matrix, sub-bolus durations and
 * delays), to decode its series with perfq_prepare_time_encoded().
 * @param phantom the phantom (not NULL)
 * @param[out] out the new handle (release with perfq_time_encoding_destroy)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT when the phantom is not time-encoded */
PERFQ_API perfq_status perfq_phantom_time_encoding(const perfq_phantom* phantom,
                                                   perfq_time_encoding** out);

/* ---- quality indices (quality.hpp) ------------------------------------------------------ */

/** @brief The quality indices of a CBF map (result of perfq_quality_indices; names,
 * definitions and references in quality.hpp and docs/quality.md). */
typedef struct perfq_quality_report perfq_quality_report;

/** @brief Computes the quality indices of a CBF map (perfq::quality_indices).
 * @param cbf one volume of CBF (ml/100 g/min, or relative with `relative`) on the grid `dims`
 * @param gm grey-matter probabilities in [0, 1] on the same grid, or NULL
 * @param wm white-matter probabilities, or NULL
 * @param csf CSF probabilities, or NULL (the QEI needs all three)
 * @param dims the grid: 3 sizes (x, y, z), each at least 1
 * @param spacing 3 voxel sizes in mm, each > 0, or NULL for 1 mm (the QEI's smoothing)
 * @param brain the brain (0/1), or NULL: every voxel with a value
 * @param status voxel status codes (::perfq_voxel_status), or NULL: every finite voxel counts
 * @param tissue_threshold probability above which a voxel counts as a tissue, in (0, 1); 0
 *        for the default 0.7
 * @param relative nonzero when `cbf` is relative CBF (no absolute thresholds, no QEI)
 * @param[out] out the report (release with perfq_quality_report_destroy)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for a probability outside [0, 1] or not finite, or a
 *         threshold out of range */
PERFQ_API perfq_status perfq_quality_indices(const float* cbf, const float* gm, const float* wm,
                                             const float* csf, const size_t dims[3],
                                             const double spacing[3], const uint8_t* brain,
                                             const uint8_t* status, double tissue_threshold,
                                             int relative, perfq_quality_report** out);
/** @brief Releases a report (NULL is accepted). */
PERFQ_API void perfq_quality_report_destroy(perfq_quality_report* report);
/** @brief Number of indices. 0 for a NULL handle. */
PERFQ_API size_t perfq_quality_report_size(const perfq_quality_report* report);
/** @brief The name of index `k` (e.g. "qei"); NULL for a NULL handle or k out of range. */
PERFQ_API const char* perfq_quality_report_name(const perfq_quality_report* report, size_t k);
/** @brief The value of the index named `name`, and whether it is defined (when not, the value
 * is 0 and perfq_quality_report_why_not says why).
 * @param report the report
 * @param name an index name
 * @param[out] value its value
 * @param[out] defined 1 when defined, else 0 (may be NULL)
 * @return ::PERFQ_ERROR_INVALID_ARGUMENT for an unknown name */
PERFQ_API perfq_status perfq_quality_report_value(const perfq_quality_report* report,
                                                  const char* name, double* value, int* defined);
/** @brief Why the index named `name` is not defined ("" when it is); NULL for an unknown
 * name or a NULL handle. Valid while the report lives. */
PERFQ_API const char* perfq_quality_report_why_not(const perfq_quality_report* report,
                                                   const char* name);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PERFQ_PERFQ_H */
