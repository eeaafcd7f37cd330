"""The audio detector's training corpus and what makes its fakes.

    catalogue          generators, their families, labels.csv columns, the corpus version
    corpus             `build_speech_corpus`: the resumable, parallel build and its manifest
    generation         one item's real clips and fakes, each through a channel condition
    fakes              resynthesis fakes (Griffin-Lim, phase vocoder, LPC, WORLD, vocoder networks)
    tts                text-to-speech fakes (espeak-ng, flite, Kokoro-82M) and their versions
    sentences          Harvard sentences for TTS fakes of recordings whose words are unknown
    vocoders           the two small vocoder networks trained here (weights in weights/vocoders/)
    vocoder_training   their recipe (`python -m fakescope.train.speech.vocoder_training`)
    hifigan            the published HiFi-GAN (opt-in generator)
    rawboost           RawBoost waveform distortions for audio training

The speech data sets it reads are parsed in `fakescope.data.speech_sources`; the channel
conditions (codecs, narrowband) it shares with evaluation are in `fakescope.media.channels`.
"""
