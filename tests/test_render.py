"""render.yaml: the Blueprint fields Render needs, and its commands run here for real."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from sqlalchemy.engine import make_url

from app.embedded_db import create_database, drop_database
from config import load_config
from tests.conftest import PROJECT_ROOT
from tests.live import free_port

BLUEPRINT = yaml.safe_load((PROJECT_ROOT / "render.yaml").read_text())
SERVICES = {s["name"]: s for s in BLUEPRINT["services"]}
WEB = next(s for s in BLUEPRINT["services"] if s["type"] == "web")
ENV = {e["key"]: e for e in WEB["envVars"]}


def test_web_service_is_a_python_starter_with_migrations_before_traffic():
    assert (WEB["runtime"], WEB["plan"]) == ("python", "starter")
    assert WEB["buildCommand"].startswith("pip install -r requirements.txt")
    assert WEB["preDeployCommand"] == "flask --app wsgi db upgrade"
    assert WEB["startCommand"] == "gunicorn -c gunicorn.conf.py wsgi:app"
    assert WEB["healthCheckPath"] == "/healthz"
    assert WEB["autoDeployTrigger"] in ("commit", "checksPass")
    assert "autoDeploy" not in WEB  # deprecated
    assert WEB["maxShutdownDelaySeconds"] >= 30


def test_secrets_are_asked_for_generated_or_wired_never_written_down():
    assert ENV["SECRET_KEY"] == {"key": "SECRET_KEY", "generateValue": True}
    assert ENV["APP_ENV"]["value"] == "production"
    for key in (
        "WHATSAPP_APP_SECRET",
        "WHATSAPP_VERIFY_TOKEN",
        "WHATSAPP_ACCESS_TOKEN",
        "WHATSAPP_PHONE_NUMBER_ID",
        "WHATSAPP_BUSINESS_ACCOUNT_ID",
        "METRICS_TOKEN",
    ):
        assert ENV[key].get("sync") is False and "value" not in ENV[key], key
    database = ENV["DATABASE_URL"]["fromDatabase"]
    assert database["property"] == "connectionString"
    assert database["name"] in {d["name"] for d in BLUEPRINT["databases"]}
    redis = ENV["REDIS_URL"]["fromService"]
    assert (redis["type"], redis["property"]) == ("keyvalue", "connectionString")
    assert SERVICES[redis["name"]]["type"] == "keyvalue"


def test_database_and_key_value_are_private():
    [database] = BLUEPRINT["databases"]
    assert database["plan"].startswith("basic") and database["ipAllowList"] == []
    assert str(database["postgresMajorVersion"]).isdigit()
    keyvalue = next(s for s in BLUEPRINT["services"] if s["type"] == "keyvalue")
    assert keyvalue["ipAllowList"] == []


def test_jobs_run_inside_the_web_service_by_default():
    assert ENV["JOBS_IN_WEB"]["value"] == "true"
    assert not any(s["type"] == "worker" for s in BLUEPRINT["services"])  # no second paid service
    for key in ("MEDIA_S3_BUCKET", "MEDIA_S3_ACCESS_KEY_ID", "MEDIA_S3_SECRET_ACCESS_KEY"):
        assert ENV[key].get("sync") is False and "value" not in ENV[key], key


def test_prune_runs_daily_as_a_cron_job_on_the_same_database():
    cron = next(s for s in BLUEPRINT["services"] if s["type"] == "cron")
    assert cron["startCommand"] == "flask --app wsgi maintenance prune"
    assert len(cron["schedule"].split()) == 5
    cron_env = {e["key"]: e for e in cron["envVars"]}
    assert cron_env["DATABASE_URL"]["fromDatabase"] == ENV["DATABASE_URL"]["fromDatabase"]


def test_every_setting_the_blueprint_sets_is_one_the_app_reads():
    known = set(load_config({"APP_ENV": "development"})) | {
        "APP_ENV",
        "DATABASE_URL",
        "REDIS_URL",
        "GUNICORN_THREADS",
        "WEB_CONCURRENCY",
    }
    for key in ENV:
        assert key in known, f"render.yaml sets {key}, which the app never reads"


def _run(command: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, shell=True, cwd=PROJECT_ROOT, env=env, text=True, capture_output=True, timeout=timeout, check=False
    )


@pytest.mark.live
def test_build_pre_deploy_and_start_commands_run_against_a_fresh_database(database_url):
    """Render's three commands, in order, as production would run them (embedded PostgreSQL)."""
    url = make_url(database_url)
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    name = f"inbox_render_{os.getpid()}"
    create_database(admin, name, drop_first=True)
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "APP_ENV": "production",
        "SECRET_KEY": "render-test-secret-key",
        "DATABASE_URL": url.set(database=name).render_as_string(hide_password=False),
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    env.pop("REDIS_URL", None)
    try:
        build = _run(WEB["buildCommand"], env)
        assert build.returncode == 0, build.stderr[-2000:]
        migrate = _run(WEB["preDeployCommand"], env)
        assert migrate.returncode == 0, migrate.stderr[-2000:]
        server = subprocess.Popen(
            shlex.split(WEB["startCommand"]),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            status = None
            while time.monotonic() < deadline and status != 200:
                try:
                    status = requests.get(f"http://127.0.0.1:{port}{WEB['healthCheckPath']}", timeout=5).status_code
                except requests.RequestException:
                    time.sleep(0.2)
            assert status == 200
            assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        finally:
            server.send_signal(signal.SIGTERM)
            _, stderr = server.communicate(timeout=30)
        assert "database connection budget" in stderr
        assert "jobs worker started" in stderr  # beside the web workers, stopped with them
        assert server.returncode == 0
    finally:
        drop_database(admin, name)
