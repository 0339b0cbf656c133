// C API: the quality indices of a CBF map (perfq.h, perfq/quality.hpp).
#include "common.hpp"

#include <perfq/quality.hpp>

#include <cstring>

struct perfq_quality_report {
  perfq::QualityReport value;
};

using namespace perfq_c_api;

namespace {

const perfq::QualityIndex* find_index(const perfq_quality_report* report, const char* name) {
  if (report == nullptr || name == nullptr) return nullptr;
  for (const perfq::QualityIndex& q : report->value.indices) {
    if (q.name == name) return &q;
  }
  return nullptr;
}

}  // namespace

perfq_status perfq_quality_indices(const float* cbf, const float* gm, const float* wm,
                                   const float* csf, const std::size_t dims[3],
                                   const double spacing[3], const uint8_t* brain,
                                   const uint8_t* status, double tissue_threshold, int relative,
                                   perfq_quality_report** out) {
  return create_into("perfq_quality_indices", out, [&] {
    require_pointer(cbf, "cbf");
    const perfq::Geometry g = make_geometry(dims, spacing);
    perfq::TissueMaps tissue;
    tissue.gm = optional_view(gm, g);
    tissue.wm = optional_view(wm, g);
    tissue.csf = optional_view(csf, g);
    perfq::QualityOptions options;
    if (tissue_threshold != 0.0) options.tissue_threshold = tissue_threshold;
    options.brain = optional_view(brain, g);
    options.status = optional_view(status, g);
    options.relative = relative != 0;
    return new perfq_quality_report{perfq::quality_indices(view_of(cbf, g), tissue, options)};
  });
}

void perfq_quality_report_destroy(perfq_quality_report* report) { delete report; }

std::size_t perfq_quality_report_size(const perfq_quality_report* report) {
  return read_handle(report, __func__, 0,
                     [](const perfq_quality_report& r) { return r.value.indices.size(); });
}

const char* perfq_quality_report_name(const perfq_quality_report* report, std::size_t k) {
  return read_handle(report, __func__, static_cast<const char*>(nullptr),
                     [&](const perfq_quality_report& r) -> const char* {
                       if (k >= r.value.indices.size()) {
                         set_last_error("perfq_quality_report_name", "k: out of range");
                         return nullptr;
                       }
                       return r.value.indices[k].name.c_str();
                     });
}

perfq_status perfq_quality_report_value(const perfq_quality_report* report, const char* name,
                                        double* value, int* defined) {
  const char* function = "perfq_quality_report_value";
  if (report == nullptr)
    return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "report: null pointer");
  if (name == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "name: null pointer");
  if (value == nullptr) return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, "value: null pointer");
  const perfq::QualityIndex* q = find_index(report, name);
  if (q == nullptr) {
    return fail(PERFQ_ERROR_INVALID_ARGUMENT, function,
                (std::string("no index named '") + name + "'").c_str());
  }
  *value = q->value;
  if (defined != nullptr) *defined = q->defined ? 1 : 0;
  return PERFQ_OK;
}

const char* perfq_quality_report_why_not(const perfq_quality_report* report, const char* name) {
  if (report == nullptr) {
    set_last_error("perfq_quality_report_why_not", "report: null pointer");
    return nullptr;
  }
  const perfq::QualityIndex* q = find_index(report, name);
  if (q == nullptr) {
    set_last_error("perfq_quality_report_why_not", "unknown index name");
    return nullptr;
  }
  return q->why_not.c_str();
}
