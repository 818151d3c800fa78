"""The one settings object: a TOML file (``--config`` / ``LWORK_CONFIG``) and ``LWORK_*`` env.

Environment variables override the file; nested keys use a double underscore, e.g.
``LWORK_DATABASE__URL=postgresql+asyncpg://…`` or ``LWORK_HTTP__PORT=8080``. Unknown keys are
rejected at start-up, so a typo in a config file fails loudly instead of being ignored.
Code below the composition root receives only the section it needs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class HttpSettings(Section):
    host: str = "127.0.0.1"
    """Address the API listens on. Use 0.0.0.0 to serve apps on the network."""
    port: int = Field(8080, ge=0, le=65535)
    """TCP port of the API (the original served 8080)."""
    body_limit: int = Field(64 * 1024, ge=1024)
    """Largest request body accepted, in bytes; larger bodies get 413."""
    trusted_proxies: list[str] = []
    """Peer addresses whose X-Forwarded-For is believed for the client IP (rate limits, media)."""
    ip_rate_per_minute: int = Field(600, ge=1)
    """Requests per minute one client IP may make to the mobile API before 429."""
    gc_freeze_survivors: bool = True
    """Exempt objects that survived a full garbage collection from later ones. With tens of
    thousands of held long polls a full collection otherwise stalls every request for seconds;
    false restores CPython's defaults."""
    gc_release_every_s: float = Field(3600.0, ge=0)
    """How often the exempt objects are handed back to the collector for one complete pass,
    so any garbage among them is reclaimed (0: never)."""


class DatabaseSettings(Section):
    url: str = ""
    """SQLAlchemy async URL. Empty: SQLite file ``lwork.db`` in the data directory.
    PostgreSQL: ``postgresql+asyncpg://user@host/db``."""
    pool_size: int = Field(10, ge=1)
    """Connections kept open to PostgreSQL (ignored for SQLite)."""


class AuthSettings(Section):
    require_token: bool = False
    """False (existing apps): a uuid with a live session is accepted, from that session's device.
    True (strict): every authenticated request must present the login token."""
    session_ttl_s: int = Field(30 * 24 * 3600, ge=60)
    """A session not used for this long ends (seconds)."""
    argon2_time_cost: int = Field(2, ge=1)
    """Argon2id iterations (OWASP minimum: 2 with 19 MiB)."""
    argon2_memory_kib: int = Field(19 * 1024, ge=1024)
    """Argon2id memory per hash in KiB (OWASP: 19 MiB)."""
    argon2_parallelism: int = Field(1, ge=1)
    """Argon2id lanes."""
    hash_workers: int = Field(2, ge=1)
    """Threads that compute password hashes, off the event loop."""
    hash_queue: int = Field(64, ge=1)
    """Password checks allowed to wait for a hash thread; more get 429 so a login flood cannot
    starve the server."""
    login_per_minute_per_ip: int = Field(30, ge=1)
    """Login / password attempts per minute from one IP."""
    login_per_hour_per_account: int = Field(30, ge=1)
    """Failed password attempts per hour on one account before 429."""


class SmsSettings(Section):
    provider: Literal["log", "http"] = "log"
    """``log`` writes codes to the server log (development only; refused when env=production);
    ``http`` posts to an SMS gateway."""
    gateway_url: str = ""
    """SMS gateway URL (provider=http)."""
    gateway_format: Literal["json", "form"] = "json"
    """How the gateway wants the request body."""
    gateway_template: dict[str, str] = {"to": "{phone}", "text": "{text}"}
    """Body fields; values may use {phone}, {code}, {text}."""
    gateway_auth_header: SecretStr = SecretStr("")
    """Value of the Authorization header sent to the gateway (secret; never logged)."""
    gateway_success_field: str = ""
    """If set, the gateway's JSON answer must have this field ..."""
    gateway_success_value: str = ""
    """... equal to this value (as text) for the send to count as a success."""
    gateway_timeout_s: float = Field(10.0, gt=0)
    """Timeout of one gateway request."""
    text: str = "Your verification code is {code}. It expires in 10 minutes."
    """Message text; {code} is replaced by the code."""
    code_ttl_s: int = Field(600, ge=30)
    """How long a code stays valid (seconds)."""
    max_attempts: int = Field(5, ge=1)
    """Wrong entries that burn a code."""
    resend_interval_s: int = Field(60, ge=0)
    """Minimum time between two sends to one number (seconds)."""
    per_number_per_day: int = Field(10, ge=1)
    """Sends per number per 24 h."""
    per_ip_per_hour: int = Field(20, ge=1)
    """Sends requested by one IP per hour."""


class RetrySettings(Section):
    max_attempts: int = Field(4, ge=1)
    """Attempts per push in total, the first included."""
    base_delay_s: float = Field(0.5, ge=0)
    """Backoff before the first retry; doubles for each further retry."""
    max_delay_s: float = Field(8.0, ge=0)
    """Cap on the computed backoff."""
    max_retry_after_s: float = Field(60.0, ge=0)
    """A provider asking to wait longer than this ends the retries (a late call push is useless)."""
    attempt_timeout_s: float = Field(20.0, gt=0)
    """Hard bound on one attempt, token exchange included."""


class BaiduSettings(Section):
    enabled: bool = False
    """Wake Android apps through Baidu Cloud Push (channel ids from baidu_push_register)."""
    api_key: str = ""
    """The app's API key."""
    secret_key: SecretStr = SecretStr("")
    """The app's secret key; used only to sign requests."""
    base_url: str = "https://api.tuisong.baidu.com/rest/3.0"
    """REST API v3 base URL."""
    device_type: int = 3
    """3 = Android, 4 = iOS."""
    deploy_status: int = 2
    """iOS only: 1 = development, 2 = production."""
    timeout_s: float = Field(10.0, gt=0)
    """Timeout of one request."""
    max_in_flight: int = Field(64, ge=1)
    """Concurrent requests."""
    max_queued: int = Field(1024, ge=0)
    """Sends waiting for a slot before new ones are refused."""


class FcmSettings(Section):
    enabled: bool = False
    """Wake Android apps through Firebase Cloud Messaging (HTTP v1)."""
    service_account_file: Path | None = None
    """The Google service-account JSON key file."""
    project_id: str | None = None
    """Defaults to the service account's project."""
    base_url: str = "https://fcm.googleapis.com"
    """FCM API base URL."""
    token_uri: str | None = None
    """OAuth2 token endpoint; defaults to the service account's."""
    timeout_s: float = Field(10.0, gt=0)
    """Timeout of one request."""
    max_in_flight: int = Field(100, ge=1)
    """Concurrent requests."""
    max_queued: int = Field(1000, ge=0)
    """Sends waiting for a slot before new ones are refused."""


class ApnsSettings(Section):
    enabled: bool = False
    """Wake iOS apps through APNs (token-based auth)."""
    team_id: str = ""
    """10-character Team ID."""
    key_id: str = ""
    """Key ID of the .p8 signing key."""
    private_key_file: Path | None = None
    """The .p8 signing key."""
    bundle_id: str = ""
    """The app's bundle id (apns-topic); VoIP pushes use <bundle_id>.voip."""
    base_url: str = "https://api.push.apple.com"
    """Production; the sandbox is https://api.sandbox.push.apple.com."""
    timeout_s: float = Field(10.0, gt=0)
    """Timeout of one request."""
    max_in_flight: int = Field(100, ge=1)
    """Concurrent streams."""
    max_queued: int = Field(1000, ge=0)
    """Sends waiting for a slot before new ones are refused."""


class BusSettings(Section):
    url: str = ""
    """Empty: in-process (one node). ``redis://host:6379/0``: several API nodes share events,
    kicks and held-poll presence through Redis."""


class PushSettings(Section):
    hold_s: float = Field(60.0, gt=0)
    """How long a long poll is held before answering shake_hand (seconds)."""
    invite_ttl_s: float = Field(90.0, gt=0)
    """A call invitation left undelivered expires after this long (seconds)."""
    mailbox_size: int = Field(100, ge=1)
    """Events kept per device; the oldest are dropped (and counted) beyond it."""
    account_event_ttl_s: float = Field(86400.0, gt=0)
    """How long an account event (not a call) waits in a mailbox (seconds)."""
    retry: RetrySettings = RetrySettings()
    baidu: BaiduSettings = BaiduSettings()
    fcm: FcmSettings = FcmSettings()
    apns: ApnsSettings = ApnsSettings()


class CallSettings(Section):
    p2p_fallback_s: float = Field(5.0, gt=0)
    """An app call the callee's app has not rung within this long (counted from the caller's
    first RTP packet, or from the start when none came) goes to the callee's real phone."""
    ring_timeout_s: float = Field(60.0, gt=0)
    """An app call not answered within this long is released."""
    keepalive_s: float = Field(60.0, gt=0)
    """A leg whose owner neither reads its status nor sends RTP for this long is released."""
    payload_mode: str = "normal"
    """``payload_mode`` told to the apps (the original sent ``normal``)."""
    stats_refresh_s: float = Field(2.0, ge=1.0)
    """How often a call's live quality is fetched from the relay while someone reads it (the
    original recomputed it every 2 s); status reads in between answer from the cache."""
    callback_max_s: float = Field(4 * 3600.0, gt=0)
    """A callback (``/lwork/mobile/callback``, two SIP legs) is hung up after this long at the
    latest: it needs no keep-alive from the app, so this bounds a forgotten one."""
    forward_timeout_s: float = Field(2.0, gt=0)
    """With several nodes, a request for a call held by another node (its session id names the
    node) waits this long for that node's answer over the bus; then the call counts as gone."""


class MediaSettings(Section):
    ng_url: str = ""
    """``udp://host:port`` of an rtpengine-compatible relay (ng protocol). Empty: lwork starts
    its built-in relay."""
    relay_mode: Literal["process", "inline"] = "process"
    """The built-in relay runs as a child process (``process``, a core of its own) or inside the
    API's event loop (``inline``: tests and tiny installations)."""
    bind_host: str = "127.0.0.1"
    """Address the built-in relay's RTP/RTCP sockets bind to."""
    advertised_address: str = ""
    """Relay address told to the apps (public IP behind 1:1 NAT); empty: ``bind_host``."""
    port_min: int = Field(30000, ge=1024, le=65534)
    """Lowest RTP port of the built-in relay (RTP even, RTCP + 1)."""
    port_max: int = Field(40000, ge=1025, le=65535)
    """Highest RTP port of the built-in relay."""
    media_timeout_s: float = Field(60.0, gt=0)
    """A call without any media for this long is deleted by the relay."""
    rtcp_interval_s: float = Field(5.0, gt=0)
    """The built-in relay's own RTCP reports to each phone (RTT measurement; loss interval)."""
    connected_peers: bool = True
    """The built-in relay gives each latched phone a ``connect()``ed socket of its own on the
    leg's port: about 15 % less CPU per packet, for up to twice the file descriptors (raise
    ``ulimit -n`` to 4 x calls + some). Off: one shared socket per port."""
    ng_timeout_s: float = Field(1.0, gt=0)
    """Wait for one ng reply before retransmitting (three tries)."""


class SipSettings(Section):
    enabled: bool = False
    """Connect to a carrier's SIP trunk (calls to and from real phones). Off: such calls fail
    cleanly and app-to-app calls do not fall back."""
    proxy_host: str = "127.0.0.1"
    """The carrier's SIP proxy (or its session border controller)."""
    proxy_port: int = Field(5060, ge=1, le=65535)
    """Its port."""
    transport: Literal["udp", "tcp"] = "udp"
    """Transport toward the carrier."""
    listen_host: str = "127.0.0.1"
    """Address lwork's SIP user agent binds to."""
    listen_port: int = Field(5060, ge=0, le=65535)
    """Its port (0: any free port, for tests)."""
    advertised_host: str = ""
    """Address written into Via/Contact when behind NAT; empty: ``listen_host``."""
    domain: str = ""
    """Host part of request URIs; empty: the proxy host."""
    registrar: str = ""
    """``host[:port]`` to REGISTER with; empty: no registration (IP-authenticated trunk)."""
    username: str = ""
    """Digest user name for REGISTER and challenged INVITEs."""
    password: SecretStr = SecretStr("")
    """Digest password (never logged)."""
    register_expires: int = Field(600, ge=60)
    """Registration lifetime asked for (seconds); refreshed before it runs out."""
    codecs: list[str] = ["AMR", "PCMA", "PCMU", "telephone-event"]
    """Codecs offered and accepted, in preference order."""
    number_rules: list[tuple[str, str]] = [("00", "+")]
    """E.164 normalisation: (prefix to strip, prefix to put instead), first match wins."""
    default_country_code: str = ""
    """Country code for national numbers no rule matched (e.g. 86)."""
    dial_with_plus: bool = True
    """Send numbers as +E.164 (false: digits only)."""
    max_concurrent_calls: int = Field(100, ge=1)
    """SIP calls at once, both directions."""
    calls_per_second: float = Field(10.0, gt=0)
    """Outbound call attempts per second."""
    trusted_sources: list[str] = []
    """Addresses or CIDR ranges allowed to send requests (the proxy is always trusted)."""
    options_interval_s: float = Field(30.0, ge=0)
    """OPTIONS keep-alive toward the proxy (0: off)."""
    ring_timeout_s: float = Field(120.0, gt=0)
    """An outbound call not answered within this long is cancelled."""
    caller_id: Literal["did_else_uuid", "uuid"] = "did_else_uuid"
    """Caller id of outbound calls: the DID bound to the account, else its uuid; or always
    the uuid."""
    inbound_ring_s: float = Field(60.0, gt=0)
    """An inbound call the app has not rung within this long is refused with 480."""


class BillingSettings(Section):
    call_coins_per_minute: float = Field(3.0, ge=0)
    """Coins a ``common`` account pays per started minute of a call to a phone number (through
    the SIP trunk, including an app call that fell back to the callee's phone). The original
    charged 3. ``dth`` accounts pay one package minute per started minute instead."""
    callback_coins_per_leg_minute: float = Field(2.5, ge=0)
    """Coins per started minute of each of a callback's two legs (the original: 2.5)."""
    signup_gift_coins: float = Field(0.0, ge=0)
    """Gift coins credited once to every newly registered ``common`` account."""
    signup_gift_minutes: int = Field(0, ge=0)
    """Package minutes credited once to every newly registered ``dth`` account."""
    warning_s: float = Field(60.0, ge=0)
    """A call capped by its balance gets a ``talk_time_warning`` event this long before the
    cap hangs it up (0: no warning)."""
    timezone: str = "UTC"
    """Time zone whose calendar months ``month_consumed`` counts (e.g. ``Asia/Shanghai``)."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except Exception as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class PresenceSettings(Section):
    window_s: float = Field(180.0, gt=0)
    """A device counts as online this long after its last poll (seconds)."""


class Settings(BaseSettings):
    """All of lwork's knobs. Every field has a default that runs a development server."""

    model_config = SettingsConfigDict(
        env_prefix="LWORK_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    env: Literal["development", "production"] = "development"
    """``production`` refuses development-only conveniences (the log SMS provider)."""
    node: str = "n1"
    """This node's name: the prefix of call session ids, so any node can route a call request."""
    data_dir: Path = Path("./var")
    """Where the embedded SQLite database and other local state live."""
    log_level: str = "INFO"
    """Python logging level."""
    secret_key: SecretStr = SecretStr("")
    """Key for HMACs of SMS codes. Set the same value on every node; empty: generated once into
    ``data_dir/secret.key`` (fine for one node)."""
    http: HttpSettings = HttpSettings()
    database: DatabaseSettings = DatabaseSettings()
    auth: AuthSettings = AuthSettings()
    sms: SmsSettings = SmsSettings()
    push: PushSettings = PushSettings()
    bus: BusSettings = BusSettings()
    calls: CallSettings = CallSettings()
    media: MediaSettings = MediaSettings()
    sip: SipSettings = SipSettings()
    presence: PresenceSettings = PresenceSettings()
    billing: BillingSettings = BillingSettings()

    @field_validator("node")
    @classmethod
    def _node_is_plain(cls, value: str) -> str:
        if not value or "@" in value or "/" in value:
            raise ValueError("node must be non-empty without '@' or '/'")
        return value

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.data_dir / 'lwork.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get("LWORK_CONFIG")
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(path)))
        return tuple(sources)


def load_settings(config: str | None = None, **overrides: Any) -> Settings:
    """Load settings from ``config`` (or ``LWORK_CONFIG``) and the environment."""
    if config is not None:
        if not Path(config).is_file():
            raise FileNotFoundError(f"config file not found: {config}")
        os.environ["LWORK_CONFIG"] = config
    elif os.environ.get("LWORK_CONFIG") and not Path(os.environ["LWORK_CONFIG"]).is_file():
        raise FileNotFoundError(f"config file not found: {os.environ['LWORK_CONFIG']}")
    settings = Settings(**overrides)
    if settings.env == "production" and settings.sms.provider == "log":
        raise ValueError("sms.provider = 'log' is for development only; configure sms.provider")
    return settings
