"""The wheel carries the whole product: the UI scripts, the sample data and the migrations,
and an installed copy finds them (not only a checkout)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [
    "pyproject.toml",
    "setup.py",
    "README.md",
    "Home.py",
    "ui_common.py",
    "pages",
    "sample_data",
    "workbench",
    "storage",
]


def _files(directory: str, pattern: str = "*") -> list[str]:
    return sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / directory).rglob(pattern)
        if p.is_file() and "__pycache__" not in p.parts
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (pip builds in the source tree, leaving build/ behind)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp / "dist"),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = (tmp / "dist").glob("prompt_workbench-*.whl")
    return built


def test_wheel_holds_the_app_the_sample_data_and_the_migrations(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    app = {"workbench/app/Home.py", "workbench/app/ui_common.py"}
    app |= {"workbench/app/" + f for f in _files("pages", "*.py") + _files("sample_data")}
    assert len(app) > 40 and not app - names, sorted(app - names)
    code = {f for f in _files("workbench", "*.py") + _files("storage", "*.py")}
    assert not code - names, sorted(code - names)
    assert "storage/alembic/script.py.mako" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/")) or n.endswith("setup.py")]


def test_installed_copy_finds_the_app_and_migrates_a_database(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    code = (
        "import workbench, storage\n"
        "from workbench import config\n"
        "from storage import db, migrations\n"
        "assert workbench.__file__.startswith(sys.argv[1]), workbench.__file__\n"
        "assert storage.__file__.startswith(sys.argv[1]), storage.__file__\n"
        "print(config.APP_ROOT)\n"
        "with db.engine().connect() as conn: print(migrations.current(conn) == migrations.HEAD)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target), "WORKBENCH_HOME": str(tmp_path / "home")}
    out = subprocess.run(
        [sys.executable, "-c", "import sys\n" + code, str(target)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    app_root, at_head = out.stdout.split()
    assert Path(app_root) == target / "workbench" / "app"
    pages = sorted(p.name for p in (Path(app_root) / "pages").glob("*.py"))
    assert (Path(app_root) / "Home.py").is_file() and pages == [Path(f).name for f in _files("pages", "*.py")]
    assert (Path(app_root) / "sample_data" / "support_qa.csv").is_file()
    assert at_head == "True"
