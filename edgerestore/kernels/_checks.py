"""Transitional: the checks moved to the public :mod:`edgerestore.kernels.checks`.

Kept only until ``kernels/noise.py`` and ``restorer.py`` (owned by other parts of the
issue-20 work) import :mod:`edgerestore.kernels.checks`; delete it at the merge.
"""

from edgerestore.kernels.checks import MAX_SIGMA, check_image, check_sigma  # noqa: F401
