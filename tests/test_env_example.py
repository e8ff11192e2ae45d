"""Every setting the app reads from the environment is listed in .env.example and the README."""

from __future__ import annotations

import re

from tests.conftest import PROJECT_ROOT


def _read_keys() -> set[str]:
    source = (PROJECT_ROOT / "config.py").read_text()
    return set(re.findall(r'env(?:\.get)?\(\s*"([A-Z][A-Z0-9_]+)"', source)) | set(
        re.findall(r'_(?:int|bool)\(env, "([A-Z][A-Z0-9_]+)"', source)
    )


def test_every_environment_setting_is_documented():
    keys = _read_keys()
    assert {"DATABASE_URL", "SECRET_KEY", "WHATSAPP_APP_SECRET", "DB_POOL_SIZE", "METRICS_TOKEN"} <= keys
    example = (PROJECT_ROOT / ".env.example").read_text()
    readme = (PROJECT_ROOT / "README.md").read_text()
    missing_example = sorted(k for k in keys if k not in example)
    missing_readme = sorted(k for k in keys if k not in readme)
    assert missing_example == [] and missing_readme == []
