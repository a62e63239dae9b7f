"""Packaging that pyproject.toml cannot express: the Streamlit app ships inside the wheel.

Home.py, ui_common.py, pages/ and sample_data/ stay at the top of the repository, so
`streamlit run Home.py` works from a checkout; the wheel carries them as `workbench/app/`,
where `workbench.config.APP_ROOT` finds them when the package is installed. Everything
else (metadata, dependencies, the `workbench` command) is in pyproject.toml.
"""

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

SKIP = ["*__pycache__*"]
# Directories without __init__.py (the app's pages and data, the Alembic scripts) are listed as
# packages too: setuptools only ships what it is told is a package, and warns about the rest.
APP = ["workbench.app"] + [
    f"workbench.app.{name}"
    for name in find_namespace_packages(include=["pages", "sample_data", "sample_data.*"], exclude=SKIP)
]
CODE = find_namespace_packages(include=["workbench", "workbench.*", "storage", "storage.*"], exclude=SKIP)


class BuildPy(build_py):
    """The app's directory is the repository's top, which also holds this file: leave it out."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if not (package == "workbench.app" and m[1] == "setup")]


setup(
    packages=CODE + APP,
    package_dir={"workbench.app": "."},
    package_data={**{name: ["*"] for name in APP if ".sample_data" in name}, "storage.alembic": ["*.mako"]},
    cmdclass={"build_py": BuildPy},
)
