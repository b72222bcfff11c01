"""Message templates: {{variable}} placeholders, validated against the data available."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from libs.errors import InvalidArgument
from services.messaging.domain.channels import Channel, Purpose

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_BODY = 2000
SMS_MAX_BODY = 500

# Variables messaging fills itself, by where a message comes from.
BRAND_VARIABLES = frozenset({"brand_name"})
MEMBER_VARIABLES = frozenset({"member_level", "points_balance", "order_count"})
TRIGGER_VARIABLES = frozenset({"order_cents", "to_level", "expiring_points", "expire_date"})
KNOWN_VARIABLES = BRAND_VARIABLES | MEMBER_VARIABLES | TRIGGER_VARIABLES


@dataclass(frozen=True)
class Template:
    template_id: str
    brand_id: str
    channel: Channel
    purpose: Purpose
    name: str
    title: str
    body: str
    provider_template_code: str
    provider_params: dict[str, str]
    variables: list[str]
    custom_variables: list[str]
    link_url: str
    created_at: datetime


@dataclass(frozen=True)
class Rendered:
    title: str
    body: str
    params: dict[str, str] = field(default_factory=dict)


def placeholders(text: str, field_name: str) -> list[str]:
    """The variable names a text uses, in order of first use; refuses malformed braces."""
    names: list[str] = []
    for match in _PLACEHOLDER.finditer(text):
        name = match.group(1)
        if not _NAME.match(name):
            raise InvalidArgument(f"{field_name}: {{{{{name}}}}} is not a variable name "
                                  "(lower_snake, at most 40 characters)", field=field_name,
                                  reason="TEMPLATE_SYNTAX")
        if name not in names:
            names.append(name)
    rest = _PLACEHOLDER.sub("", text)
    if "{{" in rest or "}}" in rest:
        raise InvalidArgument(f"{field_name} has an unbalanced {{{{ or }}}}", field=field_name,
                              reason="TEMPLATE_SYNTAX")
    return names


def template_variables(title: str, body: str, params: Mapping[str, str],
                       custom: Iterable[str]) -> list[str]:
    """Every variable used, each either known to messaging or declared custom."""
    custom_set = set(custom)
    for name in custom_set:
        if not _NAME.match(name):
            raise InvalidArgument(f"custom variable {name!r} is not lower_snake",
                                  field="custom_variables", reason="TEMPLATE_SYNTAX")
        if name in KNOWN_VARIABLES:
            raise InvalidArgument(f"{name} is filled by messaging; do not declare it custom",
                                  field="custom_variables", reason="VARIABLE_RESERVED")
    used: list[str] = []
    sources = [("title", title), ("body", body),
               *((f"provider_params.{key}", text) for key, text in sorted(params.items()))]
    for field_name, text in sources:
        for name in placeholders(text, field_name):
            if name not in KNOWN_VARIABLES and name not in custom_set:
                raise InvalidArgument(
                    f"{field_name} uses {{{{{name}}}}}, which is neither known "
                    f"({', '.join(sorted(KNOWN_VARIABLES))}) nor declared in custom_variables",
                    field=field_name, reason="UNKNOWN_TEMPLATE_VARIABLE",
                    metadata={"variable": name})
            if name not in used:
                used.append(name)
    return used


def validate_template_shape(channel: Channel, title: str, body: str,
                            provider_template_code: str, params: Mapping[str, str]) -> None:
    if channel is Channel.INBOX and not title.strip():
        raise InvalidArgument("an inbox template needs a title", field="title",
                              reason="FIELD_REQUIRED")
    if not body.strip():
        raise InvalidArgument("body is required", field="body", reason="FIELD_REQUIRED")
    limit = SMS_MAX_BODY if channel is Channel.SMS else MAX_BODY
    if len(body) > limit:
        raise InvalidArgument(f"body must be at most {limit} characters", field="body",
                              reason="BODY_TOO_LONG")
    if channel in (Channel.SMS, Channel.WECHAT):
        if not provider_template_code.strip():
            raise InvalidArgument("the provider's template code is required for "
                                  f"{channel.value}", field="provider_template_code",
                                  reason="FIELD_REQUIRED")
        if channel is Channel.WECHAT and not params:
            raise InvalidArgument("a WeChat template needs its data keys in provider_params",
                                  field="provider_params", reason="FIELD_REQUIRED")
    elif params or provider_template_code:
        raise InvalidArgument("inbox templates take no provider template",
                              field="provider_params", reason="NOT_APPLICABLE")


def missing_variables(template: Template, available: Iterable[str]) -> list[str]:
    have = set(available)
    return [name for name in template.variables if name not in have]


def require_variables(template: Template, available: Iterable[str], field_name: str) -> None:
    """Refuse a use of the template where some of its variables cannot be filled."""
    missing = missing_variables(template, available)
    if missing:
        raise InvalidArgument(f"template {template.template_id} needs {', '.join(missing)}, "
                              "which this message cannot fill", field=field_name,
                              reason="TEMPLATE_VARIABLE_MISSING",
                              metadata={"variables": ",".join(missing)})


def render_text(text: str, values: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def render(template: Template, values: Mapping[str, str]) -> Rendered:
    """Fill every placeholder; the caller has made sure every variable has a value."""
    return Rendered(render_text(template.title, values), render_text(template.body, values),
                    {key: render_text(text, values)
                     for key, text in sorted(template.provider_params.items())})
