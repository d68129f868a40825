"""Training throughput of the project's model (tl.model) on one CUDA device, fp32 and bf16 autocast.

    python benchmarks/gpu_throughput.py --out gpu_throughput.json             # a CUDA machine, < 5 min
    python benchmarks/gpu_throughput.py --out /tmp/dry.json --device cpu --quick   # dry run, no GPU

For every batch size and precision: a few warm-up steps, then timed optimiser steps (forward,
weighted cross-entropy, backward, AdamW) on synthetic light curves shaped like the encoded ones
(SEQUENCE_FEATURES per observation, lengths uniform in [10, max_length], padded and packed as in
training). Reports samples per second and, on CUDA, torch.cuda.max_memory_allocated. A configuration
that runs out of memory or fails is recorded with its error and the rest still run. Without a CUDA
device (and without --device cpu) it prints one line and exits with status 2, writing nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

DEFAULT_BATCH_SIZES = (64, 256, 1024, 4096)
QUICK_BATCH_SIZES = (32, 128)
N_CLASSES = 7  # the taxonomy's extragalactic classes (SN Ia, SN II, SN Ibc, SLSN, TDE, KN, AGN)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for a dry run")
    parser.add_argument("--batch-sizes", default=None, help="comma-separated (default 64,256,1024,4096)")
    parser.add_argument("--max-length", type=int, default=200, help="observations per light curve (data.max_length)")
    parser.add_argument("--steps", type=int, default=30, help="timed optimiser steps per configuration")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (cuDNN autotuning, allocator)")
    parser.add_argument("--time-budget", type=float, default=240.0, help="seconds; later configurations are skipped")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op CPU threads (default torch's; 1 on a shared CPU, see README)")
    parser.add_argument("--quick", action="store_true", help="batch sizes 32,128, 3 steps, 1 warm-up (a dry run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.warmup = 3, 1
        args.batch_sizes = args.batch_sizes or ",".join(map(str, QUICK_BATCH_SIZES))
    sizes = args.batch_sizes or ",".join(map(str, DEFAULT_BATCH_SIZES))
    try:
        args.batch_sizes = [int(size) for size in sizes.split(",")]
    except ValueError:
        parser.error(f"--batch-sizes {sizes!r}: give comma-separated integers")
    return args


def synthetic_batch(batch_size: int, max_length: int, device, generator):
    """(sequences (B, T, 5), lengths (B,), metadata (B, 5), labels (B,)) like tl.encoding.collate's."""
    import torch

    from tl.encoding import METADATA_FEATURES, SEQUENCE_FEATURES

    lengths = torch.randint(10, max_length + 1, (batch_size,), generator=generator)
    sequences = torch.randn(batch_size, int(lengths.max()), len(SEQUENCE_FEATURES), generator=generator)
    padding = torch.arange(sequences.shape[1])[None, :] >= lengths[:, None]  # (B, T)
    sequences[padding] = 0.0
    metadata = torch.randn(batch_size, len(METADATA_FEATURES), generator=generator)
    labels = torch.randint(0, N_CLASSES, (batch_size,), generator=generator)
    return sequences.to(device), lengths, metadata.to(device), labels.to(device)


def measure(batch_size: int, bf16: bool, args, device) -> dict:
    """Samples per second (and peak memory on CUDA) of training steps at one batch size and precision."""
    import torch

    from tl.config import ModelConfig
    from tl.model import TransientClassifier
    from tl.training import weighted_loss

    torch.manual_seed(0)
    model = TransientClassifier(N_CLASSES, ModelConfig()).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    weights = torch.ones(N_CLASSES, device=device)
    generator = torch.Generator().manual_seed(batch_size)
    batches = [synthetic_batch(batch_size, args.max_length, device, generator) for _ in range(4)]
    cuda = device.type == "cuda"

    def step(batch):
        sequences, lengths, metadata, labels = batch
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(sequences, lengths, metadata)
        loss = weighted_loss(logits.float(), labels, weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    for i in range(args.warmup):
        step(batches[i % len(batches)])
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for i in range(args.steps):
        loss = step(batches[i % len(batches)])
    if cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {"batch_size": batch_size, "precision": "bf16-autocast" if bf16 else "fp32", "steps": args.steps,
            "seconds": seconds, "samples_per_second": batch_size * args.steps / seconds,
            "max_memory_allocated_mib": torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None,
            "final_loss": float(loss)}


def describe(row: dict) -> str:
    if "error" in row:
        return f"error: {row['error']}"
    memory = row["max_memory_allocated_mib"]
    return f"{row['samples_per_second']:.0f} samples/s" + (f", {memory:.0f} MiB" if memory is not None else "")


def environment(device) -> dict:
    import torch

    info = {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "device": str(device), "cpu_threads": torch.get_num_threads(), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version()}
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["device_memory_gib"] = torch.cuda.get_device_properties(device).total_memory / 2**30
    return info


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"gpu_throughput: no CUDA device (torch {torch.__version__}, CUDA build {torch.version.cuda}); "
              f"nothing measured, {args.out} not written. Use --device cpu --quick for a dry run.",
              file=sys.stderr)
        return 2
    started = time.perf_counter()
    rows = []
    for batch_size in args.batch_sizes:
        for bf16 in (False, True):
            label = f"batch {batch_size} {'bf16' if bf16 else 'fp32'}"
            if time.perf_counter() - started > args.time_budget:
                rows.append({"batch_size": batch_size, "precision": "bf16-autocast" if bf16 else "fp32",
                             "skipped": f"time budget {args.time_budget:g} s spent"})
                print(f"{label}: skipped (time budget)")
                continue
            try:
                row = measure(batch_size, bf16, args, device)
            except (RuntimeError, torch.cuda.OutOfMemoryError) as error:  # OOM or an op without bf16
                row = {"batch_size": batch_size, "precision": "bf16-autocast" if bf16 else "fp32",
                       "error": str(error).splitlines()[0]}
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            rows.append(row)
            print(f"{label}: {describe(row)}")
    from dataclasses import asdict

    from tl.config import ModelConfig

    report = {"what": "training steps per second x batch size of tl.model.TransientClassifier, synthetic light curves",
              "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "environment": environment(device),
              "model_config": asdict(ModelConfig()), "max_length": args.max_length, "n_classes": N_CLASSES,
              "warmup_steps": args.warmup, "wall_seconds": time.perf_counter() - started, "results": rows}
    with open(args.out, "w") as stream:
        json.dump(report, stream, indent=2)
    print(f"gpu_throughput: {len(rows)} configurations in {report['wall_seconds']:.1f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
