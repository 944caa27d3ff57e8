"""Opacus DP-SGD and plain PyTorch throughput for the two bench models (baseline, never a dependency).

Run in a scratch virtualenv, e.g.
  python3 -m venv /tmp/opacus_venv && /tmp/opacus_venv/bin/pip install torch==2.13.0 opacus==1.6.0
  /tmp/opacus_venv/bin/python scripts/opacus_baseline.py --model=resnet9_gn [--steps=3] [--json]

Same model, input, batch and σ = 1, C = 1 as configs/bench/<model>.py: Poisson sampling at E[B] = batch
from a random pool (Opacus' DPDataLoader), per-sample gradients by Opacus' hooks, SGD. Reports the
median examples/s over timed logical batches after the warm-up ones, like `python -m dpal_jax.bench`.
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn
from opacus import PrivacyEngine


def block(c_in, c_out, pool=False):
  layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.GroupNorm(min(32, c_out), c_out),
            nn.Mish()]
  return nn.Sequential(*layers, nn.MaxPool2d(2)) if pool else nn.Sequential(*layers)


class ResNet9(nn.Module):
  """The DPAL ResNet9 (GroupNorm, Mish, 256-channel last stage): 2,448,714 parameters."""

  def __init__(self, in_channels=3, num_classes=10):
    super().__init__()
    self.conv1, self.conv2 = block(in_channels, 64), block(64, 128, pool=True)
    self.res1 = nn.Sequential(block(128, 128), block(128, 128))
    self.norm1 = nn.GroupNorm(32, 128)
    self.conv3, self.conv4 = block(128, 256, pool=True), block(256, 256, pool=True)
    self.res2 = nn.Sequential(block(256, 256), block(256, 256))
    self.norm2 = nn.GroupNorm(32, 256)
    self.pool = nn.AdaptiveMaxPool2d((2, 2))
    self.linear = nn.Linear(1024, num_classes)

  def forward(self, x):
    x = self.conv2(self.conv1(x))
    x = self.norm1(self.res1(x) + x)
    x = self.conv4(self.conv3(x))
    x = self.norm2(self.res2(x) + x)
    return self.linear(torch.flatten(self.pool(x), 1))


def mlp():
  return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                       nn.Linear(512, 10))


MODELS = {'resnet9_gn': (ResNet9, (3, 32, 32)), 'mlp': (mlp, (1, 28, 28))}


def measure(model_name, batch, pool, steps, warmup, private):
  build, shape = MODELS[model_name]
  torch.manual_seed(0)
  model = build()
  data = torch.utils.data.TensorDataset(torch.randn(pool, *shape), torch.randint(0, 10, (pool,)))
  loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, drop_last=True)
  optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
  if private:
    model, optimizer, loader = PrivacyEngine().make_private(
        module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=1.0,
        max_grad_norm=1.0, poisson_sampling=True)
  loss_fn = nn.CrossEntropyLoss()
  rates = []
  while len(rates) < warmup + steps:
    for x, y in loader:
      start = time.perf_counter()
      optimizer.zero_grad()
      loss_fn(model(x), y).backward()
      optimizer.step()
      rates.append(len(x) / (time.perf_counter() - start))
      if len(rates) == warmup + steps:
        break
  return statistics.median(rates[warmup:])


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--model', choices=sorted(MODELS), required=True)
  parser.add_argument('--batch', type=int, default=256)
  parser.add_argument('--pool', type=int, default=2048)
  parser.add_argument('--steps', type=int, default=3)
  parser.add_argument('--warmup', type=int, default=1)
  parser.add_argument('--threads', type=int, default=2)
  parser.add_argument('--json', action='store_true')
  args = parser.parse_args()
  torch.set_num_threads(args.threads)
  dp = measure(args.model, args.batch, args.pool, args.steps, args.warmup, private=True)
  plain = measure(args.model, args.batch, args.pool, args.steps, args.warmup, private=False)
  result = {'framework': f'opacus {__import__("opacus").__version__} / torch {torch.__version__}',
            'model': args.model, 'batch_size': args.batch, 'threads': args.threads,
            'opacus_dp_examples_per_s': dp, 'torch_nonprivate_examples_per_s': plain,
            'dp_over_nonprivate': dp / plain}
  print(json.dumps(result) if args.json else '\n'.join(f'{k}: {v}' for k, v in result.items()))


if __name__ == '__main__':
  main()
