"""Sandbox Telegram (MTProto 2.0) server that the unmodified Telethon client talks to over TCP.

Start with `SandboxServer` (server.py) and the client helpers in client.py; pytest fixtures
live in fixtures.py. Module map: transport.py (TCP framing) → handshake.py + crypto.py (auth
key, message encryption) → connection.py (MTProto session layer) → rpc.py + api_*.py (methods)
→ state.py, boxes.py, models.py (accounts, message boxes, pts). faults.py holds the fault
switches. See README.md in this directory.
"""

from .client import make_client, restore_session, session_snapshot, signed_in_client
from .server import SandboxServer

__all__ = [
    "SandboxServer",
    "make_client",
    "restore_session",
    "session_snapshot",
    "signed_in_client",
]
