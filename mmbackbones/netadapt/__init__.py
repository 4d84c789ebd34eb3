"""NetAdapt (Yang et al., ECCV 2018) as MobileNetV3 uses it (Howard et al., ICCV 2019, 4.2):
shrink a backbone's widths, one knob at a time, until its latency on this CPU meets a target.

* :mod:`.search`: the loop (:class:`NetAdapt`, :class:`NetAdaptConfig`);
* :mod:`.knobs`: per-family width knobs, read from each family's ``layout()``;
* :mod:`.shrink`: weight transfer to a narrower network (largest-L2-norm filters kept);
* :mod:`.latency`: direct latency and the per-layer lookup table.
"""

from .knobs import FAMILIES, Knob, WidthKnobs, get_knobs
from .search import NetAdapt, NetAdaptConfig, select_proposal

__all__ = [
    'FAMILIES',
    'Knob',
    'NetAdapt',
    'NetAdaptConfig',
    'WidthKnobs',
    'get_knobs',
    'select_proposal',
]
