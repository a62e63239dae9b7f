"""The tables, as SQLModel classes.

The schema itself is created by `storage/migrations.py` (append-only, recorded); these
classes describe the current schema for the ORM, and a test checks the two agree.
Versions are immutable rows; labels are pointers with a history (`label_event`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Optional

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def json_field(default_factory=None, nullable=True) -> Any:
    if default_factory is None:
        return Field(default=None, sa_column=Column(JSON, nullable=nullable))
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=nullable))


class Prompt(SQLModel, table=True):
    __tablename__ = "prompt"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    description: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class PromptVersion(SQLModel, table=True):
    __tablename__ = "prompt_version"
    id: Optional[int] = Field(default=None, primary_key=True)
    prompt_id: int = Field(foreign_key="prompt.id")
    version: int
    kind: str = "text"  # text | chat
    template: Optional[str] = None  # kind == text
    messages: Optional[list] = json_field()  # kind == chat: [{role, content}]
    variables: list = json_field(default_factory=list, nullable=False)
    model: str = "local/smollm2"
    params: dict = json_field(default_factory=dict, nullable=False)
    content_hash: str
    note: str = ""
    author: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class PromptLabel(SQLModel, table=True):
    __tablename__ = "prompt_label"
    id: Optional[int] = Field(default=None, primary_key=True)
    prompt_id: int = Field(foreign_key="prompt.id")
    label: str
    version_id: int = Field(foreign_key="prompt_version.id")
    updated_at: datetime = Field(default_factory=utcnow)


class LabelEvent(SQLModel, table=True):
    __tablename__ = "label_event"
    id: Optional[int] = Field(default=None, primary_key=True)
    prompt_id: int = Field(foreign_key="prompt.id")
    label: str
    from_version_id: Optional[int] = Field(default=None, foreign_key="prompt_version.id")
    to_version_id: int = Field(foreign_key="prompt_version.id")
    author: str = ""
    evidence: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class LlmCall(SQLModel, table=True):
    """The one ledger: every model call the product makes, from any source."""

    __tablename__ = "llm_call"
    id: Optional[int] = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)
    source: str = "playground"  # playground | run | judge | rag
    model: str
    api_base: Optional[str] = None
    request_hash: str
    messages: list = json_field(default_factory=list, nullable=False)
    params: dict = json_field(default_factory=dict, nullable=False)
    output: Optional[str] = None
    latency_ms: Optional[float] = None
    input_tokens: Optional[int] = None
    output_tokens: Optional[int] = None
    cost_usd: Optional[float] = None
    error_type: Optional[str] = None
    error: Optional[str] = None
    cached: bool = False
    prompt_version_id: Optional[int] = Field(default=None, foreign_key="prompt_version.id")
    run_id: Optional[int] = Field(default=None, foreign_key="run.id")
    attempts: int = 1  # requests sent for this call, retries included


class Dataset(SQLModel, table=True):
    __tablename__ = "dataset"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    description: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class DatasetVersion(SQLModel, table=True):
    __tablename__ = "dataset_version"
    id: Optional[int] = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id")
    version: int
    columns: list = json_field(default_factory=list, nullable=False)
    column_types: dict = json_field(default_factory=dict, nullable=False)
    row_count: int = 0
    content_hash: str
    source_filename: str = ""
    note: str = ""
    author: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class DatasetRow(SQLModel, table=True):
    __tablename__ = "dataset_row"
    id: Optional[int] = Field(default=None, primary_key=True)
    dataset_version_id: int = Field(foreign_key="dataset_version.id")
    position: int
    row_key: str
    data: dict = json_field(default_factory=dict, nullable=False)


class Run(SQLModel, table=True):
    __tablename__ = "run"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = ""
    config: dict = json_field(default_factory=dict, nullable=False)
    status: str = "pending"  # pending | running | done | failed | cancelled | budget_exceeded | interrupted
    dataset_version_id: Optional[int] = Field(default=None, foreign_key="dataset_version.id")
    concurrency: int = 8
    budget_usd: Optional[float] = None
    use_cache: bool = True
    repeat: int = 1
    created_at: datetime = Field(default_factory=utcnow)
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    heartbeat_at: Optional[datetime] = None
    worker: str = ""
    error: Optional[str] = None
    spent_usd: float = 0.0  # what the run's calls cost so far, kept by the executors (atomic increments)
    reserved_usd: float = 0.0  # estimated cost of the calls in flight, reserved before each call


class JobLease(SQLModel, table=True):
    """Who executes a job (a run, an index build, ...) and until when: claimed by compare-and-set."""

    __tablename__ = "job_lease"
    key: str = Field(primary_key=True)  # e.g. "run:12"
    owner: str
    lease_until: datetime
    claimed_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow)


class RunItem(SQLModel, table=True):
    """One planned unit of work: prompt version x model x dataset row x repeat."""

    __tablename__ = "run_item"
    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id")
    prompt_version_id: int = Field(foreign_key="prompt_version.id")
    model: str
    dataset_row_id: int = Field(foreign_key="dataset_row.id")
    repeat: int = 0
    status: str = "pending"  # pending | done | error | blocked
    call_id: Optional[int] = Field(default=None, foreign_key="llm_call.id")
    error_type: Optional[str] = None
    error: Optional[str] = None
    finished_at: Optional[datetime] = None


class Scorer(SQLModel, table=True):
    __tablename__ = "scorer"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str
    version: int
    type: str
    config: dict = json_field(default_factory=dict, nullable=False)
    note: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class Score(SQLModel, table=True):
    __tablename__ = "score"
    id: Optional[int] = Field(default=None, primary_key=True)
    run_item_id: int = Field(foreign_key="run_item.id")
    scorer_name: str
    scorer_version_id: Optional[int] = Field(default=None, foreign_key="scorer.id")
    value: Optional[float] = None
    passed: Optional[bool] = None
    reason: str = ""
    error: Optional[str] = None
    created_at: datetime = Field(default_factory=utcnow)


class ModelPrice(SQLModel, table=True):
    """A custom price (USD per 1M tokens) that overrides litellm's table for one model id."""

    __tablename__ = "model_price"
    id: Optional[int] = Field(default=None, primary_key=True)
    model: str = Field(unique=True)
    input_per_million: float
    output_per_million: float
    updated_at: datetime = Field(default_factory=utcnow)


class AppSetting(SQLModel, table=True):
    __tablename__ = "app_setting"
    key: str = Field(primary_key=True)
    value: Optional[Any] = json_field()
    updated_at: datetime = Field(default_factory=utcnow)


class Comparison(SQLModel, table=True):
    __tablename__ = "comparison"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = ""
    run_ids: list = json_field(default_factory=list, nullable=False)
    baseline: str = ""
    summary: dict = json_field(default_factory=dict, nullable=False)
    created_at: datetime = Field(default_factory=utcnow)


class RagIndex(SQLModel, table=True):
    __tablename__ = "rag_index"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    created_at: datetime = Field(default_factory=utcnow)


class RagIndexVersion(SQLModel, table=True):
    """An immutable index build: its config, Chroma collection and the document hashes it holds."""

    __tablename__ = "rag_index_version"
    id: Optional[int] = Field(default=None, primary_key=True)
    index_id: int = Field(foreign_key="rag_index.id")
    version: int
    config: dict = json_field(default_factory=dict, nullable=False)
    collection: str
    documents: dict = json_field(default_factory=dict, nullable=False)
    chunk_count: int = 0
    status: str = "building"  # building | ready | failed
    error: Optional[str] = None
    created_at: datetime = Field(default_factory=utcnow)
