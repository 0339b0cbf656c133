/// @file
/// @brief A synthetic, brain-shaped ASL dataset with known truth: the demo's built-in data
/// and a fixture for tests.
///
/// An ellipsoidal brain (cortical grey-matter shell, white matter, lateral ventricles,
/// surrounding CSF) split into three arterial territories in each hemisphere: anterior
/// (ACA, label 1), middle (MCA, label 2) and posterior (PCA, label 3), by the angle around
/// the vertical axis through the brain's centre. Near the territories' borders the transit
/// time rises and CBF falls, as in watershed zones. Signals follow the Buxton kinetic model
/// (detail/kinetic.hpp) with apparent tissue T1 equal to blood T1 (the white-paper variant),
/// so single-delay white-paper quantification is exact where the bolus has fully arrived.
///
/// For the watershed masks the phantom also gives the lateral ventricles, its designed border
/// zones (GM/WM voxels within kPhantomBorderZoneMm of a territory border, where the transit
/// time has risen by at least 0.5 e^(−1/2) ≈ 0.30 s) and, on request, white-matter lesions
/// placed mostly inside those border zones, as in multiple sclerosis.
#pragma once

#include <perfq/asl_series.hpp>
#include <perfq/image.hpp>
#include <perfq/protocol.hpp>
#include <perfq/time_encoded.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

PERFQ_NAMESPACE_BEGIN

/// @brief Tissue labels of the phantom (BIDS dseg-like).
enum PhantomTissue : std::uint8_t { kBackground = 0, kCsf = 1, kGreyMatter = 2, kWhiteMatter = 3 };

/// @brief Half-width (mm) of the phantom's designed border zones: the σ of its watershed
/// bump, the distance from a territory border within which the timing is perturbed most.
constexpr double kPhantomBorderZoneMm = 8.0;

/// @brief Options of the phantom.
struct PhantomOptions {
  std::uint64_t seed = 1;      ///< noise seed
  /// Signal-to-noise ratio of one control−label pair in grey matter: mean grey-matter ΔM
  /// (at the first delay; time-encoded: of the first-labelled sub-bolus) divided by the
  /// standard deviation of a pair's ΔM noise (each image has that SD over √2). 0 = noise-free.
  double snr = 0.0;
  /// PCASL: post-labeling delays; PASL: inversion times (s). Each delay gets `repeats` pairs.
  /// Time-encoded: exactly one value, the delay after the last sub-bolus.
  std::vector<double> delays{1.8};
  bool pasl = false;             ///< PASL (QUIPSS II) instead of PCASL
  double labeling_duration = 1.8;  ///< PCASL τ (s)
  double bolus_cutoff = 0.8;       ///< PASL TI1 (s)
  std::size_t repeats = 4;         ///< control/label pairs per delay
  std::array<std::size_t, 3> dims{60, 72, 56};  ///< grid (x: right→left, y: anterior→posterior)
  double voxel_mm = 3.0;                        ///< isotropic voxel size
  /// White-matter lesions (spheres of radius max(4.5 mm, 1.5 voxels)), about two in three
  /// centred inside the designed border zones. They mark voxels only: the perfusion truth
  /// and the signals are unchanged. Drawn from their own random stream (seeded by `seed`),
  /// so the noise does not depend on this number.
  std::size_t lesions = 0;
  /// Time-encoded PCASL (time_encoded.hpp): the encoding matrix size N (4, 8 or 12; 0 = off).
  /// The series then holds `repeats` blocks of N encoded volumes; cycle i of a block is the
  /// control signal minus the ΔM of every sub-bolus labelled in that cycle, each sub-bolus's
  /// ΔM computed on its own from the kinetic model with its duration and effective PLD.
  std::size_t time_encoded = 0;
  /// Time-encoded: the row order of the generated matrix (encoding_matrix); N = 12 exists
  /// only as Hadamard. Unused when `time_encoded` is 0.
  TimeEncodedMatrixType time_encoded_type = TimeEncodedMatrixType::Hadamard;
  /// Sub-bolus durations τ_k (s) in labeling order, N − 1 values; empty: N − 1 equal sub-boli
  /// making a 2.8 s labeling train (0.4 s each for N = 8).
  std::vector<double> sub_bolus_durations;
};

/// @brief The phantom: acquisition, data and ground truth.
struct Phantom {
  Series<float> asl;                ///< control/label pairs, control first
  std::vector<VolumeType> context;  ///< volume types of `asl`
  AslProtocol protocol;             ///< PLD (or TI) per volume, τ or TI1, M0 separate
  Volume<float> m0;                 ///< fully relaxed M0 (TR 6 s), separate scan
  Physiology physiology;            ///< constants used to synthesise the signal (3 T)
  Volume<float> cbf;                ///< true CBF, ml/100 g/min (0 outside tissue and in CSF)
  Volume<float> att;                ///< true arterial transit time, s (0 where CBF is 0)
  Volume<std::uint8_t> tissue;      ///< PhantomTissue per voxel
  Mask brain;                       ///< grey or white matter
  Volume<std::int32_t> territories;  ///< 1 ACA, 2 MCA, 3 PCA within GM/WM; 0 elsewhere
  Volume<float> border_distance;    ///< mm to the nearest territory border (GM/WM voxels)
  Mask ventricles;                  ///< the lateral ventricles (CSF inside the white matter)
  Mask border_zone;                 ///< designed border zones: border_distance ≤ 8 mm (brain)
  Mask lesions;                     ///< white-matter lesions (empty unless requested)
  /// Time-encoded phantoms: the encoding (matrix, sub-bolus durations and PLDs); empty otherwise.
  std::optional<TimeEncoding> time_encoding;
  /// Time-encoded phantoms: the matrix type of PhantomOptions::time_encoded_type (written as
  /// the sidecar's `TimeEncodedMatrixType`); left at Hadamard otherwise.
  TimeEncodedMatrixType time_encoded_type = TimeEncodedMatrixType::Hadamard;
};

/// @brief The grid of the default phantom's field of view (180 × 216 × 168 mm: 60 × 72 × 56
/// voxels of 3 mm) at another isotropic voxel size, each axis rounded to whole voxels: set
/// PhantomOptions::dims to it with PhantomOptions::voxel_mm = `voxel_mm` for the same head at
/// that resolution (e.g. 1.15 mm: 157 × 188 × 146 voxels, about 1.03 M of them brain).
/// @throws InvalidArgument for a voxel size that is not finite, not positive, or so large that
/// an axis would have fewer than 16 voxels (above 10.5 mm).
PERFQ_API std::array<std::size_t, 3> phantom_dims(double voxel_mm);

/// @brief Builds the phantom.
/// @throws InvalidArgument for an empty delay list, non-positive times, a grid smaller than
/// 16 voxels along any axis, or a negative SNR; time-encoded: PASL, more than one delay, an
/// unsupported matrix size or a number of sub-bolus durations other than N − 1.
PERFQ_API Phantom make_phantom(const PhantomOptions& options = {});

PERFQ_NAMESPACE_END
