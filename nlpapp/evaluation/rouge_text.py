"""Text preparation for ROUGE beyond English: a Unicode-aware tokenizer that rouge-score's
``RougeScorer(tokenizer=...)`` accepts, the rule choosing it, and the sentence splitting
for rougeLsum. The rules by language are in docs/evaluation.md (ROUGE)."""

from __future__ import annotations

import re
import unicodedata
import warnings
from typing import Iterable, Sequence

# Scripts written without spaces between words: each character is a token.
_NO_SPACE_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x31F0, 0x31FF),  # Katakana extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # half-width Katakana
    (0x20000, 0x3FFFF),  # CJK extensions B and beyond
)


def _no_space(ch: str) -> bool:
    code = ord(ch)
    return any(low <= code <= high for low, high in _NO_SPACE_RANGES)


class UnicodeTokenizer:
    """NFC-normalised, lowercased; words are runs of letters, marks and digits (any script);
    a character of a script written without spaces (CJK, kana, Thai, Lao, Khmer, Myanmar)
    is a token of its own, with the combining marks that follow it. No stemming."""

    name = "unicode"

    def tokenize(self, text: str) -> list[str]:
        tokens: list[str] = []
        word: list[str] = []
        char_token = False  # whether tokens[-1] is a no-space character a mark may join
        for ch in unicodedata.normalize("NFC", text).lower():
            kind = unicodedata.category(ch)[0]
            if kind == "M" and char_token and not word:
                tokens[-1] += ch
            elif _no_space(ch) and kind in "LMN":
                if word:
                    tokens.append("".join(word))
                    word = []
                tokens.append(ch)
                char_token = True
            elif kind in "LMN":
                word.append(ch)
                char_token = False
            else:
                if word:
                    tokens.append("".join(word))
                    word = []
                char_token = False
        if word:
            tokens.append("".join(word))
        return tokens


def needs_unicode(references: Iterable[Sequence[str]]) -> bool:
    """Whether any reference has a letter outside ASCII (the only letters rouge-score's default
    tokenizer keeps). Decided on the references alone, so systems compared on the same
    references are tokenized alike."""
    return any(not ch.isascii() and (ch.isalpha() or unicodedata.category(ch).startswith("M"))
               for refs in references for ref in refs for ch in ref)


def choose_tokenizer(references: Sequence[Sequence[str]], use_stemmer: bool):
    """rouge-score's own DefaultTokenizer (English, with its Porter stemming) when every
    reference letter is ASCII, else ``UnicodeTokenizer``. Returns (tokenizer, name)."""
    if needs_unicode(references):
        return UnicodeTokenizer(), "unicode"
    from rouge_score import tokenizers

    return tokenizers.DefaultTokenizer(use_stemmer=use_stemmer), "default"


ASCII_WORD = re.compile(r"[A-Za-z0-9]")


def warn_empty(texts: Iterable[str], tokenizer, name: str) -> None:
    """Warn (``UserWarning``) when non-empty texts tokenize to nothing: they score 0 on every
    ROUGE variant. Raises nothing; such a text is scored, as rouge-score scores it."""
    # a text with an ASCII letter or digit has a token under either tokenizer: only the rest is tokenized
    empty = [t for t in texts if t.strip() and not ASCII_WORD.search(t) and not tokenizer.tokenize(t)]
    if empty:
        warnings.warn(f"ROUGE: {len(empty)} non-empty text(s) have no tokens under the {name} "
                      f"tokenizer and score 0, e.g. {empty[0][:60]!r}", UserWarning, stacklevel=3)


_segmenter = None


def split_sentences(text: str) -> str:
    """The text's sentences, one a line, for rougeLsum: existing lines are kept and each is
    split with pysbd's English rules (which also split at 。！？). Raises ImportError without
    pysbd."""
    global _segmenter
    if _segmenter is None:
        import pysbd

        _segmenter = pysbd.Segmenter(language="en", clean=False)
    sentences = [s.strip() for line in text.split("\n") if line.strip() for s in _segmenter.segment(line)]
    return "\n".join(s for s in sentences if s)


def splitter_name() -> str:
    from importlib.metadata import version

    return f"pysbd-{version('pysbd')}"
