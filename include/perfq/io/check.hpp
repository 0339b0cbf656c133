/// @file
/// @brief An ASL-BIDS doctor: what stands between a series as the DICOM converter wrote it
/// and a series perfq can quantify — missing required fields, values in the wrong unit,
/// vendor field names, a missing aslcontext (with what the images suggest) — each with the
/// evidence and the fix. What `perfq check` runs. Part of perfq::io.
#pragma once

#include <perfq/export.hpp>
#include <perfq/version.hpp>

#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {

/// @brief How much a finding matters.
enum class CheckSeverity {
  Error,   ///< perfq cbf refuses the series (or would quantify it wrongly) until it is fixed
  Warning  ///< suspicious, not BIDS, or a default that perfq cbf would read in its place
};

/// @brief "error" or "warning".
PERFQ_IO_API const char* to_string(CheckSeverity severity) noexcept;

/// @brief One problem of a series.
struct CheckFinding {
  CheckSeverity severity = CheckSeverity::Error;  ///< whether perfq cbf can go on
  std::string file;                               ///< the file at fault
  std::string field;    ///< the field (or "volume K"), or empty for the file as a whole
  std::string problem;  ///< what is wrong, with the evidence
  std::string fix;      ///< what to do about it
  /// A value that would fix it, as JSON text (e.g. "2.0" for milliseconds read as seconds, a
  /// field's value under its BIDS name), or empty when none can be proposed.
  std::string proposed;
};

/// @brief The findings of one series.
struct SeriesCheck {
  std::string asl_path;                ///< the series (its NIfTI image)
  std::string sidecar_path;            ///< its JSON sidecar
  std::vector<CheckFinding> findings;  ///< in the order checked
  /// The volume types the images suggest when the aslcontext is missing (one per volume:
  /// "m0scan", "control", "label"), empty when it exists or nothing can be told.
  std::vector<std::string> suggested_context;
  /// A converter's one-volume series beside this one that looks like its M0 scan (a
  /// description of this series' own plus "m0", the same grid), when the series has neither
  /// M0 volumes nor an `_m0scan` and no M0Type says otherwise; empty when none.
  std::string m0_candidate;
  /// @brief Whether no finding is an error: perfq cbf can quantify the series as it is.
  PERFQ_IO_API bool ready() const noexcept;
};

/// @brief Checks one series: `asl_path` is its NIfTI image, named as BIDS has it
/// (`<prefix>_asl.nii[.gz]`) or as the converter wrote it (any `<name>.nii[.gz]` with
/// `<name>.json` beside it). Reads the sidecar, the aslcontext and the m0scan sidecar when
/// they exist, and the image's volumes to suggest an aslcontext when it does not. Never
/// throws for what it finds: unreadable files are findings too.
PERFQ_IO_API SeriesCheck check_series(const std::string& asl_path);

/// @brief What write_proposal wrote.
struct Proposal {
  std::string asl_path;            ///< the proposed series' image (a link to the original)
  std::vector<std::string> files;  ///< every file written, in `out_dir`
  /// Each value supplied, as "<field>: <value> (<why>)"; the sidecar lists them too, under
  /// `PerfqProposed`.
  std::vector<std::string> supplied;
};

/// @brief Writes into `out_dir` the series of `check` completed with what its findings
/// propose, for the user to review: `<name>_asl.json` (the sidecar with each proposed value
/// and, under the key `PerfqProposed`, every value supplied and why), `<name>_aslcontext.tsv`
/// (the images' suggestion, when it was missing) and `<name>_asl.nii.gz` (or `.nii`), a link
/// to the image; with an `m0_candidate`, also `<name>_m0scan.nii[.gz]` (a link to it) and
/// `<name>_m0scan.json` (its sidecar with what its own check proposes, M0Type removed). `<name>` is
/// the series' prefix, or the converter's file name. The input is never touched; the files are
/// written all together or not at all, and existing ones are replaced only with `overwrite`. Values
/// no finding can propose (e.g. a labeling duration the sidecar lacks) stay missing: check the
/// proposal again (check_series on `asl_path`).
/// @throws InvalidArgument for a one-volume series (an M0 scan: nothing to propose)
/// @throws Error when a file cannot be written or exists already
PERFQ_IO_API Proposal write_proposal(const SeriesCheck& check, const std::string& out_dir,
                                     bool overwrite = false);

/// @brief The ASL series under `path`: the file itself, or every `*_asl.nii[.gz]` below a
/// folder, and every other NIfTI whose sidecar has `ArterialSpinLabelingType` (a converter's
/// output not yet named as BIDS), sorted.
PERFQ_IO_API std::vector<std::string> find_asl_series(const std::string& path);

}  // namespace io
PERFQ_NAMESPACE_END
