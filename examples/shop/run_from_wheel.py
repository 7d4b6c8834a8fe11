"""The second host, end to end, from the built wheel: ``python examples/shop/run_from_wheel.py [--django 6.0.10]``.

Builds qbo_sync's wheel from this checkout, creates a fresh virtualenv, installs the wheel and exactly the pinned
dependencies it declares (their closure, taken from ``requirements.lock`` with hashes; ``--django VERSION`` installs
that Django instead of the lock's), then, with the shop project (``examples/shop``: tenant ``Store`` without a slug,
its own Customer/Item/Invoice models and adapters) and a sandbox started from the wheel (``python -m
qbo_sync.sandbox``): ``check``, ``migrate``, seed, ``qbo_sync connect`` (the OAuth flow against the sandbox), push
customers, items and invoices, the accountant records payments in QuickBooks, ``qbo_sync pull payment``, and
``qbo_sync reconcile`` must say the books match. Also: ``pip check`` passes, the wheel never names the demo host,
and ``qbo_sync.__version__`` is the wheel's version. Prints each step's wall time; exits non-zero on any failure.

Stdlib only (it runs before any virtualenv exists). ``--python`` picks the interpreter of the new virtualenv (Django
6.0 needs Python 3.12+); ``--keep`` leaves the work directory for a look.
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
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

SHOP = Path(__file__).resolve().parent
ROOT = SHOP.parent.parent
HOST_NAME = "batch" + "ly"  # the demo host's name, spelled apart so this file does not match a search for it
REALM = "9130000000001"


class Failed(Exception):
    pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--django", default="", help="A Django version to install instead of the lock's pin.")
    parser.add_argument("--python", default="", help="Interpreter for the fresh virtualenv (default: this one; "
                                                      "with --django 6.x the newest Python 3.12+ found).")
    parser.add_argument("--build-python", default=str(ROOT / ".venv" / "bin" / "python"),
                        help="Interpreter with `build` installed (default: the repository's .venv).")
    parser.add_argument("--keep", action="store_true", help="Keep the work directory.")
    args = parser.parse_args()
    if not args.python:
        # The corners of the supported matrix: the lock's Django 5.2 on this (oldest) Python, Django 6 on the newest.
        newest = bool(args.django) and int(args.django.split(".")[0]) >= 6
        needs = (3, 12) if newest else (3, 11)
        args.python = find_python(needs, newest=newest)
        if not args.python:
            print(f"FAILED: Django {args.django or 'from the lock'} needs Python {'.'.join(map(str, needs))}+; "
                  "none found (give --python)", flush=True)
            return 1
    work = Path(tempfile.mkdtemp(prefix="shop-wheel-"))
    run = Run(work, args)
    began = time.monotonic()
    try:
        run.all()
    except Failed as exc:
        print(f"FAILED: {exc}", flush=True)
        return 1
    finally:
        run.stop_sandbox()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work directory kept: {work}")
    print(f"second host OK from the wheel (Django {run.django_version}, Python {run.python_version}): "
          f"{time.monotonic() - began:.1f} s in all", flush=True)
    return 0


class Run:
    def __init__(self, work: Path, args: argparse.Namespace) -> None:
        self.work = work
        self.args = args
        self.venv = work / "venv"
        self.py = str(self.venv / "bin" / "python")
        self.sandbox: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.django_version = "?"
        self.python_version = "?"
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE",
                                                                     "DATABASE_URL", "REDIS_URL", "VIRTUAL_ENV")}

    # --- steps --------------------------------------------------------------------------------------------------

    def all(self) -> None:
        wheel = self.step("build the wheel", self.build)
        self.step("check the wheel's contents", self.inspect, wheel)
        self.step("fresh virtualenv: the wheel and its pinned dependencies", self.install, wheel)
        self.step("start the sandbox from the wheel", self.start_sandbox)
        project = self.work / "shop"
        shutil.copytree(SHOP, project, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3*", "run_*.py"))
        self.env.update(SHOP_DATABASE=str(self.work / "shop.sqlite3"), QBO_API_BASE_URL=self.base_url,
                        PYTHONPATH=str(project), DJANGO_SETTINGS_MODULE="shop.settings")
        self.project = project
        # docs/installation.md, steps 6 and 7, as written there.
        self.step("manage.py check (no issues, warnings included)", self.manage, "check", "--fail-level", "WARNING")
        self.step("manage.py migrate", self.manage, "migrate", "--noinput", "-v", "0")
        self.step("manage.py makemigrations --check (the wheel ships every migration)", self.manage,
                  "makemigrations", "--check", "--dry-run", "-v", "0")
        store = self.step("seed the shop", self.manage, "shop_seed").strip().splitlines()[-1]
        self.step("qbo_sync schedules install", self.manage, "qbo_sync", "schedules", "install")
        self.step("qbo_sync connect", self.manage, "qbo_sync", "connect", "--org", store)
        out = self.step("qbo_sync import", self.manage, "qbo_sync", "import", "--org", store, "--json")
        self.job_completed(out, "import")
        for entity in ("Customer", "Item", "Invoice"):
            out = self.step(f"qbo_sync push {entity}", self.manage, "qbo_sync", "push", entity, "--all", "--org",
                            store, "--json")
            self.job_completed(out, f"push {entity}")
        paid = self.step("the accountant records payments in QuickBooks", self.record_payments)
        out = self.step("qbo_sync pull payment", self.manage, "qbo_sync", "pull", "payment", "--org", store, "--json")
        self.job_completed(out, "pull payment")
        self.step("payments arrived on the shop's invoices", self.check_payments, paid)
        out = self.step("qbo_sync reconcile", self.manage, "qbo_sync", "reconcile", "--org", store, "--json")
        reports = json.loads(out.strip().splitlines()[-1])
        if not reports or not all(r["books_match"] for r in reports):
            raise Failed(f"reconcile found drift: {[d['line'] for r in reports for d in r['drift']]}")

    def build(self) -> Path:
        out = self.work / "dist"
        self.sh([self.args.build_python, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)], cwd=ROOT)
        wheels = list(out.glob("qbo_sync-*.whl"))
        if len(wheels) != 1:
            raise Failed(f"expected one wheel in {out}, found {wheels}")
        return wheels[0]

    def inspect(self, wheel: Path) -> None:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            naming = [n for n in names if not n.endswith((".png", ".ico", ".gif"))
                      and HOST_NAME in archive.read(n).decode("utf-8", "replace").lower()]
        if naming:
            raise Failed(f"the wheel names the demo host in: {naming}")
        if any(n.startswith(("benchmarks/", "tests/", "examples/")) for n in names):
            raise Failed("the wheel holds development code (benchmarks/, tests/ or examples/)")
        if not any(n.endswith("/share/doc/qbo-sync/installation.md") for n in names):
            print("  note: the wheel carries no docs/installation.md yet", flush=True)

    def install(self, wheel: Path) -> None:
        self.sh([self.args.python, "-m", "venv", str(self.venv)])
        pip = [self.py, "-m", "pip", "--disable-pip-version-check", "-q", "install", "--no-deps"]
        self.sh([*pip, str(wheel)])
        lock = parse_lock(ROOT / "requirements.lock")
        installed: set[str] = set()
        wanted = self.requirements_of(["qbo-sync"])
        while wanted - installed:
            batch = sorted(wanted - installed)
            missing = [name for name in batch if name not in lock]
            if missing:
                raise Failed(f"not pinned in requirements.lock: {missing}")
            from_lock = [name for name in batch if not (name == "django" and self.args.django)]
            if from_lock:
                pins = self.work / "pins.txt"
                pins.write_text("".join(lock[name] for name in from_lock))
                self.sh([*pip, "--require-hashes", "-r", str(pins)])
            if "django" in batch and self.args.django:
                self.sh([*pip, f"django=={self.args.django}"])
            installed |= set(batch)
            wanted |= self.requirements_of(batch)
        self.sh([self.py, "-m", "pip", "--disable-pip-version-check", "check"])
        probe = ("import django, qbo_sync, sys, importlib.metadata as m; print(django.get_version(), "
                 "'%d.%d' % sys.version_info[:2], qbo_sync.__version__, m.version('qbo-sync'))")
        self.django_version, self.python_version, version, dist_version = self.sh([self.py, "-c", probe]).split()
        if version != dist_version:
            raise Failed(f"qbo_sync.__version__ is {version}, the wheel says {dist_version}")
        print(f"  Django {self.django_version} on Python {self.python_version}, qbo_sync {version}, "
              f"{len(installed)} dependencies", flush=True)

    def requirements_of(self, names: list[str]) -> set[str]:
        """The names of what these installed distributions require (markers evaluated, extras ignored)."""
        code = (
            "import sys, importlib.metadata as m\n"
            "from pip._vendor.packaging.requirements import Requirement\n"
            "from pip._vendor.packaging.utils import canonicalize_name\n"
            "for name in sys.argv[1:]:\n"
            "    for text in m.requires(name) or []:\n"
            "        req = Requirement(text)\n"
            "        if req.marker is None or req.marker.evaluate({'extra': ''}):\n"
            "            print(canonicalize_name(req.name))\n"
        )
        return set(self.sh([self.py, "-c", code, *names]).split())

    def start_sandbox(self) -> None:
        log = open(self.work / "sandbox.log", "w")
        self.sandbox = subprocess.Popen([self.py, "-m", "qbo_sync.sandbox", "--port", "0", "--realm", REALM],  # noqa: S603
                                        stdout=subprocess.PIPE, stderr=log, text=True, env=self.env, cwd=self.work)
        assert self.sandbox.stdout is not None
        line = self.sandbox.stdout.readline()
        match = re.search(r"(http://[\d.]+:\d+)", line)
        if not match:
            raise Failed(f"the sandbox did not start: {line!r}")
        self.base_url = match.group(1)

    def stop_sandbox(self) -> None:
        if self.sandbox is not None and self.sandbox.poll() is None:
            self.sandbox.terminate()
            try:
                self.sandbox.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.sandbox.kill()

    def record_payments(self) -> dict[str, str]:
        """As the accountant, through QuickBooks' own API: pay the first invoice in full, the second in part."""
        token = self.http("POST", "/_sandbox/tokens", {"realm_id": REALM})["access_token"]
        query = urllib.parse.quote("select * from Invoice orderby DocNumber")
        invoices = self.http("GET", f"/v3/company/{REALM}/query?query={query}&minorversion=75", token=token)
        invoices = invoices["QueryResponse"].get("Invoice", [])
        if len(invoices) != 6:
            raise Failed(f"QuickBooks holds {len(invoices)} invoices, not the shop's 6")
        paid = {}
        for invoice, share in zip(invoices[:2], ("1", "0.5"), strict=True):
            amount = f"{float(invoice['TotalAmt']) * float(share):.2f}"
            self.http("POST", f"/v3/company/{REALM}/payment?minorversion=75", token=token, body={
                "CustomerRef": invoice["CustomerRef"], "TotalAmt": amount,
                "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}]})
            paid[invoice["DocNumber"]] = amount
        return paid

    def check_payments(self, paid: dict[str, str]) -> None:
        code = ("import json; from shop.models import Invoice; print(json.dumps({i.reference: [str(i.paid), "
                "str(i.balance), i.payment_state] for i in Invoice.objects.all()}))")
        rows = json.loads(self.manage("shell", "-c", code).strip().splitlines()[-1])
        for reference, amount in paid.items():
            got_paid, balance, state = rows[reference]
            if float(got_paid) != float(amount):
                raise Failed(f"{reference}: paid {got_paid} in the shop, {amount} in QuickBooks")
            expected = "paid" if float(balance) == 0 else "partial"
            if state != expected:
                raise Failed(f"{reference}: payment state {state!r}, expected {expected!r}")
        unpaid = [ref for ref, row in rows.items() if ref not in paid and (row[0] not in ("0", "0.00"))]
        if unpaid:
            raise Failed(f"unpaid invoices show payments: {unpaid}")

    # --- helpers ------------------------------------------------------------------------------------------------

    def step(self, title: str, func, *args):  # type: ignore[no-untyped-def]
        began = time.monotonic()
        result = func(*args)
        print(f"{time.monotonic() - began:6.1f} s  {title}", flush=True)
        return result

    def manage(self, *args: str) -> str:
        return self.sh([self.py, "-m", "django", *args], cwd=self.project)

    def job_completed(self, out: str, what: str) -> None:
        report = json.loads(out.strip().splitlines()[-1])
        jobs = report.get("jobs", [])
        if not jobs or any(j["state"] != "completed" or j["failed"] or j["dead"] for j in jobs):
            raise Failed(f"{what} did not complete: {out.strip()[-600:]}")

    def sh(self, cmd: list[str], cwd: Path | None = None) -> str:
        proc = subprocess.run(cmd, cwd=cwd or self.work, env=self.env, capture_output=True, text=True,  # noqa: S603
                              check=False, timeout=600)
        if proc.returncode != 0:
            raise Failed(f"{' '.join(cmd[:6])} exited {proc.returncode}:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
        return proc.stdout

    def http(self, method: str, path: str, body: dict | None = None, token: str = "") -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the local sandbox
            return json.loads(response.read())


def find_python(at_least: tuple[int, int], newest: bool = False) -> str:
    """This interpreter if it is new enough, else the first python3.1x on PATH or under pyenv that is; with
    ``newest``, the newest of them all."""
    candidates = [sys.executable, *(shutil.which(f"python3.{minor}") or "" for minor in range(at_least[1], 16))]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(str(p) for p in pyenv.glob("3.*/bin/python3"))
    found: list[tuple[tuple[int, int], str]] = []
    for candidate in filter(None, candidates):
        try:
            out = subprocess.run([candidate, "-c", "import sys; print(*sys.version_info[:2])"],  # noqa: S603
                                 capture_output=True, text=True, timeout=30, check=False).stdout.split()
        except OSError:
            continue
        if len(out) == 2 and (int(out[0]), int(out[1])) >= at_least:
            if not newest:
                return candidate
            found.append(((int(out[0]), int(out[1])), candidate))
    return max(found)[1] if found else ""


def parse_lock(path: Path) -> dict[str, str]:
    """``name -> its requirement block`` (the pin and its hashes) from a uv/pip-compile lock."""
    blocks: dict[str, str] = {}
    current = ""
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==", line)
        if match:
            current = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            blocks[current] = ""
        if current and not line.lstrip().startswith("#") and line.strip():
            blocks[current] += line + "\n"
        if not line.rstrip().endswith("\\"):
            current = ""
    return blocks


if __name__ == "__main__":
    sys.exit(main())
