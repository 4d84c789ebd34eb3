"""The benchmark's one error type, a bad request said in one line (the CLI prints it as
its usage error). Every module of the package, and NetAdapt's timing, raises it."""

from __future__ import annotations


class BenchmarkError(ValueError):
    """A bad request (unknown backbone, arch, peer, mode, ...), said in one line."""
