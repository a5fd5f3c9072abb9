"""`[tools]`: HTTP tools the brain may call while answering (twin.domain.tools)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from twin.config_behaviour import Section
from twin.domain.tools import NAME, host_allowed, placeholders


class HttpTool(Section):
    """`[tools.http.<name>]`."""

    description: str = Field(min_length=1, max_length=1000)
    method: Literal["GET", "POST"] = "GET"
    url: str = Field(min_length=8, max_length=2048)  # `{argument}` placeholders
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="a JSON schema of an object: the arguments the model gives",
    )
    excerpt: str = ""  # dotted path into the JSON answer; empty: all of it
    # Header name -> the name of an environment variable holding its value (secrets stay in
    # the environment), e.g. {Authorization = "SHOP_API_TOKEN"}.
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") != "object":
            raise ValueError('a JSON schema of an object: {type = "object", properties = {…}}')
        return value

    @model_validator(mode="after")
    def _placeholders_are_parameters(self) -> HttpTool:
        known = set((self.parameters.get("properties") or {}).keys())
        missing = [name for name in placeholders(self.url) if name not in known]
        if missing:
            raise ValueError(f"url placeholders without a parameter: {', '.join(missing)}")
        return self


class ToolsSettings(Section):
    allowed_hosts: list[str] = Field(
        default_factory=list, description="the only hosts (or host:port) tools may call"
    )
    max_calls: int = Field(3, ge=1, le=10, description="tool calls per answer at most")
    timeout: float = Field(5.0, gt=0, le=60, description="seconds per call")
    http: dict[str, HttpTool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid(self) -> ToolsSettings:
        for name, tool in self.http.items():
            if not NAME.match(name):
                raise ValueError(f"tools.http.{name}: a name of letters, digits, '_' and '-'")
            probe = tool.url.format(**{p: "x" for p in placeholders(tool.url)})
            if not host_allowed(probe, self.allowed_hosts):
                raise ValueError(
                    f"tools.http.{name}: its url's host is not in tools.allowed_hosts"
                )
        return self
