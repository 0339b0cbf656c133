// Options per series from a configuration file (perfq/io/series_config.hpp): reading and
// checking the file, matching its entries' filters against a series' entities and sidecar,
// and merging their options with the command line's into a request, recording what applied.
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/io/series_config.hpp>

#include "bids_internal.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace {

using Json = nlohmann::ordered_json;

/// The filter keys that name BIDS entities of an ASL file name, and the entities.
const std::vector<std::pair<std::string, std::string>>& entity_keys() {
  static const std::vector<std::pair<std::string, std::string>> keys = {
      {"subject", "sub"},        {"session", "ses"},   {"acquisition", "acq"},
      {"reconstruction", "rec"}, {"direction", "dir"}, {"run", "run"}};
  return keys;
}

/// Options that are the command line's only (perfq cbf's output and execution options).
const std::set<std::string>& command_line_only() {
  static const std::set<std::string> names = {"output",  "o",      "overwrite", "uncompressed",
                                              "backend", "device", "threads",   "config"};
  return names;
}

/// A short rendering of a JSON value for error messages.
std::string describe(const Json& value) {
  if (value.is_null()) return "null";
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return std::string(value.type_name()) + " " + text;
}

std::string in_quotes(const std::string& key) { return "\"" + key + "\""; }

/// Errors of one file, naming the entry and the key.
struct Problems {
  std::string source;

  [[noreturn]] void fail(const std::string& where, const std::string& problem) const {
    throw InputError(source, where, problem);
  }
};

std::string entry_name(std::size_t index) { return "entry " + std::to_string(index); }

/// The JSON text, parsed; a key given twice in any object is refused (the parser would keep
/// the last one silently, and a hand-edited file may mean the first).
Json parse_without_duplicates(const std::string& text, const Problems& p) {
  check_json_nesting(text, p.source);
  std::vector<std::set<std::string>> keys;  // one set per object being read
  std::vector<bool> in_object;              // the containers being read, innermost last
  std::size_t entries = 0;                  // objects started in the top-level list
  std::string duplicate, where;
  const Json::parser_callback_t check = [&](int, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        if (in_object.size() == 1 && !in_object[0]) ++entries;
        in_object.push_back(true);
        keys.emplace_back();
        break;
      case Json::parse_event_t::array_start:
        in_object.push_back(false);
        break;
      case Json::parse_event_t::object_end:
        keys.pop_back();
        in_object.pop_back();
        break;
      case Json::parse_event_t::array_end:
        in_object.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!keys.empty() && parsed.is_string() &&
            !keys.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
          duplicate = parsed.get<std::string>();
          if (entries > 0) where = entry_name(entries - 1);
        }
        break;
      default:
        break;
    }
    return true;
  };
  Json root;
  try {
    root = Json::parse(text, check);
  } catch (const Json::exception& e) {
    std::string message = e.what();  // "[json.exception.parse_error.101] ...": the human part
    const auto bracket = message.find("] ");
    if (bracket != std::string::npos) message = message.substr(bracket + 2);
    p.fail("", "invalid JSON: " + message);
  }
  if (!duplicate.empty()) {
    p.fail(where, in_quotes(duplicate) +
                      " given twice in one object; which value is meant is "
                      "unclear (keep one)");
  }
  return root;
}

/// The message of set_series_option without its leading "--name: ".
std::string without_name(const std::string& message, const std::string& name) {
  const std::string lead = name + ": ";
  return message.rfind(lead, 0) == 0 ? message.substr(lead.size()) : message;
}

ConfigOption read_option(const std::string& key, const Json& value, const ConfigRules& rules,
                         const fs::path& base, const Problems& p, const std::string& where) {
  const std::string at = where + ": option " + in_quotes(key);
  std::string dashed = key;
  std::replace(dashed.begin(), dashed.end(), '_', '-');
  const std::string name = "--" + dashed;
  const std::vector<SeriesOption> known = series_options();
  const auto option = std::find_if(known.begin(), known.end(),
                                   [&](const SeriesOption& o) { return o.name == name; });
  if (command_line_only().count(key)) {
    p.fail(at,
           "not a quantification option: output and execution options are given on the "
           "command line only");
  }
  if (option == known.end() || key.find('-') != std::string::npos) {
    // Written as on the command line ("m0-scale", "--m0-scale"): say how to write it.
    const std::string bare = key.substr(std::min(key.find_first_not_of('-'), key.size()));
    const bool cli_spelling = key.find('-') != std::string::npos &&
                              std::any_of(known.begin(), known.end(), [&](const SeriesOption& o) {
                                return o.name == "--" + bare;
                              });
    if (cli_spelling) {
      std::string underscored = bare;
      std::replace(underscored.begin(), underscored.end(), '-', '_');
      p.fail(at, "options are named with underscores and without dashes: write " +
                     in_quotes(underscored));
    }
    p.fail(at,
           "unknown option (perfq cbf's options, named with underscores: m0_scale for "
           "--m0-scale)");
  }
  if (std::find(rules.refused.begin(), rules.refused.end(), name) != rules.refused.end()) {
    p.fail(at, name + " cannot be set by a configuration here" +
                   (rules.why.empty() ? "" : ": " + rules.why));
  }
  ConfigOption o;
  o.key = key;
  o.name = name;
  if (!option->takes_value) {
    if (!value.is_boolean()) {
      p.fail(at, "a flag: expected true (set) or false (not set), found " + describe(value));
    }
    o.set = value.get<bool>();
    o.json = value.dump();
    return o;
  }
  if (value.is_number()) {
    if (!std::isfinite(value.get<double>())) p.fail(at, "expected a finite number");
    o.value = value.dump();
  } else if (value.is_string() && !value.get<std::string>().empty()) {
    o.value = value.get<std::string>();
  } else {
    p.fail(at, "expected a number or a string, found " +
                   (value.is_string() ? std::string("an empty string") : describe(value)));
  }
  if (option->names_file && fs::path(o.value).is_relative()) {
    o.value = (base / o.value).string();  // relative to the configuration file's folder
  }
  o.json = value.is_string() ? Json(o.value).dump() : value.dump();
  SeriesRequest scratch;  // the value checked as the command line's would be
  try {
    set_series_option(scratch, name, o.value);
  } catch (const InvalidArgument& e) {
    p.fail(at, without_name(e.what(), name));
  }
  return o;
}

/// A BIDS label: letters and digits only.
bool is_label(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0;
  });
}

void check_filter_value(const Json& value, const std::string& entity, const Problems& p,
                        const std::string& at) {
  if (!entity.empty()) {
    if (value.is_string()) {
      const std::string label = value.get<std::string>();
      if (label.rfind(entity + "-", 0) == 0) {
        p.fail(at, "give the label without its '" + entity +
                       "-' prefix: " + in_quotes(label.substr(entity.size() + 1)));
      }
      if (!is_label(label)) p.fail(at, in_quotes(label) + " is not a BIDS label (letters, digits)");
      return;
    }
    if (value.is_number_integer() && value.get<long long>() >= 0) return;
    if (value.is_number_float() && value.get<double>() >= 0 && value.get<double>() < 1e15 &&
        std::floor(value.get<double>()) == value.get<double>()) {
      return;
    }
    p.fail(at, "expected a label (a string) or a whole number, found " + describe(value));
  }
  if (value.is_string() || value.is_boolean()) return;
  if (value.is_number() && std::isfinite(value.get<double>())) return;
  p.fail(at, "expected a string, a number or true/false, found " + describe(value));
}

ConfigCondition read_condition(const std::string& key, const Json& value, const Problems& p,
                               const std::string& where) {
  const std::string at = where + ": filter " + in_quotes(key);
  ConfigCondition c;
  c.key = key;
  for (const auto& [name, entity] : entity_keys()) {
    if (key == name) c.entity = entity;
  }
  if (c.entity.empty() && !std::isupper(static_cast<unsigned char>(key.empty() ? 'x' : key[0]))) {
    p.fail(at,
           "unknown filter key: expected subject, session, acquisition, reconstruction, "
           "direction, run, or a sidecar field (which begins with a capital letter, e.g. "
           "Manufacturer)");
  }
  if (value.is_array()) {
    if (value.empty()) p.fail(at, "an empty list matches no series");
    for (const Json& one : value) {
      if (one.is_array() || one.is_object()) {
        p.fail(at, "a list of values means any of them; found " + describe(one) + " in it");
      }
      check_filter_value(one, c.entity, p, at);
      c.values.push_back(one.dump());
    }
  } else {
    check_filter_value(value, c.entity, p, at);
    c.values.push_back(value.dump());
  }
  return c;
}

ConfigEntry read_entry(const Json& item, std::size_t index, const ConfigRules& rules,
                       const fs::path& base, const Problems& p) {
  const std::string where = entry_name(index);
  if (!item.is_object()) {
    p.fail(where,
           "expected an object {\"filter\": {...}, \"options\": {...}}, found " + describe(item));
  }
  for (auto it = item.begin(); it != item.end(); ++it) {
    if (it.key() != "filter" && it.key() != "options" && it.key() != "description") {
      p.fail(where,
             "unknown key " + in_quotes(it.key()) + " (expected filter, options, description)");
    }
  }
  if (item.contains("description") && !item["description"].is_string()) {
    p.fail(where + ": description", "expected a string, found " + describe(item["description"]));
  }
  ConfigEntry entry;
  if (item.contains("filter")) {
    const Json& filter = item["filter"];
    if (!filter.is_object()) {
      p.fail(where + ": filter",
             "expected an object of BIDS entities and sidecar fields, found " + describe(filter));
    }
    for (auto it = filter.begin(); it != filter.end(); ++it) {
      entry.filter.push_back(read_condition(it.key(), it.value(), p, where));
    }
  }
  if (!item.contains("options")) p.fail(where, "\"options\" is required");
  const Json& options = item["options"];
  if (!options.is_object()) {
    p.fail(where + ": options",
           "expected an object of perfq cbf options, found " + describe(options));
  }
  for (auto it = options.begin(); it != options.end(); ++it) {
    entry.options.push_back(read_option(it.key(), it.value(), rules, base, p, where));
  }
  return entry;
}

/// A series' sidecar as JSON.
Json sidecar_of(const SeriesFacts& facts) {
  Json sidecar;
  try {
    sidecar = Json::parse(facts.sidecar_json.empty() ? std::string("{}") : facts.sidecar_json);
  } catch (const Json::exception&) {
    sidecar = nullptr;
  }
  if (!sidecar.is_object()) throw InputError("", "", "the series' sidecar is not a JSON object");
  return sidecar;
}

/// Whether an entity label matches a filter value (a label, or a whole number).
bool label_matches(const std::string& label, const Json& wanted) {
  if (wanted.is_string()) return label == wanted.get<std::string>();
  if (label.empty() || !std::all_of(label.begin(), label.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) != 0;
      })) {
    return false;
  }
  const std::string digits = label.substr(std::min(label.find_first_not_of('0'), label.size()));
  const auto number = static_cast<unsigned long long>(wanted.get<double>());
  return (digits.empty() ? "0" : digits) == std::to_string(number);
}

/// Whether a sidecar field's value matches a filter value.
bool field_matches(const Json& field, const Json& wanted) {
  if (field.is_string() && wanted.is_string()) return field == wanted;
  if (field.is_boolean() && wanted.is_boolean()) return field == wanted;
  if (field.is_number() && wanted.is_number()) return field.get<double>() == wanted.get<double>();
  return false;
}

bool matches(const ConfigEntry& entry, const SeriesFacts& facts, const Json& sidecar) {
  for (const ConfigCondition& c : entry.filter) {
    bool any = false;
    for (const std::string& text : c.values) {
      const Json wanted = Json::parse(text);
      if (!c.entity.empty()) {
        const auto label = facts.entities.find(c.entity);
        any = any || (label != facts.entities.end() && label_matches(label->second, wanted));
      } else {
        any = any || (sidecar.contains(c.key) && field_matches(sidecar[c.key], wanted));
      }
    }
    if (!any) return false;
  }
  return true;
}

/// Command-line options by name ("" for a flag), each checked as set_series_option does.
std::map<std::string, std::string> command_line_options(const std::vector<std::string>& given) {
  const std::vector<SeriesOption> known = series_options();
  std::map<std::string, std::string> out;
  for (std::size_t k = 0; k < given.size(); ++k) {
    const std::string& name = given[k];
    const auto option = std::find_if(known.begin(), known.end(),
                                     [&](const SeriesOption& o) { return o.name == name; });
    if (option == known.end()) throw InvalidArgument("unknown option '" + name + "'");
    if (out.count(name)) throw InvalidArgument(name + " given twice");
    if (option->takes_value && k + 1 >= given.size())
      throw InvalidArgument(name + " needs a value");
    out[name] = option->takes_value ? given[++k] : std::string();
    SeriesRequest scratch;
    set_series_option(scratch, name, out[name]);
  }
  return out;
}

}  // namespace

SeriesConfig parse_series_config(const std::string& json_text, const std::string& source,
                                 const ConfigRules& rules) {
  const Problems p{source};
  const Json root = parse_without_duplicates(json_text, p);
  if (!root.is_array()) {
    p.fail("", "expected a JSON list of {\"filter\": {...}, \"options\": {...}} entries, found " +
                   describe(root));
  }
  SeriesConfig config;
  config.path = source;
  const fs::path base = fs::path(source).parent_path();
  for (std::size_t k = 0; k < root.size(); ++k) {
    config.entries.push_back(read_entry(root[k], k, rules, base, p));
  }
  return config;
}

SeriesConfig read_series_config(const std::string& path, const ConfigRules& rules) {
  return parse_series_config(detail::read_text_file(path, "configuration file"), path, rules);
}

SeriesFacts series_facts(const std::string& asl_path) {
  const fs::path asl(asl_path);
  const std::string name = asl.filename().string();
  std::string prefix;
  for (const char* tail : {"_asl.nii.gz", "_asl.nii"}) {
    if (prefix.empty() && detail::ends_with(name, tail) && name.size() > std::string(tail).size()) {
      prefix = name.substr(0, name.size() - std::string(tail).size());
    }
  }
  if (prefix.empty()) {
    throw InputError(asl_path, "", "expected an ASL-BIDS file named *_asl.nii or *_asl.nii.gz");
  }
  SeriesFacts facts;
  std::size_t start = 0;
  while (start < prefix.size()) {  // key-value parts; others (none in BIDS) are left out
    std::size_t end = prefix.find('_', start);
    if (end == std::string::npos) end = prefix.size();
    const std::string part = prefix.substr(start, end - start);
    const std::size_t dash = part.find('-');
    if (dash != std::string::npos && dash > 0) {
      facts.entities[part.substr(0, dash)] = part.substr(dash + 1);
    }
    start = end + 1;
  }
  const auto levels = detail::metadata_levels(asl.parent_path());
  const auto files = detail::applicable_files(levels, prefix, "_asl.json");
  std::map<std::string, std::string> origin;
  facts.sidecar_json = detail::merged_metadata(files, "ASL sidecar (.json)", origin).dump();
  return facts;
}

bool config_entry_matches(const ConfigEntry& entry, const SeriesFacts& facts) {
  return matches(entry, facts, sidecar_of(facts));
}

std::vector<std::size_t> matching_entries(const SeriesConfig& config, const SeriesFacts& facts) {
  const Json sidecar = sidecar_of(facts);
  std::vector<std::size_t> out;
  for (std::size_t k = 0; k < config.entries.size(); ++k) {
    if (matches(config.entries[k], facts, sidecar)) out.push_back(k);
  }
  return out;
}

ConfiguredRequest configure_series(const SeriesConfig& config, const SeriesFacts& facts,
                                   const std::vector<std::string>& command_line) {
  ConfiguredRequest out;
  out.entries = matching_entries(config, facts);
  // The configuration's options: a later entry's replaces an earlier one's; keys in the order
  // they first appear.
  std::vector<std::string> order;
  std::map<std::string, const ConfigOption*> merged;
  for (const std::size_t k : out.entries) {
    for (const ConfigOption& o : config.entries[k].options) {
      if (!merged.count(o.name)) order.push_back(o.name);
      merged[o.name] = &o;
    }
  }
  const std::map<std::string, std::string> given = command_line_options(command_line);
  bool from_config = false;
  for (const SeriesOption& option : series_options()) {
    const auto cli = given.find(option.name);
    const auto cfg = merged.find(option.name);
    std::optional<std::string> value;
    if (cli != given.end()) {
      value = cli->second;
    } else if (cfg != merged.end() && cfg->second->set) {
      value = cfg->second->value;
      from_config = true;
    }
    if (!value) continue;
    out.options.push_back(option.name);
    if (option.takes_value) out.options.push_back(*value);
  }

  Json record;
  record["File"] = config.path;
  record["EntriesApplied"] = out.entries;
  record["Options"] = Json::object();
  Json overridden = Json::array();
  for (const std::string& name : order) {
    const ConfigOption& o = *merged[name];
    record["Options"][o.key] = Json::parse(o.json);
    if (given.count(name)) overridden.push_back(o.key);
  }
  record["CommandLine"] = command_line;
  record["OverriddenByCommandLine"] = overridden;
  out.record = record.dump();

  try {
    out.request = parse_series_options(out.options);
  } catch (const InvalidArgument& e) {
    if (!from_config) throw;
    std::string entries;
    for (const std::size_t k : out.entries)
      entries += (entries.empty() ? "" : ", ") + std::to_string(k);
    throw InvalidArgument(std::string(e.what()) + " (with the options of " + config.path +
                          (out.entries.size() == 1 ? ", entry " : ", entries ") + entries + ")");
  }
  out.request.configuration = out.record;
  return out;
}

}  // namespace io
PERFQ_NAMESPACE_END
