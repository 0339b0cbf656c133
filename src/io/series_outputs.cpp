// The files of a quantified series, as perfq cbf writes them (include/perfq/io/pipeline.hpp).
#include <perfq/errors.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/outputs.hpp>
#include <perfq/io/pipeline.hpp>

#include "write_util.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {

namespace {

/// The images' extension: write_nifti chooses the compression by it.
std::string image_extension(const SeriesOutputOptions& options) {
  return options.compressed ? ".nii.gz" : ".nii";
}

}  // namespace

std::vector<SeriesOutput> series_outputs(const SeriesMaps& maps) {
  return series_outputs(maps, SeriesOutputOptions{});
}

std::vector<SeriesOutput> series_outputs(const SeriesMaps& maps,
                                         const SeriesOutputOptions& options) {
  const std::string& px = maps.prefix;
  const std::string nii = image_extension(options);
  std::vector<SeriesOutput> files;
  auto map = [&](const std::string& suffix, const std::optional<Volume<float>>& image) {
    if (image) files.push_back({px + suffix + nii, &*image, nullptr, nullptr});
  };
  const std::string cbf = maps.relative_cbf ? "_desc-relative_cbf" : "_cbf";
  files.push_back({px + cbf + nii, &maps.cbf, nullptr, nullptr});
  map("_att", maps.att);
  map(cbf + "_se", maps.cbf_se);
  map("_att_se", maps.att_se);
  files.push_back({px + "_fitstatus" + nii, nullptr, &maps.status, nullptr});
  map("_abv", maps.abv);
  map("_abv_se", maps.abv_se);
  map("_aatt", maps.arterial_att);
  map("_cbf_gm", maps.cbf_grey);
  map("_cbf_wm", maps.cbf_white);
  files.push_back({px + "_cbf.json", nullptr, nullptr, &maps.provenance_json});
  map("_desc-scanner_cbf", maps.scanner_cbf);
  if (maps.brain_mask) {
    files.push_back({px + "_desc-brain_mask" + nii, nullptr, &*maps.brain_mask, nullptr});
  }
  if (!maps.quality_tsv.empty()) {
    files.push_back({px + "_desc-qualitycontrol_cbf.tsv", nullptr, nullptr, &maps.quality_tsv});
    files.push_back({px + "_desc-qualitycontrol_cbf.json", nullptr, nullptr, &maps.quality_json});
  }
  for (auto& file : files) file.threads = options.threads;
  return files;
}

std::optional<std::string> find_status_map(const std::string& map_path) {
  namespace fs = std::filesystem;
  const fs::path path(map_path);
  std::string stem = path.filename().string();
  for (const std::string ext : {".nii.gz", ".nii"}) {
    if (stem.size() > ext.size() && stem.compare(stem.size() - ext.size(), ext.size(), ext) == 0) {
      stem.resize(stem.size() - ext.size());
      break;
    }
  }
  // Longest first: "_desc-relative_cbf_se" before "_cbf_se" before "_cbf".
  for (const std::string map : {"_desc-relative_cbf_se", "_desc-relative_cbf", "_cbf_se", "_att_se",
                                "_abv_se", "_cbf_gm", "_cbf_wm", "_cbf", "_att", "_abv", "_aatt"}) {
    if (stem.size() <= map.size() || stem.compare(stem.size() - map.size(), map.size(), map)) {
      continue;
    }
    const std::string prefix = stem.substr(0, stem.size() - map.size());
    if (prefix.size() >= 12 && prefix.compare(prefix.size() - 12, 12, "_desc-scanner") == 0) {
      return std::nullopt;  // the scanner's CBF: no fit status
    }
    for (const char* ext : {".nii.gz", ".nii"}) {
      const fs::path status = path.parent_path() / (prefix + "_fitstatus" + ext);
      std::error_code ec;
      if (fs::is_regular_file(status, ec)) return status.string();
    }
    return std::nullopt;
  }
  return std::nullopt;
}

Volume<std::uint8_t> read_status_map(const std::string& path) {
  const Image<std::int32_t> codes = read_nifti_labels(path);
  Volume<std::uint8_t> status(codes.geometry());
  for (std::size_t i = 0; i < codes.size(); ++i) {
    if (codes[i] < 0 || codes[i] > 255) {
      throw InputError(path, "",
                       "voxel " + std::to_string(i) + " holds " + std::to_string(codes[i]) +
                           "; a status map holds codes 0-255");
    }
    status[i] = static_cast<std::uint8_t>(codes[i]);
  }
  return status;
}

std::vector<std::string> series_output_names(const std::string& prefix) {
  return series_output_names(prefix, SeriesOutputOptions{});
}

std::vector<std::string> series_output_names(const std::string& prefix,
                                             const SeriesOutputOptions& options) {
  const std::string nii = image_extension(options);
  return {prefix + "_cbf" + nii, prefix + "_cbf.json", prefix + "_fitstatus" + nii};
}

std::vector<std::string> write_series_outputs(const SeriesMaps& maps, const std::string& out_dir,
                                              bool overwrite) {
  return write_series_outputs(maps, out_dir, overwrite, SeriesOutputOptions{});
}

std::vector<std::string> write_series_outputs(const SeriesMaps& maps, const std::string& out_dir,
                                              bool overwrite, const SeriesOutputOptions& options) {
  refuse_existing_outputs(out_dir, series_output_names(maps.prefix, options), overwrite);
  StagedOutputs staged(out_dir, overwrite);
  try {
    for (const auto& file : series_outputs(maps, options))
      write_series_output(file, staged.stage(file.name));
  } catch (const InputError&) {
    throw;
  } catch (const Error& e) {
    throw Error(staged.final_names(e.what()));
  }
  return staged.commit();
}

void write_series_output(const SeriesOutput& output, const std::string& path) {
  if (output.map != nullptr) {
    detail::write_nifti(path, output.map->view(), output.threads);
  } else if (output.codes != nullptr) {
    detail::write_nifti(path, output.codes->view(), output.threads);
  } else if (output.text != nullptr) {
    write_text_atomic(path, *output.text);
  } else {
    throw InvalidArgument("write_series_output: the output " + output.name + " has no content");
  }
}

}  // namespace io
PERFQ_NAMESPACE_END
