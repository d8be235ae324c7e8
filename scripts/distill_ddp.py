"""Distil an MLP student with DistributedDataParallel: one process per CPU core (gloo) or per GPU (NCCL).

    torchrun --standalone --nproc_per_node=2 scripts/distill_ddp.py --train-images 4096 --epochs 2 \\
        --teacher-logits checkpoints/full/deploy/teacher_logits_4096.pt --out checkpoints/full/deploy/ddp_student.pt

Run without torchrun, it trains in one process with the same code.

What makes the result equal to one process running ``kd.train`` on the same images (within float rounding):
- every rank draws the same shuffled order from the same seed (``kd.data.batch_indices``), so all ranks agree on
  each global batch of ``--batch-size`` images; rank r takes the r-th of ``world_size`` equal slices of it;
- each rank reads only its slice of the cached teacher logits (the file is memory-mapped, so the rows of the
  other ranks are never read);
- each rank's loss is its slice's mean loss weighted by ``slice size × world size / global batch size``, so
  that DDP's average of the ranks' gradients is exactly the gradient of the global batch's mean loss, even
  when the last batch does not split evenly;
- every rank starts from the same weights (the same seed; DDP also broadcasts rank 0's weights) and applies
  the same averaged gradient, so the ranks' weights stay identical: the script checks it at the end.

The student has no BatchNorm; a CNN student would need ``nn.SyncBatchNorm`` for its statistics to be those
of the global batch. Rank 0 saves the student with ``kd.save_checkpoint`` (atomic) and prints one line.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import record
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # kd_utils when run from a bare clone

import kd_utils as kd  # noqa: E402
from kd_utils.checkpoints import weights_checksum  # noqa: E402
from kd_utils.train import TrainingLoop  # noqa: E402


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-images", type=int, required=True, help="distil on the first N training images")
    parser.add_argument("--teacher-logits", type=Path, required=True,
                        help="cached teacher logits of those N images (torch.save of an (N, 10) tensor); if missing, "
                             "rank 0 computes them with the course's teacher ensemble and saves them")
    parser.add_argument("--out", type=Path, required=True, help="where rank 0 saves the student (kd.save_checkpoint)")
    parser.add_argument("--hidden", type=int, default=128, help="hidden units of the StudentMLP")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch, split over the ranks")
    parser.add_argument("--lr", type=float, default=3e-3, help="AdamW with a one-cycle schedule, as kd.train")
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    chosen = kd.STUDENT_RECIPES["mlp_kd"].objective  # notebook 03's T and α, chosen on validation
    parser.add_argument("--temperature", type=float, default=chosen.temperature)
    parser.add_argument("--alpha", type=float, default=chosen.alpha, help="weight of the soft term")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per rank")
    parser.add_argument("--timeout", type=float, default=120, help="seconds a rank waits for the others")
    parser.add_argument("--fail-rank", type=int, default=None, help="make this rank fail at its first step (a test)")
    return parser.parse_args(argv)


def load_teacher_logits(path: Path, data, n: int, rank: int, distributed: bool) -> torch.Tensor:
    """Return the cached teacher logits memory-mapped (rank 0 computes and saves them first if the file is missing)."""
    if rank == 0 and not path.is_file():
        teacher = kd.load_teacher_ensemble(verbose=False)[0]
        logits = kd.predict_logits(teacher, data.train_x[:n])
        with kd.atomic_write(path) as file:  # the other ranks never see half a file
            torch.save(logits, file)
        print(f"rank 0: cached the teacher ensemble's logits of {n:,} images in {kd.relative_path(path)}", flush=True)
    if distributed:
        dist.barrier()
    logits = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or len(logits) != n:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"{kd.relative_path(path)} holds {shape}, not the (N={n}, classes) logits of the first {n} "
                         "training images; delete it to recompute, or pass the matching --train-images")
    return logits


@record  # a failing rank's error reaches torchrun's summary, and so the caller
def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    distributed = "RANK" in os.environ  # set by torchrun
    if distributed:  # NCCL with one GPU per rank when this machine has enough GPUs, else gloo on the CPU
        local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"]))
        backend = "nccl" if torch.cuda.is_available() and torch.cuda.device_count() >= local_ranks else "gloo"
        dist.init_process_group(backend, timeout=timedelta(seconds=args.timeout))
        rank, world_size = dist.get_rank(), dist.get_world_size()
    else:
        backend, rank, world_size = "single process", 0, 1
    if backend == "nccl":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    torch.set_num_threads(args.threads)

    data = kd.load_fashion_mnist()
    n = args.train_images
    if not 0 < n <= len(data.train_x):
        raise ValueError(f"--train-images must be between 1 and {len(data.train_x):,} ({kd.mode_name()} mode), got {n}")
    train_x, train_y = data.train_x[:n], data.train_y[:n]
    teacher_logits = load_teacher_logits(args.teacher_logits, data, n, rank, distributed)

    # The same initial weights and the same data order as kd.train(model, ..., seed=seed) after kd.set_seed(seed).
    kd.set_seed(args.seed)
    student = kd.StudentMLP(hidden=args.hidden).to(device)
    model = DistributedDataParallel(student, device_ids=[device] if device.type == "cuda" else None) if distributed \
        else student
    generator = kd.set_seed(args.seed)
    steps_per_epoch = math.ceil(n / args.batch_size)
    loop = TrainingLoop(model.parameters(), args.epochs * steps_per_epoch, lr=args.lr, weight_decay=args.weight_decay,
                        name=f"rank {rank}", progress=False)  # kd.train's optimiser, schedule and NaN guard

    start = time.perf_counter()
    loss_sum = torch.zeros((), device=device)
    model.train()
    for epoch in range(args.epochs):
        loss_sum.zero_()
        for step, index in enumerate(kd.data.batch_indices(n, args.batch_size, True, generator)):
            if args.fail_rank == rank:
                raise RuntimeError(f"rank {rank} fails on purpose (--fail-rank {rank}), epoch {epoch + 1}, step {step + 1}")
            shard = index.tensor_split(world_size)[rank]  # this rank's slice of the global batch
            logits = model(train_x[shard].to(device))
            if len(shard) == 0:  # a last batch smaller than the world: this rank still joins the gradient average
                loss = logits.sum() * 0.0
            else:
                mean_loss = kd.distillation_loss(logits, teacher_logits[shard].to(device).float(), train_y[shard].to(device),
                                                 args.temperature, args.alpha)
                loss = mean_loss * (len(shard) * world_size / len(index))
            loop.step(loss, epoch + 1, step)  # DDP averages the gradients of all ranks in its backward pass
            loss_sum += loss.detach() * len(index) / world_size
    seconds = time.perf_counter() - start

    flat = torch.cat([p.detach().reshape(-1) for p in student.parameters()])
    checksum = weights_checksum(student.state_dict())
    if distributed:
        dist.all_reduce(loss_sum)
        everyone = [torch.empty_like(flat) for _ in range(world_size)]
        dist.all_gather(everyone, flat)
        checksums: list[str | None] = [None] * world_size
        dist.all_gather_object(checksums, checksum)
    else:
        everyone, checksums = [flat], [checksum]
    if rank == 0:
        rank_difference = max((other - everyone[0]).abs().max().item() for other in everyone)
        val_accuracy = kd.accuracy(student.cpu(), data.val_x, data.val_y)
        examples_per_second = args.epochs * n / seconds
        metadata = {
            "trained_by": "scripts/distill_ddp.py", "world_size": world_size, "backend": backend,
            "train_images": n, "epochs": args.epochs, "global_batch": args.batch_size, "lr": args.lr,
            "weight_decay": args.weight_decay, "temperature": args.temperature, "alpha": args.alpha, "seed": args.seed,
            "final_loss": loss_sum.item() / n, "val_accuracy": val_accuracy, "seconds": seconds,
            "rank_checksums": checksums, "max_rank_difference": rank_difference, "mode": kd.mode_name(),
        }
        kd.save_checkpoint(student, args.out, metadata)
        identical = "identical on all ranks" if len(set(checksums)) == 1 else f"ranks differ by up to {rank_difference:.2e}"
        print(f"distill_ddp: {world_size} rank(s) ({backend}, {device.type}), {n:,} images, {args.epochs} epoch(s), "
              f"global batch {args.batch_size} ({math.ceil(args.batch_size / world_size)} per rank), final loss "
              f"{metadata['final_loss']:.4f}, val acc {val_accuracy:.2%}, {examples_per_second:,.0f} examples/s, "
              f"{seconds:.1f} s; weights {identical}; saved {kd.relative_path(args.out)}", flush=True)
    if distributed:
        # DDP's reducer holds the process group: free it first, so the group is torn down here and not while the
        # interpreter exits (there gloo's threads can abort the process: "terminate called without an active
        # exception", about 1 run in 6 on a 2-core CPU before this)
        del model, loop
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
