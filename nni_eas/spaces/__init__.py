"""Search spaces: elastic supernets, their presets and architectures.

The NNI model space (:class:`OFAMobileNetV3Space`, a ``nni.nas.nn.pytorch.ModelSpace``) is
imported lazily, so that ``import nni_eas.spaces`` does not import NNI.
"""

from __future__ import annotations

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    'arch': ('Arch', 'active_slots', 'canonical_arch', 'max_arch', 'min_arch', 'sample_arch',
             'validate_arch'),
    'config': ('OFAMobileNetV3Config', 'list_presets', 'load_space_config',),
    'ofa_mbv3': ('MobileNetV3Subnet', 'OFAMobileNetV3', 'build_subnet', 'resize_input', 'to_timm',),
    'nni_space': ('OFAMobileNetV3Space',),
})
