"""The reply pipeline's shape (issue 13.2): steps with one job each behind small seams. Pure
introspection, no I/O: each step's implementation matches the Protocol it is used through
(names, parameters), each step module stays small, and the steps do not reach into each
other (generate knows no delivery, plan neither generation nor delivery, a delivery no
generation)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.core.test_ports import test_implementation_matches_its_port as matches_its_port
from twin.jobs.worker import Jobs, ReplyWorker
from twin.services.pipeline.deliver import Delivery
from twin.services.pipeline.fastpath import Handoff
from twin.services.pipeline.telegram_delivery import TelegramDelivery
from twin.services.replies import ReplyPipeline

PIPELINE = Path(__file__).resolve().parents[2] / "twin" / "services" / "pipeline"
SEAMS = [(Delivery, TelegramDelivery), (Jobs, ReplyPipeline), (Handoff, ReplyWorker)]


@pytest.mark.parametrize(
    ("port", "implementation"), SEAMS, ids=[f"{p.__name__}-{i.__name__}" for p, i in SEAMS]
)
def test_each_step_matches_the_protocol_it_is_used_through(port, implementation) -> None:
    matches_its_port(port, implementation)


def _imports(module: str) -> set[str]:
    tree = ast.parse((PIPELINE / f"{module}.py").read_text(encoding="utf-8"))
    return {
        node.module.rsplit(".", 1)[-1]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.startswith("twin.services.pipeline.")
    }


@pytest.mark.parametrize(
    ("module", "never"),
    [
        ("plan", {"generate", "deliver", "telegram_delivery", "execute", "outcome"}),
        ("generate", {"deliver", "telegram_delivery", "execute", "plan", "outcome"}),
        ("telegram_delivery", {"generate", "execute", "plan", "outcome"}),
        ("deliver", {"generate", "telegram_delivery", "execute", "plan", "outcome"}),
        ("takeover", {"generate", "deliver", "telegram_delivery", "execute", "plan"}),
    ],
)
def test_the_steps_do_not_reach_into_each_other(module: str, never: set[str]) -> None:
    assert _imports(module) & never == set()


def test_every_step_module_is_small() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in PIPELINE.glob("*.py")}
    assert {name: lines for name, lines in sizes.items() if lines > 400} == {}
