"""The ``pixelmerge`` command."""

from __future__ import annotations

import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from renderer import RendererError, Template, load_template, render
from renderer.api import directory_assets
from renderer.encode import EXTENSIONS, normalize_format
from renderer.expressions import render_text

from .rows import DataError, read_rows

DEMO_DIR = Path(__file__).resolve().parent.parent / "renderer" / "demo"
err = Console(stderr=True, soft_wrap=True)
MAX_STEM_BYTES = 150  # leaves room for "-N", the extension and ".part" in a 255-byte name


@click.group()
def main() -> None:
    """Pixelmerge: templates plus data become images and PDFs."""


@main.command()
@click.argument("template")
def validate(template: str) -> None:
    """Check TEMPLATE (a .json or .html file) and say what is wrong."""
    tpl = _load(template)
    kinds = f"{len(tpl.layers)} layers" if tpl.kind == "layered" else "html"
    click.echo(f"ok: {tpl.name!r} ({tpl.kind}, {tpl.width}x{tpl.height}, {kinds}, "
               f"{len(tpl.variables)} variables, sizes: {', '.join(tpl.sizes) or 'none'})")


def _load(template: str) -> Template:
    try:
        return load_template(Path(template))
    except RendererError as exc:
        err.print(f"[red]error:[/red] {template}: {exc}", highlight=False)
        sys.exit(2)


@dataclass(frozen=True)
class Job:
    """What every worker needs; rows travel separately."""

    template: str
    out: str
    format: str
    size: str | None
    scale: float
    quality: int | None
    assets: str


@main.command("render")
@click.argument("template")
@click.option("--data", "data", required=True, help="Rows: a .csv or .json file, or - for stdin.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Folder for the files.")
@click.option("--format", "fmt", default="png", show_default=True,
              help="png, jpeg, webp, avif, gif or pdf.")
@click.option("--name", "name", default=None,
              help='File name pattern, e.g. "{{ sku }}" (default: the 1-based row number).')
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes rendering in parallel.")
@click.option("--assets", default=None, type=click.Path(exists=True, file_okay=False),
              help="Folder for asset: names (default: the template's folder).")
@click.option("--size", default=None, help="A named size variant.")
@click.option("--scale", default=1.0, type=click.FloatRange(1, 4), show_default=True)
@click.option("--quality", default=None, type=click.IntRange(1, 100))
def render_command(template, data, out, fmt, name, jobs, assets, size, scale, quality) -> None:
    """Render TEMPLATE once per row of --data into --out, one file per row."""
    tpl = _load(template)
    try:
        fmt = normalize_format(fmt)
        rows = read_rows(data)
    except (RendererError, DataError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)
    names = _file_names(rows, name)
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot create {out}: {exc.strerror or exc}",
                  highlight=False)
        sys.exit(2)
    job = Job(template, out, fmt, size, scale, quality,
              assets or (tpl.base_path or os.getcwd()))
    failures = _run(job, list(zip(range(1, len(rows) + 1), names, rows, strict=True)), jobs)
    _report(len(rows), failures, out)


def _file_names(rows: list[dict], pattern: str | None) -> list[str]:
    names, seen = [], set()
    for number, row in enumerate(rows, start=1):
        stem = str(number)
        if pattern:
            try:
                stem = _safe_stem(render_text(pattern, row, path="--name")) or str(number)
            except RendererError as exc:
                err.print(f"[red]error:[/red] row {number}: {exc}", highlight=False)
                sys.exit(2)
        unique, n = stem, 2
        while unique in seen:
            unique, n = f"{stem}-{n}", n + 1
        seen.add(unique)
        names.append(unique)
    return names


def _safe_stem(text: str) -> str:
    """No path separators or control characters: a row cannot write outside --out. File names
    are limited in bytes, not characters: cut the UTF-8 form, never inside a character."""
    stem = re.sub(r"[\x00-\x1f/\\:*?\"<>|]+", "_", text.strip()).strip(". ")
    return stem.encode()[:MAX_STEM_BYTES].decode(errors="ignore").rstrip(". ")


_worker_template: Template | None = None
_session = None


def _outbound():
    """Remote images go through the guarded session; OUTBOUND_ALLOWLIST opens hosts/CIDRs."""
    global _session
    if _session is None:
        from connectors.http import GuardedSession, OutboundPolicy

        _session = GuardedSession(OutboundPolicy.from_config(
            os.environ.get("OUTBOUND_ALLOWLIST", "")))
    return _session


def _init_worker(job: Job) -> None:
    global _worker_template
    _worker_template = load_template(Path(job.template))


def _render_row(job: Job, item: tuple[int, str, dict]) -> tuple[int, str | None]:
    """Render one row into its file; returns (row number, error message or None)."""
    number, stem, row = item
    tpl = _worker_template or load_template(Path(job.template))
    try:
        result = render(tpl, row, format=job.format, size=job.size, scale=job.scale,
                        quality=job.quality, assets=directory_assets(job.assets),
                        fetch=_outbound().fetch)
    except RendererError as exc:
        return number, str(exc)
    target = Path(job.out) / f"{stem}.{EXTENSIONS[job.format]}"
    partial = target.with_name(f".{target.name}.part")
    try:
        partial.write_bytes(result.data)
        partial.replace(target)  # a file in --out is always whole
    except OSError as exc:
        partial.unlink(missing_ok=True)
        return number, f"cannot write {target}: {exc.strerror or exc}"
    return number, None


def _run(job: Job, items: list, jobs: int) -> list[tuple[int, str]]:
    failures = []
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task("rendering", total=len(items))
        for number, error in _results(job, items, jobs):
            if error:
                failures.append((number, error))
            progress.advance(task)
    return sorted(failures)


def _results(job: Job, items: list, jobs: int):
    if jobs == 1:
        _init_worker(job)
        for item in items:
            yield _render_row(job, item)
        return
    # forkserver: workers start clean (no inherited threads or locks) and import once
    with ProcessPoolExecutor(jobs, mp_context=get_context("forkserver"),
                             initializer=_init_worker, initargs=(job,)) as pool:
        chunk = max(1, min(16, len(items) // (jobs * 8) or 1))
        yield from pool.map(_render_row, [job] * len(items), items, chunksize=chunk)


def _report(total: int, failures: list[tuple[int, str]], out: str) -> None:
    for number, message in failures:
        err.print(f"[red]error:[/red] row {number}: {message}", highlight=False)
    done = total - len(failures)
    click.echo(f"rendered {done} of {total} rows into {out}")
    if failures:
        sys.exit(1)


@main.command()
@click.option("--out", default="out/demo", show_default=True, type=click.Path(file_okay=False))
def demo(out: str) -> None:
    """Render the bundled demo templates into --out."""
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    assets = directory_assets(DEMO_DIR)
    plans = [("card.json", None, "png"), ("card.json", "story", "jpeg"),
             ("card.json", None, "pdf"), ("world.json", None, "png"),
             ("countdown.json", None, "gif"), ("certificate.json", None, "pdf"),
             ("certificate.json", None, "png")]
    for file, size, fmt in plans:
        tpl = load_template(DEMO_DIR / file)
        result = render(tpl, tpl.samples(), format=fmt, size=size, assets=assets)
        name = f"{Path(file).stem}{'-' + size if size else ''}.{result.extension}"
        (target / name).write_bytes(result.data)
        click.echo(f"  {name:28} {result.width}x{result.height}  {len(result.data):>9,} bytes")
    click.echo(f"Demo images are in {target.resolve()}")


@main.command("sheets-emulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, show_default=True, type=int)
@click.option("--data", default=None, type=click.Path(dir_okay=False),
              help="A JSON file keeping spreadsheets, service accounts and grants between runs "
                   "(default: memory only).")
@click.option("--credentials", default="var/sheets-emulator-service-account.json",
              show_default=True, type=click.Path(dir_okay=False),
              help="Where to write the emulator's service-account JSON key.")
@click.option("--quota-per-minute", default=None, type=click.IntRange(1),
              help="Answer 429 past N reads (and N writes) a minute per principal.")
@click.option("--client-id", default=None, help="The only OAuth client id accepted (default: any).")
@click.option("--client-secret", default=None, help="Its client secret (default: any).")
@click.option("--public-url", default=None,
              help="How clients reach the emulator (default: http://HOST:PORT).")
def sheets_emulator(host, port, data, credentials, quota_per_minute, client_id, client_secret,
                    public_url) -> None:
    """Serve a local emulator of the Google Sheets API (NOT Google) for tests and demos: the
    API subset Pixelmerge uses, Google's token endpoints, a web view and fault switches."""
    from .sheets_emulator import run

    try:
        run(host, port, credentials=credentials, public_url=public_url, echo=click.echo,
            data_path=data, quota_per_minute=quota_per_minute, client_id=client_id,
            client_secret=client_secret)
    except (OSError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)


def _register_service_commands() -> None:
    from .cli_service import admin, bootstrap, db, scheduler, serve, worker

    main.add_command(worker)
    main.add_command(scheduler)
    main.add_command(bootstrap)
    main.add_command(serve)
    main.add_command(db)
    main.add_command(admin)


_register_service_commands()


if __name__ == "__main__":
    main()
