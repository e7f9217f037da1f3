#!/usr/bin/env python3
"""Records export speed, API calls and memory: ours vs the naive way vs a raw HTTP copy, in one run.

    .venv/bin/python bench/export.py [--scale 1.0] [--only ours,naive,raw] [--profile]

One fake org (``sfbackup fake-org serve``, its own process on loopback) serves generated rows:
200,000 over four objects (Account 60k, Contact 60k, Case 50k, Lead 30k) and Opportunity with
1,000,000, with REST pages of 2,000 rows (Salesforce's maximum) and Bulk results in one page per object (the fake's page
size knobs). Each way runs in its own child process against that same server, one after another:

- ours: ``Exporter`` (REST or Bulk API 2.0 per object by ``limits/recordCount``, CSV to disk);
- naive: simple-salesforce ``query_all`` per object, the whole list dumped to JSON (what the Node
  original did);
- raw: plain ``requests`` fetching the same query pages / Bulk CSV pages ours fetches (same SOQL,
  same method per object) and writing the bytes to disk, nothing else.

Printed per way: records, seconds, records/s, API calls (the fake's count), peak RSS and CPU
seconds of the child (``wait4``) and the server's CPU seconds meanwhile (when that is near the wall
time, the server is the bottleneck and the records/s ratios measure it more than the clients; the
CPU ratio is what each client costs for the same records). Targets: ours >= 5x naive, >= 0.5x
raw, peak RSS <= 150 MB, API calls <= objects + a small constant. ``--profile`` prints ours' top
functions (cProfile, cumulative).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DESCRIBES = ROOT / "fixtures" / "orgs" / "demo" / "describe"
VOLUME = {"Account": 60_000, "Contact": 60_000, "Case": 50_000, "Lead": 30_000, "Opportunity": 1_000_000}
THRESHOLD = 10_000  # the product's default SFBACKUP_BULK_THRESHOLD
_NEXT = re.compile(rb'"nextRecordsUrl"\s*:\s*"([^"]+)"')


def build_org(root: Path, scale: float, cache: Path) -> Path:
    (root / "describe").mkdir(parents=True)
    for name in VOLUME:
        shutil.copy(DESCRIBES / f"{name}.json", root / "describe" / f"{name}.json")
    generators = {
        name: {"count": max(1, int(count * scale)), "seed": n + 1} for n, (name, count) in enumerate(VOLUME.items())
    }
    settings = {
        "org_id": "00D000000000BEN",
        "generators": generators,
        "page_size": 2_000,  # REST pages as Salesforce serves them at most
        "bulk": {"polls_to_complete": 1, "page_size": 2_000_000},
        # rendered pages kept on disk (plugin/fakeorg/cache.py): every way is served the same bytes
        # from the same files, so the fake's row generation is not what the ratios measure
        "response_cache": str(cache),
    }
    (root / "org.json").write_text(json.dumps(settings), encoding="utf-8")
    return root


# -- the three ways (each runs in a child process) --------------------------------------------------
def run_ours(info: dict[str, Any], out: Path, profile: bool) -> int:
    from plugin.config import Credentials, ExportSettings
    from plugin.salesforce.client import OrgClient
    from plugin.salesforce.export import Exporter
    from plugin.salesforce.options import ExportOptions

    creds = Credentials(kind="session", instance_url=info["instance_url"], access_token=info["access_token"])
    client = OrgClient(creds, api_version="62.0", extra_ca=Path(info["ca_bundle"]))
    options = ExportOptions(job_id="bench", include_files=False, include_attachments=False, include_documents=False)
    exporter = Exporter(
        client,
        client.identity(),
        options,
        out / "backup",
        on_plan=lambda s: None,
        on_progress=lambda p: None,
        log_head=lambda: (0, "0" * 64),
        settings=ExportSettings(bulk_threshold=info["bulk_threshold"]),
    )
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        result = profiler.runcall(exporter.run)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    else:
        result = exporter.run()
    client.close()
    return result.records


def naive_soql(describe: dict[str, Any]) -> str:
    """Every field but base64 ones, as the naive way asks for them."""
    fields = [f["name"] for f in describe["fields"] if f["type"] != "base64"]
    return f"SELECT {', '.join(fields)} FROM {describe['name']}"


def run_naive(info: dict[str, Any], out: Path, objects: list[str]) -> int:
    from simple_salesforce import Salesforce

    from plugin.fakeorg.client import client_session

    session = client_session(info["instance_url"], info["ca_bundle"])
    sf = Salesforce(instance_url=info["instance_url"], session_id=info["access_token"], session=session, version="62.0")
    total = 0
    for name in objects:
        describe = sf.restful(f"sobjects/{name}/describe")
        records = sf.query_all(naive_soql(describe), include_deleted=True)["records"]
        with open(out / f"{name}.json", "w", encoding="utf-8") as fh:
            json.dump(records, fh)
        total += len(records)
    return total


def run_raw(info: dict[str, Any], out: Path, plan: list[dict[str, Any]]) -> int:
    from plugin.fakeorg.client import client_session

    session = client_session(info["instance_url"], info["ca_bundle"])
    base = f"{info['instance_url']}/services/data/v62.0/"
    headers = {"Authorization": f"Bearer {info['access_token']}"}
    total = 0
    for item in plan:
        name, soql = item["object"], item["soql"]
        with open(out / f"{name}.{item['method']}", "wb") as fh:
            if item["method"] == "rest":
                url, params = f"{base}queryAll/", {"q": soql}
                while url:
                    with session.get(url, params=params, headers=headers, stream=True) as r:
                        r.raise_for_status()
                        head = b""
                        for chunk in r.iter_content(1 << 20):
                            head = head or chunk[:4096]
                            fh.write(chunk)
                    found = _NEXT.search(head)
                    url = f"{info['instance_url']}{found.group(1).decode()}" if found else ""
                    params = None
            else:
                spec = {"operation": "queryAll", "query": soql, "lineEnding": "CRLF"}  # as ours asks
                job = session.post(f"{base}jobs/query", json=spec, headers=headers)
                job_id = job.json()["id"]
                while session.get(f"{base}jobs/query/{job_id}", headers=headers).json()["state"] != "JobComplete":
                    time.sleep(0.05)
                locator: str | None = None
                while True:
                    params = {"locator": locator} if locator else None
                    with session.get(
                        f"{base}jobs/query/{job_id}/results", params=params, headers=headers, stream=True
                    ) as r:
                        r.raise_for_status()
                        for chunk in r.iter_content(1 << 20):
                            fh.write(chunk)
                        locator = r.headers.get("Sforce-Locator")
                    if locator in (None, "null"):
                        break
        total += item["records"]
    return total


def child(args: argparse.Namespace) -> None:
    info = json.loads(Path(args.info).read_text(encoding="utf-8"))
    out = Path(args.out)
    started = time.perf_counter()
    if args.child == "ours":
        records = run_ours(info, out, args.profile)
    elif args.child == "naive":
        records = run_naive(info, out, info["objects"])
    else:
        records = run_raw(info, out, info["plan"])
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(json.dumps({"records": records, "seconds": seconds, "bytes": size}))


# -- the parent --------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fake_state(session: Any, info: dict[str, Any]) -> dict[str, Any]:
    return dict(session.get(f"{info['instance_url']}/__fake__/state").json())


def prepare(info: dict[str, Any], session: Any) -> None:
    """Objects, SOQL and method per object, as ours decides them (for the naive and raw ways), and
    the queries the naive way sends (to warm the response cache)."""
    from plugin.salesforce.plan import plan_fields, select_objects
    from plugin.salesforce.sizing import bulk_refusal, choose_method

    base = f"{info['instance_url']}/services/data/v62.0/"
    headers = {"Authorization": f"Bearer {info['access_token']}"}
    selection = select_objects(session.get(f"{base}sobjects/", headers=headers).json(), backup_type="full")
    counts_body = session.get(
        f"{base}limits/recordCount", params={"sObjects": ",".join(selection.objects)}, headers=headers
    )
    counts = {c["name"]: c["count"] for c in counts_body.json()["sObjects"]}
    plan, warm = [], []
    for name in selection.objects:
        describe = session.get(f"{base}sobjects/{name}/describe", headers=headers).json()
        fields = plan_fields(describe)
        threshold = info["bulk_threshold"]
        method = choose_method(counts.get(name), threshold=threshold, bulk_refused=bulk_refusal(fields, describe))
        soql = f"SELECT {', '.join(fields.columns)} FROM {name}"
        # queryAll counts: recordCount leaves the recycle bin out, the exports include it.
        records = _all_rows(session, base, headers, name)
        plan.append({"object": name, "soql": soql, "method": method, "records": records})
        warm.append({"object": f"{name}.naive", "soql": naive_soql(describe), "method": "rest", "records": records})
    info["objects"], info["plan"], info["naive_plan"] = selection.objects, plan, warm


def _all_rows(session: Any, base: str, headers: dict[str, str], name: str) -> int:
    body = session.get(f"{base}queryAll/", params={"q": f"SELECT count() FROM {name}"}, headers=headers).json()
    return int(body["totalSize"])


def start_server(org: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    server = subprocess.Popen(
        [sys.executable, "-m", "plugin.cli", "fake-org", "serve", "--org", str(org)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert server.stdout is not None
    return server, json.loads(server.stdout.readline())


def warm_up(work: Path, org: Path, info: dict[str, Any]) -> float:
    """Fetch every page the three ways will ask for, raw, so the response cache holds them all.

    Two fake processes share the cache folder (rendering is the fake's CPU work, one core each);
    the biggest objects go one to each. Returns the wall seconds it took (0 when already cached)."""
    items = sorted(info["plan"] + info["naive_plan"], key=lambda item: -item["records"])
    second, second_info = start_server(org)
    started = time.perf_counter()
    try:
        procs = []
        for n, server_info in enumerate((info, second_info)):
            part = {**server_info, "plan": items[n::2]}
            (work / f"warm{n}.json").write_text(json.dumps(part), encoding="utf-8")
            out = work / f"warm{n}"
            out.mkdir()
            cmd = [sys.executable, __file__, "--child", "raw", "--info", str(work / f"warm{n}.json"), "--out", str(out)]
            procs.append((subprocess.Popen(cmd, stdout=subprocess.DEVNULL, cwd=ROOT), out))
        for proc, out in procs:
            if proc.wait():
                raise SystemExit(f"the cache warm-up failed (exit code {proc.returncode})")
            shutil.rmtree(out, ignore_errors=True)
    finally:
        second.terminate()
        second.wait(timeout=30)
    return time.perf_counter() - started


def small_objects_calls(work: Path) -> None:
    """API calls of ours on the bundled demo org (12 objects, mostly small, as most of a real org's
    objects are), records only: where one call per object, not the Bulk protocol, is what counts."""
    demo = ROOT / "fixtures" / "orgs" / "demo"
    server, info = start_server(demo)
    try:
        from plugin.fakeorg.client import client_session

        session = client_session(info["instance_url"], info["ca_bundle"])
        info["bulk_threshold"] = THRESHOLD
        (work / "demo.json").write_text(json.dumps(info), encoding="utf-8")
        out = work / "demo-out"
        out.mkdir()
        before = fake_state(session, info)["api_calls"]
        cmd = [sys.executable, __file__, "--child", "ours", "--info", str(work / "demo.json"), "--out", str(out)]
        records = json.loads(subprocess.run(cmd, stdout=subprocess.PIPE, cwd=ROOT, check=True).stdout)["records"]
        calls = fake_state(session, info)["api_calls"] - before
        manifest = json.loads(next(out.rglob("manifest.json")).read_text(encoding="utf-8"))
        objects = len(manifest["objects"])
        breakdown = ", ".join(f"{k} {v}" for k, v in manifest["api_calls_breakdown"].items())
        print(
            f"ours API calls on the demo org ({objects} objects, {records:,} records, no file bodies): {calls} "
            f"(objects {calls - objects:+d}; {breakdown}; target <= objects + a small constant)"
        )
        session.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the row counts (quick runs)")
    parser.add_argument("--only", default="ours,naive,raw")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--bulk-threshold",
        type=int,
        default=THRESHOLD,
        help="records from which ours (and raw) use Bulk API 2.0 (SFBACKUP_BULK_THRESHOLD; default %(default)s)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        help="keep the fake's rendered pages in this folder for the next run (default: a temporary one)",
    )
    parser.add_argument("--child", choices=["ours", "naive", "raw"], help=argparse.SUPPRESS)
    parser.add_argument("--info", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    from plugin.fakeorg.client import client_session

    work = Path(tempfile.mkdtemp(prefix="sfbackup-bench-"))
    cache = (args.cache or work / "pages").resolve()
    org = build_org(work / "org", args.scale, cache)
    server, info = start_server(org)
    try:
        session = client_session(info["instance_url"], info["ca_bundle"])
        info["bulk_threshold"] = args.bulk_threshold
        prepare(info, session)
        (work / "info.json").write_text(json.dumps(info), encoding="utf-8")
        total = sum(p["records"] for p in info["plan"])
        methods = ", ".join(f"{p['object']} {p['records']:,} {p['method']}" for p in info["plan"])
        print(f"fake org: {len(info['plan'])} objects, {total:,} records ({methods}); 2 cores shared")
        from plugin.salesforce import bulkrows

        road = "C (_bulkscan)" if bulkrows._bulkscan is not None else "regular expressions (_bulkscan not built)"
        print(f"ours' Bulk block pass: {road}")
        warm = warm_up(work, org, info)
        before = fake_state(session, info)["response_cache"]
        print(
            f"response cache {before['directory']}: warmed in {warm:.1f} s "
            f"({before['misses']} pages rendered by this server, the rest by a second one)\n",
            flush=True,
        )
        results: dict[str, dict[str, Any]] = {}
        for way in args.only.split(","):
            out = work / way
            out.mkdir()
            calls, cpu, load = fake_state(session, info)["api_calls"], cpu_seconds(server.pid), os.getloadavg()[0]
            cmd = [sys.executable, __file__, "--child", way, "--info", str(work / "info.json"), "--out", str(out)]
            if args.profile and way == "ours":
                cmd.append("--profile")
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT)
            assert proc.stdout is not None
            line = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode:
                print(f"{way}: failed with exit code {proc.returncode}")
                continue
            result = json.loads(line)
            result["api_calls"] = fake_state(session, info)["api_calls"] - calls
            result["server_cpu"] = cpu_seconds(server.pid) - cpu
            result["rss_mb"] = usage.ru_maxrss / 1024
            result["client_cpu"] = usage.ru_utime + usage.ru_stime
            results[way] = result
            shutil.rmtree(out, ignore_errors=True)
            print(
                f"{way:>5}: {result['records']:>9,} records in {result['seconds']:7.1f} s = "
                f"{result['records'] / result['seconds']:>8,.0f} records/s | API calls {result['api_calls']:>4} | "
                f"peak RSS {result['rss_mb']:7.1f} MB | CPU: own {result['client_cpu']:6.1f} s, "
                f"server {result['server_cpu']:6.1f} s | "
                f"{result['bytes'] / 1e6:,.0f} MB written | load {load:.1f}",
                flush=True,
            )
        after = fake_state(session, info)["response_cache"]
        session.close()
        hits, misses = after["hits"] - before["hits"], after["misses"] - before["misses"]
        print(f"\nfake server during the timed runs: {hits} pages from the cache, {misses} rendered")
        if "ours" in results:
            ours = results["ours"]["records"] / results["ours"]["seconds"]
            print()
            for other, target in (("naive", 5.0), ("raw", 0.5)):
                if other in results:
                    ratio = ours / (results[other]["records"] / results[other]["seconds"])
                    cpu = results[other]["client_cpu"] / results["ours"]["client_cpu"]
                    print(
                        f"ours / {other}: {ratio:5.2f}x records/s (target >= {target}x); "
                        f"{cpu:5.2f}x the records per own CPU second"
                    )
            print(f"ours peak RSS: {results['ours']['rss_mb']:.0f} MB (target <= 150 MB)")
            objects, calls = len(info["plan"]), results["ours"]["api_calls"]
            bulk = sum(1 for item in info["plan"] if item["method"] == "bulk")
            print(
                f"ours API calls: {calls} for {objects} objects (objects + {calls - objects}; {bulk} of them "
                "through Bulk API 2.0, 3 calls each at least: create, poll, results)"
            )
            if "naive" in results:
                print(f"naive API calls: {results['naive']['api_calls']}")
            small_objects_calls(work)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
