"""The schema, once: SQLModel classes for the rows the code reads and writes, Core tables for the
dashboard's rollups, all on `SQLModel.metadata`.

Migrations are Alembic revisions under `storage/alembic/` generated from this metadata; a test
compares the migrated database with it, column types, defaults, keys and indexes included. The
first five revisions are the DDL the numbered migrations wrote before Alembic, so the column
types here are spelled to match it: TEXT strings, REAL (SQLite) or DOUBLE PRECISION
(PostgreSQL) floats, TIMESTAMP times, JSON stored as TEXT on SQLite.
Versions are immutable rows; labels are pointers with a history (`label_event`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    REAL,
    TIMESTAMP,
    Column,
    Double,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.types import TypeEngine
from sqlmodel import Field, SQLModel

FLOAT: TypeEngine[float] = Double().with_variant(REAL(), "sqlite")
TS = TIMESTAMP


@compiles(JSON, "sqlite")
def _json_is_text_on_sqlite(_type, _compiler, **_kw) -> str:
    """A column declared JSON gets NUMERIC affinity in SQLite, which turns a stored "1" into the
    integer 1; TEXT keeps the serialised JSON as written (and is what the first revisions wrote)."""
    return "TEXT"


def utcnow() -> datetime:
    return datetime.now(UTC)


def json_field(default_factory=None, nullable=True) -> Any:
    if default_factory is None:
        return Field(default=None, sa_column=Column(JSON, nullable=nullable))
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=nullable))


def text(**kwargs: Any) -> Any:
    """A TEXT column (SQLModel would make it VARCHAR)."""
    return Field(sa_type=Text, **kwargs)


def blank() -> Any:
    """A TEXT column that is '' unless set, in the database too (NOT NULL DEFAULT '')."""
    return Field(default="", sa_type=Text, sa_column_kwargs={"server_default": sql_text("''")})


def created() -> Any:
    return Field(default_factory=utcnow, sa_type=TS)


class Prompt(SQLModel, table=True):
    __tablename__ = "prompt"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = text(unique=True)
    description: str = blank()
    created_at: datetime = created()


class PromptVersion(SQLModel, table=True):
    __tablename__ = "prompt_version"
    __table_args__ = (UniqueConstraint("prompt_id", "version"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    prompt_id: int = Field(foreign_key="prompt.id")
    version: int
    kind: str = text(default="text")  # text | chat
    template: Optional[str] = text(default=None)  # kind == text
    messages: Optional[list] = json_field()  # kind == chat: [{role, content}]
    variables: list = json_field(default_factory=list, nullable=False)
    model: str = text(default="local/smollm2")
    params: dict = json_field(default_factory=dict, nullable=False)
    content_hash: str = text()
    note: str = blank()
    author: str = blank()
    created_at: datetime = created()


class PromptLabel(SQLModel, table=True):
    __tablename__ = "prompt_label"
    __table_args__ = (UniqueConstraint("prompt_id", "label"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    prompt_id: int = Field(foreign_key="prompt.id")
    label: str = text()
    version_id: int = Field(foreign_key="prompt_version.id")
    updated_at: datetime = created()


class LabelEvent(SQLModel, table=True):
    __tablename__ = "label_event"
    id: Optional[int] = Field(default=None, primary_key=True)
    prompt_id: int = Field(foreign_key="prompt.id")
    label: str = text()
    from_version_id: Optional[int] = Field(default=None, foreign_key="prompt_version.id")
    to_version_id: int = Field(foreign_key="prompt_version.id")
    author: str = blank()
    evidence: str = blank()
    created_at: datetime = created()


class LlmCall(SQLModel, table=True):
    """The one ledger: every model call the product makes, from any source."""

    __tablename__ = "llm_call"
    __table_args__ = (
        Index("ix_llm_call_request_hash", "request_hash"),
        Index("ix_llm_call_created_at", "created_at"),
        Index("ix_llm_call_model_created", "model", "created_at"),
        Index("ix_llm_call_run", "run_id"),
        Index("ix_llm_call_source_created", "source", "created_at"),
        Index("ix_llm_call_prompt_version", "prompt_version_id"),
        # the dashboard's exact percentiles (see storage/dashboard_queries.py)
        Index("ix_llm_call_latency", "latency_ms", "created_at", "model", "source", "cached"),
        Index("ix_llm_call_version_created", "prompt_version_id", "created_at"),
        Index("ix_llm_call_version_latency", "prompt_version_id", "cached", "latency_ms", "created_at"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    created_at: datetime = created()
    source: str = text(default="playground")  # playground | run | judge | rag
    model: str = text()
    api_base: Optional[str] = text(default=None)
    request_hash: str = text()
    messages: list = json_field(default_factory=list, nullable=False)
    params: dict = json_field(default_factory=dict, nullable=False)
    output: Optional[str] = text(default=None)
    latency_ms: Optional[float] = Field(default=None, sa_type=FLOAT)
    input_tokens: Optional[int] = None
    output_tokens: Optional[int] = None
    cost_usd: Optional[float] = Field(default=None, sa_type=FLOAT)
    error_type: Optional[str] = text(default=None)
    error: Optional[str] = text(default=None)
    cached: bool = False
    prompt_version_id: Optional[int] = Field(default=None, foreign_key="prompt_version.id")
    run_id: Optional[int] = Field(default=None, foreign_key="run.id")
    # requests sent for this call, retries included
    attempts: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class Dataset(SQLModel, table=True):
    __tablename__ = "dataset"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = text(unique=True)
    description: str = blank()
    created_at: datetime = created()


class DatasetVersion(SQLModel, table=True):
    __tablename__ = "dataset_version"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id")
    version: int
    columns: list = json_field(default_factory=list, nullable=False)
    column_types: dict = json_field(default_factory=dict, nullable=False)
    row_count: int = 0
    content_hash: str = text()
    source_filename: str = blank()
    note: str = blank()
    author: str = blank()
    created_at: datetime = created()


class DatasetRow(SQLModel, table=True):
    __tablename__ = "dataset_row"
    __table_args__ = (UniqueConstraint("dataset_version_id", "row_key"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    dataset_version_id: int = Field(foreign_key="dataset_version.id")
    position: int
    row_key: str = text()
    data: dict = json_field(default_factory=dict, nullable=False)


class Run(SQLModel, table=True):
    __tablename__ = "run"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = blank()
    config: dict = json_field(default_factory=dict, nullable=False)
    status: str = text(
        default="pending"
    )  # pending | running | done | failed | cancelled | budget_exceeded | interrupted
    dataset_version_id: Optional[int] = Field(default=None, foreign_key="dataset_version.id")
    concurrency: int = 8
    budget_usd: Optional[float] = Field(default=None, sa_type=FLOAT)
    use_cache: bool = True
    repeat: int = 1
    created_at: datetime = created()
    started_at: Optional[datetime] = Field(default=None, sa_type=TS)
    finished_at: Optional[datetime] = Field(default=None, sa_type=TS)
    heartbeat_at: Optional[datetime] = Field(default=None, sa_type=TS)
    worker: str = blank()
    error: Optional[str] = text(default=None)
    # what the run's calls cost so far, kept by the executors (atomic increments)
    spent_usd: float = Field(default=0.0, sa_type=FLOAT, sa_column_kwargs={"server_default": "0"})
    # estimated cost of the calls in flight, reserved before each call
    reserved_usd: float = Field(default=0.0, sa_type=FLOAT, sa_column_kwargs={"server_default": "0"})


class JobLease(SQLModel, table=True):
    """Who executes a job (a run, an index build, ...) and until when: claimed by compare-and-set."""

    __tablename__ = "job_lease"
    key: str = text(primary_key=True)  # e.g. "run:12"
    owner: str = text()
    lease_until: datetime = Field(sa_type=TS)
    claimed_at: datetime = created()
    heartbeat_at: datetime = created()


class RunItem(SQLModel, table=True):
    """One planned unit of work: prompt version x model x dataset row x repeat."""

    __tablename__ = "run_item"
    __table_args__ = (
        UniqueConstraint("run_id", "prompt_version_id", "model", "dataset_row_id", "repeat"),
        Index("ix_run_item_run_status", "run_id", "status"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id")
    prompt_version_id: int = Field(foreign_key="prompt_version.id")
    model: str = text()
    dataset_row_id: int = Field(foreign_key="dataset_row.id")
    repeat: int = 0
    status: str = text(default="pending")  # pending | done | error | blocked
    call_id: Optional[int] = Field(default=None, foreign_key="llm_call.id")
    error_type: Optional[str] = text(default=None)
    error: Optional[str] = text(default=None)
    finished_at: Optional[datetime] = Field(default=None, sa_type=TS)


class Scorer(SQLModel, table=True):
    __tablename__ = "scorer"
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = text()
    version: int
    type: str = text()
    config: dict = json_field(default_factory=dict, nullable=False)
    note: str = blank()
    created_at: datetime = created()


class Score(SQLModel, table=True):
    __tablename__ = "score"
    __table_args__ = (UniqueConstraint("run_item_id", "scorer_name"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    run_item_id: int = Field(foreign_key="run_item.id")
    scorer_name: str = text()
    scorer_version_id: Optional[int] = Field(default=None, foreign_key="scorer.id")
    value: Optional[float] = Field(default=None, sa_type=FLOAT)
    passed: Optional[bool] = None
    reason: str = blank()
    error: Optional[str] = text(default=None)
    created_at: datetime = created()


class ModelPrice(SQLModel, table=True):
    """A custom price (USD per 1M tokens) that overrides litellm's table for one model id."""

    __tablename__ = "model_price"
    id: Optional[int] = Field(default=None, primary_key=True)
    model: str = text(unique=True)
    input_per_million: float = Field(sa_type=FLOAT)
    output_per_million: float = Field(sa_type=FLOAT)
    updated_at: datetime = created()


class AppSetting(SQLModel, table=True):
    __tablename__ = "app_setting"
    key: str = text(primary_key=True)
    value: Optional[Any] = json_field()
    updated_at: datetime = created()


class Comparison(SQLModel, table=True):
    __tablename__ = "comparison"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = blank()
    run_ids: list = json_field(default_factory=list, nullable=False)
    baseline: str = blank()
    summary: dict = json_field(default_factory=dict, nullable=False)
    created_at: datetime = created()


class RagIndex(SQLModel, table=True):
    __tablename__ = "rag_index"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = text(unique=True)
    created_at: datetime = created()


class RagIndexVersion(SQLModel, table=True):
    """An immutable index build: its config, Chroma collection and the document hashes it holds."""

    __tablename__ = "rag_index_version"
    __table_args__ = (UniqueConstraint("index_id", "version"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    index_id: int = Field(foreign_key="rag_index.id")
    version: int
    config: dict = json_field(default_factory=dict, nullable=False)
    collection: str = text()
    documents: dict = json_field(default_factory=dict, nullable=False)
    chunk_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    status: str = text(default="building")  # building | ready | failed
    error: Optional[str] = text(default=None)
    created_at: datetime = created()


# --- the dashboard's rollups ----------------------------------------------------------------------
# Read and written by storage/dashboard_queries.py (which explains them) with SQLAlchemy Core. `day`
# is 'YYYY-MM-DD' (UTC), or 'w' + a Monday for a week row; prompt_version_id 0 means "no version".
# Key orders follow the panels' GROUP BYs; on SQLite the keyed tables are clustered on their key.


def _key(name: str, type_: Any = Text) -> Column:
    return Column(name, type_, primary_key=True, nullable=False)


def _measure(name: str, type_: Any = Integer) -> Column:
    return Column(name, type_, nullable=False)


def _rollup(name: str, *columns: Any) -> Table:
    return Table(name, SQLModel.metadata, *columns, sqlite_with_rowid=False)


rollup_state = Table(  # how far the ledger (and the scores) have been folded in
    "rollup_state",
    SQLModel.metadata,
    Column("name", Text, primary_key=True),
    _measure("last_id"),
    _measure("updated_at", TS),
)
rollup_call = _rollup(
    "rollup_call",
    _key("day"),
    _key("model"),
    _key("source"),
    _key("error_type"),
    _measure("calls"),
    _measure("cached"),
    _measure("priced"),
    _measure("cost_usd", FLOAT),
    _measure("input_tokens"),
    _measure("output_tokens"),
)
rollup_version = _rollup(  # rollup_call's keys and measures per prompt version: what a version filter reads
    "rollup_version",
    _key("prompt_version_id", Integer),
    _key("day"),
    _key("model"),
    _key("source"),
    _key("error_type"),
    _measure("calls"),
    _measure("cached"),
    _measure("priced"),
    _measure("cost_usd", FLOAT),
    _measure("input_tokens"),
    _measure("output_tokens"),
    Index("ix_rollup_version_day", "day"),  # folding rewrites the current week's rows, found by day
)
rollup_version_model = _rollup(  # just what "cost per prompt version" reads, a third of rollup_version's rows
    "rollup_version_model",
    _key("day"),
    _key("prompt_version_id", Integer),
    _key("model"),
    _measure("calls"),
    _measure("priced"),
    _measure("cost_usd", FLOAT),
)
latency_bucket = Table(  # the histogram's bucket bounds in ms, written by the revision that made it
    "latency_bucket",
    SQLModel.metadata,
    Column("bucket", Integer, primary_key=True),
    _measure("lo", FLOAT),
    _measure("hi", FLOAT),
)
rollup_latency = _rollup(
    "rollup_latency",
    _key("day"),
    _key("model"),
    _key("source"),
    _key("bucket", Integer),
    _measure("n"),
)
rollup_latency_cum = _rollup(  # all sources together, with each (day, model) histogram's running count
    "rollup_latency_cum",
    _key("day"),
    _key("model"),
    _key("bucket", Integer),
    _measure("n"),
    _measure("cum"),
    _measure("total"),
    Index("ix_rollup_latency_cum_model", "model", "bucket", "day", "n"),
)
rollup_latency_fine = _rollup(  # every call of a day, 64 buckets per power of two: the headline's exact ranks
    "rollup_latency_fine",
    _key("day"),
    _key("bucket", Integer),
    _measure("n"),
)
rollup_latency_version = _rollup(
    "rollup_latency_version",
    _key("prompt_version_id", Integer),
    _key("day"),
    _key("model"),
    _key("bucket", Integer),
    _measure("n"),
    Index("ix_rollup_latency_version_day", "day"),
)
rollup_run = _rollup(
    "rollup_run",
    _key("run_id", Integer),
    _key("prompt_version_id", Integer),
    _key("model"),
    _measure("items"),
    _measure("finished"),
    _measure("errors"),
    _measure("blocked"),
    _measure("guard_checked"),
    _measure("guard_triggered"),
)
rollup_score = _rollup(
    "rollup_score",
    _key("run_id", Integer),
    _key("prompt_version_id", Integer),
    _key("model"),
    _key("scorer_name"),
    _measure("n"),
    _measure("n_value"),
    _measure("sum_value", FLOAT),
    _measure("n_verdict"),
    _measure("n_passed"),
    _measure("n_error"),
)
rollup_run_state = Table(  # the run stamp each run's summary rows were computed at
    "rollup_run_state",
    SQLModel.metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=False),
    _measure("stamp", Text),
)


# --- human review ---------------------------------------------------------------------------------


class ReviewQueue(SQLModel, table=True):
    """Items picked from a run for people to label, with the rubric they label against.

    `kind` is `rows` (score / pass-fail / note / golden answer per row) or `pairwise` (A, B or tie
    between two variants' answers). Editing the rubric makes a new `rubric_version`; labels keep
    the version they were given under."""

    __tablename__ = "review_queue"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = text(unique=True)
    kind: str = text(default="rows")  # rows | pairwise
    run_id: Optional[int] = Field(default=None, foreign_key="run.id")
    rubric: dict = json_field(default_factory=dict, nullable=False)
    rubric_version: int = 1
    source: dict = json_field(default_factory=dict, nullable=False)  # how the items were chosen
    author: str = blank()
    created_at: datetime = created()


class ReviewItem(SQLModel, table=True):
    """One thing to label: a snapshot of what the reviewer sees (input, output, reference, context,
    the scores at the time) so a queue still reads the same after its run is re-scored; for a
    pairwise item, both answers and whether A is shown on the right (`swapped`)."""

    __tablename__ = "review_item"
    __table_args__ = (UniqueConstraint("queue_id", "position"), Index("ix_review_item_run_item", "run_item_id"))
    id: Optional[int] = Field(default=None, primary_key=True)
    queue_id: int = Field(foreign_key="review_queue.id")
    position: int
    run_item_id: Optional[int] = Field(default=None, foreign_key="run_item.id")
    row_key: str = blank()
    data: dict = json_field(default_factory=dict, nullable=False)
    swapped: bool = False


class ReviewLabel(SQLModel, table=True):
    """A reviewer's label on an item: never updated; a re-label is a new row, the newest counts."""

    __tablename__ = "review_label"
    __table_args__ = (Index("ix_review_label_item_reviewer", "item_id", "reviewer"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="review_item.id")
    reviewer: str = text()
    rubric_version: int = 1
    score: Optional[float] = Field(default=None, sa_type=FLOAT)
    passed: Optional[bool] = None
    choice: Optional[str] = text(default=None)  # pairwise: A | B | tie (the variant, not the side shown)
    skipped: bool = False
    note: str = blank()
    golden: Optional[str] = text(default=None)  # a corrected answer
    created_at: datetime = created()
