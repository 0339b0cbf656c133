"""perfq.quantify_series against the perfq tool: the same maps bit for bit, the same files."""

import json
import os

import numpy as np
import pytest

import perfq
from conftest import CASES

nibabel = pytest.importorskip("nibabel")


@pytest.mark.parametrize("name", sorted(CASES))
def test_maps_equal_the_tools_files_bit_for_bit(phantom_series, name):
    asl, options, tool_out = phantom_series[name]
    result = perfq.quantify_series(asl, backend="cpu", **options)
    prefix = result.prefix
    for map_name, array in result.maps().items():
        file_name = {"status": "fitstatus", "arterial_att": "aatt"}.get(map_name, map_name)
        path = tool_out / f"{prefix}_{file_name}.nii.gz"
        assert path.exists(), path
        written = np.asanyarray(nibabel.load(path).dataobj)
        assert written.shape == array.shape
        assert written.dtype == array.dtype, map_name
        assert np.array_equal(written, array), map_name
        assert array.flags.f_contiguous and not array.flags.writeable
    provenance = json.loads((tool_out / f"{prefix}_cbf.json").read_text())
    assert result.provenance == provenance
    assert np.allclose(nibabel.load(tool_out / f"{prefix}_cbf.nii.gz").affine, result.affine)


def test_to_nifti_writes_the_tools_files(phantom_series, tmp_path):
    asl, options, tool_out = phantom_series["multi"]
    result = perfq.quantify_series(asl, backend="cpu", **options)
    written = result.to_nifti(tmp_path / "out")
    assert sorted(os.path.basename(p) for p in written) == sorted(os.listdir(tool_out))
    for path in written:
        name = os.path.basename(path)
        if name.endswith(".json"):
            assert json.loads(open(path).read()) == json.loads((tool_out / name).read_text())
        elif name.endswith(".tsv"):
            assert open(path).read() == (tool_out / name).read_text()
        else:
            a = np.asanyarray(nibabel.load(path).dataobj)
            b = np.asanyarray(nibabel.load(tool_out / name).dataobj)
            assert np.array_equal(a, b), name
    with pytest.raises(perfq.OutputError, match="overwrite"):
        result.to_nifti(tmp_path / "out")
    assert len(result.to_nifti(tmp_path / "out", overwrite=True)) == len(written)
    # Uncompressed: the same images as .nii.
    for path in result.to_nifti(tmp_path / "nii", compressed=False):
        name = os.path.basename(path)
        if name.endswith(".nii"):
            a = np.asanyarray(nibabel.load(path).dataobj)
            b = np.asanyarray(nibabel.load(tool_out / (name + ".gz")).dataobj)
            assert np.array_equal(a, b), name


def test_quality_indices_of_a_series(phantom_series):
    asl, options, tool_out = phantom_series["multi"]
    result = perfq.quantify_series(asl, backend="cpu", **options)
    table = (tool_out / (result.prefix + "_desc-qualitycontrol_cbf.tsv")).read_text().splitlines()
    for name, value in zip(table[0].split("\t"), table[1].split("\t")):
        assert result.quality[name] == (None if value == "n/a" else pytest.approx(float(value)))
    assert result.quality["gm_mean_cbf"] is None  # no tissue maps given
    assert result.quality_sidecar["NotDefined"]["gm_mean_cbf"] == "no GM probability map"
    assert result.quality["brain_median_cbf"] > 0


def test_options_take_python_names_and_nibabel_images(phantom_series, tmp_path):
    asl, _, _ = phantom_series["single"]
    truth = os.path.join(os.path.dirname(asl), "..", "..", "derivatives", "truth", "sub-01",
                         "perf")
    mask_path = os.path.join(truth, "sub-01_mask.nii.gz")
    by_path = perfq.quantify_series(asl, backend="cpu", mask=mask_path, lambda_=0.95, t1b=1.6)
    by_image = perfq.quantify_series(asl, backend="cpu", mask=nibabel.load(mask_path),
                                     lambda_=0.95, t1b=1.6)
    assert np.array_equal(by_path.cbf, by_image.cbf)
    plain = perfq.quantify_series(asl, backend="cpu")
    assert not np.array_equal(plain.cbf, by_path.cbf)
    assert plain.att is None and plain.abv is None
    assert "att_prior" in perfq.series_options() and "lambda_" in perfq.series_options()


def test_a_configuration_file_applies_its_matching_entries(phantom_series, tmp_path):
    asl, _, _ = phantom_series["single"]
    config = tmp_path / "config.json"
    config.write_text(json.dumps([
        {"filter": {"subject": "01"}, "options": {"m0_scale": 2, "lambda": 0.8}},
        {"filter": {"subject": "02"}, "options": {"m0_scale": 5}}]))
    plain = perfq.quantify_series(asl, backend="cpu")
    scaled = perfq.quantify_series(asl, backend="cpu", config=config, lambda_=0.9)
    record = scaled.provenance["Configuration"]
    assert record["EntriesApplied"] == [0]
    assert record["Options"] == {"m0_scale": 2, "lambda": 0.8}
    assert record["OverriddenByCommandLine"] == ["lambda"]  # the keyword beats the file
    assert scaled.provenance["BloodBrainPartitionCoefficient"] == 0.9
    assert scaled.median_cbf == pytest.approx(plain.median_cbf / 2, rel=1e-3)
    assert "Configuration" not in plain.provenance
    config.write_text('[{"options": {"threads": 2}}]')
    with pytest.raises(perfq.InputError, match='entry 0: option "threads"') as error:
        perfq.quantify_series(asl, backend="cpu", config=config)
    assert error.value.file == str(config)


def test_errors_name_the_file_the_field_or_the_option(phantom_series, tmp_path):
    asl, _, _ = phantom_series["single"]
    with pytest.raises(perfq.InvalidArgumentError, match="--t1b"):
        perfq.quantify_series(asl, t1b=-1)
    with pytest.raises(perfq.InvalidArgumentError, match="unknown option"):
        perfq.quantify_series(asl, no_such_option=1)
    with pytest.raises(perfq.InvalidArgumentError, match="a flag"):
        perfq.quantify_series(asl, att_prior=3)
    with pytest.raises(perfq.InputError) as missing:
        perfq.quantify_series(tmp_path / "sub-02_asl.nii.gz")
    assert missing.value.file.endswith("sub-02_asl.nii.gz")
    assert isinstance(missing.value, ValueError)
    bad = tmp_path / "bad"
    os.makedirs(bad)
    for name in os.listdir(os.path.dirname(asl)):
        src = os.path.join(os.path.dirname(asl), name)
        if name.endswith(".json") and "_asl" in name:
            sidecar = json.load(open(src))
            del sidecar["M0Type"]
            json.dump(sidecar, open(bad / name, "w"))
        else:
            os.symlink(src, bad / name)
    with pytest.raises(perfq.InputError) as field:
        perfq.quantify_series(bad / os.path.basename(asl))
    assert field.value.field == "M0Type"
    assert field.value.file.endswith("_asl.json")
    if not perfq.cuda_available():
        with pytest.raises(perfq.BackendError):
            perfq.quantify_series(asl, backend="cuda")


def test_the_package_carries_the_tool():
    from conftest import run_tool

    r = run_tool("--version")
    assert r.returncode == 0 and perfq.__version__ in r.stdout + r.stderr


def test_nibabel_reads_the_gzip_members_of_a_large_map(tmp_path):
    """perfq deflates 1 MiB of a file per gzip member, in parallel; nibabel (Python's gzip)
    must read the members as one stream and give the values of the uncompressed twin."""
    nibabel = pytest.importorskip("nibabel")
    asl = perfq.write_phantom(tmp_path / "bids", dims=(110, 110, 80), repeats=1)
    result = perfq.quantify_series(asl, backend="cpu")
    gz = [p for p in result.to_nifti(tmp_path / "gz") if p.endswith("_cbf.nii.gz")][0]
    nii = [p for p in result.to_nifti(tmp_path / "nii", compressed=False)
           if p.endswith("_cbf.nii")][0]
    assert os.path.getsize(nii) > 3 * 2**20  # four members at least
    with open(gz, "rb") as f:
        assert f.read().count(b"\x1f\x8b\x08") >= 4  # member headers (and maybe data)
    a = nibabel.load(gz)
    b = nibabel.load(nii)
    assert np.array_equal(np.asanyarray(a.dataobj), np.asanyarray(b.dataobj))
    assert np.array_equal(a.affine, b.affine)
    assert np.array_equal(np.asanyarray(a.dataobj), result.cbf)
