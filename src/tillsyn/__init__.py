"""tillsyn: continuous technical control monitoring.

The distribution holds four packages with one direction of imports:
``collectors`` (facts from a target) <- ``checks`` (facts to results) <- ``agent``
(runner, evidence, CLI) <- ``store`` (the central store). Check authors use the
small public surface in :mod:`tillsyn.plugin`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tillsyn")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
