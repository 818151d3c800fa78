"""The schema, as SQLAlchemy Core tables. Migrations in ``migrations/`` create exactly this."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("uuid", String(64), primary_key=True, doc="normalised phone number / SDN"),
    Column("uuid_raw", String(64), nullable=False, doc="as the client first sent it"),
    Column("name", String(128), unique=True, nullable=True),
    Column("pwd_hash", String(256), nullable=False, doc="Argon2id of what the app sends"),
    Column("group_id", String(16), nullable=False),
    Column("info", Text, nullable=True, doc="JSON the app stored with add_info"),
    Column("created_at", Float, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("uuid", String(64), nullable=False),
    Column("device_id", String(128), nullable=False),
    Column("os_type", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("last_poll", Float, nullable=True, doc="last long poll: presence (query_status)"),
    Column("poll_ip", String(64), nullable=True, doc="client address of that poll (CONTRACT §3)"),
    Column("ended_at", Float, nullable=True),
    Column(
        "end_reason",
        String(32),
        nullable=True,
        doc="logout | login_otherwhere | relogin | password_* | expired",
    ),
    Index("ix_sessions_uuid", "uuid"),
    Index("ix_sessions_device", "device_id"),
)

sms_codes = Table(
    "sms_codes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("phone", String(64), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("code_hash", String(64), nullable=False, doc="HMAC-SHA256 under the server secret"),
    Column("client_ip", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("used", Boolean, nullable=False, default=False),
    Column("ip_key", String(64), nullable=False, server_default="", doc="IPv4, or IPv6 /64"),
    Column("prefix", String(16), nullable=False, server_default="", doc="caps per number range"),
    Index("ix_sms_codes_phone", "phone", "created_at"),
    Index("ix_sms_codes_ip", "client_ip", "created_at"),
    Index("ix_sms_codes_ip_key", "ip_key", "created_at"),
    Index("ix_sms_codes_prefix", "prefix", "created_at"),
    Index("ix_sms_codes_created", "created_at"),
)

guess_pairs = Table(
    "guess_pairs",
    metadata,
    Column("account", String(80), primary_key=True, doc="scope and account: login:<uuid>"),
    Column("address", String(64), primary_key=True, doc="IPv4 address or IPv6 /64"),
    Column("failures", Integer, nullable=False),
    Column("blocked_until", Float, nullable=False),
    Column("seen", Float, nullable=False),
    Column("known", Boolean, nullable=False, doc="the account has logged in from here"),
    Index("ix_guess_pairs_seen", "seen"),
)

guess_budgets = Table(
    "guess_budgets",
    metadata,
    Column("account", String(80), primary_key=True),
    Column("tokens", Float, nullable=False, doc="failures strangers may still make now"),
    Column("updated", Float, nullable=False),
)

limit_locks = Table(
    "limit_locks",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("taken_at", Float, nullable=False, doc="a write that serialises cap checks"),
)

push_registrations = Table(
    "push_registrations",
    metadata,
    Column("uuid", String(64), primary_key=True),
    Column("device_id", String(128), primary_key=True),
    Column("provider", String(16), primary_key=True, doc="baidu | fcm | apns"),
    Column("token", String(512), nullable=False, doc="Baidu channel_id, FCM or APNs token"),
    Column("user_id", String(128), nullable=True),
    Column("updated_at", Float, nullable=False),
)

provisioning = Table(
    "provisioning",
    metadata,
    Column("account", String(64), primary_key=True, doc="normalised SDN"),
    Column("group_id", String(16), nullable=False),
    Column("pwd_hash", String(256), nullable=False, doc="Argon2id of the activation password"),
    Column("active", Boolean, nullable=False),
    Column("did", String(64), nullable=True, unique=True, doc="bound phone number (DID)"),
    Column("created_at", Float, nullable=False),
)

app_versions = Table(
    "app_versions",
    metadata,
    Column("kind", String(16), primary_key=True, doc="default | dth | common"),
    Column("version_no", String(64), nullable=False),
    Column("version_path", String(512), nullable=False),
    Column("version_info", Text, nullable=False),
    Column("i_version_no", String(64), nullable=False),
    Column("i_version_path", String(512), nullable=False),
    Column("i_version_info", Text, nullable=False),
)

mailbox = Table(
    "mailbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True, doc="delivery order"),
    Column("event_id", String(40), nullable=False, unique=True),
    Column("device_key", String(200), nullable=False, doc="uuid + device id"),
    Column("call_id", String(128), nullable=True, doc="the call an invitation belongs to"),
    Column("body", Text, nullable=False, doc="the event object as JSON"),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_mailbox_device", "device_key", "id"),
    Index("ix_mailbox_call", "call_id"),
)

balances = Table(
    "balances",
    metadata,
    Column("uuid", String(64), primary_key=True),
    Column("coins", BigInteger, nullable=False, default=0, doc="hundredths of a coin"),
    Column("gift_coins", BigInteger, nullable=False, default=0, doc="hundredths of a coin"),
    Column(
        "minutes",
        Integer,
        nullable=False,
        default=0,
        doc="unused since 0011 (moved to minute_buckets, kept 0)",
    ),
    Column("updated_at", Float, nullable=False),
)

minute_buckets = Table(
    "minute_buckets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uuid", String(64), nullable=False),
    Column("ref", String(200), nullable=False, doc="the ledger credit that granted it"),
    Column("granted", Integer, nullable=False, doc="package minutes it started with"),
    Column("minutes_left", Integer, nullable=False),
    Column("valid_from", Float, nullable=False, doc="Unix time it starts counting"),
    Column("expires_at", Float, nullable=True, doc="Unix time it stops counting; None: never"),
    Index("ix_minute_buckets_uuid", "uuid", "expires_at"),
    Index("ix_minute_buckets_ref", "ref"),
)  # fmt: skip

ledger = Table(
    "ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uuid", String(64), nullable=False),
    Column("ref", String(200), nullable=False, unique=True, doc="what caused it; applied once"),
    Column("kind", String(16), nullable=False, doc="credit | charge | refund"),
    Column("coins", BigInteger, nullable=False, doc="change, hundredths of a coin"),
    Column("gift_coins", BigInteger, nullable=False, doc="change, hundredths of a coin"),
    Column("minutes", Integer, nullable=False, doc="change of package minutes"),
    Column("forgiven", BigInteger, nullable=False, default=0, doc="cost the balance lacked"),
    Column("note", String(200), nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_ledger_uuid", "uuid", "created_at"),
)

cdrs = Table(
    "cdrs",
    metadata,
    Column("id", String(200), primary_key=True, doc="call session id (and leg)"),
    Column("uuid", String(64), nullable=False, doc="the account (it pays for paid kinds)"),
    Column("kind", String(16), nullable=False,
           doc="out | in | p2p | callback_local | callback_remote (call | callback before 0004)"),
    Column("caller", String(64), nullable=True),
    Column("callee", String(64), nullable=False),
    Column("caller_id", String(64), nullable=True, doc="as sent to the carrier"),
    Column("started_at", Float, nullable=True, doc="Unix time the leg started"),
    Column("answered_at", Float, nullable=True, doc="None: never answered"),
    Column("ended_at", Float, nullable=True, doc="None: the record is open (call in progress)"),
    Column("billsec", Integer, nullable=True, doc="whole seconds from answer to end"),
    Column("minutes", Integer, nullable=False, doc="billed started minutes"),
    Column("cost", BigInteger, nullable=False, doc="cents, or package minutes for dth"),
    Column("charge_coins", BigInteger, nullable=True, doc="cents of bought coins taken"),
    Column("charge_gift_coins", BigInteger, nullable=True, doc="cents of gift coins taken"),
    Column("charge_minutes", Integer, nullable=True, doc="package minutes taken"),
    Column("forgiven", BigInteger, nullable=True, doc="cost the balance lacked"),
    Column("end_reason", String(64), nullable=False),
    Column("sip_status", Integer, nullable=True, doc="final SIP status of the leg"),
    Column("mos", Float, nullable=True),
    Column("loss", Float, nullable=True, doc="0..1"),
    Column("jitter_ms", Float, nullable=True),
    Column("rtt_ms", Float, nullable=True),
    Column("carrier_codec", String(16), nullable=True,
           doc="AMR, PCMA or PCMU on the carrier's leg; None: no carrier leg (the apps' is AMR)"),
    Column("node", String(64), nullable=True, doc="the node that carried the call"),
    Column("owner", String(96), nullable=True, doc="node incarnation that heart-beats it"),
    Column("heartbeat_at", Float, nullable=True, doc="last sign of life of an open record"),
    Column("dialog", Text, nullable=True, doc="JSON of the SIP dialog, to BYE it after a crash"),
    Index("ix_cdrs_uuid", "uuid", "answered_at"),
    Index("ix_cdrs_started", "uuid", "started_at"),
    Index("ix_cdrs_owner", "owner", "ended_at"),
    Index("ix_cdrs_open", "ended_at", "heartbeat_at"),
)  # fmt: skip

reservations = Table(
    "reservations",
    metadata,
    Column("id", String(200), primary_key=True, doc="the call's session id"),
    Column("uuid", String(64), nullable=False, doc="the paying account"),
    Column("cents", BigInteger, nullable=False, doc="what the call may still spend (coins)"),
    Column("minutes", Integer, nullable=False, doc="what the call may still spend (dth)"),
    Column("owner", String(96), nullable=False, doc="node incarnation that heart-beats it"),
    Column("heartbeat_at", Float, nullable=False),
    Index("ix_reservations_uuid", "uuid"),
    Index("ix_reservations_owner", "owner"),
)  # fmt: skip

fraud_overrides = Table(
    "fraud_overrides",
    metadata,
    Column("uuid", String(64), primary_key=True),
    Column("daily_cap", BigInteger, nullable=True, doc="cents or minutes; null: the group's"),
    Column("allow_prefixes", Text, nullable=False, doc="JSON list added to the group's"),
    Column("deny_prefixes", Text, nullable=False, doc="JSON list added to the group's"),
    Column("callback_local", Text, nullable=False, doc="JSON list of allowed callback locals"),
    Column("updated_at", Float, nullable=False),
)

fraud_alarms = Table(
    "fraud_alarms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False, doc="account | prefix"),
    Column("subject", String(64), nullable=False, doc="the account's uuid or the E.164 range"),
    Column("facts", String(300), nullable=False, doc="what crossed which threshold"),
    Column("node", String(64), nullable=False, doc="the node that counted it"),
    Column("created_at", Float, nullable=False),
    Column("blocked_until", Float, nullable=False),
    Index("ix_fraud_alarms_subject", "subject", "blocked_until"),
    Index("ix_fraud_alarms_created", "created_at"),
)

orders = Table(
    "orders",
    metadata,
    Column("payid", String(32), primary_key=True, doc="unguessable; the providers' order number"),
    Column("uuid", String(64), nullable=False, doc="the account it credits"),
    Column("uuid_raw", String(64), nullable=False, doc="as the app sent it (echoed)"),
    Column("product_id", String(64), nullable=False),
    Column("pay_type", String(16), nullable=False, doc="alipay | wechat | apple | test"),
    Column("money", BigInteger, nullable=False, doc="price in fen"),
    Column("coins", BigInteger, nullable=False, doc="credit, hundredths of a coin"),
    Column("minutes", Integer, nullable=False, doc="credit, package minutes"),
    Column("state", String(16), nullable=False, doc="created | paid | closed | refunded | flagged"),
    Column("trade_no", String(128), nullable=True, doc="the provider's trade number"),
    Column("note", String(200), nullable=True, doc="why it was flagged or closed"),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("paid_at", Float, nullable=True),
    Column("updated_at", Float, nullable=False),
    # Settling an order changes its state, trade_no and paid_at: no index but the two partial
    # ones holds them, and those only lose or gain the order (migration 0018).
    Index("ix_orders_account", "uuid", "created_at"),
    Index(
        "ix_orders_waiting",
        "created_at",
        sqlite_where=text("state = 'created'"),
        postgresql_where=text("state = 'created'"),
    ),
    Index("ix_orders_created", "created_at"),
    Index(
        "ix_orders_trade",
        "pay_type",
        "trade_no",
        sqlite_where=text("trade_no IS NOT NULL"),
        postgresql_where=text("trade_no IS NOT NULL"),
    ),
)

cdr_outbox = Table(
    "cdr_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True,
           doc="order of closing: an account's records go out in this order"),
    Column("cdr_id", String(200), nullable=False, doc="the closed record (cdrs.id) to send"),
    Column("uuid", String(64), nullable=False, doc="its account"),
    Column("created_at", Float, nullable=False, doc="when the record was closed"),
    Column("attempts", Integer, nullable=False, doc="failed deliveries so far"),
    Column("next_at", Float, nullable=False,
           doc="not sent before: the backoff after a failure, or a sender's claim"),
    Column("last_error", String(200), nullable=True),
    Index("ix_cdr_outbox_next", "next_at"),
)  # fmt: skip

refunds = Table(
    "refunds",
    metadata,
    Column("refund_no", String(40), primary_key=True, doc="ours; the provider's idempotency key"),
    Column("payid", String(32), nullable=False),
    Column("money", BigInteger, nullable=False, doc="fen given back"),
    Column("reason", String(200), nullable=False),
    Column("state", String(16), nullable=False, doc="asked | done | pending | failed"),
    Column("provider_refund_no", String(128), nullable=True),
    Column("failure", String(200), nullable=True, doc="why the provider refused"),
    Column("coins_taken", BigInteger, nullable=False, doc="hundredths of a coin taken back"),
    Column("minutes_taken", Integer, nullable=False),
    Column("coins_short", BigInteger, nullable=False, doc="already spent: could not be taken"),
    Column("minutes_short", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_refunds_payid", "payid"),
)

refund_holds = Table(
    "refund_holds",
    metadata,
    Column("payid", String(32), primary_key=True),
    Column("refunded", BigInteger, nullable=False, doc="fen it told it refunded in all, at most"),
    Column("provider_refund_no", String(128), nullable=False, doc="the notice's refund name"),
    Column("reason", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
"""A cumulative refund notice (Alipay's ``refund_fee``) that came while a refund of ours on the
order had no answer: kept until ours is decided, when what it adds is taken back (then the row
goes), so a notice the provider stops sending is not lost."""

boss_signatures = Table(
    "boss_signatures",
    metadata,
    Column("signature", String(64), primary_key=True, doc="hex HMAC of an accepted request"),
    Column("seen_at", Float, nullable=False, doc="kept past the timestamp window, then pruned"),
    Index("ix_boss_signatures_seen", "seen_at"),
)

boss_requests = Table(
    "boss_requests",
    metadata,
    Column("request_id", String(128), primary_key=True, doc="the BOSS's id of one change"),
    Column("key_id", String(64), nullable=False),
    Column("operation", String(16), nullable=False),
    Column("body_hash", String(64), nullable=False, doc="hex SHA-256 of the first body"),
    Column("status_code", Integer, nullable=True, doc="None: the first is still running"),
    Column("answer", Text, nullable=True, doc="JSON the first request was answered"),
    Column("created_at", Float, nullable=False),
)

boss_audit = Table(
    "boss_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(64), nullable=False, doc="key id, or cli"),
    Column("action", String(16), nullable=False, doc="the operation"),
    Column("account", String(64), nullable=True),
    Column("detail", Text, nullable=False, doc="JSON of the fields, secrets left out"),
    Column("result", String(64), nullable=False, doc="ok, or the failure reason"),
    Index("ix_boss_audit_at", "at"),
    Index("ix_boss_audit_account", "account", "at"),
)

# Keyset pagination of every account's records by start (the BOSS's `cdrs` without account).
Index("ix_cdrs_started_all", cdrs.c.started_at, cdrs.c.id)

operators = Table(
    "operators",
    metadata,
    Column("name", String(64), primary_key=True, doc="the operator's sign-in name"),
    Column("role", String(16), nullable=False, doc="admin | support (read-only)"),
    Column("password_hash", String(255), nullable=False, doc="Argon2id (accounts.passwords)"),
    Column("created_at", Float, nullable=False),
    Column("totp_sealed", String(255), nullable=True, doc="AES-GCM sealed TOTP secret, or none"),
    Column("totp_last_step", BigInteger, nullable=True, doc="step of the last code accepted"),
)

operator_sessions = Table(
    "operator_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True, doc="SHA-256 of the cookie's random id"),
    Column("operator", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_operator_sessions_expires", "expires_at"),
)
