"""What Gloo's collectives cost on this machine, without adatt: two processes on loopback time the
calls a data-parallel step of the vocabulary-scaling model makes (bench/vocab.js):

    /usr/bin/python3 bench/gloo_collectives.py [--calls 200]

the step statistics (a few numbers), the dense gradients (about 200K floats) and all-gathers the
size of the row exchange (about 20K floats' worth of ids and rows a rank) and larger, as calls of torch.distributed
on the same LibTorch. Prints milliseconds per call (rank 0's wall time over --calls calls, after
20 warm-up calls), so a step's communication can be read against its compute.
"""

import argparse
import os
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

CALLS = [
    ("all-reduce", 1),
    ("all-reduce", 50_000),
    ("all-reduce", 200_000),
    ("all-gather", 20_000),
    ("all-gather", 75_000),
    ("all-gather", 275_000),
]


def rank_main(rank, port, calls):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    for kind, floats in CALLS:
        local = torch.ones(floats)
        gathered = [torch.empty(floats) for _ in range(2)]

        def call():
            if kind == "all-reduce":
                dist.all_reduce(local)
            else:
                dist.all_gather(gathered, local)

        for _ in range(20):
            call()
        start = time.perf_counter()
        for _ in range(calls):
            call()
        if rank == 0:
            print(f"{kind} of {floats:,} floats: {(time.perf_counter() - start) / calls * 1000:.3f} ms", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--port", type=int, default=29611)
    args = parser.parse_args()
    mp.start_processes(rank_main, args=(args.port, args.calls), nprocs=2, start_method="spawn")
