"""Request and response bodies of the REST API. The same models validate requests and generate
``/openapi.json``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_ID = 2**31 - 1  # ids and version numbers are INTEGER columns; larger numbers name nothing
Format = Literal["png", "jpeg", "jpg", "webp", "avif", "gif", "pdf"]
Scope = Literal["render", "templates:read", "templates:write", "sources", "admin"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Modification(BaseModel):
    """One Bannerbear-style change: ``name`` is a layer (or a variable); the other fields set
    its properties (``text``, ``color``, ``background``, ``image_url``, ``hide`` …)."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)


class RenderOptions(Strict):
    format: Format = "png"
    size: str | None = Field(None, description="a named size variant of the template")
    scale: float = Field(1, ge=1, le=4)
    quality: int | None = Field(None, ge=1, le=100)
    transparent: bool = False


class RenderData(Strict):
    variables: dict[str, Any] | None = Field(
        None, description="template variables, e.g. {\"title\": \"Hi\"}")
    layers: dict[str, dict[str, Any]] | None = Field(
        None, description="Placid style: properties by layer name, e.g. "
                          "{\"title\": {\"text\": \"Hi\"}, \"photo\": {\"image\": \"https://…\"}}")
    modifications: list[Modification] | None = Field(
        None, description="Bannerbear style: [{\"name\": \"title\", \"text\": \"Hi\"}]")


class RenderBody(RenderData, RenderOptions):
    template: int = Field(ge=1, le=MAX_ID, description="the template's id")
    version: int | None = Field(None, ge=1, le=MAX_ID,
                                description="default: the current version")
    metadata: dict[str, Any] | None = Field(None, description="kept with the render, returned "
                                                              "as is")
    async_: bool = Field(False, alias="async",
                         description="answer 202 at once with a pending render that a worker "
                                     "completes; poll GET /renders/{id}")
    webhook_url: str | None = Field(None, max_length=2000,
                                    description="async renders: POSTed the render.completed or "
                                                "render.failed event, signed")


class PreviewBody(RenderData, RenderOptions):
    template: dict[str, Any] | None = Field(
        None, description="unsaved template content to preview instead of the stored version")
    version: int | None = Field(None, ge=1, le=MAX_ID)


class RenderOut(BaseModel):
    id: int
    key: str
    status: Literal["pending", "rendering", "completed", "failed"]
    url: str | None
    format: str
    width: int | None
    height: int | None
    cached: bool
    template: int | None
    version: int
    warnings: list[str]
    error: dict[str, Any] | None
    metadata: dict[str, Any] | None
    created_at: str
    completed_at: str | None


class RenderList(BaseModel):
    data: list[RenderOut]


class RenderListQuery(Strict):
    template: int | None = Field(None, ge=1, le=MAX_ID)
    status: Literal["pending", "rendering", "completed", "failed"] | None = None
    limit: int = Field(50, ge=1, le=500)
    before: int | None = Field(None, ge=1, le=MAX_ID,
                               description="only renders with a smaller id (paging)")


class TemplateVersionOut(BaseModel):
    version: int
    digest: str
    created_at: str


class TemplateOut(BaseModel):
    id: int
    name: str
    kind: Literal["layered", "html"]
    public: bool
    version: int
    width: int
    height: int
    variables: dict[str, Any]
    sizes: list[str]
    content: dict[str, Any]
    created_at: str
    updated_at: str


class TemplateList(BaseModel):
    data: list[TemplateOut]


class VersionList(BaseModel):
    data: list[TemplateVersionOut]


class TemplateQuery(Strict):
    version: int | None = Field(None, ge=1, le=MAX_ID)


class AssetOut(BaseModel):
    id: int
    name: str
    ref: str = Field(description="how templates refer to it: asset:<name>")
    kind: Literal["font", "image"]
    content_type: str
    size: int
    sha256: str
    family: str | None
    weight: int | None
    created_at: str
    updated_at: str


class AssetList(BaseModel):
    data: list[AssetOut]


class UsageOut(BaseModel):
    month: str
    renders: int
    quota: int | None
    remaining: int | None


class MeOut(BaseModel):
    workspace: dict[str, Any]
    key: dict[str, Any]
    user: dict[str, Any] | None
    usage: UsageOut
    signing_secret: str | None = Field(None, description="only for keys with the admin scope")


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any]


class ErrorOut(BaseModel):
    error: ErrorBody


class TemplateContent(BaseModel):
    """A template as docs/templates.md describes it (validated by the renderer, which names the
    failing path, e.g. ``layers[3].text``)."""

    model_config = ConfigDict(extra="allow")
    kind: Literal["layered", "html"] = "layered"
    name: str | None = None
    width: int
    height: int
    public: bool | None = Field(None, description="public templates render at /u/ unsigned")
    layers: list[dict[str, Any]] | None = None
    html: str | None = None
    css: str | None = None


class BatchItemIn(Strict):
    variables: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] | None = None


class BatchBody(RenderOptions):
    template: int = Field(ge=1, le=MAX_ID)
    version: int | None = Field(None, ge=1, le=MAX_ID)
    items: list[BatchItemIn] = Field(default_factory=list,
                                     description="one object per render: {variables, metadata}")
    source: int | None = Field(None, ge=1, le=MAX_ID, description="instead of items: a data "
                               "source's rows (a sheet, a file, a JSON/HTTP list), one item each")
    mapping: dict[str, str] = Field(default_factory=dict, description="with source: template "
                                    "variable -> column; variables left out are auto-mapped")
    merge: Literal["pdf", "zip"] | None = Field(
        None, description="pdf: every item as a page of one PDF (items render as PDF); zip: "
                          "one archive of the files")
    metadata: dict[str, Any] | None = None
    webhook_url: str | None = Field(None, max_length=2000,
                                    description="POSTed the batch.completed event, signed")


class BatchItemOut(BaseModel):
    index: int
    status: Literal["pending", "completed", "failed"]
    render: int | None
    url: str | None
    error: dict[str, Any] | None
    metadata: dict[str, Any] | None


class BatchOut(BaseModel):
    id: int
    status: Literal["pending", "running", "completed"]
    template: int | None
    version: int
    format: str
    merge: str | None
    total: int
    done: int
    failed: int
    merged_url: str | None
    merge_error: dict[str, Any] | None
    metadata: dict[str, Any] | None
    created_at: str
    completed_at: str | None
    items: list[BatchItemOut] | None


Event = Literal["render.completed", "render.failed", "batch.completed", "sync.completed"]


class HookIn(Strict):
    target_url: str = Field(max_length=2000)
    event: Event
    template: int | None = Field(None, ge=1, le=MAX_ID, description="only this template's")


class HookOut(BaseModel):
    id: int
    target_url: str
    event: str
    template: int | None
    created_at: str
    secret: str | None = Field(None, description="shown once, when the hook is created: "
                                                 "verifies Pixelmerge-Signature")


class HookList(BaseModel):
    data: list[HookOut]


class DeliveryOut(BaseModel):
    id: int
    hook: int | None
    event: str
    target_url: str
    status: Literal["pending", "delivered", "failed", "gone"]
    attempts: list[dict[str, Any]]
    body: dict[str, Any]
    created_at: str
    delivered_at: str | None


class DeliveryList(BaseModel):
    data: list[DeliveryOut]


class BatchQuery(Strict):
    items: bool = Field(True, description="false: progress only, without the items (cheap to "
                                          "poll)")


# ---------------------------------------------------------------- sources and bindings

class SourceIn(Strict):
    type: str = Field(min_length=1, max_length=40, description="see GET /connector-types")
    name: str = Field(min_length=1, max_length=200)
    config: dict[str, Any] = Field(default_factory=dict, description="as the type's schema "
                                   "says; fields marked secret are stored encrypted")


class SourceUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    config: dict[str, Any] | None = Field(None, description="replaces the configuration; "
                                          "secret fields left out keep their stored value")


class SourceOut(BaseModel):
    id: int
    type: str
    name: str
    config: dict[str, Any]
    secrets_set: list[str] = Field(description="secret fields that hold a value (never shown)")
    download_url: str | None = Field(description="uploaded files: the file with the outputs "
                                                 "written in")
    created_at: str
    updated_at: str


class SourceList(BaseModel):
    data: list[SourceOut]


class SourceTestOut(BaseModel):
    ok: bool
    title: str
    columns: list[str]
    rows: int
    sample: dict[str, Any] | None = Field(None, description="JSON sources: the first object, "
                                          "flattened as a mapping sees it")


class RowsQuery(Strict):
    limit: int = Field(20, ge=1, le=1000)


class RowOut(BaseModel):
    row: int = Field(description="the row's number in the sheet")
    values: dict[str, str]


class RowsOut(BaseModel):
    columns: list[str]
    rows: list[RowOut]


class ConnectorTypeOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    name: str
    writable: bool
    schema_: dict[str, Any] = Field(alias="schema")


class ConnectorTypeList(BaseModel):
    data: list[ConnectorTypeOut]


class OutputSpec(Strict):
    url_column: str = Field("Image", min_length=1, max_length=200)
    status_column: str | None = Field(None, min_length=1, max_length=200)
    thumbnail_column: str | None = Field(None, min_length=1, max_length=200)


PollSeconds = Field(60, ge=0, le=86_400, description="0 turns polling off; at least 30")


class BindingIn(Strict):
    template: int = Field(ge=1, le=MAX_ID)
    source: int = Field(ge=1, le=MAX_ID)
    mapping: dict[str, str] = Field(default_factory=dict, description="template variable -> "
                                    "column header; variables left out are auto-mapped")
    output: OutputSpec = Field(default_factory=OutputSpec)
    key_column: str | None = Field(None, max_length=200)
    filter_column: str | None = Field(None, max_length=200)
    format: Format = "png"
    size: str | None = None
    poll_seconds: int = PollSeconds


class BindingUpdate(Strict):
    template: int | None = Field(None, ge=1, le=MAX_ID)
    mapping: dict[str, str] | None = None
    output: OutputSpec | None = None
    key_column: str | None = Field(None, max_length=200)
    filter_column: str | None = Field(None, max_length=200)
    format: Format | None = None
    size: str | None = None
    poll_seconds: int | None = Field(None, ge=0, le=86_400)


class BindingOut(BaseModel):
    id: int
    template: int
    source: int
    mapping: dict[str, str]
    output: dict[str, Any]
    key_column: str | None
    filter_column: str | None
    format: str
    size: str | None
    poll_seconds: int | None
    status: Literal["idle", "queued", "running", "ok", "error", "reconnect"]
    error: dict[str, Any] | None
    inbound_url: str
    last_synced_at: str | None
    next_poll_at: str | None
    created_at: str
    updated_at: str


class BindingList(BaseModel):
    data: list[BindingOut]


class RunOut(BaseModel):
    id: int
    binding: int
    trigger: str
    status: Literal["queued", "reading", "rendering", "completed", "failed"]
    version: int | None
    rows_seen: int
    rows_skipped: int
    rows_current: int
    to_render: int
    rendered: int
    written: int
    errors: int
    requests: int
    error: dict[str, Any] | None
    started_at: str
    finished_at: str | None


class RunList(BaseModel):
    data: list[RunOut]


class GoogleConnectOut(BaseModel):
    authorize_url: str


class GoogleAccountOut(BaseModel):
    id: int
    email: str
    status: Literal["connected", "reconnect"]
    created_at: str
    updated_at: str


class GoogleAccountList(BaseModel):
    data: list[GoogleAccountOut]


# ---------------------------------------------------------------- live banners (SPEC 8)

LiveFormat = Literal["png", "jpeg", "jpg", "webp", "avif", "gif"]


class LiveIn(Strict):
    template: int = Field(ge=1, le=MAX_ID)
    version: int | None = Field(None, ge=1, le=MAX_ID, description="the latest when omitted")
    source: int | None = Field(None, ge=1, le=MAX_ID, description="a json_http source; "
                               "without one the banner shows the data pushed to it")
    name: str | None = Field(None, max_length=200)
    mapping: dict[str, str] = Field(default_factory=dict, description="template variable -> "
                                    "key of the selected object (nested keys dotted: "
                                    "price.amount); variables left out are auto-mapped")
    format: LiveFormat = "png"
    size: str | None = None
    refresh_seconds: int | None = Field(None, ge=1, le=86_400, description="the source's "
                                        "refresh_seconds when omitted")
    data: dict[str, Any] | None = Field(None, description="first data (banners without a "
                                        "source)")


class LiveUpdate(Strict):
    template: int | None = Field(None, ge=1, le=MAX_ID)
    version: int | None = Field(None, ge=1, le=MAX_ID)
    name: str | None = Field(None, max_length=200)
    mapping: dict[str, str] | None = None
    format: LiveFormat | None = None
    size: str | None = None
    refresh_seconds: int | None = Field(None, ge=1, le=86_400)


class LiveOut(BaseModel):
    id: int
    slug: str
    name: str | None
    url: str = Field(description="/live/<slug>.<ext>: the current picture")
    data_url: str = Field(description="POST data here (API key with the render scope)")
    inbound_url: str = Field(description="POST data here without a key (Zapier, Make)")
    template: int
    version: int | None
    source: int | None
    mapping: dict[str, str]
    format: str
    size: str | None
    refresh_seconds: int
    status: Literal["ok", "error"]
    error: dict[str, Any] | None = Field(description="the last refresh's error; the last good "
                                         "picture is still served")
    data: dict[str, Any] | None
    data_origin: Literal["source", "push"] | None
    render_key: str | None
    render_url: str | None = Field(description="the current picture's permanent /r/ URL")
    refreshes: int
    renders: int
    refreshed_at: str | None
    changed_at: str | None
    next_refresh_at: str | None
    created_at: str
    updated_at: str


class LiveList(BaseModel):
    data: list[LiveOut]


# ---------------------------------------------------------------- experiments (SPEC 9)


class VariantIn(Strict):
    template: int = Field(ge=1, le=MAX_ID)
    version: int | None = Field(None, ge=1, le=MAX_ID, description="the latest when omitted")
    weight: float = Field(1, gt=0, le=1_000_000)


class ExperimentIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    variants: list[VariantIn] = Field(min_length=2, max_length=10)
    goal_url: str = Field(min_length=1, max_length=2000, description="where clicks go")
    format: LiveFormat = "png"
    variables: dict[str, Any] = Field(default_factory=dict, description="the data every "
                                      "variant is rendered with")


class VariantOut(BaseModel):
    index: int
    template: int
    version: int
    weight: float
    share: float = Field(description="the part of the traffic it gets now")
    image_url: str
    impressions: int
    clicks: int
    rate: float = Field(description="clicks / impressions")
    probability_best: float = Field(description="P(its rate is the highest), from Beta(1 + "
                                    "clicks, 1 + impressions - clicks) posteriors")


class ExperimentOut(BaseModel):
    id: int
    name: str
    image_url: str = Field(description="/x/<id>.<ext>: embed this")
    click_url: str = Field(description="/x/<id>/click: link the image to this")
    goal_url: str
    format: str
    variables: dict[str, Any]
    variants: list[VariantOut]
    winner: int | None
    winner_at: str | None
    clicks_without_visitor: int = Field(description="clicks that came without a visitor id "
                                        "or cookie: sent to the goal, not counted")
    created_at: str


class ExperimentList(BaseModel):
    data: list[ExperimentOut]


class WinnerIn(Strict):
    variant: int = Field(ge=0, description="the winning variant's index")
