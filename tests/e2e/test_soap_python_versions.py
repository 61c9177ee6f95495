"""The SOAP service on Python 3.12 and 3.13, where stock spyne 2.14 does not import.

For each interpreter found through pyenv, the test set-up builds a virtualenv with the
project's dependencies (cached in `.cache/py-smoke/`, rebuilt when they change) and runs
`tests/fixtures/soap/smoke.py` there: import, WSDL, one call. Skipped, with the reason,
where the interpreter is absent. The shim itself is also exercised on this interpreter.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "py-smoke"
SMOKE = ROOT / "tests" / "fixtures" / "soap" / "smoke.py"


def pyenv_interpreter(minor: str) -> Path | None:
    roots = [os.environ.get("PYENV_ROOT"), str(Path.home() / ".pyenv")]
    if shutil.which("pyenv"):
        done = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30)
        roots.insert(0, done.stdout.strip())
    for root in filter(None, roots):
        found = sorted((Path(root) / "versions").glob(f"{minor}.*/bin/python"),
                       key=lambda p: [int(x) for x in p.parts[-3].split(".") if x.isdigit()])
        if found:
            return found[-1]
    return None


def dependencies() -> list[str]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)["project"]["dependencies"]


def smoke_venv(python: Path) -> Path:
    """A virtualenv with the project's dependencies for `python`, built once and cached."""
    deps = dependencies()
    key = hashlib.sha256("\n".join([str(python.resolve()), *deps]).encode()).hexdigest()[:12]
    venv = CACHE / f"{python.parts[-3]}-{key}"
    stamp = venv / ".installed"
    if stamp.is_file():
        return venv / "bin" / "python"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True, timeout=120)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *deps],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"installing the dependencies for {python} failed:\n{done.stderr[-2000:]}")
    stamp.write_text("\n".join(deps), encoding="utf-8")
    return venv / "bin" / "python"


def run_smoke(python: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([str(python), str(SMOKE), str(tmp_path)], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("minor", ["3.12", "3.13"])
def test_import_wsdl_and_one_call_on_newer_pythons(minor, tmp_path):
    python = pyenv_interpreter(minor)
    if python is None:
        pytest.skip(f"no Python {minor} found through pyenv")
    done = run_smoke(smoke_venv(python), tmp_path)
    assert done.returncode == 0, done.stdout[-1000:] + done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "smoke ok"
    assert f"on Python {minor}." in done.stdout


def test_the_shim_serves_spyne_on_this_python_too(tmp_path):
    """Forced here, the shim is what runs on 3.12+: import, WSDL and a call still work."""
    code = (
        "from webservice import compat\n"
        "import sys\n"
        "assert compat.install(force=True)\n"
        "from webservice.faults import SoapVersion\n"
        "from webservice.service import build_application\n"
        "from spyne.server.wsgi import WsgiApplication\n"
        "from webservice.wsdl import build_wsdl\n"
        "app = WsgiApplication(build_application(SoapVersion.SOAP11))\n"
        "assert b'WorkflowServiceSoap12' in build_wsdl(app, 'http://x/WorkflowService.asmx')\n"
        "assert sys.modules['spyne.util.six'].__doc__.startswith('The maintained six')\n"
        "from spyne.util.six.moves.collections_abc import MutableSet\n"
        "print('shim ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "shim ok"
