"""The wheel `pip install .` builds holds every package, template, static file and htmx, and
gunicorn's settings are the ones docker-compose and the Procfile use."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check",
         "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=240, cwd=build,
    )
    assert done.returncode == 0, done.stderr
    (path,) = out.glob("correio-*.whl")
    return zipfile.ZipFile(path)


def _tree(*parts: str) -> list[Path]:
    return [p for p in ROOT.joinpath(*parts).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]


@pytest.mark.slow
def test_the_wheel_holds_every_module_of_mailcore_and_webmail(wheel):
    names = set(wheel.namelist())
    missing = [str(p.relative_to(ROOT)) for p in _tree("mailcore") + _tree("webmail")
               if p.suffix == ".py" and str(p.relative_to(ROOT)) not in names]
    assert missing == []
    assert not [n for n in names if n.startswith(("tests/", "bench/"))]


@pytest.mark.slow
def test_the_wheel_holds_every_template_and_static_file_and_htmx(wheel):
    names = set(wheel.namelist())
    data = next(n.split("/")[0] for n in names if n.endswith(".data/data/share/correio/htmx/htmx.min.js"))
    share = f"{data}/data/share/correio"
    expected = [f"{share}/{p.relative_to(ROOT)}" for p in _tree("templates") + _tree("static")]
    assert expected
    assert [n for n in expected if n not in names] == []


def test_procfile_and_compose_run_the_web_with_the_same_gunicorn_settings():
    procfile = (ROOT / "Procfile").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "gunicorn -c python:webmail.gunicorn_conf webmail.wsgi:application" in procfile
    assert "runserver" not in procfile
    command = '["gunicorn", "-c", "python:webmail.gunicorn_conf", "webmail.wsgi:application"]'
    assert command in compose
    assert command.replace(", ", ",") in dockerfile.replace(", ", ",")


def test_gunicorn_settings_bind_loopback_and_suit_two_cores():
    from webmail import gunicorn_conf

    assert gunicorn_conf.bind == "127.0.0.1:8000"
    assert gunicorn_conf.workers == 2 and gunicorn_conf.worker_class == "gthread"
    assert gunicorn_conf.umask == 0o077
