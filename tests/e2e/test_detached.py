"""A backup outlives the MCP connection and the server: the worker runs in its own session."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from plugin.jobs.runtime import JobRuntime
from tests.conftest import sf_env
from tests.jobs.support import SMALL, ended, fake_org, held, wait_until

pytestmark = pytest.mark.e2e


def test_the_backup_completes_after_the_host_hung_up_and_the_server_exited(home: Path) -> None:
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    with fake_org() as fake:
        hold = fake.add_fault({"action": "delay", "seconds": 3, "path": "/query", "sobject": "Contact", "times": 1})
        env = {"SFBACKUP_HOME": str(home), **sf_env(fake), "SFBACKUP_CLEANUP_DELAY": "0.1"}
        params = StdioServerParameters(command=sys.executable, args=["-m", "plugin.cli", "serve"], env=env)

        async def start_and_hang_up() -> str:
            with open(home.parent / f"{home.name}.serve.log", "w", encoding="utf-8") as errlog:
                async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
                    result = await client.call_tool("salesforce_backup", {"backup_type": "full", **SMALL})
                    assert not result.is_error, result.content
                    job: Any = result.structured_content["job_id"]
                    await anyio.to_thread.run_sync(
                        lambda: wait_until(lambda: held(fake, hold), what="the worker to be busy")
                    )
                    return str(job)
            # leaving the block closed stdin and waited for the server process to exit

        job = anyio.run(start_and_hang_up)
        rt = JobRuntime(home, env=env)
        assert rt.job(job).status == "running"  # the server is gone, the worker is not
        wait_until(lambda: ended(rt, job), what="the job to end without its server")
        final = rt.job(job)
        assert final.status == "completed" and final.records == 1800
        assert Path(final.backup_directory or "", "manifest.json").is_file()
        rt.close()


def test_a_host_that_hangs_up_right_after_the_answer_still_gets_its_backup(home: Path) -> None:
    """The worker is spawned just after the answer: a server whose stdin closes at once still starts it."""
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    with fake_org() as fake:
        env = {"SFBACKUP_HOME": str(home), **sf_env(fake), "SFBACKUP_CLEANUP_DELAY": "0.1"}
        params = StdioServerParameters(command=sys.executable, args=["-m", "plugin.cli", "serve"], env=env)

        async def start_and_hang_up() -> str:
            with open(home.parent / f"{home.name}.serve.log", "w", encoding="utf-8") as errlog:
                async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
                    result = await client.call_tool("salesforce_backup", {"backup_type": "full", **SMALL})
                    assert not result.is_error, result.content
                    return str(result.structured_content["job_id"])  # type: ignore[index]

        job = anyio.run(start_and_hang_up)
        rt = JobRuntime(home, env=env)
        wait_until(lambda: ended(rt, job), what="the job to end without its server")
        final = rt.job(job)
        assert final.status == "completed" and final.records == 1800, final
        rt.close()
