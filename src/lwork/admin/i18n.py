"""Every string the console shows, in Chinese and English: one small catalogue.

Templates call ``t("key")``; a key missing from the catalogue is a bug the unit test catches
(every key used by a template must be here), never a blank on the page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

CATALOGUE: dict[str, tuple[str, str]] = {
    # key: (zh, en)
    "title": ("lwork 运营控制台", "lwork console"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "name": ("用户名", "Name"),
    "password": ("密码", "Password"),
    "bad_credentials": ("用户名或密码错误", "Wrong name or password"),
    "too_many": ("尝试次数过多，请稍后再试", "Too many attempts; try again later"),
    "signed_in_as": ("当前用户", "Signed in as"),
    "role_admin": ("管理员", "administrator"),
    "role_support": ("客服（只读）", "support (read-only)"),
    "live_calls": ("实时通话", "Live calls"),
    "cdrs": ("通话记录", "Call records"),
    "no_live_calls": ("当前没有通话", "No call in progress"),
    "caller": ("主叫", "Caller"),
    "callee": ("被叫", "Callee"),
    "account": ("账号", "Account"),
    "kind": ("类型", "Kind"),
    "nodes_unreached": (
        "部分节点的通话无法读取（Redis 不可用，或有工作进程未应答），列表不完整",
        "Some nodes' calls cannot be read (Redis unavailable, or a worker did not answer): "
        "the list is incomplete",
    ),
    "state": ("状态", "State"),
    "duration": ("时长", "Duration"),
    "loss": ("丢包率", "Loss"),
    "jitter": ("抖动 (ms)", "Jitter (ms)"),
    "rtt": ("往返时延 (ms)", "RTT (ms)"),
    "mos": ("MOS", "MOS"),
    "mos_chart": ("MOS 走势", "MOS over time"),
    "actions": ("操作", "Actions"),
    "hang_up": ("挂断", "Hang up"),
    "hang_up_confirm": ("确定挂断这通电话？", "Hang up this call?"),
    "hung_up": ("通话已挂断", "The call was hung up"),
    "call_gone": ("该通话已结束", "That call has already ended"),
    "updated": ("更新于", "Updated"),
    "calls_now": ("进行中的通话（所有节点）", "Calls in progress (all nodes)"),
    "live_paused": ("实时更新已中断，正在重连…", "Live updates interrupted; reconnecting…"),
    "number": ("号码", "Number"),
    "from_date": ("开始日期", "From"),
    "to_date": ("结束日期", "To"),
    "end_reason": ("结束原因", "End reason"),
    "any": ("全部", "any"),
    "filter": ("筛选", "Filter"),
    "export_csv": ("导出 CSV", "Export CSV"),
    "start": ("开始时间", "Start"),
    "answered": ("接听", "Answered"),
    "billsec": ("计费秒数", "Billed s"),
    "cost": ("费用", "Cost"),
    "no_records": ("没有符合条件的记录", "No record matches"),
    "next_page": ("下一页", "Next page"),
    "first_page": ("第一页", "First page"),
    "accounts": ("账号查询", "Accounts"),
    "look_up": ("查询", "Look up"),
    "no_such_account": ("账号不存在", "No such account"),
    "display_name": ("昵称", "Display name"),
    "group": ("用户组", "Group"),
    "created": ("注册时间", "Created"),
    "info": ("附加信息", "Info"),
    "balance": ("余额", "Balance"),
    "coins": ("金币", "Coins"),
    "gift_coins": ("赠送金币", "Gift coins"),
    "package_minutes": ("套餐分钟数", "Package minutes"),
    "packages": ("套餐", "Packages"),
    "minutes_left": ("剩余分钟", "Minutes left"),
    "valid_from": ("生效日期", "From"),
    "valid_to": ("截止日期", "To"),
    "no_expiry": ("长期有效", "no expiry"),
    "devices": ("登录设备", "Sessions and devices"),
    "device": ("设备号", "Device"),
    "os": ("系统", "OS"),
    "since": ("登录时间", "Since"),
    "last_seen": ("最近活动", "Last seen"),
    "last_poll": ("最近长连接", "Last poll"),
    "poll_ip": ("长连接地址", "Poll address"),
    "ended": ("结束时间", "Ended"),
    "recent_cdrs": ("最近通话", "Recent calls"),
    "orders": ("订单", "Orders"),
    "payid": ("订单号", "Order"),
    "product": ("商品", "Product"),
    "pay_type": ("支付方式", "Paid with"),
    "money": ("金额 (元)", "Amount (CNY)"),
    "paid_at": ("支付时间", "Paid"),
    "trade_no": ("支付平台单号", "Provider's number"),
    "note": ("备注", "Note"),
    "none_yet": ("暂无", "none"),
    "audit": ("操作日志", "Audit trail"),
    "fraud": ("防盗打告警", "Fraud alarms"),
    "fraud_help": (
        "近 {days} 天的告警，以及仍在封禁中的告警（最新的在前）",
        "Alarms of the last {days} days, and those still blocking (newest first)",
    ),
    "fraud_kind": ("类型", "Kind"),
    "fraud_subject": ("对象", "Account or range"),
    "fraud_blocked_until": ("封禁至", "Blocked until"),
    "fraud_blocking": ("封禁中", "blocking"),
    "fraud_unblock": ("解除封禁", "Unblock"),
    "fraud_unblocked": ("已解除封禁", "Unblocked"),
    "node": ("节点", "Node"),
    "online": ("在线用户", "Online users"),
    "online_now": ("当前在线", "Online now"),
    "polled_within": ("长连接间隔不超过", "long-polled within the last"),
    "when": ("时间", "When"),
    "actor": ("操作者", "Who"),
    "action": ("操作", "Action"),
    "result": ("结果", "Result"),
    "detail": ("详情", "Detail"),
    "error": ("错误", "Error"),
    "not_found": ("页面不存在", "No such page"),
    "forbidden": ("没有权限执行此操作", "You may not do that"),
    "csrf_failed": (
        "表单已失效，请刷新页面后重试",
        "The form has expired; reload the page and try again",
    ),
    "read_only": ("客服账号只能查看，不能修改", "Support operators can look but not change"),
    "unavailable": ("服务暂时不可用", "Service not available right now"),
    "bad_filter": ("筛选条件有误", "The filter is not valid"),
    "back": ("返回", "Back"),
    "language": ("English", "中文"),
    # second factor
    "code_asked": (
        "请输入身份验证器中的 6 位动态码",
        "Enter the 6-digit code of your authenticator",
    ),
    "totp_code": ("动态码", "Code"),
    "code_expired": (
        "登录已超时，请重新输入密码",
        "The sign-in timed out; enter the password again",
    ),
    "bad_code": ("动态码错误或已使用", "Wrong or already used code"),
    # account actions
    "provisioned": ("开户状态", "Provisioning"),
    "active": ("已激活", "active"),
    "deactivated": ("已停用", "deactivated"),
    "did": ("绑定号码", "Bound number (DID)"),
    "confirm_change": ("确定执行此操作？", "Do this now?"),
    "activate": ("激活", "Activate"),
    "deactivate": ("停用", "Deactivate"),
    "end_sessions": ("强制下线", "End sessions"),
    "reset_code": ("发送重置密码验证码", "Send a password-reset code"),
    "bind": ("绑定", "Bind"),
    "unbind": ("解除绑定", "Unbind"),
    "reference": ("参考号", "Reference"),
    "credit": ("充值", "Credit"),
    "done_deactivate": ("账号已停用，进行中的通话已结束", "Deactivated; its live calls ended"),
    "done_activate": ("账号已激活", "Activated"),
    "done_end_sessions": ("已强制下线", "Its sessions ended"),
    "done_reset_code": ("验证码短信已发送", "A password-reset code was sent by SMS"),
    "done_bind": ("号码已绑定", "Number bound"),
    "done_unbind": ("已解除绑定", "Number unbound"),
    "done_credit": ("充值成功", "Credited"),
    "done_credit_again": (
        "该参考号已充值过，本次未重复充值",
        "That reference was credited before: nothing credited again",
    ),
    "not_provisioned": (
        "只有 BOSS 开户的号码才能停用或绑定号码",
        "Only numbers the BOSS provisioned can be deactivated or bound",
    ),
    "refused_by_service": ("操作被拒绝", "Refused"),
    "reset_code_common_only": (
        "只有普通用户通过短信验证码重置密码（DTH 用户使用 BOSS 激活密码）",
        "Only common accounts reset their password with an SMS code (dth: the BOSS password)",
    ),
    "bad_input": ("输入有误", "Not valid"),
    # refunds
    "refund": ("退款", "Refund"),
    "refund_confirm": (
        "确定退款？退款后将扣回相应金币或分钟数",
        "Refund? Its credit is taken back",
    ),
    "refund_all": ("全额", "all"),
    "refund_reason": ("退款原因", "Reason"),
    "refund_refused": ("退款失败", "Refund refused"),
    "refunded_notice": ("已退款：订单", "Refunded: order"),
    # app versions
    "versions": ("版本管理", "App versions"),
    "versions_help": (
        "客户端启动时查询的版本信息（version_no、version_dth_no、version_common_no）",
        "What the apps' version queries answer (version_no, version_dth_no, version_common_no)",
    ),
    "versions_saved": ("已保存", "Saved"),
    "versions_kind_default": ("默认", "Default"),
    "versions_kind_dth": ("DTH 用户", "DTH users"),
    "versions_kind_common": ("普通用户", "Common users"),
    "not_configured": ("未配置（客户端收到 failed）", "not configured (the apps get failed)"),
    "android": ("Android", "Android"),
    "version_no": ("版本号", "version"),
    "version_path": ("下载地址", "download address"),
    "version_info": ("更新说明", "notes"),
    "save": ("保存", "Save"),
    # settings view
    "settings": ("系统配置", "Settings"),
    "settings_help": (
        "本节点当前生效的配置（只读，密钥已隐藏）",
        "The settings this node runs with (read-only; secrets masked)",
    ),
    "setting": ("配置项", "Setting"),
    "value": ("值", "Value"),
}
"""``language`` is the switch's label: the name of the *other* language, in itself."""


def translator(lang: Lang) -> Callable[[str], str]:
    index = LANGS.index(lang)

    def t(key: str) -> str:
        return CATALOGUE[key][index]

    return t


def pick(value: str | None, default: Lang) -> Lang:
    """The language a request asked for (its cookie), if it is one we have."""
    for lang in LANGS:
        if value == lang:
            return lang
    return default
