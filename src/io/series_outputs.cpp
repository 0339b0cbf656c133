// The files of a quantified series, as perfq cbf writes them (include/perfq/io/pipeline.hpp).
#include <perfq/errors.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/outputs.hpp>
#include <perfq/io/pipeline.hpp>

#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {

std::vector<SeriesOutput> series_outputs(const SeriesMaps& maps) {
  const std::string& px = maps.prefix;
  std::vector<SeriesOutput> files;
  auto map = [&](const std::string& suffix, const std::optional<Volume<float>>& image) {
    if (image) files.push_back({px + suffix, &*image, nullptr, nullptr});
  };
  const std::string cbf = maps.relative_cbf ? "_desc-relative_cbf" : "_cbf";
  files.push_back({px + cbf + ".nii.gz", &maps.cbf, nullptr, nullptr});
  map("_att.nii.gz", maps.att);
  map(cbf + "_se.nii.gz", maps.cbf_se);
  map("_att_se.nii.gz", maps.att_se);
  files.push_back({px + "_fitstatus.nii.gz", nullptr, &maps.status, nullptr});
  map("_abv.nii.gz", maps.abv);
  map("_abv_se.nii.gz", maps.abv_se);
  map("_aatt.nii.gz", maps.arterial_att);
  map("_cbf_gm.nii.gz", maps.cbf_grey);
  map("_cbf_wm.nii.gz", maps.cbf_white);
  files.push_back({px + "_cbf.json", nullptr, nullptr, &maps.provenance_json});
  map("_desc-scanner_cbf.nii.gz", maps.scanner_cbf);
  if (maps.brain_mask) {
    files.push_back({px + "_desc-brain_mask.nii.gz", nullptr, &*maps.brain_mask, nullptr});
  }
  return files;
}

std::vector<std::string> series_output_names(const std::string& prefix) {
  return {prefix + "_cbf.nii.gz", prefix + "_cbf.json", prefix + "_fitstatus.nii.gz"};
}

std::vector<std::string> write_series_outputs(const SeriesMaps& maps, const std::string& out_dir,
                                              bool overwrite) {
  refuse_existing_outputs(out_dir, series_output_names(maps.prefix), overwrite);
  StagedOutputs staged(out_dir, overwrite);
  try {
    for (const auto& file : series_outputs(maps))
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
    write_nifti(path, output.map->view());
  } else if (output.codes != nullptr) {
    write_nifti(path, output.codes->view());
  } else if (output.text != nullptr) {
    write_text_atomic(path, *output.text);
  } else {
    throw InvalidArgument("write_series_output: the output " + output.name + " has no content");
  }
}

}  // namespace io
PERFQ_NAMESPACE_END
