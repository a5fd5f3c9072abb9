"""The built-in echo model (`[llm] provider = "echo"`): no network, deterministic, and its
structured answer goes through the same parser as a real model's."""

from __future__ import annotations

from twin.brain.echo_llm import EchoLLM, last_words
from twin.brain.factory import build_llm
from twin.config import load_settings
from twin.domain.prompts import PromptMessage
from twin.domain.structured import REPLY_JSON_SCHEMA, parse_reply


def test_the_contacts_last_words_without_fences_and_labels() -> None:
    nonce = "abc123"
    user = PromptMessage(
        "user",
        f"⟦contact {nonce}⟧\n[Mon 10:04]\nfirst line\n\n"
        f"[Mon 10:05]\nsee you\nat ten\n⟦/contact {nonce}⟧",
    )
    assert last_words([PromptMessage("system", "persona"), user]) == "see you at ten"
    assert last_words([PromptMessage("system", "persona")]) == ""


async def test_a_structured_reply_parses_like_a_real_models() -> None:
    llm = EchoLLM()
    messages = [PromptMessage("user", "⟦contact n⟧\n[x]\nhello there\n⟦/contact n⟧")]
    completion = await llm.complete(
        messages, json_schema=REPLY_JSON_SCHEMA, max_tokens=100, temperature=0
    )
    reply = parse_reply(completion.text)
    assert reply.text == "You said: hello there" and not reply.requires_human
    assert (completion.provider, completion.model) == ("echo", "echo")
    assert completion.prompt_tokens > 0 and completion.completion_tokens > 0
    pieces = [piece async for piece in llm.stream(messages, max_tokens=10, temperature=0)]
    assert "".join(pieces).strip() == "You said: hello there"


def test_echo_is_a_provider_that_needs_no_key() -> None:
    settings = load_settings(None, llm={"provider": "echo", "api_key": None})
    llm = build_llm(settings.llm)
    assert llm.provider == "echo" and llm.model == "echo"  # never priced as another model
