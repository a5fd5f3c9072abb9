from tests.providers.voice_fixtures import fake_elevenlabs, fake_openai_audio

__all__ = ["fake_elevenlabs", "fake_openai_audio"]
