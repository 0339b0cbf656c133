"""Shared fixtures: phantom datasets written once per session, and perfq cbf run on them."""

import os
import subprocess
import sys

import pytest

import perfq

# The phantom cases of the library's own pipeline tests: name -> (phantom, perfq cbf's
# options given the phantom's truth folder).
CASES = {
    "single": (dict(delays=[1.8]), lambda truth: {}),
    "multi": (dict(delays=[0.5, 1.0, 1.5, 2.0, 2.5]),
              lambda truth: dict(att_prior=True, arterial=True)),
    "time_encoded": (dict(delays=[0.2], time_encoded=8), lambda truth: {}),
    "pasl": (dict(delays=[2.5], pasl=True), lambda truth: {}),
    "reference": (dict(delays=[1.8]), lambda truth: dict(
        ref_tissue="csf", ref_mask=os.path.join(truth, "sub-01_label-ventricles_mask.nii.gz"),
        robust=True)),
    "pvc": (dict(delays=[1.8]), lambda truth: dict(
        pvc_gm=os.path.join(truth, "sub-01_label-GM_mask.nii.gz"),
        pvc_wm=os.path.join(truth, "sub-01_label-WM_mask.nii.gz"), m0_smooth=6,
        mask=os.path.join(truth, "sub-01_mask.nii.gz"))),
}


def tool_arguments(options):
    """perfq cbf's arguments for Python-named options (flags only here)."""
    out = []
    for key, value in options.items():
        out.append("--" + key.rstrip("_").replace("_", "-"))
        if value is not True:
            out.append(str(value))
    return out


def run_tool(*args):
    """Runs the perfq tool of this installation (python -m perfq)."""
    return subprocess.run([sys.executable, "-m", "perfq", *args], capture_output=True,
                          text=True, check=False)


@pytest.fixture(scope="session")
def phantom_series(tmp_path_factory):
    """name -> (path of the ASL series, options, folder perfq cbf wrote to)."""
    root = tmp_path_factory.mktemp("phantoms")
    out = {}
    for name, (phantom, make_options) in CASES.items():
        asl = perfq.write_phantom(root / name, dims=(30, 36, 24), repeats=2, snr=10, **phantom)
        options = make_options(str(root / name / "derivatives" / "truth" / "sub-01" / "perf"))
        tool_out = root / f"{name}-tool"
        r = run_tool("cbf", asl, "--backend", "cpu", "-o", str(tool_out),
                     *tool_arguments(options))
        assert r.returncode == 0, r.stdout + r.stderr
        out[name] = (asl, options, tool_out)
    return out
