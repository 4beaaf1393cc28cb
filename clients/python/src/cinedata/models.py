"""The API's response bodies as pydantic v2 models.

Each class mirrors one Rust type of the ``schemas`` crate and has the name of its component
schema in ``/openapi.json`` (the test suite checks every model against the running server's
document, so the two cannot drift apart). Attributes are snake_case; the wire names (mostly
camelCase, following MovieLens' ``movieId``/``userId``; a few analytics types are snake_case on
the wire) are the aliases, and :meth:`Rows.to_pandas` names its columns after them.

Unknown fields are ignored, so a newer server does not break an older SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, get_args

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, GetCoreSchemaHandler
from pydantic.alias_generators import to_camel
from pydantic_core import core_schema

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Analytics",
    "Because",
    "DataSnapshot",
    "ExperimentKind",
    "ExperimentRecord",
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
    "YearStats",
    "RESPONSE_MODELS",
]

M = TypeVar("M", bound=BaseModel)

Strategy = Literal["personal", "trending", "collaborative", "content"]
"""Which model produced a list: ``personal``/``trending`` for a user, ``collaborative``/
``content`` for similar movies."""

ExperimentKind = Literal["evaluate", "retrain"]
"""What produced an experiment record: an offline ``evaluate`` run or a production retrain."""


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
    optional integers become pandas' nullable ``Int64``."""
    pd = _pandas()
    columns = _columns(model)
    if model is not None and getattr(model, "_flatten", False) and raw:
        frame = pd.json_normalize(raw, max_level=1)
    else:
        frame = pd.DataFrame.from_records(raw, columns=columns) if raw else pd.DataFrame(columns=columns)
    if model is not None:
        for name, field in model.model_fields.items():
            column = field.alias or name
            if column in frame.columns and _optional_int(field.annotation):
                frame[column] = frame[column].astype("Int64")
    return frame


def _columns(model: type[BaseModel] | None) -> list[str] | None:
    if model is None:
        return None
    return [field.alias or name for name, field in model.model_fields.items()]


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
    """``GET /users/{userId}/recommendations``: best first, computed live."""

    user_id: int
    strategy: Strategy
    model_version: int
    items: Rows[RecommendedMovie]


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
)
"""Every model the SDK reads from the API; each has the name of its ``/openapi.json`` schema."""
