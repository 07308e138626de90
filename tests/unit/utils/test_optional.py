"""A missing optional dependency raises MissingDependencyError with the extra to install."""

from __future__ import annotations

import pytest

from iterit.errors import MissingDependencyError
from iterit.utils.optional import (
    install_hint,
    package_hint,
    require,
    require_package,
    requires_extra,
)
from tests.helpers.processes import run_without


def test_require_returns_the_module():
    import json

    assert require("json", "torch") is json


def test_require_names_the_extra_for_a_missing_module():
    with pytest.raises(MissingDependencyError, match=r"pip install 'iterit\[train\]'") as e:
        require("iterit_no_such_module_xyz", "train")
    assert isinstance(e.value, ImportError)
    assert "iterit_no_such_module_xyz" in str(e.value)


def test_requires_extra_leaves_other_errors_alone():
    with pytest.raises(ZeroDivisionError), requires_extra("torch"):
        1 / 0  # noqa: B018
    # A missing iterit module is a broken installation, not a missing extra.
    with pytest.raises(ModuleNotFoundError) as e, requires_extra("torch"):
        import iterit.no_such_module  # noqa: F401
    assert not isinstance(e.value, MissingDependencyError)


def test_install_hint():
    assert install_hint("cli") == "pip install 'iterit[cli]'"
    assert package_hint("lm-eval") == "pip install lm-eval"


def test_require_names_what_needs_the_module():
    with pytest.raises(MissingDependencyError, match=r"^writing x needs iterit_nope_xyz, "):
        require("iterit_nope_xyz", "cli", "writing x")


def test_require_package_names_a_package_outside_the_extras():
    import json

    assert require_package("json", "json") is json
    with pytest.raises(
        MissingDependencyError,
        match=r"to_scipy\(\) needs iterit_nope_xyz, .*"
        r"install it with pip install nope-xyz$",
    ):
        require_package("iterit_nope_xyz.sub", "nope-xyz", "to_scipy()")


CHECK = """
from iterit.errors import MissingDependencyError
try:
    {statement}
except MissingDependencyError as e:
    assert isinstance(e, ImportError)
    print("HINT:", e)
else:
    print("NO ERROR")
"""


@pytest.mark.parametrize(
    ("blocked", "statement", "extra"),
    [
        (["torch"], "import iterit.scoring.scorer", "torch"),
        (["torch"], "from iterit.scoring import IFDScorer", "torch"),
        (["torch"], "from iterit.scoring import load_model", "torch"),
        (["torch"], "from iterit.scoring import reference_ifd", "torch"),
        (["transformers"], "from iterit.training import IterITCallback", "train"),
        (["torch", "transformers"], "from iterit.training import IterITTrainer", None),
        (["torch"], "from iterit.training import IterITSampler", "train"),
    ],
)
def test_missing_extra_gives_install_hint(blocked, statement, extra):
    result = run_without(blocked, CHECK.format(statement=statement))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("HINT:"), out
    if extra is None:  # which module fails first is an import-order detail: either hint is right
        assert "pip install 'iterit[torch]'" in out or "pip install 'iterit[train]'" in out, out
    else:
        assert f"pip install 'iterit[{extra}]'" in out, out


def test_the_selector_needs_no_extra():
    result = run_without(
        ["torch", "transformers", "click"],
        "import iterit, iterit.selection, iterit.scoring, iterit.training\n"
        "print(iterit.select(['a b', 'c d', 'a c'], None, 2).indices.tolist())",
    )
    assert result.returncode == 0, result.stderr
