"""The wheel: what it holds, and (slow) that the installed commands run from an empty folder."""

from __future__ import annotations

import gzip
import os
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

# The commands checked from an empty folder (the wheel declares every [project.scripts] entry).
SCRIPTS = {
    "seqmodel-train": "seqmodel.train:main",
    "seqmodel-predict": "seqmodel.predict:main",
    "seqmodel-evaluate": "seqmodel.evaluate:main",
    "seqmodel-prepare": "seqmodel.prepare:main",
    "seqmodel-simulate": "seqmodel.simulate_cli:main",
}
# Not part of a source checkout (git ignores them), so not copied to the build folder.
NOT_SOURCE = (".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", "outputs", "multirun")
NOT_SOURCE += ("wandb", "lightning_logs", ".pytest_cache", ".ruff_cache", "bench_out", ".gl", "prepared")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """(the wheel, pip's output), built from a copy of the source tree (the checkout is left
    untouched), with a stand-in for data/prepared/ (the 60-MB result sets) that must not ship."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(PROJECT_ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    (source / "data" / "prepared" / "ctcf").mkdir(parents=True)
    (source / "data" / "prepared" / "ctcf" / "train.fa.gz").write_bytes(b"not shipped")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(root)]
    result = subprocess.run(
        [*command, str(source)], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = root.glob("seqmodel-*.whl")
    return wheel, result.stdout + result.stderr


def test_wheel_holds_the_package_configs_and_demo_data_and_nothing_else(built):
    wheel, _ = built
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    dist_info = {n for n in names if n.split("/")[0].endswith(".dist-info")}
    assert {n.split("/")[0] for n in names - dist_info} == {"seqmodel"}, sorted(names - dist_info)

    expected = (
        _files("seqmodel", "**/*.py", "seqmodel")  # every module, so every sub-package
        | _files("configs", "**/*.yaml", "seqmodel/configs")
        | _files("data", "*", "seqmodel/demo_data")  # the files of data/, not data/prepared/
    )
    assert {"seqmodel/configs/train.yaml", "seqmodel/demo_data/ctcf_demo.fa.gz"} <= expected
    assert names - dist_info == expected, sorted((names - dist_info) ^ expected)


def test_wheel_declares_the_commands_and_an_spdx_license(built):
    wheel, output = built
    with zipfile.ZipFile(wheel) as archive:
        dist_info = next(n.split("/")[0] for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
        names = set(archive.namelist())
        metadata = archive.read(f"{dist_info}/METADATA").decode()
    scripts = entry_points.split("[console_scripts]")[1].split("\n[")[0]
    declared = dict(line.split(" = ") for line in scripts.strip().splitlines())
    assert SCRIPTS.items() <= declared.items()
    if sys.version_info >= (3, 11):
        import tomllib

        project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
        assert declared == project["scripts"]
    for target in declared.values():  # every command's module is in the wheel
        assert f"{target.split(':')[0].replace('.', '/')}.py" in names, target
    assert "License-Expression: MIT" in metadata.splitlines()
    assert "`project.license` as a TOML table" not in output  # the deprecated form
    assert "would be ignored" not in output  # a folder shipped without being declared a package


@pytest.mark.slow
def test_installed_wheel_runs_every_command_from_an_empty_folder(built, tmp_path):
    """A fresh virtualenv holding only the wheel (its dependencies come from this environment's
    site-packages, read through a .pth file, so nothing is downloaded and the checkout is not on
    the path); every command runs from an empty folder, relative paths read from there."""
    wheel, _ = built
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).strip())
    (purelib / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel])

    work = tmp_path / "empty"
    work.mkdir()
    folders = _run([python, "-c", "import seqmodel.config as c; print(c.CONFIG_DIR, c.DEMO_DATA_DIR)"], work)
    assert folders.split() == [str(purelib / "seqmodel" / name) for name in ("configs", "demo_data")]

    bin_dir = env_dir / "bin"
    _run([bin_dir / "seqmodel-train", "debug=fast", "hydra.run.dir=run"], work)
    assert (work / "run" / "checkpoints" / "last.ckpt").is_file()
    with gzip.open(PROJECT_ROOT / "data" / "ctcf_demo.fa.gz", "rt") as handle:
        (work / "three.fa").write_text("".join(">" + r for r in handle.read().split(">")[1:4]))
    predict = ["ckpt_path=run/checkpoints/last.ckpt", "input=three.fa", "output=risk.bedgraph"]
    _run([bin_dir / "seqmodel-predict", *predict, "hydra.run.dir=run_predict"], work)
    assert (work / "risk.bedgraph").stat().st_size > 0 and (work / "risk.sequences.tsv").is_file()
    evaluate = ["ckpt_path=run/checkpoints/last.ckpt", "output=results.json", "baselines.kmer_sizes=[3]"]
    _run([bin_dir / "seqmodel-evaluate", *evaluate, "hydra.run.dir=run_evaluate"], work)
    assert (work / "results.json").is_file()
    for command in ("seqmodel-prepare", "seqmodel-simulate"):
        assert "usage:" in _run([bin_dir / command, "--help"], work)
    written = {"results.json", "risk.bedgraph", "risk.sequences.tsv", "run", "run_evaluate", "run_predict"}
    assert {p.name for p in work.iterdir()} == written | {"three.fa"}


def _files(folder: str, pattern: str, installed_as: str) -> set[str]:
    """The source files `folder/pattern`, named as they are installed."""
    paths = (PROJECT_ROOT / folder).glob(pattern)
    return {f"{installed_as}/{p.relative_to(PROJECT_ROOT / folder)}" for p in paths if p.is_file()}


def _run(command: list, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["WANDB_MODE"] = "offline"
    result = subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout
