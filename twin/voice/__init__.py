"""Speech in and out: voice notes → text (STT) and replies → the owner's cloned voice (TTS).

audio.py       PyAV: probe, decode, → OGG/Opus 48 kHz mono, waveform, test tones
waveform.py    Telegram's 100 × 5-bit voice waveform (pure)
retry.py       provider calls under twin.retry's policy → SpeechUnavailable
stt.py         SpeechToText port, OpenAITranscriber
tts.py         TextToSpeech port, ElevenLabsSpeaker, OpenAISpeaker
factory.py     build_stt / build_tts from [stt] / [tts] settings
voices.py      Voices: one speaker per configured TTS provider, picked by the twin's voice
errors.py      SpeechError, SpeechUnavailable, AudioError, TooLong
"""

from twin.voice.errors import AudioError, SpeechError, SpeechUnavailable, TooLong
from twin.voice.models import AudioInfo, Pcm, Transcript, VoiceNote

__all__ = [
    "AudioError",
    "AudioInfo",
    "Pcm",
    "SpeechError",
    "SpeechUnavailable",
    "TooLong",
    "Transcript",
    "VoiceNote",
]
