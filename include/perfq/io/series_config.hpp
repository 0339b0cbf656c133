/// @file
/// @brief Options per series from a configuration file: what `perfq bids --config` and
/// `perfq cbf --config` read, so that one run can quantify a dataset that mixes vendors (a
/// GE series that needs `--m0-scale`, another without M0). Part of perfq::io.
///
/// The file is a JSON list of entries, each `{"filter": {…}, "options": {…}}`:
///
/// ```json
/// [
///   {"filter": {"Manufacturer": "GE"}, "options": {"m0_scale": 96}},
///   {"filter": {"subject": ["03", "07"], "run": 2}, "options": {"bs_pulses": 4}},
///   {"options": {"att_prior": true}}
/// ]
/// ```
///
/// - **options** (required, an object): perfq cbf's options (series_options()) named without
///   the leading dashes and with underscores (`--m0-scale` → `m0_scale`). An option that
///   takes a value takes a JSON number or string (`96`, `"buxton"`, `"masks/brain.nii.gz"`);
///   a flag takes `true` (set) or `false` (not set: it unsets an earlier entry's `true`).
///   Values are checked as on the command line when the file is read. A relative file name
///   (`mask`, `ref_mask`, `pvc_gm`, `pvc_wm`) is relative to the configuration file's folder.
///   Output and execution options (`output`, `overwrite`, `uncompressed`, `backend`, `device`,
///   `threads`) are the command line's only.
/// - **filter** (optional, an object; absent or `{}`: every series): every key must match.
///   The BIDS entities of the series' file name, by name and without their prefix: `subject`,
///   `session`, `acquisition`, `reconstruction`, `direction`, `run` (a string is the label,
///   exactly: `"01"` matches `sub-01`, not `sub-1`; a whole number matches a label of digits
///   of that value: `"run": 1` matches `run-1` and `run-01`). Any key that begins with a
///   capital letter is a field of the series' sidecar after BIDS inheritance (the
///   `*_asl.json` files from the dataset root down): strings match exactly, letter case
///   included (`"Manufacturer": "GE"` does not match `"ge"`); numbers by value (`3` matches
///   `3.0`); booleans exactly; a field that is absent, null, a list or an object matches no
///   value. A list of values means *any of them* (`"subject": ["03", "07"]`).
/// - **description** (optional, a string): a note for the reader, not used.
///
/// Every entry whose filter matches applies, in the file's order: a later entry's value of
/// an option replaces an earlier one's. Then the command line's options replace the
/// configuration's (the command line beats every entry). Entries are numbered from 0 in
/// errors and in the record.
#pragma once

#include <perfq/export.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/version.hpp>

#include <cstddef>
#include <map>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {

/// @brief One option an entry sets.
struct ConfigOption {
  std::string key;   ///< as written in the file: "m0_scale"
  std::string name;  ///< perfq cbf's name: "--m0-scale"
  /// set_series_option's text ("96"; a relative file name joined to the configuration
  /// file's folder); empty for a flag.
  std::string value;
  bool set = true;   ///< false for a flag given `false`
  std::string json;  ///< the value as a JSON text for the record (`96`, `"buxton"`, `true`)
};

/// @brief One key of an entry's filter.
struct ConfigCondition {
  std::string key;  ///< as written: "subject", "run", or a sidecar field ("Manufacturer")
  /// The BIDS entity ("sub", "ses", "acq", "rec", "dir", "run"); empty for a sidecar field.
  std::string entity;
  std::vector<std::string> values;  ///< accepted values (any of them), each as JSON text
};

/// @brief One entry of a configuration file.
struct ConfigEntry {
  std::vector<ConfigCondition> filter;  ///< all must match; none: every series matches
  std::vector<ConfigOption> options;    ///< in the file's order
};

/// @brief A configuration file, read and checked.
struct SeriesConfig {
  std::string path;                  ///< the file (as given), named in errors and the record
  std::vector<ConfigEntry> entries;  ///< in the file's order
};

/// @brief What a caller lets a configuration set, beyond the output and execution options
/// that no configuration sets.
struct ConfigRules {
  /// perfq cbf's names of options a configuration may not set (e.g. perfq bids refuses
  /// "--mask": it finds the brain mask by convention).
  std::vector<std::string> refused;
  std::string why;  ///< the reason, added to the error of a refused option
};

/// @brief Parses and checks a configuration's JSON text (format: this file's description).
/// @param json_text the file's contents
/// @param source the file's name: named in errors; relative file names in options are
/// relative to its folder
/// @param rules options refused on top of the output and execution ones
/// @throws InputError naming `source`, the entry and the key: invalid JSON, not a list, an
/// entry key other than filter/options/description, a key given twice, an unknown or refused
/// option, an unknown filter key, a value of the wrong type, a value out of range.
PERFQ_IO_API SeriesConfig parse_series_config(const std::string& json_text,
                                              const std::string& source,
                                              const ConfigRules& rules = {});

/// @brief Reads and checks the configuration file at `path` (parse_series_config).
/// @throws InputError naming the file: missing, unreadable, or any refusal of
/// parse_series_config.
PERFQ_IO_API SeriesConfig read_series_config(const std::string& path,
                                             const ConfigRules& rules = {});

/// @brief What filters test of a series.
struct SeriesFacts {
  std::map<std::string, std::string> entities;  ///< of its file name: "sub" → "01", "run" → "2"
  std::string sidecar_json;  ///< its sidecar after BIDS inheritance (a JSON object's text)
};

/// @brief The facts of the ASL-BIDS series at `asl_path` (`*_asl.nii[.gz]`): the entities of
/// its name, and the `*_asl.json` files that apply to it merged as read_asl_bids merges them
/// (`{}` when none applies: then no sidecar filter matches). Reads no image.
/// @throws InputError naming the file: not named `*_asl.nii[.gz]`, a sidecar that is not a
/// JSON object, two sidecars of one folder that apply.
PERFQ_IO_API SeriesFacts series_facts(const std::string& asl_path);

/// @brief Whether `entry`'s filter matches a series (rules: this file's description).
/// @throws InputError when `facts.sidecar_json` is not a JSON object.
PERFQ_IO_API bool config_entry_matches(const ConfigEntry& entry, const SeriesFacts& facts);

/// @brief The entries of `config` that match a series, in order (numbered from 0).
/// @throws InputError when `facts.sidecar_json` is not a JSON object.
PERFQ_IO_API std::vector<std::size_t> matching_entries(const SeriesConfig& config,
                                                       const SeriesFacts& facts);

/// @brief A series' request built from a configuration and the command line.
struct ConfiguredRequest {
  /// The request (parse_series_options of `options`) with SeriesRequest::configuration set to
  /// `record`; its execution is the default one (the caller's to set).
  SeriesRequest request;
  std::vector<std::size_t> entries;  ///< the entries applied, in order
  /// The perfq cbf options the request was built from: the configuration's, merged, with the
  /// command line's in place of theirs.
  std::vector<std::string> options;
  /// The record of what applied (SeriesRequest::configuration), a JSON object's text:
  /// `File`, `EntriesApplied` (indices), `Options` (each option the configuration set, by its
  /// key, with the value of the last entry that set it, a flag unset as `false`),
  /// `CommandLine` (the command line's options) and `OverriddenByCommandLine` (the keys of
  /// `Options` that the command line replaced).
  std::string record;
};

/// @brief Merges the options of every entry of `config` that matches the series, in order
/// (a later entry's value replaces an earlier one's; `false` unsets a flag), then the command
/// line's (which replace the configuration's), and builds the request.
/// @param config the configuration
/// @param facts the series (series_facts)
/// @param command_line perfq cbf's quantification options as given, e.g. {"--m0-scale", "2"}
/// @throws InvalidArgument naming the options: a bad command-line option (parse_series_options)
/// or a combination refused by check_series_request (naming the file and entries when a
/// configuration's option is involved).
PERFQ_IO_API ConfiguredRequest configure_series(const SeriesConfig& config,
                                                const SeriesFacts& facts,
                                                const std::vector<std::string>& command_line);

}  // namespace io
PERFQ_NAMESPACE_END
