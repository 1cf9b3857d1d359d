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
from datetime import timedelta

from syncd.config import DEFAULT_DEPARTMENT_COLUMNS, DEFAULT_PEOPLE_COLUMNS
from syncd.domain.model import FieldIssue, Rejection

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
    "source.no_root": "人事数据中没有本单位根部门 {id}（同步配置中的根部门编号有误，或导出不全），本次读取不完整",
    "*.missing": "缺少{label}",
    "*.too_long": "{label}超过{limit}个字符",
    "*.unknown": "{label}不是已知的值，应为：{expected}",
    "*.not_integer": "{label}不是整数",
    "*.duplicate": "{label} {key} 出现 {count} 次，所有重复记录均被拒绝",
    "*.unsafe": "{label}含有网页标记或表格公式（如 <…> 或以 = @ 开头），请改为纯文本",
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
    "demo": "演示", "freeze": "冻结账号", "unfreeze": "解冻账号", "onboard": "接入核对确认",
}
RUN_MODES: dict[str, str] = {"incremental": "增量", "full": "全量", "onboard": "接入核对"}
# What a run or a resync covers, by the kind of its scope (`all`, `employee A000123`, `department D0003`).
SCOPES: dict[str, str] = {"all": "全单位", "employee": "人员 {subject}", "department": "部门 {subject}"}
CHANGE_KINDS: dict[str, str] = {
    "dept_adopt": "关联通讯录已有部门", "dept_create": "新建部门", "dept_update": "部门信息变更",
    "dept_move": "部门调整上级", "transfer": "调动",
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
    "rejected": "人事记录被拒绝", "not_found_in_hr": "人事数据中没有", "busy": "通讯录查询繁忙，请稍后再试",
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
# What a finished resync did to its subject, by the journal's state of each change (`done.KIND` first).
RESYNC_RESULTS: dict[str, str] = {
    "done.join": "已在通讯录中创建", "done.adopt": "已关联通讯录中已有的账号并按人事数据更新",
    "done.update": "已更新：{fields}", "done.transfer": "已调至 {to}", "done.rejoin": "已重新启用",
    "done.leave": "已在通讯录中停用", "done.transfer_out": "已在通讯录中停用（调离本单位）",
    "done.*": "已写入通讯录：{kind}",
    "held": "{kind}未写入，等待审批（运行 {run}）",
    "failed": "{kind}未能写入通讯录：{category}",
    "*": "{kind}：{state}",
    "unchanged": "未变化：通讯录与人事数据一致，无需写入。",
    "uncreatable": "未能创建：{reason}",
    "department": "本次同步共 {total} 项变更：已完成 {done} 项，未完成 {failed} 项，等待审批 {held} 项。",
}
LINK_STATES: dict[str, str] = {"active": "在通讯录中", "inactive": "已停用（离职/退休）", "retired": "已撤销"}
CHANGE_REASONS: dict[str, str] = {"absent from HR": "人事数据中已没有"}
PROBLEM_LEVELS: dict[int, str] = {1: "本单位管理员", 2: "上级管理员"}
# How a department as HR has it differs from what syncd last wrote to the directory.
DEPARTMENT_DIFFERENCES: dict[str, str] = {
    "missing": "通讯录中没有", "in_directory_only": "人事数据中已没有", "name": "名称不同", "short_name": "简称不同",
    "order": "排序不同", "parent": "上级部门不同", "people": "在职人数不同",
}
# Why the directory differs from HR for a person or a department (`syncd.console.data.Finding.what`).
DIFFERENCES: dict[str, str] = {
    "join": "人事数据为在职，但通讯录中还没有此人",
    "rejoin": "人事数据为在职，但通讯录中的账号已停用",
    "leave": "已{status}但通讯录仍在职",
    "leave_absent": "人事数据中已没有此人，但通讯录仍在职",
    "transfer_out": "已调离本单位但通讯录仍在职",
    "transfer": "部门不同：人事数据为 {to}，通讯录为 {from_}",
    "update": "{fields}与人事数据不同",
    "uncreatable": "手机号无效，无法创建：{reason}",
    "rejected": "人事记录被拒绝，不会同步",
    "dept_create": "通讯录中还没有此部门",
    "dept_update": "{fields}与人事数据不同",
    "dept_move": "上级部门不同：人事数据为 {to}，通讯录为 {from_}",
    "dept_retire": "人事数据中已没有此部门，但通讯录中仍有",
}
# Where syncd stands with a difference (`Finding.standing`); `{run}` is a run's time and trigger.
STANDINGS: dict[str, str] = {
    "planned": "将在下一次同步（{next}）写入",
    "running": "正在同步（运行 {run}）",
    "held": "等待审批：运行 {run}",
    "waiting": "等待其所依赖的变更审批：运行 {run}",
    "approved": "已批准，将在下一次同步（{next}）生效",
    "failed": "上次同步失败：{category}（运行 {run}）",
    "blocked": "请在人事系统中修正后再同步",
}


def label(table: Mapping[str, str], value: str | None, default: str = "—") -> str:
    """`value` as the table names it in Chinese; `default` for None, the value itself when unknown."""
    if value is None or value == "":
        return default
    return table.get(value, value)


# -- the console's own sentences ------------------------------------------------------------------

CONSOLE: dict[str, str] = {
    "signin.hint": "请输入管理员发给您的访问令牌（人事或运维角色）。令牌只用于本次登录，登录后 8 小时内有效。",
    "city.signin.title": "登录市局控制台",
    "city.signin.hint": "请输入市局管理员发给您的访问令牌。本控制台只读取各单位的同步情况，不做任何修改；"
                        "登录后 8 小时内有效。",
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
    "error.home": "返回总览",
    "state_unavailable": "同步服务的数据库暂时无法连接，请稍后刷新重试；如持续出现，请联系运维人员。",
    "resync.queued": "已提交同步请求，正在排队。",
    "resync.queue_full": "等待执行的同步请求过多，请稍后再试。",
    "person.not_found": "没有找到工号或姓名为“{query}”的人员。",
    "person.query_empty": "请输入工号或姓名。",
    "decided.approved": "已批准运行 {run_id} 的 {count} 项变更，将在下一次同步（{next}）生效。",
    "decided.rejected": ("已驳回运行 {run_id} 的 {count} 项变更；人事数据不变时，"
                         "下一次同步会再次暂缓这些变更并等待审批。"),
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
    # A run by its start and trigger; a department by its path and id; a difference and its standing.
    "run.label": "{started} {trigger}",
    "department.label": "{path}（{id}）",
    "next_sync.unknown": "按计划",
    "finding": "{what}（{standing}）",
    "compare.consistent": "通讯录与人事数据一致。",
    # The overview's alerts: each counted as the page it links to counts it.
    "alert.held": "运行 {run} 有 {count} 项变更等待审批",
    "alert.held_hr": "由运维人员审批",
    "alert.overdue": "{count} 项变更超过截止日期（3 个工作日）仍未进入通讯录",
    "alert.records": "人事数据中 {incomplete} 人信息不完整，{rejected} 条记录被拒绝，请在人事系统中修正",
    "alert.problem": "{title}（自 {since}）",
    "alert.none": "没有需要处理的事项。",
    "alert.open": "查看",
    "person.label": "{name}（{id}）",
    "reason.requested_by": "由 {who} 操作",
    # Where HR finds a record in its export (the file's line).
    "place.person": "人员表第 {line} 行",
    "place.department": "部门表第 {line} 行",
    "export.runs": "运行记录-{stamp}.csv",
    "export.changes": "变更记录-{stamp}.csv",
    "export.roster": "花名册-{stamp}.csv",
}
ROSTER_COLUMNS: tuple[str, ...] = ("部门", "部门编号", "工号", "姓名", "性别", "职务", "职务层次", "办公电话", "排序")
RUNS_COLUMNS: tuple[str, ...] = ("开始时间", "结束时间", "触发", "范围", "结果", "完成", "失败", "待审批")
CHANGES_COLUMNS: tuple[str, ...] = (
    "发现时间", "运行", "变更", "工号或部门编号", "姓名或部门", "涉及字段", "状态", "原因", "截止日期")
# What each state of a change means and what HR does about it (the legend beside every change list).
CHANGE_STATE_ADVICE: dict[str, str] = {
    "done": "已写入通讯录，无需处理。",
    "planned": "已列入计划，正在或即将写入，无需处理。",
    "sent": "已发给通讯录，等待确认；下一次同步会核实，无需处理。",
    "held": "被安全策略暂缓，等待运维人员审批；如属误操作（如批量离职数据有误），请尽快修正人事数据并告知运维人员。",
    "approved": "运维人员已批准，将在下一次同步写入，无需处理。",
    "failed": "写入失败，下一次同步会自动重试；原因是“数据不被通讯录接受”时，请按原因修正人事数据。",
    "rejected": "运维人员已驳回，不会执行；请与运维人员核实人事数据是否有误。",
    "superseded": "人事数据已再次变化，此变更作废，以新的变更为准，无需处理。",
    "stopped": "同步中止时未执行，下一次同步会重新计划，无需处理。",
}
# Open problems the overview lists by their own title (the held, overdue and record problems are counted live
# above them) and the page that shows what to do: `runs` the run history, None only the title.
PROBLEM_PAGES: dict[str, str | None] = {"run_failed": "runs", "quarantined": "runs", "auth_failed": "runs",
                                        "calendar": None}
ROLES: dict[str, str] = {"hr": "人事", "operator": "运维", "auditor": "审计"}


def console_text(key: str, **params: object) -> str:
    """One of the console's sentences, filled in."""
    return CONSOLE[key].format(**params)


def problem_text(item: Rejection | FieldIssue) -> str:
    """Why a record was rejected or a field is incomplete, in Chinese (from its code and params)."""
    kind = item.kind if isinstance(item, Rejection) else "person"
    return reason_text(item.code, item.params, kind, fallback=item.reason)


# -- the completeness report (`syncd.reporting.report`: `syncd report completeness`, the console's downloads) --------

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

# -- the Article 9 figures (`syncd report compliance`, `syncd.domain.compliance`) -------------------------

COMPLIANCE_SHEET = "第九条执行情况"
# One row per figure, in this order; the value column says 无 where a figure has nothing to count.
COMPLIANCE_LABELS: dict[str, str] = {
    "unit": "单位", "period": "统计期间（按发现日期）", "changes": "人员变动数", "on_time": "按期同步数",
    "on_time_share": "按期同步率", "pending": "尚未到期", "median_workdays": "同步用时中位数（工作日）",
    "max_workdays": "最长同步用时（工作日）", "overdue": "逾期未同步", "completeness_share": "在职人员信息完整率",
    "in_post": "在职人数", "open_problems_1": "未解决问题（一级）", "open_problems_2": "未解决问题（二级）",
    "held": "待审批变更",
}
COMPLIANCE_HEADER = ("项目", "数值")
FULL_WIDTH_SPACE = "\u3000"  # pads a Chinese label to a column: as wide as one of its characters
COMPLIANCE_NONE = "无"
# -- the city bureau's overview of its units (`syncd city report`, `syncd.city`) -------------------
CITY_COLUMNS = ("单位", "状态", "最近成功同步", "人员变动数", "按期同步率", "逾期未同步", "信息完整率",
                "二级未解决问题", "待审批变更")
CITY_HEALTH = {True: "正常", False: "异常"}
CITY_ERRORS = {"unreachable": "无法连接", "slow": "应答超时", "untrusted": "证书不被信任",
               "refused": "令牌被拒绝（HTTP {status}）",
               "bad_answer": "应答无法识别（HTTP {status}）"}
CITY_SHEET = "年度考核 {start} 至 {end}"
CITY_ABOUT_SHEET = "说明"  # the assessment workbook's second sheet: when and how completely it was read
CITY_ABOUT = {"period": "统计期间（按发现日期）", "read_at": "各单位数据读取时间", "units": "单位数",
              "unreadable": "无法读取的单位（数据为“无”）"}
CITY_BRAND = "郑政钉通讯录同步 · 市局"
CITY_TITLE = "全市各单位"  # beside the brand when city.toml names no `title`
CITY_ASSESSMENT_FILE = "年度考核-{year}-{stamp}.xlsx"
# What the city admin can do about a unit it could not read (the unit page, under the reason).
CITY_ADVICE = {
    "unreachable": "请确认该单位的同步服务正在运行，且本机能访问其地址；"
                   "可联系该单位管理员检查 systemctl status syncd。",
    "refused": "该单位不接受市局的令牌：请该单位管理员执行 syncd token add city-bureau --role auditor，"
               "把新令牌发给市局，更新 city.toml 中该单位的 token_file。",
    "untrusted": "该单位地址的证书不被市局信任（或证书与地址不符）。如该单位使用内部证书，"
                 "请在 city.toml 中为该单位设置 ca_file（签发其证书的根证书）；否则请该单位检查其证书。",
    "slow": "该单位的同步服务迟迟没有答完：可能负载过高或网络不畅。请联系该单位管理员检查服务器和网络。",
    "bad_answer": "该单位的应答无法识别：可能是地址指向了其他服务，或该单位的 syncd 版本过旧（需支持第九条统计）。",
}
COMPLIANCE_PERIOD = "{start} 至 {end}"


# -- the escalation notices (`syncd.domain.escalation`) --------------------------------------------------

NOTICE_TITLE_PREFIX = "【郑政钉同步·{unit}】"  # the unit in every title and email subject
# What each kind of problem is, as a notice's title and its resolved notice name it.
PROBLEM_TITLES: dict[str, str] = {
    "run_failed": "同步失败", "auth_failed": "接口认证失败", "held": "同步待审批", "records": "人事数据待修正",
    "refused": "变更被通讯录拒绝",
    "overdue": "变更逾期未入通讯录", "quarantined": "同步熔断中止", "calendar": "工作日历缺少年份",
    "digest": "近一周人员调动和离职", "test": "测试通知",
    "source_incomplete": "人事数据读取不完整", "state_unwritable": "同步状态无法写入",
}
# A person's move, as the weekly digest (Article 11) lists it.
# A leave by the 人员状态 it came from (退休, 离职, 死亡); absent from a complete HR read reads as 离职.
DIGEST_MOVES: dict[str, str] = {"transfer": "调出", "transfer_out": "调离本单位", "leave": "离职",
                                "leave:退休": "退休", "leave:离职": "离职", "leave:死亡": "死亡"}
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
    "not_run.what": "{unit}：同步程序出错，本次同步未能运行（错误类型：{error}）。",
    "not_run.action": "请在 syncd 日志中查看 scheduler.job_failed 记录及其前面的错误，"
                      "排除问题（人事数据源、网络或网关）；无法判断原因时请把这段日志交给运维人员。下一次同步会自动重试。",
    "run_failed.what": "{unit}：同步{outcome}（运行 {run}{in_a_row}）。",
    "run_failed.in_a_row": "，已连续失败 {count} 次",
    "run_failed.action": "请运行 syncd status 查看失败原因并排除（网关、网络或数据）；下一次同步会自动重试。",
    # A run whose every failure is the gateway not answering (HTTP 5xx, timeouts, throttling).
    "outage.title": "通讯录服务不可用",
    "outage.what": "{unit}：通讯录服务不可用，变更暂时无法写入（运行 {run}{in_a_row}）。",
    "outage.action": "请检查本机到郑政钉网关的网络，或向平台确认服务状态；恢复后下一次同步会自动补上。",
    "held.what": "{unit}：运行 {run} 的变更被安全策略暂缓，等待审批：{reasons}。",
    # A hold of deactivations names the rule that held them, with its figures: the limits, the shrink floor, or both.
    "held.reason.mass_deactivation": "{count} 项停用（离职、退休、调离）超过批量停用上限"
                                     "（一次停用超过 {max} 人或超过在用人数{active}的 {share} 即暂缓）",
    "held.active": "（{active} 人）",
    "held.reason.shrink": "{count} 项停用（离职、退休、调离）因在职人数骤减而暂缓："
                          "人事数据中的在职人数由上次完整读取时的 {before} 人降为 {now} 人，少了 {lost} 人（{drop}），"
                          "超过骤减下限（减少超过 {share} 且多于 {max} 人即暂缓）",
    "held.action.shrink": "人数骤减多半是人事数据有误（只导出了部分部门、导错了文件）：请人事部门重新完整导出，"
                          "下一次同步会自动撤销这次暂缓。",
    "held.reason.structure": "{count} 项部门结构变更按 safety.structure_changes = \"hold\" 须经审批",
    "held.reason.other": "{count} 项变更（{reason}）",
    "held.affects": "{changes} 项变更暂未写入通讯录{ids}。",
    "held.ids": "：{ids}",
    "held.command": "syncd approve {run} 或 syncd reject {run}{link}",
    "held.action": "请核对后运行 {commands}；暂缓期间新增的变更会并入同一次审批，只需审批最新一次运行。",
    "refused.what": "{unit}：{subject} 的变更（{change}）被通讯录拒绝：涉及其他单位的组织，超出本应用的管理范围"
                    "（运行 {run}）；其他变更不受影响。",
    "refused.affects": "这项变更未写入通讯录；{workdays} 个工作日时限到期仍未解决的，将上报上级管理员。",
    "refused.action.person": "手机号已被其他单位人员使用：请核对该人员在人事数据中的手机号，填错的请人事部门更正；"
                             "确为同一人的，请联系其所在单位的管理员将其调出或释放，之后下一次同步会自动重试。",
    "refused.action.department": "该部门涉及其他单位的组织：请核对人事数据中的上级部门；"
                                 "修正后下一次同步会自动重试。",
    "records.what": "{unit}：人事数据中有 {rejected} 条记录被拒绝、{incomplete} 人信息不完整。",
    "records.affects": "被拒绝的记录未进入通讯录，信息不完整的人员缺少字段。",
    "records.action": "请运行 syncd report completeness 查看明细，交人事部门修正源数据。",
    # An incomplete read, by `source.kind`: what broke off (`what.<kind>`) and what to check (`action.<kind>`).
    "source_incomplete.what.csv": "{unit}：人事导出文件不完整或在读取时被改动（运行 {run}）："
                                  "文件被截断、某行字段数与表头不符、引号未闭合，或读取前后文件大小、修改时间、内容不一致。",
    "source_incomplete.what.xlsx": "{unit}：人事导出的表格文件不完整或在读取时被改动（运行 {run}）："
                                   "文件损坏或未复制完、表头缺少列，或读取前后文件大小、修改时间、内容不一致。",
    "source_incomplete.what.ldap": "{unit}：从人事目录服务器读取人员和部门时中途中断（运行 {run}）："
                                   "连接或登录失败、超出服务器的条数或时间限制、分页结果不完整，或部分目录存放在其他服务器上。",
    "source_incomplete.what.sql": "{unit}：从人事数据库读取人员和部门时中途中断（运行 {run}）："
                                  "连接断开、查询语句出错、事务失败，或大量记录读取出错。",
    "source_incomplete.affects": "本次同步未处理离职和部门撤销；未读到或读取出错的部分没有写入通讯录。",
    "source_incomplete.action.file": "请确认人事导出文件已完整复制到本机（复制完成后再放入读取位置），"
                                     "必要时请人事部门重新完整导出；运行 journalctl -u syncd -g source.incomplete "
                                     "可查看出错的文件和行号。下一次同步会自动重新读取。",
    "source_incomplete.action.ldap": "请检查人事目录服务器是否正常运行、本机能否连接，"
                                     "以及同步账号的密码、查询条数和时间限制；"
                                     "运行 journalctl -u syncd -g source.incomplete 可查看服务器返回的原因。"
                                     "下一次同步会自动重新读取。",
    "source_incomplete.action.sql": "请检查人事数据库是否正常运行、本机能否连接，以及同步所用账号的权限和查询语句；"
                                    "运行 journalctl -u syncd -g source.incomplete 可查看出错原因。"
                                    "下一次同步会自动重新读取。",
    "state_unwritable.what": "{unit}：同步状态数据库无法写入（{error}），同步已暂停，人事变更暂不能进入通讯录。",
    "state_unwritable.action": "请检查状态数据库：磁盘空间、文件权限、数据库锁，或 PostgreSQL 是否可达；"
                               "恢复后同步会自动继续。",
    "overdue.what": "{unit}：{count} 项变更超过 {workdays} 个工作日时限（{detected}截止 {due}）仍未进入通讯录。",
    "overdue.detected": "人事变更发现于 {detected}，",
    "overdue.unknown_calendar": "截止日期涉及工作日历未知的年份，按周一至周五推算，可能有误。",
    "overdue.action": "请运行 syncd status 查看原因：暂缓的变更请审批（syncd approve/reject），同步失败请排除。",
    "calendar.what": "{unit}：工作日历（chinese-calendar）没有 {year} 年的法定节假日和调休，"
                     "截止日期暂按周一至周五计算。",
    "calendar.affects": "{year} 年的 {workdays} 个工作日时限可能算错。",
    "calendar.action": "请升级 chinese-calendar，或在 escalation.workday_overrides 中填写 {year} 年的节假日和调休。",
    "failed.affects": "{count} 项变更未写入通讯录：{ids}",
    # `syncd check-config --send-test-notice`: proves the channel, asks nothing.
    "test.what": "{unit}：这是 syncd check-config --send-test-notice 发出的测试通知，通知渠道可用，无需处理。",
    # The changes a notice names, by id only: `人员 A1、A2 等 57 人；部门 D3`.
    "ids.people": "人员 {ids}{more}",
    "ids.people_more": " 等 {count} 人",
    "ids.departments": "部门 {ids}{more}",
    "ids.departments_more": " 等 {count} 个",
    # Later notices about an open problem; `{text}` is its open notice's text, `{open_for}` a `duration.*`.
    "escalated": "上报：{unit}的以下问题已持续{open_for}{in_a_row}，本单位管理员尚未解决，请督促处理。\n{text}",
    # … raised to level 2 the moment it opened, with no earlier failed run to date it from.
    "escalated.now": "上报：{unit}的以下问题刚刚发现{in_a_row}，已同时通知本单位管理员，请督促处理。\n{text}",
    # Level 2 cannot run commands on the unit's server: it is told whom to call there.
    "contacts": "本单位联系人：{contacts}",
    "contact": "{name}（{contact}）",
    "reminder.higher": "提醒（第 {number} 次）：{unit}的以下问题已持续{open_for}，仍未解决，请督促本单位处理。\n{text}",
    # A console page beside a command, when api.public_url is set.
    "console_link": "（控制台：{url}）",
    "escalated.in_a_row": "，同步已连续失败 {count} 次",
    "reminder": "提醒（第 {number} 次）：以下问题已持续{open_for}，仍未解决。\n{text}\n"
                "如已知悉并在处理，可运行 syncd ack {key} 停止提醒{link}。",
    "resolved": "已解决：{unit}的“{what}”问题（{key}）。\n开始：{opened}，解决：{resolved}，持续{duration}。",
    # The weekly digest (郑审〔2021〕44号 Article 11): a heading, then one line per department.
    "digest.head": "{unit}：{start} 至 {end} 共 {people} 人调动、调离、退休、离职或去世，"
                   "请各工作群管理员据此调整、清理工作群（郑审〔2021〕44号第十一条）。",
    "digest.department": "{department}：{moves}",
    "digest.department_id": "部门 {id}",
    "digest.department_named": "部门 {id}（{name}）",
    "digest.department_unknown": "部门不详",
    "digest.move": "{move} {employee_id}{to}",
    "digest.move_to": "（至 {department}）",
    "digest.destination_named": "{name} {id}",
    # How long a problem has been open: `1天4小时`, `3小时20分钟`, `45分钟`, `不到1分钟`.
    "duration.days": "{days}天",
    "duration.hours": "{hours}小时",
    "duration.minutes": "{minutes}分钟",
    "duration.under_a_minute": "不到1分钟",
}


def notice_text(key: str, /, **params: object) -> str:
    """One of the escalation notices' templates, filled in."""
    return NOTICES[key].format(**params)


def duration_text(delta: timedelta) -> str:
    """`1天4小时`, `3小时20分钟`, `45分钟`; under a minute reads `不到1分钟`, never `0分钟`."""
    if delta < timedelta(minutes=1):
        return notice_text("duration.under_a_minute")
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return notice_text("duration.days", days=days) + (notice_text("duration.hours", hours=hours) if hours else "")
    if hours:
        return notice_text("duration.hours", hours=hours) + (
            notice_text("duration.minutes", minutes=minutes) if minutes else "")
    return notice_text("duration.minutes", minutes=minutes)


def notice_title(state: str, kind: str, unit: str, what: str | None = None) -> str:
    """A notice's title: `state` is open, reminder, escalated or resolved; `kind` the problem's kind
    (`what` instead of its PROBLEM_TITLES entry when given)."""
    return notice_text(f"title.{state}", prefix=NOTICE_TITLE_PREFIX.format(unit=unit),
                       what=what or PROBLEM_TITLES[kind])


# -- the onboarding review (`syncd onboard`: the workbook, its refusals, the console's 接入核对 page) ----

ONBOARD_SHEETS: dict[str, str] = {"departments": "部门", "people": "人员", "summary": "汇总"}
ONBOARD_DEPARTMENT_COLUMNS: dict[str, str] = {
    "hr_id": "部门编号", "name": "部门名称", "short_name": "简称", "parent": "上级部门编号", "kind": "匹配方式",
    "organization_code": "组织编码", "organization_name": "郑政钉名称", "path": "郑政钉路径", "confirmed": "确认",
    "note": "说明",
}
ONBOARD_PERSON_COLUMNS: dict[str, str] = {
    "employee_id": "工号", "name": "姓名", "department": "部门编号", "department_name": "部门名称", "kind": "匹配方式",
    "employee_code": "employeeCode", "directory_name": "郑政钉姓名", "directory_path": "郑政钉部门",
    "directory_status": "郑政钉状态", "confirmed": "确认", "note": "说明",
}
# How a row matched (匹配方式): the workbook, the console and the refusals read the same words.
ONBOARD_KINDS: dict[str, str] = {
    "linked": "已关联", "ext_code": "外部编码", "name": "名称", "short_name": "简称", "similar": "相似名称",
    "mobile": "手机号", "same_name": "同部门同名", "none": "无", "directory_only": "仅在郑政钉",
}
ONBOARD_YES = "是"  # what 确认 holds for a row to be stored
ONBOARD_STATUSES: dict[str, str] = {"A": "在用", "F": "已停用"}
ONBOARD_NOTES: dict[str, str] = {
    "similar": "名称相近，是否为同一部门请人工确认",
    "several": "同级有 {count} 个组织可能是该部门，请只确认其中一个",
    "same_name": "仅姓名相同，是否为同一人请人工确认（不按姓名自动匹配）",
    "same_name.several": "本部门有 {count} 人同名，未作建议",
    "parent_unsure": "上级部门尚未确认，请先确认上级部门",
    "linked": "已由 syncd 关联，无需确认",
    "outside": "该人员主职不在本单位",
    "directory_only.department": "人事数据中没有对应部门：可在本行填写部门编号并确认，或由管理员处理",
    "directory_only.person": "人事数据中没有此人（多为已离职未删除，郑审〔2021〕44号第九条）",
    "none.department": "郑政钉中未找到，首次同步时将创建",
    "none.person": "郑政钉中未找到，首次同步时将创建",
}
# Why a confirmed row is refused by `syncd onboard --accept` (`{sheet}`, `{row}` name where it is).
ONBOARD_REFUSALS: dict[str, str] = {
    "row.incomplete": "确认的行缺少编号",
    "department.unknown": "人事数据中没有部门 {id}",
    "department.root": "部门 {id} 是本单位根部门，无需确认",
    "department.renamed_in_hr": "人事数据中部门 {id} 的名称已改为“{name}”，核对表已过时",
    "organization.gone": "组织 {code} 已不存在或已不在本单位",
    "organization.renamed": "组织 {code} 已改名为“{name}”，核对表已过时",
    "department.twice": "部门 {id} 已在第 {row} 行确认过",
    "organization.twice": "组织 {code} 已在第 {row} 行确认给另一个部门",
    "department.linked_elsewhere": "部门 {id} 已关联组织 {code}",
    "organization.linked_elsewhere": "组织 {code} 已关联部门 {id}",
    "person.unknown": "人事数据中没有工号 {id}",
    "person.not_in_post": "工号 {id} 的人员状态为{status}，不是在职",
    "employee.gone": "郑政钉中已没有人员 {code}",
    "employee.renamed": "郑政钉中人员 {code} 的姓名已改变，核对表已过时",
    "mobile.elsewhere": "工号 {id} 的手机号现属郑政钉人员 {code}",
    "person.twice": "工号 {id} 已在第 {row} 行确认过",
    "employee.twice": "人员 {code} 已在第 {row} 行确认给另一个工号",
    "person.linked_elsewhere": "工号 {id} 已关联人员 {code}",
    "employee.linked_elsewhere": "人员 {code} 已关联工号 {id}",
    "refusal": "{sheet}表第 {row} 行：{reason}",
    "sheet.missing": "核对表缺少工作表“{sheet}”或其表头列“{column}”",
}
# The summary sheet and the console's counts, in this order.
ONBOARD_SUMMARY: dict[str, str] = {
    "departments": "人事部门数", "departments.confirmed": "精确匹配（已预先确认）",
    "departments.to_confirm": "建议（待人工确认）", "departments.none": "郑政钉中未找到（将创建）",
    "departments.directory_only": "仅在郑政钉的组织", "departments.linked": "部门已关联",
    "people": "在职人数", "people.confirmed": "手机号匹配（已预先确认）", "people.to_confirm": "建议（待人工确认）",
    "people.none": "郑政钉中未找到（将创建）", "people.directory_only": "仅在郑政钉的人员",
    "people.linked": "人员已关联",
}


def onboard_refusal(sheet: str, row: int, reason: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """A refused row of the onboarding workbook, in Chinese: `部门表第 5 行：组织 … 已改名为“…”`."""
    text = ONBOARD_REFUSALS[reason].format(**dict(params))
    return ONBOARD_REFUSALS["refusal"].format(sheet=ONBOARD_SHEETS.get(sheet, sheet), row=row, reason=text)
# The console's 接入核对 page (its headings and explanations are in its template).
ONBOARD_CONSOLE: dict[str, str] = {
    "started": "已开始生成接入核对表：正在读取人事数据和郑政钉通讯录，完成后本页显示结果。",
    "running": "接入核对表正在生成，请稍候。",
    "file": "接入核对-{when}.xlsx",
}
