"""The project as a user installs it: a wheel, a fresh virtualenv, ``otpy[testing]``.

Built from this checkout (with its C extension), installed with pip into an
empty environment (dependencies from PyPI or pip's cache), then used the way
the docs say: the opening test of ``docs/otpy/testing.md`` is written to a
file in a directory of its own and run by that environment's pytest. It must
find the bug it is written to find; the fixed tree must pass. Along the way:
the pytest plugin is registered through the package's entry point, both
packages are typed (``py.typed``), the C decoder is the one in use, and the
command-line entry points exist.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)


def _run(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    return done


def _docs_test() -> str:
    page = (ROOT / "docs" / "otpy" / "testing.md").read_text()
    return page.split("<!-- this test fails -->\n```python\n", 1)[1].split("```", 1)[0]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the project's wheel and its ``testing`` extra."""
    tmp = tmp_path_factory.mktemp("packaging")
    wheels = tmp / "wheels"
    done = _run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                 "-q", "-w", str(wheels), str(ROOT)], tmp)
    assert done.returncode == 0, done.stdout + done.stderr
    [wheel] = wheels.glob("otpy-*.whl")
    venv = tmp / "venv"
    done = _run([BASE_PYTHON, "-m", "venv", str(venv)], tmp)
    assert done.returncode == 0, done.stdout + done.stderr
    done = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                 "--disable-pip-version-check", f"{wheel}[testing]"], tmp)
    assert done.returncode == 0, done.stdout + done.stderr
    return venv


def test_the_wheel_installs_typed_packages_with_the_c_decoder(installed: Path) -> None:
    py = installed / "bin" / "python"
    done = _run([str(py), "-c", (
        "import pathlib, otpy, claudecode, otpy.testing\n"
        "from otpy.dist import _etf_c\n"
        "for pkg in (otpy, claudecode):\n"
        "    p = pathlib.Path(pkg.__file__).parent\n"
        "    assert (p / 'py.typed').is_file(), p\n"
        "    assert 'site-packages' in str(p), p\n"
        "print(_etf_c.__file__)\n")], installed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(".so"), done.stdout
    for command in ("otpy", "claudecode"):
        assert (installed / "bin" / command).is_file(), command


def test_the_docs_opening_test_finds_its_bug_in_a_fresh_install(
        installed: Path, tmp_path: Path) -> None:
    code = _docs_test()
    assert len(code.strip().splitlines()) <= 15
    work = tmp_path / "app"
    work.mkdir()
    (work / "test_app.py").write_text(code)
    pytest_args = [str(installed / "bin" / "python"), "-m", "pytest", "-q",
                   "-p", "no:cacheprovider", "test_app.py"]
    done = _run(pytest_args, work)
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"\b1 failed\b", done.stdout), done.stdout
    assert "'cache' is not registered any more" in done.stdout, done.stdout
    assert "otpy.testing.Fault(at=0.0, target=1, action='kill')" in done.stdout, done.stdout

    # the fix the docs give: the child registers itself
    fixed = code.replace('otpy.GenServer.child_spec(id="cache")',
                         'otpy.GenServer.child_spec(id="cache", name="cache")')
    fixed = "\n".join(line for line in fixed.splitlines() if "otpy.register(" not in line)
    assert fixed != code
    (work / "test_app.py").write_text(fixed)
    done = _run(pytest_args, work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b1 passed\b", done.stdout), done.stdout


def test_the_plugin_is_loaded_from_the_entry_point(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "test_profiles.py").write_text(
        "from hypothesis import settings\n"
        "def test_profile():\n"
        "    assert settings.get_profile('deep').max_examples == 10_000\n"
        "def test_fixture(fake_anthropic):\n"
        "    assert fake_anthropic is not None\n")
    done = _run([str(installed / "bin" / "python"), "-m", "pytest", "-q", "-p",
                 "no:cacheprovider", "--fixtures", "test_profiles.py"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    for fixture in ("otpy_node", "erl_node", "py_nodes", "fake_anthropic", "sandbox_node"):
        assert fixture in done.stdout, (fixture, done.stdout)
    done = _run([str(installed / "bin" / "python"), "-m", "pytest", "-q", "-p",
                 "no:cacheprovider", "test_profiles.py::test_profile"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
