"""Authorship verification for `twin style eval`: would a model that knows how the owner types
take the twin's answers for the owner's?

A character n-gram model, the classic of authorship attribution (Stamatatos 2009; the PAN
shared tasks' baseline): TF-IDF over character 2–4-grams inside word boundaries (sublinear term
frequency, so a long message is not a stronger vote), and a logistic regression with balanced
class weights, trained on the owner's own messages (the eval's reference: never a held-out
answer) against the contacts' messages in the same chats — the people the owner talks with, so
what it learns is the owner's hand, not the topic. scikit-learn does both (the `eval` extra).

An answer is attributed to the owner when the model gives the owner over one half for its
messages joined. Its cross-validated accuracy (5-fold, stratified) is reported with it: a model
that cannot tell the owner from the contacts says nothing about the twin either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from twin.errors import ConfigError

__all__ = ["MIN_MESSAGES", "AuthorshipModel", "train"]

MIN_MESSAGES = 20  # of each side, to train at all
FOLDS = 5


@dataclass(frozen=True)
class AuthorshipModel:
    pipeline: object
    accuracy: float  # cross-validated, on the training messages
    owner_messages: int
    contact_messages: int

    def share_attributed(self, answers: Sequence[Sequence[str]]) -> float:
        """The share of these answers the model attributes to the owner."""
        if not answers:
            return 0.0
        texts = ["\n".join(answer) for answer in answers]
        owner = list(self.pipeline.classes_).index(1)  # type: ignore[attr-defined]
        probabilities = self.pipeline.predict_proba(texts)  # type: ignore[attr-defined]
        return sum(1 for row in probabilities if row[owner] > 0.5) / len(texts)


def train(
    owner: Sequence[str], contacts: Sequence[str], *, seed: int = 0
) -> AuthorshipModel | None:
    """The model, or None with fewer than MIN_MESSAGES messages on either side."""
    if min(len(owner), len(contacts)) < MIN_MESSAGES:
        return None
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_score
        from sklearn.pipeline import make_pipeline
    except ImportError as exc:  # pragma: no cover - the `eval` extra is part of `test`
        raise ConfigError(
            "`twin style eval` needs scikit-learn: pip install 'twin[eval]'"
        ) from exc

    def model() -> object:
        return make_pipeline(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True),
            LogisticRegression(class_weight="balanced", max_iter=2000),
        )

    texts = list(owner) + list(contacts)
    labels = [1] * len(owner) + [0] * len(contacts)
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    accuracy = float(cross_val_score(model(), texts, labels, cv=folds).mean())
    pipeline = model()
    pipeline.fit(texts, labels)  # type: ignore[attr-defined]
    return AuthorshipModel(pipeline, accuracy, len(owner), len(contacts))
