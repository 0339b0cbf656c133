"""perfq.interfaces.QuantifyCBF as a node of a Nipype workflow, and the Python example."""

import os
import subprocess
import sys

import numpy as np
import pytest

import perfq


def test_quantify_cbf_runs_as_a_nipype_node(phantom_series, tmp_path):
    pytest.importorskip("nipype")
    nibabel = pytest.importorskip("nibabel")
    from nipype import Node, Workflow

    from perfq.interfaces import QuantifyCBF

    asl, options, tool_out = phantom_series["multi"]
    node = Node(QuantifyCBF(in_file=asl, options=options, backend="cpu"), name="perfq_cbf")
    workflow = Workflow(name="asl", base_dir=str(tmp_path))
    workflow.add_nodes([node])
    graph = workflow.run()
    (ran,) = graph.nodes()
    outputs = ran.result.outputs
    assert os.path.basename(outputs.cbf) == "sub-01_cbf.nii.gz"
    assert os.path.basename(outputs.att) == "sub-01_att.nii.gz"
    assert len(outputs.out_files) == len(os.listdir(tool_out))
    for name in ("cbf", "att"):
        mine = np.asanyarray(nibabel.load(getattr(outputs, name)).dataobj)
        tools = np.asanyarray(nibabel.load(tool_out / f"sub-01_{name}.nii.gz").dataobj)
        assert np.array_equal(mine, tools)
    assert outputs.median_cbf > 0


def test_the_python_example_recovers_the_phantom(tmp_path):
    example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python",
                           "quantify_phantom.py")
    pytest.importorskip("nibabel")
    r = subprocess.run([sys.executable, example, str(tmp_path / "out")], capture_output=True,
                       text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "grey matter: CBF" in r.stdout
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert (tmp_path / "out" / "cbf_att.png").stat().st_size > 1000
