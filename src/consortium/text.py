"""Small helpers for the wording of messages (shared by every layer, so no imports here).

>>> with_article("admin"), with_article("owner"), with_article("member"), with_article("user")
('an admin', 'an owner', 'a member', 'a user')
"""

from __future__ import annotations

# words spelt with a vowel but sounding a consonant ("a user"), and the reverse ("an hour")
_CONSONANT_SOUND = ("uni", "use", "user", "usa", "one", "once", "eu", "ura", "uti")
_VOWEL_SOUND = ("hour", "honest", "honour", "heir", "onnx", "sql", "s3", "mlp", "rbf", "f1", "x-", "http")


def article(word: str) -> str:
    """``"a"`` or ``"an"`` for ``word``, by how it sounds (good enough for the names we print).

    >>> [article(w) for w in ("admin", "viewer", "ONNX file", "hour", "unit", "8-bit", "")]
    ['an', 'a', 'an', 'an', 'a', 'an', 'a']
    """
    w = word.strip().lower()
    if not w:
        return "a"
    if w.startswith(_VOWEL_SOUND):
        return "an"
    if w.startswith(_CONSONANT_SOUND):
        return "a"
    return "an" if w[0] in "aeiou8" else "a"  # "an 8-bit ..."


def with_article(word: str) -> str:
    """``word`` preceded by its article: ``"an admin"``, ``"a viewer"``."""
    return f"{article(word)} {word}"
