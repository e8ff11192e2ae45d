"""Extension instances, created unbound and initialised in `create_app()`."""

from typing import TYPE_CHECKING, Any, TypeAlias

from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session

# Named constraints keep Alembic diffs stable and error messages readable.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
# The models' base class: `db.Model` (Base plus Flask-SQLAlchemy's table naming and metadata),
# which type checkers cannot see through; to them it is the typed `Base` it derives from.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
# What functions that run statements take: a plain Session, or Flask-SQLAlchemy's `db.session`.
DbSession: TypeAlias = Session | scoped_session[Any]
migrate = Migrate()

login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
# The rate limiter is made per app in app/ratelimits.py: its storage and limits are per-app state.
