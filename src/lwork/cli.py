"""``lwork`` command line: serve, migrate, version, and the operator's admin commands."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from lwork import __version__
from lwork.observability import setup_logging
from lwork.settings import Settings, load_settings


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from lwork.app import build_app

    host = args.host or settings.http.host
    port = args.port if args.port is not None else settings.http.port
    if settings.http.workers > 1 and args.worker is None:
        from lwork.http.workers import serve_command, supervise

        return supervise(settings, serve_command(args.config), host, port)
    sockets, bus, worker, limits = None, None, None, None
    if args.worker is not None:  # one of http.workers, started by the supervisor
        from lwork.http.workers import worker_side

        side = worker_side(settings, args)
        settings, worker, sockets, bus = side.settings, side.index, side.sockets, side.bus
        limits = side.limits
    # What exists once the server has started lives as long as the process: keep it out of the
    # collector's full passes, which otherwise walk it while thousands of long polls wait.
    app, _ = build_app(settings, on_ready=gc.freeze, bus=bus, worker=worker, limits=limits)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=5,
        ssl_certfile=settings.http.tls_cert,
        ssl_keyfile=settings.http.tls_key,
    )
    try:
        uvicorn.Server(config).run(sockets=sockets)
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it has already shut down on
        pass
    return 0


def _relay(settings: Settings, args: argparse.Namespace) -> int:
    from lwork.media.control import relay_config
    from lwork.media.relay.server import run_relay

    config = relay_config(settings.media)
    config = dataclasses.replace(config, ng_host=args.ng_host, ng_port=args.ng_port)
    run_relay(config)
    return 0


def _sim(settings: Settings, args: argparse.Namespace) -> int:
    from lwork.sim.demo import call_on_server, demo

    # The phones print what happens; the server's and the HTTP client's chatter would drown it.
    logging.getLogger().setLevel(logging.WARNING)
    if args.sim_command == "buy":
        return _sim_buy(settings, args)
    if args.sim_command == "demo":
        report = asyncio.run(demo(args.seconds))
    else:
        caller = (args.caller, args.caller_pwd)
        callee = (args.callee, args.callee_pwd)
        report = asyncio.run(call_on_server(args.server, caller, callee, args.seconds))
    ok = report.callee_received > 0 and report.caller_received > 0
    return 0 if ok else 1


def _sim_buy(settings: Settings, args: argparse.Namespace) -> int:
    from lwork.sim.buy import buy
    from lwork.sim.phone import SimError

    # The price is the catalogue's: the same settings file as the server's.
    product = next((p for p in settings.billing.products if p.id == args.product), None)
    if product is None:
        print(f"error: no product {args.product} in billing.products", file=sys.stderr)
        return 1
    secret = args.secret or settings.payments.test.secret.get_secret_value()
    try:
        bought = asyncio.run(buy(args.server, args.account, args.pwd, secret, product.id,
                                 f"{product.money:.2f}"))  # fmt: skip
    except (SimError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0 if bought.coins_after > bought.coins_before or product.minutes else 1


def _with_services(settings: Settings, action: Callable[[Any], Awaitable[str]]) -> int:
    from lwork.app import build_app
    from lwork.storage.engine import migrate

    async def run() -> str:
        _, services = build_app(settings)
        try:
            await migrate(services.engine)
            return await action(services)
        finally:
            services.passwords.close()
            await services.engine.dispose()

    try:
        print(asyncio.run(run()))
    except (LookupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    async def action(services: Any) -> str:
        return f"database at the newest schema: {services.engine.url.render_as_string()}"

    return _with_services(settings, action)


def _boss(settings: Settings, args: argparse.Namespace) -> int:
    if args.boss_command == "products":
        from lwork.billing.operator import product_lines

        print(product_lines(settings.billing.products))
        return 0

    async def action(services: Any) -> str:
        import time

        from lwork.billing import operator
        from lwork.boss.audit import AuditTrail

        trail = AuditTrail(services.engine)
        if args.boss_command == "audit":
            entries = await trail.entries(args.account, args.limit)
            return "\n".join(entry.line() for entry in entries) or "no BOSS actions yet"
        fields = {k: v for k, v in vars(args).items()
                  if k not in ("config", "command", "boss_command", "run")}  # fmt: skip
        try:
            if args.boss_command == "orders":
                from lwork.payments import commands

                done = await commands.run(args, services.payments, services.accounts)
            elif args.boss_command in operator.COMMANDS:
                done = await operator.run(args.boss_command, args, services.billing,
                                          services.accounts)  # fmt: skip
            else:
                done = await services.provisioning.run(args.boss_command, args)
        except (LookupError, ValueError) as exc:
            reason = getattr(exc, "reason", "invalid_params")
            await trail.record("cli", args.boss_command, fields, reason, time.time())
            raise
        await trail.record("cli", args.boss_command, fields, "ok", time.time())
        return str(done)

    return _with_services(settings, action)


def _fraud(settings: Settings, args: argparse.Namespace) -> int:
    import time

    from lwork.fraud import operator

    async def action(services: Any) -> str:
        return await operator.run(args, services.fraud, time.time())

    return _with_services(settings, action)


def _versions(settings: Settings, args: argparse.Namespace) -> int:
    from lwork.appversions import VersionResponse

    async def action(services: Any) -> str:
        await services.versions.set(
            args.kind,
            VersionResponse(
                version_no=args.version_no,
                version_path=args.version_path,
                version_info=args.version_info,
                i_version_no=args.i_version_no,
                i_version_path=args.i_version_path,
                i_version_info=args.i_version_info,
            ),
        )
        return f"versions for {args.kind} set"

    return _with_services(settings, action)


def _read_password(confirm: bool) -> str:
    """A password from the terminal (asked twice) or the first line of standard input: never
    from the command line, where ``ps`` and shell histories would keep it."""
    import getpass

    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("password: ")
    if confirm and getpass.getpass("again: ") != password:
        raise ValueError("the two passwords differ")
    return password


def _admin(settings: Settings, args: argparse.Namespace) -> int:
    command = args.user_command
    password = ""
    if command in ("add", "password"):
        try:
            password = _read_password(confirm=True)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    async def action(services: Any) -> str:
        import datetime as dt
        import time

        from lwork.boss.audit import AuditTrail

        operators = services.operators
        if command == "list":
            lines = [
                f"{who.name} {who.role}{' totp' if who.totp else ''} added "
                + dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds")
                for who, at in await operators.all()
            ]
            return "\n".join(lines) or "no operators yet"
        fields = {"account": None, "operator": args.name, "role": getattr(args, "role", None)}
        trail = AuditTrail(services.engine)
        audited = {"add": "operator_add", "password": "operator_pwd", "remove": "operator_del",
                   "totp": "operator_totp"}  # fmt: skip
        try:
            if command == "add":
                added = await operators.add(args.name, args.role, password, time.time())
                done = f"operator {added.name} added ({added.role})"
            elif command == "password":
                await operators.set_password(args.name, password)
                done = f"operator {args.name}: new password set, sessions ended"
            elif command == "totp" and args.off:
                await operators.drop_totp(args.name)
                done = f"operator {args.name}: signs in by password alone"
            elif command == "totp":
                from lwork.admin.totp import otpauth_uri

                secret = await operators.enrol_totp(args.name)
                # Shown this once (it is kept sealed): add it to an authenticator app now.
                done = (f"operator {args.name}: add this to an authenticator app (shown once);\n"
                        f"signing in asks for its code from now on\n"
                        f"{otpauth_uri(secret, args.name, 'lwork')}")  # fmt: skip
            else:
                await operators.remove(args.name)
                done = f"operator {args.name} removed, sessions ended"
        except (LookupError, ValueError) as exc:
            reason = "no_such_operator" if isinstance(exc, LookupError) else "invalid_params"
            await trail.record("cli", audited[command], fields, reason, time.time())
            raise
        await trail.record("cli", audited[command], fields, "ok", time.time())
        return done

    return _with_services(settings, action)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="lwork", description=__doc__)
    root.add_argument("--config", help="TOML settings file (default: $LWORK_CONFIG)")
    sub = root.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server (migrates the database first)")
    serve.add_argument("--host", help="override http.host")
    serve.add_argument("--port", type=int, help="override http.port")
    from lwork.http.workers import add_worker_options

    add_worker_options(serve)
    serve.set_defaults(run=_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(run=_migrate)

    relay = sub.add_parser(
        "relay", help="run the built-in media relay alone (point media.ng_url of API nodes at it)"
    )
    relay.add_argument("--ng-host", default="127.0.0.1", help="ng control address (keep private)")
    relay.add_argument("--ng-port", type=int, default=2223, help="ng control UDP port")
    relay.set_defaults(run=_relay)
    sub.add_parser("version", help="print the version").set_defaults(run=None)

    sim = sub.add_parser("sim", help="simulated phone apps calling each other")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True)
    sim_demo = sim_sub.add_parser("demo", help="a throw-away server and two phones, one command")
    sim_call = sim_sub.add_parser("call", help="two existing accounts on a running server")
    sim_call.add_argument("--server", default="http://127.0.0.1:8080")
    for role in ("caller", "callee"):
        sim_call.add_argument(f"--{role}", required=True, help="phone number (uuid)")
        sim_call.add_argument(f"--{role}-pwd", required=True, help="password as the app sends it")
    sim_buy = sim_sub.add_parser("buy", help="buy a product with the test provider on a server")
    sim_buy.add_argument("--server", default="http://127.0.0.1:8080")
    sim_buy.add_argument("--account", required=True, help="phone number (uuid)")
    sim_buy.add_argument("--pwd", required=True, help="password as the app sends it")
    sim_buy.add_argument("--product", default="coins_300", help="a billing.products id")
    sim_buy.add_argument("--secret", help="payments.test.secret (default: from the settings)")
    for parser_ in (sim_demo, sim_call):
        parser_.add_argument("--seconds", type=float, default=5.0, help="talk time")
    sim.set_defaults(run=_sim)

    boss = sub.add_parser("boss", help="provisioning and balances (as the billing system would)")
    boss_sub = boss.add_subparsers(dest="boss_command", required=True)
    opened = boss_sub.add_parser("open", help="provision an account with its activation password")
    opened.add_argument("account")
    opened.add_argument("pwd")
    opened.add_argument("--group", default="dth")
    for name in ("activate", "deactivate"):
        boss_sub.add_parser(name).add_argument("account")
    boss_sub.add_parser(
        "close", help="end an account for good: no login, no calls; its records stay"
    ).add_argument("account")
    audit = boss_sub.add_parser("audit", help="the BOSS actions taken, from HTTP and this CLI")
    audit.add_argument("--account", help="only this account's")
    audit.add_argument("--limit", type=int, default=100, help="the newest N (default 100)")
    for name in ("bind", "unbind"):
        bound = boss_sub.add_parser(name, help=f"{name} a phone number (DID)")
        bound.add_argument("account")
        bound.add_argument("phone", nargs="?" if name == "unbind" else None)
    from lwork.billing.operator import add_commands as billing_commands

    billing_commands(boss_sub)
    from lwork.payments.commands import add_commands as order_commands

    order_commands(boss_sub)
    boss.set_defaults(run=_boss)

    admin = sub.add_parser("admin", help="operators of the web console at /admin")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    user = admin_sub.add_parser("user", help="operator users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    user_add = user_sub.add_parser(
        "add", help="add an operator; the password is asked for (or read from standard input)"
    )
    user_add.add_argument("name")
    user_add.add_argument("--role", choices=["admin", "support"], required=True,
                          help="admin: every page and action; support: read-only")  # fmt: skip
    user_sub.add_parser("list", help="every operator, its role and when it was added")
    user_sub.add_parser(
        "password", help="set an operator's password (asked for, or read from standard input)"
    ).add_argument("name")
    user_sub.add_parser("remove", help="remove an operator and end its sessions").add_argument(
        "name"
    )
    totp = user_sub.add_parser(
        "totp", help="enrol an operator for TOTP codes at sign-in (prints the otpauth:// URI once)"
    )
    totp.add_argument("name")
    totp.add_argument("--off", action="store_true", help="sign in by password alone again")
    admin.set_defaults(run=_admin)

    fraud = sub.add_parser("fraud", help="toll-fraud limits, per-account overrides, alarms")
    from lwork.fraud.operator import add_commands as fraud_commands

    fraud_commands(fraud.add_subparsers(dest="fraud_command", required=True))
    fraud.set_defaults(run=_fraud)

    versions = sub.add_parser("versions", help="app versions served to the apps")
    versions_sub = versions.add_subparsers(dest="versions_command", required=True)
    setter = versions_sub.add_parser("set", help="set the versions for one kind")
    setter.add_argument("kind", choices=["default", "dth", "common"])
    for field in ("version_no", "version_path", "version_info"):
        setter.add_argument(f"--{field.replace('_', '-')}", dest=field, default="")
        setter.add_argument(f"--i-{field.replace('_', '-')}", dest=f"i_{field}", default="")
    versions.set_defaults(run=_versions)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.run is None:
        print(__version__)
        return 0
    try:
        settings = load_settings(args.config)
    except (ValueError, FileNotFoundError) as exc:
        print(f"lwork: invalid settings: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format, settings.log_full_numbers)
    result: int = args.run(settings, args)
    return result


if __name__ == "__main__":
    sys.exit(main())
