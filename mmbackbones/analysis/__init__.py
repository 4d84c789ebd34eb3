"""Analysis tools from the papers, beyond the design-space toolkit
(:mod:`mmbackbones.design_space`):

* :mod:`.rank`: ReXNet's empirical rank study (Han et al., CVPR 2021, Sec. 3): the rank of
  the output feature matrix of random single layers and inverted bottlenecks against the
  dimension ratio, per nonlinearity.

ReXNet's channel-configuration search sits with the design-space code it samples and
trains with (:mod:`mmbackbones.design_space.channel_search`); NetAdapt (MobileNetV3,
Howard et al., ICCV 2019) is its own package (:mod:`mmbackbones.netadapt`).

Each module is pure (records in, numbers out); the plots are drawn by the ``tools/``
scripts. Nothing is imported here, so that importing one tool does not pull in the others.
"""
