"""The long variant of the fault suite, outside CI:

    python -m tests.fault.soak --minutes 10            # SQLite, and PostgreSQL when
                                                       # LIAISON_TEST_DATABASE_URL is set
    python -m tests.fault.soak --minutes 30 --db postgresql --fuzz-examples 20000

Runs the crash scenario (servers and workers SIGKILLed at random under mixed load) for as
long as asked on each database, then the fuzzers with many fresh examples; prints what it
counted and exits 1 when any promise was broken.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.fault import scenarios
from tests.support import ROOT


def _postgres_schema(base_url: str):
    schema = f"soak_{uuid.uuid4().hex[:10]}"
    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}options=-csearch_path%3D{schema}", schema, engine


def _run_scenario(kind: str, load: scenarios.Load) -> bool:
    with tempfile.TemporaryDirectory(prefix=f"liaison-soak-{kind}-") as folder:
        base = Path(folder)
        if kind == "sqlite":
            report = scenarios.run(base, f"sqlite:///{base / 'soak.db'}", load)
        else:
            url, schema, admin = _postgres_schema(os.environ["LIAISON_TEST_DATABASE_URL"])
            try:
                report = scenarios.run(base, url, load)
            finally:
                with admin.connect() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
    print(f"[{kind}] {report.summary()}", flush=True)
    for problem in report.problems[:50]:
        print(f"[{kind}]   {problem}")
    return not report.problems


def _run_fuzzers(examples: int) -> bool:
    env = {**os.environ, "LIAISON_FUZZ_EXAMPLES": str(examples)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "tests/fault/test_fuzz.py", "--hypothesis-show-statistics"]
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode == 0  # noqa: S603


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fault.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="load time per database (default 10)")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--fuzz-examples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    if "postgresql" in kinds and not os.environ.get("LIAISON_TEST_DATABASE_URL"):
        print("LIAISON_TEST_DATABASE_URL unset: PostgreSQL skipped", file=sys.stderr)
        kinds.remove("postgresql")
    load = scenarios.Load(seconds=args.minutes * 60, kill_gap=(1.0, 5.0),
                          seed=args.seed if args.seed is not None else uuid.uuid4().int % 10**6,
                          drain_timeout=600.0)
    print(f"soak: {args.minutes:g} min per database, kill seed {load.seed}", flush=True)
    ok = all([_run_scenario(kind, load) for kind in kinds])
    ok = _run_fuzzers(args.fuzz_examples) and ok
    print("soak: " + ("every promise held" if ok else "BROKEN PROMISES above"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
