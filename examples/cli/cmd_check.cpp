// perfq check: what stands between ASL series as a converter wrote them and series perfq can
// quantify (perfq::io::check_series), as text or JSON.
#include "cli_util.hpp"
#include "commands.hpp"

#include <perfq/io/check.hpp>
#include <perfq/io/nifti.hpp>

#include <nlohmann/json.hpp>

#include <ostream>
#include <string>
#include <vector>

namespace perfq_cli {
namespace {

const char* const kCheckHelp =
    "usage: perfq check <series or folder> [--json] [--propose DIR [--overwrite]]\n"
    "\n"
    "Checks ASL series for what perfq cbf needs: required BIDS fields, times in\n"
    "milliseconds, vendor field names, the aslcontext (and what the images suggest when it is\n"
    "missing), the M0's sidecar. A folder is searched for *_asl.nii[.gz] files and for NIfTI\n"
    "images whose JSON sidecar has ArterialSpinLabelingType (a converter's output). Each\n"
    "finding names the file and the field, says what is wrong and how to fix it. Nothing is\n"
    "written.\n"
    "\n"
    "  --json          one JSON document: a list of series, each with its findings\n"
    "  --propose DIR   write each series completed with the proposed values into DIR for\n"
    "                  review: <name>_asl.json (every value supplied listed under\n"
    "                  PerfqProposed), <name>_aslcontext.tsv (the images' suggestion) and\n"
    "                  <name>_asl.nii[.gz], a link to the image; then check it again. The\n"
    "                  input is never touched\n"
    "  --overwrite     with --propose: replace files of an earlier proposal\n"
    "\n"
    "Exit status: 0 every series ready for perfq cbf (warnings allowed), 1 an error found,\n"
    "2 a usage error.\n";

nlohmann::json to_json(const perfq::io::SeriesCheck& c) {
  nlohmann::json findings = nlohmann::json::array();
  for (const auto& f : c.findings) {
    nlohmann::json one = {{"severity", perfq::io::to_string(f.severity)},
                          {"file", f.file},
                          {"field", f.field},
                          {"problem", f.problem},
                          {"fix", f.fix}};
    if (!f.proposed.empty()) one["proposed"] = nlohmann::json::parse(f.proposed);
    findings.push_back(one);
  }
  nlohmann::json out = {{"series", c.asl_path},
                        {"sidecar", c.sidecar_path},
                        {"ready", c.ready()},
                        {"findings", findings}};
  if (!c.suggested_context.empty()) out["suggested_aslcontext"] = c.suggested_context;
  return out;
}

void print(const perfq::io::SeriesCheck& c, std::ostream& out) {
  out << c.asl_path << ": " << (c.ready() ? "ready" : "not ready") << "\n";
  for (const auto& f : c.findings) {
    out << "  " << perfq::io::to_string(f.severity) << ": " << f.file;
    if (!f.field.empty()) out << ": " << f.field;
    out << ": " << f.problem << "\n    fix: " << f.fix;
    if (!f.proposed.empty()) out << " (proposed: " << f.proposed << ")";
    out << "\n";
  }
  if (!c.suggested_context.empty()) {
    out << "  suggested aslcontext:";
    for (const auto& t : c.suggested_context) out << " " << t;
    out << "\n";
  }
}

}  // namespace

int run_check(const std::vector<std::string>& raw, std::ostream& out, std::ostream& /*err*/) {
  if (wants_help(raw)) {
    out << kCheckHelp;
    return 0;
  }
  const Args args(raw, {"--propose"}, {"--json", "--overwrite"}, {});
  if (args.positional().size() != 1) {
    throw UsageError{"expected one series or folder, got " +
                     std::to_string(args.positional().size())};
  }
  const std::vector<std::string> series = perfq::io::find_asl_series(args.positional()[0]);
  if (series.empty()) {
    throw perfq::InputError(args.positional()[0], "", "no ASL series found");
  }
  bool ready = true;
  nlohmann::json all = nlohmann::json::array();
  for (const std::string& path : series) {
    const perfq::io::SeriesCheck c = perfq::io::check_series(path);
    ready = ready && c.ready();
    if (args.flag("--json")) {
      all.push_back(to_json(c));
    } else {
      print(c, out);
    }
    const auto propose = args.text("--propose");
    if (!propose || c.findings.empty() || perfq::io::read_nifti_info(path).volumes < 2) continue;
    const perfq::io::Proposal p = perfq::io::write_proposal(c, *propose, args.flag("--overwrite"));
    const perfq::io::SeriesCheck again = perfq::io::check_series(p.asl_path);
    if (args.flag("--json")) {
      all.back()["proposal"] = {
          {"series", p.asl_path}, {"supplied", p.supplied}, {"check", to_json(again)}};
      continue;
    }
    out << "  proposed: " << p.asl_path << "\n";
    for (const auto& s : p.supplied) out << "    supplied " << s << "\n";
    print(again, out);
  }
  if (args.flag("--json")) out << all.dump(2) << "\n";
  return ready ? 0 : 1;
}

}  // namespace perfq_cli
