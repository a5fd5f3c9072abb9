"""OpenAITranscriber through the real `openai` SDK against the fake audio server."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable

import pytest

from tests.providers.openai_audio_fake import FakeOpenAIAudio
from twin.domain.language import language_hint
from twin.retry import RetryPolicy
from twin.voice import audio
from twin.voice.errors import AudioError, SpeechUnavailable, TooLong
from twin.voice.stt import OpenAITranscriber, SpeechToText

Factory = Callable[..., OpenAITranscriber]


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
async def make_stt(
    fake_openai_audio: FakeOpenAIAudio, sleeps: list[float]
) -> AsyncIterator[Factory]:
    made: list[OpenAITranscriber] = []

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    def factory(**overrides: object) -> OpenAITranscriber:
        kwargs: dict[str, object] = {
            "api_key": "sk-test",
            "base_url": f"{fake_openai_audio.base_url}/v1",
            "model": "gpt-4o-mini-transcribe",
            "timeout": 5.0,
            "max_seconds": 60.0,
            "price_per_minute": 0.006,
            "retry": RetryPolicy(max_retries=3, backoff_base=0.5, backoff_max=8.0),
            "sleep": record_sleep,
            "rng": random.Random(42),
        }
        kwargs.update(overrides)
        stt = OpenAITranscriber(**kwargs)  # type: ignore[arg-type]
        made.append(stt)
        return stt

    yield factory
    for stt in made:
        await stt.aclose()


async def test_transcribes_real_opus_audio(
    fake_openai_audio: FakeOpenAIAudio, make_stt: Factory
) -> None:
    fake_openai_audio.api_key = "sk-test"
    fake_openai_audio.transcript = "  привет, перезвоню позже  "
    fake_openai_audio.expect_duration = 3.0
    stt = make_stt()
    assert isinstance(stt, SpeechToText)

    result = await stt.transcribe(audio.make_tone(3.0, fmt="ogg_opus"), language="ru")

    assert result.text == "привет, перезвоню позже"
    assert result.language == "ru"
    assert result.duration_s == pytest.approx(3.0, abs=0.01)
    assert result.cost_usd == pytest.approx(3.0 / 60 * 0.006)
    (upload,) = fake_openai_audio.uploads
    assert upload.model == "gpt-4o-mini-transcribe"
    assert upload.language == "ru"
    assert (upload.filename, upload.content_type, upload.codec) == (
        "voice.ogg",
        "audio/ogg",
        "opus",
    )


async def test_mp3_is_uploaded_as_mp3_and_no_language_means_autodetect(
    fake_openai_audio: FakeOpenAIAudio, make_stt: Factory
) -> None:
    fake_openai_audio.expect_duration = 1.5
    result = await make_stt().transcribe(audio.make_tone(1.5, fmt="mp3"))

    assert result.language is None
    (upload,) = fake_openai_audio.uploads
    assert (upload.filename, upload.codec, upload.language) == ("voice.mp3", "mp3", None)


async def test_language_hint_from_the_chat_reaches_the_provider(
    fake_openai_audio: FakeOpenAIAudio, make_stt: Factory
) -> None:
    hint = language_hint(None, ["Привет! Ты где?", "ok"])
    await make_stt().transcribe(audio.make_tone(1.0), language=hint)
    assert fake_openai_audio.uploads[0].language == "ru"


async def test_configured_default_language_is_used(
    fake_openai_audio: FakeOpenAIAudio, make_stt: Factory
) -> None:
    result = await make_stt(default_language="de").transcribe(audio.make_tone(1.0))
    assert result.language == "de"
    assert fake_openai_audio.uploads[0].language == "de"


async def test_too_long_is_refused_without_calling_the_server(
    fake_openai_audio: FakeOpenAIAudio, make_stt: Factory
) -> None:
    stt = make_stt(max_seconds=2.0)
    with pytest.raises(TooLong) as info:
        await stt.transcribe(audio.make_tone(2.5, fmt="mp3"))
    assert info.value.duration_s == pytest.approx(2.5, abs=0.05)
    assert info.value.max_seconds == 2.0
    assert fake_openai_audio.requests == []


async def test_too_big_is_refused_before_probing(
    fake_openai_audio: FakeOpenAIAudio, make_stt: Factory
) -> None:
    data = audio.make_tone(1.0, fmt="wav")
    with pytest.raises(TooLong) as info:
        await make_stt(max_bytes=len(data) - 1).transcribe(data)
    assert info.value.duration_s is None
    assert info.value.size_bytes == len(data)
    assert fake_openai_audio.requests == []


async def test_garbage_is_an_audio_error_without_calling_the_server(
    fake_openai_audio: FakeOpenAIAudio, make_stt: Factory
) -> None:
    with pytest.raises(AudioError):
        await make_stt().transcribe(random.Random(3).randbytes(4096))
    assert fake_openai_audio.requests == []


async def test_429_retry_after_is_honoured(
    fake_openai_audio: FakeOpenAIAudio, make_stt: Factory, sleeps: list[float]
) -> None:
    fake_openai_audio.fail_next(status=429, retry_after=1.5)

    result = await make_stt().transcribe(audio.make_tone(1.0))

    assert result.text == fake_openai_audio.transcript
    assert sleeps == [1.5]
    assert len(fake_openai_audio.requests) == 2
    assert len(fake_openai_audio.uploads) == 1


async def test_two_500s_then_success_backs_off_exponentially(
    fake_openai_audio: FakeOpenAIAudio, make_stt: Factory, sleeps: list[float]
) -> None:
    fake_openai_audio.fail_next(times=2, status=500)

    result = await make_stt().transcribe(audio.make_tone(1.0))

    assert result.text == fake_openai_audio.transcript
    assert len(fake_openai_audio.requests) == 3
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5  # full jitter under a ceiling that doubles (twin.retry)
    assert 0 <= sleeps[1] <= 1.0


async def test_permanent_outage_becomes_speech_unavailable(
    fake_openai_audio: FakeOpenAIAudio, make_stt: Factory, sleeps: list[float]
) -> None:
    fake_openai_audio.fail_next(times=10, status=503, retry_after=2)

    with pytest.raises(SpeechUnavailable) as info:
        await make_stt(retry=RetryPolicy(max_retries=2)).transcribe(audio.make_tone(1.0))

    assert info.value.retry_after == 2.0
    assert info.value.status == 503
    assert info.value.transient
    assert sleeps == [2.0, 2.0]
    assert len(fake_openai_audio.requests) == 3


async def test_retry_after_beyond_the_cap_gives_up_at_once(
    fake_openai_audio: FakeOpenAIAudio, make_stt: Factory, sleeps: list[float]
) -> None:
    fake_openai_audio.fail_next(status=429, retry_after=600)

    with pytest.raises(SpeechUnavailable) as info:
        await make_stt(retry=RetryPolicy(max_retry_after=60)).transcribe(audio.make_tone(1.0))

    assert info.value.retry_after == 600.0
    assert sleeps == []
    assert len(fake_openai_audio.requests) == 1


async def test_bad_key_is_not_retried(
    fake_openai_audio: FakeOpenAIAudio, make_stt: Factory, sleeps: list[float]
) -> None:
    fake_openai_audio.api_key = "sk-right"
    with pytest.raises(SpeechUnavailable) as info:
        await make_stt(api_key="sk-wrong").transcribe(audio.make_tone(1.0))
    assert (info.value.status, info.value.transient) == (401, False)
    assert sleeps == []
    assert len(fake_openai_audio.requests) == 1


async def test_a_hung_request_times_out_and_is_retried(
    fake_openai_audio: FakeOpenAIAudio, make_stt: Factory, sleeps: list[float]
) -> None:
    fake_openai_audio.fail_next(hang=True)

    result = await make_stt(timeout=0.3).transcribe(audio.make_tone(1.0))

    assert result.text == fake_openai_audio.transcript
    assert len(sleeps) == 1
    assert len(fake_openai_audio.uploads) == 1


async def test_the_fake_really_checks_the_uploaded_duration(
    fake_openai_audio: FakeOpenAIAudio, make_stt: Factory
) -> None:
    fake_openai_audio.expect_duration = 5.0
    with pytest.raises(SpeechUnavailable) as info:
        await make_stt().transcribe(audio.make_tone(3.0))
    assert (info.value.status, info.value.transient) == (400, False)
    assert fake_openai_audio.uploads == []


def _round_video_note(seconds: float) -> bytes:
    """An MP4 like Telegram's round video notes: a small square video plus AAC audio."""
    import io
    import math

    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width = video.height = 64
        video.pix_fmt = "yuv420p"
        sound = container.add_stream("aac", rate=48000)
        sound.layout = "mono"
        for index in range(int(seconds * 10)):
            frame = av.VideoFrame.from_ndarray(
                np.full((64, 64, 3), index * 20 % 255, dtype=np.uint8), format="rgb24"
            )
            container.mux(video.encode(frame))
        samples = int(seconds * 48000)
        tone = (np.sin(2 * math.pi * 440 * np.arange(samples) / 48000) * 0.5).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = tone[start : start + 1024].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            frame.sample_rate = 48000
            frame.pts = start
            container.mux(sound.encode(frame))
        container.mux(video.encode(None))
        container.mux(sound.encode(None))
    return buffer.getvalue()


async def test_transcribes_a_round_video_note(
    fake_openai_audio: FakeOpenAIAudio, make_stt: Factory
) -> None:
    fake_openai_audio.transcript = "look at this"
    fake_openai_audio.expect_duration = 2.0  # the fake decodes the upload's audio with PyAV
    stt = make_stt()
    transcript = await stt.transcribe(_round_video_note(2.0))
    assert transcript.text == "look at this"
    assert transcript.duration_s == pytest.approx(2.0, abs=0.2)
    (upload,) = fake_openai_audio.uploads
    assert upload.filename.endswith((".m4a", ".mp4", ".ogg"))
