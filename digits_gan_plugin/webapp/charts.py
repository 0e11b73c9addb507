"""The model page's charts as data for uPlot (static/vendor): metrics grouped by kind on
separate panels (losses, discriminator outputs, other metrics, learning rate,
throughput), each train series with its validation twin overlaid (dashed), over the
training step. Per-step rows (written every summary interval) make the train series
move within an epoch; epoch rows (metrics.csv) give the validation points."""

# One colour per series of a panel (colour-blind-safe Tableau 10).
COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
          "#bab0ac")
PANELS = (("losses", "Losses"), ("d_outputs", "Discriminator outputs (probability)"), ("metrics", "Metrics"),
          ("lr", "Learning rate"), ("speed", "Images per second"))
NOT_SERIES = ("epoch", "step")


def kind_of(name):
    """The panel of metric `name` ('val_' prefix ignored)."""
    base = name[4:] if name.startswith("val_") else name
    if base == "lr":
        return "lr"
    if base == "images_per_sec":
        return "speed"
    if "loss" in base or base in ("mse",):
        return "losses"
    if base in ("d_real", "d_fake") or "prob" in base:
        return "d_outputs"
    return "metrics"


def finite_number(text):
    """float(text), or None when it is not a finite number."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None


def _points(rows, name):
    return {int(float(row["step"])): finite_number(row.get(name)) for row in rows
            if finite_number(row.get("step")) is not None and finite_number(row.get(name)) is not None}


def panels(epoch_rows, step_rows=()):
    """[{id, title, series: [{label, color, dash}], data: [steps, values...]}] with
    None for missing points; panels without data are left out."""
    names = []
    for row in list(step_rows) + list(epoch_rows):
        names += [name for name in row if name not in NOT_SERIES and name not in names]
    result = []
    for panel_id, title in PANELS:
        members = sorted((name for name in names if kind_of(name) == panel_id),
                         key=lambda name: (name[4:] if name.startswith("val_") else name, name.startswith("val_")))
        series, columns, colors = [], [], {}
        for name in members:
            base = name[4:] if name.startswith("val_") else name
            stepwise = not name.startswith("val_") and any(name in row for row in step_rows)
            points = _points(step_rows if stepwise else epoch_rows, name)
            if not points:
                continue
            colors.setdefault(base, COLORS[len(colors) % len(COLORS)])
            # a lone point draws no line: show it as a dot (one epoch's images_per_sec)
            series.append({"label": name, "color": colors[base], "dash": name.startswith("val_"),
                           "points": len(points) < 2})
            columns.append(points)
        if not series:
            continue
        steps = sorted(set().union(*columns))
        result.append({"id": panel_id, "title": title, "series": series,
                       "data": [steps] + [[column.get(step) for step in steps] for column in columns]})
    return result
