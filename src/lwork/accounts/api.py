"""Account endpoints (CONTRACT §4): wire structs and handlers."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Protocol

from msgspec import Meta, Struct

from lwork.accounts.authorization import Proof
from lwork.accounts.phone import normalise_phone
from lwork.accounts.service import COMMON, DTH, AccountService
from lwork.errors import InvalidParams
from lwork.http.request import ApiRequest
from lwork.http.routing import Route

Uuid = Annotated[str, Meta(min_length=1, max_length=64)]
DeviceId = Annotated[str, Meta(min_length=1, max_length=128)]
Name = Annotated[str, Meta(max_length=64)]
Pwd = Annotated[str, Meta(min_length=1, max_length=256)]
Code = Annotated[str, Meta(max_length=64)]
Token = Annotated[str, Meta(max_length=128)]


class Ok(Struct):
    status: str = "ok"


class Clidata(Struct):
    os_type: Annotated[str, Meta(max_length=32)] = "ios"


class AuthCodeRequest(Struct):
    uuid: Uuid
    type: Literal["register", "resetpwd"]
    device_id: DeviceId | None = None


class RegisterRequest(Struct):
    uuid: Uuid
    device_id: DeviceId
    auth_code: Code
    pwd: Pwd
    name: Name = ""
    type: Literal["sms", "delegate"] | None = None
    group_id: Literal["common", "dth"] | None = None


class LoginRequest(Struct):
    pwd: Pwd
    device_id: DeviceId
    acc: Uuid | None = None
    uuid: Uuid | None = None
    clidata: Clidata | None = None
    name: Name | None = None
    group_id: Annotated[str, Meta(max_length=32)] | None = None


class LoginResponse(Struct, kw_only=True):
    status: str = "ok"
    uuid: str
    name: str
    info: Any
    account: str
    did: str
    token: str


class LogoutRequest(Struct):
    uuid: Uuid
    device_id: DeviceId
    clidata: Any = None


class ForgetPwdRequest(Struct):
    uuid: Uuid
    auth_code: Code
    pwd: Pwd
    device_id: DeviceId | None = None
    name: Name | None = None
    type: Literal["sms", "delegate"] | None = None
    group_id: Literal["common", "dth"] | None = None


class NameResponse(Struct, kw_only=True):
    status: str = "ok"
    name: str


class ModifyPwdRequest(Struct):
    uuid: Uuid
    old_pwd: Pwd
    pwd: Pwd
    device_id: DeviceId | None = None
    """In the contract: without a token, a missing one is ``no_logined`` (not a bad request)."""
    token: Token | None = None


class AddInfoRequest(Struct):
    uuid: Uuid
    device_id: DeviceId
    info: Any
    token: Token | None = None


class UserQuery(Struct):
    acc: Annotated[str, Meta(max_length=64)] = ""
    phone: Annotated[str, Meta(max_length=64)] = ""


class QueryStatusRequest(Struct):
    users: Annotated[list[UserQuery], Meta(max_length=500)]


class UserState(Struct):
    acc: str
    phone: str
    state: str


class QueryStatusResponse(Struct, kw_only=True):
    status: str = "ok"
    data: list[UserState]


class PushRegisterRequest(Struct):
    channel_id: Annotated[str, Meta(min_length=1, max_length=512)]
    caller: Uuid | None = None
    account: Uuid | None = None
    user_id: Annotated[str, Meta(max_length=128)] = ""
    device_id: DeviceId | None = None
    provider: Literal[
        "baidu", "fcm", "apns", "apns_voip", "huawei", "xiaomi", "oppo", "vivo", "honor", "jpush"
    ] = "baidu"
    token: Token | None = None


class Presence(Protocol):
    """Who is online (CONTRACT §4 query_status)."""

    async def owners(self, numbers: list[str]) -> dict[str, str]:
        """The account each of ``numbers`` (normalised) reaches: its uuid, or a DID's."""
        ...

    async def states(self, uuids: list[str]) -> dict[str, str]:
        """``online``/``offline`` for the registered accounts among ``uuids``."""
        ...


def _group(type_: str | None, group_id: str | None) -> str:
    if group_id is not None:
        return group_id
    if type_ is not None:
        return COMMON if type_ == "sms" else DTH
    raise InvalidParams("group_id", "type or group_id is required")


def _check_phone(uuid: str) -> None:
    if not normalise_phone(uuid):
        raise InvalidParams("uuid", "uuid must contain digits")


class AccountApi:
    def __init__(self, service: AccountService, presence: Presence) -> None:
        self._service = service
        self._presence = presence

    def routes(self) -> list[Route]:
        m = "/lwork/mobile/"
        return [
            Route("POST", "/lwork/sms/auth_code", self.auth_code, AuthCodeRequest, Ok),
            Route("POST", m + "register", self.register, RegisterRequest, Ok, checks_password=True),
            Route(
                "POST", m + "login", self.login, LoginRequest, LoginResponse, checks_password=True
            ),
            Route("POST", m + "logout", self.logout, LogoutRequest, Ok),
            Route(
                "POST",
                m + "forget_pwd",
                self.forget_pwd,
                ForgetPwdRequest,
                NameResponse,
                checks_password=True,
            ),
            Route(
                "POST",
                m + "modify_pwd",
                self.modify_pwd,
                ModifyPwdRequest,
                NameResponse,
                checks_password=True,
            ),
            Route("POST", m + "add_info", self.add_info, AddInfoRequest, Ok),
            Route(
                "POST",
                m + "query_status",
                self.query_status,
                QueryStatusRequest,
                QueryStatusResponse,
            ),
            Route("POST", m + "baidu_push_register", self.push_register, PushRegisterRequest, Ok),
        ]

    async def auth_code(self, req: ApiRequest) -> Ok:
        body = req.parse(AuthCodeRequest)
        _check_phone(body.uuid)
        await self._service.send_code(body.uuid, body.type, req.client_ip)
        return Ok()

    async def register(self, req: ApiRequest) -> Ok:
        body = req.parse(RegisterRequest)
        _check_phone(body.uuid)
        group = _group(body.type, body.group_id)
        await self._service.register(
            group, body.uuid, body.auth_code, body.name, body.pwd, req.client_ip
        )
        return Ok()

    async def login(self, req: ApiRequest) -> LoginResponse:
        body = req.parse(LoginRequest)
        acc = body.acc or body.uuid
        if not acc:
            raise InvalidParams("acc", "acc is required")
        os_type = body.clidata.os_type if body.clidata else "ios"
        result = await self._service.login(acc, body.pwd, body.device_id, os_type, req.client_ip)
        account = result.account
        return LoginResponse(
            uuid=account.uuid_raw,
            name=account.name or "",
            info=account.info if account.info is not None else "",
            account=account.uuid_raw,
            did=result.did,
            token=result.token,
        )

    async def logout(self, req: ApiRequest) -> Ok:
        body = req.parse(LogoutRequest)
        await self._service.logout(body.uuid, body.device_id)
        return Ok()

    async def forget_pwd(self, req: ApiRequest) -> NameResponse:
        body = req.parse(ForgetPwdRequest)
        _check_phone(body.uuid)
        group = _group(body.type, body.group_id)
        name = await self._service.forget_pwd(
            group, body.uuid, body.auth_code, body.pwd, body.name, req.client_ip
        )
        return NameResponse(name=name)

    async def modify_pwd(self, req: ApiRequest) -> NameResponse:
        body = req.parse(ModifyPwdRequest)
        proof = Proof(req.bearer or body.token, body.device_id, req.client_ip)
        name = await self._service.modify_pwd(body.uuid, body.old_pwd, body.pwd, proof)
        return NameResponse(name=name)

    async def add_info(self, req: ApiRequest) -> Ok:
        body = req.parse(AddInfoRequest)
        proof = Proof(req.bearer or body.token, body.device_id, req.client_ip)
        await self._service.add_info(body.uuid, body.info, proof)
        return Ok()

    async def query_status(self, req: ApiRequest) -> QueryStatusResponse:
        body = req.parse(QueryStatusRequest)
        phones = [normalise_phone(user.phone or user.acc) for user in body.users]
        unique = [p for p in dict.fromkeys(phones) if p]
        # A number is an account's uuid or a DID bound to one: either reports the account.
        owners = await self._presence.owners(unique)
        states = await self._presence.states(list(dict.fromkeys(owners.values())))
        data = [
            UserState(user.acc, user.phone, states.get(owners.get(phone, ""), "unregistered"))
            for user, phone in zip(body.users, phones, strict=True)
        ]
        return QueryStatusResponse(data=data)

    async def push_register(self, req: ApiRequest) -> Ok:
        body = req.parse(PushRegisterRequest)
        uuid = body.account or body.caller
        if not uuid:
            raise InvalidParams("account", "account or caller is required")
        proof = Proof(req.bearer or body.token, body.device_id, req.client_ip)
        await self._service.register_push(uuid, proof, body.provider, body.channel_id, body.user_id)
        return Ok()
