"""The ``iterit`` command line: ``score``, ``select``, ``report`` and ``train``.

Entry point ``iterit.cli:main`` (also ``python -m iterit.cli``).  Commands are imported only
when run, so ``iterit --help`` stays fast and ``iterit select`` with ``--scores`` never imports
torch.  User errors (bad data, bad options, an existing output) print one line and exit with a
non-zero status (``ITERIT_DEBUG=1`` shows the traceback instead); an interruption (Ctrl-C,
SIGTERM) leaves no partial output file and exits with 128 + the signal (130, 143).  Under
torchrun only rank 0 prints to stdout.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import signal
import sys
from typing import Any

from iterit.utils.optional import install_hint

__all__ = ["DEBUG_ENV", "main"]

#: Set to 1 to see the traceback of a user error instead of its one ``Error:`` line.
DEBUG_ENV = "ITERIT_DEBUG"

try:
    import click
except ImportError:  # the optional extra is not installed
    click = None  # type: ignore[assignment]


_INSTALL_HINT = f"iterit: the command line needs click; install it with: {install_hint('cli')}"

# name -> (module, attribute, one-line help shown by `iterit --help` without importing it)
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "score": ("iterit.cli.score", "score_command", "Score every sample with IFD (resumable)."),
    "select": (
        "iterit.cli.select",
        "select_command",
        "Select complex, diverse samples (or a baseline) and write them.",
    ),
    "report": (
        "iterit.cli.report",
        "report_command",
        "HTML report with plots of a selection or a training run.",
    ),
    "train": (
        "iterit.cli.train",
        "train_command",
        "Fine-tune with per-epoch re-selection (IterIT).",
    ),
    "compare": (
        "iterit.cli.compare",
        "compare_command",
        "Train one model per selection strategy and compare them on held-out NLL.",
    ),
}


if click is None:

    def main(argv: list[str] | None = None) -> None:
        """Stand-in entry point when click is missing: say how to get it, exit 1."""
        print(_INSTALL_HINT, file=sys.stderr)
        sys.exit(1)

else:

    def _user_error_types() -> tuple[type[BaseException], ...]:
        from iterit.errors import IteritError

        # OSError: a file the user named cannot be read or written (permissions, a folder...).
        return (IteritError, OSError)

    def _sigterm(signum: int, frame: Any) -> None:
        # Unwind normally so that atomic writers remove their temporary files.
        raise SystemExit(128 + signum)

    class _Group(click.Group):
        """A group whose commands are imported on first use; turns iterit's user errors into
        one-line messages."""

        def list_commands(self, ctx: click.Context) -> list[str]:
            names = set(super().list_commands(ctx))
            names.update(n for n in _COMMANDS if self._available(n))
            return sorted(names)

        @staticmethod
        def _available(name: str) -> bool:
            module = _COMMANDS[name][0]
            try:
                return importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                return False

        def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
            cmd = super().get_command(ctx, name)
            if cmd is not None or name not in _COMMANDS:
                return cmd
            module, attr, short = _COMMANDS[name]
            if _listing(ctx):
                # `iterit --help`: describe the command without importing it.
                return (
                    click.Command(name, short_help=short, help=short)
                    if self._available(name)
                    else None
                )
            try:
                mod = importlib.import_module(module)
            except ModuleNotFoundError as e:
                if e.name == module:
                    return None  # not written / not shipped
                return _unavailable(name, e)
            except ImportError as e:
                return _unavailable(name, e)
            return getattr(mod, attr, None)

        def invoke(self, ctx: click.Context) -> Any:
            try:
                result = super().invoke(ctx)
            except KeyboardInterrupt:
                # Ctrl-C exits as the shell's convention has it (128 + SIGINT), not click's 1.
                click.echo("Interrupted.", err=True)
                raise SystemExit(128 + signal.SIGINT) from None
            except _user_error_types() as e:
                if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
                    raise  # the whole traceback, for a bug report
                # The one place where an error becomes the single `Error: ...` line.
                raise click.ClickException(_one_line(e)) from None
            # Done on every rank: leave the process group (under torchrun) before the process
            # exits, which torch.distributed asks for (see shutdown); never after an error.
            from iterit.utils.distributed import shutdown

            shutdown()
            return result

        def main(self, *args: Any, **kwargs: Any) -> Any:
            _quiet_other_ranks()
            previous = None
            with contextlib.suppress(ValueError, OSError):  # not the main thread
                previous = signal.signal(signal.SIGTERM, _sigterm)
            try:
                return super().main(*args, **kwargs)
            finally:
                if previous is not None:
                    with contextlib.suppress(ValueError, OSError):
                        signal.signal(signal.SIGTERM, previous)

    def _quiet_other_ranks() -> None:
        # Under torchrun / accelerate every process runs the command: only rank 0 prints its
        # summaries (errors, on stderr, still come from every rank).
        if os.environ.get("RANK", "0") != "0":
            sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115

    def _listing(ctx: click.Context) -> bool:
        # True while click formats the group's help (the command list).
        return bool(getattr(ctx, "_iterit_listing", False))

    def _one_line(e: BaseException) -> str:
        from iterit.artifacts.score_files import OTHER_MODEL_HINT
        from iterit.utils.atomic import OVERWRITE_HINT

        msg = getattr(e, "strerror", None) if isinstance(e, OSError) else None
        if isinstance(e, OSError) and msg and e.filename is not None and str(e.filename) not in msg:
            msg = f"{e.filename}: {msg}"
        text = str(msg or e).strip()
        # The library speaks of arguments; the command line names its flag.
        text = text.replace(OVERWRITE_HINT, "(pass --overwrite to replace it)")
        text = text.replace(OTHER_MODEL_HINT, "(pass --allow-other-model-scores to use them)")
        return " ".join(text.split("\n"))

    def _unavailable(name: str, error: ImportError) -> click.Command:
        @click.command(name, context_settings={"ignore_unknown_options": True})
        @click.argument("args", nargs=-1, type=click.UNPROCESSED)
        def _cmd(args: tuple[str, ...]) -> None:
            raise click.ClickException(
                f"`iterit {name}` is not available: {error}; install the extras it needs "
                f"({install_hint('all')})"
            )

        return _cmd

    class _HelpListingGroup(_Group):
        def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
            ctx._iterit_listing = True  # type: ignore[attr-defined]
            try:
                super().format_commands(ctx, formatter)
            finally:
                ctx._iterit_listing = False  # type: ignore[attr-defined]

    def _version() -> str:
        try:
            from importlib.metadata import version

            return version("iterit")
        except Exception:
            return "unknown"

    @click.group(
        cls=_HelpListingGroup,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    )
    @click.version_option(_version(), "--version", prog_name="iterit")
    def main() -> None:
        """iterit: select instruction-tuning data that is complex and diverse (IterIT).

        \b
        Examples:
          iterit select data.jsonl --budget 0.05 --out selected.jsonl
          iterit score data.jsonl --out scores.parquet
          iterit select data.jsonl --scores scores.parquet --budget 1000 --out sel.json
          iterit report selected.jsonl --out report/
        """
