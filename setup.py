"""Builds the optional C loops (auditlog/_speedups.c); all metadata is in pyproject.toml.

``optional=True``: without a C compiler or OpenSSL's headers the build goes on without the
extension and auditlog runs its pure-Python loops instead (same results, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "auditlog._speedups",
            sources=["auditlog/_speedups.c"],
            libraries=["crypto"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ]
)
