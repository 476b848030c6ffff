"""Data parallelism under torchrun: which rank this process is, and the two collective decisions the loop needs.

One process (no ``WORLD_SIZE``) is a world of one and every function here is a no-op for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device | None = None  # this rank's device (cuda:LOCAL_RANK under torchrun)

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Dist:
    """torchrun: each rank on its own GPU (LOCAL_RANK -> set_device, NCCL), gloo on CPU; one process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=device)
    import torch.distributed as dist

    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), device)


def agreed_stop(dist_info: Dist, user_stop: bool, past_deadline: bool) -> tuple[bool, bool]:
    """(user stop, deadline) as every rank sees them: one rank's stop or deadline stops all ranks at the same step,
    so none is left blocking in an all-reduce the others have left."""
    if dist_info.world <= 1:
        return user_stop, past_deadline
    import torch.distributed as dist

    flags = torch.tensor([float(user_stop), float(past_deadline)], device=dist_info.device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return bool(flags[0].item()), bool(flags[1].item())


def mean_loss(dist_info: Dist, loss: torch.Tensor) -> float:
    """The loss averaged over ranks (a host sync: the trainer calls it only at its check cadence)."""
    if dist_info.world <= 1:
        return loss.item()
    import torch.distributed as dist

    lt = loss.detach().clone()
    dist.all_reduce(lt)
    return lt.item() / dist_info.world


def wrap_for_step(visual: torch.nn.Module, dist_info: Dist) -> torch.nn.Module:
    """The module the forward pass runs through: DDP (gradient all-reduce) when there are several ranks."""
    if dist_info.world <= 1:
        return visual
    from torch.nn.parallel import DistributedDataParallel as DDP

    device = dist_info.device
    return DDP(visual, device_ids=[device.index] if device.type == "cuda" else None)
