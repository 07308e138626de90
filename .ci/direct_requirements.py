"""Print the direct requirements an iterit wheel declares, one a line, for the extras named
(comma-separated; extras that name other extras of iterit are followed), with their other
markers kept. `.ci/floors` passes them to uv by name, because `--resolution lowest-direct`
lowers only what is named on its command line.

    python .ci/direct_requirements.py WHEEL EXTRAS [TORCH_VERSION]

TORCH_VERSION, when given, replaces torch's requirement by that one version.
"""

from __future__ import annotations

import re
import sys
import zipfile

EXTRA = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")


def requirement_name(spec: str) -> str:
    return re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0].lower()


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
        print(spec + (f" ; {rest}" if rest else ""))


if __name__ == "__main__":
    main(*sys.argv[1:])
