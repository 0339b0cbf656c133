/// @file
/// @brief ASL-BIDS input (`*_asl.nii[.gz]`, its JSON sidecar, `*_aslcontext.tsv`,
/// `*_m0scan.nii[.gz]` with its sidecar) and the phantom written as an ASL-BIDS dataset.
/// Part of perfq::io.
#pragma once

#include <perfq/asl_series.hpp>
#include <perfq/image.hpp>
#include <perfq/phantom.hpp>
#include <perfq/protocol.hpp>

#include <optional>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {

/// @brief Parses an ASL sidecar's JSON text into a protocol. Fields read:
/// `ArterialSpinLabelingType`, `PostLabelingDelay`, `LabelingDuration`, `BolusCutOffFlag`,
/// `BolusCutOffDelayTime`, `MRAcquisitionType`, `SliceTiming`, `LabelingEfficiency`,
/// `BackgroundSuppression`, `BackgroundSuppressionNumberPulses`, `M0Type`, `M0Estimate`,
/// `RepetitionTimePreparation`, `MagneticFieldStrength`.
/// @param json_text the sidecar's contents
/// @param source the file name used in error messages
/// @throws InputError naming `source` and the field: invalid JSON, a missing required field,
/// a value of the wrong type, an unknown labeling or M0 type, non-positive times.
PERFQ_IO_API AslProtocol parse_asl_sidecar(const std::string& json_text,
                                           const std::string& source = {});

/// @brief Parses `*_aslcontext.tsv` text (header `volume_type`, one row per volume).
/// @throws InputError naming `source`, field "volume_type" and the row for unknown types.
PERFQ_IO_API std::vector<VolumeType> parse_aslcontext(const std::string& tsv_text,
                                                      const std::string& source = {});

/// @brief One ASL series with everything next to it.
struct AslDataset {
  std::string asl_path;      ///< the `*_asl.nii[.gz]` file
  std::string sidecar_path;  ///< its `.json`
  std::string context_path;  ///< `*_aslcontext.tsv`
  std::string m0_path;       ///< `*_m0scan.nii[.gz]` when M0Type is Separate, else empty
  std::string prefix;        ///< the file name before `_asl` (e.g. "sub-01_ses-1"), for outputs
  Series<float> asl;                ///< the series as stored (scaled to float)
  std::vector<VolumeType> context;  ///< the type of each volume
  AslProtocol protocol;      ///< M0 repetition time taken from the m0scan sidecar if separate
  std::optional<Volume<float>> m0;  ///< the separate M0 image (3D), when M0Type is Separate
};

/// @brief Reads and validates an ASL-BIDS series given the path of its `*_asl.nii[.gz]`.
/// @throws InputError naming the file and field on anything missing or contradictory: a
/// timing list whose length is not the number of volumes, no LabelingDuration for PCASL,
/// aslcontext rows ≠ volumes, a missing m0scan for M0Type Separate, ASL and M0 on
/// different grids, a 4D M0, NaN-only or unreadable images.
PERFQ_IO_API AslDataset read_asl_bids(const std::string& asl_path);

/// @brief Writes a phantom as an ASL-BIDS dataset under `root`: `dataset_description.json`,
/// `sub-<label>/perf/sub-<label>_{asl.nii.gz,asl.json,aslcontext.tsv,m0scan.nii.gz,m0scan.json}`
/// and the truth under `derivatives/truth/sub-<label>/perf/`: `_cbf`, `_att`, `_dseg`,
/// `_territories`, `_mask`, `_borderdistance` images, the masks
/// `_label-{GM,WM,ventricles,borderzone}_mask` (and `_label-lesion_mask` when the phantom has
/// lesions), and the tables `_dseg.tsv`/`_territories.tsv`.
/// @return the path of the written `*_asl.nii.gz`
PERFQ_IO_API std::string write_phantom_bids(const Phantom& phantom, const std::string& root,
                                            const std::string& subject = "01");

}  // namespace io
PERFQ_NAMESPACE_END
