"""Pydantic contracts shared by the core and the API: what goes in, what comes out.

The engine returns these objects only (no numpy, no faiss), so routes and the CLI never see the
internals of a build.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from service.sanitize import DATE_FORMS, clean_text, parse_date

NOISE_TOPIC = -1
"""Topic id of papers HDBSCAN leaves unclustered."""

MAX_K = 100
"""Upper bound for ``k`` (results per query) everywhere: API, CLI and engine."""
MAX_QUERY_CHARS = 10_000
"""Upper bound for query text everywhere."""
BLANK = " \t\n\r\f\v"
"""What counts as blank in a query: ASCII whitespace, the same set the API's pattern excludes."""
NOT_BLANK_PATTERN = "[^ \t\n\r\f\v]"
"""The API's pattern for query text: at least one character outside :data:`BLANK`."""
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
"""An ISO day, YYYY-MM-DD (checked further to be a real date where it filters)."""
MAX_OFFSET = 10_000
"""Upper bound for ``offset`` (results skipped, for paging) everywhere."""
MAX_FILTER_VALUES = 100
MAX_PAPER_ID_CHARS = 200
"""The longest paper id a request may name."""
TOPIC_ID_LIMIT = 2**31
"""Topic ids in a filter lie within 32 bits: a larger one is refused (422), not overflowed."""
"""Upper bound for the categories or topics one filter names."""


def embedding_text(title: str, abstract: str) -> str:
    """The text the model sees for a paper (and its cache key hashes): title, then abstract."""
    return f"{title}. {abstract}"


DERIVED_TITLE_CHARS = 120
"""The longest title derived from an abstract (see :func:`derive_title`)."""
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[\"'])")


def derive_title(abstract: str, limit: int = DERIVED_TITLE_CHARS) -> str:
    """A display title for a paper that has none: the abstract's first sentence (without its
    final full stop), cut at a word boundary with an ellipsis when longer than ``limit``.

    Deterministic, so a paper's title is known to be derived when it equals this of its
    abstract (``title_derived`` in the API)."""
    text = " ".join(abstract.split())
    first = _SENTENCE_END.split(text, maxsplit=1)[0].rstrip(".").strip()
    if len(first) <= limit:
        return first or text[:limit]
    cut = first[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


class Paper(BaseModel):
    """One paper as stored. ``id`` is the source's id or, lacking one, derived from the title."""

    id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1)
    abstract: str = Field(min_length=1)
    authors: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    date: str | None = Field(default=None, description="ISO date (YYYY-MM-DD) when known.")
    source: str = Field(default="", description="Where the paper was ingested from.")


OUTLIER_DOC = "HDBSCAN called the paper noise; it is in its most likely topic all the same."
CONFIDENCE_DOC = "How surely the paper belongs to its topic (0-1): its neighbours' vote share."


class PaperRef(BaseModel):
    id: str
    title: str
    outlier: bool | None = Field(default=None, description=OUTLIER_DOC)
    confidence: float | None = Field(default=None, ge=0, le=1, description=CONFIDENCE_DOC)


class PaperIn(BaseModel):
    """A paper posted to the API; without an ``id`` one is derived from the title (from the
    abstract when the title is derived); without a ``title``, the abstract's first sentence is
    its title (``title_derived``)."""

    id: str | None = Field(default=None, min_length=1, max_length=200)
    title: str | None = Field(
        default=None,
        min_length=1,
        max_length=2000,
        pattern="[^ \t\n\r\f\v]",
        description="Omit for abstract-only papers: the abstract's first sentence is used.",
    )
    abstract: str = Field(min_length=1, max_length=50_000, pattern="[^ \t\n\r\f\v]")
    authors: list[str] = Field(default_factory=list, max_length=1000)
    categories: list[str] = Field(default_factory=list, max_length=100)
    date: str | None = Field(
        default=None,
        description=f"The paper's date: {DATE_FORMS}; stored as YYYY-MM-DD (a year as its "
        "1 January, a month as its first day), a real day from 1600 to a year from today.",
    )

    @field_validator("id", "title", "abstract")
    @classmethod
    def _clean(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Stored as ingest stores text (:func:`clean_text`); a field left blank is refused."""
        if value is None:
            return None
        cleaned = clean_text(value).strip()
        if info.field_name == "title":  # on one line, as every ingest reader stores titles
            cleaned = " ".join(cleaned.split())
        if not cleaned:
            raise ValueError("must hold text, not only control characters or spaces")
        return cleaned

    @field_validator("authors", "categories")
    @classmethod
    def _clean_names(cls, values: list[str]) -> list[str]:
        return [c for c in (" ".join(clean_text(v).split()) for v in values) if c]

    _date = field_validator("date", mode="before")(parse_date)


class NewPapers(BaseModel):
    papers: list[PaperIn] = Field(min_length=1, max_length=1000)


class AddedPaper(BaseModel):
    id: str
    outcome: Literal["new", "updated", "unchanged"]
    placed: bool = Field(description="Embedded and placed now (false: already served as is).")
    topic_id: int = Field(description="Assigned topic; -1 when no existing topic fits.")
    topic_label: str


class AddReport(BaseModel):
    build_id: str = Field(description="The build the papers were placed against.")
    papers: list[AddedPaper]


class Emerging(BaseModel):
    """Papers added since the build that fit no existing topic."""

    build_id: str
    added_since_build: int
    unassigned: int
    threshold: int = Field(description="Unassigned papers at which a rebuild is suggested.")
    rebuild_suggested: bool
    papers: list[PaperRef] = Field(description="The newest unassigned papers (up to 100).")


class Rejected(BaseModel):
    """A record that could not be ingested, with the reason; never dropped silently."""

    location: str = Field(description="Line or record number in the file.")
    reason: str


class IngestReport(BaseModel):
    file: str
    format: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    filtered: int = Field(default=0, description="Valid papers left out by the ingest filters.")
    rejected: list[Rejected] = Field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.new + self.updated > 0


class PaperOut(Paper):
    topic_id: int
    topic_label: str
    outlier: bool = Field(default=False, description=OUTLIER_DOC)
    confidence: float = Field(default=1.0, ge=0, le=1, description=CONFIDENCE_DOC)
    title_derived: bool = Field(
        default=False,
        description="The paper had no title: this one is its abstract's first sentence.",
    )


class Hit(BaseModel):
    """One search / like-this result.

    ``score`` orders the results: the cosine similarity to the query (dense search, like-this),
    the BM25 score (lexical) or the fused score (hybrid); the parts it came from are kept.
    """

    id: str
    title: str
    score: float
    dense_score: float | None = Field(
        default=None, description="Cosine similarity of the paper to the query or paper."
    )
    lexical_score: float | None = Field(
        default=None, description="BM25 score of the paper for the query (0: no shared term)."
    )
    date: str | None = None
    categories: list[str] = Field(default_factory=list)
    topic_id: int
    topic_label: str = Field(description="The topic's name.")
    outlier: bool = Field(default=False, description=OUTLIER_DOC)
    confidence: float = Field(default=1.0, ge=0, le=1, description=CONFIDENCE_DOC)


class PaperSeed(BaseModel):
    """A served paper to recommend from."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200)


class TextSeed(BaseModel):
    """Pasted text to recommend from: a title and/or abstract that need not be in the corpus."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=10_000, pattern="[^ \t\n\r\f\v]")


Seed = PaperSeed | TextSeed


def check_day(value: str | None) -> str | None:
    """``value`` if it is a real calendar day (YYYY-MM-DD); ValueError otherwise."""
    if value is not None:
        date.fromisoformat(value)
    return value


class PaperFilter(BaseModel):
    """Which papers a list may return: the one filter of search, like-this and recommend.

    Applied before ranking (an exact scan of the matching papers), so ``k`` results come back
    whenever that many match. Every given condition must hold.
    """

    since: str | None = Field(
        default=None,
        pattern=DATE_PATTERN,
        json_schema_extra={"format": "date"},
        description="Papers dated on/after YYYY-MM-DD.",
    )
    until: str | None = Field(
        default=None,
        pattern=DATE_PATTERN,
        json_schema_extra={"format": "date"},
        description="Papers dated on/before YYYY-MM-DD.",
    )
    categories: list[str] = Field(
        default_factory=list,
        max_length=MAX_FILTER_VALUES,
        description="Papers in any of these categories; cs.CL, or cs for every cs.*",
    )
    topics: list[Annotated[int, Field(ge=-TOPIC_ID_LIMIT, lt=TOPIC_ID_LIMIT)]] = Field(
        default_factory=list,
        max_length=MAX_FILTER_VALUES,
        description="Papers in any of these topics (-1: unclustered).",
    )

    _days = field_validator("since", "until")(check_day)

    @property
    def given(self) -> bool:
        """Whether any condition is set (no condition: every paper, the fast paths)."""
        return bool(self.since or self.until or self.categories or self.topics)


NO_FILTER = PaperFilter()


MAX_SEEDS = 50
"""Positive (and negative) seeds one recommend takes."""


class RecommendRequest(PaperFilter):
    positive: list[Seed] = Field(min_length=1, max_length=MAX_SEEDS)
    negative: list[Seed] = Field(default_factory=list, max_length=MAX_SEEDS)
    limit: int = Field(default=10, ge=1, le=MAX_K)
    strategy: Literal["average", "best_score"] = Field(
        default="average",
        description="average: one query from the seeds, mean(positive) moved away from "
        "mean(negative); best_score: each candidate scored by its closest positive seed, "
        "candidates closer to a negative seed ranked last (as Qdrant's strategies).",
    )
    diversity: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="0 = pure relevance; higher trades relevance for variety (maximal marginal "
        "relevance), so near-duplicates do not fill the page.",
    )
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET, description="Results to skip (paging).")


class Reason(BaseModel):
    """Why a paper was recommended."""

    closest_seed: str = Field(description="The positive seed it is most similar to (id or text).")
    seed_similarity: float
    shared_topic: int | None = Field(description="A positive seed's topic it belongs to.")
    shared_topic_label: str | None
    terms: list[str] = Field(
        description="Key terms it shares with the positive seeds, most distinctive first."
    )


class Recommendation(Hit):
    reason: Reason


COLLECTION_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
"""A collection's name: letters, digits, ``.``, ``_``, ``-``; up to 100 characters."""
PaperIds = list[Annotated[str, Field(min_length=1, max_length=200)]]


class CollectionIn(BaseModel):
    """What a collection holds: the papers it is about (positive seeds), papers it is not about
    (negative seeds), papers already seen (never in its feed) and a note."""

    model_config = ConfigDict(extra="forbid")
    positive: PaperIds = Field(min_length=1, max_length=500)
    negative: PaperIds = Field(default_factory=list, max_length=500)
    seen: PaperIds = Field(
        default_factory=list, max_length=10_000, description="Papers never listed in its feed."
    )
    note: str = Field(default="", max_length=2000)

    _note = field_validator("note")(clean_text)


class Collection(CollectionIn):
    name: str
    created_at: str
    updated_at: str


class CollectionOut(Collection):
    missing: list[str] = Field(
        description="Seeds no longer served (deleted papers): kept, reported, not used."
    )


class FeedbackIn(BaseModel):
    """A thumbs up or down on a paper, for a collection."""

    model_config = ConfigDict(extra="forbid")
    paper_id: str = Field(min_length=1, max_length=200)
    rating: Literal["up", "down"]


Ranking = Literal["seeds", "classifier"]


class Feed(BaseModel):
    """New papers for a collection: its recommend over papers dated or added since ``since``,
    or its classifier's ranking once it has enough ratings of both kinds."""

    collection: str
    since: str | None
    missing: list[str] = Field(description="Seeds no longer served, left out of the ranking.")
    ranking: Ranking = Field(
        default="seeds",
        description="seeds: similarity to the positive (and negative) papers; classifier: a "
        "logistic regression on the embeddings fitted to the positive and negative papers.",
    )
    ranking_note: str = Field(default="", description="Why this ranking, in words.")
    results: list[Recommendation]


MAX_EMAIL_CHARS = 254
"""The longest email address (RFC 5321's path limit less the angle brackets)."""


def check_email(value: str) -> str:
    """An email address as stored: its syntax checked (no DNS look-up), the domain in ASCII
    (IDNA) and lower case. Refuses what needs SMTPUTF8, and so any control character."""
    try:
        found = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as err:
        raise ValueError(f"not an email address: {err}") from None
    return str(found.ascii_email or found.normalized)


class SubscriberIn(BaseModel):
    """Someone to send a collection's email digest to."""

    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=MAX_EMAIL_CHARS, examples=["ada@example.org"])

    _email = field_validator("email")(check_email)


class SubscriberOut(BaseModel):
    collection: str
    email: str
    created_at: str


DigestStatus = Literal["sent", "dry-run", "refused"]


class DigestMail(BaseModel):
    """One digest: to whom, which papers, and what became of it."""

    collection: str
    email: str
    subject: str
    papers: list[str] = Field(description="Ids of the papers it carries, best first.")
    status: DigestStatus = Field(
        description="sent: the mail server accepted it; dry-run: only shown; refused: the "
        "server refused this recipient (nothing recorded, tried again next time)."
    )
    detail: str = Field(default="", description="Why the server refused it.")
    text: str = Field(default="", description="A dry run's mail as plain text.")


class DigestReport(BaseModel):
    """What one round of email digests did."""

    dry_run: bool
    mails: list[DigestMail]
    nothing_new: int = Field(description="Subscribers with no new papers: no mail for them.")


class TopicSummary(BaseModel):
    id: int
    label: str
    name: str = Field(
        default="", description="A short name (1-4 words), e.g. 'offline reinforcement learning'."
    )
    keywords: list[str]
    size: int
    representative: list[PaperRef]
    user_named: bool = Field(
        default=False, description="The name was given by a user (PUT /topics/{id}/name)."
    )


MAX_TOPIC_NAME = 100
"""The longest name a user may give a topic, in characters."""


class TopicNameIn(BaseModel):
    """A topic's new name: cleaned like titles (control characters out, one line)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=MAX_TOPIC_NAME)

    @field_validator("name")
    @classmethod
    def _clean(cls, value: str) -> str:
        cleaned = " ".join(clean_text(value).split())
        if not cleaned:
            raise ValueError("must hold text, not only control characters or spaces")
        return cleaned


class TopicMergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    into: int = Field(description="The topic that stays (keeps its id and name).")
    topics: list[int] = Field(
        min_length=1, max_length=100, description="Topics merged into it (they disappear)."
    )


class TopicPapersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paper_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=1000, description="Papers moved into the topic."
    )


class EditLineageOut(BaseModel):
    build_id: str
    topic: int | None = Field(description="The topic it applied to there; null: orphaned.")
    note: str


class TopicEdit(BaseModel):
    """A curation edit: a topic renamed, topics merged or papers moved, kept across builds."""

    id: int = Field(description="Its id: DELETE /topics/edits/{id} undoes it.")
    kind: Literal["rename", "merge", "move"]
    topic: int = Field(description="The topic renamed, merged into or moved to (ids then).")
    build_id: str = Field(description="The build it was made in.")
    name: str | None = Field(description="rename: the name given.")
    topics: list[int] = Field(description="merge: the topics merged into ``topic``.")
    paper_ids: list[str] = Field(description="move: the papers moved to ``topic``.")
    created_at: str
    applied_to: int | None = Field(
        description="The topic it applies to in the build served now; null when orphaned."
    )
    status: Literal["applied", "orphaned"]
    note: str = Field(description="How it applies now (ids changed, topics or papers gone).")
    lineage: list[EditLineageOut] = Field(
        description="Where it applied in each build served since it was made."
    )


class TopicGroupSummary(TopicSummary):
    """A coarse topic: fine topics merged by the similarity of their centroids."""

    subtopics: list[int] = Field(description="Ids of the fine topics it groups.")


class TopicMatch(BaseModel):
    id: int
    label: str
    name: str = Field(
        default="", description="A short name (1-4 words), e.g. 'offline reinforcement learning'."
    )
    keywords: list[str]
    size: int
    score: float = Field(description="Cosine similarity of the query to the topic's centroid.")


class MonthCount(BaseModel):
    month: str = Field(description="YYYY-MM")
    papers: int


class TopicTimeline(BaseModel):
    id: int
    label: str
    months: list[MonthCount] = Field(description="Papers per month, every month in range listed.")
    undated: int


MAX_TREND_MONTHS = 120
"""The longest recent window ``GET /topics/trending`` takes, in months."""


class TopicTrend(BaseModel):
    """A topic's recent growth: its papers dated in the last ``months`` months (the window ends
    with the newest paper's month) against its earlier monthly rate."""

    id: int
    name: str
    recent: int = Field(description="Papers dated in the window.")
    earlier: int = Field(description="Papers dated before the window.")
    share: float = Field(description="recent / (recent + earlier): how much of it is recent.")
    recent_rate: float = Field(description="Recent papers per month of the window.")
    earlier_rate: float = Field(
        description="Earlier papers per month, over every month of the corpus before the window."
    )
    growth: float | None = Field(
        description="recent_rate / earlier_rate; null when it had no earlier papers (new)."
    )


class DuplicatePair(BaseModel):
    a: PaperRef
    b: PaperRef
    score: float


class TopicLink(BaseModel):
    id: int
    shared: int = Field(description="Papers the two topics have in common.")


class Subtopic(BaseModel):
    """A part of a topic found when it was split on request (``POST /topics/{id}/split``)."""

    id: int = Field(description="Its id within the topic, largest first; kept while it applies.")
    name: str
    keywords: list[str]
    size: int
    papers: list[PaperRef] = Field(description="Members, closest to the sub-topic centre first.")


class TopicDetail(TopicSummary):
    papers: list[PaperRef] = Field(description="Members, closest to the topic centre first.")
    previous_build: str | None = Field(description="The build the lineage refers to.")
    parents: list[TopicLink] = Field(
        description="Topics of the previous build that gave this topic its papers (a merge if "
        "several)."
    )
    children: list[TopicLink] = Field(
        description="Other topics of this build that also descend from this id (a split)."
    )
    subtopics: list[Subtopic] = Field(
        default_factory=list,
        description="Its sub-topics, when it was split on request (largest first); every member "
        "is in one.",
    )


class MapLabel(BaseModel):
    """Something the map labels at ``x``, ``y`` (the median position of its papers)."""

    id: int
    label: str
    name: str = Field(
        default="", description="A short name (1-4 words), e.g. 'offline reinforcement learning'."
    )
    keywords: list[str]
    size: int
    x: float
    y: float


class MapTopic(MapLabel):
    """A topic, labelled when zoomed in."""

    group: int | None = Field(description="Id of the coarse group this topic belongs to.")
    user_named: bool = Field(default=False, description="Its name was given by a user.")


class MapGroup(MapLabel):
    """A coarse topic group, labelled when zoomed out."""

    children: list[int]


class MapPoints(BaseModel):
    """Columnar map payload: element ``i`` of every per-paper list describes the same paper.

    Compact for large corpora: one array per field instead of one object per paper; categories
    are indexes into ``categories`` (-1 = none) and dates ISO strings or null.
    """

    ids: list[str]
    x: list[float]
    y: list[float]
    topic: list[int]
    title: list[str]
    date: list[str | None]
    category: list[int]
    categories: list[str]
    outlier: list[bool] = Field(default_factory=list, description=OUTLIER_DOC)
    confidence: list[float] = Field(default_factory=list, description=CONFIDENCE_DOC)
    topics: list[MapTopic]
    groups: list[MapGroup]


class ModelInfo(BaseModel):
    name: str
    revision: str = Field(description="sha256 of the weights when known, else the name.")
    dim: int
    backend: str
    agreement: dict[str, float] | None = Field(
        default=None,
        description="Cosine of this backend's vectors to torch's on probe texts (mean, min), "
        "measured when the ONNX export was prepared; None for torch itself.",
    )


class IndexInfo(BaseModel):
    type: str
    reason: str
    recall_at_10: float | None = None
    ef_search: int | None = None
    nprobe: int | None = Field(default=None, description="IVF lists searched per query.")
    params: dict[str, int | str] = Field(
        default_factory=dict, description="Layout parameters: tier, nlist, training sample."
    )


class TopicParams(BaseModel):
    umap_components: int
    umap_neighbors: int
    min_cluster_size: int
    min_samples: int
    cluster_selection: str
    seed: int
    assign_outliers: bool = True
    """HDBSCAN's noise assigned to its most likely topic (False: raw HDBSCAN output)."""
    far_similarity: float = 0.0
    """An outlier stays unclustered when no paper of its topic among its neighbours is this
    similar (cosine) to it: far from every topic."""


class FitInfo(BaseModel):
    """Where a build's topics and map come from: its own UMAP + HDBSCAN fit, or an earlier
    build's fit with new papers placed into it (an incremental build)."""

    mode: Literal["full", "incremental"] = "full"
    fitted_build: str | None = Field(
        default=None, description="The build whose fit is used (None: this build's own)."
    )
    fitted_papers: int = Field(
        default=0, description="Papers that fit covers (fitted, or assigned by a sampled fit)."
    )
    changed_since_fit: int = Field(
        default=0, description="Papers added, changed or removed since that fit."
    )
    warm_start_from: str | None = Field(
        default=None, description="A full fit's UMAP started from this build's layout."
    )
    sampled_papers: int | None = Field(
        default=None,
        description="A sampled fit: UMAP and HDBSCAN saw this many papers drawn at random and "
        "the other papers were assigned to that fit (None: every paper was fitted).",
    )


class FileChecksum(BaseModel):
    """One build file as written: its size and BLAKE2b digest (32 bytes, hex)."""

    bytes: int
    blake2b: str


class BuildManifest(BaseModel):
    """Written into every build directory; the server checks it before serving the build."""

    format_version: Literal[1] = 1
    build_id: str
    created_at: str
    model: ModelInfo
    papers: int
    corpus_hash: str
    embedded_new: int = Field(description="Papers embedded in this build (the rest were cached).")
    index: IndexInfo
    topics: TopicParams
    n_topics: int
    noise_share: float
    """Papers left unclustered (HDBSCAN's noise when outliers are not assigned)."""
    outlier_share: float | None = Field(
        default=None, description="Papers HDBSCAN called noise (assigned a topic or not)."
    )
    map_neighbors: int
    stage_seconds: dict[str, float]
    versions: dict[str, str]
    build_settings: dict[str, int | float | str] = Field(
        default_factory=dict, description="Other settings the build depends on."
    )
    fit: FitInfo = Field(default_factory=FitInfo)
    duplicates: int = Field(
        default=0, description="Likely duplicate pairs found (duplicates.json)."
    )
    topic_ids: dict[str, float | int | str | None] = Field(
        default_factory=dict,
        description="How topic ids were carried over from the previous build (see lineage).",
    )
    checksums: dict[str, FileChecksum] = Field(
        default_factory=dict,
        description="Every other file of the build (path inside the build folder) as written; "
        "verified on publish and on every load. Empty for builds made before checksums.",
    )


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    ready: bool
    note: str | None = Field(default=None, description="Set when serving a fallback build.")
    build_id: str
    papers: int
    topics: int
    model: str
    added_live: int = Field(default=0, description="Papers added since the build.")
    last_synced: str | None = Field(
        default=None,
        description="When papers were last harvested from an OAI-PMH endpoint (UTC, ISO 8601; "
        "paperscope sync); null: never.",
    )


class SyncReport(BaseModel):
    """One harvest from an OAI-PMH endpoint (``paperscope sync``): what was asked, what came."""

    endpoint: str
    set_spec: str | None = Field(description="The set harvested; null: the whole repository.")
    metadata_prefix: str
    from_date: str | None = Field(description="The harvest's from (YYYY-MM-DD); null: all.")
    until: str | None = None
    resume_from: str | None = Field(
        default=None, description="Where the next harvest of this endpoint and set starts."
    )
    records: int = Field(default=0, description="Records received, deleted ones included.")
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = Field(default=0, description="Stored papers the repository deleted.")
    rejected: list[Rejected] = Field(default_factory=list)
    pages: int = 0
    retries: int = Field(default=0, description="Requests repeated (503, 429, 5xx, no answer).")
    seconds: float = 0.0
    build_id: str | None = Field(
        default=None, description="The build current after the sync's build; null: not built."
    )
