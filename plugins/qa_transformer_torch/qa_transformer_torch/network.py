"""The network: token embedding + positions (+ question-match and convolutional position features)
-> ``nn.TransformerEncoder`` with a padding mask -> pooling -> one logit.

Four choices make the difference between a model that learns the generated stories within the
core's default 5 epochs and one that sits at 50% memorising them (ablations in README.md):

* **positions count back from the question.** Rows are right-padded and the core truncates the
  *start* of long stories, so the question always ends the row. Indexing the position table by
  the distance to the last real token gives the question words fixed positions and makes
  "how recent is this sentence" one learned vector per distance.
* **question match** (the exact-match feature of DrQA-style readers): each story token gets a
  learned vector saying which of the question's last words it repeats (counted from the end), so
  the mentions of the asked actor and place stand out before any attention is learned.
* **a convolutional position encoding** (as in wav2vec 2.0): a 1-D convolution over the
  embeddings lets every token see its neighbours, so a place "knows" the actor and the verb of
  its own sentence from the first step; attention is left with the long-range part.
* **a distance bias** (ALiBi-like): attention logits lose ``distance_bias`` per token of distance,
  a prior toward a token's own sentence and toward recent sentences.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qa_core import ModelSpec
from qa_core.data.tokenizer import SEP

#: The question words the match feature tells apart, counted from the end of the row; repeats of
#: words further back share the last id. Eight covers "Is the apple in the kitchen ?" and SEP.
MATCH_WORDS = 8


class QATransformer(nn.Module):
    """Reads ``story SEP question`` token ids and returns the logit of "yes".

    ``forward(tokens, lengths)`` builds the padding mask from the lengths the core provides, so
    attention never looks at padding and pooling reads real tokens only. A batch may be narrower
    than ``max_len`` (the caller cuts trailing padding): nothing depends on the width.
    """

    def __init__(
        self,
        vocab_size: int,
        max_len: int,
        d_model: int,
        heads: int,
        layers: int,
        ff_dim: int,
        dropout: float,
        pooling: str = "last",
        question_match: bool = True,
        conv_kernel: int = 9,
        distance_bias: float = 0.05,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        self.pooling = pooling
        self.distance_bias = distance_bias
        self.scale = math.sqrt(d_model)
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.position = nn.Embedding(max_len, d_model)
        # Row 0: a story word the question does not repeat; 1..MATCH_WORDS: a story word equal to
        # that question word (counted from the end); the last row: SEP and the question itself.
        self.match = nn.Embedding(MATCH_WORDS + 2, d_model) if question_match else None
        self.conv = nn.Conv1d(d_model, d_model, conv_kernel, padding=conv_kernel // 2) if conv_kernel else None
        # The CLS vector is prepended and takes no position: max_len stays the real tokens a row holds.
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model)) if pooling == "cls" else None
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model,
            heads,
            ff_dim,
            dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,  # pre-norm: stable at the learning rates a small model wants
            # No biases: modern practice, a little faster, and it keeps torch's inference fast
            # path (which mishandles float attention masks, seen with torch 2.13) out of the way.
            bias=False,
        )
        # Nested tensors need post-norm layers; the padding mask does the same job here.
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 1)
        # 0..max_len-1, for masks and distances; not a weight, so not in the state_dict.
        self.register_buffer("steps", torch.arange(max_len), persistent=False)
        nn.init.normal_(self.embed.weight, std=d_model**-0.5)
        # Unit scale like the scaled token embeddings: positions matter from the first step.
        nn.init.normal_(self.position.weight, std=1.0)
        with torch.no_grad():
            self.embed.weight[pad_id].zero_()

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens: long [b, t], right-padded; lengths: [b] real tokens per row (>= 1). Returns logits [b]."""
        steps = self.steps[: tokens.shape[1]]
        padding = steps >= lengths.unsqueeze(1)  # [b, t], True at padding
        from_end = (lengths.unsqueeze(1) - 1 - steps).clamp(min=0)  # 0 at the row's last token
        x = self.embed(tokens) * self.scale + self.position(from_end)
        if self.match is not None:
            x = x + self.match(self.match_ids(tokens, lengths, padding))
        if self.conv is not None:
            x = x.masked_fill(padding.unsqueeze(-1), 0.0)  # zeros, as the conv's own padding
            x = x + self.conv(x.transpose(1, 2)).transpose(1, 2)
        if self.cls is not None:
            x = torch.cat((self.cls.expand(x.shape[0], -1, -1), x), dim=1)
            padding = torch.cat((padding.new_zeros(x.shape[0], 1), padding), dim=1)
        if self.distance_bias:
            # Float masks on both sides: torch merges them into one additive mask per head.
            keys = torch.zeros(padding.shape, dtype=x.dtype, device=x.device).masked_fill(padding, float("-inf"))
            x = self.encoder(self.dropout(x), mask=self.distance_mask(x.shape[1], x), src_key_padding_mask=keys)
        else:
            x = self.encoder(self.dropout(x), src_key_padding_mask=padding)
        if self.pooling == "last":  # the token that ends the question
            pooled = x[torch.arange(x.shape[0], device=x.device), lengths - 1]
        elif self.pooling == "cls":
            pooled = x[:, 0]
        else:
            keep = (~padding).unsqueeze(-1).to(x.dtype)
            pooled = (x * keep).sum(dim=1) / keep.sum(dim=1)
        return self.head(pooled).squeeze(-1)

    def distance_mask(self, width: int, like: torch.Tensor) -> torch.Tensor:
        """Additive [t, t] attention bias ``-distance_bias * |i - j|`` (ALiBi-like, every head).

        A prior, not a limit: nearby tokens (a sentence's own words) and recent sentences start
        out favoured, which is what binding an actor to a place and finding its latest move
        need; content scores can still reach far back.
        """
        steps = torch.arange(width, device=like.device, dtype=like.dtype)
        mask = (steps.unsqueeze(0) - steps.unsqueeze(1)).abs_().mul_(-self.distance_bias)
        if self.cls is not None:  # the CLS vector sits outside the text: no distance to it
            mask[0, :] = 0.0
            mask[:, 0] = 0.0
        return mask

    @staticmethod
    def match_ids(tokens: torch.Tensor, lengths: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """[b, t] ids: which of the question's last MATCH_WORDS tokens each token repeats.

        The question is everything after the last SEP. Its last words are gathered into a
        [b, MATCH_WORDS] table (one gather), compared with every token ([b, t, MATCH_WORDS]) and
        the nearest-to-the-end match wins. SEP and the question get MATCH_WORDS + 1, padding and
        unrepeated story words 0.
        """
        back = torch.arange(MATCH_WORDS, device=tokens.device)
        index = (lengths.unsqueeze(1) - 1 - back).clamp(min=0)  # [b, K] positions of the last words
        last_words = tokens.gather(1, index)
        # Only real question words count: after the row's last SEP, inside the row.
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        sep_at = torch.where(tokens == SEP, positions, -1).amax(1, keepdim=True)  # -1: no question
        valid = (index > sep_at) & (back < lengths.unsqueeze(1)) & (sep_at >= 0)
        same = (tokens.unsqueeze(2) == last_words.unsqueeze(1)) & valid.unsqueeze(1)  # [b, t, K]
        # argmax finds the first True: the word nearest to the end; +1 keeps 0 for "none".
        ids = torch.where(same.any(-1), same.to(torch.uint8).argmax(-1) + 1, 0)
        # The question's own words get one id of their own: a story's "Mary" must not look
        # like the question's "Mary" (positions already tell the question words apart).
        in_question = (positions >= sep_at) & (sep_at >= 0)
        ids = torch.where(in_question, MATCH_WORDS + 1, ids)
        return ids.masked_fill(padding, 0)


def make_network(spec: ModelSpec) -> QATransformer:
    """The network ``spec`` describes (shapes from the data, the rest from ``spec.params``)."""
    p = spec.params
    return QATransformer(
        vocab_size=spec.vocab_size,
        max_len=spec.max_len,
        d_model=p["d_model"],
        heads=p["heads"],
        layers=p["layers"],
        ff_dim=p["ff_dim"],
        dropout=p["dropout"],
        pooling=p["pooling"],
        question_match=p["question_match"],
        conv_kernel=p["conv_kernel"],
        distance_bias=p["distance_bias"],
        pad_id=spec.pad_id,
    )
