"""The ``cnnlab`` entry point: one Typer app, one module per subcommand.

Errors raised on purpose (:class:`~cnnlab.core.errors.CnnlabError`) print as one line and exit
with status 2; ``cnnlab --debug ...`` shows the full traceback instead.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

import cnnlab
from cnnlab.cli import (
    augment_cmd,
    conv_calc_cmd,
    data_cmd,
    demo_cmd,
    evaluate_cmd,
    explain_cmd,
    explore_cmd,
    export_cmd,
    faces_cmd,
    info_cmd,
    kernels_cmd,
    ladder_cmd,
    lr_find_cmd,
    models_cmd,
    predict_cmd,
    recognise_cmd,
    report_cmd,
    serve_cmd,
    style_cmd,
    summary_cmd,
    train_cmd,
)
from cnnlab.core.errors import CnnlabError
from cnnlab.data.cache import data_warnings_as_lines

app = typer.Typer(
    name="cnnlab",
    help="Learn, build, train, explain and ship CNNs on a laptop CPU.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.command("train")(train_cmd.train)
app.command("lr-find")(lr_find_cmd.lr_find)
app.command("demo")(demo_cmd.demo)
app.command("info")(info_cmd.info)
app.command("summary")(summary_cmd.summary)
app.command("conv-calc")(conv_calc_cmd.conv_calc)
app.command("kernels")(kernels_cmd.kernels)
app.command("augment")(augment_cmd.augment)
app.add_typer(data_cmd.app, name="data")
app.command("models")(models_cmd.models)
app.command("predict")(predict_cmd.predict)
app.command("evaluate")(evaluate_cmd.evaluate)
app.command("report")(report_cmd.report)
app.command("explain")(explain_cmd.explain)
app.command("explore")(explore_cmd.explore)
app.command("export")(export_cmd.export)
app.command("serve")(serve_cmd.serve)
app.command("style")(style_cmd.style)
app.command("faces")(faces_cmd.faces)
app.command("ladder")(ladder_cmd.ladder)
app.command("enrol")(recognise_cmd.enrol)
app.command("verify")(recognise_cmd.verify)
app.command("identify")(recognise_cmd.identify)


def _version(show: bool) -> None:
    if show:
        typer.echo(f"cnnlab {cnnlab.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", callback=_version),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """Learn, build, train, explain and ship CNNs on a laptop CPU."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 unexpected error, 2 bad input, 130 interrupted)."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        warn = lambda message: err.print(f"[yellow]warning:[/yellow] {escape(message)}")  # noqa: E731
        with data_warnings_as_lines(warn, every=not debug):  # --debug: library warnings as Python prints them
            code = app(args=args, prog_name="cnnlab", standalone_mode=False)  # typer.Exit(n) in a command: n
    except typer.Exit as done:
        return done.exit_code
    except typer.TyperException as exc:  # usage errors: bad option, missing argument
        exc.show()  # type: ignore[attr-defined]
        return exc.exit_code
    except typer.Abort:
        err.print("[red]Aborted.[/red]")
        return 130
    except CnnlabError as exc:
        if debug:
            raise
        err.print(f"[bold red]error:[/bold red] {escape(str(exc))}")
        return 2
    except KeyboardInterrupt:
        err.print("[red]Interrupted.[/red]")
        return 130
    except Exception as exc:
        if debug:
            raise
        err.print(f"[bold red]unexpected error:[/bold red] {type(exc).__name__}: {escape(str(exc))}")
        err.print("Run again with --debug for the traceback, and please report it.")
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
