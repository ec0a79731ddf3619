"""DistributedDataParallel over 2 CPU processes (gloo) with corrops.torch's
loss: each rank takes half of the batch; prints, as JSON, the loss and the
model's gradients of rank 0 next to those of one process on the whole batch
(tests/test_torch_distributed.py compares them). Imports no TensorFlow."""

import json
import os
import socket
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

import corrops.torch as ct

BATCH, TIME, FEATURES, CHANNELS = 8, 40, 5, 2


def _data():
    rng = np.random.default_rng(7)
    feats = torch.from_numpy(rng.normal(size=(BATCH, TIME, FEATURES)))
    target = torch.from_numpy(rng.normal(size=(BATCH, TIME, CHANNELS)))
    mask = torch.from_numpy(rng.random((BATCH, TIME)) > 0.2)
    return feats, target, mask


def _model():
    torch.manual_seed(0)
    return torch.nn.Linear(FEATURES, CHANNELS).double()


def _step(model, feats, target, mask):
    loss = ct.corr_loss(target, model(feats), mask=mask, method="ccc").mean()
    loss.backward()
    return loss.detach()


def _rank(rank, world, out_path):
    dist.init_process_group("gloo", rank=rank, world_size=world)
    feats, target, mask = _data()
    part = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
    model = DistributedDataParallel(_model())
    loss = _step(model, feats[part], target[part], mask[part])
    dist.all_reduce(loss)  # the mean over ranks: equal halves, the global mean
    if rank == 0:
        grads = [p.grad.tolist() for p in model.parameters()]
        with open(out_path, "w") as f:
            json.dump({"loss": loss.item() / world, "grads": grads}, f)
    # Both ranks leave together, the DDP reducer (which holds the process
    # group) released first, and the rank exits without the interpreter's
    # finalization: gloo's worker threads torn down there can abort the
    # process ("terminate called without an active exception") after its
    # work is done (pytorch/pytorch#179291 describes that SIGABRT).
    del model
    dist.barrier()
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main(out_path):
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        os.environ.setdefault("MASTER_PORT", str(s.getsockname()[1]))
    mp.spawn(_rank, args=(2, out_path + ".ddp"), nprocs=2, join=True)
    with open(out_path + ".ddp") as f:
        ddp = json.load(f)
    model = _model()
    loss = _step(model, *_data())
    single = {"loss": loss.item(), "grads": [p.grad.tolist() for p in model.parameters()]}
    frameworks = sorted({"tensorflow", "keras", "jax"} & set(sys.modules))
    print(json.dumps({"ddp": ddp, "single": single, "frameworks": frameworks}))


if __name__ == "__main__":
    main(sys.argv[1])
