"""Packaging hook for what pyproject.toml cannot say: the top-level migrations/ folder ships
inside the distribution as the `twin._migrations` package (its versions/ as a subpackage), so
an installed twin (`pip install .`, a wheel) can migrate without a source checkout.
Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        *find_namespace_packages(include=["twin", "twin.*"]),
        "twin._migrations",
        "twin._migrations.versions",
    ],
    package_dir={"twin._migrations": "migrations"},
)
