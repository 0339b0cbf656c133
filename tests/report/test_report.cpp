// `perfq report`: its figures (PNG round trip through libpng, font, colour maps, colour bar,
// slice choice, orientation), HTML escaping, and the report of a multi-delay phantom through
// the tool, whose every image must exist with the size the page gives it.
#include "report_figures.hpp"
#include "report_html.hpp"

#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/phantom.hpp>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>
#include <png.h>

#include "cli_test_util.hpp"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace rp = perfq_cli::report;
using namespace cli_test;  // run, Result, read_text, write_text, scratch_dir

/// A PNG read back with libpng itself (not with perfq's code), as 8-bit RGB.
struct Png {
  int width = 0, height = 0;
  std::vector<std::uint8_t> rgb;
  rp::Rgb at(int x, int y) const {
    const std::size_t i = (static_cast<std::size_t>(y) * width + x) * 3;
    return {rgb[i], rgb[i + 1], rgb[i + 2]};
  }
};

Png read_png(const fs::path& path) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  Png out;
  if (!png_image_begin_read_from_file(&image, path.string().c_str())) {
    ADD_FAILURE() << path << ": " << image.message;
    return out;
  }
  image.format = PNG_FORMAT_RGB;
  out.width = static_cast<int>(image.width);
  out.height = static_cast<int>(image.height);
  out.rgb.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, out.rgb.data(), 0, nullptr)) {
    ADD_FAILURE() << path << ": " << image.message;
  }
  png_image_free(&image);
  return out;
}

bool near(rp::Rgb a, rp::Rgb b, int tolerance = 0) {
  return std::abs(a.r - b.r) <= tolerance && std::abs(a.g - b.g) <= tolerance &&
         std::abs(a.b - b.b) <= tolerance;
}

TEST(ReportPng, RoundTripKeepsSizeAndEveryPixel) {
  const fs::path dir = scratch_dir("report-png");
  rp::Canvas canvas(37, 23, {10, 20, 30});
  canvas.set(0, 0, {255, 0, 0});
  canvas.set(36, 22, {0, 255, 0});
  canvas.fill_rect(5, 6, 4, 3, {1, 2, 3});
  canvas.set(-1, 5, {9, 9, 9});  // clipped, no effect
  canvas.set(37, 5, {9, 9, 9});
  rp::write_png((dir / "a.png").string(), canvas);
  const Png png = read_png(dir / "a.png");
  ASSERT_EQ(png.width, 37);
  ASSERT_EQ(png.height, 23);
  EXPECT_EQ(png.rgb, canvas.bytes());
  EXPECT_TRUE(near(png.at(0, 0), {255, 0, 0}));
  EXPECT_TRUE(near(png.at(36, 22), {0, 255, 0}));
  EXPECT_TRUE(near(png.at(8, 8), {1, 2, 3}));
  EXPECT_TRUE(near(png.at(9, 8), {10, 20, 30}));
}

TEST(ReportPng, UnwritablePathNamesTheFile) {
  const fs::path dir = scratch_dir("report-png-bad");
  const std::string path = (dir / "no-such-folder" / "x.png").string();
  try {
    rp::write_png(path, rp::Canvas(4, 4, {}));
    FAIL() << "expected an error";
  } catch (const perfq::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST(ReportFont, GlyphsCoverTheLabelsAndDrawAtScale) {
  for (char c : std::string("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                            " .,-+=/%():_<>?")) {
    EXPECT_TRUE(rp::has_glyph(c)) << "'" << c << "'";
  }
  EXPECT_FALSE(rp::has_glyph('~'));
  EXPECT_EQ(rp::text_width("", 2), 0);
  EXPECT_EQ(rp::text_width("1", 1), 5);
  EXPECT_EQ(rp::text_width("100", 2), (3 * 6 - 1) * 2);

  // '1' at scale 2: its stem (column 2) is set on rows 0-6, its base (row 6) on columns 1-3.
  rp::Canvas c(20, 20, {0, 0, 0});
  const rp::Rgb white{255, 255, 255};
  rp::draw_text(c, 2, 1, "1", white, 2);
  for (int row = 0; row < 7; ++row) {
    EXPECT_EQ(c.pixel(2 + 2 * 2, 1 + 2 * row), white) << row;
    EXPECT_EQ(c.pixel(2 + 2 * 2 + 1, 1 + 2 * row + 1), white) << row;
  }
  EXPECT_EQ(c.pixel(2 + 2 * 1, 1 + 2 * 6), white);
  EXPECT_EQ(c.pixel(2 + 2 * 3, 1 + 2 * 6), white);
  EXPECT_EQ(c.pixel(2 + 2 * 0, 1 + 2 * 6), rp::Rgb{});
  EXPECT_EQ(c.pixel(2 + 2 * 4, 1 + 2 * 3), rp::Rgb{});
  // An unknown character is drawn as '?', not skipped.
  rp::Canvas q1(20, 20, {}), q2(20, 20, {});
  rp::draw_text(q1, 0, 0, "~", white, 1);
  rp::draw_text(q2, 0, 0, "?", white, 1);
  EXPECT_EQ(q1.bytes(), q2.bytes());
}

TEST(ReportColours, MapsRunFromTheirFirstToTheirLastStop) {
  EXPECT_EQ(rp::colour_at(rp::ColourMap::Viridis, 0), (rp::Rgb{0x44, 0x01, 0x54}));
  EXPECT_EQ(rp::colour_at(rp::ColourMap::Viridis, 1), (rp::Rgb{0xFD, 0xE7, 0x25}));
  EXPECT_EQ(rp::colour_at(rp::ColourMap::Plasma, 0), (rp::Rgb{0x0D, 0x08, 0x87}));
  EXPECT_EQ(rp::colour_at(rp::ColourMap::Plasma, 1), (rp::Rgb{0xF0, 0xF9, 0x21}));
  EXPECT_EQ(rp::colour_at(rp::ColourMap::Viridis, -3), rp::colour_at(rp::ColourMap::Viridis, 0));
  EXPECT_EQ(rp::colour_at(rp::ColourMap::Viridis, 7), rp::colour_at(rp::ColourMap::Viridis, 1));
  EXPECT_EQ(rp::colour_at(rp::ColourMap::Viridis, std::nan("")),
            rp::colour_at(rp::ColourMap::Viridis, 0));
  // Halfway between stops 4 (0x26828E) and 5 (0x1F9E89).
  EXPECT_TRUE(near(rp::colour_at(rp::ColourMap::Viridis, 0.5), {0x23, 0x90, 0x8C}, 1));
  // Viridis gets lighter all the way (perceptual order).
  double last = -1;
  for (int k = 0; k <= 20; ++k) {
    const rp::Rgb c = rp::colour_at(rp::ColourMap::Viridis, k / 20.0);
    const double luma = 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b;
    EXPECT_GT(luma, last) << k;
    last = luma;
  }
}

TEST(ReportColours, TicksAreRoundAndLabelsShort) {
  EXPECT_EQ(rp::nice_ticks(0, 100), (std::vector<double>{0, 20, 40, 60, 80, 100}));
  const auto att = rp::nice_ticks(0.5, 2.5);
  ASSERT_EQ(att.size(), 5u);
  for (std::size_t k = 0; k < att.size(); ++k) EXPECT_NEAR(att[k], 0.5 + 0.5 * k, 1e-12);
  EXPECT_EQ(rp::tick_label(0.5), "0.5");
  EXPECT_EQ(rp::tick_label(100), "100");
  EXPECT_EQ(rp::tick_label(-1.25), "-1.25");
  EXPECT_EQ(rp::tick_label(-0.0001), "0");
  EXPECT_EQ(rp::tick_label(0.1 + 0.2), "0.3");
}

TEST(ReportSlices, EvenlySpacedOverSlicesWithBrain) {
  // 30 slices: brain in 5..24, small caps at 5 and 24 (below 15 % of the largest).
  std::vector<std::size_t> counts(30, 0);
  for (std::size_t z = 5; z <= 24; ++z) counts[z] = 1000;
  counts[5] = counts[24] = 100;
  const auto chosen = rp::choose_slices(counts, 4);
  EXPECT_EQ(chosen, (std::vector<std::size_t>{6, 12, 17, 23}));  // 6..23, ends kept
  // Fewer candidates than wanted: all of them.
  EXPECT_EQ(rp::choose_slices({0, 5, 5, 0, 5}, 12), (std::vector<std::size_t>{1, 2, 4}));
  // The threshold is relative to the largest slice.
  EXPECT_EQ(rp::choose_slices({1, 100, 14, 15}, 12), (std::vector<std::size_t>{1, 3}));
  EXPECT_EQ(rp::choose_slices({1, 100, 14, 15}, 12, 0.0), (std::vector<std::size_t>{0, 1, 2, 3}));
  EXPECT_TRUE(rp::choose_slices({0, 0, 0}, 12).empty());
  EXPECT_TRUE(rp::choose_slices({}, 12).empty());
  EXPECT_EQ(rp::choose_slices({1, 1, 1, 1, 1}, 1), (std::vector<std::size_t>{2}));
  // Many slices, 12 wanted: 12 distinct, sorted, spanning the range.
  std::vector<std::size_t> many(200, 50);
  const auto twelve = rp::choose_slices(many, 12);
  ASSERT_EQ(twelve.size(), 12u);
  EXPECT_EQ(twelve.front(), 0u);
  EXPECT_EQ(twelve.back(), 199u);
  for (std::size_t k = 1; k < twelve.size(); ++k) {
    EXPECT_GT(twelve[k], twelve[k - 1]);
    EXPECT_NEAR(double(twelve[k] - twelve[k - 1]), 199.0 / 11, 1.0);
  }
}

TEST(ReportSlices, PlaneFollowsTheDirectionCosines) {
  perfq::Geometry lps;  // identity: x to the left, y to posterior, z up
  rp::Plane p = rp::axial_plane(lps);
  EXPECT_EQ(p.column_axis, 0);
  EXPECT_EQ(p.row_axis, 1);
  EXPECT_EQ(p.slice_axis, 2);
  EXPECT_FALSE(p.flip_columns);
  EXPECT_FALSE(p.flip_rows);

  perfq::Geometry ras;  // a NIfTI stored RAS+, as ITK reports it
  ras.direction = {-1, 0, 0, 0, -1, 0, 0, 0, 1};
  p = rp::axial_plane(ras);
  EXPECT_TRUE(p.flip_columns);
  EXPECT_TRUE(p.flip_rows);

  perfq::Geometry sagittal_first;  // x runs A->P, y up, z R->L (slice axis y)
  sagittal_first.direction = {0, 0, 1, 1, 0, 0, 0, 1, 0};
  p = rp::axial_plane(sagittal_first);
  EXPECT_EQ(p.column_axis, 2);
  EXPECT_EQ(p.row_axis, 0);
  EXPECT_EQ(p.slice_axis, 1);
  EXPECT_FALSE(p.flip_columns);
  EXPECT_FALSE(p.flip_rows);
}

/// A 20 x 16 x 10 grid (2 x 2 x 4 mm): a box of brain (x 4..13, y 3..12, z 2..7) whose value
/// is x * 10; the outline mask covers x >= 9 of it.
struct Synthetic {
  perfq::Geometry g;
  std::vector<float> values;
  std::vector<std::uint8_t> brain, zone;
  Synthetic() {
    g.dims = {20, 16, 10};
    g.spacing = {2, 2, 4};
    values.assign(g.voxel_count(), 0);
    brain.assign(g.voxel_count(), 0);
    zone.assign(g.voxel_count(), 0);
    for (std::size_t z = 2; z <= 7; ++z)
      for (std::size_t y = 3; y <= 12; ++y)
        for (std::size_t x = 4; x <= 13; ++x) {
          const std::size_t i = g.index(x, y, z);
          brain[i] = 1;
          values[i] = static_cast<float>(x * 10);
          zone[i] = x >= 9;
        }
  }
};

TEST(ReportMontage, LayoutCropsToTheBrainAndKeepsVoxelsSquare) {
  const Synthetic s;
  const rp::MontageLayout l = rp::plan_montage(s.g, s.brain, 4, 100, 3);
  EXPECT_EQ(l.slices, (std::vector<std::size_t>{2, 4, 5, 7}));
  EXPECT_EQ(l.col_first, 3u);
  EXPECT_EQ(l.col_last, 15u);
  EXPECT_EQ(l.row_first, 2u);
  EXPECT_EQ(l.row_last, 14u);
  // 12 voxels of 2 mm = 24 mm in 100 px: 8 px per voxel (whole), 0.25 mm per pixel.
  EXPECT_DOUBLE_EQ(l.mm_per_pixel, 0.25);
  EXPECT_EQ(l.tile_width, 96);
  EXPECT_EQ(l.tile_height, 96);
  EXPECT_EQ(l.columns, 3);
  EXPECT_THROW(rp::plan_montage(s.g, std::vector<std::uint8_t>(s.g.voxel_count(), 0), 4),
               perfq::InvalidArgument);
  EXPECT_THROW(rp::plan_montage(s.g, std::vector<std::uint8_t>(3, 1), 4), perfq::InvalidArgument);
}

TEST(ReportMontage, TilesColourBarAndOutlineSurviveThePng) {
  const Synthetic s;
  const rp::MontageLayout l = rp::plan_montage(s.g, s.brain, 4, 100, 3);
  rp::MontageContent content;
  content.values = s.values.data();
  content.shown = s.brain.data();
  content.scale = {rp::ColourMap::Viridis, 0, 200, "CBF", "ml/100 g/min", {0, 100, 200}};
  const rp::Canvas plain = rp::render_montage(l, content);
  content.outline = s.zone.data();
  content.outline_label = "border zone";
  const rp::Canvas outlined = rp::render_montage(l, content);
  ASSERT_EQ(plain.width(), outlined.width());
  ASSERT_EQ(plain.height(), outlined.height());

  const fs::path dir = scratch_dir("report-montage");
  rp::write_png((dir / "m.png").string(), outlined);
  const Png png = read_png(dir / "m.png");
  ASSERT_EQ(png.width, outlined.width());
  ASSERT_EQ(png.height, outlined.height());
  EXPECT_EQ(png.rgb, outlined.bytes());

  // First tile (slice 2) at the margin (10 px); voxel (x, y) starts at ((x-3)*8, (y-2)*8).
  auto centre = [](std::size_t x, std::size_t y) {
    return std::pair<int, int>{10 + int(x - 3) * 8 + 4, 10 + int(y - 2) * 8 + 4};
  };
  auto [x6, y6] = centre(6, 7);  // value 60: 0.3 of the range
  EXPECT_TRUE(near(png.at(x6, y6), rp::colour_at(rp::ColourMap::Viridis, 0.3))) << x6;
  auto [x12, y12] = centre(12, 7);  // value 120, inside the zone, away from its edge
  EXPECT_TRUE(near(png.at(x12, y12), rp::colour_at(rp::ColourMap::Viridis, 0.6)));
  auto [xo, yo] = centre(3, 7);  // crop margin: not brain
  EXPECT_TRUE(near(png.at(xo, yo), rp::kNotShown));
  // The zone's left edge (voxel x = 9, first pixel column) is outlined; not in the plain one.
  const int edge_x = 10 + (9 - 3) * 8;
  EXPECT_TRUE(near(png.at(edge_x, y6), rp::kOutline));
  EXPECT_FALSE(near(plain.pixel(edge_x, y6), rp::kOutline));
  std::size_t magenta = 0;
  for (int y = 0; y < png.height; ++y)
    for (int x = 0; x < png.width; ++x) magenta += near(png.at(x, y), rp::kOutline);
  EXPECT_GT(magenta, 4u * 40u);  // 4 tiles, a zone of 5 x 10 voxels of 8 px each

  // The colour bar: its ends are the map's ends, and tick marks lie below it.
  const rp::ColourBarBox bar = rp::colour_bar_box(l);
  const int mid = bar.y + bar.height / 2;
  EXPECT_TRUE(near(png.at(bar.x, mid), rp::colour_at(rp::ColourMap::Viridis, 0)));
  EXPECT_TRUE(near(png.at(bar.x + bar.width - 1, mid), rp::colour_at(rp::ColourMap::Viridis, 1)));
  EXPECT_TRUE(near(png.at(bar.x + bar.width / 2, mid), rp::colour_at(rp::ColourMap::Viridis, 0.5),
                   2));
  EXPECT_TRUE(near(png.at(bar.x, bar.y + bar.height + 2), rp::kText));
  EXPECT_TRUE(near(png.at(bar.x + bar.width - 1, bar.y + bar.height + 2), rp::kText));
  // Labels and title: light text pixels below the bar and above it.
  std::size_t below = 0, above = 0;
  for (int x = 0; x < png.width; ++x) {
    for (int y = bar.y + bar.height + 7; y < bar.y + bar.height + 7 + 14; ++y)
      below += near(png.at(x, y), rp::kText);
    for (int y = bar.y - 26; y < bar.y - 8; ++y) above += near(png.at(x, y), rp::kText);
  }
  EXPECT_GT(below, 40u);
  EXPECT_GT(above, 100u);
}

TEST(ReportHtml, EscapesTextAndUrls) {
  EXPECT_EQ(rp::html_escape("<a href=\"x\">Tom & 'Jerry'</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;");
  EXPECT_EQ(rp::html_escape("plain text 1.5 s"), "plain text 1.5 s");
  EXPECT_EQ(rp::html_escape("&amp;"), "&amp;amp;");
  EXPECT_EQ(rp::url_path("figures/sub-01_desc-cbf_montage.png"),
            "figures/sub-01_desc-cbf_montage.png");
  EXPECT_EQ(rp::url_path("a b/c#d?e%f\"g.png"), "a%20b/c%23d%3Fe%25f%22g.png");
  EXPECT_EQ(rp::url_path("\xc3\xa9"), "%C3%A9");
  EXPECT_EQ(rp::format_number(12), "12");
  EXPECT_EQ(rp::format_number(52.3456), "52.35");
  EXPECT_EQ(rp::format_number(1295.61), "1295.6");
  EXPECT_EQ(rp::format_number(0.000123456), "0.0001235");
  EXPECT_EQ(rp::format_number(std::nan("")), "n/a");
  const std::string t = rp::html_table({"a<b"}, {{{"1", true}}, {{rp::html_escape("x&y")}}});
  EXPECT_NE(t.find("<th scope=\"col\">a&lt;b</th>"), std::string::npos) << t;
  EXPECT_NE(t.find("<td class=\"num\">1</td>"), std::string::npos) << t;
  EXPECT_NE(t.find("<td>x&amp;y</td>"), std::string::npos) << t;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// A small multi-delay phantom quantified by perfq cbf, with border zones (perfq watershed)
/// and tissue statistics whose names need escaping (perfq stats). Returns the perf folder.
fs::path quantified_phantom(const fs::path& dir) {
  perfq::PhantomOptions o;
  o.dims = {32, 36, 24};
  o.delays = {0.5, 1.25, 2.0, 2.75};
  o.repeats = 2;
  const perfq::Phantom phantom = perfq::make_phantom(o);
  perfq::io::write_phantom_bids(phantom, (dir / "bids").string(), "01");
  const fs::path truth = dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf";
  const fs::path out = dir / "out" / "sub-01" / "perf";
  const std::string cpu = " --backend cpu --threads 2";
  Result r = run("cbf " + (dir / "bids" / "sub-01" / "perf" / "sub-01_asl.nii.gz").string() +
                 " -o " + out.string() + " --mask " + (truth / "sub-01_mask.nii.gz").string() + cpu);
  EXPECT_EQ(r.status, 0) << r.output;
  r = run("watershed --territories " + (truth / "sub-01_territories.nii.gz").string() +
          " --width 10 --brain " + (truth / "sub-01_mask.nii.gz").string() + " -o " +
          (out / "sub-01_desc-borderzone_mask.nii.gz").string() + cpu);
  EXPECT_EQ(r.status, 0) << r.output;
  write_text(dir / "names.tsv", "index\tname\n1\tCSF\n2\tGM <cortex> & \"co\"\n3\tWM\n");
  r = run("stats " + (out / "sub-01_cbf.nii.gz").string() + " --labels " +
          (truth / "sub-01_dseg.nii.gz").string() + " --names " + (dir / "names.tsv").string() +
          " -o " + (out / "sub-01_desc-tissue_stats.tsv").string() + cpu);
  EXPECT_EQ(r.status, 0) << r.output;
  return out;
}

/// Every `<img ...>` of a page: its src, width and height attributes.
struct Img {
  std::string src;
  int width = 0, height = 0;
};
std::vector<Img> images_of(const std::string& html) {
  std::vector<Img> out;
  const std::regex tag("<img [^>]*>");
  const std::regex src("src=\"([^\"]*)\""), width("width=\"([0-9]+)\""),
      height("height=\"([0-9]+)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), tag); it != std::sregex_iterator();
       ++it) {
    const std::string t = it->str();
    std::smatch m;
    Img img;
    if (std::regex_search(t, m, src)) img.src = m[1];
    if (std::regex_search(t, m, width)) img.width = std::stoi(m[1]);
    if (std::regex_search(t, m, height)) img.height = std::stoi(m[1]);
    out.push_back(img);
  }
  return out;
}

TEST(ReportCli, PhantomReportHasEveryImageAndTable) {
  const fs::path dir = scratch_dir("report-cli");
  const fs::path perf = quantified_phantom(dir);
  const Result r = run("report " + (perf / "sub-01_cbf.nii.gz").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "3 figures, 1 table")) << r.output;
  const fs::path page = perf / "sub-01_report.html";
  const std::string html = read_text(page);
  const std::vector<Img> images = images_of(html);
  ASSERT_EQ(images.size(), 3u) << html;
  for (const Img& img : images) {
    EXPECT_EQ(img.src.rfind("figures/", 0), 0u) << img.src;  // relative, beside the page
    const fs::path file = perf / img.src;
    ASSERT_TRUE(fs::is_regular_file(file)) << file;
    const Png png = read_png(file);
    EXPECT_EQ(png.width, img.width) << img.src;
    EXPECT_EQ(png.height, img.height) << img.src;
  }
  EXPECT_TRUE(contains(html, "sub-01_desc-att_montage.png"));
  EXPECT_TRUE(contains(html, "sub-01_desc-borderzone_montage.png"));
  // Self-contained: no script, no remote or absolute resource.
  EXPECT_FALSE(contains(html, "<script"));
  EXPECT_FALSE(contains(html, "http://") || contains(html, "https://") || contains(html, "//cdn"));
  EXPECT_FALSE(contains(html, "src=\"/"));
  EXPECT_FALSE(contains(html, "<link"));
  // The sections and what they read.
  for (const std::string part :
       {"Acquisition parameters", "Constants and model", "Regional statistics", "Notes",
        "<td>PCASL</td>", "0.5, 1.25, 2, 2.75 s", "Arterial blood T1", "1.65 s",
        "Tissue classes", "ATT, median (IQR)", "Border zones", "Fit status",
        "Voxels with ΔM &lt; 0 (control/label check)", "CBF in the brain region, median",
        // perfq cbf's quality indices (no tissue maps given: the GM ones say why not).
        "Quality indices", "<code>brain_scov</code>", "n/a &mdash; no GM probability map"}) {
    EXPECT_TRUE(contains(html, part)) << part;
  }
  EXPECT_FALSE(contains(html, "class=\"warning\"")) << html;  // no warning in the sidecar
  EXPECT_FALSE(contains(html, "swapped?")) << html;
  EXPECT_FALSE(contains(html, "implausible")) << html;
  // A region name from the names table, escaped; never raw.
  EXPECT_TRUE(contains(html, "GM &lt;cortex&gt; &amp; &quot;co&quot;")) << html;
  EXPECT_FALSE(contains(html, "<cortex>"));
  EXPECT_TRUE(contains(html, "href=\"sub-01_desc-tissue_stats.tsv\""));
  // No staging folder left.
  for (const auto& e : fs::recursive_directory_iterator(perf)) {
    EXPECT_NE(e.path().filename().string().rfind(".perfq-staging", 0), 0u) << e.path();
  }

  // Elsewhere with -o, from the prefix alone; a single-delay-like page without ATT is also
  // valid: here, an explicit single table and the default output names.
  const Result again = run("report " + (perf / "sub-01").string() + " -o " +
                           (dir / "elsewhere").string() + " --slices 5 --cbf-range 10,90");
  ASSERT_EQ(again.status, 0) << again.output;
  const std::string moved = read_text(dir / "elsewhere" / "sub-01_report.html");
  for (const Img& img : images_of(moved)) {
    EXPECT_TRUE(fs::is_regular_file(dir / "elsewhere" / img.src)) << img.src;
  }
  EXPECT_TRUE(contains(moved, "5 axial slices")) << moved;
  EXPECT_TRUE(contains(moved, "href=\"../out/sub-01/perf/sub-01_desc-tissue_stats.tsv\""));

  // An existing report is kept unless --overwrite: refused before any work, page unchanged.
  const auto before = fs::last_write_time(perf / "sub-01_report.html");
  const Result kept = run("report " + (perf / "sub-01_cbf.nii.gz").string());
  EXPECT_EQ(kept.status, 1) << kept.output;
  EXPECT_TRUE(contains(kept.output, "sub-01_report.html: output exists")) << kept.output;
  EXPECT_EQ(fs::last_write_time(perf / "sub-01_report.html"), before);
  const Result redone = run("report " + (perf / "sub-01_cbf.nii.gz").string() + " --overwrite");
  EXPECT_EQ(redone.status, 0) << redone.output;

  // The sidecar's warnings lead the summary (escaped), and a failed check is marked.
  std::string sidecar = read_text(perf / "sub-01_cbf.json");
  for (const auto& [from, to] :
       {std::pair<std::string, std::string>{"\"Warnings\": []", "\"Warnings\": [\"M0 <odd>\"]"},
        {"\"Inverted\": false", "\"Inverted\": true"},
        {"\"Plausible\": true", "\"Plausible\": false"}}) {
    ASSERT_NE(sidecar.find(from), std::string::npos) << from;
    sidecar.replace(sidecar.find(from), from.size(), to);
  }
  nlohmann::json edited = nlohmann::json::parse(sidecar);
  edited["M0Calibration"] = {{"Method", "reference region"}, {"Tissue", "csf"},
                             {"ArterialBloodM0", 2311.9}};
  write_text(perf / "sub-01_cbf.json", edited.dump(2));
  ASSERT_EQ(run("report " + (perf / "sub-01_cbf.nii.gz").string() + " --overwrite").status, 0);
  const std::string warned = read_text(page);
  EXPECT_TRUE(contains(warned, "<p class=\"warning\"><strong>Warning:</strong> M0 &lt;odd&gt;</p>"))
      << warned;
  EXPECT_LT(warned.find("class=\"warning\""), warned.find("Voxels with ΔM"));
  EXPECT_TRUE(contains(warned, "swapped?")) << warned;
  EXPECT_TRUE(contains(warned, "implausible")) << warned;
  EXPECT_TRUE(contains(warned, "<td>Arterial blood M0 (reference region)</td>")) << warned;
  EXPECT_TRUE(contains(warned, "2311.9")) << warned;
}

TEST(ReportCli, RefusesMissingInputsAndBadUsage) {
  const fs::path dir = scratch_dir("report-refusals");
  const fs::path perf = quantified_phantom(dir);
  Result r = run("report " + (dir / "nothing_cbf.nii.gz").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "nothing_cbf.nii.gz")) << r.output;

  EXPECT_EQ(run("report").status, 2);
  EXPECT_EQ(run("report " + (perf / "sub-01_att.nii.gz").string()).status, 2);
  EXPECT_EQ(run("report " + (perf / "sub-01").string() + " --slices 0").status, 2);
  EXPECT_EQ(run("report " + (perf / "sub-01").string() + " --cbf-range 100,0").status, 2);
  EXPECT_EQ(run("report " + (perf / "sub-01").string() + " --att-range 1").status, 2);

  // A corrupt statistics table: refused, naming the file and line; no page left behind.
  write_text(perf / "sub-01_desc-broken_stats.tsv", "label\tmean\n1\t2\t3\n");
  r = run("report " + (perf / "sub-01_cbf.nii.gz").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "sub-01_desc-broken_stats.tsv: line 2")) << r.output;
  EXPECT_FALSE(fs::exists(perf / "sub-01_report.html"));
  fs::remove(perf / "sub-01_desc-broken_stats.tsv");

  // A mask on another grid.
  r = run("report " + (perf / "sub-01_cbf.nii.gz").string() + " --borderzone " +
          (dir / "bids" / "sub-01" / "perf" / "sub-01_asl.nii.gz").string());
  EXPECT_EQ(r.status, 1) << r.output;

  // Without the sidecar: refused, naming it.
  fs::remove(perf / "sub-01_cbf.json");
  r = run("report " + (perf / "sub-01_cbf.nii.gz").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "sub-01_cbf.json")) << r.output;
  EXPECT_FALSE(fs::exists(perf / "sub-01_report.html"));
}

}  // namespace
