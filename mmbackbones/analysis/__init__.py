"""Analysis tools from the papers, beyond the design-space toolkit
(:mod:`mmbackbones.design_space`):

* :mod:`.rank`: ReXNet's empirical rank study (Han et al., CVPR 2021, Sec. 3): the rank of
  the output feature matrix of random single layers and inverted bottlenecks against the
  dimension ratio, per nonlinearity.
* :mod:`.channel_search`: ReXNet's channel-configuration search: piecewise-linear block
  widths under a params / FLOPs budget, briefly trained with several seeds and ranked.
* NetAdapt-style width search and latency measurement (MobileNetV3, Howard et al., ICCV
  2019) live in their own modules next to these.

Each module is pure (records in, numbers out); the plots are drawn by the ``tools/``
scripts. Nothing is imported here, so that importing one tool does not pull in the others.
"""
