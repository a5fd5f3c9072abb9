"""The brain: conversation → the owner's next message.

Modules: `service` (Brain), `port` (the LLM Protocol, Completion), `openai_llm` / `gemini_llm`
(the only modules that touch provider SDKs), `resilient` (retries, backoff, fallback),
`pricing`, `errors`, `factory` (build_llm / build_brain from [llm] settings).
"""
