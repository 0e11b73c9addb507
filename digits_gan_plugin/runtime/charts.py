"""The loss-curve PNG of a training job (matplotlib, Agg backend, no display needed).

metrics.csv columns are grouped by kind, one panel each with its own y axis: losses
(the loss entries, train solid and validation dashed in the same colour), D outputs
(model scalars named d_*: D's mean probability on real / fake batches), other metrics,
and the learning rate.
"""
import math

from ..files import atomic_write

NOT_PLOTTED = ("epoch", "step", "images_per_sec")
PLOT_LIMIT = 1e30  # larger values (an --lr 1e308, a diverged loss) are left out: matplotlib's axis overflows


def group_columns(columns, loss_names):
    """{panel title: [columns]} in panel order, empty panels left out."""
    groups = {"losses": [], "D outputs": [], "metrics": [], "learning rate": []}
    for column in columns:
        base = column[len("val_"):] if column.startswith("val_") else column
        if column in NOT_PLOTTED:
            continue
        if column == "lr":
            groups["learning rate"].append(column)
        elif base in loss_names or "loss" in base:
            groups["losses"].append(column)
        elif base.startswith("d_"):
            groups["D outputs"].append(column)
        else:
            groups["metrics"].append(column)
    return {title: names for title, names in groups.items() if names}


def _value(row, column):
    try:
        value = float(row.get(column) or "nan")
    except ValueError:
        return math.nan
    return value if abs(value) <= PLOT_LIMIT else math.nan


def save_metrics_chart(rows, loss_names, path):
    """Draw metrics.csv `rows` (dicts of str) per epoch into the PNG at `path` (atomic)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    columns = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    groups = group_columns(columns, set(loss_names))
    figure = Figure(figsize=(7, 1.0 + 2.2 * max(1, len(groups))), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(max(1, len(groups)), 1, sharex=True, squeeze=False)[:, 0]
    epochs = [int(row["epoch"]) for row in rows]
    colours = {}
    for ax, (title, names) in zip(axes, groups.items()):
        for column in names:
            base = column[len("val_"):] if column.startswith("val_") else column
            colour = colours.setdefault(base, f"C{len(colours) % 10}")
            ax.plot(epochs, [_value(row, column) for row in rows], marker="o", markersize=3, color=colour,
                    linestyle="--" if column.startswith("val_") else "-", label=column)
        ax.set_title(title, fontsize=9, loc="left")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if not groups:
        axes[0].text(0.5, 0.5, "no data yet", ha="center", va="center", transform=axes[0].transAxes)
    axes[-1].set_xlabel("epoch")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.suptitle("per epoch: train mean (solid), validation mean (dashed)", fontsize=9)
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png"))
