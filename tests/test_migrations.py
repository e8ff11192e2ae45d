"""One Alembic chain, and models that match it."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from app.extensions import db
from tests.conftest import PROJECT_ROOT


def _script() -> ScriptDirectory:
    config = Config(str(PROJECT_ROOT / "migrations" / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    return ScriptDirectory.from_config(config)


def test_there_is_exactly_one_alembic_head():
    assert len(_script().get_heads()) == 1


def test_database_is_at_head(db_session):
    current = db.session.connection().exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
    assert current == _script().get_current_head()


def test_models_match_the_migrations(db_session):
    context = MigrationContext.configure(
        db.session.connection(),
        opts={
            "include_object": lambda obj, name, type_, *a: (
                not (type_ == "index" and name == "ix_contacts_search_trgm")
                # Procrastinate's own tables (the job queue), applied by revision 0003.
                and not (type_ == "table" and name.startswith("procrastinate_"))
            )
        },
    )
    assert compare_metadata(context, db.metadata) == []
