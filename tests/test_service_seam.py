"""The seam between HTTP and the domain: services speak in domain errors and results only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.api.errors import STATUS_BY_ERROR, status_for
from app.services import errors

SERVICES = Path(__file__).resolve().parent.parent / "app" / "services"
HTTP_NAMES = {"request", "jsonify", "Response", "abort", "make_response"}


@pytest.mark.parametrize("path", sorted(SERVICES.glob("*.py")), ids=lambda p: p.name)
def test_services_import_nothing_of_http_or_the_api(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    offending = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "app.api" or node.module.startswith("app.api."):
                offending.append(node.module)
            if node.module.split(".")[0] in ("flask", "werkzeug"):
                offending += [alias.name for alias in node.names if alias.name in HTTP_NAMES]
        elif isinstance(node, ast.Import):
            offending += [alias.name for alias in node.names if alias.name.startswith("app.api")]
    assert offending == []


def test_every_domain_error_has_a_status_and_a_stable_code() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.DomainError)]
    assert len(classes) >= 8
    for cls in classes:
        assert cls.code and cls.code == cls.code.lower()
        assert any(base in STATUS_BY_ERROR for base in cls.__mro__)
    assert status_for(errors.NotFound("x")) == 404
    assert status_for(errors.WindowClosed("x")) == 409  # a Conflict
    assert status_for(errors.InvalidParameter("page", "x")) == 400
    assert status_for(errors.KeyReused("x")) == 422
    assert status_for(errors.Gone("x", code="media_expired")) == 410
    assert status_for(errors.UpstreamFailed("x")) == 502


def test_a_code_given_to_one_error_does_not_change_its_class() -> None:
    assert errors.Conflict("x", code="duplicate_short_code").code == "duplicate_short_code"
    assert errors.Conflict("y").code == "conflict"
    assert errors.InvalidParameter("q", "too long").extra == {"parameter": "q"}
