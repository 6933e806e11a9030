"""The ``mail:`` section of a config file: the SMTP server the scheduled reports go out through."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class MailSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(description="SMTP server (the centre's relay or mail provider)")
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: str = Field(default="starttls", pattern="^(starttls|ssl|none)$",
                          description="starttls (port 587), ssl (implicit TLS, port 465) or none (a local relay only)")
    username: str | None = None
    password_env: str | None = Field(default=None, description="environment variable holding the SMTP password "
                                                                "(never the password itself in the file)")
    ca_file: Path | None = Field(default=None, description="CA bundle to trust for the server's certificate "
                                                           "(default: the system's)")
    sender: str = Field(description="From: address, e.g. 'Smart Factory Centre <reports@centre.example>'")
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 30.0
    interval_s: Annotated[float, Field(gt=0)] = Field(default=60.0, description="how often the leader looks for "
                                                                                 "reports that are due")
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 6
    retry_base_s: Annotated[float, Field(gt=0)] = Field(default=60.0, description="first retry after this; each "
                                                                                  "next one waits twice as long")
    sending_timeout_s: Annotated[float, Field(gt=0)] = Field(
        default=900.0, description="a send still marked 'sending' after this (the process died mid-send) is "
        "recorded as interrupted and not retried, so nobody gets the report twice")

    def password(self) -> str | None:
        if self.password_env is None:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise ValueError(f"mail.password_env: the environment variable {self.password_env} is not set")
        return value
