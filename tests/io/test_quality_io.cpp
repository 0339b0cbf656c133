// Quality indices as files (perfq/io/quality.hpp): one series' table and a cohort's.
#include <perfq/errors.hpp>
#include <perfq/io/quality.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::path(PERFQ_TEST_TMP) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

/// A series' table with every index n/a except those given.
void write_table(const fs::path& path,
                 const std::vector<std::pair<std::string, std::string>>& set) {
  fs::create_directories(path.parent_path());
  const std::vector<std::string> names = perfq::quality_index_names();
  std::ofstream out(path);
  for (std::size_t k = 0; k < names.size(); ++k) out << (k ? "\t" : "") << names[k];
  out << "\n";
  for (std::size_t k = 0; k < names.size(); ++k) {
    std::string v = "n/a";
    for (const auto& [name, value] : set) {
      if (name == names[k]) v = value;
    }
    out << (k ? "\t" : "") << v;
  }
  out << "\n";
}

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> f;
  std::stringstream in(line);
  std::string x;
  while (std::getline(in, x, '\t')) f.push_back(x);
  return f;
}

}  // namespace

TEST(QualityFiles, TableHasOneRowAndSidecarDescribesEveryColumn) {
  const std::vector<float> cbf = {40, 60, -5, 30};
  const std::vector<float> gm = {1, 1, 1, 0};
  perfq::View<const float> map{cbf.data(), {}, 1};
  map.geometry.dims = {4, 1, 1};
  perfq::View<const float> grey{gm.data(), map.geometry, 1};
  const perfq::QualityReport r = perfq::quality_indices(map, {grey, std::nullopt, std::nullopt});
  const std::string tsv = perfq::io::quality_table_tsv(r);
  std::stringstream in(tsv);
  std::string header, row, extra;
  ASSERT_TRUE(std::getline(in, header));
  ASSERT_TRUE(std::getline(in, row));
  EXPECT_FALSE(std::getline(in, extra));
  const auto names = split(header), values = split(row);
  ASSERT_EQ(names, perfq::quality_index_names());
  ASSERT_EQ(values.size(), names.size());
  for (std::size_t k = 0; k < names.size(); ++k) {
    if (names[k] == "gm_mean_cbf") EXPECT_EQ(values[k], "31.66666667");  // 95 / 3, %.10g
    if (names[k] == "gm_voxels") EXPECT_EQ(values[k], "3");
    if (names[k] == "wm_mean_cbf") EXPECT_EQ(values[k], "n/a");
  }
  const auto j = nlohmann::json::parse(perfq::io::quality_table_json(r, {"a.nii.gz"}));
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(j.contains(name));
    EXPECT_FALSE(j[name]["Description"].get<std::string>().empty());
    EXPECT_FALSE(j[name]["Reference"].get<std::string>().empty());
  }
  EXPECT_EQ(j["gm_mean_cbf"]["Units"], "mL/100g/min");
  EXPECT_EQ(j["NotDefined"]["wm_mean_cbf"], "no WM probability map");
  EXPECT_FALSE(j["NotDefined"].contains("gm_mean_cbf"));
  EXPECT_DOUBLE_EQ(j["TissueThreshold"].get<double>(), 0.7);
  EXPECT_EQ(j["Sources"][0], "a.nii.gz");
}

TEST(QualityFiles, GroupTableFlagsOutliersByTukeysFences) {
  const fs::path root = scratch("quality-group");
  // QEI of six series: 0.80, 0.82, 0.84, 0.86, 0.88 and 0.30. Sorted: 0.30 0.80 0.82 0.84
  // 0.86 0.88; Q1 at rank 1.25 = 0.805, Q3 at rank 3.75 = 0.855, IQR 0.05: fences 0.73 and
  // 0.93. Only the low 0.30 is an outlier (a high QEI never is). gm_scov: 30 for all but
  // sub-02 (80): its IQR is 0, so 80 is above the upper fence (30).
  const char* qei[] = {"0.8", "0.3", "0.82", "0.84", "0.86", "0.88"};
  for (int s = 0; s < 6; ++s) {
    const std::string sub = "sub-0" + std::to_string(s + 1);
    write_table(root / sub / "perf" / (sub + "_desc-qualitycontrol_cbf.tsv"),
                {{"qei", qei[s]}, {"gm_scov", s == 1 ? "80" : "30"}, {"gm_mean_cbf", "55"}});
  }
  // A hidden folder, skipped; a series of relative CBF (its sidecar says so): gathered, but
  // neither in the fences nor flagged, however low its values.
  write_table(root / ".hidden" / "sub-09_desc-qualitycontrol_cbf.tsv", {{"qei", "0"}});
  write_table(root / "sub-07" / "perf" / "sub-07_desc-qualitycontrol_cbf.tsv",
              {{"qei", "0.1"}, {"gm_scov", "30"}, {"gm_mean_cbf", "1.1"}});
  std::ofstream(root / "sub-07" / "perf" / "sub-07_desc-qualitycontrol_cbf.json")
      << "{\"RelativeCbf\": true}\n";
  const perfq::io::GroupQuality g = perfq::io::gather_quality_tables(root.string());
  ASSERT_EQ(g.rows.size(), 7u);
  EXPECT_TRUE(g.rows.back().relative);
  EXPECT_TRUE(g.rows.back().outliers.empty());
  const auto qei_column = static_cast<std::size_t>(
      std::find(g.columns.begin(), g.columns.end(), "qei") - g.columns.begin());
  EXPECT_TRUE(g.fenced[qei_column]);
  EXPECT_NEAR(g.lower_fence[qei_column], 0.73, 1e-12);
  EXPECT_NEAR(g.upper_fence[qei_column], 0.93, 1e-12);
  for (const auto& row : g.rows) {
    SCOPED_TRACE(row.source);
    if (row.subject == "07") continue;
    if (row.subject == "02") {
      EXPECT_EQ(row.outliers, (std::vector<std::string>{"gm_scov", "qei"}));
    } else {
      EXPECT_TRUE(row.outliers.empty());
    }
  }
  const std::string tsv = perfq::io::group_quality_tsv(g);
  EXPECT_NE(tsv.find("02\tn/a\tn/a\tsub-02/perf/sub-02_desc-qualitycontrol_cbf.tsv"),
            std::string::npos);
  EXPECT_NE(tsv.find("\tgm_scov,qei\n"), std::string::npos);
  EXPECT_NE(tsv.find("sub-07_desc-qualitycontrol_cbf.tsv\trelative\t"), std::string::npos);
  EXPECT_NE(tsv.find("sub-02_desc-qualitycontrol_cbf.tsv\tmL/100g/min\t"), std::string::npos);
  const auto j = nlohmann::json::parse(perfq::io::group_quality_json(g));
  EXPECT_TRUE(j.contains("OutlierRule"));
  EXPECT_NEAR(j["Fences"]["qei"][0].get<double>(), 0.73, 1e-12);
  EXPECT_FALSE(j["Fences"].contains("wm_mean_cbf"));  // no values: no fences

  const auto one = perfq::io::gather_quality_tables(root.string(), {"03"});
  ASSERT_EQ(one.rows.size(), 1u);
  EXPECT_TRUE(one.rows[0].outliers.empty());  // fewer than 4 values: no rule
}

TEST(QualityFiles, BadTableIsAClearError) {
  const fs::path root = scratch("quality-bad");
  const fs::path table = root / "sub-01" / "perf" / "sub-01_desc-qualitycontrol_cbf.tsv";
  write_table(table, {{"qei", "high"}});
  try {
    perfq::io::gather_quality_tables(root.string());
    FAIL() << "a value that is no number was read";
  } catch (const perfq::InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(table.string()), std::string::npos) << m;
    EXPECT_NE(m.find("qei"), std::string::npos) << m;
    EXPECT_NE(m.find("'high'"), std::string::npos) << m;
  }
  std::ofstream(table) << "qei\tgm_scov\n0.5\n";
  EXPECT_THROW(perfq::io::gather_quality_tables(root.string()), perfq::InputError);
}
