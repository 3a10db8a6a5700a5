"""Word matching both adapters share: typo distance, and highlighting short fields.

OpenSearch finds typos with fuzzy queries (fuzziness 1, transpositions on); the embedded
index finds them with a deletion neighbourhood of the words in names and titles (every word
and each of its one-letter deletions, so two words one edit apart share an entry) checked
with `within_one_edit`. Both therefore accept exactly one insertion, deletion, substitution
or swap of neighbouring letters, in query words of `TYPO_MIN_LENGTH` letters or more
that hold no digit.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from services.index.document import fold, word_spans
from services.index.port import TYPO_MIN_LENGTH

MARK_START = "<em>"
MARK_END = "</em>"


def deletions(word: str) -> set[str]:
    """The word and every string one deleted letter away from it."""
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


def within_one_edit(a: str, b: str) -> bool:
    """At most one insertion, deletion, substitution or transposition apart."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and a[diff[1]] == b[diff[0]]
        )
    short, long_ = (a, b) if la < lb else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def typo_applies(word: str) -> bool:
    """Typos are forgiven in words of TYPO_MIN_LENGTH letters or more, never in numbers
    or words with digits (`v2`, `2024`: one digit off is another thing altogether)."""
    return len(word) >= TYPO_MIN_LENGTH and not any(c.isdigit() for c in word)


def word_matches(word: str, query_words: Iterable[str], *, loose: bool) -> bool:
    """Whether a folded document word matches a query word: equal, or (loose) a prefix
    or one typo away, as name and title words match."""
    for q in query_words:
        if word == q:
            return True
        if loose and (word.startswith(q) or (typo_applies(q) and within_one_edit(word, q))):
            return True
    return False


def highlight(text: str, query_words: list[str], *, loose: bool) -> str | None:
    """`text` HTML-escaped with its matching words in <em>...</em>; None when none match."""
    pieces: list[str] = []
    at = 0
    marked = False
    for start, end in word_spans(text):
        if word_matches(fold(text[start:end]), query_words, loose=loose):
            pieces.append(html.escape(text[at:start]))
            pieces.append(MARK_START + html.escape(text[start:end]) + MARK_END)
            at = end
            marked = True
    if not marked:
        return None
    pieces.append(html.escape(text[at:]))
    return "".join(pieces)


def excerpt(marked: str, width: int = 200) -> str:
    """A window of a highlighted text around its first mark, at most about `width` long."""
    if len(marked) <= width:
        return marked
    first = marked.find(MARK_START)
    start = max(0, first - width // 3)
    # cut at white space only: marks and HTML escapes never contain any
    while start > 0 and not marked[start - 1].isspace():
        start -= 1
    end = min(len(marked), start + width)
    while end < len(marked) and not marked[end - 1].isspace():
        end += 1
    before = "…" if start > 0 else ""
    after = "…" if end < len(marked) else ""
    return before + marked[start:end].strip() + after
