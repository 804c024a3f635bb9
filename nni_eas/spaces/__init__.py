"""Search spaces: elastic supernets, their presets and architectures.

The NNI model space (:class:`OFAMobileNetV3Space`, a ``nni.nas.nn.pytorch.ModelSpace``) is
imported lazily, so that ``import nni_eas.spaces`` does not import NNI.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    'Arch': 'arch',
    'active_slots': 'arch',
    'canonical_arch': 'arch',
    'max_arch': 'arch',
    'min_arch': 'arch',
    'sample_arch': 'arch',
    'validate_arch': 'arch',
    'OFAMobileNetV3Config': 'config',
    'list_presets': 'config',
    'load_space_config': 'config',
    'MobileNetV3Subnet': 'ofa_mbv3',
    'OFAMobileNetV3': 'ofa_mbv3',
    'build_subnet': 'ofa_mbv3',
    'resize_input': 'ofa_mbv3',
    'to_timm': 'ofa_mbv3',
    'OFAMobileNetV3Space': 'nni_space',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
