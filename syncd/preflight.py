"""What `syncd check-config` proves before `syncd run` needs it (README "check-config").

Each check returns lines: configuration problems (exit 2: fix the file or a secret) or systems out
of reach (exit 1: may pass later), each naming the key to look at.
"""

from __future__ import annotations

import smtplib
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from syncd.config import Config
from syncd.state import MigrationFailed, StateUnavailable

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass
class Findings:
    """What the checks found: problems (exit 2), systems out of reach (exit 1), and what passed."""

    problems: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)


def secret_files(config: Config) -> list[tuple[str, Path]]:
    """Every secret file the configuration names, with its key."""
    found: list[tuple[str, Path | None]] = [("target.app_secret_file", config.target.app_secret_file),
                                            ("api.tokens_file", config.api.tokens_file),
                                            ("state.password_file", config.state.password_file)]
    if config.source.ldap is not None:
        found.append(("source.ldap.password_file", config.source.ldap.password_file))
    if config.source.sql is not None:
        found.append(("source.sql.password_file", config.source.sql.password_file))
    if config.escalation.email is not None:
        found.append(("escalation.email.password_file", config.escalation.email.password_file))
    if config.escalation.webhook is not None:
        found.append(("escalation.webhook.secret_file", config.escalation.webhook.secret_file))
    return [(key, path) for key, path in found if path is not None]


def check_files(config: Config, config_file: Path, findings: Findings) -> None:
    """HR export files, code tables, secrets readable by the service, no secret written in a production file."""
    from syncd.domain.validate import CodeTables
    from syncd.service.token_admin import readable_by_service
    from syncd.service.tokens import TokensError, load_tokens

    for key in ("people", "departments"):
        path = getattr(config.source, key)
        if config.source.kind in ("csv", "xlsx") and path is not None and not path.is_file():
            findings.problems.append(f"source.{key}: got {str(path)!r}; expected an existing file")
    try:
        CodeTables.load(config.source.code_tables)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        where = config.source.code_tables or "the tables shipped in the package"
        findings.problems.append(f"source.code_tables: {where} cannot be read ({type(exc).__name__}: {exc}); expected "
                                 f"gender.toml and political_status.toml with a [codes] table")
    for key, path in secret_files(config):
        if path.exists() and path.stat().st_uid == 0 and (problem := readable_by_service(path)):
            # Owned by root: the service (never root, a dynamic user in the group syncd) must still read it.
            findings.problems.append(f"{key}: {problem}")
    if config.api.tokens_file is not None:
        try:
            load_tokens(config.api.tokens_file)
        except TokensError as exc:
            findings.problems.append(f"api.tokens_file: {exc}")
    raw = tomllib.loads(config_file.read_text(encoding="utf-8"))
    written = raw.get("target", {}).get("app_secret")
    host = urlsplit(config.target.base_url).hostname or ""
    if isinstance(written, str) and not written.startswith("env:") and host not in LOOPBACK:
        findings.problems.append(f"target.app_secret: the secret is written in {config_file}, which the service "
                                 f"user and everyone can read; for a real gateway put it in a file "
                                 f"(target.app_secret_file, README \"Secrets\") or use env:NAME")


def check_state(config: Config, findings: Findings) -> None:
    """The state database: reachable, the password accepted, at a revision this release can migrate."""
    from syncd.state.store import check_state as inspect

    try:
        findings.passed.append(inspect(config.state.url))
    except StateUnavailable as exc:
        (findings.problems if exc.refused else findings.unreachable).append(str(exc))
    except MigrationFailed as exc:  # StateTooNew included
        findings.problems.append(f"state.url: {exc}; run the release that wrote it, or restore a backup "
                                 f"(`syncd state restore FILE`)")


def reach(config: Config, findings: Findings, send_test_notice: bool) -> None:
    """The HR source (the unit's root department in it), the gateway, and each escalation channel."""
    from syncd.domain.source import SourceError
    from syncd.domain.target import TargetError
    from syncd.domain.validate import normalise_text
    from syncd.wiring import build_source, build_target

    try:
        ids = {normalise_text(record.fields.get("id")) for record in build_source(config).departments()}
    except SourceError as exc:
        findings.unreachable.append(f"source ({config.source.kind}): cannot be read: {exc}")
    else:
        if config.unit.root_department not in ids:
            findings.problems.append(f"unit.root_department: got {config.unit.root_department!r}; expected a "
                                     f"department of the HR data ({len(ids)} read): every record would be rejected")
    try:
        scope = build_target(config, retry_attempts=2).visible_scope()
    except TargetError as exc:
        if exc.category == "auth":
            findings.problems.append(f"target.app_key / target.app_secret: the gateway refused them ({exc})")
        elif exc.category == "invalid":
            # The gateway answered, and refused what every call carries: the tenant, not the address.
            findings.problems.append(f"target.tenant_id: the gateway refused the request for tenant "
                                     f"{config.target.tenant_id} ({exc})")
        else:
            findings.unreachable.append(f"target.base_url: the gateway did not answer ({exc.category}: {exc})")
    else:
        if config.unit.root_organization_code not in scope:
            findings.problems.append(f"unit.root_organization_code: got {config.unit.root_organization_code!r}; "
                                     f"expected an organisation in the app's scope ({', '.join(scope) or 'empty'})")
        else:
            findings.passed.append("reached the HR source and the directory; the unit's root is in the app's scope")
    _reach_channels(config, findings, send_test_notice)


def _reach_channels(config: Config, findings: Findings, send_test_notice: bool) -> None:
    from connectors.notify import EmailNotifier, WebhookNotifier
    from syncd.reporting.messages import notice_text, notice_title
    from syncd.reporting.notice import Notice, NoticeError, notice_id, recipients_of

    email = config.escalation.email
    if "email" in config.escalation.channels and email is not None:
        try:
            EmailNotifier(email).check()
        except smtplib.SMTPAuthenticationError as exc:
            findings.problems.append(f"escalation.email.username / password_file: the relay {email.host}:{email.port} "
                                     f"refused the login (SMTP {exc.smtp_code})")
        except (smtplib.SMTPException, OSError) as exc:
            findings.unreachable.append(f"escalation.email: the relay {email.host}:{email.port} did not take a "
                                        f"session (EHLO, STARTTLS, login as configured): {type(exc).__name__}")
        else:
            steps = f"EHLO{', STARTTLS' if email.starttls else ''}{' and the login' if email.username else ''}"
            findings.passed.append(f"escalation.email: {email.host}:{email.port} took {steps}")
    webhook = config.escalation.webhook
    if "webhook" in config.escalation.channels and webhook is not None:
        if not send_test_notice:
            findings.passed.append("escalation.webhook: not tried (--send-test-notice sends a signed test notice)")
            return
        now = datetime.now(UTC).replace(microsecond=0)
        key = f"test:{now.isoformat()}"
        notice = Notice(id=notice_id(config.unit.name, 1, key, "open", "0"), unit=config.unit.name, level=1,
                        kind="test", key=key, state="open", title=notice_title("open", "test", config.unit.name),
                        text=notice_text("test.what", unit=config.unit.name), since=now,
                        recipients=recipients_of(config.escalation.unit_admins))
        notifier = WebhookNotifier(webhook.url, webhook.secret_file, webhook.timeout)
        try:
            notifier.send(notice)
        except NoticeError as exc:
            findings.unreachable.append(f"escalation.webhook.url: the signed test notice was not accepted ({exc})")
        else:
            findings.passed.append("escalation.webhook: the receiver accepted a signed test notice")
        finally:
            notifier.close()
