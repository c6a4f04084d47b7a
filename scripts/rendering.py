"""What scripts/render-deploy and scripts/render-docs both write from one source: the chart's
values table (from values.schema.json), the two pictures (docs/*.svg) with their lists, and
the markers generated text sits between."""

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "castslice"


def values_rows(schema: dict, values: object, path: str = "") -> list[str]:
    """One row per leaf value: objects the schema closes are walked into."""
    if schema.get("properties") and schema.get("additionalProperties") is False:
        given = values if isinstance(values, dict) else {}
        return [row for name, sub in schema["properties"].items() if name != "global"
                for row in values_rows(sub, given.get(name), f"{path}.{name}".lstrip("."))]
    kind = schema.get("type", "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if "enum" in schema:
        kind = " \\| ".join(f"`{choice}`" for choice in schema["enum"] if choice != "")
    shown = "" if values is None and path.startswith("config.") else (
        f"`{json.dumps(values, separators=(', ', ': '))}`")
    return [f"| `{path}` | {kind} | {shown} | {schema.get('description', '')} |"]


def values_table() -> str:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    return "\n".join(["| value | type | default | meaning |", "|---|---|---|---|",
                      *values_rows(schema, values)]) + "\n"


PICTURES = {
    "admission-flow": ("How a Pod is admitted", [
        ("kubectl / a controller", "creates a Pod asking nvidia.com/gpu: 1"),
        ("kube-apiserver", "matchConditions: only GPU Pods are sent"),
        ("CastSlice /mutate", "opt-in, slices, one JSON Patch"),
        ("kube-apiserver", "applies the patch, validates, stores"),
        ("scheduler", "places the Pod on a node with the shared resource"),
        ("device plugin / DRA driver", "hands the container its share of one GPU"),
    ]),
    "loop": ("The loop around it", [
        ("measure", "dcgm-exporter + kube-state-metrics in Prometheus"),
        ("recommend", "castslice recommend --output env"),
        ("preview", "castslice replay CAPTURE --env-file proposed.env"),
        ("install", "kubectl apply -k, or helm upgrade, per cluster"),
        ("verify", "castslice verify --slo LATENCY: hurt, kept"),
    ]),
}
"""Each picture's title and its boxes, left to right: a name and what happens there."""


def svg(title: str, steps: list[tuple[str, str]]) -> str:
    """Boxes joined by arrows, one row; plain SVG a browser and GitHub render as is."""
    width, gap, height = 210, 30, 96
    total = len(steps) * width + (len(steps) - 1) * gap + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{height + 50}" '
             f'viewBox="0 0 {total} {height + 50}" font-family="sans-serif" font-size="12">',
             f'<title>{title}</title>',
             f'<text x="10" y="20" font-size="15" font-weight="bold">{title}</text>']
    for i, (name, what) in enumerate(steps):
        x = 10 + i * (width + gap)
        parts.append(f'<rect x="{x}" y="34" width="{width}" height="{height}" rx="8" '
                     'fill="#eef4ff" stroke="#3b6fd8"/>')
        parts.append(f'<text x="{x + width / 2}" y="58" text-anchor="middle" '
                     f'font-weight="bold">{i + 1}. {name}</text>')
        for j, line in enumerate(_wrap(what, 30)):
            parts.append(f'<text x="{x + width / 2}" y="{80 + j * 16}" '
                         f'text-anchor="middle">{line}</text>')
        if i:
            parts.append(f'<path d="M{x - gap + 2} {34 + height / 2} H{x - 4}" '
                         'stroke="#3b6fd8" stroke-width="2" marker-end="url(#arrow)"/>')
    parts.insert(3, '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" '
                 'markerWidth="6" markerHeight="6" orient="auto"><path d="M0 0 L10 5 L0 10 z" '
                 'fill="#3b6fd8"/></marker></defs>')
    return "\n".join([*parts, "</svg>"]) + "\n"


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line]


def steps_text(steps: list[tuple[str, str]]) -> str:
    return "".join(f"{i}. **{name}**: {what}\n" for i, (name, what) in enumerate(steps, 1))


def between(text: str, marker: str, content: str) -> str:
    """`text` with what lies between <!-- marker:start --> and <!-- marker:end --> replaced."""
    pattern = re.compile(rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)", re.DOTALL)
    return pattern.sub(lambda m: m.group(1) + content + m.group(2), text)
