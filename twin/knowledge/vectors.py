"""The embedded chunks of one twin as one matrix, for cosine ranking (numpy: a 10,000 × 1,536
product takes milliseconds where pure Python would take a second). Imported only when an
embedding provider is configured."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["VectorIndex"]


class VectorIndex:
    """Unit vectors by chunk id; `nearest` ranks them by dot product (= cosine)."""

    def __init__(self, rows: Sequence[tuple[int, bytes]]) -> None:
        usable = [(chunk_id, data) for chunk_id, data in rows if data]
        self._ids = np.fromiter((chunk_id for chunk_id, _ in usable), dtype=np.int64)
        if usable:
            width = len(usable[0][1])
            same = [data for _, data in usable if len(data) == width]
            if len(same) != len(usable):  # vectors of another model's size: left out
                keep = [i for i, (_, data) in enumerate(usable) if len(data) == width]
                self._ids = self._ids[keep]
            self._matrix = np.frombuffer(b"".join(same), dtype="<f4").reshape(len(same), -1)
        else:
            self._matrix = np.zeros((0, 0), dtype="<f4")

    def __len__(self) -> int:
        return len(self._ids)

    def nearest(self, query: Sequence[float], limit: int) -> list[int]:
        if not len(self._ids) or limit <= 0:
            return []
        vector = np.asarray(query, dtype="<f4")
        if vector.shape[0] != self._matrix.shape[1]:
            return []  # the query's model differs from the stored one's
        scores = self._matrix @ vector
        limit = min(limit, len(scores))
        top = np.argpartition(-scores, limit - 1)[:limit]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [int(self._ids[i]) for i in top]
