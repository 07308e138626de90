"""Print the direct requirements an iterit wheel declares, one a line, for the extras named
(comma-separated; extras that name other extras of iterit are followed), each pinned to its
floor (its `>=` bound: `name>=1.2,<3` prints `name==1.2`), with their other markers kept.
`.ci/floors` installs these pins: uv's `--resolution lowest-direct` alone quietly raises a floor
where it conflicts with what the newest transitive dependencies need (it chose transformers
5.0 over a floor of 4.56.2), and a floor that was not installed was not tested; a pin that
cannot be met fails, with the conflict.

    python .ci/direct_requirements.py WHEEL EXTRAS [TORCH_VERSION]

TORCH_VERSION, when given, replaces torch's requirement by that one version.
"""

from __future__ import annotations

import re
import sys
import zipfile

EXTRA = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")
LOWER_BOUND = re.compile(r">=\s*([^\s,;]+)")


def requirement_name(spec: str) -> str:
    return re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0].lower()


def pinned_to_floor(spec: str) -> str:
    """``name[extras]==floor`` for a requirement with a ``>=`` bound; others unchanged."""
    bound = LOWER_BOUND.search(spec)
    if bound is None:
        return spec
    head = re.match(r"[^\s<>=!~;]+", spec).group(0)  # the name, with its [extras]
    return f"{head}=={bound.group(1)}"


def main(wheel: str, extras_arg: str, torch_version: str = "") -> None:
    extras = set(filter(None, extras_arg.split(",")))
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        lines = z.read(meta).decode().splitlines()
    parsed = []
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        spec, _, marker = (part.strip() for part in line.split(":", 1)[1].partition(";"))
        clauses = [c.strip() for c in re.split(r"\band\b", marker) if c.strip()]
        found = [EXTRA.search(c) for c in clauses]
        extra = next((m.group(1) for m in found if m), None)
        rest = " and ".join(c for c, m in zip(clauses, found) if not m)
        parsed.append((spec, extra, rest))
    grown = True
    while grown:  # "iterit[torch,cli]" inside an extra brings those extras in
        grown = False
        for spec, extra, _ in parsed:
            if extra in extras and requirement_name(spec) == "iterit":
                more = set(spec.split("[", 1)[1].split("]", 1)[0].replace(" ", "").split(","))
                grown |= not more <= extras
                extras |= more
    for spec, extra, rest in parsed:
        if requirement_name(spec) == "iterit" or (extra is not None and extra not in extras):
            continue
        if requirement_name(spec) == "torch" and torch_version:
            spec = f"torch=={torch_version}"
        print(pinned_to_floor(spec) + (f" ; {rest}" if rest else ""))


if __name__ == "__main__":
    main(*sys.argv[1:])
