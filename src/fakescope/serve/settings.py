"""Service settings: flags of `fakescope serve`, or FAKESCOPE_* environment variables."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fakescope.detect.options import AUTO, DEFAULT_OPTIONS, DetectorOptions, model_choice

MIB = 1024 * 1024
# One address gets this many API keys' worth of requests by default (rate_limit_per_address_per_minute).
ADDRESS_LIMIT_FACTOR = 4


class ServeSettings(BaseSettings):
    """Everything the service can be told. Defaults suit one analyst on a laptop."""

    model_config = SettingsConfigDict(env_prefix="FAKESCOPE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    db_url: str | None = Field(None, description="SQLAlchemy URL; default a SQLite file in data_dir")
    data_dir: Path = Field(Path("fakescope-data"), description="uploads (content-addressed), face thumbnails, SQLite file")
    workers: int = Field(1, ge=1, le=64, description="worker processes for jobs")
    detect_workers: int = Field(1, ge=1, le=64, description="worker processes for synchronous POST /v1/detect")
    no_auth: bool = Field(False, description="no API key needed (local use only)")
    max_upload_bytes: int = Field(500 * MIB, ge=1)
    max_detect_bytes: int = Field(50 * MIB, ge=1, description="upload limit of the synchronous POST /v1/detect")
    detect_timeout_s: float = Field(120.0, gt=0)
    batch_window_ms: float = Field(
        5.0,
        ge=0,
        le=1000,
        description=(
            "POST /v1/detect requests arriving this close together (or while the detect workers are busy) go to a worker "
            "as one batch whose model calls share forwards; 0: one request per call"
        ),
    )
    batch_max_files: int = Field(8, ge=1, le=256, description="most files in one detect batch")
    job_timeout_s: float = Field(1800.0, gt=0)
    rate_limit_per_minute: int = Field(120, ge=1, description="requests per minute per API key (its page sessions included)")
    rate_limit_per_address_per_minute: int | None = Field(
        None,
        ge=1,
        description=(
            "requests per minute from one client address, all its keys and sessions together (IPv6: per /64), so a new "
            f"key or client id does not reset it; default {ADDRESS_LIMIT_FACTOR} × rate_limit_per_minute"
        ),
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description=(
            "addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For names the client; "
            "empty: the header is ignored and the peer address is the client"
        ),
    )
    beacon_per_minute: int = Field(30, ge=1, description="web-page usage beacons per minute per caller and per address")
    allowed_roots: list[Path] = Field(default_factory=list, description="server folders a job may name by path")
    url_hosts: list[str] = Field(default_factory=list, description="hosts a job may name by URL")
    cors_origins: list[str] = Field(default_factory=list, description="CORS is off unless origins are listed")
    webhook_hosts: list[str] = Field(default_factory=list, description="hosts webhooks may reach; empty: any public host")
    egress_allow: list[str] = Field(
        default_factory=list,
        description=(
            "host names, addresses or networks (CIDR) that webhooks and URL jobs may reach although they are not public "
            "(loopback, private, link-local...); empty: public addresses only"
        ),
    )
    retention_days: float = Field(
        30.0, ge=0, description="finished jobs, their uploads and face thumbnails are removed this long after; 0: kept forever"
    )
    max_storage_bytes: int = Field(
        20 * 1024 * MIB, ge=0, description="disk budget of the stored uploads (507 when full, 413 for a larger file); 0: none"
    )
    min_free_disk_bytes: int = Field(
        1024 * MIB, ge=0, description="an upload that would leave less free disk than this is refused (507)"
    )
    webhook_secret: str | None = Field(None, description="HMAC key of webhook signatures; default one kept in data_dir")
    session_secret: str | None = Field(None, description="HMAC key of web-page sessions; default one kept in data_dir")
    web_page: bool = True
    model: str = DEFAULT_OPTIONS.model
    frames: int = Field(DEFAULT_OPTIONS.frames, ge=1, le=512)
    face_detector: str = DEFAULT_OPTIONS.face_detector
    backend: str = Field(DEFAULT_OPTIONS.backend, description="auto (ONNX Runtime where a model ships an export), onnx or torch")
    image_model: str = AUTO
    audio_model: str = AUTO
    audio_weight: float = Field(DEFAULT_OPTIONS.audio_weight, ge=0.0, le=1.0)

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            ip_network(proxy.strip(), strict=False)  # a ValueError is a clear settings error
        return [proxy.strip() for proxy in proxies]

    @field_validator("allowed_roots")
    @classmethod
    def _resolve_roots(cls, roots: list[Path]) -> list[Path]:
        return [Path(r).expanduser().resolve() for r in roots]

    def address_rate_limit(self) -> int:
        """Requests a minute one client address may make: a few callers behind one NAT each keep their full budget."""
        return self.rate_limit_per_address_per_minute or ADDRESS_LIMIT_FACTOR * self.rate_limit_per_minute

    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{(self.data_dir / 'fakescope.db').resolve()}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def thumb_dir(self) -> Path:
        return self.data_dir / "thumbs"

    def detector_options(self) -> DetectorOptions:
        """The Detector the service's workers analyse with; how it runs (threads, batching) is up to them."""
        return DetectorOptions(
            model=self.model,
            frames=self.frames,
            face_detector=self.face_detector,
            backend=self.backend,
            image_model=model_choice(self.image_model),
            audio_model=model_choice(self.audio_model),
            audio_weight=self.audio_weight,
        )
