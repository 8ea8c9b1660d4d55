"""The wheel: one top-level package, with everything `stack up`, `run`, `worker` and `web` need."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        cwd=build,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = out.glob("tallyroom-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_installs_only_tallyroom(wheel):
    tops = {name.split("/", 1)[0] for name in wheel.namelist()}
    dist_info = {top for top in tops if top.endswith(".dist-info")}
    assert len(dist_info) == 1 and dist_info.pop().startswith("tallyroom-")
    assert tops - {top for top in tops if top.endswith(".dist-info")} == {"tallyroom"}


def test_the_wheel_carries_its_package_data(wheel):
    names = set(wheel.namelist())
    for needed in (
        "tallyroom/stack_files/pom.xml",  # stack up: the broker's jars
        "tallyroom/stack_files/log4j2.properties",
        "tallyroom/streams/app.py",  # worker
        "tallyroom/consumers/web/templates/index.html",  # web
        "tallyroom/consumers/web/static/dashboard.js",
        "tallyroom/schemas/json/alert.schema.json",
        "tallyroom/bench/tools-log4j2.properties",
    ):
        assert needed in names, needed
    assert not any("/tests/" in name or name.startswith("tests/") for name in names)
