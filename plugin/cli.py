"""sfbackup: Salesforce backups in the background, as an MCP plugin and from the shell.

Quick start:

    sfbackup demo                 back up the bundled fake org through a real MCP client
    sfbackup serve                run the MCP server over stdio (what hosts start)
    sfbackup backup --type full   back up the org in SF_* variables, with a progress bar
    sfbackup status [JOB]         one job, or all jobs newest first
    sfbackup list                 finished backups
    sfbackup events [--job JOB]   the audit trail
    sfbackup verify               check the event log's hash chain
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from events import EventLogError
from plugin import config
from plugin.errors import PluginError

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


@click.group(help=__doc__, context_settings={"help_option_names": ["-h", "--help"]})
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
        )
        job = runtime.start_backup(options, actor="cli", tool="sfbackup backup")
        job = _follow(runtime, job.job_id, quiet=json_)
    except (PluginError, EventLogError) as e:
        raise fail(str(e)) from e
    finally:
        runtime.close()
    if json_:
        emit(job.to_dict())
    else:
        from plugin.tables import job_table, show

        show(job_table(job.to_dict()))
    if job.status != "completed":
        sys.exit(1)


def _follow(runtime: Any, job_id: str, *, quiet: bool) -> Any:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    terminal = {"completed", "failed", "cancelled", "interrupted"}
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
        while True:
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
        if job_id:
            jobs = [runtime.job(job_id)]
            total = 1
        else:
            jobs, total = runtime.jobs(limit=limit, offset=offset)
    except (PluginError, EventLogError) as e:
        raise fail(str(e)) from e
    finally:
        runtime.close()
    if json_:
        emit(jobs[0].to_dict() if job_id else {"total": total, "jobs": [j.to_dict() for j in jobs]})
        return
    from plugin.tables import job_table, jobs_table, show

    if job_id:
        show(job_table(jobs[0].to_dict()))
    elif not total:
        click.echo("No backup jobs yet. Start one with `sfbackup backup` or the salesforce_backup tool.")
    else:
        show(jobs_table([j.to_dict() for j in jobs], total=total, offset=offset))


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
    except (PluginError, EventLogError) as e:
        raise fail(str(e)) from e
    finally:
        runtime.close()
    if json_:
        emit({"total": total, "backups": [entry.to_dict() for entry in entries]})
        return
    from plugin.tables import backups_table, show

    if not total:
        click.echo("No finished backups yet.")
    else:
        show(backups_table([entry.to_dict() for entry in entries], total=total, offset=offset))


@cli.command()
@click.option("--job", "job_id", default=None, help="Only this job's events.")
@click.option("--after", type=click.IntRange(0), default=0, help="Start after this global position.")
@click.option("--limit", type=click.IntRange(1), default=None)
@json_option
@click.pass_context
def events(ctx: click.Context, job_id: str | None, after: int, limit: int | None, json_: bool) -> None:
    """Print the audit trail (every event, in commit order)."""
    from events import EventLog
    from events.ids import job_stream

    with EventLog.open(config.events_path(_home(ctx))) as log:
        if job_id:
            rows = [e for e in log.read_stream(job_stream(job_id)) if e.position > after][:limit]
        else:
            rows = log.read_all(after=after, limit=limit)
    for e in rows:
        if json_:
            click.echo(json.dumps(_event_dict(e), ensure_ascii=False, default=str))
        else:
            click.echo(
                f"{e.position:>6}  {e.occurred_at}  {e.stream_id}  v{e.stream_version}  {e.type}  "
                f"{json.dumps(e.data, ensure_ascii=False)[:160]}"
            )


def _event_dict(e: Any) -> dict[str, Any]:
    return {
        "position": e.position,
        "event_id": e.event_id,
        "type": e.type,
        "stream": e.stream_id,
        "version": e.stream_version,
        "schema_version": e.schema_version,
        "data": e.data,
        "metadata": e.metadata,
        "correlation_id": e.correlation_id,
        "causation_id": e.causation_id,
        "time": e.occurred_at,
        "hash": e.hash,
    }


@cli.command()
@json_option
@click.pass_context
def verify(ctx: click.Context, json_: bool) -> None:
    """Check the event log's hash chain; exits 1 and names the first bad position if it is broken."""
    from events import EventLog

    with EventLog.open(config.events_path(_home(ctx))) as log:
        report = log.verify()
        head = log.head()
    data = {
        "ok": report.ok,
        "checked": report.checked,
        "first_bad_position": report.first_bad_position,
        "problem": report.problem,
        "head": {"position": head[0], "hash": head[1]},
    }
    if json_:
        emit(data)
    elif report.ok:
        click.echo(f"ok: {report.checked} events, chain intact; head {head[0]} {head[1]}")
    else:
        click.echo(f"BROKEN at position {report.first_bad_position}: {report.problem}")
    if not report.ok:
        sys.exit(1)


@cli.command()
@json_option
@click.pass_context
def rebuild(ctx: click.Context, json_: bool) -> None:
    """Recompute the projections (job status, backup catalog) from the first event."""
    from events import EventLog
    from projections import ProjectionStore

    with EventLog.open(config.events_path(_home(ctx))) as log:
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
def fake_org_serve(org_dir: Path, port: int, page_size: int | None) -> None:
    """Serve a fake org over TLS; prints one JSON line (instance_url, ca_bundle, access_token, ...)."""
    from plugin.fakeorg.errors import FakeOrgError
    from plugin.fakeorg.server import serve as serve_fake

    try:
        serve_fake(org_dir, port=port, page_size=page_size)
    except FakeOrgError as e:
        raise fail(str(e)) from e


def main() -> None:
    cli(prog_name="sfbackup")


if __name__ == "__main__":
    main()
