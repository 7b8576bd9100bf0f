"""Chart helpers whose output a person reads: tick labels that tell the ticks apart."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from hashpivot.optimizer.studies.charts import thousands


def tick_labels(lo: float, hi: float) -> list[str]:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [lo, hi])
    ax.set_ylim(lo, hi)
    thousands(ax.yaxis)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    plt.close(fig)
    return labels


@pytest.mark.parametrize(("lo", "hi", "expected"), [
    (242.1, 242.9, "242.2"),  # a sweep whose profit moves by a few hundred USD printed "242, 242, 242"
    (0.0, 2.0, "0.25"),  # ticks 0.25 apart: two decimals, not "0.2"
    (8_000.0, 12_000.0, "10,000"),
])
def test_tick_labels_are_distinct_exact_and_separated(lo, hi, expected):
    labels = tick_labels(lo, hi)
    assert len(set(labels)) == len(labels) and expected in labels, labels
