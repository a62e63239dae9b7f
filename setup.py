"""Packaging that pyproject.toml cannot express: the Streamlit app ships inside the wheel.

Home.py, ui_common.py, pages/ and sample_data/ stay at the top of the repository, so
`streamlit run Home.py` works from a checkout; the wheel carries them as `workbench/app/`,
where `workbench.config.APP_ROOT` finds them when the package is installed. Everything
else (metadata, dependencies, the `workbench` command) is in pyproject.toml.
"""

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    """The app's directory is the repository's top, which also holds this file: leave it out."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if not (package == "workbench.app" and m[1] == "setup")]


setup(
    packages=find_packages(include=["workbench", "workbench.*", "storage", "storage.*"]) + ["workbench.app"],
    package_dir={"workbench.app": "."},
    package_data={
        "workbench.app": ["pages/*.py", "sample_data/*", "sample_data/**/*"],
        "storage": ["alembic/*.py", "alembic/*.mako", "alembic/versions/*.py"],
    },
    cmdclass={"build_py": BuildPy},
)
