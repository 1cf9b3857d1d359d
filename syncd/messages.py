"""The one catalogue of what HR and the unit's administrators read: Chinese text by stable code.

Logs stay English and machine-readable: a rejected record or an incomplete field carries a stable
`code` (`mobile.invalid`, `department.unknown`, …) beside its English `reason`, and everything HR
reads — the completeness report, the console — renders the code through this catalogue. A code is
`<field>.<what>`; a code without an entry of its own falls back to its `*.<what>` entry with the
field's Chinese label, so a new field needs a label here, not a new sentence.

Keep every Chinese sentence the program shows HR here, the escalation notices administrators receive
included (the console's page templates hold their own headings and column names), so that a wording
is changed in one place and checked by one test; `tests/test_messages_catalogue.py` fails on Chinese
text anywhere else in `syncd/` or `connectors/` that its allowlist does not name as data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from syncd.config import DEFAULT_DEPARTMENT_COLUMNS, DEFAULT_PEOPLE_COLUMNS
from syncd.model import FieldIssue, Rejection

# -- field labels ---------------------------------------------------------------------------------

PERSON_FIELDS: Mapping[str, str] = DEFAULT_PEOPLE_COLUMNS  # employee_id → 工号, mobile → 手机号, …
DEPARTMENT_FIELDS: Mapping[str, str] = {**DEFAULT_DEPARTMENT_COLUMNS, "organization_code": "组织编码"}


def field_label(field: str, kind: str = "person") -> str:
    """The Chinese name of a person field (`mobile` → 手机号) or, for `kind="department"`, a department field."""
    labels = DEPARTMENT_FIELDS if kind in ("department", "dept") else PERSON_FIELDS
    return labels.get(field) or PERSON_FIELDS.get(field) or DEPARTMENT_FIELDS.get(field) or field

# How a list reads: its items joined by the enumeration comma (`人员 A1、A2`), groups of items by a semicolon.
LIST_SEPARATOR = "、"
GROUP_SEPARATOR = "；"


# -- validation reasons ---------------------------------------------------------------------------

# `{label}` is the field's Chinese name; the other placeholders are the reason's params.
REASONS: dict[str, str] = {
    "mobile.invalid": "手机号不是11位大陆手机号",
    "mobile.missing": "缺少手机号（手机号是登录账号，缺少则无法在通讯录中创建）",
    "mobile.shared": "与 {others} 的手机号相同，人事部门更正前两人都不会被创建或关联",
    "leader_duties.missing": "缺少领导分工（人员角色为领导时必填）",
    "department.unknown": "部门编号 {department} 不存在（部门表中没有，或该部门被拒绝）",
    "parent.cycle": "上级部门形成循环：{path}",
    "parent.unknown": "上级部门 {parent} 不存在（路径：{path}）",
    "parent.rejected": "位于被拒绝的部门 {department} 之下",
    "parent.missing": "没有上级部门，且不是本单位的根部门 {root}",
    "source.broke_off": "人事数据读取中断，本次读取不完整",
    "*.missing": "缺少{label}",
    "*.too_long": "{label}超过{limit}个字符",
    "*.unknown": "{label}不是已知的值，应为：{expected}",
    "*.not_integer": "{label}不是整数",
    "*.duplicate": "{label} {key} 出现 {count} 次，所有重复记录均被拒绝",
}


def reason_template(code: str) -> str | None:
    """The Chinese template of a reason code (its own, else its `*.<what>` one), or None."""
    if code in REASONS:
        return REASONS[code]
    _, _, what = code.rpartition(".")
    return REASONS.get(f"*.{what}")


def reason_text(code: str, params: Iterable[tuple[str, str]] | Mapping[str, str] = (), kind: str = "person",
                fallback: str = "") -> str:
    """A reason in Chinese: the code's template filled with its params and the field's label.

    `fallback` (the English reason) is shown only for a code the catalogue lacks, which the
    catalogue's test rules out for every code syncd produces.
    """
    template = reason_template(code)
    if template is None:
        return fallback or code
    field = code.rpartition(".")[0]
    values = dict(params.items() if isinstance(params, Mapping) else params)
    values.setdefault("label", field_label(field, kind))
    try:
        return template.format(**values)
    except (KeyError, IndexError):  # a param the template names was not given
        return template.split("{", 1)[0].rstrip("：（ ") or fallback or code


# -- what the state records, as HR and administrators read it -------------------------------------

RUN_OUTCOMES: dict[str, str] = {
    "success": "成功", "partial": "部分失败", "failed": "失败", "held": "待审批", "skipped": "无变化，跳过",
    "crashed": "异常中断", "dry_run": "试运行", "running": "运行中",
}
RUN_TRIGGERS: dict[str, str] = {
    "start": "启动时", "schedule": "定时（增量）", "full": "每日全量", "resync": "手动同步", "manual": "命令行",
    "demo": "演示", "freeze": "冻结账号", "unfreeze": "解冻账号",
}
RUN_MODES: dict[str, str] = {"incremental": "增量", "full": "全量"}
# What a run or a resync covers, by the kind of its scope (`all`, `employee A000123`, `department D0003`).
SCOPES: dict[str, str] = {"all": "全单位", "employee": "人员 {subject}", "department": "部门 {subject}"}
CHANGE_KINDS: dict[str, str] = {
    "dept_create": "新建部门", "dept_update": "部门信息变更", "dept_move": "部门调整上级", "transfer": "调动",
    "update": "信息变更", "rejoin": "重新启用", "adopt": "关联通讯录已有人员", "join": "新增人员",
    "transfer_out": "调离本单位", "leave": "离职/退休", "dept_retire": "撤销部门", "freeze": "冻结账号",
    "unfreeze": "解冻账号",
}
CHANGE_STATES: dict[str, str] = {
    "planned": "待执行", "sent": "已发送待确认", "done": "已完成", "failed": "失败", "held": "待审批",
    "approved": "已批准待执行", "rejected": "已驳回", "superseded": "已作废（数据已变）", "stopped": "未执行",
}
# Why a change did not land (the journal's error category; the gateway's own categories, zzd-api.md §3).
ERROR_CATEGORIES: dict[str, str] = {
    "auth": "接口认证失败", "throttled": "接口限流", "unavailable": "通讯录服务不可用", "scope": "超出应用授权范围",
    "not_found": "通讯录中未找到", "conflict": "与通讯录现有数据冲突", "invalid": "数据不被通讯录接受",
    "state": "通讯录当前状态不允许", "duplicate_message": "重复请求", "stopped": "同步中止，未执行",
    "dependency": "所依赖的变更未完成", "unsupported": "不支持的变更", "superseded": "已由其他变更完成",
    "waiting": "等待所依赖的变更审批", "structure": "组织架构变更须审批", "mass_deactivation": "批量离职超过安全阈值",
    "rejected": "人事记录被拒绝", "not_found_in_hr": "人事数据中没有",
}
RESYNC_STATES: dict[str, str] = {"queued": "排队中", "running": "同步中", "done": "已完成", "failed": "失败"}
# A resync that could not run its subject (`syncd.service.resyncs.carry_out`), by its outcome; `*` for an
# outcome that is neither one of these nor an ERROR_CATEGORIES entry.
RESYNC_FAILURES: dict[str, str] = {
    "rejected": "该人员的人事记录被拒绝，未同步：{reason}",
    "not_found": "人事数据中没有 {subject}，未同步",
    "*": "同步失败，详见运行记录。",
}
# A resync whose run ran but did not write everything, by the run's outcome; `*` for any other outcome.
RESYNC_OUTCOMES: dict[str, str] = {
    "partial": "部分变更未能写入通讯录，详见运行记录。",
    "failed": "同步中止，变更未写入通讯录，详见运行记录。",
    "crashed": "同步异常中断，下次同步会继续完成。",
    "held": "变更已被安全策略暂缓，须运维人员审批后才写入通讯录。",
    "*": "同步未完成，详见运行记录。",
}
LINK_STATES: dict[str, str] = {"active": "在通讯录中", "inactive": "已停用（离职/退休）", "retired": "已撤销"}
CHANGE_REASONS: dict[str, str] = {"absent from HR": "人事数据中已没有"}
PROBLEM_LEVELS: dict[int, str] = {1: "本单位管理员", 2: "上级管理员"}
# How a department as HR has it differs from what syncd last wrote to the directory.
DEPARTMENT_DIFFERENCES: dict[str, str] = {
    "missing": "通讯录中没有", "in_directory_only": "人事数据中已没有", "name": "名称不同", "short_name": "简称不同",
    "order": "排序不同", "parent": "上级部门不同",
}


def label(table: Mapping[str, str], value: str | None, default: str = "—") -> str:
    """`value` as the table names it in Chinese; `default` for None, the value itself when unknown."""
    if value is None or value == "":
        return default
    return table.get(value, value)


# -- the console's own sentences ------------------------------------------------------------------

CONSOLE: dict[str, str] = {
    "signin.failed": "令牌无效，请检查后重试。",
    "signin.empty": "请输入令牌。",
    "signin.limited": "登录失败次数过多，请 {minutes} 分钟后再试。",
    "signin.expired": "登录已过期，请重新登录。",
    "signin.required": "请先登录。",
    "signed_out": "已退出登录。",
    "csrf": "表单已过期或来源不明，请刷新页面后重试。",
    "forbidden": "此页面仅限运维人员使用，您当前的角色是“{role}”。",
    "not_found": "页面不存在，或您要找的记录已不存在。",
    "method": "不支持此操作方式。",
    "error": "服务器内部错误，请稍后重试；如持续出现，请联系运维人员查看 syncd 日志。",
    "too_large": "提交的内容过大。",
    "bad_request": "请求无效。",
    "resync.queued": "已提交同步请求，正在排队。",
    "person.not_found": "没有找到工号或姓名为“{query}”的人员。",
    "person.query_empty": "请输入工号或姓名。",
    "decided.approved": "已批准运行 {run_id} 的 {count} 项变更，下一次同步时写入通讯录。",
    "decided.rejected": "已驳回运行 {run_id} 的 {count} 项变更。",
    "decided.none": "运行 {run_id} 没有等待审批的变更（可能已被其他人处理）。",
    "directory.not_linked": "此人尚未与通讯录关联，无法读取。",
    "directory.refused": "读取通讯录失败：{category}。",
    "directory.absent": "通讯录中没有找到此人（员工编码 {code}）。",
    # A downloaded completeness report: `{scope}` is the department's id or SCOPES["all"], `{stamp}` the time.
    "report.file_name": "信息完整性-{scope}-{stamp}.{fmt}",
    # A coded person field's value: `男（1）`.
    "coded_value": "{label}（{code}）",
    # How long a run took: `{seconds}` and `{minutes}` come formatted (`12.5`).
    "duration.seconds": "{seconds} 秒",
    "duration.minutes": "{minutes} 分钟",
}
ROLES: dict[str, str] = {"hr": "人事", "operator": "运维"}


def console_text(key: str, **params: object) -> str:
    """One of the console's sentences, filled in."""
    return CONSOLE[key].format(**params)


def problem_text(item: Rejection | FieldIssue) -> str:
    """Why a record was rejected or a field is incomplete, in Chinese (from its code and params)."""
    kind = item.kind if isinstance(item, Rejection) else "person"
    return reason_text(item.code, item.params, kind, fallback=item.reason)


# -- the completeness report (`syncd.report`: `syncd report completeness`, the console's downloads) --------

REPORT_COLUMNS: tuple[str, ...] = ("部门", "部门编号", "工号", "姓名", "状态", "缺少字段", "无效字段", "说明", "位置")
# A row's 状态: an in-post person with fields to fix, or a person record syncd rejected.
REPORT_STATUSES: dict[str, str] = {"incomplete": "不完整", "rejected": "已拒绝"}
REPORT_SHEETS: dict[str, str] = {"rows": "完整性", "summary": "汇总"}  # the XLSX workbook's sheets
# The counts an HR head reads first, in this order (the console's templates pick some of them by their label).
REPORT_SUMMARY: dict[str, str] = {
    "in_post": "在职人数", "complete": "信息完整", "share": "完整率", "incomplete": "信息不完整",
    "rejected": "记录被拒绝",
}
REPORT: dict[str, str] = {
    "rejected.department": "（未入库）",  # what stands in the 部门 column of a rejected record
    # A person's line in the terminal table: `缺少 职级、领导分工；无效 手机号不是11位大陆手机号`.
    "missing": "缺少 {fields}",
    "invalid": "无效 {reasons}",
}
# `syncd report completeness` over a source that broke off (stderr; the report itself is HR's).
REPORT_PARTIAL = "警告：人事数据源未能读到末尾，本报告不完整。"


# -- the escalation notices (`syncd.escalation`) --------------------------------------------------

NOTICE_TITLE_PREFIX = "【郑政钉同步】"
# What each kind of problem is, as a notice's title and its resolved notice name it.
PROBLEM_TITLES: dict[str, str] = {
    "run_failed": "同步失败", "auth_failed": "接口认证失败", "held": "同步待审批", "records": "人事数据待修正",
    "overdue": "变更逾期未入通讯录", "quarantined": "同步熔断中止", "calendar": "工作日历缺少年份",
    "digest": "近一周人员调动和离职", "source_incomplete": "人事数据读取不完整", "state_unwritable": "同步状态无法写入",
}
# A person's move, as the weekly digest (Article 11) lists it.
DIGEST_MOVES: dict[str, str] = {"transfer": "调出", "transfer_out": "调离本单位", "leave": "离职"}
# `str.format` templates; a failed run's outcome (`run_failed.what`'s `{outcome}`) is its RUN_OUTCOMES entry.
NOTICES: dict[str, str] = {
    # Titles: `{prefix}` is NOTICE_TITLE_PREFIX, `{what}` the problem's PROBLEM_TITLES entry.
    "title.open": "{prefix}{what}",
    "title.reminder": "{prefix}提醒：{what}",
    "title.escalated": "{prefix}上报：{what}",
    "title.resolved": "{prefix}已恢复：{what}",
    # The open notice: what happened (`<kind>.what`), then one line each for these.
    "open.since": "开始：{since}",
    "open.affects": "影响：{affects}",
    "open.action": "处理：{action}",
    # Each problem: what happened, what it affects (`failed.affects` for a run's failed changes), what to do.
    "auth_failed.what": "{unit}：网关拒绝了本应用的认证、签名或权限（运行 {run}），同步无法写入。",
    "auth_failed.action": "请检查 target.app_key、应用密钥与服务器时钟，或向平台确认应用的授权范围；"
                          "修复后运行 syncd sync。",
    "quarantined.what": "{unit}：写入失败比例过高，同步已自动中止（运行 {run}）。",
    "quarantined.action": "请运行 syncd status 查看失败原因，检查网关与字段映射；排除后下一次同步会自动继续。",
    "not_run.what": "{unit}：同步未能运行（{error}）。",
    "not_run.action": "请查看 syncd 日志并排除问题（人事数据源、网络或网关）；下一次同步会自动重试。",
    "run_failed.what": "{unit}：同步{outcome}（运行 {run}{in_a_row}）。",
    "run_failed.in_a_row": "，已连续失败 {count} 次",
    "run_failed.action": "请运行 syncd status 查看失败原因并排除（网关、网络或数据）；下一次同步会自动重试。",
    "held.what": "{unit}：运行 {run} 的变更被安全策略暂缓，等待审批。",
    "held.affects": "{changes} 项变更暂未写入通讯录。",
    "held.action": "请核对后运行 syncd approve {run} 或 syncd reject {run}。",
    "records.what": "{unit}：人事数据中有 {rejected} 条记录被拒绝、{incomplete} 人信息不完整。",
    "records.affects": "被拒绝的记录未进入通讯录，信息不完整的人员缺少字段。",
    "records.action": "请运行 syncd report completeness 查看明细，交人事部门修正源数据。",
    "source_incomplete.what": "{unit}：人事导出文件不完整或在读取时被改动（运行 {run}）："
                              "文件被截断、某行字段数与表头不符、引号未闭合，或读取前后文件大小、修改时间、内容不一致。",
    "source_incomplete.affects": "本次同步未处理离职和部门撤销，受损部分的数据未写入通讯录。",
    "source_incomplete.action": "请查看 syncd 日志中的 source.incomplete 事件（指出文件和行号），"
                                "请人事部门重新完整导出；下一次同步会自动重新读取。",
    "state_unwritable.what": "{unit}：同步状态数据库无法写入（{error}），同步已暂停，人事变更暂不能进入通讯录。",
    "state_unwritable.action": "请检查状态数据库：磁盘空间、文件权限、数据库锁，或 PostgreSQL 是否可达；"
                               "恢复后同步会自动继续。",
    "overdue.what": "{unit}：{count} 项变更超过 {workdays} 个工作日时限（截止 {due}）仍未进入通讯录。",
    "overdue.action": "请运行 syncd status 查看原因：暂缓的变更请审批（syncd approve/reject），同步失败请排除。",
    "calendar.what": "{unit}：工作日历（chinese-calendar）没有 {year} 年的法定节假日和调休，"
                     "截止日期暂按周一至周五计算。",
    "calendar.affects": "{year} 年的 {workdays} 个工作日时限可能算错。",
    "calendar.action": "请升级 chinese-calendar，或在 escalation.workday_overrides 中填写 {year} 年的节假日和调休。",
    "failed.affects": "{count} 项变更未写入通讯录：{ids}",
    # The changes a notice names, by id only: `人员 A1、A2 等 57 人；部门 D3`.
    "ids.people": "人员 {ids}{more}",
    "ids.people_more": " 等 {count} 人",
    "ids.departments": "部门 {ids}{more}",
    "ids.departments_more": " 等 {count} 个",
    # Later notices about an open problem; `{text}` is its open notice's text, `{open_for}` a `duration.*`.
    "escalated": "上报：{unit}的以下问题已持续{open_for}{in_a_row}，本单位管理员尚未解决，请督促处理。\n{text}",
    "escalated.in_a_row": "，同步已连续失败 {count} 次",
    "reminder": "提醒（第 {number} 次）：以下问题已持续{open_for}，仍未解决。\n{text}\n"
                "如已知悉并在处理，可运行 syncd ack {key} 停止提醒。",
    "resolved": "已解决：{unit}的“{what}”问题（{key}）。\n开始：{opened}，解决：{resolved}，持续{duration}。",
    # The weekly digest (郑审〔2021〕44号 Article 11): a heading, then one line per department.
    "digest.head": "{unit}：{start} 至 {end} 共 {people} 人调动或离职，"
                   "请各工作群管理员据此调整、清理工作群（郑审〔2021〕44号第十一条）。",
    "digest.department": "{department}：{moves}",
    "digest.department_id": "部门 {id}",
    "digest.department_named": "部门 {id}（{name}）",
    "digest.department_unknown": "部门不详",
    "digest.move": "{move} {employee_id}{to}",
    "digest.move_to": "（至 {department}）",
    # How long a problem has been open: `1天4小时`, `3小时20分钟`, `45分钟`.
    "duration.days": "{days}天",
    "duration.hours": "{hours}小时",
    "duration.minutes": "{minutes}分钟",
}


def notice_text(key: str, /, **params: object) -> str:
    """One of the escalation notices' templates, filled in."""
    return NOTICES[key].format(**params)


def notice_title(state: str, kind: str) -> str:
    """A notice's title: `state` is open, reminder, escalated or resolved; `kind` the problem's kind."""
    return notice_text(f"title.{state}", prefix=NOTICE_TITLE_PREFIX, what=PROBLEM_TITLES[kind])
