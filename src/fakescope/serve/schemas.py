"""The API's request and response bodies. Their field descriptions are the API documentation (/docs)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fakescope.detect.result import Result
from fakescope.serve.stats import MAX_PAGE_SECONDS

JobStatus = Literal["queued", "running", "done", "failed"]
FACES_URL_TEMPLATE = "/v1/jobs/{id}/faces/{track_id}.jpg"


class ErrorOut(BaseModel):
    """Every error the API answers: one line a person can act on."""

    detail: str = Field(description="what went wrong, in one line", examples=["file too large: the limit is 50 MiB"])


class JobOut(BaseModel):
    """One analysis: queued, running, or finished with its Result."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="job id (32 hex characters)")
    status: JobStatus = Field(description="queued → running → done | failed")
    kind: Literal["job", "detect"] = Field(description="'job' (POST /v1/jobs, asynchronous) or 'detect' (POST /v1/detect)")
    filename: str = Field(description="the name the file was sent with (display only)")
    sha256: str = Field(description="sha256 of the file's content")
    size: int = Field(description="file size in bytes")
    media_type: str | None = Field(None, description="image, video or audio (sniffed from the content)")
    source: Literal["upload", "path", "url"] = Field(description="how the file reached the service")
    cached: bool = Field(description="answered from an earlier analysis of the same content with the same models")
    force: bool = Field(description="the caller asked for a fresh analysis even if one was stored")
    created_at: dt.datetime = Field(description="when the job was submitted (UTC)")
    started_at: dt.datetime | None = Field(None, description="when a worker last started it (UTC)")
    finished_at: dt.datetime | None = Field(None, description="when it finished (UTC)")
    attempts: int = Field(description="times a worker started it (a crashed worker makes it run again, 3 at most)")
    error: str | None = Field(None, description="why a failed job failed")
    webhook_status: str | None = Field(None, description="'delivered' or 'failed: <why>' once the webhook was sent")
    verdict: str | None = Field(None, description="authentic, suspicious or manipulated, when the file could be scored")
    score: float | None = Field(None, description="calibrated P(fake), when the file could be scored")
    result: Result | None = Field(None, description="the full Result, once done (the same object as `fakescope detect --json`)")
    faces_url_template: str = Field(
        FACES_URL_TEMPLATE, description="where each face track's thumbnail is: fill in {id} and a track_id of result.faces"
    )


class JobPage(BaseModel):
    """A page of the caller's jobs, newest first."""

    items: list[JobOut]
    total: int = Field(description="jobs matching the filters, all pages together")
    limit: int
    offset: int


class DayUses(BaseModel):
    date: dt.date = Field(description="UTC calendar day")
    uses: int = Field(description="analyses that day")


class Stats(BaseModel):
    """Usage figures over the last `days` days (UTC), from analyses and page beacons."""

    days: list[DayUses] = Field(description="analyses per day, oldest first, days without use included")
    uses: int = Field(description="analyses in the window")
    unique_users: int = Field(description="distinct users (API keys, page sessions) with an analysis in the window")
    returning_share: float | None = Field(
        None, description="among users whose first analysis is in the window, the share who made a second one"
    )
    median_time_on_page_s: float | None = Field(None, description="median time spent on the web page, in seconds")
    verdict_mix: dict[str, int] = Field(description="analyses per verdict (or not_applicable / error)")
    scope: Literal["caller", "all"] = Field(
        "caller", description="'caller': the caller's own usage; 'all': every user's (admin keys only)"
    )


class ModelInfo(BaseModel):
    """One detector loaded by the workers."""

    name: str = Field(description="registered model name (see `fakescope models`)")
    version: str = Field(description="first 12 hex characters of the weights' sha256")
    input_kind: Literal["face", "image", "audio"] = Field(description="face crops, whole pictures, or speech")
    thresholds: dict[str, float] = Field(description="the verdict bands of this model's card (P(fake) cut-offs)")


class ModelsOut(BaseModel):
    """What the workers analyse with: detectors, face detector and frames per video."""

    models: list[ModelInfo]
    face_detector: str
    frames: int = Field(description="frames sampled per video")
    versions: dict[str, str] = Field(description="model_versions every Result carries")
    fingerprint: str = Field(
        description="hash of everything that shapes a Result; stored results are reused only while it is unchanged"
    )


class BeaconIn(BaseModel):
    """A page view, or the time spent on the page, sent by the web page."""

    model_config = ConfigDict(extra="forbid")

    event: Literal["page_view", "page_time"]
    seconds: float = Field(
        0.0, ge=0, le=MAX_PAGE_SECONDS, allow_inf_nan=False, description="time on page in seconds (page_time only)"
    )


class SessionOut(BaseModel):
    """Who the caller is: the key it signed in with, or, without keys (--no-auth), its client id."""

    owner: str = Field(description="what the caller's jobs and usage are filed under: 'key:<id>' or 'local:<client id>'")
    auth: Literal["key", "none"] = Field(
        description="'key': an API key (or a page session signed in with one); 'none': no key, in --no-auth mode"
    )
    key_name: str | None = Field(None, description="the key's name, when signed in with one")
    admin: bool = Field(False, description="an admin key: sees every user's usage in GET /v1/stats")


class Health(BaseModel):
    status: Literal["ok", "ready"] = Field(description="'ok' from /healthz (the process is up), 'ready' from /readyz")
