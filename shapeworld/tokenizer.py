"""A CLIP tokenizer whose every caption word is one token, and which still reads any other text.

The vocabulary holds the 256 byte-level symbols (alone and word-final), so an unknown word falls apart
into characters instead of failing; each caption word is built from its characters by a chain of
merges. Built by rule, not trained, so rebuilding it gives the same ids every time.
"""

from __future__ import annotations

from collections import Counter

from transformers import CLIPTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

from .world import VOCABULARY

MAX_TOKENS = 32  # the text encoder's window: the longest caption is 16 tokens with start and end


def _learn_merges(words: list[str]) -> list[tuple[str, str]]:
    """Merge the most frequent adjacent pair until every word is a single symbol."""
    split = [list(w[:-1]) + [w[-1] + "</w>"] for w in words]
    merges = []
    while True:
        pairs = Counter(p for pieces in split for p in zip(pieces, pieces[1:]))
        if not pairs:
            return merges
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        for pieces in split:
            i = 0
            while i < len(pieces) - 1:
                if (pieces[i], pieces[i + 1]) == best:
                    pieces[i : i + 2] = [pieces[i] + pieces[i + 1]]
                i += 1


def build_tokenizer(words: list[str] = VOCABULARY, max_tokens: int = MAX_TOKENS) -> CLIPTokenizer:
    symbols = list(bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for token in ["<|startoftext|>", "<|endoftext|>", *symbols, *(s + "</w>" for s in symbols)]:
        vocab.setdefault(token, len(vocab))
    merges = _learn_merges(words)
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_tokens)
