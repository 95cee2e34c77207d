"""``psnmf run`` and ``psnmf scan`` end to end on a file, and the HTML report in Chromium."""

import base64
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from psnmf import metrics, progress
from psnmf.cli import main
from psnmf.figures import PHASE_COLOURS

import edx_files

OUTPUTS = (
    "maps.png",
    "spectra.png",
    "composition.csv",
    "composition.json",
    "psnmf_spectra.hspy",
    "psnmf_maps.hspy",
    "psnmf_results.npz",
    "psnmf_spectra.csv",
    "report.html",
)


@pytest.fixture(scope="module")
def data():
    return edx_files.simulated_cube()


@pytest.fixture(scope="module")
def cube_file(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("edx") / "particles.hspy"
    return edx_files.write(path, edx_files.edx_signal(data), "hspy")


@pytest.fixture(scope="module")
def run_dir(data, cube_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    k_factors = ",".join(f"{line}={k!r}" for line, k in data.k_factors.items())
    argv = ["run", str(cube_file), "-k", "3", "--lines", ",".join(data.lines)]
    argv += ["--kfactors", k_factors, "--threads", "2", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    return out


def test_run_writes_every_output(run_dir):
    for name in OUTPUTS:
        assert (run_dir / name).stat().st_size > 0, name
    for name in ("maps.png", "spectra.png"):
        assert (run_dir / name).read_bytes().startswith(b"\x89PNG")


def test_run_composition_holds_the_phases(run_dir, data):
    saved = np.load(run_dir / "psnmf_results.npz")
    order = metrics.match_components(data.spectra, saved["spectra"])
    table = json.loads((run_dir / "composition.json").read_text())
    assert table["lines"] == list(data.lines)
    atomic = np.array(table["atomic_percent"])
    assert atomic.shape == (3, len(data.lines))
    # each phase has the true elements: major ones present, absent ones near zero
    np.testing.assert_array_equal(atomic[order] > 10.0, data.atomic_percent > 10.0)
    assert np.all(atomic[order][data.atomic_percent == 0] < 2.0)
    # the simulator's k-factors were given: compositions within 5 at% (the smallest phase,
    # Fe3O4 particles with about 7000 counts, has a Poisson sigma of about 1.5 at%)
    np.testing.assert_allclose(atomic[order], data.atomic_percent, atol=5.0)
    rows = (run_dir / "composition.csv").read_text().splitlines()
    assert len(rows) == 1 + 3
    assert rows[0].startswith("spectrum," + ",".join(f"{ln}_atomic_percent" for ln in data.lines))


def test_report_is_self_contained(run_dir):
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 2
    assert all(base64.b64decode(img).startswith(b"\x89PNG") for img in images)
    assert not re.search(r'(src|href)="(http|file|/)', text)
    for expected in ("Fe_Ka", "k-factor", "Versions", "rosettasciio"):
        assert expected in text


def _chromium():
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (.ci/run installs Debian's chromium)")
        pytest.skip("chromium not installed (apt-get install chromium); required in CI")
    return found


def _screenshot(html_path, png_path):
    subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={png_path}",
            "--window-size=1100,2600",
            html_path.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return np.asarray(Image.open(png_path).convert("RGB"), dtype=np.int32)


def _pixels_near(pixels, colour, radius=40):
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int(np.count_nonzero(np.linalg.norm(pixels - rgb, axis=-1) < radius))


def test_report_shows_its_images_in_chromium(run_dir, tmp_path):
    pixels = _screenshot(run_dir / "report.html", tmp_path / "report.png")
    assert pixels.shape[0] > 1000 and pixels.std() > 10  # not a blank page
    # the same page without its images, as a control
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    bare = tmp_path / "bare.html"
    bare.write_text(re.sub(r"<img [^>]*>", "", text), encoding="utf-8")
    control = _screenshot(bare, tmp_path / "bare.png")
    for colour in PHASE_COLOURS[:3]:  # each phase's map and spectrum colour
        assert _pixels_near(pixels, colour) > 300, colour
        assert _pixels_near(control, colour) < 10, colour


def test_scan_suggests_the_number_of_phases(cube_file, capsys):
    assert main(["scan", str(cube_file), "--kmax", "4", "--threads", "2", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "suggested k: 3 (scree" in printed
    assert "3 (held-out likelihood)" in printed
    assert re.search(r"suggested bin factor for k = 3: \d+", printed)


def test_run_rejects_a_file_without_a_spectrum_image(tmp_path, capsys):
    image = edx_files.write(tmp_path / "image.hspy", edx_files.image_signal(), "hspy")
    assert main(["run", str(image), "-k", "2", "--quiet", "--out", str(tmp_path / "o")]) == 2
    assert "no EDX spectrum image" in capsys.readouterr().err


def test_run_rejects_bad_options(cube_file, tmp_path, capsys):
    out = str(tmp_path / "o")
    assert main(["run", str(cube_file), "-k", "2", "--kfactors", "Fe_Ka", "--out", out]) == 2
    assert "expected LINE=K" in capsys.readouterr().err
    argv = ["run", str(cube_file), "-k", "2", "--lines", "Fe_Ka", "--elements", "Fe"]
    assert main([*argv, "--out", out]) == 2
    assert "not both" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", str(cube_file), "-k", "2", "--bin", "zero", "--out", out])


def test_progress_bar_shows_after_a_second_unless_quiet(capsys):
    import time

    with progress.step("slow step"):
        time.sleep(1.3)
    assert "slow step" in capsys.readouterr().err
    with progress.step("quiet step", quiet=True):
        time.sleep(1.3)
    with progress.step("fast step"):
        pass
    err = capsys.readouterr().err
    assert "quiet step" not in err and "fast step" not in err


def test_scree_noise_edge_separates_signal_from_poisson_noise():
    from psnmf.scan import scree

    rng = np.random.default_rng(3)
    pixel_dose = rng.uniform(50, 150, 400)
    spectrum_a, spectrum_b = rng.dirichlet(np.ones(256)), rng.dirichlet(np.ones(256))
    one_phase = rng.poisson(np.outer(pixel_dose, spectrum_a))
    singular, edge = scree(one_phase, 5)
    assert singular[0] > edge > singular[1]  # rank 1 + noise: one value above the edge
    share = rng.uniform(0, 1, 400)[:, None]
    two_phases = rng.poisson(pixel_dose[:, None] * (share * spectrum_a + (1 - share) * spectrum_b))
    singular, edge = scree(two_phases, 5)
    assert singular[1] > edge > singular[2]


def test_lines_and_k_factors_default_from_the_file_with_a_note(data):
    from argparse import Namespace

    from psnmf import cli
    from psnmf.simulate import default_k_factor

    dataset = Namespace(energy=data.energy, elements=("O", "Fe", "Xe"))
    notes = []
    args = Namespace(lines=None, elements=None)
    # the file's elements, each on its default line (Ka up to Ge, then La)
    lines = cli._resolve_lines(args, dataset, 200.0, notes)
    assert lines == ["O_Ka", "Fe_Ka", "Xe_La"]
    factors = cli._resolve_k_factors(lines, {"Fe_Ka": 1.25}, notes)
    assert factors == {
        "O_Ka": default_k_factor("O_Ka"),
        "Fe_Ka": 1.25,
        "Xe_La": default_k_factor("Xe_La"),
    }
    assert any("O_Ka, Xe_La" in note and "not measured" in note for note in notes)
    with pytest.raises(ValueError, match="not quantified"):
        cli._resolve_k_factors(lines, {"Pt_La": 2.0}, notes)
