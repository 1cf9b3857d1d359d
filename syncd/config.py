"""Configuration: one TOML file, `SYNCD_SECTION__KEY` overrides, validated in one place.

Every problem is reported with its key path, the offending value (secrets masked) and what was
expected, so that `syncd check-config` can list them all at once and the daemon fails at start.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
import typing
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from sqlalchemy.engine import make_url

from syncd.domain.model import DEPARTMENT_FIELDS, PERSON_FIELDS

DEFAULT_PATH = Path("/etc/syncd/syncd.toml")
ENV_PREFIX = "SYNCD_"
SECRET_KEY_PARTS = ("secret", "password", "token")

DEFAULT_PEOPLE_COLUMNS: dict[str, str] = {
    "employee_id": "工号", "name": "姓名", "gender": "性别", "mobile": "手机号", "department": "部门编号",
    "establishment": "编制", "rank": "职级", "political_status": "政治面貌", "role": "人员角色",
    "post": "职务", "post_level": "职务层次", "office_phone": "办公电话", "leader_duties": "领导分工",
    "status": "人员状态", "order": "排序",
}
DEFAULT_DEPARTMENT_COLUMNS: dict[str, str] = {
    "id": "部门编号", "name": "部门名称", "short_name": "简称", "parent": "上级部门编号", "order": "排序",
}
DEFAULT_LDAP_PEOPLE_ATTRIBUTES: dict[str, str] = {
    "employee_id": "employeeNumber", "name": "cn", "mobile": "mobile", "department": "departmentNumber",
    "post": "title", "office_phone": "telephoneNumber", "status": "employeeType",
}
DEFAULT_LDAP_DEPARTMENT_ATTRIBUTES: dict[str, str] = {
    "id": "ou", "name": "description", "parent": "", "order": "",
}


class _Section(BaseModel):
    # A misspelt key is an error, never silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


def resolve_secret(value: str | None, file: Path | None, key: str) -> str:
    """The secret's current text: from the file (re-read every call) or `env:NAME` or literal."""
    if file is not None:
        return file.read_text(encoding="utf-8").strip()
    if value is None:
        raise ConfigError([Problem(key, None, "a secret: set it or its *_file")])
    if value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ConfigError([Problem(key, value, f"environment variable {name} to be set")])
        return os.environ[name]
    return value


class UnitConfig(_Section):
    """`[unit]`: which unit this is and where its part of the directory starts."""

    name: str = Field(min_length=1)
    root_department: str = Field(min_length=1)
    root_organization_code: str = Field(pattern=r"^GO_[0-9a-zA-Z]+$")
    operator: str = Field(default="syncd", min_length=1)
    # extOrgCode is unique per tenant, not per unit: units sharing a tenant (a city bureau and its
    # district bureaus) whose HR department ids overlap give each unit its own prefix, e.g. "ZZSJ-".
    ext_org_code_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9_.:-]*$", max_length=32)


def _known(mapping: dict[str, str], allowed: tuple[str, ...]) -> dict[str, str]:
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise ValueError(f"field names from {', '.join(allowed)}; unknown: {', '.join(unknown)}")
    return mapping


# A table keyed by people (or department) field names: a misspelt field is an error at start.
PeopleFieldMap = Annotated[dict[str, str], AfterValidator(lambda v: _known(v, PERSON_FIELDS))]
DepartmentFieldMap = Annotated[dict[str, str], AfterValidator(lambda v: _known(v, DEPARTMENT_FIELDS))]


class ColumnsConfig(_Section):
    """`[source.columns]`: header names of the CSV/XLSX export, by field; unset fields keep the default."""

    people: PeopleFieldMap = Field(default_factory=dict)
    departments: DepartmentFieldMap = Field(default_factory=dict)

    @model_validator(mode="after")
    def _with_defaults(self) -> ColumnsConfig:
        object.__setattr__(self, "people", {**DEFAULT_PEOPLE_COLUMNS, **self.people})
        object.__setattr__(self, "departments", {**DEFAULT_DEPARTMENT_COLUMNS, **self.departments})
        return self


class LdapConfig(_Section):
    """`[source.ldap]`: a directory server holding HR's people and departments."""

    url: str = Field(pattern=r"^ldaps?://[^\s/]+")
    start_tls: bool = False
    # Plain ldap:// sends the bind password in clear: only when an operator says so explicitly.
    allow_plaintext: bool = False
    ca_file: Path | None = None
    bind_dn: str = Field(min_length=1)
    password_file: Path
    people_base: str = Field(min_length=1)
    people_filter: str = "(objectClass=inetOrgPerson)"
    departments_base: str = Field(min_length=1)
    departments_filter: str = "(objectClass=organizationalUnit)"
    page_size: int = Field(default=500, ge=1, le=10000)
    timeout: float = Field(default=10.0, gt=0, le=600)
    # Where a person's department comes from: an attribute (people_attributes.department) or the
    # entry's parent DN, matched against the departments read.
    department_from: Literal["attribute", "dn"] = "attribute"
    people_attributes: PeopleFieldMap = Field(default_factory=lambda: dict(DEFAULT_LDAP_PEOPLE_ATTRIBUTES))
    department_attributes: DepartmentFieldMap = Field(
        default_factory=lambda: dict(DEFAULT_LDAP_DEPARTMENT_ATTRIBUTES))

    @model_validator(mode="after")
    def _secure_transport(self) -> LdapConfig:
        if self.url.startswith("ldap://") and not self.start_tls and not self.allow_plaintext:
            raise ValueError("source.ldap.url: ldaps://, or start_tls = true, or allow_plaintext = true explicitly")
        if self.url.startswith("ldaps://") and self.start_tls:
            raise ValueError("source.ldap.start_tls: false with ldaps:// (the connection is TLS from the start)")
        if not self.password_file.is_file():
            raise ValueError(f"source.ldap.password_file: a readable file, not {str(self.password_file)!r}")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"source.ldap.ca_file: a readable PEM file, not {str(self.ca_file)!r}")
        return self

    def password(self) -> str:
        """The bind password, re-read from its file on every bind."""
        return self.password_file.read_text(encoding="utf-8").strip()


class SqlConfig(_Section):
    """`[source.sql]`: an HR database, any SQLAlchemy URL, two queries with column mapping."""

    url: str = Field(min_length=1)
    people_query: str = Field(min_length=1)
    departments_query: str = Field(min_length=1)
    # Optional: a query whose one row changes whenever HR's data does (e.g. `SELECT max(updated_at),
    # count(*) FROM staff`); without it every incremental cycle reads both queries.
    changed_query: str | None = Field(default=None, min_length=1)
    password_file: Path | None = None
    # Seconds to connect and for each statement (a streamed query: each batch of 1,000 rows).
    timeout: float = Field(default=300.0, gt=0, le=86400)
    people_columns: PeopleFieldMap = Field(default_factory=dict)  # field = "column"; default: same name
    department_columns: DepartmentFieldMap = Field(default_factory=dict)


class SourceConfig(_Section):
    """`[source]`: where HR's truth is read from."""

    kind: Literal["csv", "xlsx", "ldap", "sql"] = "csv"
    people: Path | None = None
    departments: Path | None = None
    encoding: Literal["auto", "utf-8", "utf-8-sig", "gb18030"] = "auto"
    columns: ColumnsConfig = Field(default_factory=ColumnsConfig)
    code_tables: Path | None = None
    ldap: LdapConfig | None = None
    sql: SqlConfig | None = None

    @model_validator(mode="after")
    def _files_for_file_kinds(self) -> SourceConfig:
        if self.kind in ("csv", "xlsx"):
            missing = [k for k in ("people", "departments") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"source.{missing[0]}: a file path when source.kind is {self.kind!r}")
        elif getattr(self, self.kind) is None:
            raise ValueError(f"source.{self.kind}: a [source.{self.kind}] section when source.kind is {self.kind!r}")
        return self


class TargetConfig(_Section):
    """`[target]`: the Zhengzhengding gateway and the app's credentials."""

    base_url: str = Field(pattern=r"^https?://[^\s/]+")
    app_key: str = Field(min_length=1)
    app_secret: SecretStr | None = None
    app_secret_file: Path | None = None
    tenant_id: int = Field(gt=0)
    rate_limit: float = Field(default=10.0, gt=0, le=1000)
    timeout: float = Field(default=5.0, gt=0, le=300)
    # Calls in flight at once: rate_limit × gateway latency must fit, or bulk work runs below the rate.
    concurrency: int = Field(default=8, ge=1, le=64)
    # Transient failures (throttling, 5xx, timeouts) are retried with backoff, bounded by both.
    retry_attempts: int = Field(default=5, ge=1, le=20)
    retry_total: float = Field(default=60.0, gt=0, le=3600)
    error_codes: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_secret(self) -> TargetConfig:
        if (self.app_secret is None) == (self.app_secret_file is None):
            raise ValueError("target.app_secret: exactly one of target.app_secret and target.app_secret_file")
        if self.app_secret_file is not None and not self.app_secret_file.is_file():
            raise ValueError(f"target.app_secret_file: a readable file, not {str(self.app_secret_file)!r}")
        if self.app_secret is not None and self.app_secret.get_secret_value().startswith("env:"):
            name = self.app_secret.get_secret_value()[4:]
            if name not in os.environ:
                raise ValueError(f"target.app_secret: environment variable {name} to be set")
        return self

    def secret(self) -> str:
        """The app secret now; a secret file is re-read on every call so rotation needs no restart."""
        value = None if self.app_secret is None else self.app_secret.get_secret_value()
        return resolve_secret(value, self.app_secret_file, "target.app_secret")


class StateConfig(_Section):
    """`[state]`: where links, runs and the journal live."""

    url: str = Field(default="sqlite:////var/lib/syncd/state.db", pattern=r"^(sqlite|postgresql)(\+\w+)?://")
    # PostgreSQL's password kept apart from the URL (the configuration file is world-readable):
    # a file readable by the service (README "Secrets"), read once at start.
    password_file: Path | None = None

    @model_validator(mode="after")
    def _password_from_file(self) -> StateConfig:
        if self.password_file is None:
            return self
        if not self.url.startswith("postgresql"):
            raise ValueError("state.password_file: set only with a postgresql:// state url")
        if make_url(self.url).password is not None:
            raise ValueError("state.password_file: a url without a password (the password in one place only)")
        try:
            password = self.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"state.password_file: a readable file, not {str(self.password_file)!r} "
                             f"({exc.strerror})") from exc
        # The model is frozen once validated; this is still its validation.
        object.__setattr__(self, "url", make_url(self.url).set(password=password).render_as_string(hide_password=False))
        return self


_DURATION = re.compile(r"^(\d+)(s|m|h)$")


class ScheduleConfig(_Section):
    """`[schedule]`: the daemon's cycles."""

    incremental_every: str = Field(default="60s", pattern=_DURATION.pattern)
    full_at: str = Field(default="02:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: str = "Asia/Shanghai"  # the zone of full_at

    @model_validator(mode="after")
    def _known_zone(self) -> ScheduleConfig:
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"schedule.timezone: an IANA time zone such as Asia/Shanghai, "
                             f"not {self.timezone!r}") from None
        if self.incremental_seconds() < 1:
            raise ValueError("schedule.incremental_every: at least 1s")
        return self

    def incremental_seconds(self) -> int:
        """`incremental_every` in seconds."""
        match = _DURATION.match(self.incremental_every)
        assert match is not None  # validated by the pattern
        return int(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2]]


class SafetyConfig(_Section):
    """`[safety]`: the guards on a plan."""

    max_deactivations: int = Field(default=50, ge=0)
    max_deactivation_share: float = Field(default=0.05, ge=0, le=1)
    # A complete read with more than this share, and more than this count, fewer in-post people than
    # the last one holds its deactivations. 5: a small unit's ordinary month (a retirement, a
    # transfer or two) stays below it; a wrong export (one department's sheet) does not.
    max_shrink_share: float = Field(default=0.10, ge=0, le=1)
    max_shrink_count: int = Field(default=5, ge=0)
    structure_changes: Literal["hold", "apply"] = "hold"
    quarantine_failure_share: float = Field(default=0.4, gt=0, le=1)
    # People in the unit's organisations whom no HR record links to, found by `sync --full`.
    unknown_people: Literal["report", "deactivate"] = "report"


class Admin(_Section):
    """One administrator on an escalation level."""

    name: str
    account_id: int | None = None
    email: str | None = None
    contact: str | None = None  # how level 2 reaches them (a phone number), named in level-2 notices


def _readable(path: Path | None, key: str, what: str = "a readable file") -> None:
    if path is not None and not path.is_file():
        raise ValueError(f"{key}: {what}, not {str(path)!r}")


class EmailConfig(_Section):
    """`[escalation.email]`: the SMTP relay that carries notices by email."""

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    # A relay with an internal CA: the PEM file to verify it with (default: the system's CAs).
    ca_file: Path | None = None
    username: str | None = None
    password_file: Path | None = None
    sender: str = Field(min_length=3)
    timeout: float = Field(default=10.0, gt=0, le=300)

    @model_validator(mode="after")
    def _credentials(self) -> EmailConfig:
        if (self.username is None) != (self.password_file is None):
            raise ValueError("escalation.email.password_file: both username and password_file, or neither")
        _readable(self.password_file, "escalation.email.password_file")
        _readable(self.ca_file, "escalation.email.ca_file", "a readable PEM file")
        return self

    def password(self) -> str | None:
        """The SMTP password, re-read from its file on every send so rotation needs no restart."""
        return None if self.password_file is None else self.password_file.read_text(encoding="utf-8").strip()


class WebhookConfig(_Section):
    """`[escalation.webhook]`: where notices are POSTed as signed JSON."""

    url: str = Field(pattern=r"^https?://[^\s/]+")
    secret_file: Path
    timeout: float = Field(default=10.0, gt=0, le=300)

    @model_validator(mode="after")
    def _secret_readable(self) -> WebhookConfig:
        _readable(self.secret_file, "escalation.webhook.secret_file")
        return self


_ESCALATION_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class EscalationConfig(_Section):
    """`[escalation]`: who hears of problems, and when."""

    unit_admins: list[Admin] = Field(default_factory=list)
    higher_admins: list[Admin] = Field(default_factory=list)
    deadline_workdays: int = Field(default=3, ge=1, le=30)
    # Days the official calendar gets wrong for this unit, or years it does not know yet:
    # "2027-10-09" = true (a make-up working Saturday), "2027-10-08" = false (a holiday).
    workday_overrides: dict[dt.date, bool] = Field(default_factory=dict)
    # Years whose holidays and make-up days `workday_overrides` lists in full: only these count as
    # known when chinese-calendar does not know them (one override date does not make a year known).
    workday_overrides_complete: list[int] = Field(default_factory=list)
    failed_runs_before_escalation: int = Field(default=3, ge=1)
    # How long a level-1 problem (a hold: hold_escalate_after) stays open before level 2 hears of it,
    # and how often an open, unacknowledged problem is recalled: "30m", "4h", "1d".
    escalate_after: str = Field(default="1d", pattern=_ESCALATION_DURATION.pattern)
    hold_escalate_after: str = Field(default="1d", pattern=_ESCALATION_DURATION.pattern)
    reminder_every: str = Field(default="4h", pattern=_ESCALATION_DURATION.pattern)
    # Reminders go out only within these hours (schedule.timezone, "HH:MM-HH:MM", end excluded) and,
    # with reminders_on_workdays, only on Chinese working days; a reminder due outside waits for them.
    # Level 2 is reminded at most once a day. Opening, escalation and resolution notices are never held back.
    reminder_hours: str = Field(default="09:00-18:00",
                                pattern=r"^([01]\d|2[0-3]):[0-5]\d-(([01]\d|2[0-3]):[0-5]\d|24:00)$")
    reminders_on_workdays: bool = True
    # Who receives the weekly Article 11 digest (work-group admins); unit_admins when empty.
    work_group_admins: list[Admin] = Field(default_factory=list)
    # The Article 11 digest of transfers and departures: ISO weekday (1 Monday … 7 Sunday) and time,
    # in schedule.timezone.
    digest_weekday: int = Field(default=1, ge=1, le=7)
    digest_at: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    channels: list[Literal["work_notification", "email", "webhook"]] = Field(
        default_factory=lambda: ["work_notification"]
    )
    email: EmailConfig | None = None
    webhook: WebhookConfig | None = None

    @model_validator(mode="after")
    def _channel_sections(self) -> EscalationConfig:
        for name in ("email", "webhook"):
            if name in self.channels and getattr(self, name) is None:
                raise ValueError(f"escalation.{name}: an [escalation.{name}] section when escalation.channels "
                                 f"lists {name!r}")
        for name in ("escalate_after", "hold_escalate_after", "reminder_every"):
            if self.duration(name) <= dt.timedelta(0):
                raise ValueError(f"escalation.{name}: a duration above zero such as \"4h\"")
        start, end = self.reminder_window()
        if start >= end:
            raise ValueError(f"escalation.reminder_hours: got {self.reminder_hours!r}; expected a start before "
                             "its end, such as \"09:00-18:00\"")
        return self

    def reminder_window(self) -> tuple[int, int]:
        """`reminder_hours` as minutes after midnight: (start, end), the end excluded."""
        start, end = (int(part[:2]) * 60 + int(part[3:]) for part in self.reminder_hours.split("-"))
        return start, end

    def duration(self, name: Literal["escalate_after", "hold_escalate_after", "reminder_every"]) -> dt.timedelta:
        """One of the escalation durations as a timedelta."""
        match = _ESCALATION_DURATION.match(getattr(self, name))
        assert match is not None  # validated by the pattern
        return dt.timedelta(seconds=int(match[1]) * _UNIT_SECONDS[match[2]])


class ApiConfig(_Section):
    """`[api]`: the control API for resyncs."""

    listen: str = Field(default="127.0.0.1:8480", pattern=r"^[\w.:\[\]-]+:\d{1,5}$")
    tokens_file: Path | None = None
    # Behind a TLS proxy this server sees plain HTTP: mark the console's session cookie Secure anyway.
    secure_cookies: bool = False
    # The console's address as administrators reach it (behind the proxy): notices link their actions there.
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")


class LoggingConfig(_Section):
    """`[logging]`."""

    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"
    show_personal_data: bool = False


class Config(_Section):
    """The whole configuration file."""

    unit: UnitConfig
    source: SourceConfig
    target: TargetConfig
    state: StateConfig = Field(default_factory=StateConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)


@dataclass(frozen=True, slots=True)
class Problem:
    """One configuration problem: where, what was found, what was expected."""

    key: str
    value: Any
    expected: str

    def __str__(self) -> str:
        shown = _mask(self.key, self.value)
        return f"{self.key}: got {shown}; expected {self.expected}"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))



def load(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, and validate; raise ConfigError listing every problem."""
    environ = os.environ if environ is None else environ
    raw = read_toml(path)
    _apply_env_overrides(raw, environ)
    _resolve_relative_paths(raw, path.parent)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise problems_of(exc) from exc


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML configuration file's content; ConfigError when it is missing or not TOML."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError([Problem("(file)", str(path), "an existing TOML configuration file")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([Problem("(file)", str(path), f"valid TOML ({exc})")]) from exc


def problems_of(exc: ValidationError) -> ConfigError:
    """A pydantic validation error as a ConfigError, each problem with its key path."""
    return ConfigError([_problem(error) for error in exc.errors()])


def _apply_env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    """`SYNCD_TARGET__RATE_LIMIT=20` sets target.rate_limit; values are TOML literals or text."""
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name or name == "SYNCD_CONFIG":
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX):].split("__")]
        node = raw
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                break
        else:
            node[keys[-1]] = text if _expects_text(keys) else _env_value(text)


def _env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _expects_text(keys: list[str]) -> bool:
    """Whether the key is a text field, so `SYNCD_UNIT__ROOT_DEPARTMENT=1001` stays "1001"."""
    model: type[BaseModel] = Config
    for depth, key in enumerate(keys):
        info = model.model_fields.get(key)
        if info is None:
            return False
        options = typing.get_args(info.annotation) or (info.annotation,)
        if depth == len(keys) - 1:
            return any(option in (str, SecretStr) for option in options)
        nested = [o for o in options if isinstance(o, type) and issubclass(o, BaseModel)]
        if not nested:
            return False
        model = nested[0]
    return False


# Paths in the file are relative to the file, so a configuration directory can move as a whole.
_PATH_KEYS = (("source", "people"), ("source", "departments"), ("source", "code_tables"),
              ("target", "app_secret_file"), ("api", "tokens_file"),
              ("state", "password_file"))
_NESTED_PATH_KEYS = (("source", "ldap", "password_file"), ("source", "ldap", "ca_file"),
                     ("source", "sql", "password_file"), ("escalation", "email", "password_file"),
                     ("escalation", "email", "ca_file"), ("escalation", "webhook", "secret_file"))


def _resolve_relative_paths(raw: dict[str, Any], base: Path) -> None:
    for section, key in _PATH_KEYS:
        value = raw.get(section, {}).get(key) if isinstance(raw.get(section), dict) else None
        if isinstance(value, str) and value and not Path(value).is_absolute():
            raw[section][key] = str((base / value).resolve())
    for section, sub, key in _NESTED_PATH_KEYS:
        node = raw.get(section, {}).get(sub) if isinstance(raw.get(section), dict) else None
        value = node.get(key) if isinstance(node, dict) else None
        if isinstance(value, str) and value and not Path(value).is_absolute():
            node[key] = str((base / value).resolve())
    state = raw.get("state")
    if isinstance(state, dict) and isinstance(state.get("url"), str):
        prefix = "sqlite:///"
        url = state["url"]
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
            state["url"] = prefix + str((base / url[len(prefix):]).resolve())


_URL_PASSWORD = re.compile(r"(://[^/:@\s]*:)[^@/\s]*@")
_KEYED_MESSAGE = re.compile(r"^([a-z_]+\.[a-z_.]+): (.*)$", re.DOTALL)


# What a patterned value must look like, said for a person rather than as the regular expression.
_PATTERNS = {
    r"^GO_[0-9a-zA-Z]+$": "an organisationCode: GO_ then letters and digits (GO_0123abcd…)",
    r"^[A-Za-z0-9_.:-]*$": "letters, digits and _ . : - only",
    r"^ldaps?://[^\s/]+": "an ldaps:// or ldap:// URL (ldaps://hr-ldap.example.gov.cn)",
    r"^https?://[^\s/]+": "an http:// or https:// URL (https://zzd-gateway.example.gov.cn)",
    r"^(sqlite|postgresql)(\+\w+)?://": "a sqlite:/// or postgresql:// URL",
    _DURATION.pattern: "a duration: a whole number and s, m or h (90s, 5m, 1h)",
    r"^([01]\d|2[0-3]):[0-5]\d$": "a time of day as HH:MM, two digits each, 24-hour (02:30)",
    _ESCALATION_DURATION.pattern: "a duration: a whole number and s, m, h or d (30m, 4h, 1d)",
    r"^[\w.:\[\]-]+:\d{1,5}$": "host:port (127.0.0.1:8480)",
    r"^([01]\d|2[0-3]):[0-5]\d-(([01]\d|2[0-3]):[0-5]\d|24:00)$":
        "two times of day as HH:MM-HH:MM, 24-hour (09:00-18:00)",
    r"^https?://[^\s]+$": "an http:// or https:// URL (https://syncd.example.gov.cn)",
}
# pydantic's error types, said as what was expected; `{…}` are the error's context values.
_EXPECTED = {
    "int_parsing": "a whole number", "int_type": "a whole number", "int_from_float": "a whole number",
    "float_parsing": "a number", "float_type": "a number", "bool_parsing": "true or false",
    "bool_type": "true or false", "string_type": "text in quotes", "list_type": "a list [ … ]",
    "dict_type": "a table", "model_type": "a table", "greater_than_equal": "a number of at least {ge}",
    "greater_than": "a number above {gt}", "less_than_equal": "a number of at most {le}",
    "less_than": "a number below {lt}", "too_short": "at least {min_length} item(s)",
    "string_too_short": "at least {min_length} character(s)", "string_too_long": "at most {max_length} characters",
    "literal_error": "one of {expected}", "enum": "one of {expected}",
}


def _expected(error: Mapping[str, Any]) -> str | None:
    """What a failed check expected, in words; None when pydantic's own message is the best there is."""
    context = error.get("ctx") or {}
    if error["type"] == "string_pattern_mismatch":
        return _PATTERNS.get(str(context.get("pattern")))
    template = _EXPECTED.get(error["type"])
    return template.format(**context) if template else None


def _problem(error: Mapping[str, Any]) -> Problem:
    key = ".".join(str(part) for part in error["loc"]) or "(file)"
    message = _expected(error) or str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    value = error.get("input")
    keyed = _KEYED_MESSAGE.match(message)
    if keyed:  # a check across keys names the key it is about
        key, message, value = keyed[1], keyed[2], None
    if error["type"] == "extra_forbidden":
        message = "no such key (misspelt, or in the wrong section)"
    elif error["type"] == "missing":
        message = "this key to be set"
    return Problem(key, value, message)


def _mask(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if any(part in key.lower() for part in SECRET_KEY_PARTS) and not key.lower().endswith("_file"):
        return "'****'"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, str):
        value = _URL_PASSWORD.sub(r"\1****@", value)  # postgresql://syncd:secret@db → syncd:****@db
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"
