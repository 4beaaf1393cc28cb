"""The API's response bodies as pydantic v2 models.

Each class mirrors one Rust type of the ``schemas`` crate and has the name of its component
schema in ``/openapi.json`` (the test suite checks every model against the running server's
document, so the two cannot drift apart). Attributes are snake_case; the wire names (mostly
camelCase, following MovieLens' ``movieId``/``userId``; a few analytics types are snake_case on
the wire) are the aliases, and :meth:`Rows.to_pandas` names its columns after them.

Unknown fields are ignored, so a newer server does not break an older SDK.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, Union, get_args, get_origin

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, GetCoreSchemaHandler
from pydantic.alias_generators import to_camel
from pydantic_core import core_schema

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Analytics",
    "Because",
    "DataSnapshot",
    "Difference",
    "ExperimentChange",
    "ExperimentConfig",
    "ExperimentKind",
    "ExperimentList",
    "ExperimentRecord",
    "ExperimentReport",
    "ExperimentStatus",
    "ExperimentSummary",
    "GenreAffinity",
    "GenreCharts",
    "GenreStats",
    "GenreYearStats",
    "Health",
    "HoldoutMetrics",
    "Link",
    "LinkIds",
    "ModelInfo",
    "MonthStats",
    "Movie",
    "MovieCharts",
    "MovieDetail",
    "MovieStats",
    "NewRating",
    "Prediction",
    "Predictions",
    "RatedMovie",
    "Rating",
    "RatingAccepted",
    "RatingBucket",
    "RecommendedMovie",
    "RetrainReport",
    "RetrainStarted",
    "Rows",
    "SimilarMovies",
    "Strategy",
    "Tag",
    "TopMovies",
    "UserProfile",
    "UserRecommendations",
    "VariantConfig",
    "VariantModel",
    "VariantOutcome",
    "YearStats",
    "RESPONSE_MODELS",
]

M = TypeVar("M", bound=BaseModel)

Strategy = Literal["personal", "trending", "collaborative", "content"]
"""Which model produced a list: ``personal``/``trending`` for a user, ``collaborative``/
``content`` for similar movies."""

ExperimentKind = Literal["evaluate", "retrain"]
"""What produced an experiment record: an offline ``evaluate`` run or a production retrain."""

VariantModel = Literal["served", "ease", "online-mf", "popularity", "random"]
"""The model an A/B variant's lists come from: ``served`` (what serving answers without an
experiment), ``ease`` (EASE without the re-ranker), ``online-mf`` (the online factor model) or
``popularity`` (the recency-weighted popularity list)."""

ExperimentStatus = Literal["draft", "running", "stopped"]
"""Where an A/B experiment is in its life: configured, splitting traffic, or stopped."""


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "to_pandas() needs pandas: pip install 'cinedata[pandas]' (or pip install pandas)"
        ) from e
    return pandas


class _Wire(BaseModel):
    """Base of every model: snake_case wire names, unknown fields ignored, immutable."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)
    #: Whether a row has nested objects that :meth:`Rows.to_pandas` flattens into columns.
    _flatten: ClassVar[bool] = False


class _Camel(_Wire):
    """A model whose wire names are camelCase (``movieId``)."""

    model_config = ConfigDict(alias_generator=to_camel)


class Rows(list[M], Generic[M]):
    """A list of models that also knows how to become a :class:`pandas.DataFrame`.

    Every listing the SDK returns is one, and so are the lists inside responses
    (``analytics.genres``, ``recommendations.items``, ...).
    """

    _model: type[BaseModel] | None
    _raw: list[dict[str, Any]] | None

    def __init__(
        self,
        items: Any = (),
        *,
        model: type[BaseModel] | None = None,
        raw: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(items)
        self._model = model or (type(self[0]) if self else None)
        # The validated JSON rows, kept so to_pandas() need not dump every model again.
        self._raw = raw

    def to_pandas(self) -> pd.DataFrame:
        """The rows as a DataFrame with one column per wire field (``movieId``, ``title``, ...).

        Nested objects (an experiment's ``metrics``, ``params`` and ``data``) become dotted
        columns (``metrics.rmse``); nested lists (a recommendation's ``because``) stay lists.
        """
        raw = self._raw
        if raw is None:
            raw = [m.model_dump(by_alias=True, mode="json") for m in self]
        return frame_of(raw, self._model)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        (item,) = get_args(source) or (Any,)
        return core_schema.no_info_after_validator_function(
            lambda items: cls(items, model=item if isinstance(item, type) else None),
            handler.generate_schema(list[item]),  # type: ignore[valid-type]
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda rows, info: [r.model_dump(by_alias=info.by_alias, mode=info.mode) for r in rows],
                info_arg=True,
            ),
        )


def frame_of(raw: list[dict[str, Any]], model: type[BaseModel] | None) -> pd.DataFrame:
    """JSON rows as a DataFrame with ``model``'s wire names as columns (see :meth:`Rows.to_pandas`);
    optional integers become pandas' nullable ``Int64``.

    A model that flattens has one dotted column per field of each nested model (``vsControl.low``),
    whether or not a row has it (NaN where it is absent or null)."""
    pd = _pandas()
    flatten = model is not None and getattr(model, "_flatten", False)
    columns = _columns(model, flatten)
    if flatten and raw:
        nested = _nested(model)
        # A null nested object is the same as an absent one: NaN in each of its columns.
        rows = [{k: v for k, v in row.items() if v is not None or k not in nested} for row in raw]
        frame = pd.json_normalize(rows, max_level=1)
        # The model's order (json_normalize moves nested objects last); a free-form object
        # (an experiment record's ``metrics``) keeps its own columns in its place.
        order: list[str] = []
        for column in columns or ():
            found = [column] if column in frame.columns else [c for c in frame.columns if c.startswith(column + ".")]
            order.extend(found or ([column] if "." in column else []))
        order.extend(c for c in frame.columns if c not in order)
        frame = frame.reindex(columns=order)
    else:
        frame = pd.DataFrame.from_records(raw, columns=columns) if raw else pd.DataFrame(columns=columns)
    if model is not None:
        for name, field in model.model_fields.items():
            column = field.alias or name
            if column in frame.columns and _optional_int(field.annotation):
                frame[column] = frame[column].astype("Int64")
    return frame


def _columns(model: type[BaseModel] | None, flatten: bool = False) -> list[str] | None:
    """``model``'s wire names; with ``flatten``, a nested model's field is its dotted columns."""
    if model is None:
        return None
    nested = _nested(model) if flatten else {}
    columns: list[str] = []
    for name, field in model.model_fields.items():
        column = field.alias or name
        inner = nested.get(column)
        columns.extend([f"{column}.{c}" for c in _columns(inner) or ()] if inner else [column])
    return columns


def _nested(model: type[BaseModel] | None) -> dict[str, type[BaseModel]]:
    """The fields of ``model`` that hold one model (optional or not), by wire name."""
    found: dict[str, type[BaseModel]] = {}
    for name, field in (model.model_fields if model is not None else {}).items():
        annotation = field.annotation
        union = get_origin(annotation) in (Union, types.UnionType)
        options = [a for a in get_args(annotation) if a is not type(None)] if union else [annotation]
        kind = options[0] if len(options) == 1 else None
        if isinstance(kind, type) and get_origin(kind) is None and issubclass(kind, BaseModel):
            found[field.alias or name] = kind
    return found


def _optional_int(annotation: Any) -> bool:
    args = get_args(annotation)
    return set(args) == {int, type(None)}


# --- catalogue -----------------------------------------------------------------------------


class Health(_Wire):
    """``GET /``: the service's liveness, with the store checked."""

    status: str
    version: str
    database: str


class Movie(_Camel):
    """A movie in a listing."""

    movie_id: int
    title: str
    genres: str


class Rating(_Camel):
    """One user's rating of one movie (0.5 to 5.0 stars, Unix seconds)."""

    user_id: int
    movie_id: int
    rating: float
    timestamp: int


class Tag(_Camel):
    """One user's free-text tag on one movie."""

    user_id: int
    movie_id: int
    tag: str
    timestamp: int


class Link(_Camel):
    """A movie's ids on IMDb (leading zeros kept) and TMDb (None when TMDb does not list it)."""

    movie_id: int
    imdb_id: str
    tmdb_id: int | None = None


class LinkIds(_Camel):
    """The external ids embedded in a movie's detail."""

    imdb_id: str
    tmdb_id: int | None = None


class MovieDetail(_Camel):
    """``GET /movies/{movieId}``: a movie with its ratings, tags and link."""

    movie_id: int
    title: str
    genres: str
    ratings: Rows[Rating]
    tags: Rows[Tag]
    link: LinkIds | None = None


# --- analytics and charts --------------------------------------------------------------------


class RatingBucket(_Wire):
    """How many ratings carry one star value."""

    rating: float
    count: int


class YearStats(_Wire):
    """Rating activity in one calendar year (UTC)."""

    year: int
    count: int
    mean_rating: float


class GenreStats(_Wire):
    """How popular and how liked a genre is."""

    genre: str
    movie_count: int
    rating_count: int
    mean_rating: float | None = None


class MovieStats(_Wire):
    """A movie ranked by its ratings (``movieId`` on the wire, the counts snake_case)."""

    movie_id: int = Field(alias="movieId")
    title: str
    rating_count: int
    mean_rating: float


class Analytics(_Wire):
    """``GET /analytics``: catalogue-wide figures (briefly cached by the server)."""

    movie_count: int
    rating_count: int
    tag_count: int
    link_count: int
    user_count: int
    rated_movie_count: int
    mean_rating: float | None = None
    rating_distribution: Rows[RatingBucket]
    ratings_per_year: Rows[YearStats]
    genres: Rows[GenreStats]
    most_rated: Rows[MovieStats]
    best_rated: Rows[MovieStats]
    min_ratings: int
    computed_at: int


class MonthStats(_Camel):
    """Rating activity in one calendar month (``YYYY-MM``, UTC)."""

    month: str
    count: int
    mean_rating: float


class GenreYearStats(_Camel):
    """One genre's ratings in one calendar year, by the rating's timestamp."""

    genre: str
    year: int
    count: int
    mean_rating: float


class GenreCharts(_Camel):
    """``GET /charts/genres``: popularity and mean per genre, overall and per year."""

    genres: Rows[GenreStats]
    by_year: Rows[GenreYearStats]


class TopMovies(_Camel):
    """``GET /charts/top-movies``: the most-rated and the best-rated movies."""

    most_rated: Rows[MovieStats]
    best_rated: Rows[MovieStats]
    min_ratings: int


class MovieCharts(_Camel):
    """``GET /charts/movies/{movieId}``: one movie's histogram and ratings per year."""

    movie_id: int
    rating_count: int
    mean_rating: float | None = None
    histogram: Rows[RatingBucket]
    per_year: Rows[YearStats]


# --- recommendations and the model -----------------------------------------------------------


class Because(_Camel):
    """A movie the user liked that supports a recommendation, with its weight."""

    movie_id: int
    title: str
    rating: float
    weight: float


class RecommendedMovie(_Camel):
    """One recommended or similar movie; ``because`` only with ``explain=True``."""

    movie_id: int
    title: str
    genres: str
    score: float
    because: Rows[Because] | None = None


class _Items(_Camel):
    items: Rows[Any]

    def to_pandas(self) -> pd.DataFrame:
        """``items`` as a DataFrame (see :meth:`Rows.to_pandas`)."""
        return self.items.to_pandas()


class UserRecommendations(_Items):
    """``GET /users/{userId}/recommendations``: best first, computed live. While an A/B
    experiment runs, ``experiment`` and ``variant`` say which arm (or ``holdout``) the user is
    in, whose model made the list; both are None otherwise."""

    user_id: int
    strategy: Strategy
    model_version: int
    items: Rows[RecommendedMovie]
    experiment: str | None = None
    variant: str | None = None


class SimilarMovies(_Items):
    """``GET /movies/{movieId}/similar``: most similar first."""

    movie_id: int
    strategy: Strategy
    model_version: int
    items: Rows[RecommendedMovie]


class Prediction(_Camel):
    """The live model's predicted stars for one movie, and the user's own rating if any."""

    movie_id: int
    title: str
    predicted_rating: float
    rated: float | None = None


class Predictions(_Items):
    """``GET /users/{userId}/predictions``: one item per movie asked about, in that order."""

    user_id: int
    model_version: int
    items: Rows[Prediction]


class GenreAffinity(_Camel):
    """A genre in a user's profile."""

    genre: str
    count: int
    mean_rating: float


class RatedMovie(_Camel):
    """A rated movie in a user's profile."""

    movie_id: int
    title: str
    rating: float


class UserProfile(_Camel):
    """``GET /users/{userId}/profile``: what the live model knows of a user."""

    user_id: int
    rating_count: int
    mean_rating: float
    favourite_genres: Rows[GenreAffinity]
    top_rated: Rows[RatedMovie]


class HoldoutMetrics(_Camel):
    """How a model did on ratings held out of its training."""

    rmse: float
    mae: float
    mean_rmse: float | None = None
    ratings: int
    ndcg_at_10: float | None = Field(default=None, alias="ndcgAt10")
    hit_rate_at_10: float | None = Field(default=None, alias="hitRateAt10")
    popularity_ndcg_at_10: float | None = Field(default=None, alias="popularityNdcgAt10")
    ranking_users: int = 0


class RetrainReport(_Camel):
    """The outcome of one batch recompute (accepted, or why not)."""

    accepted: bool
    reason: str | None = None
    trigger: str
    finished_at: int
    seconds: float
    training_ratings: int
    holdout: HoldoutMetrics | None = None


class ModelInfo(_Camel):
    """``GET /model``: the model serving answers from."""

    version: int
    algorithm: str
    factors: int
    trained_at: int | None = None
    training_ratings: int
    users: int
    movies: int
    holdout: HoldoutMetrics | None = None
    events_since_trained: int
    events_applied: int
    retraining: bool
    last_retrain: RetrainReport | None = None


class RetrainStarted(_Camel):
    """``POST /model/retrain`` → 202: the version when the retrain started."""

    version: int


class DataSnapshot(_Wire):
    """The ratings an experiment ran on."""

    path: str
    fingerprint: str
    ratings: int
    users: int
    movies: int


class ExperimentRecord(_Wire):
    """One model's result under one protocol (an ``evaluate`` run or a production retrain)."""

    _flatten: ClassVar[bool] = True

    id: int | None = None
    kind: ExperimentKind
    protocol: str
    model: str
    params: Any
    data: DataSnapshot
    metrics: Any
    folds: list[Any] = Field(default_factory=list)
    fit_seconds: float
    predict_seconds: float
    git_revision: str
    host: str
    started_at: int
    created_at: int


# --- A/B experiments ---------------------------------------------------------------------------


class VariantConfig(_Camel):
    """One arm of an A/B experiment: its name, the model its users' lists come from, and its
    relative share of the (non-holdout) users (shares need not sum to 1)."""

    name: str
    model: VariantModel
    share: float


class ExperimentConfig(_Camel):
    """An A/B experiment's configuration: the body of ``PUT /experiments/{name}``, and what
    summaries and reports answer.

    ``control`` is the variant the others are compared with and that ``holdout`` users see
    (default: the first); ``holdout`` is the share of all users set aside (0 to 0.5); ``salt``
    is mixed into the assignment hash (default: the experiment's name; a new salt reshuffles
    every user); a shown movie the user rates 4 or more within ``window_days`` of stream time is
    a hit. Built with snake_case or wire names::

        ExperimentConfig(variants=[VariantConfig(name="control", model="served", share=1),
                                   VariantConfig(name="pop", model="popularity", share=1)],
                         holdout=0.1)
    """

    variants: list[VariantConfig]
    control: str | None = None
    holdout: float = 0.0
    salt: str | None = None
    window_days: float = 7.0


class ExperimentSummary(_Camel):
    """An experiment as stored: name, status, configuration and the time of its last change;
    ``to_pandas()`` of a list of them flattens ``config`` into dotted columns."""

    _flatten: ClassVar[bool] = True

    name: str
    status: ExperimentStatus
    config: ExperimentConfig
    updated_at: int


class ExperimentList(_Camel):
    """``GET /experiments``: every A/B experiment, by name."""

    experiments: Rows[ExperimentSummary]

    def to_pandas(self) -> pd.DataFrame:
        """``experiments`` as a DataFrame, ``config`` flattened (``config.holdout``, ...)."""
        return self.experiments.to_pandas()


class ExperimentChange(_Camel):
    """One recorded change of an experiment: Unix seconds, ``created``/``changed``/``started``/
    ``stopped``, and the configuration from then on."""

    _flatten: ClassVar[bool] = True

    at: int
    action: str
    config: ExperimentConfig


class Difference(_Camel):
    """A variant's hit rate minus the control's, with its 95% confidence interval (``low`` to
    ``high``) and the two-sided p-value of the two-proportion z-test."""

    hit_rate: float
    low: float
    high: float
    p_value: float


class VariantOutcome(_Camel):
    """What one variant's (or the ``holdout``'s) users did with the lists they were shown.

    A list is a hit when its user liked (rated 4 or more) one of its top 10 within the window
    after it was shown: ``hit_impressions`` of ``impressions``; ``hit_users`` had at least one.
    ``hit_rate`` is ``hit_impressions / impressions`` (hit rate@10) and ``gain`` the mean
    position-weighted gain per list (both None without lists); ``vs_control`` compares with the
    control, users as clusters (None for the control itself and without two users)."""

    _flatten: ClassVar[bool] = True

    variant: str
    model: VariantModel
    impressions: int
    hit_impressions: int
    users: int
    hit_users: int
    hit_rate: float | None = None
    gain: float | None = None
    vs_control: Difference | None = None


class ExperimentReport(_Camel):
    """``GET /experiments/{name}``: configuration, status, every change (oldest first) and the
    outcomes per variant (configuration order, then ``holdout`` if any), recomputed every few
    seconds (``computed_at``)."""

    name: str
    status: ExperimentStatus
    config: ExperimentConfig
    control: str
    history: Rows[ExperimentChange]
    outcomes: Rows[VariantOutcome]
    computed_at: int

    def outcome(self, variant: str) -> VariantOutcome:
        """The outcome of ``variant`` (or ``"holdout"``); KeyError when there is none."""
        for outcome in self.outcomes:
            if outcome.variant == variant:
                return outcome
        raise KeyError(f"experiment {self.name!r} has no variant {variant!r}")

    def to_pandas(self) -> pd.DataFrame:
        """``outcomes`` as a DataFrame, one row per variant: ``variant``, ``model``,
        ``impressions``, ``users``, ``hitUsers``, ``hitRate``, ``gain`` and
        ``vsControl.hitRate``/``.low``/``.high``/``.pValue`` (NaN for the control)."""
        return self.outcomes.to_pandas()


# --- ingest ------------------------------------------------------------------------------------


class NewRating(_Camel):
    """The body of ``POST /ratings`` (``timestamp`` defaults to now on the server)."""

    user_id: int = Field(validation_alias=AliasChoices("userId", "user_id"), serialization_alias="userId")
    movie_id: int = Field(validation_alias=AliasChoices("movieId", "movie_id"), serialization_alias="movieId")
    rating: float
    timestamp: int | None = None


class RatingAccepted(_Camel):
    """``POST /ratings`` → 202: the event's id, as the consumer and dead-letter topic name it."""

    event_id: str


RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    Health,
    Movie,
    Rating,
    Tag,
    Link,
    LinkIds,
    MovieDetail,
    RatingBucket,
    YearStats,
    GenreStats,
    MovieStats,
    Analytics,
    MonthStats,
    GenreYearStats,
    GenreCharts,
    TopMovies,
    MovieCharts,
    Because,
    RecommendedMovie,
    UserRecommendations,
    SimilarMovies,
    Prediction,
    Predictions,
    GenreAffinity,
    RatedMovie,
    UserProfile,
    HoldoutMetrics,
    RetrainReport,
    ModelInfo,
    RetrainStarted,
    DataSnapshot,
    ExperimentRecord,
    RatingAccepted,
    VariantConfig,
    ExperimentConfig,
    ExperimentSummary,
    ExperimentList,
    ExperimentChange,
    Difference,
    VariantOutcome,
    ExperimentReport,
)
"""Every model the SDK reads from the API; each has the name of its ``/openapi.json`` schema."""
