"""The reinforcement-learning architecture controller behind ``tune: {method: rl}``. Home-made.

Why home-made: no maintained library offers a policy-gradient controller over a recipe's discrete
choices. Optuna, Ray Tune, Hyperopt and Nevergrad ship Bayesian, bandit and evolutionary samplers;
NNI, which had a PPO tuner, is archived. This is the controller of Zoph and Le, "Neural Architecture
Search with Reinforcement Learning" (ICLR 2017), at the scale of this project:

- the recipe's ``tune.space`` becomes a sequence of discrete *decisions* (``choices`` as given;
  an integer range as its values, or 6 of them spread over it; a float range as 5 buckets, spread
  geometrically when ``log``: the learning-rate buckets);
- an autoregressive policy (a GRU cell of 32 units; each decision's embedding feeds the next step,
  one linear head per decision) samples one value per decision: a child;
- the child is trained and its reward (validation accuracy, or minus the validation loss for
  regression) updates the policy by REINFORCE, ``loss = -(R - b) * sum(log p(choice))``, with an
  exponential moving-average baseline ``b`` and a small entropy bonus so it keeps exploring.

The policy is seeded from the recipe's seed and sampled with its own ``torch.Generator``, so the
same seed gives the same children as long as the rewards are the same (training is single-threaded).

>>> from consortium.recipe.schema import ParamRange
>>> c = Controller(decisions_of({"model.kernel": ParamRange(choices=[3, 5]),
...                              "train.lr": ParamRange(low=1e-3, high=1e-1, log=True)}), seed=0)
>>> [d.values for d in c.decisions][1]
[0.001, 0.00316, 0.01, 0.0316, 0.1]
>>> for _ in range(150):  # a synthetic reward where kernel 5 is clearly better
...     child = c.propose()
...     _ = c.learn(child, 1.0 if child.params["model.kernel"] == 5 else 0.0)
>>> c.preferences()["model.kernel"]["5"] > 0.9
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from consortium.recipe import Decision, decisions_of

__all__ = ["Child", "Controller", "Decision", "Policy", "decisions_of"]

class Policy(nn.Module):
    """Autoregressive: step t sees the embedding of choice t-1 (a learned start vector at t=0)."""

    def __init__(self, sizes: list[int], hidden: int = 32) -> None:
        super().__init__()
        self.start = nn.Parameter(torch.zeros(hidden))
        self.cell = nn.GRUCell(hidden, hidden)
        self.embed = nn.ModuleList(nn.Embedding(k, hidden) for k in sizes)
        self.heads = nn.ModuleList(nn.Linear(hidden, k) for k in sizes)
        self.hidden = hidden

    def logits(self, choices: list[int] | None, gen: torch.Generator | None
               ) -> tuple[list[int], torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Sample (``choices`` None, with ``gen``) or score the given choices: returns the choices,
        the sum of their log-probabilities, the summed entropy and the per-step probabilities."""
        h = torch.zeros(1, self.hidden)
        x = self.start.unsqueeze(0)
        picked, logp, ent, probs = [], torch.zeros(()), torch.zeros(()), []
        for t, head in enumerate(self.heads):
            h = self.cell(x, h)
            dist = torch.distributions.Categorical(logits=head(h).squeeze(0))
            if choices is None:
                k = int(torch.multinomial(dist.probs.detach(), 1, generator=gen).item())
            else:
                k = choices[t]
            picked.append(k)
            logp = logp + dist.log_prob(torch.tensor(k))
            ent = ent + dist.entropy()
            probs.append(dist.probs.detach())
            x = self.embed[t](torch.tensor([k]))
        return picked, logp, ent, probs


@dataclass
class Child:
    """One sampled architecture: its number, recipe values and the decision indices behind them."""

    number: int
    params: dict[str, Any]
    choices: list[int] = field(repr=False)


class Controller:
    """REINFORCE with a moving-average baseline over ``decisions`` (see the module docstring)."""

    def __init__(self, decisions: list[Decision], *, seed: int = 0, lr: float = 0.05,
                 baseline_decay: float = 0.8, entropy_weight: float = 1e-3) -> None:
        self.decisions = decisions
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.policy = Policy([len(d.values) for d in decisions])
        self.gen = torch.Generator().manual_seed(seed)
        self.opt = torch.optim.Adam(self.policy.parameters(), lr=lr)
        self.decay, self.entropy_weight = baseline_decay, entropy_weight
        self.baseline: float | None = None
        self.rewards: list[float] = []

    def propose(self) -> Child:
        with torch.no_grad():
            picked, *_ = self.policy.logits(None, self.gen)
        params = {d.name: d.values[k] for d, k in zip(self.decisions, picked, strict=True)}
        return Child(len(self.rewards), params, picked)

    def learn(self, child: Child, reward: float) -> dict[str, float]:
        """One policy-gradient step on ``child``'s reward; returns reward, baseline and advantage."""
        if not math.isfinite(reward):
            reward = min(self.rewards, default=0.0)  # a diverged child: the worst reward seen
        baseline = reward if self.baseline is None else self.baseline
        advantage = reward - baseline
        _, logp, ent, _ = self.policy.logits(child.choices, None)
        loss = -advantage * logp - self.entropy_weight * ent
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.baseline = self.decay * baseline + (1 - self.decay) * reward
        self.rewards.append(reward)
        return {"reward": reward, "baseline": baseline, "advantage": advantage}

    def preferences(self) -> dict[str, dict[str, float]]:
        """The policy's probabilities per decision along its most likely path (value -> probability,
        rounded), which is what the model card shows as the policy's final preferences."""
        with torch.no_grad():
            path: list[int] = []
            out: dict[str, dict[str, float]] = {}
            for t, d in enumerate(self.decisions):
                # score the greedy prefix plus a placeholder to read step t's distribution
                _, _, _, probs = self.policy.logits(path + [0] * (len(self.decisions) - t), None)
                p = probs[t]
                out[d.name] = {str(v): round(float(p[i]), 4) for i, v in enumerate(d.values)}
                path.append(int(p.argmax()))
        return out
