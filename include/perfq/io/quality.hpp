/// @file
/// @brief Quality indices as files: a series' `<prefix>_desc-qualitycontrol_cbf.tsv` (one row)
/// with its JSON sidecar, and a cohort's `group_qualitycontrol.tsv` with the outliers flagged.
/// Part of perfq::io.
#pragma once

#include <perfq/io/bids.hpp>
#include <perfq/quality.hpp>

#include <cstddef>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {

/// @brief The table of one series: a header of index names (quality_index_names' order) and
/// one row of values (`%.10g`; `n/a` for an index not defined), tab-separated, each line
/// ending in a newline.
PERFQ_IO_API std::string quality_table_tsv(const QualityReport& report);

/// @brief The table's JSON sidecar (BIDS: one object per column with `Description` and
/// `Units`; the reference of each index), then `NotDefined` (each undefined index with the
/// reason), `TissueThreshold`, `QeiSmoothingFWHM` (mm), `RelativeCbf` (true for a map of
/// relative CBF, whose CBF indices are in units of the brain's median), `Sources` and
/// `GeneratedBy`.
/// @param report the indices
/// @param sources the files the indices came from (the CBF map, the tissue maps)
PERFQ_IO_API std::string quality_table_json(const QualityReport& report,
                                            const std::vector<std::string>& sources);

/// @brief One series' row of a group's quality table.
struct QualityRow {
  std::string source;   ///< the series' table, relative to the folder gathered
  std::string subject;  ///< the `sub-` entity ("" when absent)
  std::string session;  ///< the `ses-` entity ("" when absent)
  std::string run;      ///< the `run-` entity ("" when absent)
  std::string prefix;   ///< the table's name before `_desc-qualitycontrol_cbf.tsv`
  /// Values by index, in GroupQuality::columns' order; `defined[k]` false for `n/a`.
  std::vector<double> values;
  std::vector<bool> defined;  ///< whether values[k] is a number
  /// The indices on which this series is an outlier of the cohort (GroupQuality's rule).
  std::vector<std::string> outliers;
  /// Relative CBF (the table's sidecar says `RelativeCbf`): not on the cohort's scale, so
  /// left out of the fences and never flagged.
  bool relative = false;
};

/// @brief A cohort's quality indices, with the outliers of each index flagged.
///
/// Rule (Tukey's fences on the cohort, Tukey 1977): for each
/// index with at least 4 defined values, a series is an outlier when its value lies below
/// Q1 − 1.5 × IQR or above Q3 + 1.5 × IQR (Q1, Q3 the quartiles by linear interpolation,
/// IQR = Q3 − Q1). Only the direction that marks poor quality counts where one does: a low
/// QEI, low GM CBF, low GM/WM ratio; a high sCoV or share of negative or implausibly high
/// values; both directions for the rest.
/// Series of relative CBF (QualityRow::relative) are left out of the fences and never flagged.
struct GroupQuality {
  std::vector<std::string> columns;  ///< index names (quality_index_names' order)
  std::vector<QualityRow> rows;      ///< one per series, sorted by their table's path
  std::vector<double> lower_fence;   ///< per column (0 with fewer than 4 values)
  std::vector<double> upper_fence;   ///< per column (0 with fewer than 4 values)
  std::vector<bool> fenced;          ///< per column: whether the rule applied
};

/// @brief Gathers every `*_desc-qualitycontrol_cbf.tsv` under `root/sub-*/` (hidden folders
/// skipped), kept when its subject and session are among those listed (empty lists keep all),
/// and flags the outliers.
/// @throws InputError naming a table that cannot be read, has no row or a row whose field
/// count differs from its header, or a value that is neither a number nor `n/a`
PERFQ_IO_API GroupQuality gather_quality_tables(const std::string& root,
                                                const std::vector<std::string>& participants = {},
                                                const std::vector<std::string>& sessions = {});

/// @brief The group table `group_qualitycontrol.tsv`: the leading columns subject, session,
/// run, source, cbf_units (`mL/100g/min`, or `relative`), then the indices, then `outliers`
/// (the flagged indices, comma-separated, or `n/a`).
PERFQ_IO_API std::string group_quality_tsv(const GroupQuality& group);

/// @brief Its sidecar `group_qualitycontrol.json`: every column described (the indices as in
/// quality_table_json), the outlier rule, and the fences per index.
PERFQ_IO_API std::string group_quality_json(const GroupQuality& group);

}  // namespace io
PERFQ_NAMESPACE_END
