"""
mtrl's disjoint policy (``should_use_disjoint_policy``, mtrl/agent/components/actor.py): one whole actor network and
one whole pair of Q-networks per task, nothing shared but the (parameter-free) observation encoder.

It is the multi-head policy with an empty shared trunk: every layer moves into the per-task heads, which
:class:`~mtsb3.mtsac.conditioning.TaskHeads` runs as one batched matmul per layer over task blocks
(:class:`~mtsb3.common.experts.BatchedMLP`), never a loop over tasks.
"""

from __future__ import annotations

#: SB3's SAC default hidden sizes, used when ``net_arch`` is not given
SB3_SAC_NET_ARCH: list[int] = [256, 256]


def disjoint_net_arch(
    net_arch: list[int] | dict[str, list[int]] | None, multi_head: bool, head_net_arch: list[int] | None
) -> list[int]:
    """
    The per-task network of a disjoint policy.

    :param net_arch: the hidden sizes the user asked for (a dict needs the same ``pi`` and ``qf``)
    :param multi_head: the user's ``multi_head`` (must be off: the disjoint policy is all heads already)
    :param head_net_arch: the user's ``head_net_arch`` (must be empty)
    :return: the hidden sizes of each task's network, used as ``head_net_arch`` on an empty trunk
    :raises ValueError: for ``multi_head=True``, a ``head_net_arch`` or different actor and critic sizes
    """
    if multi_head or head_net_arch:
        raise ValueError(
            "disjoint_policy=True already gives each task its whole network (all layers are task heads): "
            f"do not also set multi_head=True or head_net_arch, got multi_head={multi_head}, head_net_arch={head_net_arch}"
        )
    if net_arch is None:
        return list(SB3_SAC_NET_ARCH)
    if isinstance(net_arch, dict):
        if list(net_arch.get("pi", [])) != list(net_arch.get("qf", [])):
            raise ValueError(f"disjoint_policy=True needs the same actor and critic sizes (one head_net_arch), got {net_arch}")
        return list(net_arch["pi"])
    return list(net_arch)
