"""Weighted prompts in AUTOMATIC1111's syntax, and prompts longer than the text encoder's window.

Syntax (as AUTOMATIC1111 reads it): `(words)` multiplies the words' weight by 1.1, `((words))` by 1.21,
`[words]` divides it by 1.1, `(words:1.5)` sets a factor, `\\(` `\\)` `\\[` `\\]` `\\\\` are the
characters themselves, and `BREAK` starts a new chunk. Malformed text is read leniently, never refused:
a bracket left open weighs everything after it, a stray closing bracket is plain text.

Encoding (as AUTOMATIC1111 does it): the tokens are cut into chunks of the window less its start and end
markers (at the last comma when one is within 20 tokens of the cut), each chunk is encoded on its own and
weighted (`_encode_chunk`: up-weights as AUTOMATIC1111, down-weights as compel, which masks the word out),
and the chunks are joined along the sequence. Every text of one run gets the same number of chunks (empty ones
pad the shorter), so prompt and negative prompt, or a morph's two ends, line up. SDXL's two encoders are
each read this way (their penultimate layers side by side, the pooled vector from the second's first chunk).

No library on PyPI reads this syntax (see docs/ARCHITECTURE.md), so the parser is written here; diffusers'
own `encode_prompt` still places the result (dtype, images per prompt) — it is handed the embeddings.

Device side: used by the `prompt_weighting` per-run change.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass

import torch

BREAK = None  # a fragment's weight that marks AUTOMATIC1111's BREAK
BACKTRACK = 20  # a chunk is cut after the last comma when one lies within this many tokens of the end
UP = 1.1  # (words)
_SYNTAX = re.compile(
    r"""
    \\[()\[\]\\]                    # an escaped bracket or backslash: the character itself
    | \(                            # opens a weight ×1.1 (or an explicit one)
    | \[                            # opens a weight ÷1.1
    | :\s*(?P<factor>[+-]?(?:\d+\.?\d*|\.\d+))\s*\)   # closes a round bracket with its own factor
    | \)
    | \]
    | [^\\()\[\]:]+                 # plain text
    | [\\:]                         # a lone backslash or colon: plain text
    """,
    re.VERBOSE,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*")

Fragment = tuple[str, "float | None"]  # (text, weight); weight BREAK (None) for a chunk break


def parse(text: str) -> list[Fragment]:
    """(text, weight) fragments of a prompt, neighbours of equal weight merged; never raises."""
    pieces: list[list] = []  # [text, weight]
    round_open: list[int] = []  # where each open bracket's words start in `pieces`
    square_open: list[int] = []

    def weigh(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            if piece[1] is not BREAK:
                piece[1] *= factor

    for match in _SYNTAX.finditer(text):
        token = match.group(0)
        if token.startswith("\\") and len(token) == 2:
            pieces.append([token[1], 1.0])
        elif token == "(":
            round_open.append(len(pieces))
        elif token == "[":
            square_open.append(len(pieces))
        elif match.group("factor") is not None and round_open:
            weigh(round_open.pop(), float(match.group("factor")))
        elif token == ")" and round_open:
            weigh(round_open.pop(), UP)
        elif token == "]" and square_open:
            weigh(square_open.pop(), 1 / UP)
        else:
            for i, part in enumerate(_BREAK.split(token)):
                if i:
                    pieces.append(["BREAK", BREAK])
                if part:
                    pieces.append([part, 1.0])
    for start in round_open:  # left open: weighs to the end, as if closed there
        weigh(start, UP)
    for start in square_open:
        weigh(start, 1 / UP)
    merged: list[Fragment] = []
    for piece_text, weight in pieces:
        if merged and merged[-1][1] == weight and weight is not BREAK:
            merged[-1] = (merged[-1][0] + piece_text, weight)
        else:
            merged.append((piece_text, weight))
    return merged or [("", 1.0)]


def is_plain(text: str, fragments: list[Fragment]) -> bool:
    """The text reads as itself: no weight, no break, no escape."""
    return len(fragments) == 1 and fragments[0] == (text, 1.0)


@dataclass
class Chunk:
    ids: list[int]
    weights: list[float]


def chunked(tokenizer, fragments: list[Fragment]) -> list[Chunk]:
    """The fragments' tokens cut into chunks that fit the window with its start and end markers."""
    size = tokenizer.model_max_length - 2
    comma = tokenizer(",", add_special_tokens=False).input_ids[-1:]
    chunks: list[Chunk] = []
    ids: list[int] = []
    weights: list[float] = []
    last_comma = -1
    for text, weight in fragments:
        if weight is BREAK:
            chunks.append(Chunk(ids, weights))
            ids, weights, last_comma = [], [], -1
            continue
        for token in tokenizer(text, add_special_tokens=False).input_ids:
            if len(ids) == size:
                cut = last_comma + 1 if last_comma >= 0 and size - (last_comma + 1) <= BACKTRACK else size
                chunks.append(Chunk(ids[:cut], weights[:cut]))
                ids, weights, last_comma = ids[cut:], weights[cut:], -1
            if [token] == comma:
                last_comma = len(ids)
            ids.append(token)
            weights.append(weight)
    if ids or not chunks:
        chunks.append(Chunk(ids, weights))
    return chunks


def needs_weighting(tokenizer, texts: tuple[str, ...]) -> bool:
    """Whether any text has weights, breaks or escapes, or is longer than one window."""
    return any(not is_plain(t, parse(t)) or len(chunked(tokenizer, parse(t))) > 1 for t in texts)


class WeightedEncoder:
    """A pipeline's `encode_prompt` for one run, reading weights and long prompts.

    Handed the same arguments as diffusers' own (any pipeline family's signature), it encodes the text
    itself and passes the embeddings on to the original, which places them as for any prompt.
    """

    def __init__(self, pipe, texts: tuple[str, ...]):
        self.pipe = pipe
        self.original = pipe.encode_prompt
        self.signature = inspect.signature(self.original)
        self.xl = getattr(pipe, "text_encoder_2", None) is not None
        pairs = [(pipe.tokenizer, pipe.text_encoder)]
        if self.xl:
            pairs = [(t, e) for t, e in ((pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)) if e is not None]
        self.encoders = pairs
        self.chunks = max(len(chunked(pipe.tokenizer, parse(t))) for t in (*texts, ""))
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}

    def encode_prompt(self, *args, **kwargs):
        bound = self.signature.bind(*args, **kwargs)
        given = bound.arguments
        if given.get("prompt_embeds") is not None or given.get("prompt") is None:
            return self.original(*args, **kwargs)
        prompts = _as_list(given["prompt"])
        given["prompt"] = None  # the embeddings below stand for it
        asked_negative = given.pop("negative_prompt", None)
        negatives = _as_list(asked_negative or "")
        if len(negatives) == 1 and len(prompts) > 1:
            negatives = negatives * len(prompts)
        cfg = given.get("do_classifier_free_guidance", self.signature.parameters["do_classifier_free_guidance"].default)
        embeds, pooled = self._batch(prompts)
        given["prompt_embeds"] = embeds
        if cfg:
            negative, negative_pooled = self._batch(negatives)
            # SDXL conditions on zeros where no negative prompt is given at all, as diffusers does.
            if self.xl and asked_negative is None and self.pipe.config.get("force_zeros_for_empty_prompt", False):
                negative, negative_pooled = torch.zeros_like(negative), torch.zeros_like(negative_pooled)
            given["negative_prompt_embeds"] = negative
            if self.xl:
                given["negative_pooled_prompt_embeds"] = negative_pooled
        if self.xl:
            given["pooled_prompt_embeds"] = pooled
        return self.original(**given)

    def _batch(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        encoded = [self.encode(t) for t in texts]
        pooled = torch.cat([p for _, p in encoded]) if self.xl else None
        return torch.cat([e for e, _ in encoded]), pooled

    @torch.no_grad()
    def encode(self, text: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(1, chunks × window, width) embeddings of one text, and SDXL's pooled vector (else None)."""
        if text in self._cache:
            return self._cache[text]
        fragments = parse(text)
        per_encoder, pooled = [], None
        for tokenizer, encoder in self.encoders:
            chunks = chunked(tokenizer, fragments)
            chunks += [Chunk([], [])] * (self.chunks - len(chunks))
            states = []
            for chunk in chunks:
                state, pooled_here = _encode_chunk(tokenizer, encoder, chunk, penultimate=self.xl)
                states.append(state)
                if pooled is None and encoder is getattr(self.pipe, "text_encoder_2", None):
                    pooled = pooled_here
            per_encoder.append(torch.cat(states, dim=1))
        self._cache[text] = (torch.cat(per_encoder, dim=-1), pooled)
        return self._cache[text]


def _as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _encode_chunk(tokenizer, encoder, chunk: Chunk, *, penultimate: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One chunk between its start and end markers, padded as the pipeline pads, with its weights applied.

    Up-weighted words as AUTOMATIC1111 weighs them: their vectors multiplied, the chunk rescaled to its
    unweighted mean. A down-weighted word also reaches every later position through the encoder's
    attention (the end of a prompt carries all of it), so, as compel does, the chunk is blended towards
    its encoding with those words masked out of the attention: weight 0 is the text without them.
    """
    window = tokenizer.model_max_length
    ids = [tokenizer.bos_token_id, *chunk.ids, tokenizer.eos_token_id]
    ids += [tokenizer.pad_token_id] * (window - len(ids))
    tokens = torch.tensor([ids], device=encoder.device)

    def encode(mask: torch.Tensor | None = None):
        output = encoder(tokens, attention_mask=mask, output_hidden_states=penultimate)
        # SDXL reads the penultimate layer (as diffusers' own encode_prompt does); SD the last.
        return (output.hidden_states[-2] if penultimate else output[0]), output[0]

    state, pooled = encode()
    weights = torch.ones(window, dtype=state.dtype, device=state.device)
    weights[1 : 1 + len(chunk.weights)] = torch.tensor(chunk.weights, dtype=state.dtype)
    for weight in sorted({w for w in chunk.weights if w != 1.0}):
        without, _ = encode((weights != weight).long()[None])
        state = without + weight * (state - without)
    return state, pooled
