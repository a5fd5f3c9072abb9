"""`[cluster]`: how this process shares Telegram accounts with others on one PostgreSQL
(twin.db.cluster): how many it serves, how often it looks for unowned ones, and its heartbeat.
On SQLite there is one daemon per database file (a second `twin run` refuses to start)."""

from __future__ import annotations

from pydantic import Field

from twin.config_behaviour import Section


class ClusterSettings(Section):
    max_accounts: int = Field(
        50, ge=1, description="Telegram accounts and bots this process serves at most"
    )
    claim_seconds: float = Field(
        2.0, gt=0, le=60, description="how often it looks for accounts no process serves"
    )
    heartbeat_seconds: float = Field(
        2.0, gt=0, le=30, description="how often it proves to PostgreSQL that it is alive"
    )
    dead_after_seconds: float = Field(
        10.0, gt=0, le=600, description="GET /cluster: a process silent this long is gone"
    )
    advertise_url: str = Field(
        "",
        pattern=r"^(https?://[^\s/@]+/?)?$",  # no credentials: it is shown in GET /cluster
        description=(
            "where the other processes reach this one's API (a request for an account it "
            "serves is forwarded there); empty: http://<this host's address>:<api.port>"
        ),
    )
    forward_timeout_seconds: float = Field(
        60.0, gt=0, le=600, description="how long a forwarded request may take to be answered"
    )
