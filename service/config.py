"""Typed settings, read from ``PAPERSCOPE_*`` environment variables and CLI flags.

Settings are built at the edges (the CLI command, the app factory), never at import time, so tests
and several corpora side by side each get their own. Nonsense fails fast with a clear message.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.errors import InvalidInput

#: The repository's ``models/`` folder (where ``scripts/install`` prepares model files).
REPO_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"

DEFAULT_MODEL = "all-MiniLM-L6-v2"
ARXIV_OAI = "https://oaipmh.arxiv.org/oai"
"""arXiv's OAI-PMH endpoint (https://info.arxiv.org/help/oa/index.html)."""

# The data folder's layout (inside a build folder: service.artifacts).
DATABASE = "papers.sqlite"
"""The papers database (service.store)."""
BUILDS = "builds"
"""One folder per build, and the ``CURRENT`` pointer."""
EVAL_CACHE = "eval-cache"
"""Embeddings ``paperscope eval`` keeps between runs."""
SYNC_LOCK = "sync.lock"
"""Held by the harvest running (``paperscope sync``, a server's schedule): one at a time."""


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``30m``, ``24h`` or ``1d``; ValueError for anything else."""
    value = text.strip().lower()
    unit = _UNITS.get(value[-1:], 0)
    try:
        return float(value[:-1] if unit else value) * (unit or 1)
    except ValueError:
        raise ValueError(f"expected seconds or a duration (24h, 30m, 1d), not {text!r}") from None


class Settings(BaseSettings):
    """Everything a deployment can change. Each field is documented in docs/settings.md."""

    model_config = SettingsConfigDict(env_prefix="PAPERSCOPE_", extra="ignore")

    data_dir: Path = Field(
        default=Path("paperscope-data"),
        description="Folder holding the papers database, the embedding cache and the builds.",
    )
    host: str = Field(default="127.0.0.1", description="Address the server binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the server listens on.")
    model: str = Field(
        default=DEFAULT_MODEL,
        description="Embedding model: a name from models/manifest.json, a local folder, "
        "or any sentence-transformers model name (needs a reachable hub).",
    )
    models_dir: Path = Field(
        default=REPO_MODELS_DIR, description="Folder with the model manifest and prepared models."
    )
    backend: Literal["auto", "torch", "onnx", "onnx-int8", "openvino", "openvino-int8"] = Field(
        default="auto",
        description="Embedding backend; auto = the one `models prepare` measured fastest here "
        "(within the quality guard), torch with a GPU or no prepared export.",
    )
    device: str | None = Field(
        default=None, description="torch device for embedding (cpu, cuda); default: automatic."
    )
    embed_batch_size: int = Field(
        default=32,
        ge=1,
        le=4096,
        description="Texts per batch at the model's full length (shorter texts: more a batch).",
    )
    embed_max_tokens: int = Field(
        default=256,
        ge=32,
        le=512,
        description="Tokens of title + abstract the model reads (capped at the model's own "
        "limit, 256 for MiniLM); fewer embed faster and get their own cache key.",
    )
    engine: Literal["local", "ray"] = Field(
        default="local",
        description="Where a build embeds new papers: this process, or a Ray cluster "
        "(pip install 'paperscope[ray]').",
    )
    ray_address: str | None = Field(
        default=None,
        description="Ray cluster to embed on (HEAD:6379); unset = a Ray started on this machine.",
    )
    embed_window_tokens: int = Field(
        default=256,
        ge=0,
        le=512,
        description="Tokens per window that long abstracts are split into (0 = truncate).",
    )
    embed_window_stride: int = Field(
        default=256,
        ge=1,
        le=512,
        description="Tokens between the starts of two windows (= the window: no overlap).",
    )
    umap_components: int = Field(
        default=5, ge=2, le=100, description="Dimensions of the UMAP space HDBSCAN clusters in."
    )
    umap_neighbors: int | None = Field(
        default=None,
        ge=2,
        le=200,
        description="UMAP n_neighbors; default: chosen from corpus size.",
    )
    min_cluster_size: int | None = Field(
        default=None,
        ge=2,
        description="HDBSCAN min_cluster_size; default: chosen from corpus size.",
    )
    min_samples: int | None = Field(
        default=None, ge=1, description="HDBSCAN min_samples; default: chosen from corpus size."
    )
    cluster_selection: Literal["eom", "leaf"] = Field(
        default="leaf", description="HDBSCAN cluster_selection_method."
    )
    assign_outliers: bool = Field(
        default=True,
        description="Assign HDBSCAN's outliers to their most likely topic (the weighted vote of "
        "their nearest neighbours; each keeps outlier=true and a confidence); false = raw "
        "HDBSCAN output, outliers unclustered.",
    )
    outlier_far_similarity: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="An outlier stays unclustered (far from every topic) when none of its "
        "nearest neighbours in its most likely topic has at least this cosine similarity to it.",
    )
    incremental_limit: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="A build places new or changed papers into the previous build's topics and "
        "map instead of refitting them while the papers changed since the last full fit stay "
        "within this share of the corpus; 0 = always refit.",
    )
    topic_sample_above: int = Field(
        default=50_000,
        ge=0,
        description="Corpora larger than this fit topics and map on a random sample of "
        "topic_sample_size papers and assign the rest to it; 0 = always fit every paper.",
    )
    topic_sample_size: int = Field(
        default=20_000,
        ge=10,
        description="Papers drawn (seeded) for a sampled fit of topics and map.",
    )
    warm_start: bool = Field(
        default=True,
        description="Start a full refit's UMAP from the previous build's layout (stable topic "
        "ids and map positions); false = fresh spectral start every build.",
    )
    duplicate_threshold: float = Field(
        default=0.95,
        gt=0,
        le=1,
        description="Cosine similarity at or above which two papers are reported as likely "
        "duplicates (the same paper, versions, copied abstracts).",
    )
    label_terms: int = Field(default=4, ge=1, le=20, description="Keywords in a topic label.")
    seed: int = Field(default=42, ge=0, description="Random seed for UMAP (map and clustering).")
    api_key: SecretStr | None = Field(
        default=None,
        description="Key that write requests must send as X-API-Key; unset = writes disabled.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (CORS); empty = none.",
    )
    max_body_bytes: int = Field(
        default=1_000_000,
        ge=1024,
        description="Largest request body accepted (POST /api/v1/papers: "
        "max_papers_body_bytes); larger ones get 413 before being read.",
    )
    max_papers_body_bytes: int = Field(
        default=64_000_000,
        ge=1024,
        description="Largest body of POST /api/v1/papers (1,000 papers with 50,000-character "
        "abstracts are about 51 MB); one over max_body_bytes is read only with the API key.",
    )
    public_url: str | None = Field(
        default=None,
        description="The address people reach the server at (https://papers.example.org/), "
        "for the links in Atom feeds; unset = the address and port the request came in on, "
        "never the request's Host header.",
    )
    smtp_host: str | None = Field(
        default=None,
        description="Mail server that email digests are sent through; unset = digests can "
        "only be previewed (paperscope digest send --dry-run).",
    )
    smtp_port: int = Field(
        default=587,
        ge=1,
        le=65535,
        description="The mail server's port (587 submission, 465 ssl, 25 plain).",
    )
    smtp_tls: Literal["none", "starttls", "ssl"] = Field(
        default="starttls",
        description="starttls: plain connection upgraded with STARTTLS (port 587); ssl: TLS "
        "from the start (port 465); none: no encryption (a relay on this machine only).",
    )
    smtp_user: str | None = Field(
        default=None, description="User to log in to the mail server as; unset = no login."
    )
    smtp_password: SecretStr | None = Field(default=None, description="Password for smtp_user.")
    smtp_from: str | None = Field(
        default=None,
        description="Sender of the digests: an address, or 'Name <address>'; needed to send.",
    )
    smtp_timeout: float = Field(
        default=30.0, gt=0, le=600, description="Seconds to wait for the mail server."
    )
    digest_papers: int = Field(
        default=10, ge=1, le=100, description="Most papers in one email digest."
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Server processes sharing the port; each memory-maps the same build, and "
        "papers added or deleted through one are picked up by the others within reload_seconds.",
    )
    access_log: bool = Field(
        default=False, description="Log every request (costs about a fifth of the throughput)."
    )
    metrics: bool = Field(
        default=True,
        description="Count every request and serve the counts at GET /metrics (Prometheus); "
        "off: neither (a few per cent of like-this throughput).",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text: readable lines; json: one JSON object per log line (time, level, "
        "logger, message), the server's access and error logs included.",
    )
    reload_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How often the server checks for a newly published build (0 = never).",
    )
    exact_index_max: int = Field(
        default=20_000, ge=0, description="Corpora up to this size get an exact FAISS index."
    )
    compressed_index_above: int = Field(
        default=500_000,
        ge=0,
        description="Corpora above this size get a compressed FAISS index (IVF with SQ8 or PQ).",
    )
    bm25_k1: float = Field(default=1.5, ge=0, le=10, description="BM25 term-frequency saturation.")
    bm25_b: float = Field(default=0.75, ge=0, le=1, description="BM25 length normalisation.")
    bm25_title_weight: int = Field(
        default=3, ge=1, le=10, description="Times a title is counted in the BM25 index."
    )
    search_mode: Literal["dense", "lexical", "hybrid"] = Field(
        default="hybrid", description="How search ranks when a query names no mode."
    )
    fusion: Literal["rrf", "weighted"] = Field(
        default="weighted", description="How hybrid search combines dense and BM25 results."
    )
    fusion_dense_weight: float = Field(
        default=0.5, ge=0, le=1, description="Weight of the dense score in weighted fusion."
    )
    fusion_depth: int = Field(
        default=100, ge=1, le=1000, description="Candidates each side proposes to hybrid search."
    )
    sync_endpoint: str = Field(
        default=ARXIV_OAI,
        description="The OAI-PMH endpoint paperscope sync harvests (arXiv's by default).",
    )
    sync_set: str = Field(
        default="cs", description="The OAI-PMH set paperscope sync harvests; empty = all of it."
    )
    sync_metadata_prefix: Literal["arXivRaw", "arXiv"] = Field(
        default="arXivRaw",
        description="The metadata format asked for: arXivRaw (with the version history) or arXiv.",
    )
    sync_every: float = Field(
        default=0,
        ge=0,
        description="How often paperscope serve harvests and builds in the background, as "
        "seconds or a duration like 24h, 30m, 1d; 0 = never (run paperscope sync yourself).",
    )
    sync_delay: float = Field(
        default=3.0,
        ge=0,
        le=600,
        description="Seconds between two requests of one harvest (arXiv asks harvesters to "
        "pace themselves); also the first wait before retrying a failed request.",
    )
    sync_retries: int = Field(
        default=5,
        ge=0,
        le=50,
        description="Times one request is repeated after 503 (waiting its Retry-After), 429, "
        "another 5xx or no answer, before the harvest fails.",
    )

    @field_validator("sync_every", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("host")
    @classmethod
    def _host_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("host must not be empty")
        return value

    @field_validator("sync_endpoint")
    @classmethod
    def _endpoint_absolute(cls, value: str) -> str:
        url = urlsplit(value.strip())
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError("sync_endpoint must be an http(s) address like https://host/oai")
        return value.strip()

    @field_validator("public_url")
    @classmethod
    def _public_url_absolute(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = urlsplit(value.strip())
        if url.scheme not in ("http", "https") or not url.netloc or url.query or url.fragment:
            raise ValueError("public_url must be an http(s) address like https://host/path/")
        return url.geturl().rstrip("/") + "/"

    @field_validator("smtp_from")
    @classmethod
    def _sender_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name, address = parseaddr(value.strip())
        if "@" not in address or any(c in value for c in "\r\n"):
            raise ValueError("smtp_from must be an address like digest@example.org")
        return formataddr((name, address))

    @model_validator(mode="after")
    def _clustering_consistent(self) -> Settings:
        if (
            self.min_cluster_size is not None
            and self.min_samples is not None
            and self.min_samples > self.min_cluster_size
        ):
            raise ValueError("min_samples must not exceed min_cluster_size")
        if 0 < self.embed_window_tokens < 32:
            raise ValueError("embed_window_tokens must be 0 (off) or at least 32")
        if self.embed_window_tokens and self.embed_window_stride > self.embed_window_tokens:
            raise ValueError("embed_window_stride must not exceed embed_window_tokens")
        return self

    @property
    def db_path(self) -> Path:
        return self.data_dir / DATABASE

    @property
    def builds_dir(self) -> Path:
        return self.data_dir / BUILDS

    @property
    def sync_lock_path(self) -> Path:
        return self.data_dir / SYNC_LOCK

    def eval_cache(self, folder: Path | None = None) -> Path:
        """The evaluations' embedding cache: in ``folder`` when given, else the data folder's."""
        return (folder or self.data_dir / EVAL_CACHE) / "embeddings.sqlite"


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment plus explicit overrides (``None`` means not given).

    Raises :class:`InvalidInput` with every problem listed instead of a pydantic traceback.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)  # type: ignore[arg-type]
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in err.errors()
        )
        raise InvalidInput(f"invalid settings: {problems}") from None


class JsonFormatter(logging.Formatter):
    """One JSON object per log record: time (UTC, ISO 8601), level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def server_log_config(settings: Settings) -> dict[str, Any] | None:
    """uvicorn's logging configuration for ``settings.log_format`` (None: uvicorn's own)."""
    if settings.log_format != "json":
        return None
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"default": handler},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.access": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
        "root": {"handlers": ["default"], "level": "INFO"},
    }


def configure_runtime(settings: Settings) -> None:
    """Process-wide knobs that must be set before numba / transformers are imported, and the
    log format."""
    if settings.log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "paperscope"
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache / "numba"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    settings.data_dir.mkdir(parents=True, exist_ok=True)


def runtime_settings(**overrides: object) -> Settings:
    """:func:`load_settings`, then :func:`configure_runtime`: what every command and every
    server process starts with."""
    settings = load_settings(**overrides)
    configure_runtime(settings)
    return settings
