"""Design-space toolkit (Radosavovic et al., "On Network Design Spaces for Visual
Recognition", ICCV 2019): spaces as data, seeded samplers with analytic complexity,
a brief-training sweep, and distribution statistics (EDF, normalized EDF, KS, random-search
efficiency). Plots live in :mod:`.plots`; everything else is pure."""

from .sampling import build_classifier, complexity, sample
from .spaces import SPACES, DesignSpace, Param, get_space, log_ints
from .stats import (
    edf,
    edf_area,
    effective_n,
    expected_min,
    ks,
    ks_vs_sample_size,
    normalized_weights,
    random_search_efficiency,
    weighted_ks,
)

__all__ = [
    'SPACES',
    'DesignSpace',
    'Param',
    'build_classifier',
    'complexity',
    'edf',
    'edf_area',
    'effective_n',
    'expected_min',
    'get_space',
    'ks',
    'ks_vs_sample_size',
    'log_ints',
    'normalized_weights',
    'random_search_efficiency',
    'sample',
    'weighted_ks',
]
