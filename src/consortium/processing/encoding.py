"""Encoding steps: one_hot turns categorical columns into 0/1 numeric columns named ``col=value``.

Categories are learned on the training split (the ``max_categories`` most frequent); a value not
seen in training, or a missing one, encodes as all zeros.

>>> import numpy as np
>>> from consortium.processing.table import Table
>>> t = Table(num=np.zeros((3, 0)), names=[], cat={"c": np.array(["a", "b", "a"], dtype=object)}, image=False)
>>> s = OneHot({}); s.fit(t); out = s.apply(t, training=False); out.names, out.num.tolist()
(['c=a', 'c=b'], [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from consortium.errors import InvalidInput
from consortium.processing.steps import Step
from consortium.processing.table import Table, is_missing


class OneHot(Step):
    name = "one_hot"

    def fit(self, t: Table) -> None:
        if t.image:
            raise InvalidInput("one_hot does not apply to images")
        wanted = self.params.get("columns")
        cols = list(t.cat) if wanted is None else list(wanted)
        limit = int(self.params.get("max_categories", 50))
        cats: dict[str, list[str]] = {}
        for name in cols:
            if name in t.cat:
                values = t.cat[name]
            elif name in t.names:
                values = t.num[:, t.names.index(name)]
            else:
                raise InvalidInput(
                    f"one_hot: column {name!r} is not in the data",
                    hint=f"columns are: {', '.join((t.names + list(t.cat))[:20])}",
                )
            present = [_key(v) for v, m in zip(values, is_missing(np.asarray(values)), strict=False) if not m]
            top = [k for k, _ in Counter(present).most_common(limit)]
            cats[name] = sorted(top)
        self.fitted = {"categories": cats}
        self._load()

    def _load(self) -> None:
        self._cats = self.fitted.get("categories", {})
        self._lookup = {n: {c: i for i, c in enumerate(v)} for n, v in self._cats.items()}

    def apply(self, t: Table, *, training: bool) -> Table:
        blocks, names = [], []
        num, num_names, cat = t.num, list(t.names), dict(t.cat)
        for name, categories in self._cats.items():
            if name in cat:
                values = cat.pop(name)
            else:
                i = num_names.index(name)
                values = num[:, i]
                num = np.delete(num, i, axis=1)
                num_names.pop(i)
            lookup = self._lookup[name]
            block = np.zeros((t.n, len(categories)), dtype=np.float64)
            for r, v in enumerate(values):
                j = lookup.get(_key(v))
                if j is not None:
                    block[r, j] = 1.0
            blocks.append(block)
            names += [f"{name}={c}" for c in categories]
        t.num = np.concatenate([num, *blocks], axis=1) if blocks else num
        t.names = num_names + names
        t.cat = cat
        return t


def _key(v: object) -> str:
    """Category key: numbers that are whole print without '.0' so 3 and 3.0 match."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)
