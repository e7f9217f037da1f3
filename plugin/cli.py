"""sfbackup: Salesforce backups in the background, as an MCP plugin and from the shell.

Quick start:

\b
    sfbackup demo                 back up the bundled fake org through a real MCP client
    sfbackup serve                run the MCP server over stdio (what hosts start)
    sfbackup backup --type full   back up the org in SF_* variables, with a progress bar
    sfbackup status [JOB]         one job, or all jobs newest first
    sfbackup cancel JOB           stop a running or queued job
    sfbackup resume JOB           start an interrupted or retryably failed job again (same folder)
    sfbackup list                 finished backups
    sfbackup events [--follow]    the audit trail, live with --follow
    sfbackup audit [JOB]          who started each job, and its history
    sfbackup verify               audit the event log and the anchors in backup manifests
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from events import EventLogError
from events.streamfile import event_dict, to_line
from plugin import config
from plugin.errors import PluginError

if TYPE_CHECKING:
    from rich.table import Table

F = TypeVar("F", bound=Callable[..., Any])


def json_option(fn: F) -> F:
    """The same ``--json`` spelling on every command that prints data."""
    return click.option("--json", "json_", is_flag=True, help="Print JSON instead of text.")(fn)


def emit(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def fail(message: str) -> click.ClickException:
    return click.ClickException(message)


def _home(ctx: click.Context) -> Path:
    home: Path = ctx.obj["home"]
    return home


def _runtime(ctx: click.Context) -> Any:
    from plugin.jobs.runtime import JobRuntime

    return JobRuntime(_home(ctx))


class SfbackupGroup(click.Group):
    """Our errors end any command as one ``Error: ...`` line with exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (PluginError, EventLogError) as e:
            raise fail(str(e)) from e


@click.group(cls=SfbackupGroup, help=__doc__, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="salesforce-backup-mcp", prog_name="sfbackup")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="SFBACKUP_HOME",
    help="Where events.db and backups/ live (env SFBACKUP_HOME; default: the user data dir).",
)
@click.pass_context
def cli(ctx: click.Context, home: Path | None) -> None:
    from plugin.log_setup import configure_logging

    configure_logging()
    ctx.ensure_object(dict)
    ctx.obj["home"] = home.expanduser().resolve() if home else config.home_dir()


@cli.command()
@click.option("--http", "http", is_flag=True, help="Serve streamable HTTP on 127.0.0.1 instead of stdio.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port for --http (default 8765; 0 picks a free one). The URL is printed as one JSON line.",
)
@click.pass_context
def serve(ctx: click.Context, http: bool, port: int | None) -> None:
    """Run the MCP server over stdio (stdout carries only the protocol; logs go to stderr).

    With --http it serves http://127.0.0.1:PORT/mcp instead (stateful sessions, Host/Origin checks)
    and prints {"url": ...} on stdout once it listens.
    """
    if not http:
        if port is not None:
            raise fail("--port only applies with --http; stdio needs no port.")
        from plugin.mcp.server import serve_stdio

        serve_stdio(_home(ctx))
        return
    from plugin.mcp.http import DEFAULT_PORT, serve_http

    def ready(url: str) -> None:
        click.echo(json.dumps({"url": url}))
        sys.stdout.flush()

    try:
        serve_http(_home(ctx), port=DEFAULT_PORT if port is None else port, on_ready=ready)
    except PluginError as e:
        raise fail(str(e)) from e


@cli.command()
@click.option(
    "--org",
    "org_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Fake org folder (default: the bundled fixtures/orgs/demo).",
)
@click.option("--page-size", type=int, default=None, help="Records per query page served by the fake org.")
@json_option
@click.pass_context
def demo(ctx: click.Context, org_dir: Path | None, page_size: int | None, json_: bool) -> None:
    """Back up the bundled fake org end to end: fake org, `sfbackup serve`, MCP client, worker."""
    from plugin.demo import run_demo

    explicit_home = ctx.obj["home"] if ctx.find_root().params.get("home") else None
    code = run_demo(org_dir=org_dir, home=explicit_home, page_size=page_size, as_json=json_)
    sys.exit(code)


@cli.command()
@click.option(
    "--type",
    "backup_type",
    type=click.Choice(["full", "incremental", "files_only"]),
    default="full",
    show_default=True,
)
@click.option("--since", "since_date", default=None, help="ISO date/datetime for incremental backups.")
@click.option("--object", "objects", multiple=True, help="Only this sObject (repeatable).")
@click.option("--no-files", is_flag=True, help="Skip ContentVersion bodies.")
@click.option("--no-attachments", is_flag=True, help="Skip Attachment bodies.")
@click.option("--no-documents", is_flag=True, help="Skip Document bodies.")
@click.option("--compress", is_flag=True, help="gzip the CSV files.")
@click.option("--parallel", type=click.IntRange(1, 10), default=5, show_default=True, help="Downloads in flight.")
@click.option("--output", "output_directory", default=None, help="Backup root folder (inside SFBACKUP_HOME).")
@click.option(
    "--content-versions",
    type=click.Choice(["all", "latest"]),
    default="all",
    show_default=True,
    help="Salesforce Files: every version, or only the latest.",
)
@json_option
@click.pass_context
def backup(
    ctx: click.Context,
    backup_type: str,
    since_date: str | None,
    objects: tuple[str, ...],
    no_files: bool,
    no_attachments: bool,
    no_documents: bool,
    compress: bool,
    parallel: int,
    output_directory: str | None,
    content_versions: str,
    json_: bool,
) -> None:
    """Back up the org in the SF_* environment now, showing progress until the job ends."""
    from plugin.jobs.options import validate_request

    runtime = _runtime(ctx)
    try:
        options = validate_request(
            home=runtime.home,
            backup_type=backup_type,
            since_date=since_date,
            objects_filter=list(objects),
            include_files=not no_files,
            include_attachments=not no_attachments,
            include_documents=not no_documents,
            compression=compress,
            parallel_downloads=parallel,
            output_directory=output_directory,
            content_versions=content_versions,
        )
        job = runtime.start_backup(options, actor="cli", tool="sfbackup backup")
        job = _follow(runtime, job.job_id, quiet=json_)
    finally:
        runtime.close()
    if json_:
        emit(job.to_dict())
    else:
        from plugin.tables import job_table

        show(job_table(job.to_dict()))
    if job.status != "completed":
        sys.exit(1)


def _recover(runtime: Any) -> None:
    """Record lost workers before showing jobs, so a status is truthful with no server running."""
    from plugin.jobs import recovery

    recovery.reap(runtime)


def _follow(runtime: Any, job_id: str, *, quiet: bool, ended: set[str] | None = None) -> Any:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    terminal = ended or {"completed", "failed", "cancelled", "interrupted"}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        transient=True,
        disable=quiet,
        console=None,
    ) as bar:
        task = bar.add_task("requested", total=100)
        for tick in itertools.count():
            if tick % 5 == 4:
                # A worker can die where its exit handler could not record it (a full disk): a reap once
                # a second records it as soon as it can, or raises why it cannot, instead of waiting forever.
                _recover(runtime)
            job = runtime.job(job_id)
            what = job.current_object or job.phase or job.status
            bar.update(task, completed=job.percent, description=f"{what} · {job.records} records · {job.files} files")
            if job.status in terminal:
                return job
            time.sleep(0.2)


@cli.command()
@click.argument("job_id", required=False)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@json_option
@click.pass_context
def status(ctx: click.Context, job_id: str | None, limit: int, offset: int, json_: bool) -> None:
    """Show one job, or all jobs newest first."""
    runtime = _runtime(ctx)
    try:
        _recover(runtime)
        if job_id:
            jobs = [runtime.job(job_id)]
            total = 1
        else:
            jobs, total = runtime.jobs(limit=limit, offset=offset)
    finally:
        runtime.close()
    if json_:
        emit(jobs[0].to_dict() if job_id else {"total": total, "jobs": [j.to_dict() for j in jobs]})
        return
    from plugin.tables import job_table, jobs_table

    if job_id:
        show(job_table(jobs[0].to_dict()))
    elif not total:
        click.echo("No backup jobs yet. Start one with `sfbackup backup` or the salesforce_backup tool.")
    else:
        show(jobs_table([j.to_dict() for j in jobs], total=total, offset=offset))


@cli.command()
@click.argument("job_id")
@click.option("--reason", default=None, help="Why (kept in the audit trail).")
@json_option
@click.pass_context
def cancel(ctx: click.Context, job_id: str, reason: str | None, json_: bool) -> None:
    """Cancel a running or queued job: the worker stops within about a second (or is stopped by force
    after SFBACKUP_CANCEL_GRACE); exits 1 if the job had already ended."""
    runtime = _runtime(ctx)
    try:
        job = runtime.cancel(job_id, reason=reason, actor="cli")
        deadline = time.monotonic() + 5
        while job.status not in ("cancelled", "completed", "failed") and time.monotonic() < deadline:
            time.sleep(0.1)
            job = runtime.job(job_id)
    finally:
        runtime.close()
    if json_:
        emit(job.to_dict())
        return
    if job.status == "cancelled":
        click.echo(f"Job {job_id} is cancelled.")
    else:
        click.echo(f"Cancel of job {job_id} requested ({job.status}); the worker stops at its next safe point.")


@cli.command()
@click.argument("job_id")
@click.option("--follow/--no-follow", default=False, help="Show progress until the job ends.")
@json_option
@click.pass_context
def resume(ctx: click.Context, job_id: str, follow: bool, json_: bool) -> None:
    """Resume an interrupted or retryably failed job as its next attempt, in the same backup folder."""
    runtime = _runtime(ctx)
    try:
        job = runtime.resume(job_id)
        if follow:
            job = _follow(runtime, job_id, quiet=json_, ended={"completed", "failed", "cancelled"})
    finally:
        runtime.close()
    if json_:
        emit(job.to_dict())
    elif follow:
        from plugin.tables import job_table

        show(job_table(job.to_dict()))
    else:
        click.echo(f"Job {job_id} resumes as attempt {job.attempt + 1}. Follow it with `sfbackup status {job_id}`.")


@cli.command(name="list")
@click.option("--org", "org_id", default=None, help="Only backups of this org id.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@json_option
@click.pass_context
def list_backups(ctx: click.Context, org_id: str | None, limit: int, offset: int, json_: bool) -> None:
    """List finished backups, newest first."""
    runtime = _runtime(ctx)
    try:
        entries, total = runtime.backups(limit=limit, offset=offset, org_id=org_id)
    finally:
        runtime.close()
    if json_:
        emit({"total": total, "backups": [entry.to_dict() for entry in entries]})
        return
    from plugin.tables import backups_table

    if not total:
        click.echo("No finished backups yet.")
    else:
        show(backups_table([entry.to_dict() for entry in entries], total=total, offset=offset))


def _event_types() -> list[str]:
    from events.vocabulary import REGISTRY

    return sorted(REGISTRY)


@cli.command()
@click.option("--job", "job_id", default=None, help="Only this job's events.")
@click.option("--org", "org_id", default=None, help="Only events of jobs that back up this org id.")
@click.option("--correlation", "correlation_id", default=None, help="Only events of this MCP request (correlation id).")
@click.option("--type", "types", multiple=True, type=click.Choice(_event_types()), help="Only this type (repeatable).")
@click.option("--after", type=click.IntRange(0), default=0, help="Start after this global position.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Stop after this many events.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing events as they are recorded, until Ctrl-C.")
@click.option("--until-done", is_flag=True, help="With --follow --job: exit once the job completed, failed or stopped.")
@json_option
@click.pass_context
def events(
    ctx: click.Context,
    job_id: str | None,
    org_id: str | None,
    correlation_id: str | None,
    types: tuple[str, ...],
    after: int,
    limit: int | None,
    follow: bool,
    until_done: bool,
    json_: bool,
) -> None:
    """Print the audit trail (every event, in commit order); --json prints one JSON object per line."""
    from plugin.trail import trail
    from projections.audit import Selection

    if until_done and not (follow and job_id):
        raise click.UsageError("--until-done needs --follow and --job JOB.")
    selection = Selection(job_id=job_id, org_id=org_id, correlation_id=correlation_id, types=frozenset(types))
    stop = threading.Event()
    printed = 0
    with _stop_on_signals(stop, enabled=follow):
        try:
            for e in trail(
                config.events_path(_home(ctx)),
                selection,
                after=after,
                follow=follow,
                until_ended=until_done,
                stop=stop,
            ):
                click.echo(to_line(e) if json_ else _event_text(e))
                printed += 1
                if stop.is_set() or (limit is not None and printed >= limit):
                    break
        except EventLogError as e:
            raise fail(str(e)) from e


@contextmanager
def _stop_on_signals(stop: threading.Event, *, enabled: bool) -> Iterator[None]:
    """Ctrl-C and SIGTERM set ``stop``, so a follower ends cleanly (exit 0) at its next wake-up."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _event_text(e: Any) -> str:
    return (
        f"{e.position:>6}  {e.occurred_at}  {e.stream_id}  v{e.stream_version}  {e.type}  "
        f"{json.dumps(e.data, ensure_ascii=False)[:160]}"
    )


@cli.command()
@click.argument("job_id", required=False)
@click.option("--org", "org_id", default=None, help="Only jobs that back up this org id.")
@json_option
@click.pass_context
def audit(ctx: click.Context, job_id: str | None, org_id: str | None, json_: bool) -> None:
    """Who started each job (actor, tool, user, host, pid, MCP request) and, for one JOB, its history."""
    from plugin.trail import job_audit, origins

    path = config.events_path(_home(ctx))
    try:
        if job_id:
            origin, status, history = job_audit(path, job_id)
            if json_:
                emit({"job": {**origin.to_dict(), "status": status.status}, "events": [event_dict(e) for e in history]})
                return
            click.echo(_origin_text(origin.to_dict(), status.status))
            for e in history:
                click.echo(_event_text(e))
            return
        rows = origins(path, org_id=org_id)
    except (PluginError, EventLogError) as e:
        raise fail(str(e)) from e
    if json_:
        emit({"jobs": [{**origin.to_dict(), "status": status.status} for origin, status in rows]})
        return
    if not rows:
        click.echo("No backup jobs yet.")
    for origin, status in rows:
        click.echo(_origin_text(origin.to_dict(), status.status))


def _origin_text(o: dict[str, Any], status: str) -> str:
    who = o["actor"] or "unknown"
    if o["tool"]:
        who += f" ({o['tool']})"
    where = "@".join(p for p in (o["user"], o["host"]) if p) or "unknown host"
    line = (
        f"{o['job_id']}  {o['requested_at']}  {status:<11} {o['backup_type'] or '':<11} org {o['org_id'] or '?'}\n"
        f"    started by {who} as {where}, pid {o['pid'] if o['pid'] is not None else '?'}"
    )
    if o["auth"]:
        line += f", {o['auth']} auth"
    if o["correlation_id"]:
        line += f", MCP request {o['correlation_id']}"
    if o["worker_id"]:
        line += f"\n    run by worker {o['worker_id']}"
    return line


@cli.command()
@json_option
@click.pass_context
def verify(ctx: click.Context, json_: bool) -> None:
    """Audit the event log: integrity_check, guard triggers, hash chain, and the log head each backup
    manifest recorded. Opens the log read-only; exits 1 naming what is wrong and what to do."""
    from plugin.verify import verify_home

    report = verify_home(_home(ctx))
    if json_:
        emit(report.to_dict())
    elif report.ok and not report.exists:
        click.echo(f"ok: no event log yet at {report.log_path}, and no backup manifests refer to one")
    elif report.ok:
        click.echo(
            f"ok: {report.checked} events, chain intact, integrity_check ok, {len(report.anchors)} manifest "
            f"anchor(s) match; head {report.head[0]} {report.head[1]}"
        )
    else:
        where = "" if report.first_bad_position is None else f" (first bad position {report.first_bad_position})"
        click.echo(f"FAILED: {report.log_path} cannot be trusted{where}:")
        for problem in report.problems:
            click.echo(f"  - {problem}")
    if not report.ok:
        sys.exit(1)


@cli.command()
@json_option
@click.pass_context
def rebuild(ctx: click.Context, json_: bool) -> None:
    """Recompute the projections (job status, backup catalog) from the first event."""
    from plugin.homelog import open_event_log
    from projections import ProjectionStore

    with open_event_log(config.events_path(_home(ctx))) as log:
        store = ProjectionStore(log)
        store.rebuild()
        dump = store.dump()
    counts = {name: len(rows) for name, rows in dump.items() if isinstance(rows, list)}
    if json_:
        emit({"rebuilt": True, "rows": counts})
    else:
        click.echo("rebuilt: " + ", ".join(f"{k} {v} rows" for k, v in counts.items()))


@cli.command()
@click.argument("stream", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
def replay(stream: Path, json_: bool) -> None:
    """Print the projection that a recorded event stream (.jsonl) gives (always JSON)."""
    from projections.replay import render
    from projections.replay import replay as replay_lines

    with open(stream, encoding="utf-8") as fh:
        click.echo(render(replay_lines(fh)), nl=False)


@cli.group(name="fake-org")
def fake_org() -> None:
    """A fake Salesforce org on 127.0.0.1 for tests and demos."""


@fake_org.command(name="serve")
@click.option("--org", "org_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="0 picks a free port.")
@click.option("--page-size", type=click.IntRange(1, 2000), default=None, help="Force small query pages.")
@click.option(
    "--replay",
    "cassettes",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Answer from this vcrpy YAML cassette instead of the org (repeatable).",
)
@click.option(
    "--include-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of shared interactions for CumulusCI `include_file` entries in cassettes.",
)
def fake_org_serve(
    org_dir: Path, port: int, page_size: int | None, cassettes: tuple[Path, ...], include_dir: Path | None
) -> None:
    """Serve a fake org over TLS; prints one JSON line (instance_url, ca_bundle, access_token, ...)."""
    from plugin.fakeorg.errors import FakeOrgError
    from plugin.fakeorg.server import serve as serve_fake

    try:
        serve_fake(org_dir, port=port, page_size=page_size, replay=cassettes, include_dir=include_dir)
    except FakeOrgError as e:
        raise fail(str(e)) from e


def main() -> None:
    cli(prog_name="sfbackup")


def show(table: Table) -> None:
    """Print to stdout. Piped output is not squeezed to 80 columns (unless COLUMNS says so): rows stay
    whole lines, so ids and folders survive ``grep``. The only writer of tables: stdout is the
    protocol's in ``serve``, so nothing outside the CLI commands prints."""
    from rich.console import Console

    console = Console(soft_wrap=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(soft_wrap=False, width=1000)
    console.print(table)


if __name__ == "__main__":
    main()
