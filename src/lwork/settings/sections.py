"""The sections of the settings object (see lwork.settings), but push and SIP, which have
modules of their own. Every field carries its default and a docstring."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from lwork.settings.base import Section as Section  # re-exported: the sections import it here
from lwork.settings.payments import ProductSettings, default_products, unique_ids


class HttpSettings(Section):
    host: str = "127.0.0.1"
    """Address the API listens on. Use 0.0.0.0 to serve apps on the network."""
    port: int = Field(8080, ge=0, le=65535)
    """TCP port of the API (the original served 8080)."""
    body_limit: int = Field(64 * 1024, ge=1024)
    """Largest request body accepted, in bytes; larger bodies get 413."""
    tls_cert: Path | None = None
    """PEM certificate chain to serve HTTPS with (``tls_key`` too). Unset: plain HTTP, for a
    reverse proxy that ends TLS (README, "Running in production")."""
    tls_key: Path | None = None
    """PEM private key of ``tls_cert``."""
    trusted_proxies: list[str] = []
    """Addresses or CIDR networks of our own proxies, whose X-Forwarded-For entries are
    believed: the client is the rightmost entry that is not one of them (rate limits, media)."""
    ip_rate_per_minute: int = Field(600, ge=1)
    """Requests per minute one client IP may make to the mobile API before 429."""
    gc_freeze_survivors: bool = True
    """Exempt objects that survived a full garbage collection from later ones. With tens of
    thousands of held long polls a full collection otherwise stalls every request for seconds;
    false restores CPython's defaults."""
    gc_release_every_s: float = Field(3600.0, ge=0)
    """How often the exempt objects are handed back to the collector for one complete pass,
    so any garbage among them is reclaimed (0: never)."""
    workers: int = Field(1, ge=1, le=64)
    """API worker processes serving the one port (1: this process serves, as always). Each
    holds as many long polls as ``ulimit -n`` allows and uses a core; a supervising parent
    migrates once, restarts a worker that dies and stops them all on SIGTERM. Each worker is a
    node named ``<node>-w<i>`` with its own slice of ``media.port_min..port_max`` and SIP port
    ``sip.listen_port + i``; without ``bus.url`` the parent hosts a local bus for them (README,
    "Several API workers on one machine")."""
    shared_limits: bool = True
    """With ``workers`` > 1: the workers' in-process rate limits (``ip_rate_per_minute``,
    ``auth.login_per_minute_per_ip``, ``admin.sign_in_per_minute``) hold for the whole machine
    — each worker reports its counts to the others every 0.1 s, so one address gets the limit,
    give or take a little (with 2 workers at most the limit + 2 when reports are prompt;
    README, "Several API workers on one machine"). False: each worker counts alone (the limits
    hold per worker, the login limit divided among them): for measuring what sharing costs."""

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        from ipaddress import ip_network

        for entry in value:
            ip_network(entry.strip(), strict=False)  # ValueError names the bad entry
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> HttpSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("http.tls_cert and http.tls_key go together: set both or neither")
        for name, path in (("tls_cert", self.tls_cert), ("tls_key", self.tls_key)):
            if path is not None and not path.is_file():
                raise ValueError(f"http.{name}: no such file {path}")
        return self


class DatabaseSettings(Section):
    url: str = ""
    """SQLAlchemy async URL. Empty: SQLite file ``lwork.db`` in the data directory.
    PostgreSQL: ``postgresql+asyncpg://user@host/db``."""
    pool_size: int = Field(10, ge=1)
    """Connections kept open to PostgreSQL by each serving process (ignored for SQLite). A
    process opens up to ``2 × pool_size + 10``: the shared pool (``pool_size``, and 10 more at
    busy moments) and the push mailboxes' pool of its own (``pool_size``, one autocommit
    statement per event). Keep nodes × ``http.workers`` × that under PostgreSQL's
    ``max_connections`` (100 by default), or put PgBouncer in front: ``lwork serve`` logs an
    error at start, with the largest ``pool_size`` that fits, when its own processes do not."""


class AuthSettings(Section):
    require_token: bool = False
    """False (existing apps): a request without a token is accepted for a uuid with a live
    session when its device id (where the route has one) is the session's, and, on routes that
    spend money, change the account or its push target or read the balance, when it comes from
    the network of the session's current long poll (CONTRACT §3). True (strict): every
    authenticated request and every long poll must present the login token."""
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
    """Login / password attempts per minute from one client (IPv4 address or IPv6 /64)."""
    login_free_failures: int = Field(5, ge=1)
    """Wrong passwords one client address may give for one account (or for one dth number's
    activation password) before it waits between attempts; a right one starts over."""
    login_backoff_base_s: float = Field(1.0, gt=0)
    """The first wait after ``login_free_failures``; it doubles with each further failure."""
    login_backoff_max_s: float = Field(900.0, gt=0)
    """The longest wait between two attempts of one client address on one account."""
    login_per_hour_per_account: int = Field(30, ge=1)
    """Wrong passwords per hour on one account from addresses it has never logged in from
    (many addresses guessing together); beyond, those get 429 until a slot frees (about
    3600 / this seconds). Addresses the owner logged in from are never refused by it."""


class AliyunSmsSettings(Section):
    access_key_id: str = ""
    """AccessKey ID of the RAM user allowed to call dysmsapi ``SendSms``."""
    access_key_secret: SecretStr = SecretStr("")
    """Its AccessKey secret (secret; never logged)."""
    sign_name: str = ""
    """The approved signature (``SignName``) shown at the start of the text, e.g. 【lwork】."""
    template_code: str = ""
    """The approved verification-code template (``TemplateCode``, ``SMS_…``)."""
    template_param: str = "code"
    """The template's variable that receives the code (``${code}`` in the template)."""
    endpoint: str = "https://dysmsapi.aliyuncs.com/"
    """API endpoint (overridable for a regional endpoint or a test fake)."""
    timeout_s: float = Field(10.0, gt=0)
    """The most one send may take, connection and answer included."""


class TencentSmsSettings(Section):
    secret_id: str = ""
    """SecretId of the CAM key allowed to call ``sms:SendSms``."""
    secret_key: SecretStr = SecretStr("")
    """Its SecretKey (secret; never logged)."""
    sdk_app_id: str = ""
    """The SMS application's ``SmsSdkAppId`` (``1400…``)."""
    sign_name: str = ""
    """The approved signature (``SignName``)."""
    template_id: str = ""
    """The approved verification-code template (``TemplateId``); its one parameter ``{1}``
    receives the code."""
    region: str = "ap-guangzhou"
    """``X-TC-Region`` of the requests (ap-guangzhou, ap-beijing or ap-nanjing)."""
    endpoint: str = "https://sms.tencentcloudapi.com/"
    """API endpoint (overridable for a test fake)."""
    timeout_s: float = Field(10.0, gt=0)
    """The most one send may take, connection and answer included."""


class SmsSettings(Section):
    provider: Literal["log", "http", "aliyun", "tencent"] = "log"
    """``log`` writes codes to the server log (development only; refused when env=production);
    ``http`` posts to an SMS gateway; ``aliyun`` and ``tencent`` use those clouds' SMS APIs
    (settings in ``sms.aliyun`` / ``sms.tencent``)."""
    fallback: Literal["", "http", "aliyun", "tencent"] = ""
    """A second provider, asked when ``provider`` fails temporarily (down, slow, throttled, out
    of credit, refusing our keys) but not when it refuses the number itself. Empty: none."""
    aliyun: AliyunSmsSettings = AliyunSmsSettings()
    """Aliyun SMS (provider or fallback ``aliyun``)."""
    tencent: TencentSmsSettings = TencentSmsSettings()
    """Tencent Cloud SMS (provider or fallback ``tencent``)."""
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
    """Sends requested by one client per hour: an IPv4 address, or an IPv6 /64."""
    per_prefix_per_hour: int = Field(30, ge=1)
    """Sends per hour to one number range: numbers sharing their first ``prefix_length``
    digits (after an international ``00``). Bounds SMS-pumping fraud on premium ranges."""
    prefix_length: int = Field(6, ge=1, le=16)
    """Leading digits that make a number range for ``per_prefix_per_hour``: 6 covers a
    country code and an operator block (``88216``…) or a mobile block (``138001``…)."""
    global_per_hour: int = Field(500, ge=1)
    """Sends per hour by the whole service, every node together: the most a flood can cost."""


class BusSettings(Section):
    url: str = ""
    """Empty: in-process (one node; with ``http.workers`` > 1, a hub in the supervising parent
    links the workers, no server needed). ``redis://host:6379/0``: several API nodes (and
    their workers) share events, kicks and held-poll presence through Redis."""


class CallSettings(Section):
    p2p_fallback_s: float = Field(5.0, gt=0)
    """An app call the callee's app has not rung within this long (counted from the caller's
    first RTP packet, or from the start when none came) goes to the callee's real phone."""
    ring_timeout_s: float = Field(60.0, gt=0)
    """An app call not answered within this long is released."""
    keepalive_s: float = Field(60.0, gt=0)
    """A leg whose owner neither reads its status nor sends RTP for this long is released."""
    payload_mode: Literal["normal", "bandwidth-efficient", "octet-aligned"] = "normal"
    """``payload_mode`` told to the apps (the original sent ``normal``): the RFC 4867 payload
    format of their AMR, which also goes into each app leg's SDP (``a=fmtp:102 octet-align``)
    so that the transcoding relay reads and writes that format. ``normal`` and
    ``bandwidth-efficient``: ``octet-align=0``; ``octet-aligned``: ``octet-align=1``."""
    stats_refresh_s: float = Field(2.0, ge=1.0)
    """How often a call's live quality is fetched from the relay while someone reads it (the
    original recomputed it every 2 s); status reads in between answer from the cache."""
    callback_max_s: float = Field(4 * 3600.0, gt=0)
    """A callback (``/lwork/mobile/callback``, two SIP legs) is hung up after this long at the
    latest: it needs no keep-alive from the app, so this bounds a forgotten one."""
    ended_memory_s: float = Field(120.0, ge=0)
    """A call that ended within this long still answers the callee's ``p2p_poll`` with
    ``peer_status`` ``release`` (then ``session_not_exist``). 0: not remembered."""
    account_sweep_s: float = Field(10.0, gt=0)
    """Every this long each node ends its live calls of accounts deactivated meanwhile
    (``not_actived``), by one query: how a deactivation written by another process or node
    reaches the calls. One through this process's own service ends them at once."""
    forward_timeout_s: float = Field(2.0, gt=0)
    """With several nodes, a request for a call held by another node (its session id names the
    node) waits this long for that node's answer over the bus; then the call counts as gone."""
    cdr_heartbeat_s: float = Field(15.0, gt=0)
    """While a call lasts its record's heartbeat is refreshed this often (one batched write per
    node for all its calls): a node that dies mid-call leaves records closed at their last
    heartbeat, so at most this much talk goes unbilled."""
    cdr_lease_s: float = Field(60.0, gt=0)
    """Open records (and balance reservations) whose heartbeat is older than this belong to a
    dead node: a live node takes them over, closes and charges them, and sends BYE for their
    SIP dialogs. Keep it well above ``cdr_heartbeat_s``."""

    @model_validator(mode="after")
    def _lease_outlasts_heartbeats(self) -> CallSettings:
        # A lease shorter than two heartbeats would let another node close live calls.
        if self.cdr_lease_s < 2 * self.cdr_heartbeat_s:
            raise ValueError("calls.cdr_lease_s must be at least twice calls.cdr_heartbeat_s")
        return self


class MediaSettings(Section):
    ng_url: str = ""
    """``udp://host:port`` of an rtpengine-compatible relay (ng protocol). Empty: lwork starts
    its built-in relay."""
    relay_mode: Literal["process", "inline"] = "process"
    """The built-in relay runs as a child process (``process``, a core of its own) or inside the
    API's event loop (``inline``: tests and tiny installations; one relay, ``relay_workers``
    and ``relay_realtime_priority`` do not apply)."""
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
    ng_secret: SecretStr = SecretStr("")
    """Shared secret signing every ng request (an HMAC in the cookie; the secret itself is never
    sent). Set the same value on ``lwork relay`` and on the API nodes whose ``ng_url`` points at
    it; harmless toward an rtpengine, which echoes the cookie and checks nothing. Empty: the
    built-in relay child gets a random one per start; ``lwork relay`` takes unsigned requests."""
    strict_source: bool = True
    """Each call leg's media is taken only from the host the signalling gave for it: the app's
    HTTP address, the carrier's SDP address (any port, for NAT; a new host only after the
    signalling reports it). Sent to the relay as rtpengine's ``strict source`` flag. Off: a leg
    latches onto whoever sends first, as rtpengine does by default."""
    ng_allowed_sources: list[str] = ["127.0.0.0/8", "::1"]
    """Addresses or networks ``lwork relay`` takes ng requests from (others are dropped
    unanswered); list the API nodes when they are on other hosts."""

    @field_validator("ng_allowed_sources")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        if not value:
            raise ValueError("empty: nobody could drive the relay")
        for text in value:
            ipaddress.ip_network(text, strict=False)  # ValueError names the bad entry
        return value

    max_leg_pps: int = Field(1000, ge=0)
    """Packets a second one phone may send into the built-in relay (RTP and RTCP together; a
    second's worth may come in a burst). The excess is dropped and counted as errors, so a
    flooding endpoint cannot take the relay from the other calls nor be amplified toward its
    peer. AMR sends 50. 0: no limit."""
    relay_workers: int = Field(1, ge=1, le=64)
    """Processes of the built-in relay (``process`` mode and ``lwork relay``), one per core
    given to media: above 1, an ng front routes each call to one of them, and each owns a
    slice of ``port_min..port_max``. One handles about 1,000 calls."""
    transcoding: bool = True
    """The built-in relay transcodes AMR <-> G.711 (CONTRACT §6.4): carriers are offered PCMA
    and PCMU after AMR, a G.711-only carrier's call is accepted, and its media runs through
    worker processes of the relay (``transcode_workers``). Needs ``libopencore-amrnb`` (Debian:
    ``libopencore-amrnb0``): without it transcoding is off, and lwork says so at start-up.
    With an external relay (``ng_url``) lwork asks it to transcode (rtpengine's ng codec
    options) when a probe at start-up finds it can: Debian's rtpengine cannot (it does not
    encode AMR), an ``lwork relay`` with transcoding can. Off: it is never asked."""
    transcode_workers: int = Field(1, ge=1, le=64)
    """Transcoding worker processes of each built-in relay process; one core transcodes a few
    hundred calls (``bench/transcode_bench.py``)."""
    relay_realtime_priority: int = Field(0, ge=0, le=99)
    """1-99: the built-in relay's packet processes run ``SCHED_FIFO`` at this priority, so a
    busy core does not make packets wait behind other tasks (as rtpengine's ``scheduling`` and
    ``priority``). Needs root, ``CAP_SYS_NICE`` or ``ulimit -r``; refused, the relay logs a
    warning and runs normally. 0: normal scheduling."""


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
    max_concurrent_paid_calls: int = Field(2, ge=1)
    """Paid calls (through the SIP trunk; a callback counts once) one account may have at once,
    over all nodes; a further start fails ``balance_not_enough``."""
    grant_minutes: int = Field(5, ge=1)
    """The most talk time a paid call is granted at once. A call reserves its grant out of
    the balance and asks for the next one shortly before it runs out, so a long call does not
    lock the whole balance and the account's other calls can still start; a call whose balance
    pays no further grant is warned and hung up at its end. Larger: fewer database writes per
    call; smaller: less of the balance held by each call."""
    warning_s: float = Field(60.0, ge=0)
    """A call capped by its balance gets a ``talk_time_warning`` event this long before the
    cap hangs it up (0: no warning)."""
    timezone: str = "UTC"
    """Time zone whose calendar months ``month_consumed`` counts and in which ``get_recharges``
    gives dates (e.g. ``Asia/Shanghai``)."""
    products: list[ProductSettings] = Field(default_factory=default_products)
    """The catalogue apps buy from (CONTRACT §8): each entry an ``id``, a ``group``, a price
    ``money`` in yuan and either ``coins`` or package ``minutes`` (per ``period_days``, for
    ``periods``). Defaults: coin packs ``coins_100/300/1000`` and ``dth`` packages
    ``minutes_100x1``, ``minutes_300x3``; ``lwork boss products`` lists what is configured."""

    @field_validator("products")
    @classmethod
    def _unique_products(cls, value: list[ProductSettings]) -> list[ProductSettings]:
        return unique_ids(value)

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
    """A device counts as online this long after its last poll (seconds); for as long, the
    poll's network vouches for the device's token-less requests that spend money or read
    private data (CONTRACT §3)."""
