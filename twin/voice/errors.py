"""Speech errors: what the voice adapters raise instead of SDK, HTTP or FFmpeg exceptions.

    TwinError → AdapterError → SpeechError ─┬→ SpeechUnavailable(retry_after, transient, status)
                                            ├→ AudioError          (input is not decodable audio)
                                            └→ TooLong             (over max_seconds / max_bytes)

The reply pipeline needs only these: `TooLong` and `AudioError` are answered by the reply policy
(skip or escalate, never retried); `SpeechUnavailable` means the provider failed after our own
retries — retry the whole job later (after `retry_after` when the provider said so) or fall back
to text.
"""

from __future__ import annotations

from twin.errors import AdapterError


class SpeechError(AdapterError):
    """Base of every speech-to-text / text-to-speech / audio failure."""


class SpeechUnavailable(SpeechError):
    """The speech provider could not serve the request (after retries when they made sense).

    `retry_after` (seconds) is the provider's own Retry-After when it sent one. `transient` is
    False when retrying the same request cannot help (400/401/403/404/422: bad key, unknown voice,
    rejected input); `status` is the last HTTP status, None for timeouts and connection errors.
    """

    def __init__(
        self,
        message: str = "speech provider unavailable",
        *,
        retry_after: float | None = None,
        transient: bool = True,
        status: int | None = None,
    ) -> None:
        self.retry_after = retry_after
        self.transient = transient
        self.status = status
        super().__init__(message)


class AudioError(SpeechError):
    """The bytes are not audio PyAV can decode (or contain no audio stream / no samples)."""

    transient = False


class TooLong(SpeechError):
    """The audio exceeds a configured limit, so it was NOT sent to the provider.

    `duration_s` is None when the size limit tripped before the audio was probed.
    """

    transient = False

    def __init__(
        self,
        *,
        duration_s: float | None,
        size_bytes: int,
        max_seconds: float,
        max_bytes: int,
    ) -> None:
        self.duration_s = duration_s
        self.size_bytes = size_bytes
        self.max_seconds = max_seconds
        self.max_bytes = max_bytes
        if duration_s is None or size_bytes > max_bytes:
            what = f"{size_bytes} bytes > max_bytes {max_bytes}"
        else:
            what = f"{duration_s:.1f} s > max_seconds {max_seconds:g}"
        super().__init__(f"audio too long to transcribe: {what}")
