"""Text embeddings for similar-case search: OpenAI's embeddings API, or a deterministic local
embedder offline. Vectors are plain float lists (stored as JSON on both databases)."""

from __future__ import annotations

import hashlib
import math
import re
from typing import Protocol

from openai import AsyncOpenAI


class Embedder(Protocol):
    model: str

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order, from ONE provider call."""
        ...


class OpenAIEmbedder:
    def __init__(self, client: AsyncOpenAI, model: str = "text-embedding-3-small") -> None:
        self._client = client
        self.model = model

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        response = await self._client.embeddings.create(model=self.model, input=texts)
        ordered = sorted(response.data, key=lambda item: item.index)
        return [list(item.embedding) for item in ordered]


_WORD = re.compile(r"[a-z0-9]+")


class LocalHashEmbedder:
    """Offline, deterministic bag-of-words embedder (feature hashing, L2-normalised).

    Texts sharing words get similar vectors, which is enough for a meaningful offline similar-case
    search; it is not a semantic model.
    """

    def __init__(self, dimensions: int = 64) -> None:
        self.dimensions = dimensions
        self.model = f"local-hash-{dimensions}"
        self.calls = 0

    async def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [self._vector(text) for text in texts]

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "big") % self.dimensions
            sign = 1.0 if digest[4] % 2 == 0 else -1.0
            vector[index] += sign
        norm = math.sqrt(sum(value * value for value in vector))
        return [value / norm for value in vector] if norm else vector


def cosine_similarity(left: list[float], right: list[float]) -> float:
    if len(left) != len(right):
        return 0.0
    dot = sum(a * b for a, b in zip(left, right, strict=True))
    norm = math.sqrt(sum(a * a for a in left)) * math.sqrt(sum(b * b for b in right))
    return dot / norm if norm else 0.0


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
