"""A small Pillow line chart for loss curves (no matplotlib needed)."""
import math

import numpy as np

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def _ticks(low, high, count=5):
    """About `count` round tick values covering [low, high]."""
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def line_chart(series, xlabel="epoch", title="", size=(640, 400)):
    """Draw {name: (xs, ys)} as lines with axes, ticks and a legend.

    Non-finite or missing y values break a line. Returns uint8 H,W,3 RGB pixels.
    """
    from PIL import Image, ImageDraw, ImageFont

    width, height = size
    left, right, top, bottom = 60, 150, 30, 40
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    points = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
    if title:
        draw.text((left, 8), title, fill="black", font=font)
    plot = (left, top, width - right, height - bottom)
    draw.rectangle(plot, outline="black")
    draw.text(((plot[0] + plot[2]) // 2 - 15, height - 18), xlabel, fill="black", font=font)
    if not points:
        draw.text((plot[0] + 10, plot[1] + 10), "no data yet", fill="black", font=font)
        return np.asarray(image)
    x_low, x_high = min(p[0] for p in points), max(p[0] for p in points)
    y_low, y_high = min(p[1] for p in points), max(p[1] for p in points)
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    if y_high == y_low:
        y_low, y_high = y_low - 1, y_high + 1

    def to_pixel(x, y):
        return (plot[0] + (x - x_low) / (x_high - x_low) * (plot[2] - plot[0]),
                plot[3] - (y - y_low) / (y_high - y_low) * (plot[3] - plot[1]))

    for tick in _ticks(x_low, x_high):
        px, _ = to_pixel(tick, y_low)
        draw.line([(px, plot[3]), (px, plot[3] + 4)], fill="black")
        draw.text((px - 8, plot[3] + 6), f"{tick:g}", fill="black", font=font)
    for tick in _ticks(y_low, y_high):
        _, py = to_pixel(x_low, tick)
        draw.line([(plot[0] - 4, py), (plot[0], py)], fill="black")
        draw.text((4, py - 6), f"{tick:.3g}", fill="black", font=font)
    for index, (name, (xs, ys)) in enumerate(series.items()):
        color = PALETTE[index % len(PALETTE)]
        segment = []
        for x, y in list(zip(xs, ys)) + [(None, None)]:
            if y is not None and math.isfinite(y):
                segment.append(to_pixel(x, y))
                continue
            if len(segment) > 1:
                draw.line(segment, fill=color, width=2)
            elif segment:
                draw.ellipse([segment[0][0] - 2, segment[0][1] - 2, segment[0][0] + 2, segment[0][1] + 2], fill=color)
            segment = []
        legend_y = top + 14 * index
        draw.line([(width - right + 10, legend_y + 6), (width - right + 28, legend_y + 6)], fill=color, width=2)
        draw.text((width - right + 32, legend_y), name[:18], fill="black", font=font)
    return np.asarray(image)
