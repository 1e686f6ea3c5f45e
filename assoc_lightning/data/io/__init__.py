"""Format readers with no torch Dataset in them: audio, video, image, IDX, NIST SPHERE,
captions, speech synthesis. Every dataset reads its files through these."""
