"""Open-platform method descriptions and parameter validation, free of I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from libs.errors import InvalidArgument
from libs.safetext import json_text_problem, text_problem

_TYPES: dict[str, type] = {"string": str, "integer": int, "boolean": bool, "object": dict}
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1


def refuse_param_text(value: str, name: str) -> None:
    """Text PostgreSQL cannot store (NUL, a lone surrogate) is a parameter error."""
    problem = text_problem(value)
    if problem is not None:
        raise InvalidArgument(f"{name} {problem}", field=name, reason="PARAM_TEXT_INVALID")


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # string | integer | boolean | object
    description: str
    required: bool = False
    minimum: int | None = None
    maximum: int | None = None
    max_length: int = 256
    default: Any = None

    def check(self, value: Any) -> Any:
        expected = _TYPES[self.type]
        # bool is an int in Python; JSON true is never an integer parameter.
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            text = value.strip() if isinstance(value, str) else ""
            digits = text.removeprefix("-")
            if expected is int and 0 < len(digits) <= 20 and digits.isascii() \
                    and digits.isdigit():
                value = int(text)  # clients that quote numbers
            else:
                raise InvalidArgument(f"{self.name} must be a {self.type}", field=self.name,
                                      reason="PARAM_TYPE_INVALID")
        if isinstance(value, str):
            refuse_param_text(value, self.name)
            value = value.strip()
            if self.required and not value:
                raise InvalidArgument(f"{self.name} is required", field=self.name,
                                      reason="PARAM_REQUIRED")
            if len(value) > self.max_length:
                raise InvalidArgument(f"{self.name} must be at most {self.max_length} characters",
                                      field=self.name, reason="PARAM_TOO_LONG")
        if isinstance(value, dict):
            found = json_text_problem(value)
            if found is not None:
                where = f"{self.name}.{found[0]}" if found[0] != "body" else self.name
                raise InvalidArgument(f"{where} {found[1]}", field=where,
                                      reason="PARAM_TEXT_INVALID")
        if isinstance(value, int) and not isinstance(value, bool):
            # Without a declared range an integer still has to fit the int64 it becomes.
            if not INT64_MIN <= value <= INT64_MAX:
                raise InvalidArgument(f"{self.name} is out of range", field=self.name,
                                      reason="PARAM_OUT_OF_RANGE")
            if self.minimum is not None and value < self.minimum:
                raise InvalidArgument(f"{self.name} must be at least {self.minimum}",
                                      field=self.name, reason="PARAM_OUT_OF_RANGE")
            if self.maximum is not None and value > self.maximum:
                raise InvalidArgument(f"{self.name} must be at most {self.maximum}",
                                      field=self.name, reason="PARAM_OUT_OF_RANGE")
        return value

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"name": self.name, "type": self.type,
                                     "required": self.required, "description": self.description}
        if self.minimum is not None:
            described["minimum"] = self.minimum
        if self.maximum is not None:
            described["maximum"] = self.maximum
        if self.type == "string":
            described["max_length"] = self.max_length
        if self.default is not None:
            described["default"] = self.default
        return described


@dataclass(frozen=True)
class MethodSpec:
    name: str
    scope: str
    summary: str
    write: bool
    params: tuple[Param, ...]
    # Result `data` fields: name -> description.
    result: Mapping[str, str] = field(default_factory=dict)

    def validate(self, raw_json: str | None) -> dict[str, Any]:
        """Parse and check `360buy_param_json`; unknown keys are ignored (forward compatible),
        as the marketplace does."""
        values: Any = {}
        if raw_json is not None and raw_json.strip():
            try:
                values = json.loads(raw_json)
            except RecursionError:  # nesting too deep for the decoder is a parameter error
                raise InvalidArgument("360buy_param_json is nested too deeply",
                                      field="360buy_param_json",
                                      reason="PARAM_JSON_INVALID") from None
            except ValueError:
                raise InvalidArgument("360buy_param_json is not valid JSON",
                                      field="360buy_param_json",
                                      reason="PARAM_JSON_INVALID") from None
        if not isinstance(values, dict):
            raise InvalidArgument("360buy_param_json must be a JSON object",
                                  field="360buy_param_json", reason="PARAM_JSON_INVALID")
        checked: dict[str, Any] = {}
        for param in self.params:
            value = values.get(param.name)
            if value is None:
                if param.required:
                    raise InvalidArgument(f"{param.name} is required", field=param.name,
                                          reason="PARAM_REQUIRED")
                checked[param.name] = param.default
                continue
            checked[param.name] = param.check(value)
        return checked

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "scope": self.scope, "summary": self.summary,
                "kind": "write" if self.write else "read",
                "params": [param.describe() for param in self.params],
                "result": dict(self.result)}


class ParamError(InvalidArgument):
    """A parameter a method's handler found invalid (for example an object that does not map
    onto the contract); answered like any other parameter error (code 1003)."""
